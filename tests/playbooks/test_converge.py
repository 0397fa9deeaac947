"""site.yml converged for real on a fresh Debian 12 systemd host (systemd-nspawn, over SSH).

One host, CPU-only, in this order: --check on the fresh host, the first converge, assertions on
what it built (venv, JupyterLab, dlcheck reports), then the idempotent rerun (changed=0).
"""

from __future__ import annotations

import glob
import json
import os
import secrets
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.hosts import nspawn
from tests.playbooks.ansible_runner import REPO, run_playbook, tool

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="systemd-nspawn needs root"),
    pytest.mark.skipif(bool(nspawn.missing_tools()), reason="needs requirements/apt-playbooks.txt"),
    pytest.mark.skipif(tool("ansible-playbook") is None, reason="needs test-playbooks.txt"),
]

WHEELHOUSE = Path(os.environ.get("DLCHECK_TEST_WHEELHOUSE", "/opt/wheels"))
HOST_CAS = sorted(glob.glob("/usr/local/share/ca-certificates/**/*.crt", recursive=True))
HAS_CHECK = (REPO / "dlcheck/commands/check.py").exists()
HAS_BENCH = (REPO / "dlcheck/bench/command.py").exists()
TIMINGS: dict[str, float] = {}


def ci_vars(host: nspawn.Host, reports: Path, password: str) -> dict:
    """What CI feeds the roles: the host's CAs, the local wheelhouse, CPU-only."""
    wheelhouse = WHEELHOUSE.is_dir()
    return {
        "dlcheck_cpu_only": True,
        "dl_python_extra_ca_certs": HOST_CAS,
        "dl_python_find_links": ["/srv/wheelhouse"] if wheelhouse else [],
        # PyTorch's CPU index is not reachable here; the wheelhouse holds the CPU wheel.
        "dl_python_torch_cpu_index_url": ""
        if wheelhouse
        else "https://download.pytorch.org/whl/cpu",
        "jupyter_password": password,
        "dlcheck_reports_dir": str(reports),
        # Each command exists once its part lands; until then the role is run without it.
        "dlcheck_run_check": HAS_CHECK,
        "dlcheck_run_bench": HAS_BENCH,
        # Synthetic IMDB-shaped data (the real set is not reachable here), a small slice, one
        # epoch: the role's plumbing is under test, not the benchmark.
        "dlcheck_bench_args": [
            *("bench", "--json", "--synthetic", "--limit", "2000", "--epochs", "1"),
        ],
    }


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    work = tmp_path_factory.mktemp("converge")
    password = secrets.token_urlsafe(16)
    binds = {str(WHEELHOUSE): "/srv/wheelhouse"} if WHEELHOUSE.is_dir() else {}
    started = time.monotonic()
    with nspawn.boot_hosts(1, prefix="site", binds_ro=binds) as hosts:
        TIMINGS["boot_s"] = time.monotonic() - started
        host = hosts[0]
        reports = work / "reports"
        inventory = nspawn.write_inventory(
            hosts, work / "inventory.yml", host_vars=ci_vars(host, reports, password)
        )
        inventory.chmod(0o600)
        yield {"host": host, "inventory": inventory, "reports": reports, "password": password}
    print(f"\nplaybook timings (s): {json.dumps({k: round(v, 1) for k, v in TIMINGS.items()})}")


def converge(site, *args: str):
    started = time.monotonic()
    result = run_playbook("site.yml", "-i", str(site["inventory"]), *args)
    return result, time.monotonic() - started


def test_check_mode_runs_clean_on_a_fresh_host(site):
    result, seconds = converge(site, "--check")
    TIMINGS["check_mode_s"] = seconds
    assert result.returncode == 0, result
    (counts,) = result.recap.values()
    assert counts["failed"] == 0 and counts["unreachable"] == 0, result
    # Check mode changed nothing for real: no venv, no unit.
    assert site["host"].ssh("test -e /opt/dl/venv", check=False).returncode != 0


