#!/usr/bin/env bash
# GPU check for taco-lite (issues 7 and 12): the whole GPU path in one time-boxed script.
#
#   bash benchmarks/gpu_check.sh                 # on a GPU machine (about 4-5 minutes)
#   bash benchmarks/gpu_check.sh --dry-run       # the same plan on CPU at tiny sizes (CI)
#   bash benchmarks/gpu_check.sh --no-spacy      # ... with spaCy made unimportable
#
# The GPU machine needs no spaCy: captions are tagged once on a CPU machine into a tag cache,
#   python -m taco_lite.text.tagging runs/tags.json       # on the CPU machine (has spaCy)
# and the cache travels with the run (TAGS=runs/tags.json, the default; it holds every
# caption's tokens and tags, 0.7 MB). Every python step runs with TACO_TAG_CACHE=$TAGS, so a
# run whose captions are all in the cache never imports spaCy (tests/test_spacy_free.py).
#
# Plan (each step time-boxed, logs in $OUT/NAME.log, the script never stops early):
#   1. environment (nvidia-smi, torch, CUDA device); the tag cache (made here if spaCy is
#      present and the cache is missing);
#   2. pytest -m gpu (the CUDA tests; on CPU they skip);
#   3. a short `gpu`-preset training with bf16 autocast and torch.compile, then its
#      evaluation (`python -m taco_lite.evaluate`: retrieval per score, cascade, grounding);
#   4. every benchmark in benchmarks/ (token_loss, fusion_step, retrieval, throughput), with
#      --write on CUDA (docs/benchmarks.md gets the *-cuda sections; a copy lands in $OUT);
#   5. one summary table (also in $OUT/summary.md).
# --dry-run: CPU, tiny sizes (`--tiny`, a 2-step training at batch 16 without compile), tables
# written to $OUT/benchmarks.md instead of docs/. Exit status 1 if any step failed.
# Environment: OUT (logs), TAGS (tag cache), PYTHON, WORLD (a world folder for the training).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
DRY=0
NO_SPACY=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY=1 ;;
    --no-spacy) NO_SPACY=1 ;;
    -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "unknown option $arg (use --dry-run, --no-spacy)" >&2; exit 2 ;;
  esac
done
OUT="${OUT:-$ROOT/runs/gpu_check}"
TAGS="${TAGS:-$ROOT/runs/tags.json}"
# WORLD=DIR: train and evaluate on that generated world (its captions must be in $TAGS); CI's
# dry run uses a small one, so that the plan, not the shipped world's size, is what it tests
WORLD_ARGS=()
[ -n "${WORLD:-}" ] && WORLD_ARGS=(--world "$WORLD")
PY="${PYTHON:-python}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
: >"$OUT/summary.txt"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
export TACO_TAG_CACHE="$TAGS"
if [ $NO_SPACY -eq 1 ]; then
  # sitecustomize runs at every interpreter start: any later `import spacy` raises ImportError
  mkdir -p "$OUT/nospacy"
  echo "import sys; sys.modules['spacy'] = None" >"$OUT/nospacy/sitecustomize.py"
  export PYTHONPATH="$OUT/nospacy:$PYTHONPATH"
fi
FAILED=()
ROWS=()
log() { echo "[gpu_check $(date +%H:%M:%S)] $*" | tee -a "$OUT/summary.txt"; }

# step NAME SECONDS CMD...: run with a time box, log to $OUT/NAME.log, remember the outcome
step() {
  local name="$1" limit="$2"
  shift 2
  log "start $name (limit ${limit}s): $*"
  local t0=$SECONDS
  timeout --signal=INT --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  local took=$((SECONDS - t0))
  tail -n 15 "$OUT/$name.log"
  local status=ok
  if [ $rc -ne 0 ]; then
    status="FAILED (rc=$rc)"
    FAILED+=("$name(rc=$rc)")
  fi
  # the step's headline: the last line that reports a figure
  local what
  what="$(grep -E 'R@1|clips/s|passed|failed|skipped|B=|N=' "$OUT/$name.log" | tail -n 1 |
    tr '|' '/' | cut -c1-110)"
  ROWS+=("| $name | $status | ${took} s | ${what:--} |")
  log "end $name rc=$rc in ${took}s"
}

