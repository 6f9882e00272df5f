#!/usr/bin/env bash
# The first call on a GPU machine, in one command that fits DEADLINE_S (480 s) by construction
# and leaves each finished phase's evidence in OUT_DIR as it goes (README: "On a GPU machine").
# Phases in priority order, each timed and logged; a failing phase does not stop the later ones:
#   machine  nvidia-smi, versions, `run --plan` of the profile
#   tests    our kernels x dtype on two shapes each (pytest -m gpu_check, -n auto with xdist)
#   sweep    the claims sweep, `run --deadline` (cases that decide C1-C5 first)
#   report   `python -m structbench report` of the sweep's CSV
#
# Bounded by construction: every command runs under `timeout -k GRACE CAP`, and each CAP is the
# phase's own limit cut to what is left of DEADLINE_S after the worst case (kill grace included)
# of every later step is kept aside; so even if every phase hangs, the script ends by DEADLINE_S.
# Evidence as it goes: OUT_DIR holds at most 7 files at any moment, whenever the script is killed:
#   gpu_check.log                       everything printed, written as it is printed, + phase table
#   gpu-check-<gpu>-<date>.tar.gz       rewritten after each phase: phases.log (the log so far),
#                                       NAME.rc per phase, junit.xml, calibration, report/
#                                       (written beside it, then renamed into place whole)
#   .tar.gz.part                        only while one is being written
#   gpu-check-<gpu>-<date>.csv, .samples.jsonl, .runs.jsonl (+ .csv.lock while the sweep runs):
#                                       the sweep's rows, written as each case is measured
#
# Usage: bash scripts/gpu_check.sh OUT_DIR          (on the device machine: "$OUT"; no make needed)
# Environment: PROFILE (gpu-check), DEADLINE_S (480, the whole script), MACHINE_S (45), TESTS_S (120),
#   TEST_TIMEOUT_S (60, per test, with pytest-timeout), REPORT_S (45), PACK_S (10, each pack),
#   GRACE_S (10, SIGTERM -> SIGKILL), CASE_TIMEOUT_S (60), SWEEP_WRAPUP_S (20), SWEEP_ARGS (extra `run` flags),
#   STRUCTBENCH_GIT_SHA (the sha where there is no .git), PYTHON (default: python3 if it imports
#   our dependencies, else .venv/bin/python, as the Makefile chooses).
set -uo pipefail
out="${1:?usage: gpu_check.sh OUT_DIR}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$out" && out="$(cd "$out" && pwd)"
cd "$repo" || exit 2
export PYTHONUNBUFFERED=1 PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"

profile="${PROFILE:-gpu-check}"
limit_s="${DEADLINE_S:-480}"
machine_s="${MACHINE_S:-45}"
tests_s="${TESTS_S:-120}"
test_timeout_s="${TEST_TIMEOUT_S:-60}"
report_s="${REPORT_S:-45}"
pack_s="${PACK_S:-10}"
grace_s="${GRACE_S:-10}"
case_timeout_s="${CASE_TIMEOUT_S:-60}"
wrapup_s="${SWEEP_WRAPUP_S:-20}"  # the sweep's summary and worker shutdown after its last case
probe_s=20   # each probe before the first phase (python's imports, nvidia-smi)
slack_s=6    # bash's own work between the bounded commands, the closing listing, tee's last write
started=$(date +%s)
elapsed() { echo $(( $(date +%s) - started )); }
left() { echo $(( limit_s - slack_s - $(elapsed) )); }
min() { echo $(( $1 < $2 ? $1 : $2 )); }

summary="$out/gpu_check.log"
: >"$summary"
work=$(mktemp -d)
exec 3>&1 4>&2 > >(tee -a "$summary") 2>&1  # all output reaches OUT as it is printed
tee_pid=$!
# At the end: let tee write the last lines before the script returns (at most 2 s).
finish() {
  exec 1>&3 2>&4
  for _ in $(seq 20); do kill -0 "$tee_pid" 2>/dev/null || break; sleep 0.1; done
  rm -rf "$work"
}
trap finish EXIT

