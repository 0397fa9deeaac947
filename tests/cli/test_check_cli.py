"""dlcheck / dlcheck check / dlcheck gpu through click's CliRunner and as a real process."""

import json
import os
import subprocess
import sys

import pytest

from dlcheck import checks, frameworks, gpu, system
from dlcheck.models import ExitCode
from tests.fakes import probes
from tests.fakes.cli import invoke as run_cli
from tests.fakes.host import gpu_host, make_roots

pytest_plugins = ["tests.fakes.fixtures"]  # fake_nvml, clean_env
pytestmark = pytest.mark.usefixtures("clean_env")

ENVELOPE_KEYS = ["command", "data", "errors", "schema", "status"]
CHECK_DATA_KEYS = ["checks", "driver", "exit_code", "frameworks", "gpus", "host", "kernel",
                   "nvml", "system", "verdict"]  # fmt: skip
FRAMEWORK_KEYS = {"installed", "version", "cuda", "cuda_build", "cudnn", "cudnn_built",
                  "is_available", "gpu_count", "arch_list", "devices", "error",
                  "probe"}  # fmt: skip
CHECK_KEYS = ["code", "evidence", "fix", "message", "status"]


def invoke(args):
    """In-process run through cli.run: (captured output, exit code)."""
    ran = run_cli(args)
    return ran, ran.code


@pytest.fixture
def gpu_machine(fake_nvml, tmp_path, monkeypatch):
    def setup(scenario="healthy_single", docs=probes.HEALTHY, roots=None):
        fake_nvml(scenario)
        monkeypatch.setattr(system, "DEFAULT_ROOTS", roots or gpu_host(tmp_path))
        monkeypatch.setattr(frameworks, "probe_command", probes.command_for(docs))

    return setup


def test_json_contract_for_check(gpu_machine):
    gpu_machine()
    result, code = invoke(["check", "--json"])
    body = json.loads(result.stdout)
    assert sorted(body) == ENVELOPE_KEYS and body["command"] == "check"
    data = body["data"]
    assert sorted(data) == CHECK_DATA_KEYS
    assert (data["verdict"], data["exit_code"], code) == ("ready", 0, ExitCode.READY)
    assert sorted(data["driver"]) == ["cuda_driver_version", "nvml_version", "version"]
    assert list(data["gpus"][0]) == sorted(gpu.FIELDS)
    assert set(data["frameworks"]) == {"torch", "tensorflow", "keras", "jax"}
    for name, record in data["frameworks"].items():
        assert FRAMEWORK_KEYS <= set(record), name
    assert {"backend", "backend_source"} <= set(data["frameworks"]["keras"])
    assert all(sorted(c) == CHECK_KEYS for c in data["checks"])
    assert result.stdout == json.dumps(body, sort_keys=True, indent=2) + "\n"  # keys sorted
    assert data["host"]["hostname"]


def test_json_contract_for_gpu(gpu_machine):
    gpu_machine("multi_gpu")
    result, code = invoke(["gpu", "--json"])
    body = json.loads(result.stdout)
    assert body["command"] == "gpu" and body["status"] == "PASS" and code == ExitCode.READY
    assert sorted(body["data"]) == ["driver", "gpus", "nvml"]
    assert [g["index"] for g in body["data"]["gpus"]] == [0, 1, 2, 3]
    assert body["data"]["gpus"][0]["memory.total"] == 81559
    assert body["data"]["driver"]["cuda_driver_version"] == "13.0"


def test_gpu_human_view_and_lost_gpu_exit(gpu_machine):
    gpu_machine("gpu_lost")
    result, code = invoke(["gpu"])
    assert code == ExitCode.NOT_READY
    assert "GPU 1: FAIL gpu_lost" in result.stdout and "555 / 81559" in result.stdout
    full, _ = invoke(["gpu", "--all"])
    assert "GPU 1  ** gpu_lost **" in full.stdout and "memory.total" in full.stdout
    assert "81559 MiB" in full.stdout


