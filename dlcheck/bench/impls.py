"""The benchmark's implementations: the one list. Adding one means an entry here (and its
`run(spec) -> Outcome dict` function in its own module)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path


@dataclass(frozen=True)
class Impl:
    name: str
    label: str  # the table's name for it
    entry: str  # "module:function" the child runs
    needs: tuple[str, ...]  # modules it imports (besides its Keras backend)
    extra: str  # the dlcheck extra that brings them: pip install 'dlcheck[EXTRA]'
    expected_gpu_speedup: float  # a GPU row below this WARNs (never FAILs)
    peak_ram_mib: int  # the child's peak RSS on the book's configuration, measured (bench.md)
    marker: str  # plot marker


IMPLS: dict[str, Impl] = {
    i.name: i
    for i in (
        Impl("keras", "keras (book code, fit)", "dlcheck.bench.keras_impl:run", ("keras",),
             "keras", 1.0, 5600, "o"),
        Impl("torch", "torch (native, dense)", "dlcheck.bench.torch_impl:run", ("torch",),
             "torch", 2.0, 2300, "s"),
        Impl("torch-sparse", "torch-sparse (word indices)", "dlcheck.bench.torch_impl:run",
             ("torch",), "torch", 1.0, 700, "x"),
    )
}  # fmt: skip


def keras_backend() -> str:
    """The backend Keras will pick, read as Keras reads it (env, then keras.json), unimported."""
    chosen = os.environ.get("KERAS_BACKEND")
    if chosen:
        return chosen
    home = os.environ.get("KERAS_HOME") or os.path.expanduser("~/.keras")
    try:
        backend = json.loads((Path(home) / "keras.json").read_text()).get("backend")
    except (OSError, ValueError, AttributeError):
        backend = None
    return backend if isinstance(backend, str) and backend else "tensorflow"


def missing_modules(impl: Impl) -> list[str]:
    """What `impl` needs that this interpreter cannot import (found without importing it)."""
    needs = list(impl.needs)
    if impl.name == "keras":
        needs.append(keras_backend())
    return [name for name in needs if find_spec(name) is None]
