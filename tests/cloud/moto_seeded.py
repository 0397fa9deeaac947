"""Run moto's server on loopback with the public SSM image parameters a real AWS account has.

    python tests/cloud/moto_seeded.py PORT

Real accounts can read /aws/service/deeplearning/... and /aws/service/canonical/...; moto ships
neither and refuses PutParameter under /aws/ (reserved), so this process seeds them straight into
its SSM backend, pointing at an AMI moto knows, then serves. Everything else is stock moto_server.
"""

from __future__ import annotations

import sys

from moto.core import DEFAULT_ACCOUNT_ID
from moto.server import main as moto_server_main
from moto.ssm.models import Parameter, ssm_backends

REGIONS = ("us-east-1", "eu-west-1")
SEEDED = (
    "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id",
    "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-24.04/latest/ami-id",
    "/aws/service/canonical/ubuntu/server/22.04/stable/current/amd64/hvm/ebs-gp2/ami-id",
    "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id",
)
# Any AMI moto's EC2 backend knows will do; moto preloads this one.
SOURCE = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"


def seed() -> None:
    for region in REGIONS:
        backend = ssm_backends[DEFAULT_ACCOUNT_ID][region]
        ami = backend.get_parameter(SOURCE)
        for name in SEEDED:
            backend._parameters[name].append(
                Parameter(
                    account_id=DEFAULT_ACCOUNT_ID,
                    name=name,
                    value=ami.value,
                    parameter_type="String",
                    description=None,
                    allowed_pattern=None,
                    keyid=None,
                    last_modified_date=ami.last_modified_date,
                    version=1,
                    data_type="aws:ec2:image",
                )
            )


if __name__ == "__main__":
    seed()
    moto_server_main(["-H", "127.0.0.1", "-p", sys.argv[1]])
