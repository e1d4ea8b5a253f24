// One rank of the summer test (allreduce-dist.test.ts), started by launchLocal: the same all-reduces and
// reduce-scatters of this rank's data, first summed on the CPU (the default), then, where the job asks for it
// (WGPT_DIST_SUM=gpu), with the GPU summer attached after joining; every result written to
// OUT_DIR/<summer>-<op>-rank<R>.f32, and the GPU summer's call count to OUT_DIR/calls-rank<R>.json.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openRankGpu, runRank, type Collective } from '@wgpt/runtime/dist';
import { gpuPieceSummer } from './allreduce.ts';
import { summerInput } from './summer-data.ts';

const [out, nArg] = process.argv.slice(2);
const n = Number(nArg);

async function ops(c: Collective, name: string): Promise<void> {
  const save = (what: string, a: Float32Array) =>
    writeFileSync(
      join(out!, `${name}-${what}-rank${c.rank}.f32`),
      new Uint8Array(a.buffer, a.byteOffset, a.byteLength),
    );
  for (const op of ['sum', 'mean'] as const) {
    const d = summerInput(c.rank, n, 1);
    await c.allReduce(d, op);
    save(op, d);
  }
  save('scatter', await c.reduceScatter(summerInput(c.rank, n, 2), 'mean'));
}

await runRank(
  async (c, env, job) => {
    await ops(c, 'cpu');
    if (job.sum !== 'gpu') return;
    const gpu = await openRankGpu(env);
    const summer = gpuPieceSummer(gpu);
    let calls = 0;
    c.useSummer!({ name: summer.name, sum: (s, op) => (calls++, summer.sum(s, op)) });
    await ops(c, 'gpu');
    writeFileSync(join(out, `calls-rank${c.rank}.json`), JSON.stringify(calls));
    gpu.destroy();
  },
  { chunkFloats: 4099 },
);
