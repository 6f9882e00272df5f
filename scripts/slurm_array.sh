#!/usr/bin/env bash
# One shard of a sweep per Slurm array task; merge the shards' CSVs when all have ended.
#   sbatch --array=0-7 scripts/slurm_array.sh full        # 8 shards of the full profile
#   structbench merge results/full-all.csv results/full-shard-*-of-8.csv
#   structbench report results/full-all.csv
# Each task writes its own CSV (and sidecars), so no two jobs share a file; rerunning a
# failed task with the same shard resumes it (--resume keeps the rows it already has).
#SBATCH --job-name=structbench
#SBATCH --gpus=1
#SBATCH --time=02:00:00
#SBATCH --output=results/slurm-%A_%a.log
set -euo pipefail
profile="${1:-full}"
index="${SLURM_ARRAY_TASK_ID:?run under sbatch --array}"
count="${SLURM_ARRAY_TASK_COUNT:?run under sbatch --array}"
cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")/..}"
out="results/${profile}-shard-${index}-of-${count}.csv"
resume=()
[[ -s "$out" ]] && resume=(--resume)
exec python3 -m structbench run --profile "$profile" --shard "${index}/${count}" --out "$out" "${resume[@]}"