@pytest.mark.parametrize(
    "scenario, roots_kwargs, code, check_code",
    [
        ("driver_not_loaded", {"pci": [("0000:01:00.0", "nouveau")], "modules": ["nouveau"]},
         ExitCode.NOT_READY, "nouveau_bound"),
        ("version_mismatch", None, ExitCode.NOT_READY, "driver_library_mismatch"),
        ("no_permission", None, ExitCode.NOT_READY, "nvml_no_permission"),
        ("row_remap_pending", None, ExitCode.NOT_READY, "row_remap_pending"),
        ("mig", None, ExitCode.READY, "mig_enabled"),
        ("no_library", {}, ExitCode.CPU_ONLY, "no_nvidia_gpu"),
    ],
)  # fmt: skip
def test_fault_scenarios_exit_codes_and_valid_json(
    gpu_machine, tmp_path, scenario, roots_kwargs, code, check_code
):
    roots = make_roots(tmp_path, **roots_kwargs) if roots_kwargs is not None else None
    gpu_machine(scenario, roots=roots)
    result, returned = invoke(["--json", "-v"])  # bare options route to `check`
    data = json.loads(result.stdout)["data"]
    assert returned == code and data["exit_code"] == code
    found = {c["code"]: c for c in data["checks"]}
    assert check_code in found and (found[check_code]["fix"] or found[check_code]["status"] in
                                    ("PASS", "INFO"))  # fmt: skip
    human, _ = invoke(["check", "-v"])
    assert check_code in human.stdout and "Traceback" not in human.stdout


def test_cpu_only_and_cpu_ok(gpu_machine, tmp_path):
    gpu_machine("no_library", docs={"torch": probes.torch_cpu()}, roots=make_roots(tmp_path))
    result, code = invoke(["check"])
    assert code == ExitCode.CPU_ONLY and "CPU-ONLY" in result.stdout
    assert invoke(["check", "--cpu-ok"])[1] == ExitCode.READY


def test_hanging_probe_cut_off_through_the_cli(gpu_machine):
    gpu_machine(docs={**probes.HEALTHY, "torch": "HANG"})
    result, code = invoke(["check", "--json", "--timeout", "2"])
    data = json.loads(result.stdout)["data"]
    assert data["frameworks"]["torch"]["probe"]["status"] == "timeout"
    assert "torch_probe_failed" in {c["code"] for c in data["checks"]}


def test_no_frameworks_skips_probes(gpu_machine, monkeypatch):
    gpu_machine()
    monkeypatch.setattr(frameworks, "start_probes", lambda *_, **__: pytest.fail("probes ran"))
    result, code = invoke(["check", "--json", "--no-frameworks"])
    assert json.loads(result.stdout)["data"]["frameworks"] is None and code == ExitCode.READY


def test_internal_error_is_one_line_and_exit_4(gpu_machine, monkeypatch):
    gpu_machine()

    def boom(facts):
        raise RuntimeError("synthetic bug")

    monkeypatch.setattr(checks, "run_all", boom)
    result, code = invoke(["check", "--no-frameworks"])
    assert code == ExitCode.INTERNAL
    assert result.stderr.strip().count("\n") == 0 and "synthetic bug" in result.stderr
    assert "Traceback" not in result.stderr
    result, _ = invoke(["check", "--no-frameworks", "--debug"])
    assert "Traceback" in result.stderr


def test_usage_error_exits_2():
    done = subprocess.run([sys.executable, "-m", "dlcheck", "--timeout", "0"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == ExitCode.USAGE and "Traceback" not in done.stderr


def test_rich_view_when_a_terminal(gpu_machine, monkeypatch):
    from dlcheck.render import Output

    gpu_machine("persistence_off")
    monkeypatch.setattr(Output, "for_stream", classmethod(lambda cls, s=None: cls(s, False, 120)))
    result, _ = invoke(["check", "--no-frameworks", "-v"])
    assert "READY" in result.stdout and "persistence_mode_off" in result.stdout


def test_real_cpu_only_run_of_python_m_dlcheck():
    """This machine has no NVIDIA GPU: the real report ends CPU-only, exit 3 (0 with --cpu-ok)."""
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    done = subprocess.run([sys.executable, "-m", "dlcheck"], capture_output=True, text=True,
                          timeout=300, env=env)  # fmt: skip
    if "CPU-ONLY" not in done.stdout:
        pytest.skip("this machine has an NVIDIA GPU")
    assert done.returncode == ExitCode.CPU_ONLY, done.stderr
    assert "no_nvidia_gpu" in done.stdout and "torch" in done.stdout
    ok = subprocess.run([sys.executable, "-m", "dlcheck", "--cpu-ok", "--no-frameworks", "--json"],
                        capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
    assert ok.returncode == 0 and json.loads(ok.stdout)["data"]["verdict"] == "cpu_only"
