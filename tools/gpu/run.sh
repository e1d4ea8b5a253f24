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
  python3 tools/gpu/torch_baseline.py > "$OUT/torch.json" 2> "$OUT/torch.log" || echo "torch baseline failed: $(tail -3 "$OUT/torch.log")"
fi
torch=()
[ -s "$OUT/torch.json" ] && torch=(--torch "$OUT/torch.json")
run node .gpu/app/stress.mjs 2>&1 | tee "$OUT/stress.log"
echo "stress exit: ${PIPESTATUS[0]}"
run node .gpu/app/bench-kernels.mjs --out "$OUT/bench-kernels.json" "${torch[@]}" ${QUICK:+--quick} 2>&1 | tee "$OUT/bench.log"
