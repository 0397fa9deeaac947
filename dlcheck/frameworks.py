"""The frameworks dlcheck knows, and their probes: each in its own child process, all at once.

REGISTRY is the one list of frameworks: adding one means an entry here and its `probe_<name>`
function in probes/probe.py. The parent never imports a framework: a probe that crashes, hangs
or prints noise cannot take the CLI down. Each child prints one JSON document on stdout;
`ProbeResult.from_child` validates it at this edge.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from dlcheck import children
from dlcheck.text import clean

DEFAULT_TIMEOUT = 120.0  # seconds; TensorFlow alone takes ~10 s to import on a 2-core machine


@dataclass(frozen=True)
class Framework:
    name: str  # import name, probe name, key in reports
    label: str  # what people call it
    cpu_install: str  # pip arguments for a CPU-only machine
    extra: str  # the dlcheck extra that brings it
    backend_of: bool = False  # keras: runs on another framework, judged through its backend


REGISTRY: dict[str, Framework] = {
    f.name: f
    for f in (
        Framework("torch", "PyTorch", "torch --index-url https://download.pytorch.org/whl/cpu",
                  "torch"),  # fmt: skip
        Framework("tensorflow", "TensorFlow", "tensorflow-cpu", "tensorflow"),
        Framework("keras", "Keras", "'keras>=3'", "keras", backend_of=True),
        Framework("jax", "JAX", "jax", "jax"),
    )
}
FRAMEWORKS = tuple(REGISTRY)


@dataclass(frozen=True)
class ProbeRun:
    """How the probe child ended: ok | error (it answered with an error) | timeout | crashed |
    failed (could not start) | not_run."""

    status: str = "not_run"
    seconds: float | None = None
    stderr_tail: str | None = None

    @property
    def answered(self) -> bool:
        return self.status in ("ok", "error")


@dataclass(frozen=True)
class Device:
    index: int
    name: str | None
    capability: str | None
    matmul: dict[str, Any] | None  # {"ok", "max_abs_error", "error"}


@dataclass(frozen=True)
class ProbeResult:
    """What one framework's probe found. `installed` None: unknown (the probe did not answer)."""

    name: str
    installed: bool | None = False
    version: str | None = None
    cuda: str | None = None
    cuda_build: bool | None = None
    cudnn: str | None = None
    cudnn_built: str | None = None
    is_available: bool | None = None
    gpu_count: int | None = None
    arch_list: list[str] | None = None
    devices: list[Device] | None = None
    error: str | None = None
    probe: ProbeRun = field(default_factory=ProbeRun)
    # Keras only: the backend it resolved, from where, and why it failed to load
    backend: str | None = None
    backend_source: str | None = None
    backend_error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # other keys the probe reported

    @property
    def label(self) -> str:
        known = REGISTRY.get(self.name)
        return known.label if known else self.name

    def to_dict(self) -> dict[str, Any]:
        record = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        del record["name"]
        record["probe"] = vars(self.probe)
        if self.devices is not None:
            record["devices"] = [vars(d) for d in self.devices]
        if not REGISTRY.get(self.name, Framework("", "", "", "")).backend_of:
            for key in ("backend", "backend_source", "backend_error"):
                del record[key]
        return {**self.extra, **record}

    @classmethod
    def from_child(cls, name: str, result: children.ChildResult, limit: float | None = None
                   ) -> ProbeResult:  # fmt: skip
        """The child's document, checked field by field; anything off is a crashed probe."""
        run = ProbeRun(result.status, result.seconds, result.stderr_tail)
        crashed = ProbeRun("crashed", result.seconds, result.stderr_tail)
        if result.status == "timeout":
            waited = f"{limit:g}" if limit is not None else f"{result.seconds:.0f}"
            error = f"probe did not answer within {waited} s and was stopped"
            return cls(name, installed=None, probe=run, error=error)
        doc = result.document
        if result.error or not isinstance(doc, dict):
            error = clean(f"probe {result.error or 'printed no JSON object'}", 300)
            return cls(name, installed=None, probe=crashed, error=error)
        try:
            values = _typed(doc)
        except (TypeError, ValueError) as problem:
            error = f"probe answered with a malformed document: {problem}"
            return cls(name, installed=None, probe=crashed, error=error)
        status = "error" if values.get("error") else "ok"
        known = {f.name for f in fields(cls)} - {"name", "probe", "extra"}
        extra = {k: v for k, v in doc.items() if k not in known}
        return cls(name, probe=ProbeRun(status, run.seconds, run.stderr_tail), extra=extra,
                   **{k: v for k, v in values.items() if k in known})  # fmt: skip


