"""Run moto's server on loopback with two gaps of moto 5.2.5 filled in.

    python tests/cloud/moto_seeded.py PORT

1. Real accounts can read /aws/service/deeplearning/... and /aws/service/canonical/...; moto ships
   neither and refuses PutParameter under /aws/ (reserved), so this process seeds them straight
   into its SSM backend, pointing at an AMI moto knows.
2. moto's CloudFormation knows no AWS::CloudWatch::Alarm (it leaves a type-less placeholder), so a
   test could not see whether a stack's alarm exists or is gone. AlarmResource maps the type onto
   moto's own CloudWatch backend (put_metric_alarm / delete_alarms), so the alarm is as real as
   any other moto alarm: describe_alarms lists it until the stack deletes it.
3. Executing an UPDATE change set applies its resources but leaves the stack's parameters, tags
   and outputs as they were (update_stack does set them); execute_change_set below sets them as
   CloudFormation does, so a rerun sees the stack it made.
4. A volume made from no snapshot has no SnapshotId in moto's DescribeVolumes; AWS sends "" (and
   amazon.aws.ec2_vol_info reads the key unconditionally).
Everything else is stock moto_server.
"""

from __future__ import annotations

import sys

from moto.cloudformation.models import CloudFormationBackend
from moto.cloudwatch.models import cloudwatch_backends
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.common_models import CloudFormationModel
from moto.ec2.models.elastic_block_store import Volume
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


class AlarmResource(CloudFormationModel):
    """AWS::CloudWatch::Alarm for moto's CloudFormation, backed by moto's CloudWatch."""

    # moto's model metaclass files each model under the service named in its module path.
    __module__ = "moto.cloudwatch.cfn_alarm"

    def __init__(self, name: str, account_id: str, region_name: str):
        self.name, self.account_id, self.region_name = name, account_id, region_name

    @property
    def physical_resource_id(self) -> str:
        return self.name

    @staticmethod
    def cloudformation_name_type() -> str:
        return "AlarmName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudWatch::Alarm"

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name, cloudformation_json, account_id, region_name, **kwargs
    ):
        props = cloudformation_json["Properties"]
        cloudwatch_backends[account_id][region_name].put_metric_alarm(
            name=resource_name,
            namespace=props.get("Namespace"),
            metric_name=props.get("MetricName"),
            comparison_operator=props["ComparisonOperator"],
            evaluation_periods=int(props["EvaluationPeriods"]),
            period=int(props.get("Period", 300)),
            threshold=float(props["Threshold"]),
            statistic=props.get("Statistic"),
            description=props.get("AlarmDescription"),
            dimensions=[
                {"Name": d["Name"], "Value": d["Value"]} for d in props.get("Dimensions", [])
            ],
            alarm_actions=props.get("AlarmActions", []),
            datapoints_to_alarm=int(props["DatapointsToAlarm"])
            if props.get("DatapointsToAlarm")
            else None,
            treat_missing_data=props.get("TreatMissingData"),
        )
        return cls(resource_name, account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name
    ):
        original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name
        )

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name, cloudformation_json, account_id, region_name
    ):
        cloudwatch_backends[account_id][region_name].delete_alarms([resource_name])

    def delete(self, account_id: str, region_name: str) -> None:
        cloudwatch_backends[account_id][region_name].delete_alarms([self.name])


_moto_execute_change_set = CloudFormationBackend.execute_change_set


def execute_change_set(self, change_set_name, stack_name=None):
    _moto_execute_change_set(self, change_set_name, stack_name)
    change_set = self.describe_change_set(change_set_name)
    if change_set is None or change_set.change_set_type != "UPDATE":
        return
    stack = self.stacks[change_set.stack_id]
    stack.parameters = change_set.parameters
    if change_set.tags:
        stack.tags = change_set.tags
    stack._parse_template()
    stack.output_map = stack._create_output_map()


CloudFormationBackend.execute_change_set = execute_change_set

_moto_volume_init = Volume.__init__


def volume_init(self, *args, **kwargs):
    _moto_volume_init(self, *args, **kwargs)
    if self.snapshot_id is None:
        self.snapshot_id = ""


Volume.__init__ = volume_init


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
