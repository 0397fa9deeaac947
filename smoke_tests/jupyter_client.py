"""A small client for a running Jupyter server: log in, start a kernel, run code.

Only the standard library plus websocket-client (a dependency of jupyter_server,
so it is in any venv that runs JupyterLab). The password or token is sent to the
server and kept nowhere else: no logging, no repr, no exception text.
"""

from __future__ import annotations

import http.cookiejar
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field


class JupyterError(Exception):
    """The server refused or failed; the message never contains the secret."""


@dataclass
class Execution:
    stdout: str = ""
    stderr: str = ""
    results: list[str] = field(default_factory=list)  # text/plain of execute_result
    error: str | None = None  # "Name: value" of an exception raised in the kernel
    traceback: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


class JupyterSession:
    def __init__(self, url: str, password: str | None = None, token: str | None = None):
        if not (password or token):
            raise JupyterError("neither a password nor a token was given")
        self.url = url.rstrip("/")
        self._jar = http.cookiejar.CookieJar()
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self._jar))
        self._token = token
        if password:
            self._login(password)
        self.request("GET", "/api/status")  # proves the credentials work

    def __repr__(self) -> str:
        return f"JupyterSession({self.url!r})"

    def _cookie(self, name: str) -> str | None:
        return next((c.value for c in self._jar if c.name == name), None)

    def _headers(self) -> dict[str, str]:
        headers = {}
        if self._token:
            headers["Authorization"] = f"token {self._token}"
        xsrf = self._cookie("_xsrf")
        if xsrf:
            headers["X-XSRFToken"] = xsrf
        return headers

    def _login(self, password: str) -> None:
        # GET /login sets the _xsrf cookie; the form posts it back with the password.
        self._open(urllib.request.Request(f"{self.url}/login"))
        xsrf = self._cookie("_xsrf")
        if not xsrf:
            raise JupyterError(f"{self.url}/login set no _xsrf cookie; is this a Jupyter server?")
        form = urllib.parse.urlencode({"password": password, "_xsrf": xsrf}).encode()
        login = urllib.request.Request(f"{self.url}/login?next=%2Fapi%2Fstatus", data=form)
        try:
            self._open(login)
        except JupyterError as error:
            if "HTTP 401" not in str(error):
                raise
        if not any(c.name.startswith("username-") for c in self._jar):
            raise JupyterError(f"login to {self.url} refused (HTTP 401): wrong password?")

    def _open(self, request: urllib.request.Request, timeout: float = 30):
        try:
            with self._opener.open(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            raise JupyterError(
                f"{request.get_method()} {request.full_url.split('?')[0]} -> HTTP {error.code}"
            ) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise JupyterError(f"cannot reach {self.url}: {reason}") from None

    def request(self, method: str, path: str, body: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        headers = {**self._headers(), "Content-Type": "application/json"}
        request = urllib.request.Request(
            f"{self.url}{path}", data=data, method=method, headers=headers
        )
        _, payload = self._open(request)
        return json.loads(payload) if payload else None

    def default_kernel(self) -> str:
        return self.request("GET", "/api/kernelspecs")["default"]

    def start_kernel(self, name: str | None = None) -> Kernel:
        record = self.request("POST", "/api/kernels", {"name": name or self.default_kernel()})
        return Kernel(self, record["id"], record["name"])

    def websocket_headers(self) -> list[str]:
        headers = [f"{k}: {v}" for k, v in self._headers().items()]
        cookies = "; ".join(f"{c.name}={c.value}" for c in self._jar)
        return [*headers, f"Cookie: {cookies}"] if cookies else headers


class Kernel:
    """A kernel started through the REST API, driven over its websocket channels."""

    def __init__(self, session: JupyterSession, kernel_id: str, name: str):
        import websocket  # websocket-client

        self.session, self.id, self.name = session, kernel_id, name
        ws_url = session.url.replace("http", "ws", 1) + f"/api/kernels/{kernel_id}/channels"
        self._ws = websocket.create_connection(
            ws_url, header=session.websocket_headers(), timeout=60
        )
        self._session_id = uuid.uuid4().hex

    def execute(self, code: str, timeout: float = 300) -> Execution:
        msg_id = uuid.uuid4().hex
        message = {
            "header": {
                "msg_id": msg_id,
                "msg_type": "execute_request",
                "session": self._session_id,
                "username": "smoke",
                "version": "5.3",
                "date": "",
            },
            "parent_header": {},
            "metadata": {},
            "content": {"code": code, "silent": False, "store_history": False},
            "channel": "shell",
            "buffers": [],
        }
        self._ws.send(json.dumps(message))
        outcome, idle, replied = Execution(), False, False
        deadline = time.monotonic() + timeout
        while not (idle and replied):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise JupyterError(f"kernel {self.name} did not finish within {timeout:.0f} s")
            self._ws.settimeout(remaining)
            reply = json.loads(self._ws.recv())
            if reply.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = reply["msg_type"], reply["content"]
            if kind == "stream":
                if content["name"] == "stdout":
                    outcome.stdout += content["text"]
                else:
                    outcome.stderr += content["text"]
            elif kind == "execute_result":
                outcome.results.append(content["data"].get("text/plain", ""))
            elif kind == "error":
                outcome.error = f"{content['ename']}: {content['evalue']}"
                outcome.traceback = "\n".join(content.get("traceback", []))
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
            elif kind == "execute_reply":
                replied = True
        return outcome

    def shutdown(self) -> None:
        try:
            self._ws.close()
        finally:
            self.session.request("DELETE", f"/api/kernels/{self.id}")
