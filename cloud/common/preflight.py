#!/usr/bin/env python3
"""Catch the usual cloud launch failures before (or right after) they happen, in plain language.

  preflight.py region
      The AWS region boto3 would use (AWS_REGION, AWS_DEFAULT_REGION, then the profile's
      `region` in ~/.aws/config); exit 1 with a fix when none is set.
  preflight.py cidr CIDR
      The SSH CIDR, normalised; exit 1 unless it is one IPv4 network of /8 or narrower (no
      0.0.0.0/0, 0.0.0.0/1, 128.0.0.0/1 or any other way of writing "the world").
  preflight.py aws --region R --instance-type T (--image-parameter P | --image-id AMI)
                   [--spot] [--availability-zone Z] [--subnet-id S] [--json]
      Checks credentials, that the image resolves, that the instance type is offered in the
      region and zone, and the GPU vCPU quota; resolves the AMI id, the zone and its default
      subnet, and the vCPU count. Exit 1 with a fix per problem. --json prints one JSON object.
  preflight.py explain < error-output
      Translates a known cloud error (VcpuLimitExceeded, InsufficientInstanceCapacity,
      GPUS_ALL_REGIONS, ZONE_RESOURCE_POOL_EXHAUSTED, image not found, ...) into a problem and a
      fix. Use it on `terraform apply` output or a failed CloudFormation stack's events.

The AWS checks use boto3 (the same Python that runs amazon.aws has it); AWS_ENDPOINT_URL is
honoured, so the tests run them against a local moto server. `explain` is stdlib only.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import sys
from dataclasses import dataclass

DLAMI_TREE = "/aws/service/deeplearning/ami/x86_64/"
# vCPU quota codes per instance family (EC2 quotas count vCPUs per region). Codes and names as
# `aws service-quotas list-service-quotas --service-code ec2` returns them (no AWS page tabulates
# them; public listings of that output agree). On-demand P covers P2 to P6; Spot P5 is a quota of
# its own, apart from "All P4, P3 and P2 Spot Instance Requests". The preflight compares the name
# the API returns with the one here and says so if AWS has renamed or regrouped it.
FAMILY_QUOTAS = {
    # family: (on-demand (code, name), spot (code, name))
    "g": (
        ("L-DB2E81BA", "Running On-Demand G and VT instances"),
        ("L-3819A6DF", "All G and VT Spot Instance Requests"),
    ),
    "p4": (
        ("L-417A185B", "Running On-Demand P instances"),
        ("L-7212CCBC", "All P4, P3 and P2 Spot Instance Requests"),
    ),
    "p5": (
        ("L-417A185B", "Running On-Demand P instances"),
        ("L-C4BD4855", "All P5 Spot Instance Requests"),
    ),
}


def quota_for(instance_type: str, spot: bool) -> tuple[str, str] | None:
    """(code, name) of the vCPU quota that limits `instance_type`, or None if unknown."""
    family = instance_type.split(".")[0]
    if family.startswith("g"):
        key = "g"
    elif family.startswith(("p4", "p3", "p2")):
        key = "p4"
    elif family.startswith("p5"):
        key = "p5"
    else:
        return None
    return FAMILY_QUOTAS[key][1 if spot else 0]


def check_cidr(text: str) -> tuple[str | None, str | None]:
    """(normalised CIDR, None) or (None, problem with fix) for the one network SSH admits."""
    try:
        net = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None, f"{text!r} is not a CIDR; give one such as 203.0.113.7/32"
    if net.version != 4:
        return None, f"{text} is IPv6; the template admits one IPv4 network such as 203.0.113.7/32"
    if net.prefixlen < 8:
        return None, (
            f"{text} is {net.num_addresses:,} addresses, too wide to expose SSH to (prefixes"
            " shorter than /8 are refused); give your own address, e.g."
            " $(curl -s https://checkip.amazonaws.com)/32, or 192.0.2.1/32 for an SSM-only box"
        )
    return str(net), None


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


@dataclass
class Resolved:
    """What the stack needs that the preflight looked up: pinned at first launch, then kept."""

    image_id: str = ""
    availability_zone: str = ""
    subnet_id: str = ""
    vcpus: int = 0


def _default_subnet(ec2, zone: str) -> str:
    subnets = ec2.describe_subnets(
        Filters=[
            {"Name": "default-for-az", "Values": ["true"]},
            {"Name": "availability-zone", "Values": [zone]},
        ]
    )["Subnets"]
    return subnets[0]["SubnetId"] if subnets else ""


def aws_preflight(
    session,
    instance_type: str,
    image_parameter: str,
    spot: bool,
    *,
    image_id: str = "",
    zone: str = "",
    subnet_id: str = "",
    resolved: Resolved | None = None,
) -> list[Finding]:
    """Problems found before creating or updating the stack (empty list = go)."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    resolved = resolved if resolved is not None else Resolved()
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
    ec2 = session.client("ec2")
    if image_id:
        try:
            ec2.describe_images(ImageIds=[image_id])
            resolved.image_id = image_id
        except ClientError:
            found.append(
                Finding(
                    f"Image {image_id} does not exist in {region} (or is not shared with you).",
                    "Pass another -e cloud_image_id=ami-..., or leave it empty on a new stack to"
                    " resolve cloud_image_parameter.",
                )
            )
    else:
        try:
            value = session.client("ssm").get_parameter(Name=image_parameter)["Parameter"]["Value"]
            resolved.image_id = value
            print(f"preflight: image {image_parameter} -> {value}", file=sys.stderr)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ParameterNotFound":
                raise
            f = explain("ParameterNotFound")
            found.append(
                Finding(f"Image parameter {image_parameter} not found in {region}.", f.fix)
            )

    if subnet_id and not zone:
        try:
            (subnet,) = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"]
            zone = subnet["AvailabilityZone"]
        except (ClientError, ValueError):
            found.append(
                Finding(f"Subnet {subnet_id} not found in {region}.", "Check cloud_subnet_id.")
            )
            return found
    offers = ec2.describe_instance_type_offerings(
        LocationType="availability-zone",
        Filters=[{"Name": "instance-type", "Values": [instance_type]}],
    )["InstanceTypeOfferings"]
    zones = sorted(o["Location"] for o in offers)
    if not zones:
        found.append(
            Finding(
                f"{instance_type} is not offered in {region}.",
                f"Pick another region or type: aws ec2 describe-instance-type-offerings"
                f" --region {region} --filters Name=instance-type,Values='g*,p*'",
            )
        )
        return found
    if zone and zone not in zones:
        found.append(
            Finding(
                f"{instance_type} is not offered in {zone}.",
                f"Zones that offer it in {region}: {', '.join(zones)} (cloud_availability_zone,"
                " or a subnet in one of them).",
            )
        )
        return found
    if not zone:  # the first zone that offers the type and has a default subnet
        zone = next((z for z in zones if _default_subnet(ec2, z)), "")
        if not zone:
            found.append(
                Finding(
                    f"No default subnet where {instance_type} is offered ({', '.join(zones)}).",
                    "Give -e cloud_subnet_id=subnet-... (a subnet with outbound internet access).",
                )
            )
            return found
    resolved.availability_zone = zone
    resolved.subnet_id = subnet_id or _default_subnet(ec2, zone)

    vcpus = ec2.describe_instance_types(InstanceTypes=[instance_type])["InstanceTypes"][0][
        "VCpuInfo"
    ]["DefaultVCpus"]
    resolved.vcpus = vcpus
    quota = quota_for(instance_type, spot)
    if quota is None:
        print(f"preflight: no quota known for {instance_type}; not checked", file=sys.stderr)
        return found
    code, title = quota
    try:
        answer = session.client("service-quotas").get_service_quota(
            ServiceCode="ec2", QuotaCode=code
        )["Quota"]
    except (ClientError, BotoCoreError) as exc:
        print(f"preflight: could not read quota {code} ({exc}); not checked", file=sys.stderr)
        return found
    value, name = answer["Value"], answer.get("QuotaName") or title
    if name != title:
        print(f"preflight: AWS calls quota {code} '{name}' (expected '{title}')", file=sys.stderr)
    if value < vcpus:
        found.append(
            Finding(
                f"Quota '{name}' is {value:g} vCPUs in {region}; {instance_type} needs {vcpus}.",
                "aws service-quotas request-service-quota-increase --service-code ec2"
                f" --quota-code {code} --desired-value {vcpus} --region {region}"
                " (approval can take a day; new accounts start at 0).",
            )
        )
    else:
        print(f"preflight: quota '{name}' {value:g} >= {vcpus} vCPUs", file=sys.stderr)
    return found


