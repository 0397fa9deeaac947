#!/usr/bin/env python3
"""Refuse a Terraform plan that would replace or delete the VM or its data disk.

  terraform plan -out plan.tfplan && terraform show -json plan.tfplan > plan.json
  plan_guard.py plan.json [--allow-replace]

Exit 0 when the plan keeps the VM and the data disk (printing what it changes), 3 when it would
replace or delete either (naming the attributes that force it), 2 when the file is not a plan.
The google provider marks some scheduling fields force-new: changing max_run_duration or spot
deletes the VM and its boot disk (hashicorp/terraform-provider-google#26148).

Reads Terraform's machine-readable plan: resource_changes[].change.actions is ["delete",
"create"] (or the reverse) for a replacement, and change.replace_paths names the attributes
that force it (https://developer.hashicorp.com/terraform/internals/json-format). Stdlib only.
"""

from __future__ import annotations

import argparse
import json
import sys

PROTECTED_TYPES = ("google_compute_instance", "google_compute_disk")


def judge(plan: dict) -> tuple[list[dict], list[str]]:
    """(protected resources the plan replaces or deletes, one line per other change)."""
    refused, changes = [], []
    for rc in plan.get("resource_changes", []):
        actions = rc.get("change", {}).get("actions", [])
        address = rc.get("address", "?")
        if actions in (["no-op"], ["read"]) or not actions:
            continue
        changes.append(f"{'/'.join(actions)} {address}")
        if rc.get("type") not in PROTECTED_TYPES or rc.get("mode", "managed") != "managed":
            continue
        if "delete" not in actions:
            continue
        paths = rc["change"].get("replace_paths") or []
        why = [".".join(str(p) for p in path) for path in paths]
        action = "replace" if "create" in actions else "delete"
        refused.append({"address": address, "action": action, "because": why})
    return refused, changes


def describe(refused: list[dict]) -> str:
    parts = []
    for r in refused:
        because = f" (because of {', '.join(r['because'])})" if r["because"] else ""
        parts.append(f"{r['action']} {r['address']}{because}")
    return "; ".join(parts)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("plan_json", help="output of: terraform show -json PLANFILE")
    p.add_argument("--allow-replace", action="store_true")
    args = p.parse_args(argv)
    try:
        with open(args.plan_json, encoding="utf-8") as fh:
            plan = json.load(fh)
        if not isinstance(plan, dict) or "format_version" not in plan:
            raise ValueError("no format_version")
    except (OSError, ValueError) as exc:
        print(f"plan_guard: {args.plan_json} is not a Terraform JSON plan ({exc})", file=sys.stderr)
        return 2
    refused, changes = judge(plan)
    for line in changes:
        print(f"plan_guard: will {line}", file=sys.stderr)
    if refused and not args.allow_replace:
        print(
            f"plan_guard: refused: this plan would {describe(refused)}. Replacing the VM deletes"
            " its boot disk (the OS, the venv, anything outside /data). Change it back, or pass"
            " -e cloud_allow_replace=true to do it anyway.",
            file=sys.stderr,
        )
        return 3
    print(json.dumps({"refused": refused, "changes": changes}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
