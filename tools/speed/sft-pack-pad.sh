#!/bin/bash
# Fine-tuning on packed rows against padded rows: `wgpt sft` on the default synthetic conversations at T=256, B=4,
# 20 steps each, alternating; the median `ms` of steps 4-20, and the rows, padding and loss tokens of each.
#   bash tools/speed/sft-pack-pad.sh ROUNDS   (after `npm run demo`: its tokenizer; a base of context 256 is made)
set -u
ROUNDS=${1:-2}
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
node scripts/wgpt.mjs chat synth -o "$tmp/syn.jsonl" -n 2000 > /dev/null
node scripts/wgpt.mjs train --data out/demo/shards --tokenizer out/demo/tokenizer --depth 2 --channels 64 --heads 4 \
  --context 256 -B 1 -T 256 --steps 1 --sample-every 0 --val-every 1000 --val-batches 1 --out "$tmp/base" > /dev/null
for r in $(seq 1 "$ROUNDS"); do
  modes=(pack pad); [ $((r % 2)) = 0 ] && modes=(pad pack)
  for mode in "${modes[@]}"; do
    out="$tmp/$mode-$r"
    node scripts/wgpt.mjs sft --checkpoint "$tmp/base/checkpoint" --tokenizer out/demo/tokenizer \
      --data "$tmp/syn.jsonl" \
      --rows "$mode" -B 4 -T 256 --steps 20 --lr 1e-3 --val-every 1000 --val-batches 1 --sample-every 0 \
      --out "$out" > "$out.log" 2>&1
    node -e '
      const [dir, round, mode] = process.argv.slice(1);
      const l = require("fs").readFileSync(dir + "/log.jsonl", "utf8").trim().split("\n").map(JSON.parse);
      const ms = l.filter((e) => e.step >= 4).map((e) => e.ms).sort((a, b) => a - b);
      const med = ms[ms.length >> 1];
      console.log(`round ${round} ${mode}: median ${med.toFixed(1)} ms/step, ${(1024000 / med).toFixed(0)} tok/s`);
    ' "$out" "$r" "$mode"
    grep "rows of T" "$out.log"
  done
done