def resolve_region() -> tuple[str | None, str]:
    """The region boto3 uses (env, then the profile), or None and a fix."""
    try:
        import boto3
    except ImportError:
        return None, "boto3 is missing; fix: pip install boto3"
    from botocore.exceptions import BotoCoreError

    try:
        # AWS_REGION is what the other AWS SDKs and the CLI v2 read; botocore reads only
        # AWS_DEFAULT_REGION and the profile, so look at it first.
        region = os.environ.get("AWS_REGION") or boto3.session.Session().region_name
    except BotoCoreError as exc:  # e.g. AWS_PROFILE names a profile that does not exist
        return None, f"{exc}; fix: check AWS_PROFILE and ~/.aws/config"
    if not region:
        return None, (
            "no AWS region set; fix: -e cloud_region=eu-west-1, or export AWS_REGION, or"
            " `aws configure set region eu-west-1` for your profile"
        )
    return region, ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("region", help="print the AWS region boto3 would use")
    c = sub.add_parser("cidr", help="check and normalise the SSH CIDR")
    c.add_argument("cidr")
    a = sub.add_parser("aws", help="check an AWS account before creating or updating the stack")
    a.add_argument("--region", required=True)
    a.add_argument("--instance-type", required=True)
    image = a.add_mutually_exclusive_group(required=True)
    image.add_argument("--image-parameter")
    image.add_argument("--image-id")
    a.add_argument("--availability-zone", default="")
    a.add_argument("--subnet-id", default="")
    a.add_argument("--spot", action="store_true")
    a.add_argument("--json", action="store_true", help="one JSON object on stdout")
    sub.add_parser("explain", help="translate a cloud error read from stdin")
    args = p.parse_args(argv)

    if args.cmd == "explain":
        finding = explain(sys.stdin.read())
        if finding:
            print(finding.render())
        return 0
    if args.cmd == "region":
        region, problem = resolve_region()
        print(region or f"preflight: {problem}", file=sys.stdout if region else sys.stderr)
        return 0 if region else 1
    if args.cmd == "cidr":
        cidr, problem = check_cidr(args.cidr)
        print(cidr or f"preflight: {problem}", file=sys.stdout if cidr else sys.stderr)
        return 0 if cidr else 1

    if args.instance_type[0] not in "gp":
        print(f"preflight: {args.instance_type} is not a g* or p* GPU type", file=sys.stderr)
        return 2
    try:
        import boto3
    except ImportError:
        print("preflight: boto3 is missing; fix: pip install boto3", file=sys.stderr)
        return 2
    resolved = Resolved()
    findings = aws_preflight(
        boto3.session.Session(region_name=args.region),
        args.instance_type,
        args.image_parameter or "",
        args.spot,
        image_id=args.image_id or "",
        zone=args.availability_zone,
        subnet_id=args.subnet_id,
        resolved=resolved,
    )
    if args.json:
        out = {"ok": not findings, "findings": [f.render() for f in findings], **vars(resolved)}
        print(json.dumps(out, sort_keys=True))
    else:
        for f in findings:
            print(f.render())
        if not findings:
            print(f"preflight: OK ({args.instance_type} in {args.region})")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
