"""The CloudFormation stack and the launch/destroy playbooks against a real moto server on
loopback. moto is a good oracle for "the stack creates, returns outputs and deletes cleanly"; it
ignores IMDS, Spot and CloudWatch alarms, which test_cfn_static.py asserts instead."""

from __future__ import annotations

import base64
import os
import re
import subprocess

import pytest

from .conftest import CLOUD, require_module, tool

pytestmark = pytest.mark.integration

TEMPLATE = CLOUD / "aws" / "template.yaml"
CIDR = "198.51.100.7/32"


@pytest.fixture
def boto(aws_env):
    boto3 = require_module("boto3")
    return lambda service: boto3.client(service, region_name="us-east-1")


def test_stack_create_outputs_and_delete(boto):
    cfn, ec2 = boto("cloudformation"), boto("ec2")
    cfn.create_stack(
        StackName="dl-moto",
        TemplateBody=TEMPLATE.read_text(),
        Parameters=[
            {"ParameterKey": "AllowedSshCidr", "ParameterValue": CIDR},
            {"ParameterKey": "RootVolumeGiB", "ParameterValue": "200"},
        ],
        Capabilities=["CAPABILITY_IAM"],
    )
    stack = cfn.describe_stacks(StackName="dl-moto")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    out = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    iid = out["InstanceId"]
    assert iid.startswith("i-")
    host = out["PublicDnsName"] or out["PrivateIp"]
    assert out["SshCommand"] == f"ssh ubuntu@{out['PublicDnsName']}"
    assert out["JupyterSshTunnelCommand"].startswith("ssh -N -L 8888:127.0.0.1:8888 ubuntu@")
    assert (
        f"--target {iid} --document-name AWS-StartPortForwardingSession"
        in (out["JupyterSsmTunnelCommand"])
    )
    assert out["AnsibleInventoryLine"].startswith(f"{iid} ansible_host=")

    # The image came from the DLAMI SSM parameter, as CloudFormation resolves it at deploy time.
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    ssm = boto("ssm").get_parameter(
        Name="/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-24.04/latest/ami-id"
    )
    assert inst["ImageId"] == ssm["Parameter"]["Value"]
    assert inst["InstanceType"] == "g5.xlarge"
    assert host in (inst.get("PublicDnsName"), inst.get("PrivateIpAddress"))
    # CloudFormation's !Sub filled the idle minutes into the shared cloud-init user data.
    user_data = base64.b64decode(
        ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")["UserData"]["Value"]
    ).decode()
    assert user_data.startswith("#cloud-config\n")
    assert "IDLE_STOP_MINUTES=60\n" in user_data and "${" not in user_data
    (bdm,) = inst["BlockDeviceMappings"]
    vol = ec2.describe_volumes(VolumeIds=[bdm["Ebs"]["VolumeId"]])["Volumes"][0]
    assert (vol["Size"], vol["VolumeType"], vol["Encrypted"]) == (200, "gp3", True)

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


# --- the playbooks ----------------------------------------------------------------------------


def playbook(aws_env, tmp_path, name, *extra, check=True):
    env = {
        **os.environ,
        **aws_env,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
    }
    cmd = [tool("ansible-playbook"), str(CLOUD / "aws" / name), *extra]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    return res


def recap(stdout: str) -> dict:
    m = re.search(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+).*failed=(\d+)", stdout)
    assert m, stdout[-2000:]
    return {"ok": int(m[1]), "changed": int(m[2]), "failed": int(m[3])}


def test_playbooks_pass_syntax_check(aws_env, tmp_path):
    for name in ("launch.yml", "destroy.yml"):
        playbook(aws_env, tmp_path, name, "--syntax-check")


def test_launch_is_idempotent_writes_inventory_and_destroy_leaves_nothing(aws_env, boto, tmp_path):
    inv_dir = tmp_path / "inventory"
    args = (
        "-e", f"cloud_allowed_ssh_cidr={CIDR}",
        "-e", "cloud_stack_name=dl-launch",
        "-e", f"cloud_inventory_dir={inv_dir}",
        "-e", "cloud_provision=false",  # moto's instances run no sshd; see cloud/README.md
    )  # fmt: skip
    first = playbook(aws_env, tmp_path, "launch.yml", *args)
    assert recap(first.stdout)["changed"] >= 2  # stack + inventory
    assert "Jupyter: ssh -N -L 8888:127.0.0.1:8888 ubuntu@" in first.stdout

    cfn, ec2 = boto("cloudformation"), boto("ec2")
    out = {
        o["OutputKey"]: o["OutputValue"]
        for o in cfn.describe_stacks(StackName="dl-launch")["Stacks"][0]["Outputs"]
    }
    iid = out["InstanceId"]
    inventory = (inv_dir / "dl-launch.ini").read_text()
    assert "[workstations]\n" in inventory
    assert f"\n{iid} ansible_host={out['PublicDnsName']} ansible_user=ubuntu\n" in inventory
    assert oct((inv_dir / "dl-launch.ini").stat().st_mode & 0o777) == "0o600"

    second = playbook(aws_env, tmp_path, "launch.yml", *args)
    assert recap(second.stdout) == {**recap(second.stdout), "changed": 0, "failed": 0}
    stacks = [s for s in cfn.describe_stacks()["Stacks"] if s["StackName"] == "dl-launch"]
    assert len(stacks) == 1
    assert (inv_dir / "dl-launch.ini").read_text() == inventory

    gone = playbook(
        aws_env, tmp_path, "destroy.yml",
        "-e", "cloud_stack_name=dl-launch", "-e", f"cloud_inventory_dir={inv_dir}",
    )  # fmt: skip
    assert "No instance of dl-launch is left." in gone.stdout
    state = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]
    assert state["Name"] == "terminated"
    assert not (inv_dir / "dl-launch.ini").exists()
    assert "dl-launch" not in [
        s["StackName"]
        for s in cfn.list_stacks()["StackSummaries"]
        if s["StackStatus"] != "DELETE_COMPLETE"
    ]
    again = playbook(
        aws_env, tmp_path, "destroy.yml",
        "-e", "cloud_stack_name=dl-launch", "-e", f"cloud_inventory_dir={inv_dir}",
    )  # fmt: skip
    assert recap(again.stdout)["failed"] == 0  # rerunnable


@pytest.mark.parametrize(
    "extra,message",
    [
        (["-e", "cloud_allowed_ssh_cidr=0.0.0.0/0"], "0.0.0.0/0 is refused"),
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
    assert message in res.stdout
    live = [
        s["StackName"]
        for s in boto("cloudformation").list_stacks()["StackSummaries"]
        if s["StackStatus"] != "DELETE_COMPLETE"
    ]
    assert "dl-bad" not in live
    assert not (tmp_path / "inv").exists()
