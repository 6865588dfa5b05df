#!/usr/bin/env bash
# lipo on a CUDA GPU, in one command, from the repository root:
#
#     bash bench/gpu_check.sh                  # about 5 minutes on one GPU, 9 at most
#     bash bench/gpu_check.sh --cpu-dry-run    # the same steps, small, on a CPU (CUDA-only
#                                              # tests skip); bench/RESULTS.md is left alone
#     bash bench/gpu_check.sh --no-throughput  # tests and the study only (for a GPU shared
#                                              # with other work, where timings mean little)
#
# Steps (each with a time limit; a failing step is reported and the next one runs):
#   wheels      a `.whl/` folder (made by `bash bench/gpu_wheels.sh` on a connected machine)
#               is installed with pip --no-index --no-deps --target /tmp/site, for an image
#               without RDKit, MLflow and Optuna; `.whl/data` becomes LIPO_DATA_DIR if unset
#   machine     GPU name, bf16 support, versions
#   imports     every module under lipo/ and every bench/*.py script, found by walking the
#               folders (a module a restructure moved fails here, on any machine)
#   backbone    molformer-tiny when the launcher's registry has it, else tiny
#   tests       pytest -m gpu (tests/gpu: bf16 forward/backward, fit() in bf16 and fp16,
#               bf16 evaluation against fp32, GPU memory across trials), the unit tests of
#               lipo.runtime.devices, worker placement and the inference device
#   study       `launch.py --study lora --backbone molformer-tiny --precision bf16` (tiny
#               when molformer-tiny is not registered), in a scratch folder, timed
#   throughput  bench/throughput.py in fp32, then its lipo contenders in bf16
# Then a section with the GPU's name, the date and every figure is appended to
# bench/RESULTS.md (--results FILE: elsewhere), and a summary table is printed whatever
# happened. With $OUT set (a machine that sends back $OUT), the section and the logs are
# copied there: append $OUT/gpu_check/section.md to bench/RESULTS.md where the tree is kept.
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DRY=0
THROUGHPUT=1
RESULTS="bench/RESULTS.md"
BUDGET_S=540  # every step together; a step that would pass it is cut short or skipped
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu-dry-run) DRY=1; RESULTS="" ;;
    --results) RESULTS="$2"; shift ;;
    --no-throughput) THROUGHPUT=0 ;;
    --budget) BUDGET_S="$2"; shift ;;
    *) echo "usage: bash bench/gpu_check.sh [--cpu-dry-run] [--no-throughput] [--results FILE]" \
            "[--budget S]" >&2
       exit 2 ;;
  esac
  shift
done
LOG="$(mktemp -d /tmp/gpu_check.XXXXXX)"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-4}" TOKENIZERS_PARALLELISM=false
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
NAMES=() STATES=() SECONDS_TAKEN=() NOTES=()
STARTED="$(date -u '+%Y-%m-%d %H:%M UTC')"

record() {  # name state seconds note
  NAMES+=("$1"); STATES+=("$2"); SECONDS_TAKEN+=("$3"); NOTES+=("$4")
}

step() {  # name time-limit command...: runs it with its output in $LOG/name.log
  local name="$1" limit="$2"; shift 2
  local t0=$SECONDS rc left=$((BUDGET_S - SECONDS - 15))  # 15 s kept for the section
  if [ $left -lt 20 ]; then
    record "$name" skipped 0 "out of time (--budget $BUDGET_S)"; return 1
  fi
  [ $limit -gt $left ] && limit=$left
  echo "== $name (at most ${limit}s): $*"
  (cd "${STEP_DIR:-$ROOT}" && timeout "$limit" "$@") >"$LOG/$name.log" 2>&1
  rc=$?
  tail -n 4 "$LOG/$name.log" | sed 's/\r.*//'
  local took=$((SECONDS - t0))
  if [ $rc -eq 0 ]; then record "$name" ok "$took" "$(note "$name")"
  elif [ $rc -eq 124 ]; then record "$name" "TIMED OUT" "$took" "after ${limit}s; see $LOG/$name.log"
  else record "$name" FAILED "$took" "exit $rc: $(grep -v '^\s*$' "$LOG/$name.log" | tail -n 1 | cut -c1-90)"
  fi
  return $rc
}

note() {  # the line that says what a step found
  case "$1" in
    tests) grep -E '[0-9]+ (passed|failed|skipped)' "$LOG/tests.log" | tail -n 1 ;;
    study) grep -E '^best val/mse' "$LOG/study.log" | cut -c1-60 ;;
    throughput*|study_tags|imports|backbone) tail -n 1 "$LOG/$1.log" ;;
    machine) head -n 1 "$LOG/machine.log" ;;
    *) echo "" ;;
  esac
}

