#!/usr/bin/env bash
# One GPU lease, two jobs side by side, from the repository root:
#
#     bash bench/gpu_session.sh [--steps N] [--minutes M] [--limit N]
#
#   pretrain   bench/pretrain_ablation.py: the four pre-training variants (new mix / old
#              corpus, with / without the descriptor objective) at equal steps, in parallel
#              on the one GPU, then fine-tuned on random_seed0.json (seeds 0,1,2) beside the
#              shipped `mini`; the checkpoints (without their resumable state) and
#              finetune.json are packed as soon as each part ends
#   gpu_check  bench/gpu_check.sh --no-throughput (the CUDA tests and a bf16 study), beside
#              it: its timings are not quiet, so it records none
#   curriculum the `curriculum` study and its `no-curriculum` control on random_seed0.json,
#              final phase over seeds 0,1,2, on the default backbone, then `--report`
#
# For a machine without the project's packages or data: `.gpu/site.tar.xz` (the unpacked
# wheels of bench/gpu_wheels.sh, tarred) is unpacked onto PYTHONPATH and `.gpu/data` becomes
# LIPO_DATA_DIR. Results go to $OUT (a machine that sends it back) or /tmp/gpu_session.
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUDGET=570 STEPS=4000 MINUTES=3.5 LIMIT=() EPOCHS=20 SEEDS=0,1,2
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) STEPS="$2"; shift ;;
    --minutes) MINUTES="$2"; shift ;;
    --limit) LIMIT=(--limit "$2"); shift ;;
    --epochs) EPOCHS="$2"; shift ;;
    --seeds) SEEDS="$2"; shift ;;
    --budget) BUDGET="$2"; shift ;;
    *) echo "usage: bash bench/gpu_session.sh [--steps N] [--minutes M] [--limit N] [--epochs N]" \
         "[--seeds 0,1,2] [--budget S]" >&2
       exit 2 ;;
  esac
  shift
done
RESULT="${OUT:-/tmp/gpu_session}"
mkdir -p "$RESULT"
WORK=/tmp/gpu_session_work  # a fixed place: a later call on the same machine finds it
rm -rf "$WORK" && mkdir -p "$WORK"
export PYTHONUNBUFFERED=1
if [ -f .gpu/site.tar.xz ] && ! python3 -c "import rdkit, mlflow, optuna" 2>/dev/null; then
  mkdir -p /tmp/site && tar -xJf .gpu/site.tar.xz -C /tmp/site \
    && export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
[ -f .gpu/data/lipophilicity.csv ] && export LIPO_DATA_DIR="$ROOT/.gpu/data"
echo "LIPO_DATA_DIR=${LIPO_DATA_DIR:-unset} $(nproc) cores $(date -u +%H:%M:%S)"

pack_rest() {  # what the side jobs have so far (again at the end)
  (cd "$WORK/curriculum" && tar -czf "$RESULT/curriculum.tgz" run.log \
     $(ls -d reports mlruns/mlflow.db 2>/dev/null))
  [ -f "$RESULT/gpu_check.tgz" ] || tar -czf "$RESULT/gpu_check_partial.tgz" -C "$WORK" \
     gpu_check.log $(cd "$WORK" && ls -d gpu_check_out 2>/dev/null)
}
(sleep $((BUDGET - 25)); echo "budget: packing what is there"; pack_rest) &
WATCHDOG=$!
DRY=$(python3 -c "import torch; print('' if torch.cuda.is_available() else '--cpu-dry-run')")
mkdir -p "$WORK/gpu_check_out"
(OUT="$WORK/gpu_check_out" OMP_NUM_THREADS=2 bash bench/gpu_check.sh --no-throughput $DRY \
   --budget 420 --results "$WORK/gpu_check_out/section.md" >"$WORK/gpu_check.log" 2>&1
 mkdir -p "$WORK/gpu_check_out"; cp "$WORK/gpu_check.log" "$WORK/gpu_check_out/"
 tar -czf "$RESULT/gpu_check.tgz" -C "$WORK" gpu_check_out) &
CHECK=$!

SPLIT="${LIPO_DATA_DIR:-$ROOT/../shared/data}/splits/random_seed0.json"
mkdir -p "$WORK/curriculum"
SMALL=()
[ -n "$DRY" ] && SMALL=(--trials 1 --epochs 1)  # a CPU dry run: the steps, not the figures
(cd "$WORK/curriculum" && L=(python3 "$ROOT/launch.py" --study curriculum --split "$SPLIT") \
   && "${L[@]}" "${SMALL[@]}" && "${L[@]}" --final --seeds 0,1,2 "${SMALL[@]:2}" \
   && "${L[@]}" --final --seeds 0,1,2 --control no-curriculum "${SMALL[@]:2}" \
   && python3 "$ROOT/launch.py" --report) >"$WORK/curriculum/run.log" 2>&1 &
CURRICULUM=$!

ABL=(python3 bench/pretrain_ablation.py --out "$WORK/ablation" --size small --steps "$STEPS"
     --batch-size 512 --max-minutes "$MINUTES" --parallel 4 "${LIMIT[@]}")
quiet() { tr '\r' '\n' | grep -v -E '[0-9]+%\|' | tail -n "$1"; }  # no progress bars
"${ABL[@]}" --pretrain-only 2>&1 | quiet 5
for log in "$WORK"/ablation/*.log; do echo "== $log"; quiet 3 <"$log"; done
for v in mix+desc mix old+desc old; do  # weights and card only: the state is for resuming
  [ -d "$WORK/ablation/$v" ] && tar -czf "$RESULT/pretrained_${v/+/_}.tgz" \
    --exclude=state -C "$WORK/ablation" "$v"
done
(cd "$WORK/ablation" && tar -czf "$RESULT/ablation.tgz" *.log)
echo "pre-training packed $(date -u +%H:%M:%S)"
"${ABL[@]}" --skip-pretrain --seeds "$SEEDS" --epochs "$EPOCHS" --parallel 15 --threads 1 \
  --reference mini=mini 2>&1 | quiet 12
(cd "$WORK/ablation" && tar -czf "$RESULT/ablation.tgz" *.log $(ls finetune.json 2>/dev/null))
echo "fine-tuning done $(date -u +%H:%M:%S); waiting for curriculum and gpu_check"
wait $CURRICULUM
quiet 25 <"$WORK/curriculum/run.log"
pack_rest
wait $CHECK
tail -n 12 "$WORK/gpu_check.log"
kill $WATCHDOG 2>/dev/null
ls -la "$RESULT"
