#!/usr/bin/env python3
"""Catch the usual cloud launch failures before (or right after) they happen, in plain language.

  preflight.py aws --region R --instance-type T --image-parameter P [--spot]
      Checks credentials, that the image's SSM parameter resolves, that the instance type is
      offered in the region, and the GPU vCPU quota. Exit 1 with a fix per problem.
  preflight.py explain < error-output
      Translates a known cloud error (VcpuLimitExceeded, InsufficientInstanceCapacity,
      GPUS_ALL_REGIONS, ZONE_RESOURCE_POOL_EXHAUSTED, image not found, ...) into a problem and a
      fix. Use it on `terraform apply` output or a failed CloudFormation stack's events.

The AWS checks use boto3 (the same Python that runs amazon.aws has it); AWS_ENDPOINT_URL is
honoured, so the tests run them against a local moto server. `explain` is stdlib only.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass

DLAMI_TREE = "/aws/service/deeplearning/ami/x86_64/"
# vCPU quota codes for the GPU instance families (EC2 quotas count vCPUs per region).
QUOTA_CODES = {
    ("g", False): ("L-DB2E81BA", "Running On-Demand G and VT instances"),
    ("g", True): ("L-3819A6DF", "All G and VT Spot Instance Requests"),
    ("p", False): ("L-417A185B", "Running On-Demand P instances"),
    ("p", True): ("L-7212CCBC", "All P Spot Instance Requests"),
}


@dataclass(frozen=True)
class Finding:
    problem: str
    fix: str

    def render(self) -> str:
        return f"problem: {self.problem}\n    fix: {self.fix}"


# --- explain: error text -> finding -------------------------------------------------------------


def _capacity_aws(m: re.Match, text: str) -> Finding:
    zones = re.search(r"choosing ([a-z0-9-]+(?:, [a-z0-9-]+)*)", text)
    where = f" AZs that have it now: {zones.group(1)}." if zones else ""
    return Finding(
        "AWS has no free capacity for this instance type in that Availability Zone right now.",
        "Retry with SubnetId set to a subnet in another AZ, another region, or another GPU family"
        f" (g6/g5/g4dn).{where}",
    )


PATTERNS: list[tuple[str, object]] = [
    (
        r"VcpuLimitExceeded|vCPU capacity than your current vCPU limit",
        Finding(
            "Your EC2 vCPU quota for this GPU family is too low (new accounts often have 0).",
            "Ask for more: aws service-quotas request-service-quota-increase --service-code ec2"
            " --quota-code L-DB2E81BA --desired-value 8 (G family; P family: L-417A185B;"
            " Spot: L-3819A6DF / L-7212CCBC). The value counts vCPUs: g5.xlarge needs 4.",
        ),
    ),
    (r"InsufficientInstanceCapacity", _capacity_aws),
    (
        r"GPUS_ALL_REGIONS",
        Finding(
            "Your Google Cloud project's global GPU quota (GPUS_ALL_REGIONS) is 0 or used up.",
            "Request 'GPUs (all regions)' >= 1 at https://console.cloud.google.com/iam-admin/quotas"
            " and the regional quota for your GPU too (e.g. NVIDIA_L4_GPUS); free-trial accounts"
            " must upgrade to a paid account first.",
        ),
    ),
    (
        r"Quota '(?:PREEMPTIBLE_)?NVIDIA_\w+_GPUS' exceeded",
        Finding(
            "The regional GPU quota for this accelerator is too low in that region.",
            "Request more of the quota named in the error at"
            " https://console.cloud.google.com/iam-admin/quotas, or pick another region/zone.",
        ),
    ),
    (
        r"ZONE_RESOURCE_POOL_EXHAUSTED",
        Finding(
            "Google Cloud has no free machines of this type in that zone right now.",
            "Set zone to another zone that offers the GPU (gcloud compute accelerator-types list"
            " --filter='name=nvidia-l4'), retry later, or try spot = true/false the other way.",
        ),
    ),
    (
        r"Unable to fetch parameters|ParameterNotFound|parameter .* (?:not found|does not exist)",
        Finding(
            "The image's SSM parameter name does not resolve in this region (AMI names drift).",
            f"List the current names: aws ssm get-parameters-by-path --path {DLAMI_TREE}"
            " --recursive --query 'Parameters[].Name', then pass one as ImageParameter"
            " (cloud_image_parameter in launch.yml).",
        ),
    ),
    (
        r"global/images/family/[\w-]+' was not found|images/family/[\w-]+.* not found",
        Finding(
            "The image family does not exist (Deep Learning VM families are renamed often).",
            "List them: gcloud compute images list --project deeplearning-platform-release"
            " --no-standard-images --filter='family~pytorch' and set image_family.",
        ),
    ),
    (
        r"InvalidBlockDeviceMapping.*smaller than snapshot",
        Finding(
            "The root volume is smaller than the image's snapshot.",
            "Raise RootVolumeGiB (cloud_root_volume_gib) to at least the size the error names.",
        ),
    ),
    (
        r"UnauthorizedOperation|AccessDenied|not authorized to perform",
        Finding(
            "Your AWS identity lacks a permission the stack needs (EC2, IAM role, CloudWatch).",
            "Use a role with EC2, IAM (CreateRole/PassRole), CloudFormation and CloudWatch rights;"
            " the error names the missing action.",
        ),
    ),
]


def explain(text: str) -> Finding | None:
    """The first known failure in `text`, or None."""
    for pattern, finding in PATTERNS:
        m = re.search(pattern, text, flags=re.IGNORECASE)
        if m:
            return finding(m, text) if callable(finding) else finding
    return None


# --- AWS preflight ------------------------------------------------------------------------------


def aws_preflight(session, instance_type: str, image_parameter: str, spot: bool) -> list[Finding]:
    """Problems found before creating the stack (empty list = go)."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    region = session.region_name
    try:
        session.client("sts").get_caller_identity()
    except NoCredentialsError:
        return [
            Finding(
                "No AWS credentials found.",
                "Run `aws configure` or `aws sso login`, or set AWS_PROFILE.",
            )
        ]
    except ClientError as exc:
        return [Finding(f"AWS refused the credentials: {exc}", "Refresh them (aws sso login).")]

    found: list[Finding] = []
    try:
        value = session.client("ssm").get_parameter(Name=image_parameter)["Parameter"]["Value"]
        print(f"preflight: image {image_parameter} -> {value}", file=sys.stderr)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ParameterNotFound":
            raise
        f = explain("ParameterNotFound")
        found.append(Finding(f"Image parameter {image_parameter} not found in {region}.", f.fix))

    ec2 = session.client("ec2")
    offers = ec2.describe_instance_type_offerings(
        LocationType="region", Filters=[{"Name": "instance-type", "Values": [instance_type]}]
    )["InstanceTypeOfferings"]
    if not offers:
        found.append(
            Finding(
                f"{instance_type} is not offered in {region}.",
                f"Pick another region or type: aws ec2 describe-instance-type-offerings"
                f" --region {region} --filters Name=instance-type,Values='g*,p*'",
            )
        )
        return found

    vcpus = ec2.describe_instance_types(InstanceTypes=[instance_type])["InstanceTypes"][0][
        "VCpuInfo"
    ]["DefaultVCpus"]
    code, title = QUOTA_CODES[(instance_type[0], spot)]
    try:
        quota = session.client("service-quotas").get_service_quota(
            ServiceCode="ec2", QuotaCode=code
        )["Quota"]["Value"]
    except (ClientError, BotoCoreError) as exc:
        print(f"preflight: could not read quota {code} ({exc}); not checked", file=sys.stderr)
        return found
    if quota < vcpus:
        found.append(
            Finding(
                f"Quota '{title}' is {quota:g} vCPUs in {region}; {instance_type} needs {vcpus}.",
                "aws service-quotas request-service-quota-increase --service-code ec2"
                f" --quota-code {code} --desired-value {vcpus} --region {region}"
                " (approval can take a day; new accounts start at 0).",
            )
        )
    else:
        print(f"preflight: quota '{title}' {quota:g} >= {vcpus} vCPUs", file=sys.stderr)
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("aws", help="check an AWS account before creating the stack")
    a.add_argument("--region", required=True)
    a.add_argument("--instance-type", required=True)
    a.add_argument("--image-parameter", required=True)
    a.add_argument("--spot", action="store_true")
    sub.add_parser("explain", help="translate a cloud error read from stdin")
    args = p.parse_args(argv)

    if args.cmd == "explain":
        finding = explain(sys.stdin.read())
        if finding:
            print(finding.render())
        return 0

    if args.instance_type[0] not in "gp":
        print(f"preflight: {args.instance_type} is not a g* or p* GPU type", file=sys.stderr)
        return 2
    try:
        import boto3
    except ImportError:
        print("preflight: boto3 is missing; fix: pip install boto3", file=sys.stderr)
        return 2
    findings = aws_preflight(
        boto3.session.Session(region_name=args.region),
        args.instance_type,
        args.image_parameter,
        args.spot,
    )
    for f in findings:
        print(f.render())
    if not findings:
        print(f"preflight: OK ({args.instance_type} in {args.region})")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
