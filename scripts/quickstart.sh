#!/usr/bin/env bash
# Set up .venv, then run the readiness report and the IMDB benchmark.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit
.venv/bin/dlcheck
status=$?
.venv/bin/dlcheck bench || status=$?
exit "$status"
