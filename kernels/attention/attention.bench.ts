// Causal attention, flash vs naive: forward and forward+backward time and GFLOP/s, and the peak pool bytes of one
// forward+backward (flash grows linearly in T, naive quadratically). GPT-2 124M's attention (B=8, NH=12, HS=64) at
// T = 1024, 2048, 4096 on hardware adapters; small shapes on software ones.
//
// FLOPs counted: causal forward 4·B·NH·HS·T(T+1)/2 (QKᵀ and PV over the pairs k <= q); forward+backward 3.5× that
// (the backward's dV, dP, dQ, dK and the recomputed S: 5 products against the forward's 2), the usual
// FlashAttention convention, so both versions are rated on the same work.
//
// Packed rows: each flash version's forward+backward also runs with SEGS equal segments per row (segment ids, the
// bounds dispatch included), beside the same shape without; its rate counts the pairs within segments
// (SEGS·L(L+1)/2 per row and head, L = T/SEGS), so at the same rate it takes about 1/SEGS of the time.
import { empty, tensor, tidyAsync, backward, type Gpu, type Tensor } from '@wgpt/runtime';
import { randomF32, relErr } from '@wgpt/runtime/testing';
import { bwdBound, fwdBound } from './attention.ref.ts';
import { timeGpu, type BenchRow, type BenchSuite } from '@wgpt/bench';
import {
  attention,
  attentionNaive,
  describePlan,
  flashBackward,
  flashForward,
  flashPlan,
  flashV3Eligible,
  naiveBackward,
  naiveForward,
  segmentBounds,
} from './attention.ts';

interface Shape {
  B: number;
  T: number;
  NH: number;
  HS: number;
}

function shapesFor(gpu: Gpu, quick: boolean): Shape[] {
  if (quick) return [{ B: 1, T: 64, NH: 2, HS: 64 }];
  if (gpu.software) return [64, 128, 256].map((T) => ({ B: 1, T, NH: 2, HS: 64 }));
  return [1024, 2048, 4096].map((T) => ({ B: 8, T, NH: 12, HS: 64 }));
}

const fwdFlops = (s: Shape) => 4 * s.B * s.NH * s.HS * ((s.T * (s.T + 1)) / 2);
/** Segments per row in the packed-rows rows. */
const SEGS = 4;
/** The forward's FLOPs with SEGS equal segments per row (T a multiple of SEGS). */
const segFwdFlops = (s: Shape) => SEGS * fwdFlops({ ...s, T: s.T / SEGS });

/** f64 output row (b, h, q) of causal attention, for spot checks. */
function refRow(x: Float32Array, s: Shape, b: number, h: number, q: number): Float64Array {
  const C = s.NH * s.HS;
  const at = (t: number, part: number, d: number) => x[(b * s.T + t) * 3 * C + part * C + h * s.HS + d]!;
  const sc = new Float64Array(q + 1);
  let max = -Infinity;
  for (let k = 0; k <= q; k++) {
    let dd = 0;
    for (let d = 0; d < s.HS; d++) dd += at(q, 0, d) * at(k, 1, d);
    sc[k] = dd / Math.sqrt(s.HS);
    max = Math.max(max, sc[k]!);
  }
  let sum = 0;
  for (let k = 0; k <= q; k++) sum += sc[k] = Math.exp(sc[k]! - max);
  const out = new Float64Array(s.HS);
  for (let k = 0; k <= q; k++) for (let d = 0; d < s.HS; d++) out[d]! += (sc[k]! / sum) * at(k, 2, d);
  return out;
}

/** Spot check 16 rows against the f64 reference, relative error per row within the tests' derived bound. */
function spotCheck(out: Float32Array, x: Float32Array, s: Shape): boolean {
  const C = s.NH * s.HS;
  for (let i = 0; i < 16; i++) {
    const b = i % s.B;
    const h = (i * 7) % s.NH;
    const q = i === 0 ? 0 : i === 1 ? s.T - 1 : (i * 104729) % s.T;
    const got = out.subarray((b * s.T + q) * C + h * s.HS, (b * s.T + q) * C + (h + 1) * s.HS);
    if (!(relErr(got, refRow(x, s, b, h, q)) <= fwdBound(s.T, s.HS))) return false;
  }
  return true;
}

/**
 * Spot check 16 rows with SEGS equal segments per row: each row against the f64 attention over its segment alone
 * (the segment's tokens as a sequence of their own).
 */
function spotCheckSegmented(out: Float32Array, x: Float32Array, s: Shape): boolean {
  const C = s.NH * s.HS;
  const L = s.T / SEGS;
  for (let i = 0; i < 16; i++) {
    const b = i % s.B;
    const h = (i * 7) % s.NH;
    const q = i === 0 ? L : i === 1 ? s.T - 1 : (i * 104729) % s.T; // row 0: a segment's first token
    const start = q - (q % L);
    const seg = x.subarray((b * s.T + start) * 3 * C, (b * s.T + start + L) * 3 * C);
    const got = out.subarray((b * s.T + q) * C + h * s.HS, (b * s.T + q) * C + (h + 1) * s.HS);
    if (!(relErr(got, refRow(seg, { ...s, B: 1, T: L }, 0, h, q - start)) <= fwdBound(L, s.HS))) return false;
  }
  return true;
}

