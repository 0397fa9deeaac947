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

import errno
import importlib
import json
import os
import signal
import sys
import traceback

import click

from dlcheck import __version__, interrupts
from dlcheck.interrupts import Terminated
from dlcheck.models import ExitCode, MachineError
from dlcheck.text import clean

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
DEBUG_ENV = "DLCHECK_DEBUG"  # children.py reads it too: children's tracebacks kept or cut


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
    debug = "--debug" in args or bool(os.environ.get(DEBUG_ENV))
    saved = {"debug": os.environ.get(DEBUG_ENV), "stderr": sys.stderr}
    if debug:
        os.environ[DEBUG_ENV] = "1"  # children keep their tracebacks too
    _usable_streams()
    previous = interrupts.install()
    code = ExitCode.INTERNAL
    try:
        code = _run(args, debug)
        if interrupts.pending():  # swallowed by C code, and the command finished anyway
            code = _interrupted(interrupts.pending())
    finally:
        interrupts.seen()  # before the cleanup: no signal raised again after it
        _cleanup()
        interrupts.restore(previous)
        sys.stderr = saved["stderr"] if saved["stderr"] is not None else sys.stderr
        if saved["debug"] is None:
            os.environ.pop(DEBUG_ENV, None)
    return int(code)


def _usable_streams() -> None:
    """Output that cannot fail for reasons that are not dlcheck's.

    A closed descriptor (`>&-`, `2>&-`) leaves sys.stdout/sys.stderr None: write to /dev/null
    instead. A terminal whose encoding cannot show a character (an ASCII locale) gets a
    replacement character, not a UnicodeEncodeError. And stderr carries progress and notes,
    a courtesy: a reader that left (`2>&1 | head`) must not stop the work.
    """
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))
        stream = getattr(sys, name)
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="replace")
            except (OSError, ValueError):
                pass
    if not isinstance(sys.stderr, _Courtesy):
        sys.stderr = _Courtesy(sys.stderr)


class _Courtesy:
    """A stream whose write and flush never raise (stderr: progress, notes, one-line errors)."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except (OSError, ValueError):
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except (OSError, ValueError):
            pass

    def __getattr__(self, name):
        return getattr(self._stream, name)


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
    except click.exceptions.Abort:  # click turns a KeyboardInterrupt in a command into Abort
        return _interrupted(interrupts.pending() or signal.SIGINT)
    except click.ClickException as error:
        _show_click_error(error, args)
        return ExitCode.USAGE if isinstance(error, click.UsageError) else error.exit_code
    except MachineError as error:  # no temp folder, no interpreter: the machine, not dlcheck
        _say(f"dlcheck: {error}")
        return ExitCode.NOT_READY
    except BrokenPipeError:  # `dlcheck gpu --json | head -1`: the reader left; say nothing
        _silence_stdout()
        return invocation.report.exit_code if invocation else ExitCode.READY
    except SystemExit as leaving:  # click (--help) and rich end the process on EPIPE: not here
        if not _stdout_gone(leaving):
            raise
        _silence_stdout()
        return invocation.report.exit_code if invocation else ExitCode.READY
    except KeyboardInterrupt:
        return _interrupted(signal.SIGINT)
    except Terminated:
        return _interrupted(signal.SIGTERM)
    except Exception as error:  # a bug in dlcheck: one line, unless --debug asks for more
        if interrupts.pending():  # what C code made of a signal's exception (an ImportError)
            return _interrupted(interrupts.pending())
        if debug:
            _say(traceback.format_exc().rstrip())
        _say(
            f"dlcheck: internal error: {type(error).__name__}: {_describe(error)} "
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


def _interrupted(signum: int) -> int:
    interrupts.seen()
    if signum == signal.SIGINT:
        _say("dlcheck: interrupted (Ctrl-C); stopped every child process")
        return ExitCode.INTERRUPTED
    _say("dlcheck: terminated (SIGTERM); stopped every child process")
    return ExitCode.TERMINATED


def _stdout_gone(leaving: SystemExit) -> bool:
    """Whether click or rich raised SystemExit(1) because stdout's reader left (EPIPE): rich
    raises it while handling the BrokenPipeError, click after wrapping the streams in its
    _PacifyFlushWrapper."""
    cause = leaving.__context__
    if isinstance(cause, OSError) and cause.errno == errno.EPIPE:
        return True
    return type(sys.stdout).__name__.endswith("PacifyFlushWrapper")


def _describe(error: BaseException) -> str:
    try:
        return clean(error, 300) or "no detail"
    except Exception:  # an exception whose str() itself fails
        return "no detail"


def _show_click_error(error: click.ClickException, args: list[str]) -> None:
    """One line: what is wrong, and where to read more. What it quotes is cleaned and cut (an
    argument may be 100 kB of anything); a bad value from an environment variable names it."""
    message = clean(error.format_message(), 600)
    variable = _from_environment(error, args)
    if variable:
        message += f" (from the environment variable {variable})"
    if isinstance(error, click.UsageError):
        where = error.ctx.command_path if error.ctx is not None else "dlcheck"
        _say(f"{where}: error: {message} (see {where} --help)")
        return
    error.message = message
    try:
        error.show()
    except OSError:  # stderr closed too: the exit code still tells
        pass


def _from_environment(error: click.ClickException, args: list[str]) -> str | None:
    param = getattr(error, "param", None)
    names = getattr(param, "envvar", None)
    if not names or any(a.split("=")[0] in param.opts for a in args):
        return None
    return next((n for n in ([names] if isinstance(names, str) else names) if n in os.environ),
                None)  # fmt: skip


def _say(message: str) -> None:
    """One line on stderr (a traceback with --debug), cleaned; a closed stderr must not turn
    into a traceback."""
    try:
        print(clean(message, one_line=False), file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _silence_stdout() -> None:
    # Python flushes stdout at exit; point it at /dev/null so that flush cannot fail again.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