_TEXT = ("version", "cuda", "cudnn", "cudnn_built", "error", "backend", "backend_source",
         "backend_error")  # fmt: skip
_FLAGS = ("installed", "cuda_build", "is_available")


def _typed(doc: dict[str, Any]) -> dict[str, Any]:
    """The probe document's known keys with their types checked; strings cleaned."""
    values: dict[str, Any] = {}
    for key in _TEXT:
        if doc.get(key) is not None:
            values[key] = clean(_need(doc[key], (str, int, float), key), 500)
    for key in _FLAGS:
        if doc.get(key) is not None:
            values[key] = bool(_need(doc[key], (bool, int), key))
    if doc.get("gpu_count") is not None:
        values["gpu_count"] = int(_need(doc["gpu_count"], (int,), "gpu_count"))
    if doc.get("arch_list") is not None:
        values["arch_list"] = [clean(a, 32) for a in _need(doc["arch_list"], (list,), "arch_list")]
    if doc.get("devices") is not None:
        values["devices"] = [_device(d) for d in _need(doc["devices"], (list,), "devices")]
    return values


def _device(doc: Any) -> Device:
    doc = _need(doc, (dict,), "devices[]")
    matmul = doc.get("matmul")
    return Device(
        index=int(_need(doc.get("index"), (int,), "devices[].index")),
        name=clean(doc["name"], 128) if doc.get("name") is not None else None,
        capability=clean(doc["capability"], 16) if doc.get("capability") is not None else None,
        matmul=_need(matmul, (dict,), "devices[].matmul") if matmul is not None else None,
    )


def _need(value: Any, types: tuple[type, ...], key: str) -> Any:
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise TypeError(f"{key} is {type(value).__name__}")
    return value


def probe_command(name: str) -> list[str]:
    """The child's argv. Tests replace this (the child-process boundary) with a fake probe."""
    return [sys.executable, "-m", "dlcheck.probes.probe", name]


@dataclass
class Probes:
    """Probe children started together, with the time they started."""

    names: tuple[str, ...]
    running: dict[str, children.Child]
    failed: dict[str, ProbeResult]
    started: float


def start_probes(scratch: Path, names: tuple[str, ...] = FRAMEWORKS) -> Probes:
    env = _child_env(scratch)
    running, failed = {}, {}
    for name in names:
        try:
            running[name] = children.start(probe_command(name), workdir=scratch, name=name,
                                           env=env)  # fmt: skip
        except children.ChildError as error:
            failed[name] = ProbeResult(name, installed=None, error=str(error),
                                       probe=ProbeRun("failed"))  # fmt: skip
    return Probes(names, running, failed, time.monotonic())


def wait_probes(probes: Probes, timeout: float) -> dict[str, ProbeResult]:
    """Wait for all, up to `timeout` seconds after they started; stop the stragglers."""
    deadline = probes.started + timeout
    results = dict(probes.failed)
    for name, child in probes.running.items():
        results[name] = ProbeResult.from_child(name, child.wait(deadline), timeout)
    return {name: results[name] for name in probes.names}


def stop_probes(probes: Probes) -> None:
    for child in probes.running.values():
        child.wait(0)


def run_probes(names: tuple[str, ...] = FRAMEWORKS, timeout: float = DEFAULT_TIMEOUT
               ) -> dict[str, ProbeResult]:  # fmt: skip
    """Start every probe, wait for all up to `timeout` seconds in total, stop the stragglers."""
    with children.scratch("probe") as scratch:
        return wait_probes(start_probes(scratch, names), timeout)


def _child_env(scratch: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # warnings are evidence (dlopen failures)
    # Keras writes keras.json on first import: give it a scratch KERAS_HOME that holds a copy
    # of the user's config, so it decides exactly as it would for them and writes nothing of theirs.
    user_home = Path(os.environ.get("KERAS_HOME") or os.path.expanduser("~/.keras"))
    keras_home = scratch / "keras-home"
    keras_home.mkdir()
    try:
        shutil.copy(user_home / "keras.json", keras_home / "keras.json")
    except OSError:  # none yet, unreadable, or KERAS_HOME is not a folder
        pass
    env["KERAS_HOME"] = str(keras_home)
    env["DLCHECK_USER_KERAS_HOME"] = str(user_home)
    return env
