"""Preflight: the usual launch failures, translated into a problem and a fix."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import CLOUD, load_script, require_module

preflight = load_script("common/preflight.py")

SCRIPT = CLOUD / "common" / "preflight.py"
DLAMI = "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-24.04/latest/ami-id"

# Error texts as the clouds print them (quoted in the issue threads the reference cites).
ERRORS = {
    "vcpu": (
        "An error occurred (VcpuLimitExceeded) when calling the RunInstances operation: You have"
        " requested more vCPU capacity than your current vCPU limit of 0 allows for the instance"
        " bucket that the specified instance type belongs to.",
        "L-DB2E81BA",
    ),
    "capacity": (
        "InsufficientInstanceCapacity: We currently do not have sufficient g4dn.xlarge capacity in"
        " the Availability Zone you requested (eu-west-1b). Our system will be working on"
        " provisioning additional capacity. You can currently get g4dn.xlarge capacity by not"
        " specifying an Availability Zone in your request or choosing eu-west-1a, eu-west-1c.",
        "eu-west-1a, eu-west-1c",
    ),
    "gpus_all_regions": (
        "Error: Error creating instance: googleapi: Error 403: Quota 'GPUS_ALL_REGIONS' exceeded."
        " Limit: 0.0 globally., quotaExceeded",
        "GPUs (all regions)",
    ),
    "zone": (
        "Error: Error waiting for instance to create: The zone 'projects/p/zones/us-central1-a'"
        " does not have enough resources available to fulfill the request. '(resource type:"
        "compute)'. ZONE_RESOURCE_POOL_EXHAUSTED",
        "accelerator-types list",
    ),
    "aws_image": (
        "Parameters: [ImageParameter] Unable to fetch parameters [/aws/service/deeplearning/ami/"
        "x86_64/base-oss-nvidia-driver-ubuntu-22.04/latest/ami-id] from parameter store for this"
        " account.",
        "get-parameters-by-path",
    ),
    "gcp_image": (
        "Error: error retrieving image: The resource 'projects/deeplearning-platform-release/"
        "global/images/family/pytorch-latest-gpu' was not found",
        "deeplearning-platform-release",
    ),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_explain_known_errors(name):
    text, must_mention = ERRORS[name]
    finding = preflight.explain(text)
    assert finding is not None
    assert must_mention in finding.fix


def test_explain_unknown_error_says_nothing():
    assert preflight.explain("Error: something entirely different") is None


def test_explain_cli_reads_stdin():
    res = subprocess.run(
        [sys.executable, str(SCRIPT), "explain"],
        input=ERRORS["gpus_all_regions"][0],
        capture_output=True,
        text=True,
        check=True,
    )
    assert res.stdout.startswith("problem: Your Google Cloud project's global GPU quota")
    assert "\n    fix: " in res.stdout


def run_aws(aws_env, *args):
    return subprocess.run(
        [sys.executable, str(SCRIPT), "aws", "--region", "us-east-1", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.integration
def test_aws_preflight_passes_on_a_good_request(aws_env):
    res = run_aws(aws_env, "--instance-type", "g5.xlarge", "--image-parameter", DLAMI)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "preflight: OK (g5.xlarge in us-east-1)" in res.stdout
    assert "-> ami-" in res.stderr  # the DLAMI name resolved to an image id


@pytest.mark.integration
def test_aws_preflight_catches_an_image_name_that_does_not_resolve(aws_env):
    wrong = DLAMI.replace("-gpu-ubuntu", "-ubuntu")  # the docs' spelling that drifted
    res = run_aws(aws_env, "--instance-type", "g5.xlarge", "--image-parameter", wrong)
    assert res.returncode == 1
    assert f"problem: Image parameter {wrong} not found in us-east-1." in res.stdout
    assert "get-parameters-by-path" in res.stdout
    assert "Traceback" not in res.stderr


@pytest.mark.integration
def test_aws_preflight_without_credentials(aws_env, monkeypatch):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    res = run_aws(aws_env, "--instance-type", "g5.xlarge", "--image-parameter", DLAMI)
    assert res.returncode == 1
    assert "problem: No AWS credentials found." in res.stdout


def quota_session(boto3, value):
    """A boto3 session on moto whose Service Quotas answers are stubbed: moto has no EC2 quotas,
    so that one service is the seam; credentials, SSM and EC2 stay real moto calls."""
    from botocore.stub import Stubber

    session = boto3.session.Session(region_name="us-east-1")
    real_client = session.client

    def client(name, **kw):
        c = real_client(name, **kw)
        if name == "service-quotas":
            stub = Stubber(c)
            stub.add_response(
                "get_service_quota",
                {"Quota": {"QuotaCode": "L-DB2E81BA", "Value": value}},
                {"ServiceCode": "ec2", "QuotaCode": "L-DB2E81BA"},
            )
            stub.activate()
        return c

    session.client = client
    return session


@pytest.mark.integration
def test_aws_preflight_gpu_quota(aws_env):
    boto3 = require_module("boto3")
    low = preflight.aws_preflight(quota_session(boto3, 0.0), "g5.xlarge", DLAMI, spot=False)
    (finding,) = low
    assert finding.problem == (
        "Quota 'Running On-Demand G and VT instances' is 0 vCPUs in us-east-1; g5.xlarge needs 4."
    )
    assert "--quota-code L-DB2E81BA --desired-value 4" in finding.fix
    assert preflight.aws_preflight(quota_session(boto3, 8.0), "g5.xlarge", DLAMI, False) == []


@pytest.mark.parametrize(
    "instance_type,spot,code",
    [
        ("g5.xlarge", False, "L-DB2E81BA"),
        ("g6e.12xlarge", True, "L-3819A6DF"),
        ("p4d.24xlarge", False, "L-417A185B"),
        ("p4d.24xlarge", True, "L-7212CCBC"),
        ("p5.48xlarge", False, "L-417A185B"),
        ("p5.4xlarge", True, "L-C4BD4855"),  # not the P4/P3/P2 Spot quota
    ],
)
def test_quota_code_per_family(instance_type, spot, code):
    assert preflight.quota_for(instance_type, spot)[0] == code


def test_every_template_type_has_a_quota():
    from .test_cfn_static import TEMPLATE, load

    template = load(TEMPLATE.read_text())
    for instance_type in template["Parameters"]["InstanceType"]["AllowedValues"]:
        for spot in (False, True):
            assert preflight.quota_for(instance_type, spot), instance_type


@pytest.mark.parametrize(
    "cidr,normalised",
    [
        ("203.0.113.7/32", "203.0.113.7/32"),
        ("203.0.113.7/24", "203.0.113.0/24"),
        (" 10.0.0.0/8", "10.0.0.0/8"),
    ],
)
def test_cidr_accepted_and_normalised(cidr, normalised):
    assert preflight.check_cidr(cidr) == (normalised, None)


@pytest.mark.parametrize(
    "cidr,words",
    [
        ("0.0.0.0/0", "too wide"),
        ("0.0.0.0/1", "too wide"),
        ("128.0.0.0/1", "too wide"),
        ("64.0.0.0/2", "too wide"),
        ("10.0.0.0/7", "too wide"),
        ("::/0", "is IPv6"),
        ("0::0/0", "is IPv6"),
        ("::ffff:0.0.0.0/96", "is IPv6"),
        ("203.0.113.7", None),  # a bare address is a /32: fine
        ("my laptop", "is not a CIDR"),
    ],
)
def test_cidr_refuses_every_form_of_the_world(cidr, words):
    normalised, problem = preflight.check_cidr(cidr)
    if words is None:
        assert normalised == "203.0.113.7/32"
    else:
        assert normalised is None and words in problem


@pytest.mark.integration
def test_aws_preflight_json_resolves_what_the_stack_pins(aws_env):
    res = run_aws(aws_env, "--instance-type", "g5.xlarge", "--image-parameter", DLAMI, "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["ok"] and out["image_id"].startswith("ami-") and out["vcpus"] == 4
    assert out["availability_zone"].startswith("us-east-1") and out["subnet_id"].startswith(
        "subnet-"
    )


@pytest.mark.integration
def test_aws_preflight_zone_that_does_not_offer_the_type(aws_env):
    res = run_aws(aws_env, "--instance-type", "g5.xlarge", "--image-parameter", DLAMI,
                  "--availability-zone", "us-east-1z")  # fmt: skip
    assert res.returncode == 1 and "g5.xlarge is not offered in us-east-1z" in res.stdout
