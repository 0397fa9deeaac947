"""`dlcheck bench`: options in, a Report out. Prerequisites first, then data, children, verdicts."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from dlcheck import prometheus
from dlcheck.bench.impls import IMPLS
from dlcheck.bench.protocol import VALIDATION
from dlcheck.commands.common import (
    Failure,
    FiniteFloat,
    UsablePath,
    apply_nvml_timeout,
    command,
    nvml_timeout_option,
)
from dlcheck.models import ExitCode, Report, Status, envelope_status
from dlcheck.prometheus import prometheus_option

HELP = """Time the IMDB review classifier of Deep Learning with Python (ch. 3/4)
on the CPU and the GPU, in three implementations:

\b
  keras         the book's code on Keras 3 (the backend Keras resolves): what
                everyday Keras code gets
  torch         the same network and RMSprop math in native PyTorch, data
                resident on the device: what the hardware can do
  torch-sparse  the same function computed from word indices (EmbeddingBag)

Each (implementation, device) pair runs in its own child process, one after
another; a crash or hang is reported as a FAIL row. Data: Keras's imdb.npz
from its cache ($KERAS_HOME/datasets or ~/.keras/datasets), downloaded if
missing; without network an IMDB-shaped synthetic set is used and labelled.

\b
Memory: the dense rows need the multi-hot matrices in float32,
25000 x 10000 x 4 B = about 1 GB per split (train and test: about 2 GB; the
keras child peaked at 5.6 GB, torch at 2.3 GB); torch-sparse peaked at 0.7 GB.
"""


@dataclass(frozen=True)
class BenchOptions:
    device: str = "all"  # cpu | gpu | all
    impls: tuple[str, ...] = tuple(IMPLS)
    epochs: int = 4
    batch_size: int = 512
    protocol: str = "quick"
    data_path: str | None = None
    synthetic: bool = False
    seed: int = 0
    timeout: float = 900.0
    limit: int | None = None
    threads: int = 0
    plot_path: str | None = None
    perf_path: str | None = None  # a `dlcheck perf --json` of this host: GPU throughput

    @property
    def book_config(self) -> bool:
        return self.epochs == 4 and self.batch_size == 512 and not self.limit


@dataclass(frozen=True)
class Machine:
    """What the numbers were measured on (the plot's caption, the JSON's `machine`)."""

    host: str
    cpu: str | None
    logical_cores: int | None
    available_ram_mib: int | None
    gpu: str | None  # the benchmarked GPU's name
    driver: str | None
    started_at: str  # ISO 8601, local time with offset


@dataclass(frozen=True)
class BenchReport:
    dataset: Any  # bench.data.Dataset (its name, source, sha256, synthetic flag)
    options: BenchOptions
    machine: Machine
    threads: int
    load_average_before: float | None
    rows: list  # list[bench.verdicts.JudgedRow]
    speedup: dict[str, float | None]
    notes: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    exit_code: ExitCode = ExitCode.READY
    gpu_throughput: list = field(default_factory=list)  # dlcheck.perf.fleet.gpu_throughput rows

    def to_dict(self) -> dict[str, Any]:
        from dlcheck.bench import verdicts

        options, data = self.options, self.dataset
        return {
            "synthetic": data.synthetic,
            "dataset": data.name,
            "source": data.source,
            "sha256": data.sha256,
            "protocol": options.protocol,
            "config": {
                "epochs": options.epochs,
                "batch_size": options.batch_size,
                "seed": options.seed,
                "optimizer": "rmsprop lr=1e-3 rho=0.9 eps=1e-7",
                "threads": self.threads,
                "timeout_s": options.timeout,
                "accuracy_band": verdicts.band_for(data.synthetic, options.book_config),
                "train_reviews": len(data.train),
                "test_reviews": len(data.test),
            },
            "machine": self.machine,
            "load_average_before": self.load_average_before,
            "data_prep_s": data.seconds,
            "results": self.rows,
            "speedup": self.speedup,
            "notes": self.notes,
            "wall_s": self.wall_s,
            "exit_code": int(self.exit_code),
            "gpu_throughput": self.gpu_throughput,
        }


def check_prerequisites(options: BenchOptions) -> None:
    """Everything that can be known before any work: exit 2 with the install line."""
    from dlcheck.bench.impls import missing_modules

    for name in options.impls:
        missing = missing_modules(IMPLS[name])
        if missing:
            raise click.UsageError(
                f"--impl {name} needs {', '.join(missing)}, which this Python cannot import. "
                f"Fix: pip install 'dlcheck[{IMPLS[name].extra}]'"
                + (f" {' '.join(missing)}" if name == "keras" else "")
                + f", or leave it out: --impl {','.join(i for i in options.impls if i != name)}"
            )
    if options.plot_path:
        from importlib.util import find_spec

        if find_spec("matplotlib") is None:
            raise click.UsageError("--plot needs matplotlib. Fix: pip install 'dlcheck[plot]'")
        from dlcheck.system import folder_problem

        target = Path(options.plot_path)
        problem = "it is a folder" if target.is_dir() else folder_problem(target.parent)
        if problem:
            raise click.UsageError(f"--plot {options.plot_path}: cannot write there ({problem})")


def build(options: BenchOptions, progress=None) -> Report:
    from dlcheck.bench import data as data_mod
    from dlcheck.bench import runner, verdicts
    from dlcheck.bench.protocol import Spec

    check_prerequisites(options)
    throughput = _perf_report(options.perf_path)
    started = time.perf_counter()
    started_at = datetime.now().astimezone().isoformat(timespec="seconds")
    notes: list[str] = []
    say = progress.say if progress else (lambda message: None)

    devices, hung = ["cpu"], None
    if options.device != "cpu":  # --device cpu never touches NVML
        gpus, why_none, hung = gpu_devices()
        if hung:
            say(f"FAIL nvml_not_responding: {hung}")
        if options.device == "gpu" and not gpus:
            code = ExitCode.NOT_READY if hung else ExitCode.CPU_ONLY
            raise Failure(f"bench: no NVIDIA GPU to benchmark ({why_none}).", code)
        devices = gpus[:1] if options.device == "gpu" else ["cpu", *gpus[:1]]
        if not gpus:
            notes.append(f"CPU only: {why_none}; speedups need a GPU")
            say(f"no GPU rows: {why_none}")

    dataset = _load_data(data_mod, options, notes, say)
    if options.limit:
        dataset.train = dataset.train.head(options.limit)
        dataset.test = dataset.test.head(options.limit)
        notes.append(f"only the first {options.limit} training and test reviews (--limit)")
    say(f"data: {dataset.name} ({dataset.source}) ready in {dataset.seconds:.1f} s")

    machine = _machine(devices, started_at)
    for warning in _ram_warnings(options, machine.available_ram_mib):
        notes.append(warning)
        say(warning)
    load = _load_average()
    cores = runner.cpu_threads()
    threads = options.threads or runner.default_threads(load)
    if load is not None and load > 0.5 * cores:
        notes.append(
            f"the machine was busy before the run (load average {load:.1f} on {cores} "
            f"cores; children use {threads} thread(s)): epoch times are noisy; rerun on an "
            "idle machine for numbers to keep"
        )
    specs = [
        Spec(impl=impl, device=device, prepared="", epochs=options.epochs,
             batch_size=options.batch_size, protocol=options.protocol, seed=options.seed,
             threads=threads, batch_thread=runner.batch_thread(threads))
        for device in devices
        for impl in options.impls
    ]  # fmt: skip
    try:
        runs = runner.run_all(dataset, specs, options.timeout, progress)
    except OSError as error:  # the prepared data could not be written (a full TMPDIR)
        raise Failure(
            f"bench: cannot write its working files: {error.strerror or error} "
            "(set TMPDIR to a folder with a few GB free)"
        ) from None
    rows, speedups = verdicts.judge(runs, dataset.synthetic, options.book_config)
    notes.append(f"every implementation had the same budget of {threads} CPU thread(s); "
                 "the threads column shows what each used")
    if not options.book_config:
        notes.append("not the book's configuration (4 epochs, batch 512): no accuracy band")
    notes.extend(_relative_to_keras(rows))
    notes.extend(_against_perf(rows, throughput))
    notes.append("a PASS covers only these checks; it is not a general statement of GPU health")
    status = envelope_status(r.verdict for r in rows)
    errors = [f"{r.impl} on {r.device}: {r.run.error}" for r in rows if r.run.error]
    if hung:  # the GPU rows could not even be attempted: the machine is not ready
        status = Status.FAIL
        errors.insert(0, f"nvml_not_responding: {hung}")
    code = ExitCode.NOT_READY if status is Status.FAIL else ExitCode.READY
    result = BenchReport(dataset, options, machine, threads, load, rows, speedups, notes,
                         time.perf_counter() - started, code, throughput)  # fmt: skip
    if options.plot_path:
        from dlcheck.bench import plot

        try:
            plot.write(result, options.plot_path)
            say(f"plot written to {options.plot_path}")
        except (ImportError, OSError, ValueError) as error:
            errors.append(f"plot: cannot write {options.plot_path}: {error}")
            code = ExitCode.NOT_READY
            result = BenchReport(dataset, options, machine, threads, load, rows, speedups,
                                 notes, result.wall_s, code, throughput)  # fmt: skip
    return Report("bench", result, code, status, tuple(errors))


def _perf_report(path: str | None) -> list:
    """The GPUs' measured throughput from a `dlcheck perf --json` file, checked like any report."""
    if path is None:
        return []
    from dlcheck.fleet import ReportError, read_report
    from dlcheck.perf.fleet import gpu_throughput

    try:
        body = read_report(Path(path), "perf")
    except ReportError as error:
        raise click.UsageError(f"--perf {path}: {error}") from None
    if body is None:
        raise click.UsageError(f"--perf {path}: no such file (`dlcheck perf --json > FILE`)")
    return gpu_throughput(body)


