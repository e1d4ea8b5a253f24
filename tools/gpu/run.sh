#!/usr/bin/env bash
# On the GPU machine (device tool), from the project root, after tools/gpu/build.sh here:
#   bash tools/gpu/run.sh            torch baseline, our kernel benches, the crash regression; results in $OUT
# With SOFTWARE=1 it runs our parts on this machine's SwiftShader instead (a dry run of the bundles).
set -uo pipefail
OUT=${OUT:-/tmp/wgpt-gpu-out}
mkdir -p "$OUT"
if [ "${SOFTWARE:-0}" = 1 ]; then
  run() { "$@"; }
else
  run() { bash .gpu/enter.sh "$@"; }
  python3 tools/gpu/torch_baseline.py > "$OUT/torch.json" 2> "$OUT/torch.log" ||
    echo "torch baseline failed: $(tail -3 "$OUT/torch.log")"
  python3 tools/gpu/torch_attention.py > "$OUT/torch-attention.json" 2>> "$OUT/torch.log" &&
    cat "$OUT/torch-attention.json"
fi
torch=()
[ -s "$OUT/torch.json" ] && torch=(--torch "$OUT/torch.json")
run node .gpu/app/stress.mjs 2>&1 | tee "$OUT/stress.log"
echo "stress exit: ${PIPESTATUS[0]}"
run node .gpu/app/bench-kernels.mjs --out "$OUT/bench-kernels.json" "${torch[@]}" ${QUICK:+--quick} 2>&1 |
  tee "$OUT/bench.log"

# GPT-2 124M training steps, B=8 T=1024: ours, then torch eager fp32 on the same card, the baseline it is measured
# against.
if [ "${SOFTWARE:-0}" = 1 ]; then
  run node .gpu/app/train-gpt2.mjs --preset tiny -B 2 -T 32 --steps 3 | tee "$OUT/train.jsonl"
else
  run node .gpu/app/train-gpt2.mjs --preset d12 -B 8 -T 1024 --steps ${STEPS:-20} | tee "$OUT/train.jsonl"
  python3 tools/gpu/torch_gpt2.py --L 12 --C 768 --NH 12 -B 8 -T 1024 --steps ${STEPS:-20} | tee -a "$OUT/train.jsonl"
  # d48 (1558M): one step at a batch that fits, with its memory.
  run node .gpu/app/train-gpt2.mjs --preset d48 -B 4 -T 1024 --steps 2 | tee -a "$OUT/train.jsonl"
fi
