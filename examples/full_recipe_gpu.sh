#!/usr/bin/env bash
# The full recipe (configs/polyp_full.yaml: polyp-mix, 256 px, 300 epochs, structure loss, weight
# average, distillation by imitation only) on one GPU: prepare the data, train the teacher, distil the
# default student, and write the `report` table. Every step is timed into $OUT/times.tsv.
#
#   SRC=~/datasets bash examples/full_recipe_gpu.sh      # SRC holds Kvasir-SEG/ and CVC-ClinicDB/
#
# The batch is raised for the GPU (BATCH, default 64; the CPU recipe uses 8) with the peak learning
# rates scaled by sqrt(BATCH / 8) unless LR_T / LR_S are given; the uint8 arrays stay on the GPU
# (data.on_device auto). SMOKE=1 checks the script itself on the CPU in seconds (synthetic data,
# 64 px, 1 epoch each).
set -euo pipefail
SRC=${SRC:-.devdata}; OUT=${OUT:-gpu-full}; SIZE=${SIZE:-256}; EPOCHS=${EPOCHS:-300}; BATCH=${BATCH:-64}
DEVICE=${DEVICE:-cuda}; AMP=${AMP:-bf16}; SEED=${SEED:-0}
MAU=${MAU:-"python3 -m microaunet_cli"}
CONFIG=${CONFIG:-configs/polyp_full.yaml}
DATASET=polyp-mix; PREP=(--dataset polyp-mix --src "$SRC")
if [ "${SMOKE:-0}" = 1 ]; then
  SIZE=64; EPOCHS=1; BATCH=8; DEVICE=cpu; AMP=off; DATASET=synthetic; PREP=(--dataset synthetic --count 40)
fi
scale=$(python3 -c "print((${BATCH} / 8) ** 0.5)")
LR_T=${LR_T:-$(python3 -c "print(3e-3 * ${scale})")}; LR_S=${LR_S:-$(python3 -c "print(1e-2 * ${scale})")}
mkdir -p "$OUT"; runs="$OUT/runs"; data="$OUT/data/$DATASET-$SIZE"
printf 'step\tseconds\n' >"$OUT/times.tsv"
step() {  # name, command...: run it, log it, time it
  local name=$1 t0; shift; t0=$(date +%s%N)
  echo "[$(date +%T)] $name: $*" | tee -a "$OUT/log.txt"
  "$@" >>"$OUT/log.txt" 2>&1 || { echo "$name FAILED (see $OUT/log.txt)"; tail -n 20 "$OUT/log.txt"; exit 1; }
  awk -v n="$name" -v t0="$t0" -v t1="$(date +%s%N)" 'BEGIN { printf "%s\t%.1f\n", n, (t1 - t0) / 1e9 }' >>"$OUT/times.tsv"
}
python3 -c 'import torch; print("device:", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu", "torch", torch.__version__)' | tee "$OUT/device.txt"
common=(--config "$CONFIG" --dataset "$DATASET" --data-dir "$data" --size "$SIZE" --epochs "$EPOCHS" --batch-size "$BATCH"
        --device "$DEVICE" --amp "$AMP" --seed "$SEED" --quiet --overwrite --set "output.runs_dir=$runs")
step prepare $MAU prepare-data "${PREP[@]}" --out "$data" --size "$SIZE"
step teacher $MAU train-teacher "${common[@]}" --lr "$LR_T" --name teacher
step student $MAU distill "${common[@]}" --model microaunet_rt --lr "$LR_S" \
  --teacher "$runs/teacher/checkpoints/best.pt" --name student
step report $MAU report "$runs/teacher" "$runs/student" --markdown "$OUT/report.md"
cat "$OUT/report.md"; echo; cat "$OUT/times.tsv"