def _against_perf(rows, throughput: list) -> list[str]:
    """Each GPU row's model rate next to what `dlcheck perf` measured the GPU can do."""
    notes = []
    for row in rows:
        if row.device == "cpu" or row.summary.gflops is None:
            continue
        index = int(row.device.split(":")[1])
        gpu = next((g for g in throughput if g.get("index") == index), None)
        if gpu is None or not gpu.get("matmul"):
            continue
        peak = gpu["matmul"]["tflops"] * 1000
        notes.append(
            f"{row.impl} on {row.device}: {row.summary.gflops:,.0f} GFLOP/s dense-equivalent, "
            f"{row.summary.gflops / peak:.2%} of the {peak:,.0f} GFLOP/s dlcheck perf measured "
            f"({gpu['matmul']['test']}): a network this small is bound by launches and copies"
        )
    return notes


def _machine(devices: list[str], started_at: str) -> Machine:
    from dlcheck import system

    facts = system.collect()
    gpu_name = driver = None
    if any(d != "cpu" for d in devices):  # NVML answered a moment ago
        from dlcheck import gpu as gpu_module

        inventory = gpu_module.collect(select=(devices[-1].split(":")[1],))
        gpu_name = inventory.gpus[0]["name"] if inventory.gpus else None
        driver = inventory.driver.version
    return Machine(system.hostname(), facts.cpu.model, facts.cpu.logical_cores,
                   facts.memory.available_mib, gpu_name, driver, started_at)  # fmt: skip


