#!/usr/bin/env bash
# Set up everything the tests need, then run the whole suite: lint, unit, CLI,
# real framework probes, the benchmark, playbook converges and cloud stacks.
# Extra arguments go to pytest (e.g. scripts/test.sh -k bench -x).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export PATH="$PWD/.venv/bin:$PATH"
ruff check dlcheck tests smoke_tests cloud scripts
pytest "$@"
