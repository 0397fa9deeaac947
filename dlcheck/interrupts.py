"""Ctrl-C and SIGTERM as exceptions in the main thread, raised again until the CLI has seen one.

Python raises a signal handler's exception at whatever bytecode the main thread is on, and some
C code loses it: a SIGTERM during numpy's lazy `import numpy.random` (Cython module set-up) was
swallowed in 16 of 300 tries here, and turned into an ImportError in 1; `dlcheck bench` then
ran to the end and exited 0. So the first signal starts a thread that sends it again every
RERAISE_S until `seen()` says the CLI caught it; an exception that arrives while a signal is
unseen is that signal's casualty, not a bug (`pending()`).
"""

from __future__ import annotations

import os
import signal
import threading
import time

RERAISE_S = 0.5


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that every `finally` runs (like KeyboardInterrupt)."""


# Reentrant: the handler runs in the main thread between any two bytecodes, seen()'s included.
_lock = threading.RLock()
_unseen: int | None = None  # the signal raised and not yet caught by the CLI


def install() -> dict[int, object]:
    """Our handler for SIGINT and SIGTERM; returns the previous ones, for `restore()`."""
    return {sig: signal.signal(sig, _raise) for sig in (signal.SIGINT, signal.SIGTERM)}


def restore(previous: dict[int, object]) -> None:
    """The previous handlers back; nothing sent again after it (whoever called seen() or not)."""
    seen()
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def seen() -> None:
    """The CLI caught the signal's exception (or is leaving): stop raising it again."""
    global _unseen
    with _lock:
        _unseen = None


def pending() -> int | None:
    """The signal raised and not yet seen, if any."""
    return _unseen


def _raise(signum, frame):
    global _unseen
    with _lock:
        if _unseen is None:
            _unseen = signum
            threading.Thread(target=_resend, args=(signum,), daemon=True,
                             name="dlcheck-signal").start()  # fmt: skip
    raise KeyboardInterrupt() if signum == signal.SIGINT else Terminated()


def _resend(signum: int) -> None:
    while True:
        time.sleep(RERAISE_S)
        with _lock:  # under the lock: after seen() returns, nothing more is sent
            if _unseen != signum:
                return
            os.kill(os.getpid(), signum)
