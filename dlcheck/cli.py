"""The `dlcheck` command group, and `main()`: the one place that renders, exits and cleans up.

Every subcommand's callback returns an Invocation (its Report and how to show it); `main()`
renders it (human or --json), exits with the report's code, and catches everything else:
a bug is one line and exit 4 (--debug for the traceback), a closed stdout is quiet, Ctrl-C
exits 130 and SIGTERM 143, after every child process and temp folder is gone.

Subcommands live in their own modules and are imported only when named, so `dlcheck gpu`
never pays for what `dlcheck bench` imports. A bare `dlcheck` (or `dlcheck --json -v`) runs
`dlcheck check`.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import traceback

import click

from dlcheck import __version__
from dlcheck.models import ExitCode, MachineError

# name -> ("module:attribute" of a click.Command, one line of help); each module owns its command.
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
        "dlcheck.commands.bench:bench",
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
    "perf": (
        "dlcheck.commands.perf:perf",
        "Is each GPU (and the CPU) as fast as its datasheet says, and if not, why?",
    ),
}
DEFAULT_COMMAND = "check"


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that every `finally` runs (like KeyboardInterrupt)."""


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return list(SUBCOMMANDS)

    def get_command(self, ctx, name):
        entry = SUBCOMMANDS.get(name)
        if entry is None:
            return None
        module_name, attribute = entry[0].split(":")
        return getattr(importlib.import_module(module_name), attribute)

    def format_commands(self, ctx, formatter):
        rows = [(name, help_text) for name, (_, help_text) in SUBCOMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def parse_args(self, ctx, args):
        # `dlcheck`, `dlcheck --json`, `dlcheck -v` all mean `dlcheck check ...`. Not while the
        # shell asks for completions: there, an empty command line must offer the subcommands.
        default = not args or (args[0].startswith("-") and args[0] not in GROUP_FLAGS)
        if default and not ctx.resilient_parsing:
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)


GROUP_FLAGS = ("--help", "-h", "--version")


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dlcheck")
def cli():
    """Is this machine ready for deep learning on its NVIDIA GPU?

    \b
    Exit codes (all subcommands):
      0  ready                1  a check failed
      2  usage error          3  no usable NVIDIA GPU (CPU-only)
      4  internal error (a bug in dlcheck; --debug shows the traceback)
      130 interrupted (Ctrl-C)  143 terminated (SIGTERM)

    \b
    Shell completion (bash; zsh and fish likewise):
      eval "$(_DLCHECK_COMPLETE=bash_source dlcheck)"   # add to ~/.bashrc
    """


def main() -> None:
    """The console script: run, then leave, without waiting for a thread stuck in NVML."""
    from dlcheck import nvml

    code = run(sys.argv[1:])
    if nvml.stuck():
        _flush()
        os._exit(code)
    sys.exit(code)


def run(args: list[str]) -> int:
    """Everything but leaving the process: parse, build, render, clean up; the exit code."""
    debug = "--debug" in args or bool(os.environ.get("DLCHECK_DEBUG"))
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    code = ExitCode.INTERNAL
    try:
        code = _run(args, debug)
    finally:
        _cleanup()
        signal.signal(signal.SIGTERM, previous)
    return int(code)


def _run(args: list[str], debug: bool) -> int:
    from dlcheck.commands.common import Invocation

    invocation = None
    try:
        outcome = cli.main(args, prog_name="dlcheck", standalone_mode=False)
        if not isinstance(outcome, Invocation):  # --help, --version, completion
            return outcome if isinstance(outcome, int) else ExitCode.READY
        invocation = outcome
        _render(invocation)
        return invocation.report.exit_code
    except click.exceptions.Exit as error:
        return error.exit_code
    except click.exceptions.Abort:  # click's own prompt interrupted
        _say("dlcheck: interrupted")
        return ExitCode.INTERRUPTED
    except click.ClickException as error:
        _show_click_error(error)
        return ExitCode.USAGE if isinstance(error, click.UsageError) else error.exit_code
    except MachineError as error:  # no temp folder, no interpreter: the machine, not dlcheck
        _say(f"dlcheck: {error}")
        return ExitCode.NOT_READY
    except BrokenPipeError:  # `dlcheck gpu --json | head -1`: the reader left; say nothing
        _silence_stdout()
        return invocation.report.exit_code if invocation else ExitCode.READY
    except KeyboardInterrupt:
        _say("dlcheck: interrupted (Ctrl-C); stopped every child process")
        return ExitCode.INTERRUPTED
    except Terminated:
        _say("dlcheck: terminated (SIGTERM); stopped every child process")
        return ExitCode.TERMINATED
    except Exception as error:  # a bug in dlcheck: one line, unless --debug asks for more
        if debug:
            _say(traceback.format_exc().rstrip())
        message = " ".join(str(error).split()) or "no detail"
        _say(
            f"dlcheck: internal error: {type(error).__name__}: {message[:300]} "
            "(rerun with --debug for the traceback; please report it)"
        )
        return ExitCode.INTERNAL


