# Terraform or OpenTofu. Only Terraform 1.5 language features are used, so Google Cloud
# Infrastructure Manager (which runs Terraform up to 1.5.7) can deploy this directory as is.
terraform {
  required_version = ">= 1.5.0"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 5.20.0, < 8.0.0"
    }
  }
}

provider "google" {
  project = var.project
  region  = local.region
  zone    = var.zone
}
