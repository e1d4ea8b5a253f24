// The all-reduce's summation, CPU or GPU: the time to sum W slices of n floats (what one rank does to its shard of
// every reduction), as GB/s of input (4·W·n bytes per sum), for W = 2, 4, 8 and n = 256 Ki..64 Mi floats:
//   cpu loop        cpuPieceSummer, the JavaScript loop (single-threaded): the collective's fallback
//   cpu blas        BLAS saxpy through koffi, one thread: what the collective runs where a BLAS library loads
//   gpu end to end  gpuPieceSummer: W slices up through mapped staging, the kernel, the result read back
//   gpu kernel      sum_slices alone on slices already on the device (GPU timestamps where the adapter has them)
// Each other row's "of baseline" is its rate over the CPU loop's at the same W and n: above 100% it is faster.
// It lives here rather than in bench/ because the bench harness may not import the kernels (tests/imports.test.ts).
import { blasAdder, cpuPieceSummer, hostPieceSummer, type PieceSummer } from '@wgpt/runtime/dist';
import { type Gpu } from '@wgpt/runtime';
import { randomF32 } from '@wgpt/runtime/testing';
import { timeGpu, type BenchRow, type BenchSuite } from '@wgpt/bench';
import { gpuPieceSummer, sumSlicesInto } from './allreduce.ts';

const Ki = 1024;
const Mi = Ki * Ki;

/** Median wall time of `iters` calls (after one untimed call that also returns the result to check). */
async function timeHost(
  f: () => Float32Array | Promise<Float32Array>,
  iters: number,
): Promise<{ ms: number; out: Float32Array }> {
  const out = Float32Array.from(await f());
  const ts: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    await f();
    ts.push(performance.now() - t0);
  }
  ts.sort((a, b) => a - b);
  return { ms: ts[Math.floor(ts.length / 2)]!, out };
}

const same = (a: Float32Array, b: Float32Array) =>
  a.length === b.length &&
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

const suite: BenchSuite = {
  name: 'allreduce-sum',
  gpu: true,
  async run({ gpu: g, quick, log }) {
    const gpu = g as Gpu;
    const sizes = quick ? [64 * Ki, 256 * Ki] : [256 * Ki, Mi, 4 * Mi, 16 * Mi, 64 * Mi];
    const rows: BenchRow[] = [];
    const gpuSummer: PieceSummer = gpuPieceSummer(gpu);
    const maxBinding = Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
    const blas = await blasAdder();
    if (!blas.adder) log(`cpu blas rows skipped: ${blas.why}`);
    const blasSummer = blas.adder ? hostPieceSummer(blas.adder) : null;
    for (const W of [2, 4, 8])
      for (const n of sizes) {
        const shape = `W=${W} n=${n / Mi >= 1 ? `${n / Mi} Mi` : `${n / Ki} Ki`}`;
        const bytes = 4 * W * n;
        const iters = quick ? 3 : bytes > 512 * Mi ? 3 : 7;
        const slices = [...Array(W).keys()].map((r) => randomF32(n, 97 * W + r, -4, 4));
        const gbs = (ms: number) => bytes / (ms * 1e6);
        const cpu = await timeHost(() => cpuPieceSummer.sum(slices, 'sum'), iters);
        log(`${shape}: cpu loop ${cpu.ms.toFixed(2)} ms, ${gbs(cpu.ms).toFixed(2)} GB/s`);
        rows.push({
          name: 'cpu loop (JavaScript, one thread)',
          shape,
          medianMs: cpu.ms,
          rate: { value: gbs(cpu.ms), unit: 'GB/s in' },
          check: 'n/a',
          note: 'the reference',
        });
        if (blasSummer) {
          const b = await timeHost(() => blasSummer.sum(slices, 'sum'), iters);
          log(`${shape}: cpu blas ${b.ms.toFixed(2)} ms, ${gbs(b.ms).toFixed(2)} GB/s`);
          rows.push({
            name: `cpu ${blasSummer.name}, one thread`,
            shape,
            medianMs: b.ms,
            rate: { value: gbs(b.ms), unit: 'GB/s in' },
            ofBaseline: { fraction: cpu.ms / b.ms, baseline: 'cpu loop' },
            check: same(b.out, cpu.out) ? 'pass' : 'fail',
          });
        }
        const e2e = await timeHost(() => gpuSummer.sum(slices, 'sum'), iters);
        log(`${shape}: gpu end to end ${e2e.ms.toFixed(2)} ms, ${gbs(e2e.ms).toFixed(2)} GB/s`);
        rows.push({
          name: 'gpu end to end (upload, kernel, read back)',
          shape,
          medianMs: e2e.ms,
          rate: { value: gbs(e2e.ms), unit: 'GB/s in' },
          ofBaseline: { fraction: cpu.ms / e2e.ms, baseline: 'cpu loop' },
          check: same(e2e.out, cpu.out) ? 'pass' : 'fail',
        });
        // One buffer of all the slices: at 1 GiB (W=4, n=64 Mi) SwiftShader ran out of Vulkan memory and lost the
        // device, so the kernel alone is timed up to 256 MiB of slices.
        if (bytes > Math.min(maxBinding, 256 * Mi)) {
          log(`${shape}: the kernel alone skipped: ${bytes} bytes of slices in one buffer (at most 256 MiB here)`);
          continue;
        }
        const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
        const x = gpu.pool.acquire(bytes, usage, 'bench slices');
        const y = gpu.pool.acquire(4 * n, usage, 'bench sum');
        try {
          slices.forEach((s, r) => gpu.write(x, s, 4 * r * n));
          const t = await timeGpu(gpu, () => sumSlicesInto(gpu, { x, out: y, n, W }), { quick });
          const got = new Float32Array(await gpu.read(y, 4 * n));
          log(`${shape}: gpu kernel ${t.ms.toFixed(3)} ms (${t.timer}), ${gbs(t.ms).toFixed(2)} GB/s`);
          rows.push({
            name: 'gpu kernel alone',
            shape,
            medianMs: t.ms,
            rate: { value: gbs(t.ms), unit: 'GB/s in' },
            ofBaseline: { fraction: cpu.ms / t.ms, baseline: 'cpu loop' },
            check: same(got, cpu.out) ? 'pass' : 'fail',
            note: `${t.timer} timer`,
          });
        } finally {
          gpu.pool.release(x);
          gpu.pool.release(y);
        }
      }
    return rows;
  },
};
export default suite;
