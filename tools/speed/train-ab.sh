#!/bin/bash
# The demo model's training step, several commits back to back: `wgpt train` on the demo's shards (run `npm run demo`
# first), 40 steps, the median `ms` of steps 6-40 from log.jsonl; the commits rotate their order each round.
#   bash tools/speed/train-ab.sh ROUNDS NAME=CHECKOUT_DIR ...   (each CHECKOUT_DIR a worktree with node_modules)
# e.g. git worktree add --detach /tmp/base1991 1991bec && (cd /tmp/base1991 && pnpm install --offline)
#      bash tools/speed/train-ab.sh 3 1991bec=/tmp/base1991 main=$PWD
set -u
ROUNDS=$1; shift
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
names=(); dirs=()
for a in "$@"; do names+=("${a%%=*}"); dirs+=("${a#*=}"); done
n=${#names[@]}
for r in $(seq 1 "$ROUNDS"); do
  for i in $(seq 0 $((n - 1))); do
    j=$(( (i + r - 1) % n ))
    out=$(mktemp -d)/run
    load=$(cut -d' ' -f1 /proc/loadavg)
    (cd "${dirs[$j]}" && timeout 900 node scripts/wgpt.mjs train --data "$ROOT/out/demo/shards" \
      --tokenizer "$ROOT/out/demo/tokenizer" --depth 2 --channels 64 --heads 4 --context 64 -B 4 -T 64 \
      --steps 40 --lr 3e-3 --sample-every 0 --val-every 1000 --val-batches 1 --out "$out" > /dev/null 2>&1)
    node -e '
      const [dir, round, name, load] = process.argv.slice(1);
      const l = require("fs").readFileSync(dir + "/log.jsonl", "utf8").trim().split("\n").map(JSON.parse);
      const ms = l.filter((e) => e.step >= 6).map((e) => e.ms).sort((a, b) => a - b);
      const med = ms[ms.length >> 1];
      const last = l[l.length - 1];
      console.log(`round ${round} ${name.padEnd(8)} load ${load}: median ${med.toFixed(1)} ms/step ` +
        `(min ${ms[0].toFixed(1)}), ${(256000 / med).toFixed(0)} tok/s, loss@${last.step} ${last.loss.toFixed(4)}`);
    ' "$out" "$r" "${names[$j]}" "$load"
  done
done