def _ram_warnings(options: BenchOptions, available_mib: int | None) -> list[str]:
    """Implementations whose measured peak (bench/impls.py) will not fit the free RAM."""
    if available_mib is None:
        return []
    share = (options.limit or 25000) / 25000  # the dense matrices scale with the reviews
    warnings = []
    for name in options.impls:
        needed = int(IMPLS[name].peak_ram_mib * share)
        if needed > available_mib:
            others = ",".join(i for i in options.impls if i != name) or "torch-sparse"
            warnings.append(
                f"{name} peaked at about {needed} MiB of RAM here before, and {available_mib} MiB "
                f"are available: it may be killed (out of memory); --impl {others} leaves it out"
            )
    return warnings


def gpu_devices() -> tuple[list[str], str, str | None]:
    """cuda:N names for the usable NVIDIA GPUs, why there are none, and the diagnosis with its
    fix when the driver hangs. The inventory `dlcheck gpu` shows, not just the count: a driver
    that hangs on a health query (temperature, ECC) hangs a benchmark too, and a lost GPU is
    not benchmarked."""
    from dlcheck import gpu
    from dlcheck.checks.driver import HUNG_DRIVER_FIX

    inventory = gpu.collect()
    state = inventory.nvml
    if state.error == "not_responding":
        hung = f"the NVIDIA driver does not respond ({state.detail}). Fix: {HUNG_DRIVER_FIX}"
        return [], "the NVIDIA driver does not respond", hung
    if state.error and not inventory.gpus:
        return [], f"NVML unavailable ({state.error})", None
    if not inventory.usable:
        lost = ", ".join(f"GPU {g['index']} {g['error']}" for g in inventory.gpus)
        return [], f"no usable GPU ({lost})" if lost else "NVML reports no GPUs", None
    return [f"cuda:{g['index']}" for g in inventory.usable], "", None


def _relative_to_keras(rows) -> list[str]:
    """Same-device comparisons: how much the native implementations beat the book's code."""
    notes = []
    for device in dict.fromkeys(r.device for r in rows):
        on = {r.impl: r.summary.median_epoch_s for r in rows if r.device == device}
        keras = on.get("keras")
        faster = [
            f"{impl} {keras / on[impl]:.1f}x"
            for impl in ("torch", "torch-sparse")
            if keras and on.get(impl)
        ]
        if faster:
            notes.append(f"on {device}, median epoch vs keras: {', '.join(faster)} faster")
    return notes


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def _load_data(data_mod, options: BenchOptions, notes: list[str], say):
    try:
        if options.synthetic:
            notes.append("synthetic data requested (--synthetic/--offline)")
            return data_mod.synthetic(seed=options.seed)
        if options.data_path:
            return data_mod.load_real(options.data_path)
        try:
            return data_mod.load_real()
        except data_mod.DataError as error:
            say(f"real IMDB unavailable ({error}); using synthetic data")
            notes.append(f"real IMDB unavailable, fell back to synthetic data: {error}")
            return data_mod.synthetic(seed=options.seed)
    except data_mod.DataError as error:
        raise Failure(f"bench: {error}") from None


