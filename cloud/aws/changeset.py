#!/usr/bin/env python3
"""Update a stack only through a change set, and refuse one that would replace the machine.

  changeset.py update --stack NAME --template FILE --parameters JSON [--tags JSON]
                      [--stack-policy-during-update FILE] [--allow-replace]

Creates an UPDATE change set, reads what CloudFormation plans, and then either deletes it and
exits 3 (it would replace or delete the instance or the data volume, and --allow-replace was not
given), or executes it and waits. It prints one JSON line on stdout, e.g.
  {"status": "refused", "replacing": [{"resource": "Instance", "properties": ["ImageId"]}]}
with status unchanged | updated | refused, and a sentence on stderr.

The instance keeps the UserData it was created with: cloud-init applies user data on the first
boot only, so a newer one (a newer idle-stop script in a newer release of this toolkit) would
change nothing on the machine but still stop and start it (UserData is a "Some interruptions"
property). The idle_stop role updates the script on the running machine instead.

Which changes replace a resource: CloudFormation answers that itself in the change set
(ResourceChange.Replacement True/Conditional, and per property Details[].Target.RequiresRecreation
Always/Conditionally: https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ResourceChange.html).
Where a change set carries no such answer (moto, the offline emulator the tests use, lists
only Add/Modify/Remove), it is predicted here from the two templates and parameter sets and the
replacement properties in REPLACING_PROPERTIES.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time

# Properties whose change replaces the resource. AWS::EC2::Instance: the resource schema's
# createOnlyProperties (the registry schema that cfn-lint bundles; tests/cloud checks this set
# covers it) plus BlockDeviceMappings: "Modifying any other parameter [than DeleteOnTermination]
# results in instance replacement" (AWS::EC2::Instance BlockDeviceMapping, CloudFormation
# template reference). AWS::EC2::Volume: EBS changes only size, type, IOPS and throughput of a
# volume in place (Elastic Volumes); a new zone, snapshot or encryption means a new volume.
REPLACING_PROPERTIES = {
    "AWS::EC2::Instance": (
        "AvailabilityZone",
        "BlockDeviceMappings",
        "CpuOptions",
        "ElasticGpuSpecifications",
        "ElasticInferenceAccelerators",
        "EnclaveOptions",
        "HibernationOptions",
        "HostResourceGroupArn",
        "ImageId",
        "Ipv6AddressCount",
        "Ipv6Addresses",
        "KeyName",
        "LaunchTemplate",
        "LicenseSpecifications",
        "NetworkInterfaces",
        "PlacementGroupName",
        "PrivateIpAddress",
        "SecurityGroups",
        "SubnetId",
    ),
    "AWS::EC2::Volume": ("AvailabilityZone", "Encrypted", "KmsKeyId", "SnapshotId"),
}
PROTECTED_TYPES = tuple(REPLACING_PROPERTIES)
NO_VALUE = "<AWS::NoValue>"


# --- reading templates --------------------------------------------------------------------------


def load_template(text: str) -> dict:
    """A CloudFormation template (JSON or YAML with short tags) as plain data."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def tag(loader, suffix, node):
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}

    Loader.add_multi_constructor("!", tag)
    return yaml.load(text, Loader=Loader)  # noqa: S506 (a SafeLoader subclass)


