"""The battery's shared machinery: real-process cases run a few at a time in the background from
the start of the session (most of their time is waiting: a hung NVML call, a child importing
torch), and the counts issue 10 asks for are printed at the end."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.battery import harness
from tests.fakes.host import gpu_host

WORKERS = max(2, os.cpu_count() or 2)  # real processes at once, beside the in-process cases
_selected: dict[Path, list[harness.ProcessCase]] = {}  # test file -> its selected cases


def _case_of(item):
    return getattr(getattr(item, "callspec", None), "params", {}).get("case")


def pytest_collection_modifyitems(items):
    """Real-process cases start in the background at once; the in-process ones run meanwhile,
    so they come first."""
    items.sort(key=lambda item: isinstance(_case_of(item), harness.ProcessCase))


def pytest_collection_finish(session):
    """The real-process cases of the tests that will run (after -k and the like)."""
    for item in session.items:
        case = _case_of(item)
        if isinstance(case, harness.ProcessCase):
            _selected.setdefault(item.path, []).append(case)


class CasePool:
    def __init__(self, base, cases: dict[Path, list[harness.ProcessCase]], slots: Path):
        self.base, self.slots = base, slots
        self.default_env = {
            "DLCHECK_TEST_ROOTS": str(_gpu_host_tree(base / "gpu-host")),
            "DLCHECK_TEST_PROBES": "healthy",
            "DLCHECK_TEST_SYNTHETIC_N": "200",
        }
        self.executor = ThreadPoolExecutor(WORKERS, thread_name_prefix="battery")
        self.sleepers = ThreadPoolExecutor(8, thread_name_prefix="battery-waits")
        self.futures: dict[str, Future] = {}
        self.cases = cases

    def start(self, path: Path) -> None:
        """Start the selected cases of one test file, the costliest first: at its first test,
        so a pytest-xdist worker runs only the cases of the files it was given."""
        for case in sorted(self.cases.pop(path, []), key=lambda c: -c.cost):
            self.submit(case)

    def submit(self, case: harness.ProcessCase) -> Future:
        if case.id not in self.futures:
            executor = self.sleepers if case.waits else self.executor
            self.futures[case.id] = executor.submit(self._run, case)
        return self.futures[case.id]

    def folder(self, case: harness.ProcessCase) -> Path:
        """The case's own folder: its TMPDIR, stdout, stderr, and what prepare() made."""
        return self.base / re.sub(r"[^\w.-]", "_", case.id)[:80]

    def _run(self, case: harness.ProcessCase) -> harness.Outcome:
        folder = self.folder(case)
        folder.mkdir()
        prepared = case.prepare(folder) if case.prepare else contextlib.nullcontext({})
        slot = contextlib.nullcontext() if case.waits else _cpu_slot(self.slots)
        with prepared as extra_env, slot:
            args = [a.replace("{case}", str(folder)) for a in case.args]
            return harness.run_process(
                args, folder, scenario=case.scenario.replace("{case}", str(folder)),
                env={**self.default_env, **case.env, **(extra_env or {})},
                stdout=case.stdout, stderr=case.stderr, send=case.send, columns=case.columns,
            )  # fmt: skip

    def outcome(self, case: harness.ProcessCase) -> harness.Outcome:
        return self.submit(case).result()


@pytest.fixture(scope="session", autouse=True)
def case_pool(tmp_path_factory):
    # the parent of a pytest-xdist worker's base folder is the run's, shared by all workers
    slots = tmp_path_factory.getbasetemp().parent / "battery-cpu-slots"
    slots.mkdir(exist_ok=True)
    pool = CasePool(tmp_path_factory.mktemp("battery"), _selected, slots)
    yield pool
    for executor in (pool.executor, pool.sleepers):
        executor.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(autouse=True)
def _start_cases_of_this_file(case_pool, request):
    case_pool.start(request.node.path)


@pytest.fixture
def run_case(case_pool):
    """run_case(ProcessCase) -> Outcome (started in the background with its file's first test)."""
    return case_pool.outcome


@contextlib.contextmanager
def _cpu_slot(slots: Path):
    """One of WORKERS slots shared by every pytest-xdist worker (a lock file each): at most as
    many CPU-bound cases run on the machine at once as it has cores (at least 2). With each of
    3 workers running its own WORKERS cases, the plot case (4 s alone) took over 20 s in CI
    beside the converges; with 300 other processes and one busy core here, 15.8 and 11.4 s
    without the slots, 8.0 and 7.6 s with them (the battery: 129, 123 s -> 159, 135 s)."""
    files = [open(slots / f"slot-{i}", "a") for i in range(WORKERS)]
    try:
        while True:
            for file in files:
                try:
                    fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                try:
                    yield
                finally:
                    fcntl.flock(file, fcntl.LOCK_UN)
                return
            time.sleep(0.05)
    finally:
        for file in files:
            file.close()


def _gpu_host_tree(path):
    gpu_host(path)  # a working NVIDIA kernel side, as on a provisioned GPU host
    return path
