// LayerNorm forward and backward: GB/s of the minimum traffic (each tensor read or written once) and the fraction of
// the copy kernel's bandwidth measured in the same run. GPT-2 124M's shape (N = B·T = 8192, C = 768) on hardware.
import { empty, tensor, type Gpu } from '@wgpt/runtime';
import { EPS32, randomF32, relErr } from '@wgpt/runtime/testing';
import { bandwidthRow, copyBandwidth, timeGpu, type BenchRow, type BenchSuite } from '@wgpt/bench';
import { subgroupsOf4 } from '../common.ts';
import { layernormBackwardInto, layernormForwardInto, type LayerNormVersion } from './layernorm.ts';
import { layernormRef } from './layernorm.ref.ts';

const suite: BenchSuite = {
  name: 'layernorm',
  gpu: true,
  async run({ gpu: g, quick, log }) {
    const gpu = g as Gpu;
    const [N, C] = quick ? [64, 768] : gpu.software ? [512, 768] : [8192, 768];
    const copyGBs = await copyBandwidth(gpu, quick);
    log(`copy baseline: ${copyGBs.toFixed(1)} GB/s`);
    const x = randomF32(N * C, 1, -2, 2);
    const w = randomF32(C, 2, 0.5, 1.5);
    const b = randomF32(C, 3);
    const mk = (data: Float32Array | null, shape: number[]) =>
      data ? tensor(gpu, data, shape, 'f32', { track: false }) : empty(gpu, shape, 'f32', { track: false });
    const X = mk(x, [N, C]);
    const W = mk(w, [C]);
    const Bi = mk(b, [C]);
    const O = mk(null, [N, C]);
    const M = mk(null, [N]);
    const R = mk(null, [N]);
    const D = mk(randomF32(N * C, 4), [N, C]);
    const DX = mk(null, [N, C]);
    const DW = mk(null, [C]);
    const DB = mk(null, [C]);
    const shape = `N=${N} C=${C}`;
    const out: BenchRow[] = [
      {
        name: 'copy v1 (baseline)',
        shape: `${(8 * N * C) / 1e6} MB moved`,
        medianMs: NaN,
        rate: { value: copyGBs, unit: 'GB/s' },
        check: 'n/a',
      },
    ];
    // v2 (one invocation per row, for CPU adapters) where it runs: C % 4 == 0 and subgroups of 4.
    const versions: LayerNormVersion[] = C % 4 === 0 && subgroupsOf4(gpu) ? ['v1', 'v2'] : ['v1'];
    for (const version of versions) {
      const fwd = () =>
        layernormForwardInto(gpu, {
          x: X.buffer,
          weight: W.buffer,
          bias: Bi.buffer,
          out: O.buffer,
          mean: M.buffer,
          rstd: R.buffer,
          N,
          C,
          version,
        });
      const bwd = () =>
        layernormBackwardInto(gpu, {
          x: X.buffer,
          weight: W.buffer,
          mean: M.buffer,
          rstd: R.buffer,
          dout: D.buffer,
          N,
          C,
          dx: { buffer: DX.buffer, accumulate: 0 },
          dweight: { buffer: DW.buffer, accumulate: 0 },
          dbias: { buffer: DB.buffer, accumulate: 0 },
          version,
        });
      const tf = await timeGpu(gpu, fwd, { quick });
      // Forward check on the first rows against f64: tolerance as in layernorm.test.ts, 4·(sqrt(C) + 8)·ε relative.
      const got = await O.read();
      const rowsChecked = Math.min(N, 8);
      const ref = layernormRef(x.subarray(0, rowsChecked * C), w, b, rowsChecked, C);
      let num = 0;
      let den = 0;
      ref.forEach((r, i) => {
        num += (got[i]! - r) ** 2;
        den += r * r;
      });
      const ok = Math.sqrt(num / den) <= 4 * (Math.sqrt(C) + 8) * EPS32;
      const fwdBytes = 4 * (2 * N * C + 2 * C + 2 * N);
      // x, dout read, dx written (the partials, ≤ 1024·2C, not counted)
      const bwdBytes = 4 * (3 * N * C + 2 * N + 3 * C);
      const tb = await timeGpu(gpu, bwd, { quick });
      // Backward check: dweight = Σ_r dout·xhat and dbias = Σ_r dout in f64, within the tests' bound for N-row sums.
      const [dw, db, dout] = [await DW.read(), await DB.read(), await D.read()];
      const wantW = new Float64Array(C);
      const wantB = new Float64Array(C);
      for (let n = 0; n < N; n++) {
        let m = 0;
        for (let c = 0; c < C; c++) m += x[n * C + c]!;
        m /= C;
        let v = 0;
        for (let c = 0; c < C; c++) v += (x[n * C + c]! - m) ** 2;
        const rs = 1 / Math.sqrt(v / C + 1e-5);
        for (let c = 0; c < C; c++) {
          wantW[c] += dout[n * C + c]! * (x[n * C + c]! - m) * rs;
          wantB[c] += dout[n * C + c]!;
        }
      }
      const tolP = 4 * (Math.sqrt(N) + Math.sqrt(C) + 8) * EPS32;
      const okB = relErr(dw, wantW) <= tolP && relErr(db, wantB) <= tolP;
      for (const [name, t, bytes, check] of [
        [`layernorm forward ${version}`, tf, fwdBytes, ok ? 'pass' : 'fail'],
        [`layernorm backward ${version} (fused dx + partials, then reduce)`, tb, bwdBytes, okB ? 'pass' : 'fail'],
      ] as const) {
        out.push(bandwidthRow({ name, shape, t, bytes, copyGBs, check }, log));
      }
    }
    for (const t of [X, W, Bi, O, M, R, D, DX, DW, DB]) t.dispose();
    return out;
  },
};
export default suite;