# ---------------------------------------------------------------- 1. environment, tag cache
nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1 || log "nvidia-smi not found"
$PY - <<'EOF' | tee "$OUT/env.txt"
import importlib.util, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("device", torch.cuda.get_device_name(0))
try:
    print("spacy importable", importlib.util.find_spec("spacy") is not None)
except ValueError:  # sys.modules["spacy"] = None
    print("spacy importable", False)
EOF
if [ $DRY -eq 1 ]; then
  DEV=cpu
else
  DEV=cuda
fi
if [ ! -f "$TAGS" ]; then
  log "no tag cache at $TAGS: making it (needs spaCy; on a GPU box make it on a CPU machine)"
  step tag_cache 120 $PY -m taco_lite.text.tagging "$TAGS"
fi

# ---------------------------------------------------------------- 2-3. CUDA tests, training
# only the files that hold CUDA tests: collecting all of tests/ costs time and needs spaCy
GPU_TESTS=$(grep -l "pytest.mark.gpu" tests/test_*.py)
step pytest_gpu 90 $PY -m pytest -m gpu -q -p no:cacheprovider $GPU_TESTS
if [ $DRY -eq 1 ]; then
  # --no-compile (the gpu preset compiles): inductor's C++ build alone took 2-4 minutes on the
  # 2-core CPU (tests/test_train.py::test_compile_on_cpu_does_not_crash covers compile on CPU)
  step train_gpu 240 $PY -m taco_lite.train --preset gpu --steps 2 --batch-size 16 --amp \
    --no-compile --device cpu --quiet --out "$OUT/train_gpu" "${WORLD_ARGS[@]}"
else
  step train_gpu 100 $PY -m taco_lite.train --preset gpu --steps 200 --amp --compile \
    --device cuda --quiet --out "$OUT/train_gpu" "${WORLD_ARGS[@]}"
fi
# the checkpoint records its data (--world), so evaluate reads the same world
step evaluate_gpu 120 $PY -m taco_lite.evaluate --checkpoint "$OUT/train_gpu/model.pt" \
  --splits test --full-fusion-subset 0 --device $DEV

# ---------------------------------------------------------------- 4. every benchmark
if [ $DRY -eq 1 ]; then
  B=(--device cpu --tiny --repeats 1 --write --doc "$OUT/benchmarks.md")
  LIM=(60 60 120 90)
else
  B=(--device cuda --write --repeats 3)
  LIM=(45 60 75 90)
fi
step bench_token_loss "${LIM[0]}" $PY -m benchmarks.token_loss "${B[@]}" --json "$OUT/token_loss.json"
step bench_fusion_step "${LIM[1]}" $PY -m benchmarks.fusion_step "${B[@]}" --amp \
  --json "$OUT/fusion_step.json"
# dry run: N = 16 with all N^2 fusion passes and N = 32 with full fusion on 20 sampled queries
step bench_retrieval "${LIM[2]}" $PY -m benchmarks.retrieval "${B[@]}" \
  $([ $DRY -eq 1 ] && echo --full-rows 20 || echo --checkpoint data/checkpoints/taco.pt) \
  --json "$OUT/retrieval.json"
step bench_throughput "${LIM[3]}" $PY -m benchmarks.throughput "${B[@]}" \
  $([ $DRY -eq 1 ] || echo --steps 20 --warmup 5) --json "$OUT/throughput.json"
[ $DRY -eq 1 ] || cp docs/benchmarks.md "$OUT/benchmarks.md"

# ---------------------------------------------------------------- 5. one summary table
{
  echo "## gpu_check on $(grep -h '^device' "$OUT/env.txt" || echo "$DEV (no GPU)")$([ $DRY -eq 1 ] && echo ', dry run')"
  echo
  echo "| step | status | time | headline |"
  echo "|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
  echo
  echo "total ${SECONDS} s; spaCy blocked: $([ $NO_SPACY -eq 1 ] && echo yes || echo no); tag cache: $TAGS"
} | tee "$OUT/summary.md"
if [ ${#FAILED[@]} -gt 0 ]; then
  log "FAILED: ${FAILED[*]} (logs in $OUT)"
  exit 1
fi
log "all steps passed; tables in $([ $DRY -eq 1 ] && echo "$OUT/benchmarks.md" || echo "docs/benchmarks.md and $OUT/benchmarks.md")"