/** Peak pool bytes (above what was in use before) of one forward + backward through the op. */
async function peakBytes(gpu: Gpu, op: (x: Tensor) => Tensor, x: Float32Array, s: Shape): Promise<number> {
  return tidyAsync(async () => {
    const C = s.NH * s.HS;
    const X = tensor(gpu, x, [s.B, s.T, 3 * C], 'f32', { requiresGrad: true });
    const G = empty(gpu, [s.B, s.T, C]);
    gpu.clear(G.buffer);
    await gpu.sync();
    const base = gpu.pool.stats.bytesInUse;
    gpu.pool.stats.peakBytesInUse = base;
    backward(op(X), G);
    await gpu.sync();
    return gpu.pool.stats.peakBytesInUse - base;
  });
}

const MiB = 2 ** 20;

const suite: BenchSuite = {
  name: 'attention',
  gpu: true,
  async run({ gpu: g, quick, log }) {
    const gpu = g as Gpu;
    const rows: BenchRow[] = [];
    const maxBinding = Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
    for (const s of shapesFor(gpu, quick)) {
      const { B, T, NH, HS } = s;
      const C = NH * HS;
      const shape = `B=${B} T=${T} NH=${NH} HS=${HS}`;
      const full = { ...s, C };
      const x = randomF32(B * T * 3 * C, T);
      const u = { track: false } as const;
      const X = tensor(gpu, x, [B, T, 3 * C], 'f32', u);
      const dO = tensor(gpu, randomF32(B * T * C, T + 1), [B, T, C], 'f32', u);
      const O = empty(gpu, [B, T, C], 'f32', u);
      const dX = empty(gpu, [B, T, 3 * C], 'f32', u);
      const lse = empty(gpu, [B, NH, T], 'f32', u);
      const D = empty(gpu, [B, NH, T], 'f32', u);
      const flops = fwdFlops(s);
      const owned: Tensor[] = [X, dO, O, dX, lse, D];

      const bwdRows: { v: string; t: { ms: number; timer: string }; d: Float32Array; plan: string }[] = [];
      for (const v of ['v2', 'v1', ...(flashV3Eligible(gpu, HS) ? (['v3'] as const) : [])] as const) {
        const plan = flashPlan(gpu, HS, { version: v });
        const fwd = () => flashForward(gpu, X.buffer, O.buffer, lse.buffer, full, plan);
        const both = () => {
          fwd();
          flashBackward(
            gpu,
            {
              qkv: X.buffer,
              out: O.buffer,
              dout: dO.buffer,
              lse: lse.buffer,
              D: D.buffer,
              dqkv: dX.buffer,
              accumulate: 0,
            },
            full,
            plan,
          );
        };
        const tf = await timeGpu(gpu, fwd, { quick });
        const ok = spotCheck((await O.read()) as Float32Array, x, s);
        rows.push({
          name: `attention flash ${v} forward`,
          shape,
          medianMs: tf.ms,
          rate: { value: flops / (tf.ms * 1e6), unit: 'GFLOP/s' },
          check: ok ? 'pass' : 'fail',
          note: `${tf.timer} timer, ${describePlan(plan)}`,
        });
        log(`flash ${v} forward ${shape}: ${tf.ms.toFixed(3)} ms`);
        const tb = await timeGpu(gpu, both, { quick });
        bwdRows.push({ v, t: tb, d: (await dX.read()) as Float32Array, plan: describePlan(plan) });
        log(`flash ${v} forward+backward ${shape}: ${tb.ms.toFixed(3)} ms`);

        // The same with SEGS equal segments per row, the bounds computed in the timed work (as the op does).
        const ids = Int32Array.from({ length: B * T }, (_, i) => Math.floor(((i % T) * SEGS) / T));
        const S = tensor(gpu, ids, [B, T], 'i32', u);
        owned.push(S);
        const bothSeg = () => {
          const bounds = segmentBounds(gpu, S.buffer, B, T);
          flashForward(gpu, X.buffer, O.buffer, lse.buffer, full, plan, bounds.buffer);
          flashBackward(
            gpu,
            {
              qkv: X.buffer,
              out: O.buffer,
              dout: dO.buffer,
              lse: lse.buffer,
              D: D.buffer,
              dqkv: dX.buffer,
              accumulate: 0,
              bounds: bounds.buffer,
            },
            full,
            plan,
          );
          bounds.dispose(); // back to the pool; the dispatches recorded above still see it (queue order)
        };
        const ts = await timeGpu(gpu, bothSeg, { quick });
        rows.push({
          name: `attention flash ${v} forward+backward, ${SEGS} segments per row`,
          shape,
          medianMs: ts.ms,
          rate: { value: (3.5 * segFwdFlops(s)) / (ts.ms * 1e6), unit: 'GFLOP/s' },
          check: spotCheckSegmented((await O.read()) as Float32Array, x, s) ? 'pass' : 'fail',
          note: `${ts.timer} timer, ${describePlan(plan)}; out vs f64 per segment; ${tb.ms.toFixed(3)} ms without`,
        });
        log(`flash ${v} forward+backward ${shape}, ${SEGS} segments: ${ts.ms.toFixed(3)} ms`);
      }
      const flashBwdRows = (check: (d: Float32Array) => BenchRow['check'], note: string) => {
        for (const { v, t, d } of bwdRows)
          rows.push({
            name: `attention flash ${v} forward+backward`,
            shape,
            medianMs: t.ms,
            rate: { value: (3.5 * flops) / (t.ms * 1e6), unit: 'GFLOP/s' },
            check: check(d),
            note: `${t.timer} timer${note}`,
          });
      };
      const dFlash = bwdRows[0]!.d;

      const ttBytes = B * NH * T * T * 4;
      let naiveRowCheck: BenchRow['check'] = 'n/a';
      if (ttBytes <= maxBinding && (gpu.software || ttBytes <= 2 ** 31)) {
        const att = empty(gpu, [B, NH, T, T], 'f32', u);
        const dpre = empty(gpu, [B, NH, T, T], 'f32', u);
        owned.push(att, dpre);
        const nf = () => naiveForward(gpu, X.buffer, att.buffer, O.buffer, full);
        const nb = () => {
          nf();
          naiveBackward(
            gpu,
            { qkv: X.buffer, att: att.buffer, dout: dO.buffer, dpre: dpre.buffer, dqkv: dX.buffer, accumulate: 0 },
            full,
          );
        };
        const nt = await timeGpu(gpu, nf, { quick });
        const naiveOk = spotCheck((await O.read()) as Float32Array, x, s);
        const nbt = await timeGpu(gpu, nb, { quick });
        // The two backward implementations share no code: agreement within the sum of their bounds checks both.
        const dNaive = (await dX.read()) as Float32Array;
        naiveRowCheck = relErr(dNaive, dFlash) <= 2 * bwdBound(T, HS) ? 'pass' : 'fail';
        flashBwdRows((d) => (relErr(d, dNaive) <= 2 * bwdBound(T, HS) ? 'pass' : 'fail'), ', dqkv vs naive');
        rows.push({
          name: 'attention naive v1 forward',
          shape,
          medianMs: nt.ms,
          rate: { value: flops / (nt.ms * 1e6), unit: 'GFLOP/s' },
          check: naiveOk ? 'pass' : 'fail',
          note: `${nt.timer} timer`,
        });
        rows.push({
          name: 'attention naive v1 forward+backward',
          shape,
          medianMs: nbt.ms,
          rate: { value: (3.5 * flops) / (nbt.ms * 1e6), unit: 'GFLOP/s' },
          check: naiveRowCheck,
          note: `${nbt.timer} timer, dqkv vs flash`,
        });
        log(`naive forward ${shape}: ${nt.ms.toFixed(3)} ms, forward+backward ${nbt.ms.toFixed(3)} ms`);
      } else {
        flashBwdRows(() => 'n/a', `; naive skipped: its T×T buffer is ${(ttBytes / 2 ** 30).toFixed(1)} GiB`);
      }
      for (const t of owned) t.dispose();

      // Memory of one forward + backward through the ops, measured from the pool (size classes round up ≤ 25%).
      if (gpu.software || quick) {
        const pf = await peakBytes(gpu, (t) => attention(t, { NH }), x, s);
        const pn = await peakBytes(gpu, (t) => attentionNaive(t, { NH }), x, s);
        rows.push({
          name: 'attention flash peak memory (fwd+bwd)',
          shape,
          medianMs: NaN,
          rate: { value: pf / MiB, unit: 'MiB' },
          check: 'n/a',
          note: 'pool peakBytesInUse: out, lse, D, dqkv',
        });
        rows.push({
          name: 'attention naive v1 peak memory (fwd+bwd)',
          shape,
          medianMs: NaN,
          rate: { value: pn / MiB, unit: 'MiB' },
          check: 'n/a',
          note: 'pool peakBytesInUse: out, att, dpre, dqkv',
        });
      }
    }

    // Computed bytes (exact, no pool rounding) at GPT-2 124M's shape, for the record on any adapter.
    if (!quick) {
      for (const T of [1024, 2048, 4096, 8192]) {
        const B = 8;
        const NH = 12;
        const C = 768;
        const linear = 4 * (B * T * C + 2 * B * NH * T + B * T * 3 * C);
        const quad = 4 * (B * T * C + 2 * B * NH * T * T + B * T * 3 * C);
        rows.push({
          name: 'attention flash vs naive memory (computed)',
          shape: `B=${B} T=${T} NH=${NH} HS=64`,
          medianMs: NaN,
          rate: { value: linear / MiB, unit: 'MiB flash' },
          check: 'n/a',
          note: `naive ${(quad / MiB).toFixed(0)} MiB (${(quad / linear).toFixed(1)}x)`,
        });
      }
    }
    return rows;
  },
};
export default suite;