def _render(invocation) -> None:
    from dlcheck.render import Output

    if invocation.repeat is not None:
        _render_repeatedly(invocation)
        return
    report = invocation.report
    if invocation.as_json:
        sys.stdout.write(report.to_json() + "\n")
    else:
        _renderer(invocation)(report, Output.for_stream(sys.stdout), **(invocation.view or {}))
    sys.stdout.flush()


def _renderer(invocation):
    module_name, function = invocation.renderer.split(":")
    return getattr(importlib.import_module(module_name), function)


def _render_repeatedly(invocation) -> None:
    """`-l SECONDS`: on a terminal a live view redrawn in place (rich Live, refreshed only when
    a new report is in, so it costs one NVML pass per interval); else one report after another
    (JSON: one compact envelope per line). Ends with Ctrl-C (exit 130)."""
    import io
    import time

    from dlcheck.render import Output

    out = Output.for_stream(sys.stdout)
    render, view = _renderer(invocation), invocation.view or {}
    report, every = invocation.report, invocation.repeat.seconds
    if invocation.as_json or out.plain:
        first = True
        while True:
            if invocation.as_json:
                sys.stdout.write(json.dumps(report.envelope(), sort_keys=True) + "\n")
            else:
                sys.stdout.write("" if first else "\n")
                render(report, out, **{**view, "header": first})
            sys.stdout.flush()
            first = False
            time.sleep(every)
            report = invocation.repeat.rebuild()
    from rich.live import Live
    from rich.text import Text

    def frame(report) -> Text:
        buffer = io.StringIO()
        render(report, Output(buffer, False, out.width, out.color), **view)
        stamp = time.strftime("%H:%M:%S")
        return Text.from_ansi(f"{stamp}  every {every:g} s, Ctrl-C to stop\n" + buffer.getvalue())

    with Live(frame(report), console=out.console(), auto_refresh=False) as live:
        while True:
            time.sleep(every)
            report = invocation.repeat.rebuild()
            live.update(frame(report), refresh=True)


def _cleanup() -> None:
    """Every child and temp folder gone, with Ctrl-C and SIGTERM held off meanwhile, so a second
    Ctrl-C cannot cut the cleanup short."""
    held = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        children = sys.modules.get("dlcheck.children")  # never imported: nothing to clean up
        if children is not None:
            children.cleanup()
        _flush()
    finally:
        for sig, handler in held.items():
            signal.signal(sig, handler)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            if stream is sys.stdout:
                _silence_stdout()


def _raise_terminated(signum, frame):
    raise Terminated()


def _show_click_error(error: click.ClickException) -> None:
    """One line: what is wrong, and where to read more."""
    from dlcheck.text import clean

    if isinstance(error, click.UsageError):
        where = error.ctx.command_path if error.ctx is not None else "dlcheck"
        _say(f"{where}: error: {clean(error.format_message(), 2000)} (see {where} --help)")
        return
    try:
        error.show()
    except OSError:  # stderr closed too: the exit code still tells
        pass


def _say(message: str) -> None:
    """One line on stderr; a closed stderr must not turn into a traceback."""
    try:
        print(message, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _silence_stdout() -> None:
    # Python flushes stdout at exit; point it at /dev/null so that flush cannot fail again.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
