// One rank of the collective tests, started by the local launcher (node scripts/run-ts.mjs, RANK etc. set):
//   ops OUT_DIR    every operation on every case, results written as OUT_DIR/<op>-<case>-rank<R>.f32
//   throw          rank 1 throws before its second operation
//   hang R         rank R never reaches its second operation (its event loop keeps running)
//   block R        rank R blocks its thread (and so cannot answer messages) before its second operation
//   exit R         rank R exits with status 3 before its second operation
//   mismatch       rank 1 reduces 11 floats where the others reduce 10
//   nojoin         rank 1 never joins the job
//   abort          rank 1 aborts the job while rank 0 waits without an operation
//   killsidecar R  rank R kills its torch sidecar before its second operation
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runRank, shardRange, type TorchCollective } from '../src/dist/index.ts';
import { CASES, rankInput } from './dist-data.ts';

const [mode, arg] = process.argv.slice(2);
const chunkFloats = Number(process.env.TEST_CHUNK ?? 4099);

if (mode === 'nojoin' && process.env.RANK === '1') await new Promise((r) => setTimeout(r, 60_000));

await runRank(
  async (c) => {
    const W = c.worldSize;
    const r = c.rank;
    if (mode === 'ops') {
      const save = (name: string, a: Float32Array) =>
        writeFileSync(join(arg!, `${name}-rank${r}.f32`), new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
      writeFileSync(join(arg!, `backend-rank${r}.txt`), c.constructor.name);
      for (const [name, n] of CASES) {
        const sum = rankInput(r, n, 0);
        await c.allReduce(sum, 'sum');
        save(`sum-${name}`, sum);
        const mean = rankInput(r, n, 0);
        await c.allReduce(mean, 'mean');
        save(`mean-${name}`, mean);
        save(`scatter-${name}`, await c.reduceScatter(rankInput(r, n, 1)));
        const s = shardRange(n, W, r);
        save(`gather-${name}`, await c.allGather(rankInput(r, n, 2).subarray(s.start, s.end), n));
        const b = rankInput(r, n, 3);
        await c.broadcast(b, W - 1);
        save(`bcast-${name}`, b);
        if (c.sharedArray) {
          // A view 5 floats into a shared array of n + 9, the rest -7 (must stay: only the view is reduced).
          const arr = await c.sharedArray(n + 9);
          for (const op of ['sum', 'mean'] as const) {
            arr.fill(-7);
            arr.set(rankInput(r, n, 0), 5);
            await c.allReduce(arr.subarray(5, 5 + n), op);
            save(`shared${op}-${name}`, arr);
          }
        }
      }
      await c.barrier();
      return;
    }
    const x = rankInput(r, 10, 0);
    await c.allReduce(x);
    if (mode === 'mismatch') await c.allReduce(rankInput(r, r === 1 ? 11 : 10, 0));
    const me = Number(arg);
    if (mode === 'throw' && r === 1) throw new Error('a bug in rank 1');
    if (mode === 'hang' && r === me) setInterval(() => {}, 1000);
    if (mode === 'hang' && r === me) await new Promise(() => {});
    if (mode === 'block' && r === me) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
    if (mode === 'exit' && r === me) process.exit(3);
    if (mode === 'abort' && r === 1) c.abort('rank 1 gave up');
    if (mode === 'abort' && r === 0) setInterval(() => {}, 1000);
    if (mode === 'abort' && r === 0) await new Promise(() => {});
    if (mode === 'killsidecar' && r === me) process.kill((c as TorchCollective).sidecarPid!, 'SIGKILL');
    await c.allReduce(x);
  },
  { chunkFloats },
);
