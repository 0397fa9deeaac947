#!/usr/bin/env bash
# Set up everything the tests need, then run the whole suite: lint, unit, CLI,
# real framework probes, the benchmark, playbook converges and cloud stacks.
# Extra arguments go to pytest (e.g. scripts/test.sh -k bench -x). Test files run side by side
# on DLCHECK_TEST_WORKERS pytest-xdist workers (default 3; 0 runs them in this process): the
# host-booting modules wait mostly on apt, pip and systemd, not on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export PATH="$PWD/.venv/bin:$PATH"
ruff check dlcheck tests smoke_tests cloud scripts
pytest -n "${DLCHECK_TEST_WORKERS:-3}" --dist loadfile "$@"
