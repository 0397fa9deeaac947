"""The human views at 40, 80 and 200 columns (a real terminal: a pty), piped, and as CSV: no
number, field name or fix is cut, and every fix stays on one line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest

from dlcheck.gpu import FIELDS
from dlcheck.render import as_pasteable
from tests.fakes.cli import invoke
from tests.fakes.reports import check_data, smoke_data, write_host
from tests.fakes.tty import dlcheck_on_tty, run_on_tty

WIDTHS = (40, 80, 200)
LONG_FIX_SCENARIO = "version_mismatch"  # driver_library_mismatch: a fix of ~230 characters


def _fixes(scenario: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.fakes.run_dlcheck", scenario, "--json", "--no-frameworks"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    checks = json.loads(done.stdout)["data"]["checks"]
    return [c["fix"] for c in checks if c["fix"] and c["status"] != "PASS"]


@pytest.mark.parametrize("columns", WIDTHS)
def test_check_view_keeps_every_fix_whole_on_its_own_line(columns):
    fixes = _fixes(LONG_FIX_SCENARIO)
    assert any(len(f) > 200 for f in fixes)  # longer than the widest terminal
    text, code = dlcheck_on_tty(LONG_FIX_SCENARIO, ["--no-frameworks"], columns)
    assert code == 1 and "…" not in text
    lines = text.splitlines()
    for fix in fixes:
        assert as_pasteable(fix) in lines, fix
    assert "driver_library_mismatch" in text  # the code column is never cut


@pytest.mark.parametrize("columns", WIDTHS)
def test_gpu_view_drops_columns_never_cuts_them(columns):
    text, code = dlcheck_on_tty("two_a100_pcie_degraded", ["gpu"], columns)
    assert code == 0 and "…" not in text
    assert "GPU 1: WARN pcie_link_degraded" in text
    rows = [line for line in text.splitlines() if line.strip().startswith(("0 ", "1 "))]
    assert len(rows) == 2
    for row in rows:
        assert len(row.rstrip()) <= columns  # the table itself fits
        if "memory" in text:
            assert "4 / 81920" in row  # a number is whole or absent, never cut
    if columns >= 80:
        assert "NVIDIA A100 80GB PCIe" in text and "61 / 300" in text


@pytest.mark.parametrize("columns", WIDTHS)
def test_gpu_all_never_cuts_a_field_name(columns):
    text, _ = dlcheck_on_tty("healthy_single", ["gpu", "--all"], columns)
    names = {line.strip().split()[0] for line in text.splitlines() if line.startswith("  ")}
    assert {f for f in FIELDS if f not in ("index", "error")} <= names


def test_eight_gpus_fit_one_screen():
    text, _ = dlcheck_on_tty("fabric_manager_down", ["gpu"], 80)
    assert len(text.strip().splitlines()) <= 24
    assert all(f"  {i}  " in text for i in range(8))


@pytest.mark.parametrize("columns", WIDTHS)
def test_fleet_view_shows_the_pcie_warning_and_never_wraps_host_or_state(columns, tmp_path):
    # The host's report is what `dlcheck --json` prints on the fake two-A100 machine.
    done = subprocess.run(
        [sys.executable, "-m", "tests.fakes.run_dlcheck", "two_a100_pcie_degraded", "--json",
         "--no-frameworks"], capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    folder = tmp_path / "reports" / "a100-box-with-a-long-name"
    folder.mkdir(parents=True)
    (folder / "check.json").write_text(done.stdout)
    (folder / "status.json").write_text('{"state": "ok"}')
    (folder / "smoke.json").write_text(json.dumps(
        {"schema": "dlcheck/1", "command": "smoke", "status": "PASS", "data": smoke_data(),
         "errors": []}))  # fmt: skip
    write_host(tmp_path / "reports", "cpu-1", check=check_data("cpu_only", gpus=()),
               smoke=smoke_data())  # fmt: skip
    text, code = run_on_tty([sys.executable, "-m", "dlcheck", "fleet", "reports"], columns,
                            cwd=tmp_path)  # fmt: skip
    assert code == 3, text  # one host CPU-only, the other ready with a warning
    # message lines wrap between words at the terminal width
    assert "a100-box-with-a-long-name: WARN pcie_link_degraded" in " ".join(text.split())
    row = next(line for line in text.splitlines() if line.startswith("a100-box-with-a-long-name"))
    assert "ready" in row  # host and state on one line, whole
    if columns >= 80:
        assert "1: pcie_link_degraded" in row
    body = json.loads(invoke(["fleet", "--json", str(tmp_path / "reports")]).stdout)
    host = next(h for h in body["data"]["hosts"] if h["host"].startswith("a100"))
    assert host["warning_codes"] == ["pcie_link_degraded"]


@pytest.mark.parametrize("columns", WIDTHS)
def test_bench_view_keeps_numbers_whole(columns, tmp_path):
    args = ["bench", "--synthetic", "--limit", "300", "--epochs", "2", "--impl", "torch-sparse",
            "--device", "cpu"]  # fmt: skip
    text, code = run_on_tty([sys.executable, "-m", "dlcheck", *args], columns,
                            env={"TMPDIR": str(tmp_path)}, timeout=300)  # fmt: skip
    assert code == 0 and "…" not in text
    row = next(line for line in text.splitlines() if line.startswith("torch-sparse"))
    assert re.search(r"\s\d+\.\d{3}\s", row)  # the median epoch, whole
    assert "impl" in text.split() and "verdict" in text.split()  # headers are never cut
    assert "note: every implementation had the same budget" in " ".join(text.split())


def test_piped_output_is_plain_and_unwrapped():
    done = subprocess.run(
        [sys.executable, "-m", "tests.fakes.run_dlcheck", LONG_FIX_SCENARIO, "--no-frameworks"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "40"},
    )  # fmt: skip
    assert "\x1b[" not in done.stdout
    checks = [line for line in done.stdout.splitlines() if "driver_library_mismatch" in line]
    assert any(len(line) > 40 for line in checks)  # not wrapped at the (irrelevant) width


def test_query_gpu_csv_is_nvidia_smis_format():
    ran = invoke(["gpu", "--query-gpu=index,name,utilization.gpu,memory.used,memory.total",
                  "--format=csv"])  # fmt: skip
    assert ran.stdout.splitlines() == [] or ran.code == 3  # no GPU here without the fake


def test_query_gpu_csv_on_the_fake_two_gpu_machine():
    def query(fmt):
        done = subprocess.run(
            [sys.executable, "-m", "tests.fakes.run_dlcheck", "two_a100", "gpu",
             "--query-gpu=index,name,utilization.gpu,memory.used,memory.total", f"--format={fmt}"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        return done.returncode, done.stdout.splitlines()

    assert query("csv") == (0, [
        "index, name, utilization.gpu [%], memory.used [MiB], memory.total [MiB]",
        "0, NVIDIA A100 80GB PCIe, 0 %, 4 MiB, 81920 MiB",
        "1, NVIDIA A100 80GB PCIe, 0 %, 4 MiB, 81920 MiB",
    ])  # fmt: skip
    rows = [f"{i}, NVIDIA A100 80GB PCIe, 0, 4, 81920" for i in (0, 1)]
    assert query("csv,noheader,nounits")[1] == rows
    code, _ = query("tsv")
    assert code == 2


def test_bench_without_torch_says_how_to_install_it_within_two_seconds(tmp_path):
    """A real venv with dlcheck and its dependencies only (no frameworks). Two seconds of CPU,
    not of wall clock: the suite runs beside converges on two cores (once 2.6 s of wall)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                    repo], check=True, timeout=600, capture_output=True)  # fmt: skip
    err = tmp_path / "stderr"
    started = time.monotonic()
    with open(err, "w") as stderr:
        process = subprocess.Popen([str(venv / "bin" / "dlcheck"), "bench"], cwd=tmp_path,
                                   stdout=subprocess.DEVNULL, stderr=stderr)  # fmt: skip
        _, status, usage = os.wait4(process.pid, 0)  # this child's own CPU time
        process.returncode = os.waitstatus_to_exitcode(status)
    elapsed, cpu = time.monotonic() - started, usage.ru_utime + usage.ru_stime
    said = err.read_text()
    assert process.returncode == 2, said
    assert "pip install 'dlcheck[keras]'" in said and "data:" not in said, said  # before the data
    assert cpu < 2.0 and elapsed < 10.0, (cpu, elapsed, said)
    only_torch = subprocess.run([str(venv / "bin" / "dlcheck"), "bench", "--impl", "torch"],
                                capture_output=True, text=True, timeout=60)  # fmt: skip
    assert only_torch.returncode == 2 and "pip install 'dlcheck[torch]'" in only_torch.stderr


@pytest.mark.parametrize("columns", WIDTHS)
def test_a_long_interpreter_path_does_not_cost_the_process_its_command(columns):
    """At 40 columns a command's first word (a venv's python) can be wider than the room left;
    the command is what says what the process is, so it folds inside that word, never drops."""
    import io

    from rich.console import Console

    from dlcheck.render.gpu import PROCESSES
    from dlcheck.render.table import terminal

    command = "/home/someone/miniconda3/envs/research/bin/python train.py --epochs 4"
    rows = [["0", "24501", "someone", "C", "1234 MiB", command]]
    console = Console(file=io.StringIO(), width=columns, color_system=None)
    console.print(terminal(PROCESSES, rows, columns, title="Processes"))
    lines = console.file.getvalue().splitlines()
    assert all(len(line.rstrip()) <= columns for line in lines)
    start = lines[1].index("command")  # the column's cells, top to bottom, are the command
    assert "".join(line[start:] for line in lines[3:]).replace(" ", "") == command.replace(" ", "")
    assert "24501" in lines[3] and "1234 MiB" in lines[3]  # whole, not cut
