#!/usr/bin/env bash
# The GPU checklist's first call in one command (../shared/GPU_CHECKLIST.md): the machine,
# the versions, the whole test suite on the GPU, then the quick sweep and its report.
# Usage: bash scripts/gpu_check.sh OUT_DIR   (on the device machine: bash scripts/gpu_check.sh "$OUT")
set -uo pipefail
out="${1:?usage: gpu_check.sh OUT_DIR}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
stamp=$(date -u +%Y%m%d)
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 | tr -c 'A-Za-z0-9\n' '-' | tr -s '-' | sed 's/-$//')
{
  nvidia-smi
  python3 -c "import sys, numpy, pandas, torch, triton; print('python', sys.version.split()[0], 'numpy', numpy.__version__, 'pandas', pandas.__version__, 'torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)"
  python3 -c "import cupy; print('cupy', cupy.__version__)" || true
} 2>&1 | tee "$out/machine.log"
make test PYTEST_ARGS="-rs --junitxml=$out/junit.xml" 2>&1 | tee "$out/test.log"
test_rc=${PIPESTATUS[0]}
csv="$out/${gpu:-gpu}-quick-$stamp.csv"
make bench PROFILE="${PROFILE:-quick}" BENCH_ARGS="--out $csv" 2>&1 | tee "$out/bench.log"
python3 -m bench report "$csv" --out "$out/report" 2>&1 | tee "$out/report.log"
echo "tests exit code: $test_rc"
