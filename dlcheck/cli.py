"""The `dlcheck` command group.

Subcommands live in their own modules and are imported only when named, so
`dlcheck gpu` never pays for what `dlcheck bench` imports. A bare `dlcheck`
(or `dlcheck --json -v`) runs `dlcheck check`.
"""

from __future__ import annotations

import importlib
import sys

import click

from dlcheck import __version__
from dlcheck.models import ExitCode

# name -> "module:attribute" of a click.Command; each module owns its command.
SUBCOMMANDS = {
    "check": (
        "dlcheck.commands.check:check",
        "Readiness report: driver, CUDA, frameworks, with fixes (default).",
    ),
    "gpu": (
        "dlcheck.commands.gpu:gpu",
        "Per-GPU inventory from NVML, named as nvidia-smi --query-gpu names it.",
    ),
    "bench": (
        "dlcheck.bench.command:bench",
        "IMDB network (Chollet ch. 3) as a timed CPU-vs-GPU benchmark.",
    ),
    "fleet": (
        "dlcheck.commands.fleet:fleet",
        "One table for many hosts from fetched dlcheck reports.",
    ),
    "allreduce": (
        "dlcheck.commands.allreduce:allreduce",
        "All-reduce across local GPUs (NCCL) or processes (gloo): values and bus bandwidth.",
    ),
}
DEFAULT_COMMAND = "check"


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return list(SUBCOMMANDS)

    def get_command(self, ctx, name):
        entry = SUBCOMMANDS.get(name)
        if entry is None:
            return None
        module_name, attribute = entry[0].split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            # Only our own missing module means "not built"; a missing dependency must surface.
            if error.name != module_name:
                raise
            return None
        return getattr(module, attribute)

    def format_commands(self, ctx, formatter):
        rows = [(name, help_text) for name, (_, help_text) in SUBCOMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def parse_args(self, ctx, args):
        # `dlcheck`, `dlcheck --json`, `dlcheck -v` all mean `dlcheck check ...`.
        if not args or (args[0].startswith("-") and args[0] not in ("--help", "-h", "--version")):
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dlcheck")
def cli():
    """Is this machine ready for deep learning on its NVIDIA GPU?

    \b
    Exit codes (all subcommands):
      0  ready            1  a check failed
      2  usage error      3  no usable NVIDIA GPU (CPU-only)
      4  internal error (a bug in dlcheck; please report it)
    """


def main() -> None:
    try:
        code = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(ExitCode.NOT_READY)
    except click.ClickException as error:
        error.show()
        sys.exit(ExitCode.USAGE if isinstance(error, click.UsageError) else error.exit_code)
    except click.exceptions.Exit as error:
        sys.exit(error.exit_code)
    sys.exit(code if isinstance(code, int) else ExitCode.READY)
