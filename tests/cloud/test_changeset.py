"""Which updates replace the machine: CloudFormation's own answer, the offline prediction, and the
GCP plan guard. The end-to-end refusal against moto is in test_aws_stack.py."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

from .conftest import CLOUD, load_script
from .test_cfn_static import TEMPLATE

changeset = load_script("aws/changeset.py")
plan_guard = load_script("gcp/plan_guard.py")

PARAMS = {
    "AllowedSshCidr": "198.51.100.7/32",
    "ImageId": "ami-0123456789abcdef0",
    "AvailabilityZone": "us-east-1a",
    "SubnetId": "subnet-1",
    "InstanceType": "g5.xlarge",
    "KeyName": "",
    "UseSpot": "false",
    "RootVolumeGiB": "100",
    "DataVolumeGiB": "100",
    "BackstopIdlePeriods": "24",
    "BackstopCpuPercent": "12.50",
    "Owner": "alice",
}


@pytest.fixture(scope="module")
def template():
    return changeset.load_template(TEMPLATE.read_text())


def predict(template, **changed):
    return changeset.predict(template, PARAMS, template, {**PARAMS, **changed})


@pytest.mark.parametrize(
    "change,resource,props",
    [
        ({"ImageId": "ami-0fedcba9876543210"}, "Instance", ["ImageId"]),
        ({"KeyName": "laptop"}, "Instance", ["KeyName"]),
        ({"SubnetId": "subnet-2"}, "Instance", ["SubnetId"]),
        ({"RootVolumeGiB": "200"}, "Instance", ["BlockDeviceMappings"]),
        # Spot lives in the launch template: a new version of it replaces the instance.
        ({"UseSpot": "true"}, "Instance", ["LaunchTemplate"]),
    ],
)
def test_replacing_changes_are_named(template, change, resource, props):
    (found,) = predict(template, **change)
    assert (found["resource"], found["properties"], found["action"]) == (resource, props, "replace")


def test_a_new_zone_would_replace_both_the_instance_and_the_data_volume(template):
    found = {
        f["resource"]: f["properties"] for f in predict(template, AvailabilityZone="us-east-1b")
    }
    assert found == {"Instance": ["AvailabilityZone"], "DataVolume": ["AvailabilityZone"]}


@pytest.mark.parametrize(
    "change",
    [
        {"BackstopIdlePeriods": "60"},  # the idle minutes feed only the alarm
        {"AllowedSshCidr": "203.0.113.0/24"},  # the security group rule
        {"InstanceType": "g6.xlarge"},  # a stop and start, not a replacement
        {"DataVolumeGiB": "500"},  # EBS grows in place
        {"Owner": "bob"},  # tags
    ],
)
def test_in_place_changes_replace_nothing(template, change):
    assert predict(template, **change) == []


def test_removing_the_data_volume_is_a_delete(template):
    new = copy.deepcopy(template)
    del new["Resources"]["DataVolume"]
    assert {"resource": "DataVolume", "type": "AWS::EC2::Volume", "properties": [],
            "action": "delete"} in changeset.predict(template, PARAMS, new, PARAMS)  # fmt: skip


def test_a_new_user_data_is_not_pushed_to_a_running_instance(template):
    new = copy.deepcopy(template)
    new["Resources"]["Instance"]["Properties"]["UserData"] = {"Fn::Base64": "#cloud-config\n"}
    assert changeset.keep_user_data(template, new) is True
    assert new["Resources"]["Instance"] == template["Resources"]["Instance"]
    assert changeset.keep_user_data(template, new) is False  # already the same


# --- CloudFormation's own answer (the shape AWS returns; moto omits these fields) --------------


def aws_change(replacement, *details, rtype="AWS::EC2::Instance", action="Modify"):
    return {
        "Type": "Resource",
        "ResourceChange": {
            "Action": action,
            "LogicalResourceId": "Instance" if rtype == "AWS::EC2::Instance" else "DataVolume",
            "ResourceType": rtype,
            "Replacement": replacement,
            "Details": [
                {
                    "Target": {"Attribute": "Properties", "Name": name, "RequiresRecreation": rr},
                    "Evaluation": "Static",
                    "ChangeSource": "DirectModification",
                }
                for name, rr in details
            ],
        },
    }


def test_cloudformations_answer_is_used_when_given():
    changes = [
        aws_change("True", ("ImageId", "Always"), ("InstanceType", "Never")),
        {"Type": "Resource", "ResourceChange": {"Action": "Modify", "Replacement": "False",
                                                "LogicalResourceId": "SecurityGroup",
                                                "ResourceType": "AWS::EC2::SecurityGroup"}},
    ]  # fmt: skip
    (found,) = changeset.from_change_set(changes)
    assert found["properties"] == ["ImageId"] and found["action"] == "replace"
    assert changeset.from_change_set([aws_change("False", ("InstanceType", "Never"))]) == []


def test_conditional_replacement_is_refused_too():
    (found,) = changeset.from_change_set([aws_change("Conditional", ("SubnetId", "Conditionally"))])
    assert found["properties"] == ["SubnetId"]


def test_a_removed_volume_in_the_answer_is_a_delete():
    change = aws_change(None, rtype="AWS::EC2::Volume", action="Remove")
    del change["ResourceChange"]["Replacement"]
    (found,) = changeset.from_change_set([change])
    assert (found["resource"], found["action"]) == ("DataVolume", "delete")


def test_moto_style_change_sets_give_no_answer():
    change = {"Action": "Modify", "LogicalResourceId": "Instance"}
    moto = [
        {"Type": "Resource", "ResourceChange": {**change, "ResourceType": "AWS::EC2::Instance"}}
    ]
    assert changeset.from_change_set(moto) is None


def test_replacing_properties_cover_the_resource_schema():
    """The table is taken from the EC2 instance registry schema that cfn-lint bundles."""
    cfnlint = pytest.importorskip("cfnlint")
    from pathlib import Path

    create_only: set[str] = set()
    for path in (Path(cfnlint.__file__).parent / "data" / "schemas" / "resources").glob("*.json"):
        text = path.read_text()
        if "AWS::EC2::Instance" not in text:
            continue
        schema = json.loads(text)
        if schema.get("typeName") == "AWS::EC2::Instance":
            create_only |= {p.rsplit("/", 1)[1] for p in schema.get("createOnlyProperties", [])}
    assert create_only, "cfn-lint no longer bundles the AWS::EC2::Instance schema"
    assert create_only <= set(changeset.REPLACING_PROPERTIES["AWS::EC2::Instance"])


# --- GCP: terraform plan ----------------------------------------------------------------------


def plan(*resource_changes):
    return {"format_version": "1.2", "resource_changes": list(resource_changes)}


def rc(address, actions, replace_paths=None, rtype=None):
    change = {"actions": actions}
    if replace_paths is not None:
        change["replace_paths"] = replace_paths
    return {"address": address, "mode": "managed", "type": rtype or address.split(".")[0],
            "change": change}  # fmt: skip


def test_plan_replacing_the_vm_is_refused_with_the_attribute():
    p = plan(
        rc(
            "google_compute_instance.gpu",
            ["delete", "create"],
            [["scheduling", 0, "max_run_duration"]],
        ),
        rc("google_compute_firewall.ssh", ["update"]),
    )
    refused, changes = plan_guard.judge(p)
    assert refused == [{"address": "google_compute_instance.gpu", "action": "replace",
                        "because": ["scheduling.0.max_run_duration"]}]  # fmt: skip
    assert "update google_compute_firewall.ssh" in changes


def test_plan_in_place_updates_pass():
    p = plan(
        rc("google_compute_instance.gpu", ["update"]), rc("google_compute_disk.data", ["no-op"])
    )
    assert plan_guard.judge(p)[0] == []


def test_plan_deleting_the_data_disk_is_refused():
    refused, _ = plan_guard.judge(plan(rc("google_compute_disk.data", ["delete"])))
    assert refused[0]["action"] == "delete"


def run_guard(tmp_path, data, *args):
    path = tmp_path / "plan.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    cmd = [sys.executable, str(CLOUD / "gcp" / "plan_guard.py"), str(path), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def test_plan_guard_cli(tmp_path):
    spot = plan(rc("google_compute_instance.gpu", ["create", "delete"],
                   [["scheduling", 0, "provisioning_model"]]))  # fmt: skip
    res = run_guard(tmp_path, spot)
    assert res.returncode == 3
    assert (
        "would replace google_compute_instance.gpu (because of scheduling.0.provisioning_model)"
        in (res.stderr)
    )
    assert run_guard(tmp_path, spot, "--allow-replace").returncode == 0
    assert run_guard(tmp_path, plan(rc("google_compute_firewall.ssh", ["update"]))).returncode == 0
    bad = run_guard(tmp_path, "{truncated")
    assert bad.returncode == 2 and "not a Terraform JSON plan" in bad.stderr
    assert "Traceback" not in bad.stderr