# Worst cases of the fixed steps: kept aside for the later steps when a phase's cap is computed.
pack_worst=$(( pack_s + 2 ))
report_worst=$(( report_s + grace_s ))
echo "gpu_check: deadline ${limit_s} s; caps: machine ${machine_s} s, tests ${tests_s} s, sweep the rest," \
     "report ${report_s} s, pack ${pack_s} s each, kill grace ${grace_s} s"

if [ -z "${PYTHON:-}" ]; then
  if timeout -k 2 "$probe_s" python3 -c "import numpy, pandas, torch, triton, pytest, matplotlib" >/dev/null 2>&1; then
    PYTHON=python3
  elif [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python
  else echo "gpu_check: no python with numpy, pandas, torch, triton, pytest, matplotlib (set PYTHON)"; exit 2
  fi
fi

gpu=$(timeout -k 2 "$probe_s" nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
gpu=$(printf '%s' "${gpu:-cpu}" | tr -c 'A-Za-z0-9' '-' | tr -s '-' | sed 's/^-//; s/-$//')
name="gpu-check-${gpu:-cpu}-$(date -u +%Y%m%d-%H%M)"
dir="$work/$name"
mkdir -p "$dir"
csv="$out/$name.csv"  # in OUT itself: each row survives a kill
failed=()

# pack: rewrite OUT/NAME.tar.gz from the work folder; renamed into place, so a kill mid-pack
# leaves the previous tarball whole (and at most a .part beside it).
pack() {
  cp "$summary" "$dir/phases.log" 2>/dev/null
  if compgen -G "results/calibration/*.json" >/dev/null; then  # what the sweep measured travels
    mkdir -p "$dir/calibration" && cp results/calibration/*.json "$dir/calibration/"
  fi
  timeout -k 2 "$pack_s" tar -czf "$out/$name.tar.gz.part" -C "$work" "$name" \
    && mv -f "$out/$name.tar.gz.part" "$out/$name.tar.gz" || { rm -f "$out/$name.tar.gz.part"; failed+=(pack); }
}

# phase NAME RESERVE_S CAP_S FUNCTION: run FUNCTION in a bash of its own under ONE timeout, whose
# limit is CAP_S cut to what is left once RESERVE_S (the later steps' worst case), this phase's
# pack and its kill grace are kept aside. `timeout` signals its whole process group (pytest's
# workers, the sweep's worker too), and whatever of that group outlives it is killed after it;
# commands inside use `timeout --foreground` only, which stays in the group. FUNCTION gets the
# limit as $1 and prints to gpu_check.log; then the evidence is packed, and only then is the
# phase's line printed.
phase() {
  local phase_name="$1" reserve="$2" cap="$3" run="$4" t0 rc budget pid
  t0=$(date +%s)
  budget=$(min "$cap" $(( $(left) - reserve - pack_worst - grace_s )))
  echo "=== phase $phase_name ($(elapsed) s into the check, ${budget} s at most) ==="
  if [ "$budget" -lt 3 ]; then
    echo "no time left for $phase_name"; rc=124
  else
    timeout -k "$grace_s" "$budget" bash -c "$run $budget" &
    pid=$!  # timeout's pid is its process group's id
    wait "$pid"; rc=$?
    kill -KILL -- "-$pid" 2>/dev/null  # a child that ignored SIGTERM and outlived its parent
  fi
  [ "$rc" -eq 0 ] || failed+=("$phase_name")
  printf 'phase %-8s rc %3d  %4d s\n' "$phase_name" "$rc" "$(( $(date +%s) - t0 ))" >"$dir/$phase_name.rc"
  pack
  echo  # a killed phase may leave its last line unfinished
  cat "$dir/$phase_name.rc"  # a phase's line in gpu_check.log means its evidence is packed
}

machine() {
  timeout --foreground -k 2 "$(min 15 "$1")" nvidia-smi || echo "no nvidia-smi: no GPU here"
  timeout --foreground -k 2 "$(min 15 "$1")" nvidia-smi --query-gpu=name,pci.bus_id,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem,power.draw,temperature.gpu --format=csv 2>/dev/null
  # One python for versions and plan: each start imports torch (seconds on a loaded machine).
  "$PYTHON" - "$profile" <<'EOF'
import platform, sys
print("python", sys.version.split()[0], platform.machine())
for module in ("numpy", "pandas", "scipy", "torch", "triton", "cupy", "pytest", "xdist", "pytest_timeout", "rich",
               "pyamg", "pynvml"):
    try:
        print(module, getattr(__import__(module), "__version__", "?"))
    except Exception as exc:
        print(module, "missing", type(exc).__name__)
from structbench.measure.env import git_sha
print("git_sha", git_sha() or "unknown (no .git, no STRUCTBENCH_GIT_SHA)")
import torch
print("torch cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print("device", p.name, f"sm_{p.major}{p.minor}", p.multi_processor_count, "SMs",
          f"{p.total_memory / 2**30:.0f} GiB", f"L2 {getattr(p, 'L2_cache_size', 0) / 2**20:.0f} MiB")
sys.stdout.flush()
from structbench.cli.main import main
raise SystemExit(main(["run", "--plan", "--profile", sys.argv[1]]))
EOF
}

# Each failing test id is printed as it happens (-v, also under xdist); pytest-timeout stops a
# hung test (thread method under xdist: that worker exits and is replaced); a fatal CUDA error
# ends its xdist worker after its report (tests/conftest.py), so it costs one test, not the rest.
tests() {
  local options=()
  if "$PYTHON" -c "import xdist" >/dev/null 2>&1; then
    options+=(-n auto)
    "$PYTHON" -c "import pytest_timeout" >/dev/null 2>&1 && options+=(--timeout "$test_timeout_s" --timeout-method thread)
  elif "$PYTHON" -c "import pytest_timeout" >/dev/null 2>&1; then
    options+=(--timeout "$test_timeout_s")
  fi
  "$PYTHON" -m pytest tests/test_correctness.py -m gpu_check -v -rfEs \
    -p no:cacheprovider "${options[@]}" --junitxml="$dir/junit.xml"
}

sweep() {
  # The deadline stops new cases; the phase's limit also covers the case in flight and the summary.
  local deadline=$(( $1 - case_timeout_s - wrapup_s ))
  [ "$deadline" -gt 0 ] || { echo "no time left for the sweep"; return 124; }
  # shellcheck disable=SC2086
  "$PYTHON" -m structbench run --profile "$profile" \
    --out "$csv" --deadline "$deadline" --timeout "$case_timeout_s" ${SWEEP_ARGS:-}
}

report() {
  [ -s "$csv" ] || { echo "no CSV to report on"; return 1; }
  "$PYTHON" -m structbench report "$csv" --out "$dir/report"
}

export PYTHON profile test_timeout_s case_timeout_s wrapup_s csv dir
export -f min machine tests sweep report

# RESERVE_S of each phase: the worst case of the fixed steps after it (report and packs).
phase machine $(( 3 * pack_worst + report_worst )) "$machine_s" machine
phase tests   $(( 2 * pack_worst + report_worst )) "$tests_s" tests
phase sweep   $(( pack_worst + report_worst )) "$limit_s" sweep
phase report  0 "$report_s" report

echo "total $(elapsed) s; failed phases: ${failed[*]:-none}"
echo "OUT ($out):"
ls -l "$out" | tail -n +2
timeout --foreground -k 1 3 tar -tzvf "$out/$name.tar.gz" 2>/dev/null | awk '{print "  " $3 "\t" $6}'
echo "=== phases ($(elapsed) s in all) ==="
for p in machine tests sweep report; do cat "$dir/$p.rc" 2>/dev/null; done
[ ${#failed[@]} -eq 0 ]
