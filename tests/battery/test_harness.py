"""The battery's own machinery, where a mistake would hide a failure or cause one elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from dlcheck import children
from tests.battery import harness


def _samplers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "battery-sampler"]


def test_the_sampler_sees_a_descendant_and_ends_when_no_case_runs(tmp_path, monkeypatch):
    # A dlcheck stand-in whose child carries the marker dlcheck's children get.
    parent = subprocess.Popen(["sleep", "30"])
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"],
                             env={**os.environ, children.PARENT_ENV: str(parent.pid)})  # fmt: skip
    try:
        watch = harness.Watch(parent.pid, tmp_path)
        deadline = time.monotonic() + 10
        while child.pid not in watch.seen and time.monotonic() < deadline:
            time.sleep(0.05)
        assert child.pid in watch.seen and watch.children() == 1
        seen = watch.stop()
        assert seen[child.pid][0] == os.getpgid(child.pid)
    finally:
        for process in (parent, child):
            process.kill()
            process.wait()
    # A thread left running would call whatever time.sleep a later test patched in the same
    # worker: CI once saw 302378 calls land in a test's list of back-off waits.
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    deadline = time.monotonic() + 5
    while _samplers() and time.monotonic() < deadline:
        threading.Event().wait(0.05)
    assert not _samplers()
