"""`dlcheck perf`: options in, a Report out. The measuring and judging live in dlcheck/perf/."""

from __future__ import annotations

from pathlib import Path

import click

from dlcheck import prometheus
from dlcheck.commands.common import (
    FiniteFloat,
    apply_nvml_timeout,
    command,
    nvml_timeout_option,
    show_ids_option,
)
from dlcheck.models import ExitCode, Report, Status
from dlcheck.perf.records import PerfOptions
from dlcheck.prometheus import prometheus_option

HELP = """Is every GPU (and the CPU) as fast as its datasheet says, and if not, why?

\b
Per GPU, with the installed PyTorch: dense matmul in FP32, TF32, BF16, FP16
and FP8 (where the card has them), device memory copy and triad,
host<->device copies pinned and pageable; peer copies between GPU pairs.
On the CPU: GEMM with NumPy's and torch's BLAS, and memory bandwidth.

Each number is compared with the card's datasheet (dlcheck/perf/skus.json,
sources listed there) or the CPU's peak computed from /proc/cpuinfo, times
the share healthy cards reach: PASS at 75% of that or more, WARN down to
50%, FAIL below. A slow GPU comes with its likely cause from NVML readings
taken during the run (power limit, thermal or power slowdown, PCIe link,
clocks, P-state, other processes, pending memory repairs) and a command to
fix it.

\b
Time: about 12 s for the CPU and 40 s per GPU (--seconds per test).
Exit: 0 all PASS (WARN too, unless --strict), 1 a FAIL or a hung driver,
3 no GPU to test (unless --cpu-only), 2 usage error.
"""


def build(options: PerfOptions, progress=None, plot_path: str | None = None, strict=False):
    from dlcheck.perf import runner

    result = runner.run(options, progress)
    errors = list(result.errors)
    code = exit_code(result, options, strict)
    if plot_path:
        from dlcheck.perf import plot

        try:
            plot.plot(result.to_dict(), plot_path)
            if progress is not None:
                progress.say(f"plot written to {plot_path}")
        except (ImportError, OSError, ValueError) as error:
            errors.append(f"plot: cannot write {plot_path}: {error}")
            code = ExitCode.NOT_READY
    return Report("perf", result, code, result.status, tuple(errors))


def exit_code(result, options: PerfOptions, strict: bool) -> ExitCode:
    if result.status is Status.FAIL or (strict and result.status is Status.WARN):
        return ExitCode.NOT_READY
    if options.gpu and all(g.status is Status.SKIP for g in result.gpus):
        return ExitCode.CPU_ONLY  # asked to test GPUs, could test none: say so in the exit code
    return ExitCode.READY


def check_plot_path(path: str | None) -> None:
    if not path:
        return
    if not path.lower().endswith(".png"):
        raise click.UsageError(f"--plot {path}: give a .png file name")
    from importlib.util import find_spec

    if find_spec("matplotlib") is None:
        raise click.UsageError("--plot needs matplotlib. Fix: pip install 'dlcheck[plot]'")
    from dlcheck.system import folder_problem

    target = Path(path)
    problem = "it is a folder" if target.is_dir() else folder_problem(target.parent)
    if problem:
        raise click.UsageError(f"--plot {path}: cannot write there ({problem})")


class _Indices(click.ParamType):
    """A comma-separated list of NVML GPU indices: 0,2,3."""

    name = "indices"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        parts = [p.strip() for p in str(value).split(",") if p.strip()]
        if not parts or not all(p.isdigit() and int(p) < 1024 for p in parts):
            self.fail(f"{value!r}: give GPU indices as NVML numbers them, e.g. 0 or 0,2", param,
                      ctx)  # fmt: skip
        return tuple(sorted({int(p) for p in parts}))


@command("perf", renderer="dlcheck.render.perf:render", help=HELP)
@click.option("--cpu-only", is_flag=True, help="Test the CPU only; never touch NVML or CUDA.")
@click.option("--gpu-only", is_flag=True, help="Test the GPUs only (skip the CPU tests).")
@click.option(
    "--devices",
    type=_Indices(),
    default=None,
    help="GPUs to test, by NVML index (nvidia-smi's numbering), e.g. 0,2 [default: all].",
)
@click.option(
    "--seconds",
    type=FiniteFloat(min=0.2, max=120),
    default=2.5,
    show_default=True,
    help="Time box of each GPU test's timed repeats (11 tests per GPU).",
)
@click.option("--no-p2p", is_flag=True, help="Skip the GPU-to-GPU copies.")
@click.option(
    "--timeout",
    type=FiniteFloat(min=10, max=86400),
    default=None,
    help="Seconds the GPU measurement may take before it is stopped and reported as FAIL "
    "[default: 3x the expected time + 60].",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    help="Write a bar chart of measured vs expected, per test, to this PNG.",
)
@click.option("--strict", is_flag=True, help="Warnings count as failures (exit 1).")
@show_ids_option
@nvml_timeout_option
@prometheus_option
def perf(cpu_only, gpu_only, devices, seconds, no_p2p, timeout, plot_path, strict, show_ids,
         nvml_timeout, prometheus_path) -> Report:  # fmt: skip
    if cpu_only and gpu_only:
        raise click.UsageError("--cpu-only and --gpu-only exclude each other: pick one, or neither")
    if cpu_only and devices:
        raise click.UsageError("--devices picks GPUs; it makes no sense with --cpu-only")
    check_plot_path(plot_path)
    apply_nvml_timeout(nvml_timeout)
    from dlcheck.progress import RowProgress

    options = PerfOptions(
        cpu=not gpu_only,
        gpu=not cpu_only,
        devices=devices,
        seconds_per_test=seconds,
        timeout_s=timeout,
        p2p=not no_p2p,
        show_ids=show_ids,
    )
    with RowProgress(prefix="perf") as progress:
        report = build(options, progress, plot_path, strict)
    return prometheus.export(report, prometheus_path)