def test_first_converge_succeeds(site):
    result, seconds = converge(site)
    TIMINGS["first_converge_s"] = seconds
    assert result.returncode == 0, result
    (counts,) = result.recap.values()
    assert counts["failed"] == 0 and counts["changed"] > 0, result
    # The password never shows up in Ansible's output (no_log on every task that holds it).
    assert site["password"] not in result.output
    site["first_output"] = result.output


def test_venv_imports_the_frameworks(site):
    code = (
        "import torch, tensorflow, keras;"
        "print(torch.__version__, tensorflow.__version__, keras.__version__,"
        " torch.cuda.is_available())"
    )
    out = site["host"].ssh(f"/opt/dl/venv/bin/python -c '{code}'").stdout.split()
    assert out[0].startswith("2.13.0") and out[1] == "2.21.0" and out[2] == "3.15.1"
    assert out[3] == "False"  # CPU builds on a CPU-only host


def test_jupyter_unit_is_active_and_hardened(site):
    host = site["host"]
    assert host.ssh("systemctl is-active jupyterlab").stdout.strip() == "active"
    props = host.ssh(
        "systemctl show jupyterlab -p User -p Restart -p PrivateDevices -p ProtectSystem"
    ).stdout
    assert "User=jupyter" in props and "Restart=on-failure" in props
    assert "PrivateDevices=no" in props  # /dev/nvidia* stays visible to kernels
    assert "ProtectSystem=strict" in props


def _listeners(port: int) -> list[str]:
    """Local addresses listening on `port` (the hosts share this machine's network namespace)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":
                found.append(address)
    return found


def test_jupyter_listens_only_on_loopback(site):
    port = site["host"].jupyter_port
    deadline = time.monotonic() + 60
    while not _listeners(port) and time.monotonic() < deadline:
        time.sleep(1)
    assert _listeners(port) == ["0100007F"]  # 127.0.0.1, nothing else


def test_jupyter_refuses_unauthenticated_api_calls(site):
    url = f"http://127.0.0.1:{site['host'].jupyter_port}/api/kernels"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=30)
    assert refused.value.code == 403


def _run_in_kernel(site, password: str, code: str):
    host = site["host"]
    client = (Path(__file__).parent / "jupyter_client.py").read_text()
    host.ssh("cat > /root/jupyter_client.py", input=client)
    base = f"http://127.0.0.1:{host.jupyter_port}"
    return host.ssh(
        f"/opt/dl/venv/bin/python /root/jupyter_client.py {base} dl-python '{code}'",
        input=password,
        check=False,
        timeout=300,
    )


def test_jupyter_with_the_password_runs_code_in_a_kernel(site):
    result = _run_in_kernel(site, site["password"], "import torch; print(int(torch.tensor(6) * 7))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "42"


def test_jupyter_rejects_a_wrong_password(site):
    result = _run_in_kernel(site, "not-the-password", "print(1)")
    assert result.returncode == 1 and "login failed: HTTP 401" in result.stderr


def test_dlcheck_reports_reached_the_controller_and_say_cpu_only(site):
    host = site["host"]
    version = host.ssh("/opt/dl/venv/bin/dlcheck --version").stdout
    assert "dlcheck" in version
    if not HAS_CHECK:
        pytest.skip("dlcheck check is not on this branch yet; the role ran without it")
    report = json.loads((site["reports"] / host.name / "check.json").read_text())
    assert report["command"] == "check" and report["data"]["verdict"] == "cpu_only"
    if HAS_BENCH:
        bench = json.loads((site["reports"] / host.name / "bench.json").read_text())
        assert bench["command"] == "bench" and bench["data"]["results"]


def test_second_converge_changes_nothing(site):
    result, seconds = converge(site)
    TIMINGS["second_converge_s"] = seconds
    assert result.returncode == 0, result
    (counts,) = result.recap.values()
    changed = [line for line in result.output.splitlines() if line.startswith("changed:")]
    assert counts["changed"] == 0 and counts["failed"] == 0, "\n".join(changed) or result
