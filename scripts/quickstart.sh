#!/usr/bin/env bash
# Set up .venv, then run the readiness report (`dlcheck`) and the IMDB benchmark (`dlcheck bench`).
# Exits with dlcheck's exit code (the README's table), or the benchmark's when that is worse.
set -uo pipefail
cd "$(dirname "$0")/.." || exit

cat >&2 <<'NOTE'
quickstart: this builds .venv here with dlcheck, PyTorch, TensorFlow and Keras.
  - It may run `sudo apt-get install python3-venv pciutils` if they are missing (it asks for
    your password then; as root it runs apt-get directly).
  - Downloads: about 0.6 GB without an NVIDIA GPU (CPU builds; torch from PyTorch's CPU index),
    about 4 GB with one (CUDA builds). pip shows its progress. Rerunning installs only what is
    missing. Then `dlcheck` takes ~15 s and `dlcheck bench` 0.5-3 minutes.
NOTE
bash scripts/setup.sh || exit
.venv/bin/dlcheck
status=$?
.venv/bin/dlcheck bench
bench=$?
((bench == 1 || status == 0)) && status=$bench
exit "$status"
