# Terraform or OpenTofu. Only Terraform 1.5 language features are used, so Google Cloud
# Infrastructure Manager (which runs Terraform up to 1.5.7) can deploy this directory as is.
terraform {
  required_version = ">= 1.5.0"
  required_providers {
    google = {
      source = "hashicorp/google"
      # 5.37: the first release whose scheduling.max_run_duration works with
      # instance_termination_action = "STOP" (hashicorp/terraform-provider-google#18112).
      version = ">= 5.37.0, < 8.0.0"
    }
  }
}

provider "google" {
  project = var.project
  region  = local.region
  zone    = var.zone
}
