"""The CLI skeleton: default command, exit-code contract, JSON envelope."""

import json
import math

from click.testing import CliRunner

from dlcheck import cli as cli_module
from dlcheck.models import ExitCode, Status, envelope


def test_exit_codes_are_distinct_and_documented():
    values = [code.value for code in ExitCode]
    assert len(values) == len(set(values))
    assert ExitCode.USAGE == 2  # click's own code for usage errors
    for code in ExitCode:
        assert f"{code.value} " in cli_module.cli.help


def test_worst_status_orders_fail_over_warn_over_pass():
    assert Status.worst([Status.PASS, Status.WARN, Status.INFO]) is Status.WARN
    assert Status.worst([Status.WARN, Status.FAIL]) is Status.FAIL
    assert Status.worst([]) is Status.PASS


def test_envelope_sorts_keys_and_nulls_nan():
    text = envelope("gpu", "PASS", {"b": math.nan, "a": Status.WARN})
    body = json.loads(text)
    assert list(body) == sorted(body)
    assert body["data"] == {"a": "WARN", "b": None}
    assert body["schema"].startswith("dlcheck/")


def test_unknown_subcommand_is_a_usage_error():
    result = CliRunner().invoke(cli_module.cli, ["no-such-command"])
    assert result.exit_code == ExitCode.USAGE
    assert "No such command" in result.output
