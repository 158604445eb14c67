#!/usr/bin/env bash
# GPU check, ready to run on a CUDA machine with torch preinstalled and no network:
# installs arithlab without downloading anything, then trains 3-digit reverse addition
# (10,000 balanced samples, 10,000 uniform test problems) two ways and prints wall time
# and accuracy for both:
#   1. the study's headline run: NanoGPT 10.6M, stream objective, batch 256, context 256,
#      lr 1e-3, warm-up 100, cosine over 5,000 iterations (cut at 5 minutes of training);
#   2. our fastest recipe: the quickstart (answer objective, random position shifts,
#      early stop at 99.5% validation), cut at 2 minutes.
# The whole script ends within about 9 minutes. Usage: bash benchmarks/gpu.sh [OUT_DIR]
# (STUDY_MINUTES and OURS_MINUTES change the two time budgets.)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-runs/gpu}}"
mkdir -p "$out"
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . 2>&1 | tail -1 || true
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else '')"

run() {  # NAME CONFIG ARGS...
  local name=$1; shift
  local started=$(date +%s.%N)
  python3 -m arithlab train "$@" --quiet --force --out "$out/$name" | tee "$out/$name.txt"
  python3 - "$out/$name" "$started" <<'PY'
import json, sys, time
run, started = sys.argv[1], float(sys.argv[2])
e = json.load(open(f"{run}/eval.json"))
m = [json.loads(l) for l in open(f"{run}/metrics.jsonl")]
first = next((r for r in m if r["val_accuracy"] >= 0.99), None)
print(f"RESULT {run}: test {e['accuracy']:.2%} on {e['n']}, wall {time.time() - started:.0f} s, training {e['seconds']:.0f} s, "
      f"{e['iters']} iters ({e['stop_reason']}), 99% validation at "
      + (f"{first['seconds']:.0f} s / iter {first['iter']}" if first else "never"))
PY
}

run study configs/addition_reverse.yaml \
  --set model.preset=nanogpt --set train.objective=stream --set train.batch_size=256 \
  --set model.block_size=256 --set train.lr=1e-3 --set train.warmup_iters=100 \
  --set train.max_iters=5000 --set train.position_offset=0 --set train.max_minutes="${STUDY_MINUTES:-5}"
run ours src/arithlab/configs/quickstart.yaml --set train.max_minutes="${OURS_MINUTES:-2}"
