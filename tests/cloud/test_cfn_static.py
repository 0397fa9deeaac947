"""The CloudFormation template, statically: cfn-lint, checkov, and the checks checkov misses."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import CLOUD, load_script, tool

TEMPLATE = CLOUD / "aws" / "template.yaml"
POLICIES = CLOUD / "aws" / "policies"


# The template loader the update guard uses (short tags such as !Ref into their long form).
load = load_script("aws/changeset.py").load_template


@pytest.fixture(scope="module")
def cfn() -> dict:
    return load(TEMPLATE.read_text())


# --- the custom checks, as functions so they can be shown to catch a bad template -------------


def ingress_rules(t: dict) -> list[dict]:
    rules = []
    for res in t["Resources"].values():
        if res["Type"] == "AWS::EC2::SecurityGroup":
            rules += res["Properties"].get("SecurityGroupIngress", [])
        elif res["Type"] == "AWS::EC2::SecurityGroupIngress":
            rules.append(res["Properties"])
    return rules


def violations(t: dict) -> list[str]:
    found = []
    for rule in ingress_rules(t):
        if rule.get("CidrIp") == "0.0.0.0/0" or rule.get("CidrIpv6") == "::/0":
            found.append(f"world-open ingress {rule}")
        if str(rule.get("IpProtocol")) == "-1":
            found.append(f"all-ports ingress {rule}")
        elif int(rule["FromPort"]) <= 8888 <= int(rule["ToPort"]):
            found.append(f"ingress covers Jupyter's 8888 {rule}")
    for name, res in t["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::EC2::Instance":
            if props.get("MetadataOptions", {}).get("HttpTokens") != "required":
                found.append(f"{name}: IMDSv2 not required")
            for bdm in props.get("BlockDeviceMappings", []):
                if bdm.get("Ebs", {}).get("Encrypted") is not True:
                    found.append(f"{name}: unencrypted volume {bdm.get('DeviceName')}")
        if res["Type"] == "AWS::EC2::LaunchTemplate":
            meta = props["LaunchTemplateData"].get("MetadataOptions", {})
            if meta.get("HttpTokens") != "required":
                found.append(f"{name}: IMDSv2 not required")
    return found


def bad_template() -> str:
    """The real template with the four classic mistakes put in."""
    text = TEMPLATE.read_text()
    text = text.replace("          CidrIp: !Ref AllowedSshCidr", "          CidrIp: 0.0.0.0/0", 1)
    text = text.replace(
        "          Description: SSH from the CIDR the user gave\n",
        "          Description: SSH from the CIDR the user gave\n"
        "        - {IpProtocol: tcp, FromPort: 8000, ToPort: 9000, CidrIp: 10.0.0.0/8,"
        " Description: Jupyter}\n",
    )
    text = text.replace("            Encrypted: true", "            Encrypted: false")
    # At this indentation MetadataOptions belongs to the instance (the launch template's is deeper).
    head, sep, tail = text.partition("      MetadataOptions:\n        HttpTokens: required")
    assert sep, "template layout changed; update bad_template()"
    return head + "      MetadataOptions:\n        HttpTokens: optional" + tail


def test_custom_checks_pass_on_the_template(cfn):
    assert violations(cfn) == []


def test_custom_checks_catch_the_classic_mistakes():
    found = "\n".join(violations(load(bad_template())))
    assert "world-open ingress" in found
    assert "8888" in found
    assert "Instance: IMDSv2 not required" in found
    assert "unencrypted volume" in found


# --- facts of the template --------------------------------------------------------------------


@pytest.mark.parametrize(
    "cidr,ok",
    [
        ("203.0.113.7/32", True),
        ("10.0.0.0/8", True),
        ("0.0.0.0/0", False),
        ("0.0.0.0/1", False),
        ("128.0.0.0/1", False),
        ("0.0.0.0/7", False),
        ("203.0.113.7", False),
        ("::/0", False),
    ],
)
def test_ssh_cidr_has_no_default_and_refuses_the_world(cfn, cidr, ok):
    p = cfn["Parameters"]["AllowedSshCidr"]
    assert "Default" not in p
    assert bool(re.compile(p["AllowedPattern"]).fullmatch(cidr)) is ok


def test_only_ssh_is_ingress(cfn):
    rules = ingress_rules(cfn)
    assert [(r["FromPort"], r["ToPort"]) for r in rules] == [(22, 22)]
    assert rules[0]["CidrIp"] == {"Ref": "AllowedSshCidr"}


def test_instance_types_cover_the_gpu_families(cfn):
    allowed = cfn["Parameters"]["InstanceType"]["AllowedValues"]
    assert {t.split(".")[0] for t in allowed} == {"g4dn", "g5", "g6", "g6e", "p4d", "p5"}
    assert cfn["Parameters"]["InstanceType"]["Default"] in allowed


def test_image_is_a_pinned_id_not_an_ssm_parameter(cfn):
    """CloudFormation re-resolves SSM parameter types on every update: a new DLAMI release would
    replace the instance. launch.yml resolves the name once and passes the id."""
    assert cfn["Parameters"]["ImageId"]["Type"] == "AWS::EC2::Image::Id"
    assert "Default" not in cfn["Parameters"]["ImageId"]
    types = {p["Type"] for p in cfn["Parameters"].values()}
    assert not any(t.startswith("AWS::SSM::Parameter::Value") for t in types)


def test_root_volume_is_encrypted_gp3_os_only(cfn):
    (bdm,) = cfn["Resources"]["Instance"]["Properties"]["BlockDeviceMappings"]
    assert bdm["Ebs"] == {
        "VolumeType": "gp3",
        "VolumeSize": {"Ref": "RootVolumeGiB"},
        "Encrypted": True,
        "DeleteOnTermination": True,
    }


def test_data_volume_survives_updates_and_deletion(cfn):
    vol = cfn["Resources"]["DataVolume"]
    assert vol["Type"] == "AWS::EC2::Volume"
    assert vol["DeletionPolicy"] == "Retain" and vol["UpdateReplacePolicy"] == "Retain"
    props = vol["Properties"]
    assert props["Encrypted"] is True and props["VolumeType"] == "gp3"
    # Same zone as the instance by one parameter, so neither depends on the other's attributes.
    assert props["AvailabilityZone"] == {"Ref": "AvailabilityZone"}
    assert cfn["Resources"]["Instance"]["Properties"]["AvailabilityZone"] == {
        "Ref": "AvailabilityZone"
    }
    attach = cfn["Resources"]["DataVolumeAttachment"]["Properties"]
    assert attach["VolumeId"] == {"Ref": "DataVolume"}
    assert cfn["Outputs"]["DataVolumeId"]["Value"] == {"Ref": "DataVolume"}


def test_stack_policy_denies_replacing_or_deleting_the_data_volume():
    policy = json.loads((CLOUD / "aws" / "stack-policy.json").read_text())
    deny = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert deny == [
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": ["Update:Replace", "Update:Delete"],
            "Resource": "LogicalResourceId/DataVolume",
        }
    ]


def test_launch_template_does_not_change_with_who_runs_it(cfn):
    """A new launch template version replaces the instance: no per-user values in it."""
    data = json.dumps(cfn["Resources"]["LaunchTemplate"]["Properties"])
    assert "Owner" not in data
    refs = set(re.findall(r'"Ref": "(\w+)"', data))
    assert refs <= {"AWS::StackName", "AWS::NoValue"}


def test_user_data_has_no_parameter(cfn):
    """A changed UserData stops and starts the instance; the idle minutes are a playbook var."""
    user_data = cfn["Resources"]["Instance"]["Properties"]["UserData"]["Fn::Base64"]
    assert isinstance(user_data, str) and "${" not in user_data


def test_spot_goes_through_the_launch_template_stops_and_tags_its_requests(cfn):
    lt = cfn["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]
    cond, spot, none = lt["InstanceMarketOptions"]["Fn::If"]
    assert cond == "IsSpot" and none == {"Ref": "AWS::NoValue"}
    assert spot["SpotOptions"] == {
        "SpotInstanceType": "persistent",
        "InstanceInterruptionBehavior": "stop",
    }
    (tags,) = lt["TagSpecifications"]
    assert tags["ResourceType"] == "spot-instances-request"
    assert {"Key": "dlcheck:stack", "Value": {"Ref": "AWS::StackName"}} in tags["Tags"]
    inst = cfn["Resources"]["Instance"]["Properties"]
    assert inst["LaunchTemplate"]["LaunchTemplateId"] == {"Ref": "LaunchTemplate"}
    assert inst["InstanceInitiatedShutdownBehavior"] == "stop"


def test_ssm_role_and_backstop_alarm(cfn):
    role = cfn["Resources"]["InstanceRole"]["Properties"]
    assert any("AmazonSSMManagedInstanceCore" in json.dumps(a) for a in role["ManagedPolicyArns"])
    alarm = cfn["Resources"]["IdleBackstopAlarm"]["Properties"]
    assert alarm["ComparisonOperator"] == "LessThanThreshold"
    assert ":ec2:stop" in json.dumps(alarm["AlarmActions"])
    # Scales with the instance: launch.yml passes half of one vCPU as a percentage.
    assert alarm["Threshold"] == {"Ref": "BackstopCpuPercent"}


def test_outputs(cfn):
    want = {
        "InstanceId",
        "PublicDnsName",
        "SshCommand",
        "JupyterSshTunnelCommand",
        "JupyterSsmTunnelCommand",
        "AnsibleInventoryLine",
        "DataVolumeId",
        "AvailabilityZone",
    }
    assert want <= set(cfn["Outputs"])
    tunnel = json.dumps(cfn["Outputs"]["JupyterSshTunnelCommand"])
    assert "-L 8888:127.0.0.1:8888" in tunnel


def test_user_data_is_the_rendered_common_file(cfn):
    """template.yaml and user-data.yaml both come from cloud/common; neither has drifted."""
    res = subprocess.run(
        [sys.executable, str(CLOUD / "common" / "render_user_data.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    user_data = cfn["Resources"]["Instance"]["Properties"]["UserData"]["Fn::Base64"]
    assert user_data == (CLOUD / "common" / "user-data.yaml").read_text()
    assert len(user_data.encode()) < 16 * 1024  # EC2's user-data limit


# --- linters ----------------------------------------------------------------------------------


def test_cfn_lint_clean():
    res = subprocess.run([tool("cfn-lint"), str(TEMPLATE)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def run_checkov(checkov: str, target: Path, *extra: str) -> dict:
    res = subprocess.run(
        [checkov, "--skip-download", "-o", "json", *extra, str(target)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.stdout.strip(), res.stderr
    out = json.loads(res.stdout)
    return out[0] if isinstance(out, list) else out


CFN_ARGS = ("--framework", "cloudformation", "--external-checks-dir", str(POLICIES), "-f")


def test_checkov_clean_with_custom_policies(checkov):
    out = run_checkov(checkov, TEMPLATE, *CFN_ARGS)
    failed = [c["check_id"] for c in out["results"]["failed_checks"]]
    passed = {c["check_id"] for c in out["results"]["passed_checks"]}
    assert failed == []
    assert {"CKV2_DLCHECK_1", "CKV2_DLCHECK_2", "CKV2_DLCHECK_3", "CKV_AWS_79"} <= passed
    assert out["results"]["skipped_checks"] == []  # the template needs no suppression


def test_checkov_custom_policies_catch_the_classic_mistakes(checkov, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(bad_template())
    out = run_checkov(checkov, bad, *CFN_ARGS)
    failed = {c["check_id"] for c in out["results"]["failed_checks"]}
    assert {"CKV2_DLCHECK_1", "CKV2_DLCHECK_2", "CKV2_DLCHECK_3"} <= failed
