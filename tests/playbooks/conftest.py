"""The converge's step timings at the end of the run (pytest captures the fixture's print)."""

from __future__ import annotations

import json


def pytest_terminal_summary(terminalreporter):
    from tests.playbooks import test_converge

    if test_converge.TIMINGS:
        timings = {k: round(v, 1) for k, v in test_converge.TIMINGS.items()}
        terminalreporter.write_line(f"playbook timings (s): {json.dumps(timings)}")
