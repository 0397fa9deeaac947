#!/usr/bin/env bash
# Create .venv with dlcheck and the frameworks, on Debian/Ubuntu.
#   scripts/setup.sh          frameworks for this machine (CUDA builds if an NVIDIA GPU is present)
#   scripts/setup.sh --test   plus everything the test suite needs (apt packages, linters, moto...)
# Rerunnable: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

want_tests=false
[[ "${1:-}" == "--test" ]] && want_tests=true

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  echo "setup: apt-get install ${missing[*]}" >&2
  local sudo=""; ((EUID)) && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

read_list() { grep -hv '^\s*#' "$@" 2>/dev/null | grep -v '^\s*$' || true; }

apt_install python3-venv pciutils
if $want_tests; then
  # shellcheck disable=SC2046
  apt_install $(read_list requirements/apt-*.txt)
fi

[[ -x .venv/bin/python ]] || python3 -m venv .venv
pip=(.venv/bin/python -m pip install -q --disable-pip-version-check)

has_nvidia_gpu() { grep -qi '^0x10de' /sys/bus/pci/devices/*/vendor 2>/dev/null; }
if has_nvidia_gpu && ! $want_tests; then
  "${pip[@]}" -e '.[torch,tensorflow-cuda,keras,plot]'
else
  # CPU builds, pinned: torch 2.13.0 CPU is what this project's machines carry locally.
  "${pip[@]}" -r requirements/cpu-frameworks.txt
  "${pip[@]}" -e '.[plot]'
fi
if $want_tests; then
  "${pip[@]}" -e '.[test]'
  for req in requirements/test-*.txt; do "${pip[@]}" -r "$req"; done
fi
echo "setup: .venv ready ($(.venv/bin/python --version))" >&2
