#!/usr/bin/env bash
# One GPU session, end to end, writing every figure to $OUT (default ./gpu-out):
#  1. prepare Kvasir-SEG (pranet split) at $SIZE from the raw download in $KVASIR
#  2. training throughput of both networks at batch 8 and 64, fp32 and bf16 (2 epochs each; epoch 2 counts)
#  3. the distillation experiment under one equal epoch budget sized to $BUDGET_S seconds per run:
#     (a) MALUNet teacher, (b) MicroAUNet trained alone, (c) MicroAUNet distilled from (a)
# SMOKE=1 runs it at toy scale (CPU check of the script itself).
set -uo pipefail
OUT=${OUT:-gpu-out}; KVASIR=${KVASIR:-.devdata/Kvasir-SEG}; SIZE=${SIZE:-256}; BUDGET_S=${BUDGET_S:-95}
DATASET=kvasir; PREP=(--dataset kvasir --src "$KVASIR")
MAU=${MAU:-"python3 -m microaunet_cli"}
mkdir -p "$OUT"; LOG="$OUT/log.txt"
say() { echo "[$(date +%T)] $*" | tee -a "$LOG"; }
THR_EPOCHS=2; THR_BATCHES=${THR_BATCHES:-"8 64"}; THR_AMP=${THR_AMP:-"off bf16"}
if [ "${SMOKE:-0}" = 1 ]; then
  SIZE=64; BUDGET_S=5; THR_BATCHES="8"; THR_AMP="off"; DATASET=synthetic; PREP=(--dataset synthetic --count 48)
fi
runs=work-runs; data=work-data/$DATASET

say "device: $(python3 -c 'import torch;print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu", torch.__version__)')"
say "prepare-data $DATASET at $SIZE"
$MAU prepare-data "${PREP[@]}" --out "$data" --size "$SIZE" --quiet >>"$LOG" 2>&1 || say "prepare FAILED"
say "prepared"  # the first GPU session lost most of its time before the experiment: time every step

common=(--dataset "$DATASET" --data-dir "$data" --quiet --overwrite --set "output.runs_dir=$runs")
thr() {  # model batch amp -> images/s of epoch 2
  local name="thr-$1-b$2-$3"
  say "start $name"
  timeout 120 $MAU train-teacher --model "$1" --batch-size "$2" --amp "$3" --epochs $THR_EPOCHS --name "$name" \
    "${common[@]}" --set train.eval_every=100 >>"$LOG" 2>&1 || { say "$name FAILED"; return; }
  python3 - "$runs/$name/metrics.jsonl" "$1" "$2" "$3" >>"$OUT/throughput.tsv" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(sys.argv[2], sys.argv[3], sys.argv[4], round(rows[-1]["train_images_per_s"], 1), sep="\t")
PY
}
printf 'model\tbatch\tamp\ttrain_img_per_s\n' >"$OUT/throughput.tsv"
for b in $THR_BATCHES; do for a in $THR_AMP; do for m in malunet microaunet; do thr $m $b $a; done; done; done
cat "$OUT/throughput.tsv" | tee -a "$LOG"

# Equal budget: epochs that fit BUDGET_S seconds for the teacher at batch 8 (the default recipe).
ips=$(awk -F'\t' '$1=="malunet" && $2==8 && $3=="off" {print $4}' "$OUT/throughput.tsv")
n_train=$(python3 -c "import json;print(json.load(open('$data/manifest.json'))['splits']['train']['count'])" 2>/dev/null || echo 810)
EPOCHS=$(python3 -c "print(max(2, int(${BUDGET_S} * float('${ips:-100}') / ${n_train})))")
say "experiment: $EPOCHS epochs each (batch 8, lr 1e-3, cosine to 1e-5), $n_train training images"
exp=(--epochs "$EPOCHS" --batch-size 8 "${common[@]}")
keep() { for f in summary.json metrics.csv; do [ -f "$runs/$1/$f" ] && cp "$runs/$1/$f" "$OUT/$1-$f"; done; }
say "start teacher"
timeout 300 $MAU train-teacher --model malunet "${exp[@]}" >>"$LOG" 2>&1 || say "teacher FAILED"; keep $DATASET-malunet
say "start student alone"
timeout 300 $MAU train-teacher --model microaunet --name $DATASET-microaunet-alone "${exp[@]}" >>"$LOG" 2>&1 \
  || say "student-alone FAILED"; keep $DATASET-microaunet-alone
say "start distill"
timeout 400 $MAU distill --model microaunet "${exp[@]}" >>"$LOG" 2>&1 || say "distill FAILED"; keep $DATASET-microaunet-distill
python3 - "$runs" "$DATASET" >>"$OUT/experiment.tsv" <<'PY'
import json, os, sys
print("run\tepochs\tbest_epoch\tval_mdice\ttest_mdice\ttest_miou\ttest_dice_pooled\ttrain_s\twall_s")
d = sys.argv[2]
for r in (f"{d}-malunet", f"{d}-microaunet-alone", f"{d}-microaunet-distill"):
    p = os.path.join(sys.argv[1], r, "summary.json")
    if not os.path.exists(p):
        print(r, "missing", sep="\t"); continue
    s = json.load(open(p)); t = s.get("test", {}).get("test", {})
    pi, po = t.get("per_image", {}), t.get("pooled", {})
    print(r, s["epochs_done"], s["best_epoch"], round(s["best_val_mdice"] or 0, 4), round(pi.get("mdice", 0), 4),
          round(pi.get("miou", 0), 4), round(po.get("dice", 0), 4), s["train_seconds"], s["wall_seconds"], sep="\t")
PY
cat "$OUT/experiment.tsv" | tee -a "$LOG"

# Inference benchmark of the three networks (eager fp32 and bf16), at a GPU-sized batch.
timeout 150 $MAU benchmark --model malunet --model microaunet --model microaunet_fast --size "$SIZE" \
  --modes eager,bf16 --set batch=256 --json "$OUT/benchmark.json" --markdown "$OUT/benchmark.md" >>"$LOG" 2>&1 \
  || say "benchmark FAILED"
# With time left: the faster student variant, distilled under the same teacher and budget.
if [ "$SECONDS" -lt "${FAST_DEADLINE_S:-400}" ]; then
  timeout 200 $MAU distill --model microaunet_fast "${exp[@]}" >>"$LOG" 2>&1 || say "fast distill FAILED"
  keep $DATASET-microaunet_fast-distill
fi
say done
