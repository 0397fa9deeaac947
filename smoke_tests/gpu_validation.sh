#!/usr/bin/env bash
# Prove this repository on a machine with a real NVIDIA GPU, in under 8 minutes.
#
#   smoke_tests/gpu_validation.sh [OUTDIR]      (default: $OUT, else reports/gpu-validation-<time>)
#
# Runs every step even when one fails, and writes into OUTDIR:
#   <step>.out / <step>.err   what each step printed (JSON, XML, logs)
#   steps.tsv                 step, exit code, seconds, status
#   summary.json              the same plus host facts and whether a GPU was found
# Environment: PYTHON (default: .venv/bin/python, else python3), DLCHECK_BENCH_ARGS (extra
# `dlcheck bench` flags), SMOKE_JUPYTER_URL + SMOKE_JUPYTER_PASSWORD(_FILE) to include the
# Jupyter smoke tests, VALIDATION_BUDGET_S (default 450: the whole run, leaving a margin to 8 min).
# Exit (dlcheck.models.ExitCode's meanings, tested): 0 all steps passed, 1 a step failed or
# timed out, 3 no NVIDIA GPU found.
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo" || exit 4
out="${1:-${OUT:-$repo/reports/gpu-validation-$(date -u +%Y%m%dT%H%M%SZ)}}"
mkdir -p "$out" || { echo "gpu_validation: cannot create $out" >&2; exit 2; }
out="$(cd "$out" && pwd)"

if [[ -n "${PYTHON:-}" ]]; then
  python="$PYTHON"
elif [[ -x "$repo/.venv/bin/python" ]]; then
  python="$repo/.venv/bin/python"
else
  python="python3"
fi

budget_s="${VALIDATION_BUDGET_S:-450}"
started="$(date +%s)"
printf 'step\trc\tseconds\tstatus\n' >"$out/steps.tsv"
failures=0

log() { printf 'gpu_validation: %s\n' "$*" >&2; }

# step NAME LIMIT_S COMMAND...: run with a timeout (capped by what is left of the budget),
# stdout -> NAME.out, stderr -> NAME.err, one line in steps.tsv. Never aborts the script.
step() {
  local name="$1" limit="$2"
  shift 2
  local left=$((budget_s - ($(date +%s) - started)))
  ((limit > left)) && limit="$left"
  if ((limit < 5)); then
    record "$name" - 0 "skipped: time budget spent"
    return
  fi
  log "$name: $* (limit ${limit}s)"
  local t0 t1 rc status
  t0="$(date +%s.%N)"
  timeout --kill-after=10 "$limit" "$@" >"$out/$name.out" 2>"$out/$name.err"
  rc=$?
  t1="$(date +%s.%N)"
  case "$rc" in
    0) status="ok" ;;
    124 | 137) status="timeout after ${limit}s" ;;
    *) status="failed" ;;
  esac
  [[ "$status" == ok ]] || failures=$((failures + 1))
  record "$name" "$rc" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')" "$status"
  log "$name: $status (rc=$rc)"
}

record() {  # NAME RC SECONDS STATUS
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$out/steps.tsv"
}

skip() {  # NAME REASON
  record "$1" - 0 "skipped: $2"
  log "$1: skipped ($2)"
}

json_str() {  # a JSON string literal for plain text (escapes \ " and control characters)
  local s="${1//\\/\\\\}"
  s="${s//\"/\\\"}"
  s="${s//$'\n'/\\n}"
  s="${s//$'\t'/\\t}"
  printf '"%s"' "$s"
}

write_summary() {  # GPU_PRESENT MESSAGE EXIT_CODE STATUS: the dlcheck/1 envelope, by hand
  local first=1 name rc seconds status commit
  commit="$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)"
  {
    printf '{\n  "schema": "dlcheck/1",\n  "command": "gpu-validation",\n'
    printf '  "status": %s,\n  "errors": [],\n  "data": {\n' "$(json_str "$4")"
    printf '    "gpu_present": %s,\n    "message": %s,\n' "$1" "$(json_str "$2")"
    printf '    "exit_code": %s,\n    "seconds": %s,\n' "$3" "$(($(date +%s) - started))"
    printf '    "host": %s,\n    "python": %s,\n' "$(json_str "$(hostname)")" "$(json_str "$python")"
    printf '    "commit": %s,\n    "output_dir": %s,\n' "$(json_str "$commit")" "$(json_str "$out")"
    printf '    "steps": ['
    while IFS=$'\t' read -r name rc seconds status; do
      [[ "$name" == step ]] && continue
      ((first)) || printf ','
      first=0
      printf '\n      {"name": %s, "rc": %s, "seconds": %s, "status": %s}' \
        "$(json_str "$name")" "${rc/#-/null}" "$seconds" "$(json_str "$status")"
    done <"$out/steps.tsv"
    printf '\n    ]\n  }\n}\n'
  } >"$out/summary.json"
}

gpu_count=0
if command -v nvidia-smi >/dev/null 2>&1; then
  gpu_count="$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)"
fi

# Steps that explain a missing GPU run either way; dlcheck says why it sees none.
if ((gpu_count > 0)); then
  step nvidia-smi-q-x 60 nvidia-smi -q -x
else
  skip nvidia-smi-q-x "no NVIDIA GPU (nvidia-smi missing or lists none)"
fi
step dlcheck-gpu 60 "$python" -m dlcheck gpu --json
step dlcheck-check 180 "$python" -m dlcheck --json -v

if ((gpu_count == 0)); then
  message="No NVIDIA GPU found: nvidia-smi is missing or lists no GPU. Ran the diagnosis only"
  message+=" (dlcheck-gpu, dlcheck-check in $out); run this script on a GPU machine."
  for name in dlcheck-bench pytest-gpu smoke-tests allreduce; do
    skip "$name" "no NVIDIA GPU"
  done
  write_summary false "$message" 3 SKIP
  log "$message"
  exit 3
fi

# shellcheck disable=SC2086  # DLCHECK_BENCH_ARGS is a list of flags, split on purpose
step dlcheck-bench 240 "$python" -m dlcheck bench --json ${DLCHECK_BENCH_ARGS:-}
step pytest-gpu 150 "$python" -m pytest -m gpu tests -p no:cacheprovider \
  --junitxml="$out/pytest-gpu.junit.xml"
smoke_select=()
[[ -n "${SMOKE_JUPYTER_URL:-}" ]] || smoke_select=(-m "not jupyter")
step smoke-tests 180 "$python" -m pytest smoke_tests -p no:cacheprovider "${smoke_select[@]}" \
  --junitxml="$out/smoke.junit.xml" --smoke-json="$out/smoke.json"
if ((gpu_count >= 2)); then
  step allreduce 90 "$python" -m dlcheck allreduce --backend nccl --json
else
  skip allreduce "needs 2+ GPUs, found $gpu_count"
fi

code=0 verdict=PASS
((failures)) && code=1 verdict=FAIL
write_summary true "$gpu_count GPU(s); $failures step(s) failed" "$code" "$verdict"
log "done in $(($(date +%s) - started)) s: $failures step(s) failed; results in $out"
exit "$code"
