#!/usr/bin/env bash
# Create .venv with dlcheck and the frameworks, on Debian/Ubuntu.
#   scripts/setup.sh          frameworks for this machine: CUDA builds with an NVIDIA GPU,
#                             CPU builds (PyTorch's CPU index) without one
#   scripts/setup.sh --test   plus what the test suite needs (apt packages, linters, moto...);
#                             the frameworks keep the machine's flavour (never CPU over CUDA)
# Rerunnable: it only installs what is missing.
#
# Environment:
#   DLCHECK_TORCH_INDEX_URL  where CPU-only machines get torch (default: PyTorch's CPU index,
#                            https://download.pytorch.org/whl/cpu); set it to a mirror, or to
#                            "" to use pip's own configuration (find-links, a wheelhouse).
#   DLCHECK_QUIET=1          no pip progress (CI logs)
set -euo pipefail
cd "$(dirname "$0")/.."

want_tests=false
[[ "${1:-}" == "--test" ]] && want_tests=true
CPU_INDEX_DEFAULT=https://download.pytorch.org/whl/cpu

say() { echo "setup: $*" >&2; }

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  local sudo=""; ((EUID)) && sudo="sudo"
  say "${sudo:+sudo }apt-get install ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

read_list() { grep -hv '^\s*#' "$@" 2>/dev/null | grep -v '^\s*$' || true; }

# The same rule as dlcheck: an NVIDIA PCI function of the display class (dlcheck.system).
has_nvidia_gpu() {
  python3 -c 'import sys; sys.path.insert(0, "."); from dlcheck.system import pci_gpus; sys.exit(0 if pci_gpus() else 1)'
}

# pip's own find-links (a wheelhouse, an air-gapped mirror) count as a place torch can come from.
pip_has_local_source() {
  [[ -n "${PIP_FIND_LINKS:-}" ]] || python3 -m pip config get global.find-links >/dev/null 2>&1
}

# Where CPU torch comes from: prints pip arguments; fails with advice when there is no way.
torch_cpu_source() {
  local index="${DLCHECK_TORCH_INDEX_URL-$CPU_INDEX_DEFAULT}"
  if [[ -z "$index" ]]; then
    say "torch from pip's own configuration (DLCHECK_TORCH_INDEX_URL is empty)"
    return 0
  fi
  if python3 -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + '/torch/', timeout=8)" "$index" 2>/dev/null; then
    echo "--index-url $index --extra-index-url https://pypi.org/simple"
    return 0
  fi
  if pip_has_local_source; then
    say "$index is unreachable; taking torch from pip's find-links (${PIP_FIND_LINKS:-pip config})"
    return 0
  fi
  say "cannot reach $index, where CPU-only torch comes from (PyPI's torch is a multi-GB CUDA build)."
  say "Fix: set DLCHECK_TORCH_INDEX_URL to a reachable mirror, or to \"\" to take torch from pip's own configuration."
  return 1
}

quiet=(); { $want_tests || [[ -n "${DLCHECK_QUIET:-}" ]]; } && quiet=(-q)
apt_install python3-venv pciutils
if $want_tests; then
  # shellcheck disable=SC2046
  apt_install $(read_list requirements/apt-*.txt)
fi

[[ -x .venv/bin/python ]] || python3 -m venv .venv
pip=(.venv/bin/python -m pip install "${quiet[@]}" --disable-pip-version-check)

if has_nvidia_gpu; then
  say "NVIDIA GPU found: CUDA builds of PyTorch and TensorFlow (about 4 GB to download)"
  "${pip[@]}" -e '.[torch,tensorflow-cuda,keras,plot]'
else
  say "no NVIDIA GPU: CPU builds (about 0.6 GB to download), torch from PyTorch's CPU index"
  source_args=$(torch_cpu_source) || exit 1
  # shellcheck disable=SC2086
  "${pip[@]}" --retries 2 $source_args "$(grep -h '^torch==' requirements/cpu-frameworks.txt)"
  "${pip[@]}" -r requirements/cpu-frameworks.txt
  "${pip[@]}" -e '.[plot]'
fi
if $want_tests; then
  "${pip[@]}" -e '.[test]'
  for req in requirements/test-*.txt; do "${pip[@]}" -r "$req"; done
fi
say ".venv ready ($(.venv/bin/python --version))"
