// One rank of the all-reduce bench (started by allreduce.bench.ts through launchLocal):
//   allreduce-rank.ts OUT.json ITERS BYTES...
// For each size, of a private array and (where the backend has them) of a sharedArray: a checked all-reduce (rank r
// holds r + 1 everywhere, so every element must be W(W+1)/2), then ITERS timed ones, each between barriers so every
// rank times the same collective. Rank 0 writes the medians.
import { writeFileSync } from 'node:fs';
import { runRank } from '@wgpt/runtime/dist';

const [out, itersArg, ...sizes] = process.argv.slice(2);
const iters = Number(itersArg);

await runRank(async (c) => {
  const W = c.worldSize;
  const rows: { bytes: number; medianMs: number; ok: boolean; shared: boolean }[] = [];
  const time = async (data: Float32Array, shared: boolean, bytes: number) => {
    data.fill(c.rank + 1);
    await c.allReduce(data);
    const want = (W * (W + 1)) / 2;
    const ok = data.every((v) => v === want);
    // Values that stay small over the timed sums: sum of W ranks each step grows them by W at most.
    data.fill(2 ** -40);
    const ts: number[] = [];
    for (let i = 0; i < iters; i++) {
      await c.barrier();
      const t0 = performance.now();
      await c.allReduce(data);
      ts.push(performance.now() - t0);
    }
    ts.sort((a, b) => a - b);
    rows.push({ bytes, medianMs: ts[Math.floor(ts.length / 2)]!, ok, shared });
  };
  for (const bytes of sizes.map(Number)) {
    await time(new Float32Array(bytes / 4), false, bytes);
    // The same in a sharedArray (where the backend has them): what a caller can give that needs no copy in.
    if (c.sharedArray) await time(await c.sharedArray(bytes / 4), true, bytes);
  }
  if (c.rank === 0) writeFileSync(out!, JSON.stringify(rows));
});