class _Choices(click.ParamType):
    """A comma-separated subset of fixed names."""

    name = "list"

    def __init__(self, choices):
        self.choices = choices

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        names = tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
        unknown = [n for n in names if n not in self.choices]
        if unknown or not names:
            self.fail(
                f"{', '.join(unknown) or 'nothing'}: choose from {', '.join(self.choices)}",
                param,
                ctx,
            )
        return names


@command("bench", renderer="dlcheck.render.bench:render", help=HELP)
@click.option(
    "--device",
    type=click.Choice(["cpu", "gpu", "all"]),
    default="all",
    show_default=True,
    help="cpu, the first GPU (gpu), or both (all: the GPU only when one is present).",
)
@click.option(
    "--impl",
    "impls",
    type=_Choices(tuple(IMPLS)),
    default=",".join(IMPLS),
    show_default=True,
    help="Comma-separated implementations.",
)
@click.option(
    "--epochs",
    type=click.IntRange(min=1, max=1000),
    default=4,
    show_default=True,
    help="Timed training epochs on all 25000 reviews (the book: 4).",
)
@click.option("--batch-size", type=click.IntRange(min=1, max=25000), default=512,
              show_default=True)  # fmt: skip
@click.option(
    "--protocol",
    type=click.Choice(["quick", "book"]),
    default="quick",
    show_default=True,
    help="quick: the 4-epoch retrain and test evaluation. book: first the 20-epoch run "
    "with 10000 reviews held out for validation (the overfitting curves), then quick.",
)
@click.option(
    "--data",
    "data_path",
    type=UsablePath(dir_okay=False),
    help="An imdb.npz fetched elsewhere (air-gapped sites); its sha256 is checked.",
)
@click.option(
    "--synthetic",
    "--offline",
    "synthetic",
    is_flag=True,
    help="Use the synthetic IMDB-shaped data set; no download attempt.",
)
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Weights, shuffles, data.")  # fmt: skip
@click.option(
    "--timeout",
    type=FiniteFloat(min=1, max=86400),
    default=900,
    show_default=True,
    envvar="DLCHECK_BENCH_TIMEOUT",
    help="Seconds one child may run before it is stopped and reported as FAIL "
    "[env DLCHECK_BENCH_TIMEOUT].",
)
@click.option(
    "--limit",
    type=click.IntRange(min=10, max=25000),
    hidden=True,
    help="Use only the first N training and N test reviews (smoke tests).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=0, max=1024),
    default=0,
    envvar="DLCHECK_BENCH_THREADS",
    help="The CPU thread budget of every child (default: the cores not already busy, i.e. "
    "cores minus the load average, at least 1). torch-sparse on the CPU uses two of them "
    "(one builds its batches) when the budget is 2 or more [env DLCHECK_BENCH_THREADS].",
)
@click.option(
    "--plot",
    "plot_path",
    type=UsablePath(dir_okay=False),
    help="Write loss/accuracy curves and CPU-vs-GPU epoch times to this PNG.",
)
@click.option(
    "--perf",
    "perf_path",
    type=click.Path(dir_okay=False),
    help="A `dlcheck perf --json` file of this host: GPU rows are set against the GPU's "
    "measured matmul throughput.",
)
@nvml_timeout_option
@prometheus_option
def bench(device, impls, epochs, batch_size, protocol, data_path, synthetic, seed, timeout,
          limit, threads, plot_path, perf_path, nvml_timeout, prometheus_path
          ) -> Report:  # fmt: skip
    if data_path and synthetic:
        raise click.UsageError("--data and --synthetic exclude each other: pick one data source")
    if plot_path and not plot_path.lower().endswith(".png"):
        raise click.UsageError(f"--plot {plot_path}: give a .png file name")
    if limit and protocol == "book" and limit <= VALIDATION:
        raise click.UsageError(f"--protocol book holds out {VALIDATION} reviews: --limit more")
    apply_nvml_timeout(nvml_timeout)
    from dlcheck.progress import RowProgress

    options = BenchOptions(device, impls, epochs, batch_size, protocol, data_path, synthetic,
                           seed, timeout, limit, threads, plot_path, perf_path)  # fmt: skip
    with RowProgress() as progress:
        report = build(options, progress)
    return prometheus.export(report, prometheus_path)
