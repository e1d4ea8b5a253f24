// One rank of the device all-reduce test: its own WebGPU device (one per process), a buffer holding this rank's
// input after a guard band, all-reduced in chunks; the buffer read back to OUT_DIR/gpu-rank<R>.f32. Then
// broadcastSpans over a buffer of this rank's input: the owners' spans of BCAST_SPANS, read back to
// OUT_DIR/gpu-bcast-rank<R>.f32.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { allReduceBuffer, broadcastSpans, openRankGpu, runRank } from '../src/dist/index.ts';
import { BCAST_FLOATS, BCAST_SPANS } from './dist-data.ts';
import { rankInput } from './dist-data.ts';

const [out, nArg] = process.argv.slice(2);
const n = Number(nArg);
const GUARD = 5; // floats before and after the data that must keep their values

await runRank(
  async (c, env) => {
    const gpu = await openRankGpu(env);
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    const buf = gpu.pool.acquire((n + 2 * GUARD) * 4, usage, 'grads');
    const init = new Float32Array(n + 2 * GUARD).fill(-7);
    init.set(rankInput(c.rank, n, 4), GUARD);
    gpu.write(buf, init);
    await allReduceBuffer(gpu, c, buf, n, 'sum', { offset: GUARD * 4, chunkFloats: 30011 });
    const got = new Float32Array(await gpu.read(buf, (n + 2 * GUARD) * 4));
    writeFileSync(join(out!, `gpu-rank${c.rank}.f32`), new Uint8Array(got.buffer));
    const b = gpu.pool.acquire(BCAST_FLOATS * 4, usage, 'parameters');
    gpu.write(b, rankInput(c.rank, BCAST_FLOATS, 6));
    const spans = BCAST_SPANS.map((list) => list.map(([at, count]) => ({ buffer: b, offset: 4 * at, count })));
    await broadcastSpans(gpu, c, spans);
    const sent = new Float32Array(await gpu.read(b, BCAST_FLOATS * 4));
    writeFileSync(join(out!, `gpu-bcast-rank${c.rank}.f32`), new Uint8Array(sent.buffer));
    gpu.destroy();
  },
  { chunkFloats: 8191 },
);
