"""One shape for every subcommand: the JSON of each matches its schema, a bug is exit 4 with one
line, Ctrl-C is 130, and the shell can complete names and options."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jsonschema
import pytest

from dlcheck import schema
from dlcheck.cli import SUBCOMMANDS
from tests.fakes.cli import invoke
from tests.fakes.reports import check_data, smoke_data, write_host

pytest_plugins = ["tests.fakes.fixtures"]  # fake_nvml, clean_env

# Every subcommand with arguments that make it quick here, and what building it calls.
QUICK = {
    "check": (["check", "--no-frameworks"], "dlcheck.commands.check:build"),
    "gpu": (["gpu"], "dlcheck.commands.gpu:build"),
    "bench": (["bench", "--synthetic", "--limit", "300", "--epochs", "1", "--impl",
               "torch-sparse", "--device", "cpu"], "dlcheck.commands.bench:build"),  # fmt: skip
    "fleet": (["fleet", "{reports}"], "dlcheck.commands.fleet:build"),
    "allreduce": (["allreduce", "--backend", "gloo", "--size", "64K", "--iters", "2",
                   "--warmup", "0"], "dlcheck.commands.allreduce:build"),  # fmt: skip
    "perf": (["perf", "--cpu-only"], "dlcheck.commands.perf:build"),
}


def test_every_subcommand_is_covered_here():
    assert set(QUICK) == set(SUBCOMMANDS)


@pytest.fixture
def reports(tmp_path):
    write_host(tmp_path / "reports", "h1", check=check_data(), smoke=smoke_data())
    return str(tmp_path / "reports")


def _args(name, reports):
    return [a.replace("{reports}", reports) for a in QUICK[name][0]]


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_internal_error_is_one_line_and_exit_4(name, reports, monkeypatch):
    module, function = QUICK[name][1].split(":")

    def bug(*args, **kwargs):
        raise KeyError("an injected bug")

    monkeypatch.setattr(__import__(module, fromlist=[function]), function, bug)
    ran = invoke(_args(name, reports))
    assert ran.code == 4 and ran.stdout == ""
    assert ran.stderr.count("\n") == 1 and "internal error: KeyError" in ran.stderr
    assert "Traceback" not in ran.stderr
    debug = invoke([*_args(name, reports), "--debug"])
    assert debug.code == 4 and "Traceback" in debug.stderr


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_ctrl_c_is_exit_130(name, reports, monkeypatch):
    module, function = QUICK[name][1].split(":")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(__import__(module, fromlist=[function]), function, interrupted)
    ran = invoke(_args(name, reports))
    assert ran.code == 130 and "interrupted" in ran.stderr and "Traceback" not in ran.stderr


@pytest.mark.parametrize("scenario", ["healthy_single", "busy", "mig", "gpu_lost",
                                      "two_a100_pcie_degraded", "no_library"])  # fmt: skip
def test_check_and_gpu_json_match_their_schemas(fake_nvml, scenario):
    fake_nvml(scenario)
    for name, args in (("check", ["--json", "--no-frameworks"]), ("gpu", ["gpu", "--json"])):
        body = json.loads(invoke(args).stdout)
        jsonschema.Draft7Validator(schema.load(name)).validate(body)
        schema.validate(name, body)  # the fast validator dlcheck fleet uses agrees


@pytest.mark.parametrize("name", ["bench", "fleet", "allreduce"])
def test_real_runs_match_their_schemas(name, reports, tmp_path):
    done = subprocess.run([sys.executable, "-m", "dlcheck", *_args(name, reports), "--json"],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "TMPDIR": str(tmp_path)})  # fmt: skip
    body = json.loads(done.stdout)
    jsonschema.Draft7Validator(schema.load(name)).validate(body)
    assert body["command"] == name


def test_every_schema_is_valid_draft7_and_inlines_its_references():
    for name in schema.names():
        document = schema.load(name)
        jsonschema.Draft7Validator.check_schema(document)
        assert '"$ref"' not in json.dumps(document), name


def _complete(words: str) -> list[str]:
    env = {**os.environ, "_DLCHECK_COMPLETE": "bash_complete", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))}
    done = subprocess.run([sys.executable, "-c", "from dlcheck.cli import main; main()"],
                          capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    return [line.split(",", 1)[1] for line in done.stdout.splitlines() if "," in line]


def test_shell_completion_offers_subcommands_and_their_options():
    assert set(SUBCOMMANDS) <= set(_complete("dlcheck "))
    assert "--query-gpu" in _complete("dlcheck gpu --q")
    assert {"--cpu-ok", "--no-frameworks"} <= set(_complete("dlcheck check --"))
    script = subprocess.run([sys.executable, "-c", "from dlcheck.cli import main; main()"],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "_DLCHECK_COMPLETE": "bash_source"})  # fmt: skip
    assert "complete" in script.stdout and "_DLCHECK_COMPLETE" in script.stdout
