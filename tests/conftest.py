"""Suite-wide: the slowest modules first, so that under `pytest -n N --dist loadfile` (what
scripts/test.sh runs) each starts at once on a worker of its own while the rest share the
others, instead of one of them starting last and setting the run's length."""

from __future__ import annotations

from collections import Counter

import pytest

SLOWEST_FIRST = [  # minutes each on the 2-core build machine
    "tests/playbooks/test_converge.py",  # ~17: three hosts converged, interrupted, repaired
    "tests/cloud/test_aws_launch.py",  # ~12: launch.yml end to end on one host
    "tests/playbooks/test_driver.py",  # ~7: driver methods on two hosts
]


def pytest_collection_modifyitems(config, items):
    def rank(item):
        path = item.nodeid.split("::", 1)[0]
        return SLOWEST_FIRST.index(path) if path in SLOWEST_FIRST else len(SLOWEST_FIRST)

    items.sort(key=rank)  # stable: the order within a module, and of the rest, is kept


# --- the end-of-run summary: issue 10's battery counts and the slow modules' step timings,
# also from pytest-xdist workers (each hands its own to the controller, which sums them) ------

TIMED_MODULES = ("test_converge", "test_aws_launch")
_from_workers: list[dict] = []


def _this_process() -> dict:
    import sys

    from tests.battery import harness

    timings = {}
    for name, module in list(sys.modules.items()):
        # pytest imports test files as "playbooks.test_converge" (tests/ has no __init__.py),
        # other tests import them as "tests.playbooks.test_converge": the name's end is enough
        short = name.rsplit(".", 1)[-1]
        steps = getattr(module, "TIMINGS", None)
        if short in TIMED_MODULES and steps:
            timings[short] = {k: round(v, 1) for k, v in steps.items()}
    return {"battery_counts": dict(harness.COUNTS), "battery_slowest": list(harness.SLOWEST),
            "timings": timings}  # fmt: skip


def pytest_sessionfinish(session):
    if hasattr(session.config, "workeroutput"):
        session.config.workeroutput.update(_this_process())


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    _from_workers.append(getattr(node, "workeroutput", {}))


def pytest_terminal_summary(terminalreporter):
    import json

    from tests.battery import harness

    counts, timings, slowest = Counter(), {}, []
    for part in [_this_process(), *_from_workers]:
        counts.update(part.get("battery_counts", {}))
        timings.update(part.get("timings", {}))
        slowest += part.get("battery_slowest", [])
    for module, steps in timings.items():
        terminalreporter.write_line(f"{module} timings (s): {json.dumps(steps)}")
    if not counts["cases"]:
        return
    keys = ("cases", "tracebacks", "hangs", "orphans", "leftover_temp_files",
            "schema_invalid_outputs", "wrong_exit_codes", "multi_line_errors",
            "over_time")  # fmt: skip
    terminalreporter.write_sep("-", "issue 10 battery")
    terminalreporter.write_line("battery: " + ", ".join(f"{k} {counts[k]}" for k in keys))
    for seconds, command in sorted(slowest, reverse=True)[:3]:
        said = f"{seconds} s of the {harness.CASE_LIMIT_S:.0f} s allowed"
        terminalreporter.write_line(f"battery: a slowest case, {said}: {command}")