class Evaluator:
    """Resolves the intrinsic functions that decide a resource's properties, for comparison.

    Values that only exist at run time (another resource's id or attribute) become tokens; a
    GetAtt token carries a digest of that resource's own resolved properties, so a changed
    launch template yields a changed LatestVersionNumber, as it does in CloudFormation.
    """

    def __init__(self, template: dict, parameters: dict[str, str]):
        self.t = template
        declared = template.get("Parameters", {})
        self.params = {k: str(v.get("Default", "")) for k, v in declared.items()}
        self.params.update({k: str(v) for k, v in parameters.items()})
        self._resolving: set[str] = set()

    def condition(self, name: str) -> bool:
        return bool(self.value(self.t.get("Conditions", {})[name]))

    def resource_digest(self, name: str) -> str:
        if name in self._resolving:
            return "cycle"
        self._resolving.add(name)
        try:
            props = self.value(self.t["Resources"][name].get("Properties", {}))
        finally:
            self._resolving.discard(name)
        return hashlib.sha256(json.dumps(props, sort_keys=True).encode()).hexdigest()[:12]

    def value(self, node):
        if isinstance(node, list):
            return [v for v in (self.value(x) for x in node) if v != NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                if arg == "AWS::NoValue":
                    return NO_VALUE
                if arg in self.params:
                    return self.params[arg]
                return f"<{arg}>"
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::If":
                cond, yes, no = arg
                return self.value(yes if self.condition(cond) else no)
            if key == "Fn::Equals":
                a, b = (self.value(x) for x in arg)
                return str(a) == str(b)
            if key == "Fn::Not":
                return not self.value(arg[0])
            if key == "Fn::And":
                return all(self.value(x) for x in arg)
            if key == "Fn::Or":
                return any(self.value(x) for x in arg)
            if key == "Fn::GetAtt":
                res, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return f"<{res}.{attr}@{self.resource_digest(res)}>"
            if key == "Fn::Sub" and isinstance(arg, str):
                out = arg
                for name, val in self.params.items():
                    out = out.replace("${" + name + "}", val)
                return out
            if key.startswith("Fn::"):
                return {key: self.value(arg)}
        return {k: v for k, v in ((k, self.value(v)) for k, v in node.items()) if v != NO_VALUE}


def predict(old_t: dict, old_p: dict, new_t: dict, new_p: dict) -> list[dict]:
    """Protected resources that the update would replace or delete, with the properties why."""
    old, new = Evaluator(old_t, old_p), Evaluator(new_t, new_p)
    found = []
    for name, res in old_t.get("Resources", {}).items():
        rtype = res.get("Type")
        if rtype not in PROTECTED_TYPES:
            continue
        if "Condition" in res and not old.condition(res["Condition"]):
            continue
        after = new_t.get("Resources", {}).get(name)
        if (
            after is None
            or after.get("Type") != rtype
            or ("Condition" in after and not new.condition(after["Condition"]))
        ):
            found.append({"resource": name, "type": rtype, "properties": [], "action": "delete"})
            continue
        before_props, after_props = res.get("Properties", {}), after.get("Properties", {})
        why = [
            prop
            for prop in REPLACING_PROPERTIES[rtype]
            if old.value(before_props.get(prop, NO_VALUE))
            != new.value(after_props.get(prop, NO_VALUE))
        ]
        if why:
            found.append({"resource": name, "type": rtype, "properties": why, "action": "replace"})
    return found


def from_change_set(changes: list[dict]) -> list[dict] | None:
    """CloudFormation's own answer, or None when the change set does not give one (moto)."""
    found, answered = [], False
    for change in changes:
        rc = change.get("ResourceChange", {})
        if rc.get("ResourceType") not in PROTECTED_TYPES:
            continue
        action = rc.get("Action")
        if action == "Remove":
            answered = True
            found.append(
                {"resource": rc["LogicalResourceId"], "type": rc["ResourceType"],
                 "properties": [], "action": "delete"}
            )  # fmt: skip
        elif action == "Modify" and "Replacement" in rc:
            answered = True
            if rc["Replacement"] in ("True", "Conditional"):
                why = sorted(
                    {
                        d["Target"].get("Name") or d["Target"].get("Attribute", "?")
                        for d in rc.get("Details", [])
                        if d.get("Target", {}).get("RequiresRecreation")
                        in ("Always", "Conditionally")
                    }
                )
                found.append(
                    {"resource": rc["LogicalResourceId"], "type": rc["ResourceType"],
                     "properties": why or ["(not named by CloudFormation)"], "action": "replace"}
                )  # fmt: skip
    return found if answered or found else None


def keep_user_data(old_t: dict, new_t: dict) -> bool:
    """Put the old template's instance UserData into the new one; True if that changed it."""
    changed = False
    for name, res in new_t.get("Resources", {}).items():
        before = old_t.get("Resources", {}).get(name, {})
        if res.get("Type") != "AWS::EC2::Instance" or before.get("Type") != res["Type"]:
            continue
        old_ud = before.get("Properties", {}).get("UserData")
        if old_ud is not None and res.get("Properties", {}).get("UserData") != old_ud:
            res["Properties"]["UserData"] = old_ud
            changed = True
    return changed


def describe(items: list[dict]) -> str:
    parts = []
    for item in items:
        if item["action"] == "delete":
            parts.append(f"delete {item['resource']}")
        else:
            parts.append(f"replace {item['resource']} (because of {', '.join(item['properties'])})")
    return "; ".join(parts)


# --- talking to CloudFormation ------------------------------------------------------------------


def _wait_change_set(cfn, stack: str, name: str, timeout_s: float = 300) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        desc = cfn.describe_change_set(StackName=stack, ChangeSetName=name)
        if desc["Status"] in ("CREATE_COMPLETE", "FAILED") or time.monotonic() > deadline:
            break
        time.sleep(3)
    changes, token = list(desc.get("Changes", [])), desc.get("NextToken")
    while token:
        page = cfn.describe_change_set(StackName=stack, ChangeSetName=name, NextToken=token)
        changes += page.get("Changes", [])
        token = page.get("NextToken")
    desc["Changes"] = changes
    return desc


def _wait_stack(cfn, stack: str, timeout_s: float = 1800) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        status = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
        if not status.endswith("_IN_PROGRESS") or time.monotonic() > deadline:
            return status
        time.sleep(5)


def update(cfn, args) -> tuple[int, dict, str]:
    new_body = open(args.template, encoding="utf-8").read()
    new_params = json.loads(args.parameters)
    tags = json.loads(args.tags) if args.tags else {}
    stack = cfn.describe_stacks(StackName=args.stack)["Stacks"][0]
    old_params = {
        p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])
    }
    old_body = cfn.get_template(StackName=args.stack, TemplateStage="Original")["TemplateBody"]
    if not isinstance(old_body, str):
        old_body = json.dumps(old_body)
    old_t, new_t = load_template(old_body), load_template(new_body)
    if keep_user_data(old_t, new_t):
        new_body = json.dumps(new_t)  # CloudFormation takes JSON as well as YAML
    name = f"dlcheck-{int(time.time())}"
    kwargs = dict(
        StackName=args.stack,
        ChangeSetName=name,
        ChangeSetType="UPDATE",
        TemplateBody=new_body,
        Parameters=[{"ParameterKey": k, "ParameterValue": str(v)} for k, v in new_params.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    if tags:
        kwargs["Tags"] = [{"Key": k, "Value": str(v)} for k, v in tags.items()]
    cfn.create_change_set(**kwargs)
    desc = _wait_change_set(cfn, args.stack, name)
    if desc["Status"] == "FAILED":
        cfn.delete_change_set(StackName=args.stack, ChangeSetName=name)
        reason = desc.get("StatusReason", "")
        if "didn't contain changes" in reason or "No updates" in reason:
            return 0, {"status": "unchanged", "changes": []}, "stack unchanged"
        return 1, {"status": "failed", "reason": reason}, f"change set failed: {reason}"
    changes = [
        {k: c["ResourceChange"].get(k) for k in ("Action", "LogicalResourceId", "Replacement")}
        for c in desc["Changes"]
        if "ResourceChange" in c
    ]
    verdict = from_change_set(desc["Changes"])
    if verdict is None:
        verdict = predict(old_t, old_params, new_t, new_params)
    if verdict and not args.allow_replace:
        cfn.delete_change_set(StackName=args.stack, ChangeSetName=name)
        msg = (
            f"refused: this update would {describe(verdict)}. Replacing the instance deletes its"
            " root volume (the OS, the venv, anything outside /data). Change it back, or pass"
            " -e cloud_allow_replace=true to do it anyway (the data volume is never replaced)."
        )
        return 3, {"status": "refused", "replacing": verdict, "changes": changes}, msg
    cfn.execute_change_set(StackName=args.stack, ChangeSetName=name)
    status = _wait_stack(cfn, args.stack)
    result = {"status": "updated", "replacing": verdict, "changes": changes, "stack": status}
    if status not in ("UPDATE_COMPLETE", "CREATE_COMPLETE"):
        return 1, {**result, "status": "failed"}, f"update ended in {status}; see the stack events"
    return 0, result, f"updated ({len(changes)} resource change(s))"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("update", help="update a stack through a change set")
    u.add_argument("--stack", required=True)
    u.add_argument("--region", required=True)
    u.add_argument("--template", required=True)
    u.add_argument("--parameters", required=True, help="JSON object of parameter values")
    u.add_argument("--tags", default="", help="JSON object of stack tags")
    u.add_argument("--allow-replace", action="store_true")
    args = p.parse_args(argv)
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        print("changeset: boto3 is missing; fix: pip install boto3", file=sys.stderr)
        return 2
    cfn = boto3.client("cloudformation", region_name=args.region)
    try:
        code, result, message = update(cfn, args)
    except (ClientError, BotoCoreError, OSError, ValueError) as exc:
        code, result, message = 1, {"status": "failed", "reason": str(exc)}, f"failed: {exc}"
    print(json.dumps(result, sort_keys=True))
    print(f"changeset: {args.stack}: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
