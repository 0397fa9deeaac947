"""Battery: read-only, full, file-instead-of-folder and missing KERAS_HOME and TMPDIR.

Read-only and full are real file systems: a small tmpfs mounted for the case (this needs root,
as on the CI machine; elsewhere those cases are skipped, with the reason). A full one is filled
until the kernel says ENOSPC; "nearly full" leaves one 4 KiB page, so that Python's own check
of TMPDIR (it writes 4 bytes) passes and dlcheck's real writes fail midway.

When TMPDIR cannot be used at all, Python's tempfile falls back to $TEMP, $TMP, then /tmp
(documented Python behaviour, which dlcheck keeps); every real-process case points TEMP at a
folder of its own, so the fallback is checked for leftovers too (harness.run_process).
"""

from __future__ import annotations

import contextlib
import errno
import subprocess
from pathlib import Path

import pytest

from tests.battery.harness import ProcessCase, judge

LEFT = 4096  # one page


@contextlib.contextmanager
def tmpfs(folder: Path, *, read_only=False, fill=False, leave=0, contents=None):
    """A 1 MiB tmpfs at folder/mnt for the case; `contents(mount)` runs before it turns ro."""
    mount = folder / "mnt"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=1777", "tmpfs",
                           str(mount)], capture_output=True, text=True)  # fmt: skip
    if made.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.strip()}); needs root")
    try:
        if contents:
            contents(mount)
        if fill:
            _fill(mount, leave)
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(mount: Path, leave: int) -> None:
    with open(mount / ".filler", "wb", buffering=0) as filler:
        chunk = b"\0" * 4096
        try:
            while True:
                filler.write(chunk)
        except OSError as error:
            assert error.errno == errno.ENOSPC
        if leave:
            filler.truncate(max(0, filler.tell() - leave))


def environ(variable: str, kind: str, sub: str = ""):
    """prepare(case folder) -> KERAS_HOME or TMPDIR of `kind`, as a context manager."""

    @contextlib.contextmanager
    def prepare(folder: Path):
        if kind == "file":
            (folder / "a-file").write_text("not a folder\n")
            yield {variable: str(folder / "a-file" / sub) if sub else str(folder / "a-file")}
        elif kind == "missing":
            yield {variable: str(folder / "does" / "not" / "exist")}
        else:
            settings = {
                "read-only": dict(read_only=True),
                "full": dict(fill=True),
                "nearly-full": dict(fill=True, leave=LEFT),
                "corrupt-cache-read-only": dict(read_only=True, contents=_corrupt_cache),
            }[kind]
            with tmpfs(folder, **settings) as mount:
                yield {variable: str(mount)}

    return prepare


def _corrupt_cache(mount: Path) -> None:
    (mount / "datasets").mkdir()
    (mount / "datasets" / "imdb.npz").write_bytes(b"PK\x03\x04 truncated download")


SMALL_BENCH = ["bench", "--device", "cpu", "--impl", "torch-sparse", "--limit", "10",
               "--epochs", "1"]  # fmt: skip
ALLREDUCE = ["allreduce", "--backend", "gloo", "--size", "4K"]
CACHE_FAIL = "the dataset cache cannot be used: FAIL dataset_cache_unwritable with the fix"
FALLBACK = "no usable dataset cache: the benchmark says so and uses the synthetic set (exit 0)"
TMP_FALLBACK = "TMPDIR unusable: Python's tempfile uses /tmp; the run works, /tmp stays clean"

CASES = [
    # KERAS_HOME: `dlcheck` tests that the cache is writable, not only its free space
    ProcessCase("check-keras-home-read-only", ["--json"], 1, CACHE_FAIL,
                prepare=environ("KERAS_HOME", "read-only")),  # fmt: skip
    ProcessCase("check-keras-home-full", ["--json"], 1,
                "under 256 MiB free for the dataset cache: FAIL disk_dataset_cache",
                prepare=environ("KERAS_HOME", "full")),  # fmt: skip
    ProcessCase("check-keras-home-file", ["--json"], 1, CACHE_FAIL,
                prepare=environ("KERAS_HOME", "file")),  # fmt: skip
    ProcessCase("check-keras-home-under-a-file", ["-v"], 1, CACHE_FAIL,
                prepare=environ("KERAS_HOME", "file", "sub")),  # fmt: skip
    ProcessCase("check-keras-home-missing", ["--json"], 0,
                "a cache folder that does not exist yet but can be made is fine",
                prepare=environ("KERAS_HOME", "missing")),  # fmt: skip
    ProcessCase("bench-keras-home-read-only", [*SMALL_BENCH, "--json"], 0, FALLBACK,
                prepare=environ("KERAS_HOME", "read-only"), cost=5),  # fmt: skip
    ProcessCase("bench-keras-home-file", SMALL_BENCH, 0, FALLBACK,
                prepare=environ("KERAS_HOME", "file"), cost=5),  # fmt: skip
    ProcessCase("bench-keras-home-full", [*SMALL_BENCH, "--json"], 0, FALLBACK,
                prepare=environ("KERAS_HOME", "full"), cost=5),  # fmt: skip
    ProcessCase("bench-keras-home-corrupt-read-only", [*SMALL_BENCH, "--json"], 0,
                "a corrupt cached imdb.npz on a read-only cache: not used, synthetic instead",
                prepare=environ("KERAS_HOME", "corrupt-cache-read-only"), cost=5),  # fmt: skip
    # TMPDIR: the probes', the benchmark's and the ranks' working folders
    *(ProcessCase(f"check-tmpdir-{kind}", ["--json"], 0, TMP_FALLBACK,
                  prepare=environ("TMPDIR", kind))  # fmt: skip
      for kind in ("read-only", "full", "file", "missing")),
    ProcessCase("check-tmpdir-nearly-full", ["--json"], 1,
                "not every probe can write its answer: those frameworks could not be checked",
                prepare=environ("TMPDIR", "nearly-full")),  # fmt: skip
    ProcessCase("bench-tmpdir-nearly-full", [*SMALL_BENCH, "--json"], 1,
                "the prepared data set does not fit: one line, exit 1, nothing left",
                prepare=environ("TMPDIR", "nearly-full"), cost=2),  # fmt: skip
    ProcessCase("bench-tmpdir-read-only", [*SMALL_BENCH, "--json"], 0, TMP_FALLBACK,
                prepare=environ("TMPDIR", "read-only"), cost=5),  # fmt: skip
    ProcessCase("allreduce-tmpdir-nearly-full", [*ALLREDUCE, "--json"], 1,
                "the ranks cannot write their results: FAIL, one line",
                prepare=environ("TMPDIR", "nearly-full"), cost=5),  # fmt: skip
    ProcessCase("allreduce-tmpdir-file", [*ALLREDUCE, "--json"], 0, TMP_FALLBACK,
                prepare=environ("TMPDIR", "file"), cost=5),  # fmt: skip
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_unusable_cache_and_temp_folders(case, run_case):
    outcome = run_case(case)
    judge(outcome, case.code, case.schema)
    if "keras-home" in case.id and case.code == 1:
        assert "KERAS_HOME" in outcome.stdout, "the fix names KERAS_HOME"
    if case.id.startswith("bench-keras-home"):
        assert "synthetic" in outcome.stdout, outcome.stdout[-2000:]
