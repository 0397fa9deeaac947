"""Test-only callback: interrupt ansible-playbook right after one named task, as Ctrl-C would.

    ANSIBLE_CALLBACK_PLUGINS=tests/playbooks/plugins/callback
    ANSIBLE_CALLBACKS_ENABLED=stop_after_task
    DLCHECK_TEST_STOP_AFTER="jupyter : Write the password hash (argon2, made on the controller)"

When that task has finished on a host (ok or changed), the callback writes the task's name to
DLCHECK_TEST_STOP_MARKER (if set) and sends SIGINT to ansible-playbook, as Ctrl-C does
(tests start it in a session of its own). Callbacks run in the main
process before the strategy queues the next task, so the run stops exactly there: "User
interrupted execution", the handlers never run, later tasks never start.

ansible-core 2.19 sometimes deadlocks on that SIGINT (the main thread waits on a futex for
ever, its worker a zombie; seen once in a CI run). A user would press Ctrl-C again or close the
terminal; here a watchdog kills the group after GRACE_S, so the run still ends where it was
interrupted (exit -9 instead of 99) and the test goes on.
"""

from __future__ import annotations

import os
import signal
import threading
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: stop_after_task
type: aggregate
short_description: interrupt the run after a named task (tests only)
description: Sends SIGINT to ansible-playbook once the task in DLCHECK_TEST_STOP_AFTER is done.
requirements: [enable in ANSIBLE_CALLBACKS_ENABLED]
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "stop_after_task"
    CALLBACK_NEEDS_ENABLED = True

    def v2_runner_on_ok(self, result):
        target = os.environ.get("DLCHECK_TEST_STOP_AFTER", "")
        if not target or result._task.get_name() != target:
            return
        marker = os.environ.get("DLCHECK_TEST_STOP_MARKER")
        if marker:
            with open(marker, "w", encoding="utf-8") as handle:
                handle.write(target + "\n")
        group = os.getpgrp()
        leader = group == os.getpid()  # never signal a parent's group (pytest's)
        threading.Thread(target=_kill_after_grace, args=(group if leader else None,),
                         daemon=True).start()  # fmt: skip
        # Only this process: signalling its group too (workers, as a terminal would) hung
        # ansible-core in 2 of 8 runs here, this in 0 of 28 (but once in a busy CI run).
        os.kill(os.getpid(), signal.SIGINT)


GRACE_S = 30


def _kill_after_grace(group):
    time.sleep(GRACE_S)
    if group is not None:
        os.killpg(group, signal.SIGKILL)
    else:
        os.kill(os.getpid(), signal.SIGKILL)
