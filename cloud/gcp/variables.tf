variable "project" {
  type        = string
  description = "Google Cloud project id."
}

variable "zone" {
  type        = string
  default     = "us-central1-a"
  description = "Zone; it must offer the GPU (gcloud compute accelerator-types list)."
}

variable "name" {
  type        = string
  default     = "dlcheck-gpu"
  description = "Instance name; also prefixes the firewall rule and the service account."

  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]{0,40}[a-z0-9])?$", var.name))
    error_message = "The name must be lower case letters, digits and hyphens, 42 characters at most."
  }
}

variable "machine_type" {
  type        = string
  default     = "g2-standard-4"
  description = "n1-* (with accelerator_type, e.g. T4), g2-* (L4), a2-* (A100) or a3-* (H100). On a2/g2/a3 the GPUs come with the machine type."

  validation {
    condition     = can(regex("^(n1|g2|a2|a3)-", var.machine_type))
    error_message = "Use an n1, g2, a2 or a3 machine type: n1-standard-8 with a T4, g2-standard-4 (L4), a2-highgpu-1g (A100), a3-highgpu-8g (H100)."
  }
}

variable "accelerator_type" {
  type        = string
  default     = "nvidia-tesla-t4"
  description = "GPU attached to an n1 machine type; ignored for g2/a2/a3, which carry their own."
}

variable "accelerator_count" {
  type        = number
  default     = 1
  description = "Number of GPUs for an n1 machine type (1, 2 or 4)."

  validation {
    condition     = contains([1, 2, 4], var.accelerator_count)
    error_message = "accelerator_count must be 1, 2 or 4."
  }
}

variable "image" {
  type        = string
  default     = "projects/deeplearning-platform-release/global/images/family/common-cu129-ubuntu-2404-nvidia-580"
  description = "Boot image. Default: a Deep Learning VM family with the NVIDIA driver. Plain Ubuntu (the playbooks then install the driver): projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64."
}

variable "boot_disk_gb" {
  type        = number
  default     = 150
  description = "Boot disk size in GB (pd-balanced)."

  validation {
    condition     = var.boot_disk_gb >= 50
    error_message = "boot_disk_gb must be at least 50; the Deep Learning VM images need the room."
  }
}

variable "spot" {
  type        = bool
  default     = false
  description = "Run as a Spot VM (cheaper; may be stopped at any time)."
}

variable "max_run_duration_hours" {
  type        = number
  default     = 12
  description = "Hard cap: Compute Engine stops the VM after this many hours of running (0 = no cap)."

  validation {
    condition     = var.max_run_duration_hours >= 0 && var.max_run_duration_hours <= 720
    error_message = "max_run_duration_hours must be between 0 and 720."
  }
}

variable "data_disk_gb" {
  type        = number
  default     = 100
  description = "Data disk mounted at /data (Jupyter's home and notebooks), pd-balanced. Kept by cloud/gcp/destroy.yml."

  validation {
    condition     = var.data_disk_gb >= 10
    error_message = "data_disk_gb must be at least 10."
  }
}

variable "use_iap" {
  type        = bool
  default     = true
  description = "Allow SSH only from Google's IAP range (gcloud compute ssh --tunnel-through-iap). Set false and give allowed_ssh_cidr for direct SSH."
}

variable "allowed_ssh_cidr" {
  type        = string
  default     = ""
  description = "With use_iap = false: the one IPv4 network allowed to reach SSH, e.g. 203.0.113.7/32. Prefixes shorter than /8 (0.0.0.0/0, 0.0.0.0/1, ...) are refused."

  validation {
    condition = var.allowed_ssh_cidr == "" || (
      can(cidrnetmask(var.allowed_ssh_cidr)) && try(tonumber(split("/", var.allowed_ssh_cidr)[1]) >= 8, false)
    )
    error_message = "allowed_ssh_cidr must be one IPv4 network of /8 or narrower, such as 203.0.113.7/32; never 0.0.0.0/0 or another way of writing the whole internet."
  }
}

variable "ssh_user" {
  type        = string
  default     = "ubuntu"
  description = "User for ssh_public_key. With OS Login (no ssh_public_key) the user is your OS Login name (alice_example_com), which cloud/gcp/launch.yml reads from gcloud."
}

variable "ssh_public_key" {
  type        = string
  default     = ""
  description = "Public key (one line) for ssh_user. Empty = use OS Login (gcloud compute ssh)."
}

variable "network" {
  type        = string
  default     = "default"
  description = "VPC network for the instance and the firewall rule."
}

variable "labels" {
  type        = map(string)
  default     = {}
  description = "Extra labels (owner, cost centre...)."
}
