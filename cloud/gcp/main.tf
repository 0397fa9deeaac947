locals {
  region = join("-", slice(split("-", var.zone), 0, 2))
  # Only N1 takes attached GPUs; on g2/a2/a3 the GPU model comes with the machine type.
  is_n1         = startswith(var.machine_type, "n1-")
  is_dlvm       = can(regex("deeplearning-platform-release", var.image))
  iap_ssh_range = "35.235.240.0/20"

  ssh_sources = var.use_iap ? [local.iap_ssh_range] : [var.allowed_ssh_cidr]

  labels = merge(var.labels, { dlcheck = "true" })
}

resource "google_service_account" "vm" {
  account_id   = "${substr(var.name, 0, 24)}-vm"
  display_name = "${var.name} GPU VM (no roles granted)"
}

resource "google_compute_firewall" "ssh" {
  name        = "${var.name}-ssh"
  network     = var.network
  description = "SSH to ${var.name} from ${var.use_iap ? "IAP only" : "one CIDR"}; Jupyter stays on loopback (tunnel it)."
  direction   = "INGRESS"
  priority    = 1000

  source_ranges = local.ssh_sources
  target_tags   = [var.name]

  allow {
    protocol = "tcp"
    ports    = ["22"]
  }

  lifecycle {
    precondition {
      condition     = var.use_iap || var.allowed_ssh_cidr != ""
      error_message = "Set use_iap = true (SSH through IAP) or give allowed_ssh_cidr, e.g. 203.0.113.7/32."
    }
  }
}

# The user's work lives here, not on the boot disk: a disk of its own, attached to the VM, never
# auto-deleted with it, and protected from `terraform destroy` (cloud/gcp/destroy.yml removes it
# from the state and names it instead, like AWS's DeletionPolicy Retain).
resource "google_compute_disk" "data" {
  # checkov:skip=CKV_GCP_37: Google-managed encryption; CSEK keys would have to be kept by the user and supplied on every start
  name   = "${var.name}-data"
  zone   = var.zone
  type   = "pd-balanced"
  size   = var.data_disk_gb
  labels = merge(local.labels, { "dlcheck-data" = "true" })

  lifecycle {
    prevent_destroy = true
  }
}

resource "google_compute_instance" "gpu" {
  # checkov:skip=CKV_GCP_38: Google-managed disk encryption; CSEK keys would have to be kept by the user and supplied on every start
  # checkov:skip=CKV_GCP_40: the public IP gives apt/PyPI egress without Cloud NAT; ingress is SSH from one CIDR or IAP only
  # checkov:skip=CKV_GCP_32: block-project-ssh-keys = "true" is set in the metadata merge() below, which checkov does not evaluate; tests/cloud/test_terraform.py asserts it
  name         = var.name
  zone         = var.zone
  machine_type = var.machine_type
  tags         = [var.name]
  labels       = local.labels
  metadata = merge(
    {
      # Same cloud-init user data as on AWS: installs the idle auto-stop timer (60 minutes; the
      # idle_stop role sets the minutes on the running VM).
      user-data              = file("${path.module}/../common/user-data.yaml")
      block-project-ssh-keys = "true"
      enable-oslogin         = var.ssh_public_key == "" ? "TRUE" : "FALSE"
    },
    # Deep Learning VM images install the NVIDIA driver on first boot when asked.
    local.is_dlvm ? { install-nvidia-driver = "True" } : {},
    var.ssh_public_key == "" ? {} : { ssh-keys = "${var.ssh_user}:${trimspace(var.ssh_public_key)}" },
  )

  allow_stopping_for_update = true

  # The boot disk holds the OS only and goes with the VM; /data is the disk above.
  boot_disk {
    auto_delete = true
    initialize_params {
      image  = var.image
      size   = var.boot_disk_gb
      type   = "pd-balanced"
      labels = local.labels
    }
  }

  attached_disk {
    source      = google_compute_disk.data.id
    device_name = "data" # /dev/disk/by-id/google-data on the VM
  }

  dynamic "guest_accelerator" {
    for_each = local.is_n1 ? [1] : []
    content {
      type  = var.accelerator_type
      count = var.accelerator_count
    }
  }

  scheduling {
    # GPU VMs cannot live-migrate: they must stop for host maintenance.
    on_host_maintenance = "TERMINATE"
    automatic_restart   = !var.spot
    preemptible         = var.spot
    provisioning_model  = var.spot ? "SPOT" : "STANDARD"
    # Spot preemption and the run-time cap both stop (never delete) the VM.
    instance_termination_action = (var.spot || var.max_run_duration_hours > 0) ? "STOP" : null

    dynamic "max_run_duration" {
      for_each = var.max_run_duration_hours > 0 ? [1] : []
      content {
        seconds = var.max_run_duration_hours * 3600
      }
    }
  }

  network_interface {
    network = var.network
    # An ephemeral public address, for apt/PyPI (no Cloud NAT needed) and direct SSH; the
    # firewall above admits SSH from one CIDR or IAP only.
    access_config {}
  }

  service_account {
    email  = google_service_account.vm.email
    scopes = ["cloud-platform"]
  }

  shielded_instance_config {
    # Secure Boot off: DKMS-built NVIDIA modules (Ubuntu image + playbooks) are unsigned.
    enable_secure_boot          = false
    enable_vtpm                 = true
    enable_integrity_monitoring = true
  }

  lifecycle {
    # The image family is resolved once, at creation; a newer image in the family must not
    # replace the VM (boot_disk.initialize_params.image is force-new). cloud/gcp/launch.yml
    # also refuses any plan that would replace this VM (plan_guard.py).
    ignore_changes = [boot_disk[0].initialize_params[0].image]
  }

  depends_on = [google_compute_firewall.ssh]
}
