"""Log in to JupyterLab with a password, start a kernel, run code, print its output.

Runs ON the provisioned host with the venv's Python (jupyter_server brings websocket-client):
    python jupyter_client.py http://127.0.0.1:PORT KERNEL_NAME CODE  < password
Exit 0 and the kernel's stdout on success; exit 1 and a reason otherwise.
"""

import http.cookiejar
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid

import websocket


def main() -> int:
    base, kernel_name, code = sys.argv[1:4]
    password = sys.stdin.read().strip()
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(base + "/login").read()
    xsrf = next(c.value for c in jar if c.name == "_xsrf")
    form = urllib.parse.urlencode({"password": password, "_xsrf": xsrf}).encode()
    try:
        opener.open(base + "/login", form).read()
    except urllib.error.HTTPError as error:
        print(f"login failed: HTTP {error.code}", file=sys.stderr)
        return 1
    headers = {"X-XSRFToken": xsrf, "Content-Type": "application/json"}
    request = urllib.request.Request(
        base + "/api/kernels", json.dumps({"name": kernel_name}).encode(), headers, method="POST"
    )
    try:
        kernel = json.load(opener.open(request))
    except urllib.error.HTTPError as error:
        print(f"starting a kernel failed: HTTP {error.code}", file=sys.stderr)
        return 1
    cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
    ws_url = base.replace("http", "ws", 1) + f"/api/kernels/{kernel['id']}/channels"
    ws = websocket.create_connection(ws_url, header=[f"Cookie: {cookie}"], timeout=120)
    msg_id = uuid.uuid4().hex
    header = {
        "msg_id": msg_id,
        "username": "test",
        "session": uuid.uuid4().hex,
        "msg_type": "execute_request",
        "version": "5.3",
    }
    content = {"code": code, "silent": False, "store_history": False, "allow_stdin": False}
    message = {"header": header, "parent_header": {}, "metadata": {}, "content": content}
    ws.send(json.dumps({**message, "channel": "shell"}))
    # The reply comes on the shell channel, the output on iopub, with no order between the
    # two: read until both the reply and iopub's "idle" (sent after the last output) are in.
    output, status, idle = [], None, False
    while status is None or not idle:
        reply = json.loads(ws.recv())
        if reply.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind = reply["msg_type"]
        if kind == "stream":
            output.append(reply["content"]["text"])
        elif kind == "error":
            output.append("\n".join(reply["content"]["traceback"]))
        elif kind == "execute_reply":
            status = reply["content"]["status"]
        elif kind == "status" and reply["content"].get("execution_state") == "idle":
            idle = True
    ws.close()
    delete = urllib.request.Request(
        base + f"/api/kernels/{kernel['id']}", headers=headers, method="DELETE"
    )
    opener.open(delete).read()
    print("".join(output), end="")
    return 0 if status == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
