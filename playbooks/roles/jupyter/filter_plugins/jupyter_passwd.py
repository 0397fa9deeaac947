"""Hash a Jupyter password on the controller, in jupyter_server's passwd() format (argon2).

`password | jupyter_passwd(existing_hash)` keeps `existing_hash` when it already matches the
password, so reruns change nothing; otherwise it returns a fresh "argon2:$argon2id$..." hash.
The plaintext never reaches the managed host or a command line.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

PREFIX = "argon2:"


def _hasher():
    try:
        import argon2
    except ImportError as error:
        raise AnsibleFilterError(
            "jupyter_passwd needs argon2-cffi on the controller: pip install argon2-cffi"
        ) from error
    # The parameters jupyter_server.auth.passwd uses.
    return argon2.PasswordHasher(memory_cost=10240, time_cost=10, parallelism=8), argon2


def jupyter_passwd(password, existing=""):
    if not password:
        raise AnsibleFilterError("jupyter_passwd: the password is empty")
    hasher, argon2 = _hasher()
    existing = (existing or "").strip()
    if existing.startswith(PREFIX):
        try:
            if hasher.verify(existing[len(PREFIX) :], str(password)):
                return existing
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            pass
    return PREFIX + hasher.hash(str(password))


class FilterModule:
    def filters(self):
        return {"jupyter_passwd": jupyter_passwd}
