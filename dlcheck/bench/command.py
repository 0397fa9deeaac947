"""`dlcheck bench`: parse options, get the data, run the children, judge, render."""

from __future__ import annotations

import os
import sys
import time

import click

from dlcheck.bench.protocol import VALIDATION
from dlcheck.models import ExitCode

IMPLS = ("keras", "torch", "torch-sparse")

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


@click.command("bench", help=HELP)
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
    type=_Choices(IMPLS),
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
@click.option(
    "--batch-size",
    type=click.IntRange(min=1, max=25000),
    default=512,
    show_default=True,
)
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
    type=click.Path(dir_okay=False),
    help="An imdb.npz fetched elsewhere (air-gapped sites); its sha256 is checked.",
)
@click.option(
    "--synthetic",
    "--offline",
    "synthetic",
    is_flag=True,
    help="Use the synthetic IMDB-shaped data set; no download attempt.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Weights, shuffles, data.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=900,
    show_default=True,
    help="Seconds one child may run before it is killed and reported as FAIL.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=10),
    hidden=True,
    help="Use only the first N training and N test reviews (smoke tests).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=0),
    default=0,
    help="CPU threads per child (default: the cores not already busy, i.e. cores minus "
    "the load average, at least 1). torch-sparse on the CPU builds its batches in a "
    "second thread whenever there are 2+ cores, unless this is 1.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the JSON envelope (command bench).")
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Write loss/accuracy curves and CPU-vs-GPU epoch times to this PNG.",
)
def bench(
    device, impls, epochs, batch_size, protocol, data_path, synthetic, seed, timeout, limit,
    threads, as_json, plot_path,
):  # fmt: skip
    from dlcheck.bench import data as data_mod
    from dlcheck.bench import report, runner, verdicts
    from dlcheck.bench.protocol import Spec

    if data_path and synthetic:
        raise click.UsageError("--data and --synthetic exclude each other: pick one data source")
    if plot_path and not plot_path.lower().endswith(".png"):
        raise click.UsageError(f"--plot {plot_path}: give a .png file name")
    started = time.perf_counter()
    notes: list[str] = []

    gpus, gpu_note = _gpu_devices()
    devices = {"cpu": ["cpu"], "gpu": gpus[:1], "all": ["cpu", *gpus[:1]]}[device]
    if device == "gpu" and not gpus:
        click.echo(f"dlcheck bench: no NVIDIA GPU to benchmark ({gpu_note}).", err=True)
        return ExitCode.CPU_ONLY
    if device == "all" and not gpus:
        notes.append(f"CPU only: {gpu_note}; speedups need a GPU")

    try:
        dataset = _load_data(data_mod, data_path, synthetic, seed, notes)
    except data_mod.DataError as error:
        click.echo(f"dlcheck bench: {error}", err=True)
        return ExitCode.NOT_READY
    if limit:
        if protocol == "book" and limit <= VALIDATION:
            raise click.UsageError(f"--protocol book holds out {VALIDATION} reviews: --limit more")
        dataset.train, dataset.test = dataset.train.head(limit), dataset.test.head(limit)
        notes.append(f"only the first {limit} training and test reviews (--limit)")
    _log(f"data: {dataset.name} ({dataset.source}) ready in {dataset.seconds:.1f} s")

    load = _load_average()
    cores = runner.cpu_threads()
    batch_thread = runner.batch_thread(threads)
    threads = threads or runner.default_threads(load)
    if load is not None and load > 0.5 * cores:
        notes.append(
            f"the machine was busy before the run (load average {load:.1f} on {cores} "
            f"cores; children use {threads} thread(s)): epoch times are noisy; rerun on an "
            "idle machine for numbers to keep"
        )
    specs = [
        Spec(
            impl=impl,
            device=dev,
            prepared="",
            epochs=epochs,
            batch_size=batch_size,
            protocol=protocol,
            seed=seed,
            threads=threads,
            batch_thread=batch_thread,
        )
        for dev in devices
        for impl in impls
    ]

    def progress(number, total, spec):
        _log(f"[{number}/{total}] {spec.impl} on {spec.device} ...")

    rows = runner.run_all(dataset, specs, timeout, progress)
    book_config = epochs == 4 and batch_size == 512 and not limit
    speedups = verdicts.apply(rows, dataset.synthetic, book_config)
    if not book_config:
        notes.append("not the book's configuration (4 epochs, batch 512): no accuracy band")
    notes.extend(_relative_to_keras(rows))
    notes.append("a PASS covers only these checks; it is not a general statement of GPU health")
    worst = "FAIL" if any(r["verdict"] == "FAIL" for r in rows) else (
        "WARN" if any(r["verdict"] == "WARN" for r in rows) else "PASS"
    )  # fmt: skip
    result = {
        "synthetic": dataset.synthetic,
        "dataset": dataset.name,
        "source": dataset.source,
        "sha256": dataset.sha256,
        "protocol": protocol,
        "config": {
            "epochs": epochs,
            "batch_size": batch_size,
            "seed": seed,
            "optimizer": "rmsprop lr=1e-3 rho=0.9 eps=1e-7",
            "threads": threads,
            "timeout_s": timeout,
            "accuracy_band": verdicts.band_for(dataset.synthetic, book_config),
            "train_reviews": len(dataset.train),
            "test_reviews": len(dataset.test),
        },
        "load_average_before": load,
        "data_prep_s": dataset.seconds,
        "results": rows,
        "speedup": speedups,
        "notes": notes,
        "wall_s": time.perf_counter() - started,
        "exit_code": int(ExitCode.NOT_READY if worst == "FAIL" else ExitCode.READY),
    }
    if plot_path:
        try:
            report.plot(result, plot_path)
            _log(f"plot written to {plot_path}")
        except (ImportError, OSError) as error:
            click.echo(f"dlcheck bench: cannot write the plot: {error}", err=True)
    if as_json:
        from dlcheck.jsonout import envelope

        errors = [f"{r['impl']} on {r['device']}: {r['error']}" for r in rows if r.get("error")]
        click.echo(envelope("bench", worst, result, errors))
    else:
        report.table(result)
        _log(f"total wall time {result['wall_s']:.1f} s")
    return ExitCode(result["exit_code"])


def _relative_to_keras(rows: list[dict]) -> list[str]:
    """Same-device comparisons: how much the native implementations beat the book's code."""
    notes = []
    for device in dict.fromkeys(r["device"] for r in rows):
        on = {r["impl"]: r.get("median_epoch_s") for r in rows if r["device"] == device}
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


def _log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _gpu_devices() -> tuple[list[str], str]:
    """cuda:N names for the NVIDIA GPUs NVML sees, and why there are none."""
    from dlcheck import nvml

    try:
        count = nvml.query("nvmlDeviceGetCount", default=0) or 0
    except nvml.NvmlUnavailable as error:
        return [], f"NVML unavailable ({error.reason})"
    except Exception as error:  # an NVML call failing is not the benchmark's business
        return [], f"NVML error ({error})"
    if not count:
        return [], "NVML reports no GPUs"
    return [f"cuda:{i}" for i in range(count)], ""


def _load_data(data_mod, data_path, synthetic, seed, notes):
    if synthetic:
        notes.append("synthetic data requested (--synthetic/--offline)")
        return data_mod.synthetic(seed=seed)
    if data_path:
        return data_mod.load_real(data_path)
    try:
        return data_mod.load_real()
    except data_mod.DataError as error:
        _log(f"real IMDB unavailable ({error}); using synthetic data")
        notes.append(f"real IMDB unavailable, fell back to synthetic data: {error}")
        return data_mod.synthetic(seed=seed)
