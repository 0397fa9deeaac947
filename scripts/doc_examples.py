"""Regenerate (or check) every dlcheck example in the docs from a real run, so docs cannot drift.

    python scripts/doc_examples.py          # rewrite the examples in place
    python scripts/doc_examples.py --check  # exit 1 and name each example that drifted

An example in a Markdown file is a block between these markers:

    <!-- example: ARGS [| scenario=NAME] [| columns=N] [| fleet] [| history] -->
    ```console
    $ dlcheck ARGS
    ...output...
    ```
    <!-- /example -->

It is `dlcheck ARGS` run for real, piped (the plain view) unless `columns=N` asks for a terminal
of N columns. `scenario=NAME` fakes NVML with a named scenario of tests/fakes/nvml.py (how the
tests run GPU machines here; the docs say so next to each). `fleet` runs in a folder holding
`reports/`, a small fleet made with tests/fakes/reports.py; `history` makes it two runs
(reports/<run-id>/<host>/), torch uninstalled on gpu-02 between them. Paths into this checkout
are shown relative to it. --check compares with every digit masked, so timings and free memory may
differ from run to run, but not the words, the columns or the codes.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCK = re.compile(
    r"(?P<open><!-- example: (?P<spec>[^>]*?) -->\n)```console\n(?P<body>.*?)```\n"
    r"(?P<close><!-- /example -->)",
    re.S,
)


def run_example(spec: str) -> str:
    parts = [p.strip() for p in spec.split("|")]
    args, options = parts[0].split(), dict(_option(p) for p in parts[1:])
    env = {**os.environ, "NO_COLOR": "1", "DLCHECK_MASK_KEY": "docs"}
    command = [sys.executable, "-m", "tests.fakes.run_dlcheck", options.get("scenario", "real"),
               *args]  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:
        cwd = REPO
        if "fleet" in options:
            _make_fleet(Path(scratch) / "reports")
            cwd = Path(scratch)
        if "history" in options:
            _make_fleet(Path(scratch) / "reports" / "20261201T020000Z")
            _make_fleet(Path(scratch) / "reports" / "20261202T020000Z", torch_removed="gpu-02")
            cwd = Path(scratch)
        env["PYTHONPATH"] = str(REPO)
        if "columns" in options:
            sys.path.insert(0, str(REPO))
            from tests.fakes.tty import run_on_tty

            output, _ = run_on_tty(command, int(options["columns"]), env=env, cwd=cwd)
        else:
            done = subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env,
                                  timeout=600)  # fmt: skip
            output = done.stdout
    output = "\n".join(line.rstrip() for line in output.splitlines())
    return f"$ dlcheck {' '.join(args)}\n{_relative(output)}\n"


def _option(text: str) -> tuple[str, str]:
    key, _, value = text.partition("=")
    return key.strip(), value.strip()


def _relative(text: str) -> str:
    return text.replace(str(REPO) + "/", "").replace(sys.executable, ".venv/bin/python")


def _make_fleet(reports: Path, torch_removed: str = "") -> None:
    sys.path.insert(0, str(REPO))
    from tests.fakes.reports import bench_data, check_data, smoke_data, write_host
    from tests.fakes.reports import framework as fw

    write_host(reports, "gpu-01", check=check_data(), smoke=smoke_data(),
               bench=bench_data({"keras": 1.9, "torch": 14.2, "torch-sparse": 6.1}))  # fmt: skip
    frameworks = {"torch": fw(None, installed=False), "tensorflow": fw("2.21.0", "12.5", 1),
                  "keras": fw("3.15.1", backend="tensorflow")} if torch_removed else None
    write_host(reports, "gpu-02", smoke=smoke_data(),
               check=check_data(warning=("pcie_link_degraded",), frameworks=frameworks))
    write_host(reports, "gpu-03", check=check_data("not_ready", failing=("torch_no_gpu",)),
               smoke=smoke_data(passed=8, failed=("test_torch_sees_every_gpu",)))  # fmt: skip
    write_host(reports, "gpu-04", status="unreachable", message="ssh: connect timed out")


# Facts of the machine the docs were generated on, not of dlcheck: not compared by --check.
MACHINE_LINES = re.compile(r"^(Host|OS|CPU|RAM|Disk|Python)\s", re.M)


def _masked(text: str) -> str:
    kept = [line for line in text.splitlines() if not MACHINE_LINES.match(line)]
    return re.sub(r" +", " ", re.sub(r"\d+", "9", "\n".join(kept)))  # widths follow the digits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not rewrite")
    check = parser.parse_args().check
    drifted = []
    for path in DOCS:
        text = path.read_text()

        def replace(match, path=path):
            body = run_example(match["spec"])
            if check and _masked(body) != _masked(match["body"]):
                drifted.append(f"{path.relative_to(REPO)}: dlcheck {match['spec']}")
            return f"{match['open']}```console\n{body}```\n{match['close']}"

        new = BLOCK.sub(replace, text)
        if not check and new != text:
            path.write_text(new)
            print(f"updated {path.relative_to(REPO)}")
    for item in drifted:
        print(f"drifted: {item}", file=sys.stderr)
    return 1 if drifted else 0


if __name__ == "__main__":
    sys.exit(main())