summary() {
  echo
  echo "gpu_check summary (logs in $LOG)"
  printf '%-16s %-10s %6s  %s\n' step state seconds note
  for i in "${!NAMES[@]}"; do
    printf '%-16s %-10s %6s  %s\n' "${NAMES[$i]}" "${STATES[$i]}" "${SECONDS_TAKEN[$i]}" "${NOTES[$i]}"
  done
  if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT/gpu_check" && cp "$LOG"/*.log "$LOG"/*.md "$LOG"/*.jsonl "$LOG"/*.tsv \
      "$OUT/gpu_check/" 2>/dev/null
  fi
}
trap summary EXIT

# 1. wheels for what the image lacks
if ls .whl/*.whl >/dev/null 2>&1; then
  if step wheels 180 python3 -m pip install -q --no-index --no-deps --no-compile \
      --target /tmp/site .whl/*.whl; then
    export PYTHONPATH="/tmp/site:$PYTHONPATH"
  fi
else
  record wheels skipped 0 "no .whl/ folder: using the installed packages"
fi
if [ -z "${LIPO_DATA_DIR:-}" ]; then
  for d in .whl/data ../shared/data shared/data; do
    [ -f "$d/lipophilicity.csv" ] && export LIPO_DATA_DIR="$ROOT/$d" && break
  done
fi
echo "LIPO_DATA_DIR=${LIPO_DATA_DIR:-unset}"

# 2. the machine
step machine 120 python3 - <<'PY'
import importlib.metadata as md, torch
cuda = torch.cuda.is_available()
name = torch.cuda.get_device_name(0) if cuda else "no CUDA GPU"
bf16 = cuda and torch.cuda.is_bf16_supported()
print(f"{name}; {torch.cuda.device_count()} GPU(s), bf16 {'yes' if bf16 else 'no'}; "
      f"torch {torch.__version__}, CUDA {torch.version.cuda}")
for d in ("transformers", "accelerate", "peft", "mlflow-skinny", "optuna", "rdkit"):
    try:
        print(f"{d} {md.version(d)}")
    except md.PackageNotFoundError:
        print(f"{d} MISSING")
PY
# Every module of the package and every benchmark script, found by walking the folders, not
# named here: a module that a restructure moved or removed fails this step, not a GPU run.
step imports 120 python3 - <<'PY'
import importlib, importlib.util, pkgutil, sys
from pathlib import Path
import lipo
broken, count = [], 0
for info in pkgutil.walk_packages(lipo.__path__, "lipo."):
    count += 1
    try:
        importlib.import_module(info.name)
    except Exception as exc:  # noqa: BLE001 (every failure is listed, then the step fails)
        broken.append(f"{info.name}: {type(exc).__name__}: {exc}")
sys.path.insert(0, "bench")  # the scripts import their shared bench/common.py
for script in sorted(Path("bench").glob("*.py")):
    count += 1
    spec = importlib.util.spec_from_file_location(f"bench_{script.stem}", script)
    try:  # their work sits under `if __name__ == "__main__"`: importing runs none of it
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    except Exception as exc:  # noqa: BLE001
        broken.append(f"{script}: {type(exc).__name__}: {exc}")
print("\n".join(broken))
print(f"{count - len(broken)} of {count} modules import" + (f"; broken: {broken[0]}" if broken else ""))
sys.exit(1 if broken else 0)
PY
GPU="$(head -n 1 "$LOG/machine.log" 2>/dev/null | cut -d';' -f1)"
if [ $DRY -eq 0 ] && [ "$GPU" = "no CUDA GPU" ]; then
  echo "no CUDA GPU visible: the CUDA tests will skip (use --cpu-dry-run on a CPU)"
fi

# 3. tests on CUDA
export LIPO_GPU_FIGURES="$LOG/figures.jsonl"
TESTS=(tests/gpu tests/unit/test_devices.py tests/unit/test_placement.py \
  tests/unit/test_inference_device.py)
# On a CPU the CUDA tests skip (memory across trials has its CPU test in the suite,
# tests/integration/test_trial_memory.py); their imports and collection still run.
step tests 300 python3 -m pytest -q -p no:cacheprovider "${TESTS[@]}"

# 4. a short lora study in bf16 on molformer-tiny (tiny until it is registered)
# Read from the launcher's own registry (lipo.cli imports it wherever it lives); a failure
# is a failed step, not a silent fall back to another backbone.
step backbone 60 python3 -c "import lipo.cli as cli; print('molformer-tiny' \
  if 'molformer-tiny' in cli.BACKBONES else 'tiny')"
BACKBONE=$(tail -n 1 "$LOG/backbone.log")
[ "$BACKBONE" = molformer-tiny ] || BACKBONE=tiny
if [ $DRY -eq 1 ]; then
  # The dry run checks the code path, not the figures: 400 molecules make it seconds on a CPU.
  head -n 401 "${LIPO_DATA_DIR:-.}/lipophilicity.csv" >"$LOG/small.csv" 2>/dev/null
  BUDGET=(--trials 1 --epochs 1 --data "$LOG/small.csv")
else
  BUDGET=(--trials 3 --epochs 2)
fi
mkdir -p "$LOG/study_dir"
STEP_DIR="$LOG/study_dir" step study 300 python3 "$ROOT/launch.py" --study lora \
  --backbone "$BACKBONE" --precision bf16 "${BUDGET[@]}"
if ! grep -q '^best val/mse' "$LOG/study.log" 2>/dev/null; then  # failed trials leave rc 0
  STATES[-1]="FAILED"; NOTES[-1]="no trial completed: $(grep -m1 'failed:' "$LOG/study.log" | cut -c1-70)"
fi
STEP_DIR="$LOG/study_dir" step study_tags 60 python3 -c '
from mlflow import MlflowClient
client = MlflowClient("sqlite:///mlruns/mlflow.db")
runs = client.search_runs([client.get_experiment_by_name("lora").experiment_id])
print("lipo.precision", sorted({r.data.tags.get("lipo.precision", "-") for r in runs}),
      "on", len(runs), "runs (trials and parent)")'

# 5. throughput: fp32 (with the HF Trainer and the MoLFormer-sized encoder), then bf16
if [ $THROUGHPUT -eq 0 ]; then
  record throughput skipped 0 "--no-throughput"
elif [ $DRY -eq 1 ]; then
  step throughput_fp32 300 python3 bench/throughput.py --quick --batches 2 --rounds 1 \
    --trainer-molecules 64 --trainer-rounds 1
  step throughput_bf16 300 python3 bench/throughput.py --quick --batches 2 --rounds 1 \
    --trainer-molecules 0 --precision bf16
else
  step throughput_fp32 300 python3 bench/throughput.py
  step throughput_bf16 240 python3 bench/throughput.py --trainer-molecules 0 --precision bf16
fi

# 6. the section for bench/RESULTS.md
SECTION="$LOG/section.md"
for i in "${!NAMES[@]}"; do
  printf '%s\t%s\t%s\t%s\n' "${NAMES[$i]}" "${STATES[$i]}" "${SECONDS_TAKEN[$i]}" "${NOTES[$i]}"
done >"$LOG/steps.tsv"
python3 - "$LOG" "$STARTED" "$BACKBONE" "${BUDGET[*]}" "$DRY" >"$SECTION" <<'PY'
import json, re, sys
from pathlib import Path
log, started, backbone, budget, dry = Path(sys.argv[1]), *sys.argv[2:]
read = lambda name: (log / f"{name}.log").read_text(errors="replace") if (log / f"{name}.log").exists() else ""
clean = lambda text: [l.split("\r")[-1] for l in text.splitlines() if l.strip() and "\r" not in l.strip()[-1:]]
machine = clean(read("machine"))
print(f"\n## GPU check: {machine[0].split(';')[0] if machine else 'unknown machine'}, {started}"
      + (" (CPU dry run)" if dry == "1" else ""))
print(f"\n`bash bench/gpu_check.sh`{' --cpu-dry-run' if dry == '1' else ''}. Machine: "
      + "; ".join(machine) + ".\n")
print("| step | state | seconds | note |\n|---|---|---|---|")
for line in (log / "steps.tsv").read_text().splitlines():
    print("| " + " | ".join(line.split("\t")).replace("|  |", "| |") + " |")
print()
figures = log / "figures.jsonl"
if figures.exists():
    print("| CUDA test | figures |\n|---|---|")
    for line in figures.read_text().splitlines():
        row = json.loads(line)
        name = row.pop("test")
        print(f"| {name} | " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                         for k, v in row.items()) + " |")
tests = [l for l in clean(read("tests")) if re.search(r"\d+ (passed|failed|skipped)", l)]
print(f"\npytest -m gpu: {tests[-1].strip('= ') if tests else 'no result'}")
study = [l for l in clean(read("study")) if l.startswith(("trial ", "study ", "best "))]
tags = clean(read("study_tags"))
print(f"\n`launch.py --study lora --backbone {backbone} --precision bf16 {budget}`:\n")
print("```\n" + "\n".join(study + tags[-1:]) + "\n```")
for name in ("throughput_fp32", "throughput_bf16"):
    if not read(name):
        continue
    lines = [l for l in clean(read(name)) if re.search(r"molecules/s|=|tokens per|machine:", l)]
    print(f"\n`bench/throughput.py` ({name.split('_')[1]}):\n\n```\n" + "\n".join(lines) + "\n```")
PY
echo "== section"; cat "$SECTION"
if [ -n "$RESULTS" ]; then
  cat "$SECTION" >>"$RESULTS" && echo "appended to $RESULTS"
fi
for state in "${STATES[@]}"; do
  case "$state" in FAILED|"TIMED OUT") exit 1 ;; esac
done
exit 0
