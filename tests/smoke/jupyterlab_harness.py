"""Start a real JupyterLab on 127.0.0.1 with an argon2-hashed password, for the smoke tests."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from dlcheck.allreduce import free_port


def jupyter_available() -> bool:
    probe = [sys.executable, "-c", "import jupyterlab, ipykernel, websocket, argon2"]
    return subprocess.run(probe, capture_output=True).returncode == 0


@contextmanager
def running_jupyterlab(workdir: Path, timeout_s: float = 90):
    """Yield (url, password). The password exists only in memory and the server's hash."""
    from jupyter_server.auth import passwd

    password = secrets.token_urlsafe(16)
    hashed = passwd(password, algorithm="argon2")
    port = free_port()
    home = workdir / "jupyter"
    for sub in ("config", "data", "runtime", "notebooks"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    # The password goes in through a config file, not argv, so `ps` never shows even the hash.
    config = home / "config" / "jupyter_server_config.json"
    settings = {
        "IdentityProvider": {"hashed_password": hashed, "token": ""},
        "PasswordIdentityProvider": {"password_required": True},
    }
    config.write_text(json.dumps(settings))
    config.chmod(0o600)
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    jupyter = shutil.which("jupyter", path=str(Path(sys.executable).parent)) or "jupyter"
    log = (workdir / "jupyterlab.log").open("wb")
    server = subprocess.Popen(
        [jupyter, "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         "--port-retries=0", f"--notebook-dir={home / 'notebooks'}",
         *(["--allow-root"] if os.geteuid() == 0 else [])],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"jupyter lab exited {server.returncode}; see {log.name}")
            try:
                urllib.request.urlopen(f"{url}/login", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"jupyter lab not up in {timeout_s} s; see {log.name}"
                    ) from None
                time.sleep(0.5)
        yield url, password
    finally:
        _stop(server)
        log.close()


def _stop(server: subprocess.Popen) -> None:
    """SIGTERM the server's process group (kernels included), SIGKILL after 20 s."""
    for sig, wait_s in ((signal.SIGTERM, 20), (signal.SIGKILL, None)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            pass
        try:
            server.wait(wait_s)
            return
        except subprocess.TimeoutExpired:
            continue
