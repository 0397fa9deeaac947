locals {
  ip        = google_compute_instance.gpu.network_interface[0].access_config[0].nat_ip
  gcloud    = "gcloud compute ssh ${var.name} --zone ${var.zone} --project ${var.project}${var.use_iap ? " --tunnel-through-iap" : ""}"
  ssh_host  = var.use_iap ? var.name : local.ip
  iap_proxy = "-o ProxyCommand=\"gcloud compute start-iap-tunnel ${var.name} 22 --listen-on-stdin --zone ${var.zone} --project ${var.project}\""
}

output "instance_id" {
  value = google_compute_instance.gpu.instance_id
}

output "instance_name" {
  value = google_compute_instance.gpu.name
}

output "zone" {
  value = var.zone
}

output "external_ip" {
  description = "Public address (SSH reaches it only from allowed_ssh_cidr, or not at all with IAP)."
  value       = local.ip
}

output "ssh_command" {
  value = var.use_iap || var.ssh_public_key == "" ? local.gcloud : "ssh ${var.ssh_user}@${local.ip}"
}

output "jupyter_tunnel_command" {
  description = "Forward Jupyter (bound to 127.0.0.1 on the VM), then open http://127.0.0.1:8888"
  value       = var.use_iap || var.ssh_public_key == "" ? "${local.gcloud} -- -N -L 8888:127.0.0.1:8888" : "ssh -N -L 8888:127.0.0.1:8888 ${var.ssh_user}@${local.ip}"
}

output "ansible_inventory_line" {
  description = "One line for an Ansible INI inventory (group [workstations])."
  value       = "${var.name} ansible_host=${local.ssh_host} ansible_user=${var.ssh_user}${var.use_iap ? " ansible_ssh_common_args='${local.iap_proxy}'" : ""}"
}

output "ansible_inventory" {
  description = "A whole inventory file: terraform output -raw ansible_inventory > cloud/gcp/inventory.ini"
  value       = "[workstations]\n${var.name} ansible_host=${local.ssh_host} ansible_user=${var.ssh_user}${var.use_iap ? " ansible_ssh_common_args='${local.iap_proxy}'" : ""}\n"
}

output "data_disk_name" {
  description = "The data disk (mounted at /data); cloud/gcp/destroy.yml keeps it."
  value       = google_compute_disk.data.name
}

output "uses_os_login" {
  description = "True when SSH users come from OS Login (no ssh_public_key given)."
  value       = var.ssh_public_key == ""
}

output "ssh_user" {
  description = "ssh_user (used with ssh_public_key; OS Login users come from gcloud)."
  value       = var.ssh_user
}

output "ssh_host" {
  value = local.ssh_host
}

output "ansible_ssh_common_args" {
  description = "SSH options Ansible needs (the IAP tunnel when use_iap is on)."
  value       = var.use_iap ? local.iap_proxy : ""
}

output "project" {
  value = var.project
}
