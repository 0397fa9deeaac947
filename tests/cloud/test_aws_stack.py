"""The CloudFormation stack and the launch/destroy playbooks against a real moto server on
loopback. moto is a good oracle for "the stack creates, returns outputs and deletes cleanly"; it
ignores IMDS, Spot and CloudWatch alarms, which test_cfn_static.py asserts instead."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys

import pytest
import yaml

from .conftest import CLOUD, require_module, tool

pytestmark = pytest.mark.integration

TEMPLATE = CLOUD / "aws" / "template.yaml"
CIDR = "198.51.100.7/32"
DLAMI = "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-24.04/latest/ami-id"


@pytest.fixture
def boto(aws_env):
    boto3 = require_module("boto3")
    return lambda service: boto3.client(service, region_name="us-east-1")


def stack_parameters(boto, **extra):
    """What launch.yml passes on a first launch: the image id resolved, a zone and its subnet."""
    ami = boto("ssm").get_parameter(Name=DLAMI)["Parameter"]["Value"]
    subnets = boto("ec2").describe_subnets(
        Filters=[{"Name": "default-for-az", "Values": ["true"]}]
    )["Subnets"]
    subnet = min(subnets, key=lambda s: s["AvailabilityZone"])
    params = {
        "AllowedSshCidr": CIDR,
        "ImageId": ami,
        "AvailabilityZone": subnet["AvailabilityZone"],
        "SubnetId": subnet["SubnetId"],
        **extra,
    }
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()]


def test_stack_create_outputs_and_delete(boto):
    cfn, ec2, cw = boto("cloudformation"), boto("ec2"), boto("cloudwatch")
    cfn.create_stack(
        StackName="dl-moto",
        TemplateBody=TEMPLATE.read_text(),
        Parameters=stack_parameters(boto, RootVolumeGiB="200", DataVolumeGiB="300"),
        Capabilities=["CAPABILITY_IAM"],
    )
    stack = cfn.describe_stacks(StackName="dl-moto")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    out = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    iid = out["InstanceId"]
    assert iid.startswith("i-")
    # moto gives no public name in an explicitly chosen subnet; the private IP then stands in.
    host = out.get("PublicDnsName") or out["PrivateIp"]
    assert out["SshCommand"].startswith("ssh ubuntu@")
    assert out["JupyterSshTunnelCommand"].startswith("ssh -N -L 8888:127.0.0.1:8888 ubuntu@")
    assert (
        f"--target {iid} --document-name AWS-StartPortForwardingSession"
        in (out["JupyterSsmTunnelCommand"])
    )
    assert out["AnsibleInventoryLine"].startswith(f"{iid} ansible_host=")

    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert inst["ImageId"] == boto("ssm").get_parameter(Name=DLAMI)["Parameter"]["Value"]
    assert inst["InstanceType"] == "g5.xlarge"
    assert host in (inst.get("PublicDnsName") or None, inst.get("PrivateIpAddress"))
    user_data = base64.b64decode(
        ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")["UserData"]["Value"]
    ).decode()
    assert user_data.startswith("#cloud-config\n")
    assert "IDLE_STOP_MINUTES=60\n" in user_data and "${" not in user_data
    # The root volume (OS only) and the data volume, both attached, in the instance's zone.
    volumes = {
        v["VolumeId"]: v
        for v in ec2.describe_volumes(
            Filters=[{"Name": "attachment.instance-id", "Values": [iid]}]
        )["Volumes"]
    }
    data = volumes.pop(out["DataVolumeId"])
    (root,) = volumes.values()
    assert (root["Size"], root["VolumeType"], root["Encrypted"]) == (200, "gp3", True)
    assert data["Size"] == 300 and data["AvailabilityZone"] == out["AvailabilityZone"]
    (alarm,) = cw.describe_alarms(AlarmNames=["dl-moto-idle-backstop"])["MetricAlarms"]
    assert alarm["Dimensions"] == [{"Name": "InstanceId", "Value": iid}]

    resources = cfn.list_stack_resources(StackName="dl-moto")["StackResourceSummaries"]
    sg_id = next(
        r["PhysicalResourceId"] for r in resources if r["LogicalResourceId"] == "SecurityGroup"
    )
    (sg,) = ec2.describe_security_groups(GroupIds=[sg_id])["SecurityGroups"]
    rules = [
        (p["IpProtocol"], p["FromPort"], p["ToPort"], [r["CidrIp"] for r in p["IpRanges"]])
        for p in sg["IpPermissions"]
    ]
    assert rules == [("tcp", 22, 22, [CIDR])]

    cfn.delete_stack(StackName="dl-moto")
    state = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]
    assert state["Name"] == "terminated"
    assert not ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": [sg_id]}])[
        "SecurityGroups"
    ]
    assert cw.describe_alarms(AlarmNames=["dl-moto-idle-backstop"])["MetricAlarms"] == []
    # DeletionPolicy Retain: the data volume outlives the stack, detached.
    (kept,) = ec2.describe_volumes(VolumeIds=[out["DataVolumeId"]])["Volumes"]
    assert kept["State"] == "available"


# --- the playbooks ----------------------------------------------------------------------------


def playbook(aws_env, tmp_path, name, *extra, check=True):
    """ansible-playbook cloud/aws/NAME (or cloud/NAME with a slash) with EXTRA arguments."""
    env = {
        **os.environ,
        **aws_env,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
    }
    cmd = [tool("ansible-playbook"), str(CLOUD / (name if "/" in name else f"aws/{name}")), *extra]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    return res


def recap(stdout: str) -> dict:
    m = re.search(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+).*failed=(\d+)", stdout)
    assert m, stdout[-2000:]
    return {"ok": int(m[1]), "changed": int(m[2]), "failed": int(m[3])}


def test_playbooks_pass_syntax_check():
    names = [str(CLOUD / cloud / name) for cloud in ("aws", "gcp")
             for name in ("launch.yml", "destroy.yml", "stop.yml", "start.yml")]  # fmt: skip
    cmd = [tool("ansible-playbook"), "--syntax-check", *names]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert res.stdout.count("playbook: ") == 8


def outputs(boto, stack):
    desc = boto("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in desc["Outputs"]}


def test_launch_rerun_update_guard_and_destroy(aws_env, boto, tmp_path):
    """Against moto alone (no host: cloud_provision=false): the stack, the inventory, a rerun
    that changes nothing, updates refused because they would replace the instance (naming the
    property), updates that replace nothing, and destroy keeping only the data volume."""
    inv_dir = tmp_path / "inventory"
    args = (
        "-e", "cloud_stack_name=dl-launch",
        "-e", f"cloud_inventory_dir={inv_dir}",
        "-e", "cloud_provision=false",  # moto's instances run no sshd; see test_aws_launch.py
    )  # fmt: skip
    first = playbook(aws_env, tmp_path, "launch.yml", "-e", f"cloud_allowed_ssh_cidr={CIDR}", *args)
    assert recap(first.stdout)["changed"] >= 2  # stack + inventory
    cfn, ec2 = boto("cloudformation"), boto("ec2")
    out = outputs(boto, "dl-launch")
    iid = out["InstanceId"]
    inventory = yaml.safe_load((inv_dir / "dl-launch.yml").read_text())
    host_vars = inventory["all"]["children"]["workstations"]["hosts"][iid]
    assert host_vars["ansible_user"] == "ubuntu" and host_vars["jupyter_home"] == "/data/jupyter"
    assert host_vars["nvidia_driver_branch"] == "580"  # the workstation group defaults
    assert oct((inv_dir / "dl-launch.yml").stat().st_mode & 0o777) == "0o600"
    params = {
        p["ParameterKey"]: p["ParameterValue"]
        for p in cfn.describe_stacks(StackName="dl-launch")["Stacks"][0]["Parameters"]
    }
    ami = boto("ssm").get_parameter(Name=DLAMI)["Parameter"]["Value"]
    assert params["ImageId"] == ami  # resolved once and pinned
    assert float(params["BackstopCpuPercent"]) == 12.5  # half of one of g5.xlarge's 4 vCPUs

    # A rerun, even by another user and without the CIDR, keeps everything.
    second = playbook(aws_env | {"USER": "someone-else"}, tmp_path, "launch.yml", *args)
    assert recap(second.stdout) == {**recap(second.stdout), "changed": 0, "failed": 0}
    assert (inv_dir / "dl-launch.yml").read_text() and outputs(boto, "dl-launch") == out

    # Updates that would replace the instance are refused, naming the property.
    other_ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    # (test_changeset.py covers the other replacing properties without a playbook run each.)
    for extra, prop in ((["-e", f"cloud_image_id={other_ami}"], "ImageId"),):
        refused = playbook(aws_env, tmp_path, "launch.yml", *args, *extra, check=False)
        assert refused.returncode != 0
        text = " ".join(refused.stdout.split())
        assert f"would replace Instance (because of {prop})" in text, refused.stdout[-3000:]
        assert "cloud_allow_replace=true" in text
        assert outputs(boto, "dl-launch")["InstanceId"] == iid
    assert cfn.describe_stacks(StackName="dl-launch")["Stacks"][0]["StackStatus"] in (
        "CREATE_COMPLETE",
        "UPDATE_COMPLETE",
    )

    # The idle minutes (through the backstop alarm) and the CIDR change in place.
    moved = playbook(aws_env, tmp_path, "launch.yml", *args, "-e", "cloud_idle_stop_minutes=150",
                     "-e", "cloud_allowed_ssh_cidr=203.0.113.0/24")  # fmt: skip
    assert recap(moved.stdout)["changed"] >= 1
    assert outputs(boto, "dl-launch")["InstanceId"] == iid
    (alarm,) = boto("cloudwatch").describe_alarms(AlarmNames=["dl-launch-idle-backstop"])[
        "MetricAlarms"
    ]
    assert alarm["EvaluationPeriods"] == 60
    sg = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert ec2.describe_instances(InstanceIds=[iid]) and sg

    gone = playbook(
        aws_env, tmp_path, "destroy.yml",
        "-e", "cloud_stack_name=dl-launch", "-e", f"cloud_inventory_dir={inv_dir}",
    )  # fmt: skip
    assert "No instance, Spot request, alarm or volume of dl-launch is left" in gone.stdout
    assert f"Kept your data volume {out['DataVolumeId']}" in " ".join(gone.stdout.split())
    state = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]
    assert state["Name"] == "terminated"
    assert not (inv_dir / "dl-launch.yml").exists()


@pytest.mark.parametrize(
    "extra,message",
    [
        # Every other form of "the world" is refused by the same check: test_preflight.py.
        (["-e", "cloud_allowed_ssh_cidr=0.0.0.0/1"], "too wide to expose SSH to"),
        ([], "cloud_allowed_ssh_cidr must be the one network"),
        (
            [
                "-e", f"cloud_allowed_ssh_cidr={CIDR}",
                "-e", "cloud_image_parameter=/aws/service/deeplearning/ami/x86_64/no-such/ami-id",
            ],
            "get-parameters-by-path",
        ),
    ],
)  # fmt: skip
def test_launch_refuses_bad_input_and_creates_nothing(aws_env, boto, tmp_path, extra, message):
    res = playbook(
        aws_env, tmp_path, "launch.yml", "-e", "cloud_stack_name=dl-bad",
        "-e", f"cloud_inventory_dir={tmp_path / 'inv'}", *extra, check=False,
    )  # fmt: skip
    assert res.returncode != 0
    assert message in " ".join(res.stdout.split())
    assert "Traceback" not in res.stdout + res.stderr
    live = [
        s["StackName"]
        for s in boto("cloudformation").list_stacks()["StackSummaries"]
        if s["StackStatus"] != "DELETE_COMPLETE"
    ]
    assert "dl-bad" not in live
    assert not (tmp_path / "inv").exists()


def test_region_comes_from_the_profile(aws_env, tmp_path, monkeypatch):
    for key in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(key, raising=False)
    config = tmp_path / "aws-config-profile"
    config.write_text("[profile gpu]\nregion = eu-west-1\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_REGION")}
    env.pop("AWS_DEFAULT_REGION", None)
    env |= {"AWS_CONFIG_FILE": str(config), "AWS_PROFILE": "gpu"}
    cmd = [sys.executable, str(CLOUD / "common" / "preflight.py"), "region"]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert res.stdout.strip() == "eu-west-1", res.stderr
    env.pop("AWS_PROFILE")
    config.write_text("")
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "no AWS region set; fix:" in res.stderr
