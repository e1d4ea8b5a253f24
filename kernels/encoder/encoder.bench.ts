// Encoder forward and backward: GB/s of the minimum traffic and the fraction of the copy kernel's bandwidth in the
// same run. GPT-2 124M's shapes on hardware (B·T = 8192, C = 768, V = 50257, maxT = 1024).
import { empty, grid1d, tensor, type Gpu } from '@wgpt/runtime';
import { EPS32, randomF32, relErr, rng } from '@wgpt/runtime/testing';
import { bandwidthRow, copyBandwidth, timeGpu, type BenchRow, type BenchSuite } from '@wgpt/bench';
import { placeholder } from '../common.ts';
import { encoderBackwardWpeSpec, encoderBackwardWte, encoderForwardSpec } from './encoder.ts';

const suite: BenchSuite = {
  name: 'encoder',
  gpu: true,
  async run({ gpu: g, quick, log }) {
    const gpu = g as Gpu;
    const [B, T, C, V] = quick ? [2, 32, 768, 1000] : gpu.software ? [4, 64, 768, 8192] : [8, 1024, 768, 50257];
    const N = B * T;
    const copyGBs = await copyBandwidth(gpu, quick);
    log(`copy baseline: ${copyGBs.toFixed(1)} GB/s`);
    const r = rng(1);
    const tokens = Int32Array.from({ length: N }, () => Math.floor(r() * V));
    const mk = (shape: number[], seed?: number) =>
      seed === undefined
        ? empty(gpu, shape, 'f32', { track: false })
        : tensor(
            gpu,
            randomF32(
              shape.reduce((a, b) => a * b, 1),
              seed,
            ),
            shape,
            'f32',
            { track: false },
          );
    const TOK = tensor(gpu, tokens, [N], 'i32', { track: false });
    const WTE = mk([V, C], 2);
    const WPE = mk([T, C], 3);
    const OUT = mk([N, C]);
    const DOUT = mk([N, C], 4);
    const DWTE = mk([V, C]);
    const DWPE = mk([T, C]);
    const fwd = () =>
      gpu.dispatch(encoderForwardSpec, {
        buffers: { tokens: TOK.buffer, wte: WTE.buffer, wpe: WPE.buffer, out: OUT.buffer, positions: placeholder(gpu) },
        uniforms: { N, T, C, V, posOffset: 0, maxT: T },
        workgroups: grid1d(gpu, N * C, 256),
      });
    const bwd = () => {
      gpu.dispatch(encoderBackwardWpeSpec, {
        buffers: { dout: DOUT.buffer, dwpe: DWPE.buffer },
        uniforms: { B, T, C, maxT: T, accumulate: 0 },
        workgroups: grid1d(gpu, T * C, 256),
      });
      encoderBackwardWte(gpu, { tokens: TOK.buffer, dout: DOUT.buffer, dwte: DWTE.buffer, N, C, V });
    };
    const tf = await timeGpu(gpu, fwd, { quick });
    const out = await OUT.read();
    const wte = await WTE.read();
    const wpe = await WPE.read();
    let ok = true;
    for (let i = 0; i < 64; i++) {
      const n = (i * 7919) % N;
      const c = (i * 31) % C;
      if (out[n * C + c] !== Math.fround(wte[tokens[n]! * C + c]! + wpe[(n % T) * C + c]!)) ok = false;
    }
    const tb = await timeGpu(gpu, bwd, { quick });
    // Backward check against f64 sums. The timed runs added into dwte over and over: rerun once from zeros.
    gpu.clear(DWTE.buffer, 0, DWTE.bytes);
    bwd();
    const [dwte, dwpe, dout] = [await DWTE.read(), await DWPE.read(), await DOUT.read()];
    const wantWpe = new Float64Array(T * C);
    const wantWte = new Map<number, Float64Array>();
    for (let n = 0; n < N; n++) {
      const row = wantWte.get(tokens[n]!) ?? new Float64Array(C);
      wantWte.set(tokens[n]!, row);
      for (let c = 0; c < C; c++) {
        wantWpe[(n % T) * C + c] += dout[n * C + c]!;
        row[c] += dout[n * C + c]!;
      }
    }
    // Sums of ≤ max(B, N) f32 terms: 4·(sqrt(k) + 1)·ε relative, as in encoder.test.ts.
    const tolB = 4 * (Math.sqrt(N) + 1) * EPS32;
    let okB = relErr(dwpe, wantWpe) <= tolB;
    for (const [tok, row] of wantWte) if (!(relErr(dwte.subarray(tok * C, (tok + 1) * C), row) <= tolB)) okB = false;
    const rows: BenchRow[] = [
      { name: 'copy v1 (baseline)', shape: '', medianMs: NaN, rate: { value: copyGBs, unit: 'GB/s' }, check: 'n/a' },
    ];
    // Forward: a wte row and a wpe row read and an output row written per position. Backward: dout read twice
    // (dwpe and dwte paths), dwpe written, dwte's used rows read and written (≤ N rows).
    const shape = `B=${B} T=${T} C=${C} V=${V}`;
    for (const [name, t, bytes, check] of [
      ['encoder forward v1', tf, 12 * N * C, ok ? 'pass' : 'fail'],
      [
        'encoder backward v1 (dwpe + bucketed dwte, 7 passes)',
        tb,
        4 * (2 * N * C + T * C + 2 * N * C),
        okB ? 'pass' : 'fail',
      ],
    ] as const) {
      rows.push(bandwidthRow({ name, shape, t, bytes, copyGBs, check }, log));
    }
    for (const x of [TOK, WTE, WPE, OUT, DOUT, DWTE, DWPE]) x.dispose();
    return rows;
  },
};
export default suite;
