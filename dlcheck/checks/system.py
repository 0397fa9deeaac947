"""The machine around the GPU: dataset cache, RAM for the benchmark, CUDA-slowing variables, WSL."""

from __future__ import annotations

from dataclasses import asdict

from dlcheck.facts import Facts
from dlcheck.models import CheckResult, Status

PASS, INFO, WARN, FAIL = Status.PASS, Status.INFO, Status.WARN, Status.FAIL

DATASET_DISK_WARN_MIB = 1024  # IMDB archive + extracted text + the .npz cache, with headroom
DATASET_DISK_FAIL_MIB = 256


def checks(facts: Facts) -> list[CheckResult]:
    cache = _dataset_cache(facts)
    results = [cache] if cache else []
    ram = _ram_for_benchmark(facts)
    if ram is not None:
        results.append(ram)
    for variable, value in facts.env.performance_vars.items():
        results.append(CheckResult(
            "performance_env_var", WARN,
            f"{variable}={value} slows CUDA down or changes its behaviour.",
            f"unset {variable}", {variable: value},
        ))  # fmt: skip
    virt = facts.system.virtualization
    if virt.wsl:
        results.append(CheckResult(
            "wsl", INFO, "Running under WSL: the Windows NVIDIA driver serves CUDA.",
            "Keep /usr/lib/wsl/lib on LD_LIBRARY_PATH; never install a Linux driver inside WSL.",
            asdict(virt),
        ))  # fmt: skip
    return results


def _ram_for_benchmark(facts: Facts) -> CheckResult | None:
    """Each benchmark implementation against the peak RAM its child was measured to need
    (bench/impls.py): the ones that cannot fit are named, with the run that leaves them out."""
    from dlcheck.bench.impls import IMPLS

    memory = facts.system.memory
    if memory.total_mib is None:
        return None
    available = memory.available_mib if memory.available_mib is not None else memory.total_mib
    runnable = [i for i in IMPLS.values() if _installed(facts, i.needs)]
    if not runnable:
        return None
    short = [i for i in runnable if i.peak_ram_mib > available]
    evidence = {**asdict(memory), "peaks_mib": {i.name: i.peak_ram_mib for i in runnable}}
    if not short:
        largest = max(i.peak_ram_mib for i in runnable)
        message = (f"{available} MiB RAM available of {memory.total_mib} MiB; the benchmark's "
                   f"largest child needs ~{largest}.")  # fmt: skip
        return CheckResult("ram_for_benchmark", PASS, message, None, evidence)
    fits = [i.name for i in runnable if i not in short]
    status = FAIL if not fits and all(i.peak_ram_mib > memory.total_mib for i in short) else WARN
    names = ", ".join(f"{i.name} (~{i.peak_ram_mib} MiB)" for i in short)
    fix = (f"dlcheck bench --impl {','.join(fits)}   # leaves out what does not fit; or close "
           "memory-hungry programs" if fits else "Use a machine with more RAM.")  # fmt: skip
    return CheckResult("ram_for_benchmark", status,
                       f"{available} MiB RAM available: not enough for {names} of the benchmark.",
                       fix, evidence)  # fmt: skip


def _installed(facts: Facts, modules: tuple[str, ...]) -> bool:
    if facts.frameworks is None:  # not probed: assume the user means to run it
        return True
    return all(facts.frameworks.get(m) is None or facts.frameworks[m].installed is not False
               for m in modules)  # fmt: skip


def _dataset_cache(facts: Facts) -> CheckResult | None:
    cache = facts.system.disk.dataset_cache
    if cache.problem:
        return CheckResult(
            "dataset_cache_unwritable", FAIL,
            f"The dataset cache {cache.path} cannot be used: {cache.problem}.",
            "export KERAS_HOME=$HOME/.keras   # any writable folder with >= "
            f"{DATASET_DISK_WARN_MIB} MiB free; or fix its owner/mount",
            asdict(cache),
        )  # fmt: skip
    free = cache.free_mib
    if free is None:
        return None
    status = PASS
    if free < DATASET_DISK_WARN_MIB:
        status = FAIL if free < DATASET_DISK_FAIL_MIB else WARN
    fix = None if status is PASS else (
        f"Free space there, or point KERAS_HOME at a bigger disk (needs >= "
        f"{DATASET_DISK_WARN_MIB} MiB)."
    )  # fmt: skip
    return CheckResult("disk_dataset_cache", status,
                       f"{free} MiB free for the dataset cache ({cache.path}), writable.", fix,
                       asdict(cache))  # fmt: skip
