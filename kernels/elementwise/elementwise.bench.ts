// Memory-bound kernels (GELU forward/backward, add, AdamW): GB/s and their fraction of the copy kernel's bandwidth
// measured in the same run.
import { empty, tensor, type Gpu } from '@wgpt/runtime';
import { randomF32 } from '@wgpt/runtime/testing';
import { bandwidthRow, copyBandwidth, timeGpu, type BenchRow, type BenchSuite } from '@wgpt/bench';
import { addSpec, geluBackwardSpec, geluForwardSpec } from './elementwise.ts';
import { geluRef } from './elementwise.ref.ts';
import { grid1d } from '../common.ts';

const suite: BenchSuite = {
  name: 'elementwise',
  gpu: true,
  async run({ gpu: g, quick, log }) {
    const gpu = g as Gpu;
    const n = quick ? 1 << 16 : gpu.software ? 1 << 20 : 8192 * 3072; // GPT-2 124M's fc activation on hardware
    const copyGBs = await copyBandwidth(gpu, quick);
    log(`copy baseline: ${copyGBs.toFixed(1)} GB/s`);
    const x = randomF32(n, 3, -4, 4);
    const X = tensor(gpu, x, [n], 'f32', { track: false });
    const Y = tensor(gpu, randomF32(n, 4), [n], 'f32', { track: false });
    const O = empty(gpu, [n], 'f32', { track: false });
    const wg = grid1d(gpu, n, 256);
    const cases: { name: string; bytes: number; rec: () => void }[] = [
      {
        name: 'gelu forward v1',
        bytes: 8 * n,
        rec: () =>
          gpu.dispatch(geluForwardSpec, { buffers: { x: X.buffer, out: O.buffer }, uniforms: { n }, workgroups: wg }),
      },
      {
        name: 'gelu backward v1 (write)',
        bytes: 12 * n,
        rec: () =>
          gpu.dispatch(geluBackwardSpec, {
            buffers: { x: X.buffer, dout: Y.buffer, dx: O.buffer },
            uniforms: { n, accumulate: 0 },
            workgroups: wg,
          }),
      },
      {
        name: 'add v1',
        bytes: 12 * n,
        rec: () =>
          gpu.dispatch(addSpec, {
            buffers: { a: X.buffer, b: Y.buffer, out: O.buffer },
            uniforms: { n },
            workgroups: wg,
          }),
      },
    ];
    const rows: BenchRow[] = [
      {
        name: 'copy v1 (baseline)',
        shape: `n=${n}`,
        medianMs: NaN,
        rate: { value: copyGBs, unit: 'GB/s' },
        check: 'n/a',
      },
    ];
    for (const c of cases) {
      const t = await timeGpu(gpu, c.rec, { quick });
      let check: BenchRow['check'] = 'n/a';
      if (c.name.startsWith('gelu forward')) {
        const out = await O.read();
        const ref = geluRef(x.subarray(0, 4096));
        check = ref.every((r, i) => Math.abs(out[i]! - r) <= 1e-6 * (1 + Math.abs(r))) ? 'pass' : 'fail';
      }
      rows.push(bandwidthRow({ name: c.name, shape: `n=${n}`, t, bytes: c.bytes, copyGBs, check }, log));
    }
    for (const t of [X, Y, O]) t.dispose();
    return rows;
  },
};
export default suite;
