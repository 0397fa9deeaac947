"""Test-only callback: interrupt ansible-playbook right after one named task, as Ctrl-C would.

    ANSIBLE_CALLBACK_PLUGINS=tests/playbooks/plugins/callback
    ANSIBLE_CALLBACKS_ENABLED=stop_after_task
    DLCHECK_TEST_STOP_AFTER="jupyter : Write the password hash (argon2, made on the controller)"

When that task has finished on a host (ok or changed), the callback writes the task's name to
DLCHECK_TEST_STOP_MARKER (if set) and sends SIGINT to ansible-playbook itself. Callbacks run in
the main process before the strategy queues the next task, so the run stops exactly there:
"User interrupted execution", the handlers never run, later tasks never start.
"""

from __future__ import annotations

import os
import signal

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
        os.kill(os.getpid(), signal.SIGINT)
