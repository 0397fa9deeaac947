"""The machine around the GPU: dataset cache, RAM for the benchmark, CUDA-slowing variables, WSL."""

from __future__ import annotations

from dataclasses import asdict

from dlcheck.facts import Facts
from dlcheck.models import CheckResult, Status

PASS, INFO, WARN, FAIL = Status.PASS, Status.INFO, Status.WARN, Status.FAIL

# The benchmark holds 25000 x 10000 float32 per split (train, test): ~1 GB each.
BENCH_RAM_MIB = 2 * 25000 * 10000 * 4 // (1024 * 1024)
DATASET_DISK_WARN_MIB = 1024  # IMDB archive + extracted text + the .npz cache, with headroom
DATASET_DISK_FAIL_MIB = 256


def checks(facts: Facts) -> list[CheckResult]:
    cache = _dataset_cache(facts)
    results = [cache] if cache else []
    memory = facts.system.memory
    total, available = memory.total_mib, memory.available_mib
    if total is not None:
        if total < BENCH_RAM_MIB:
            status, msg = FAIL, f"{total} MiB RAM in total; the benchmark needs ~{BENCH_RAM_MIB}."
        elif available is not None and available < BENCH_RAM_MIB:
            status = WARN
            msg = f"{available} MiB RAM available; the benchmark needs ~{BENCH_RAM_MIB}."
        else:
            status, msg = PASS, f"{available} MiB RAM available of {total} MiB."
        fix = None if status is PASS else "Close memory-hungry programs, or use a larger machine."
        results.append(CheckResult("ram_for_benchmark", status, msg, fix,
                                   {**asdict(memory), "needed_mib": BENCH_RAM_MIB}))  # fmt: skip
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
