"""cloud/aws/launch.yml from nothing to a working Jupyter, for real: the stack on a moto server,
the "instance" one of our systemd-nspawn Debian hosts (launch.yml's test-only cloud_test_ssh_host
points the address the stack reports at it), its data volume a loop device the host sees as
/dev/xvdf. site.yml converges the host with the CI variables test_converge.py uses (local
wheelhouse, the machine's CAs, CPU-only).

In order: the first launch (stack, /data, site.yml, idle timer, Jupyter 403, verdict printed);
a second launch that changes nothing; stop.yml, then a launch that starts the stopped instance and
changes the idle minutes on it without replacing anything; start.yml after a stop; destroy.yml,
after an orphaned Spot request was planted, leaving nothing but the named data volume.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.hosts import nspawn
from tests.playbooks.ansible_runner import ansible_env, tool
from tests.playbooks.test_converge import LOCAL_WHEELS, ci_vars

from .conftest import CLOUD, moto_process, require_module

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="systemd-nspawn needs root"),
    pytest.mark.skipif(bool(nspawn.missing_tools()), reason="needs requirements/apt-playbooks.txt"),
    pytest.mark.skipif(tool("ansible-playbook") is None, reason="needs test-cloud.txt"),
]

STACK = "dl-e2e"
CIDR = "198.51.100.7/32"
TIMINGS: dict[str, float] = {}
RECAP = re.compile(
    r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M
)


class DataDisk:
    """A sparse file behind a loop device, shown inside the host as /dev/xvdf (an EBS volume's
    Xen name): the data volume's stand-in, so /data is a real mounted file system."""

    def __init__(self, workdir: Path, size: str = "512M"):
        self.image = workdir / "data-volume.img"
        subprocess.run(["truncate", "-s", size, str(self.image)], check=True)
        self.loop = subprocess.run(
            ["losetup", "--find", "--show", str(self.image)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    def attach(self, host: nspawn.Host, name: str = "/dev/xvdf") -> None:
        # The container's PID 1 is systemd-nspawn's child; make the node in its mount namespace.
        nspawn_pid = host.process.pid
        init = Path(f"/proc/{nspawn_pid}/task/{nspawn_pid}/children").read_text().split()[0]
        rdev = os.stat(self.loop).st_rdev
        subprocess.run(
            ["nsenter", "-t", init, "-m", "--", "mknod", name, "b"]
            + [str(os.major(rdev)), str(os.minor(rdev))],
            check=True,
        )

    def close(self) -> None:
        subprocess.run(["losetup", "-d", self.loop], check=False)
        self.image.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def moto_alone():
    """A moto server of its own: the leftovers check below looks at everything in it."""
    with moto_process() as url:
        yield url


@pytest.fixture(scope="module")
def e2e(tmp_path_factory, moto_alone):
    moto_server = moto_alone
    boto3 = require_module("boto3")
    work = tmp_path_factory.mktemp("launch")
    password = secrets.token_urlsafe(16)
    env = ansible_env(
        AWS_ENDPOINT_URL=moto_server,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
        AWS_CONFIG_FILE=str(work / "aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(work / "aws-credentials"),
        ANSIBLE_LOCAL_TEMP=str(work / "ansible-tmp"),
    )
    env.pop("AWS_PROFILE", None)
    # A Debian 12 host: the local cp311 CPU torch, where ci_vars looks for it.
    binds = {str(LOCAL_WHEELS): "/srv/wheelhouse/cp311"} if LOCAL_WHEELS.is_dir() else {}
    disk = DataDisk(work)
    started = time.monotonic()
    try:
        with nspawn.boot_hosts(1, prefix="cloud", binds_ro=binds, boot_timeout=300) as hosts:
            host = hosts[0]
            TIMINGS["boot_s"] = time.monotonic() - started
            disk.attach(host)
            extra = {
                **ci_vars(work / "reports", password),
                "dlcheck_run_bench": False,  # the bench is the bench part's to test
                "jupyter_port": host.jupyter_port,
                "cloud_stack_name": STACK,
                "cloud_allowed_ssh_cidr": CIDR,
                "cloud_inventory_dir": str(work / "inventory"),
                "cloud_test_ssh_host": "127.0.0.1",
                "cloud_ssh_port": host.ssh_port,
                "cloud_ssh_user": "root",
                "cloud_ssh_private_key_file": str(host.key),
                "cloud_ssh_common_args": nspawn._SSH_NO_KNOWN_HOSTS,
            }
            vars_file = work / "launch-vars.json"
            vars_file.write_text(json.dumps(extra))
            vars_file.chmod(0o600)

            def play(name: str, *args: str, timeout: float = 2400):
                t0 = time.monotonic()
                res = subprocess.run(
                    [tool("ansible-playbook"), str(CLOUD / "aws" / name), "-e", f"@{vars_file}"]
                    + list(args),
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                )
                out = res.stdout + res.stderr
                recap = {
                    m[1]: {"changed": int(m[3]), "failed": int(m[5])} for m in RECAP.finditer(out)
                }
                return res.returncode, out, recap, time.monotonic() - t0

            def aws(service):
                return boto3.client(
                    service,
                    region_name="us-east-1",
                    endpoint_url=moto_server,
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",
                )

            yield {"host": host, "play": play, "aws": aws, "password": password, "work": work}
    finally:
        disk.close()
        rounded = {k: round(v, 1) for k, v in TIMINGS.items()}
        print(f"\ncloud launch timings (s): {json.dumps(rounded)}")


def outputs(e2e) -> dict:
    stack = e2e["aws"]("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def instance_state(e2e, iid: str) -> str:
    reservations = e2e["aws"]("ec2").describe_instances(InstanceIds=[iid])["Reservations"]
    return reservations[0]["Instances"][0]["State"]["Name"]


def test_first_launch_converges_and_prints_the_verdict(e2e):
    rc, out, recap, seconds = e2e["play"]("launch.yml")
    TIMINGS["first_launch_s"] = seconds
    assert rc == 0, out[-6000:]
    host = e2e["host"]
    iid = outputs(e2e)["InstanceId"]
    assert recap[iid]["changed"] > 0 and recap[iid]["failed"] == 0, out[-3000:]
    assert "Jupyter: answering (403 without a login)" in out
    assert "dlcheck: verdict cpu_only (exit 3)" in out
    assert f"ssh -N -L 8888:127.0.0.1:{host.jupyter_port} root@127.0.0.1 -p {host.ssh_port}" in out
    assert e2e["password"] not in out
    e2e["first_output"] = out


def test_jupyter_answers_403_unauthenticated(e2e):
    url = f"http://127.0.0.1:{e2e['host'].jupyter_port}/api/kernels"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=30)
    assert refused.value.code == 403


def test_data_volume_is_mounted_and_holds_jupyters_home(e2e):
    host = e2e["host"]
    mount = host.ssh("findmnt -no SOURCE,FSTYPE /data").stdout.split()
    assert mount[1] == "ext4", mount
    assert host.ssh("grep ' /data ' /etc/fstab").stdout.split()[0].startswith("UUID=")
    assert host.ssh("getent passwd jupyter").stdout.split(":")[5] == "/data/jupyter"
    assert host.ssh("test -d /data/jupyter/notebooks", check=False).returncode == 0


def test_idle_timer_is_active_with_the_default_minutes(e2e):
    host = e2e["host"]
    assert host.ssh("systemctl is-active dlcheck-idle-stop.timer").stdout.strip() == "active"
    assert "IDLE_STOP_MINUTES=60\n" in host.ssh("cat /etc/default/dlcheck-idle-stop").stdout


def test_second_launch_changes_nothing(e2e):
    rc, out, recap, seconds = e2e["play"]("launch.yml")
    TIMINGS["second_launch_s"] = seconds
    assert rc == 0, out[-6000:]
    assert recap and all(r["changed"] == 0 and r["failed"] == 0 for r in recap.values()), (
        recap,
        [line for line in out.splitlines() if line.startswith("changed:")],
    )
    assert "dlcheck: verdict cpu_only (exit 3)" in out


def test_stop_then_launch_starts_it_and_changes_the_idle_minutes_in_place(e2e):
    """stop.yml; then a launch with new idle minutes starts the stopped instance (instead of
    waiting on it), updates only the backstop alarm (nothing replaced), and sets the minutes on
    the running machine (the idle_stop role, without rerunning site.yml)."""
    iid = outputs(e2e)["InstanceId"]
    rc, out, _recap, seconds = e2e["play"]("stop.yml")
    TIMINGS["stop_s"] = seconds
    assert rc == 0, out[-4000:]
    assert instance_state(e2e, iid) == "stopped"
    assert "still bill" in out
    rc, out, _recap, seconds = e2e["play"]("launch.yml", "-e", "cloud_idle_stop_minutes=150",
                                          "-e", "cloud_run_site=false")  # fmt: skip
    TIMINGS["launch_stopped_new_minutes_s"] = seconds
    assert rc == 0, out[-6000:]
    assert instance_state(e2e, iid) == "running"
    assert "Start the instance (it was stopped" in out
    assert outputs(e2e)["InstanceId"] == iid  # the backstop alarm changed, not the instance
    alarm = e2e["aws"]("cloudwatch").describe_alarms(AlarmNames=[f"{STACK}-idle-backstop"])
    assert alarm["MetricAlarms"][0]["EvaluationPeriods"] == 60  # 2 x 150 min in 5-min periods
    env_file = e2e["host"].ssh("cat /etc/default/dlcheck-idle-stop").stdout
    assert "IDLE_STOP_MINUTES=150\n" in env_file
    assert "idle stop active, 150 min" in out


def test_start_after_a_stop(e2e):
    iid = outputs(e2e)["InstanceId"]
    e2e["aws"]("ec2").stop_instances(InstanceIds=[iid])  # as the idle timer's poweroff would
    assert instance_state(e2e, iid) == "stopped"
    rc, out, _recap, seconds = e2e["play"]("start.yml")
    TIMINGS["start_s"] = seconds
    assert rc == 0, out[-4000:]
    assert instance_state(e2e, iid) == "running"
    assert "Jupyter: answering (403 without a login)" in out


def test_destroy_leaves_only_the_named_data_volume(e2e):
    ec2 = e2e["aws"]("ec2")
    out_before = outputs(e2e)
    iid, data_volume = out_before["InstanceId"], out_before["DataVolumeId"]
    # The persistent Spot request an earlier, replaced instance left behind (tagged by the
    # launch template): destroy must cancel it and terminate what it launched.
    orphan = ec2.request_spot_instances(
        InstanceCount=1,
        Type="persistent",
        LaunchSpecification={"ImageId": ec2.describe_instances(InstanceIds=[iid])[
            "Reservations"][0]["Instances"][0]["ImageId"], "InstanceType": "g5.xlarge"},
        TagSpecifications=[{"ResourceType": "spot-instances-request",
                            "Tags": [{"Key": "dlcheck:stack", "Value": STACK}]}],
    )["SpotInstanceRequests"][0]["SpotInstanceRequestId"]  # fmt: skip
    rc, out, _recap, seconds = e2e["play"]("destroy.yml")
    TIMINGS["destroy_s"] = seconds
    assert rc == 0, out[-6000:]
    assert f"Kept your data volume {data_volume}" in out
    assert instance_state(e2e, iid) == "terminated"
    alive = [
        i["InstanceId"]
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] not in ("terminated", "shutting-down")
    ]
    assert alive == [], alive
    # moto forgets a cancelled request; AWS lists it as cancelled. Either way none is open.
    left = ec2.describe_spot_instance_requests(
        Filters=[{"Name": "state", "Values": ["open", "active", "disabled"]}]
    )["SpotInstanceRequests"]
    assert [r["SpotInstanceRequestId"] for r in left] == [], (orphan, left)
    volumes = {v["VolumeId"]: v["State"] for v in ec2.describe_volumes()["Volumes"]}
    assert volumes == {data_volume: "available"}, volumes
    assert e2e["aws"]("cloudwatch").describe_alarms()["MetricAlarms"] == []
    assert not (e2e["work"] / "inventory" / f"{STACK}.yml").exists()
