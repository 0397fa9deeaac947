"""Child entries that misbehave on purpose (loaded by the child via Spec.entry)."""

import os
import signal
import time


def crash(spec):
    os.kill(os.getpid(), signal.SIGKILL)  # what the OOM killer does


def hang(spec):
    time.sleep(3600)


def fail(spec):
    raise RuntimeError("CUDA error: out of memory (simulated)")
