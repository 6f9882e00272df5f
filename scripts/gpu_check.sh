#!/usr/bin/env bash
# The first call on a GPU machine, in one command that fits its 8 minutes (README: "On a GPU
# machine"). Phases in priority order under one deadline, each timed and logged; a failing
# phase does not stop the later ones:
#   machine  nvidia-smi, versions, `run --plan` of the profile
#   tests    our kernels x dtype on two shapes each (pytest -m gpu_check, -n auto with xdist)
#   sweep    the claims sweep, `run --deadline` (cases that decide C1-C5 first)
#   report   `python -m structbench report` of the sweep's CSV
# then everything (logs, junit, CSV and its sidecars, calibration, report) is packed into ONE
# OUT_DIR/gpu-check-<gpu>-<date>.tar.gz; beside it only gpu_check.log (the phase table).
#
# Usage: bash scripts/gpu_check.sh OUT_DIR          (on the device machine: "$OUT")
# Environment: PROFILE (gpu-check), DEADLINE_S (480, the whole script), TESTS_S (120),
#   REPORT_RESERVE_S (45, kept for report + pack), CASE_TIMEOUT_S (60), SWEEP_ARGS (extra
#   `run` flags), PYTHON (default: python3 if it imports our dependencies, else .venv/bin/python,
#   as the Makefile chooses).
set -uo pipefail
out="${1:?usage: gpu_check.sh OUT_DIR}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$out" && out="$(cd "$out" && pwd)"
cd "$repo" || exit 2
export PYTHONUNBUFFERED=1 PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"

profile="${PROFILE:-gpu-check}"
limit_s="${DEADLINE_S:-480}"
tests_s="${TESTS_S:-120}"
reserve_s="${REPORT_RESERVE_S:-45}"
case_timeout_s="${CASE_TIMEOUT_S:-60}"
started=$(date +%s)
elapsed() { echo $(( $(date +%s) - started )); }

if [ -z "${PYTHON:-}" ]; then
  if python3 -c "import numpy, pandas, torch, triton, pytest, matplotlib" >/dev/null 2>&1; then PYTHON=python3
  elif [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python
  else echo "gpu_check: no python with numpy, pandas, torch, triton, pytest, matplotlib (set PYTHON)" >&2; exit 2
  fi
fi

gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
gpu=$(printf '%s' "${gpu:-cpu}" | tr -c 'A-Za-z0-9' '-' | tr -s '-' | sed 's/^-//; s/-$//')
name="gpu-check-${gpu:-cpu}-$(date -u +%Y%m%d-%H%M)"
work=$(mktemp -d)
dir="$work/$name"
mkdir -p "$dir"
trap 'rm -rf "$work"' EXIT
summary="$out/gpu_check.log"
: >"$summary"
failed=()

# phase NAME COMMAND...: run it with its output to the terminal and to NAME.log; log rc and time.
phase() {
  local phase_name="$1" t0 rc
  shift
  t0=$(date +%s)
  echo "=== phase $phase_name ($(elapsed) s into the check) ==="
  "$@" 2>&1 | tee "$dir/$phase_name.log"
  rc=${PIPESTATUS[0]}
  printf 'phase %-8s rc %3d  %4d s\n' "$phase_name" "$rc" "$(( $(date +%s) - t0 ))" | tee -a "$summary"
  [ "$rc" -eq 0 ] || failed+=("$phase_name")
}

machine() {
  nvidia-smi || echo "no nvidia-smi: no GPU here"
  nvidia-smi --query-gpu=name,pci.bus_id,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem,power.draw,temperature.gpu --format=csv 2>/dev/null
  "$PYTHON" - <<'EOF'
import platform, sys
print("python", sys.version.split()[0], platform.machine())
for module in ("numpy", "pandas", "scipy", "torch", "triton", "cupy", "pytest", "xdist", "rich", "pyamg", "pynvml"):
    try:
        print(module, getattr(__import__(module), "__version__", "?"))
    except Exception as exc:
        print(module, "missing", type(exc).__name__)
import torch
print("torch cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print("device", p.name, f"sm_{p.major}{p.minor}", p.multi_processor_count, "SMs",
          f"{p.total_memory / 2**30:.0f} GiB", f"L2 {getattr(p, 'L2_cache_size', 0) / 2**20:.0f} MiB")
EOF
  "$PYTHON" -m structbench run --plan --profile "$profile"
}

tests() {
  local parallel=()
  "$PYTHON" -c "import xdist" >/dev/null 2>&1 && parallel=(-n auto)
  local budget=$(( tests_s < limit_s - reserve_s - $(elapsed) ? tests_s : limit_s - reserve_s - $(elapsed) ))
  [ "$budget" -gt 10 ] || { echo "no time left for the tests"; return 124; }
  timeout -k 10 "$budget" "$PYTHON" -m pytest tests/test_correctness.py -m gpu_check -q -rfEs \
    -p no:cacheprovider "${parallel[@]}" --junitxml="$dir/junit.xml"
}

csv="$dir/$name.csv"
sweep() {
  local deadline=$(( limit_s - reserve_s - $(elapsed) ))
  [ "$deadline" -gt 5 ] || { echo "no time left for the sweep"; return 124; }
  # The deadline stops new cases; the hard limit also covers the case in flight and the summary.
  # shellcheck disable=SC2086
  timeout -k 10 $(( deadline + case_timeout_s + 20 )) "$PYTHON" -m structbench run --profile "$profile" \
    --out "$csv" --deadline "$deadline" --timeout "$case_timeout_s" ${SWEEP_ARGS:-}
}

report() {
  [ -s "$csv" ] || { echo "no CSV to report on"; return 1; }
  timeout -k 5 60 "$PYTHON" -m structbench report "$csv" --out "$dir/report"
}

phase machine machine
phase tests tests
phase sweep sweep
phase report report

# The calibration the sweep measured (cached in the repository) travels with the CSV.
if compgen -G "results/calibration/*.json" >/dev/null; then
  mkdir -p "$dir/calibration" && cp results/calibration/*.json "$dir/calibration/"
fi
cp "$summary" "$dir/phases.log"
echo "total $(elapsed) s; failed phases: ${failed[*]:-none}" | tee -a "$summary" >>"$dir/phases.log"
tar -czf "$out/$name.tar.gz" -C "$work" "$name" || failed+=(pack)
echo "packed $out/$name.tar.gz ($(du -h "$out/$name.tar.gz" 2>/dev/null | cut -f1)):"
tar -tzvf "$out/$name.tar.gz" 2>/dev/null | awk '{print "  " $3 "\t" $6}'
echo "=== phases ($(elapsed) s in all) ==="
cat "$summary"
[ ${#failed[@]} -eq 0 ]
