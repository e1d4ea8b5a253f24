// Fused classifier: GB/s of its minimum traffic (logits read once, dlogits written once: 8·R·Vp bytes) and the
// fraction of the copy kernel's bandwidth measured in the same run. R = 1024 rows of GPT-2's padded vocabulary on
// hardware (the full B·T = 8192 rows would need 1.6 GB each for logits and dlogits).
import { empty, tensor, type Gpu } from '@wgpt/runtime';
import { EPS32, randomF32, rng } from '@wgpt/runtime/testing';
import { bandwidthRow, copyBandwidth, timeGpu, type BenchRow, type BenchSuite } from '@wgpt/bench';
import { fusedClassifierInto } from './classifier.ts';
import { classifierLossesRef } from './classifier.ref.ts';

const suite: BenchSuite = {
  name: 'classifier',
  gpu: true,
  async run({ gpu: g, quick, log }) {
    const gpu = g as Gpu;
    const V = quick ? 1000 : gpu.software ? 8000 : 50257;
    const Vp = Math.ceil(V / 64) * 64;
    const R = quick ? 8 : gpu.software ? 32 : 1024;
    const copyGBs = await copyBandwidth(gpu, quick);
    log(`copy baseline: ${copyGBs.toFixed(1)} GB/s`);
    const logits = randomF32(R * Vp, 1, -4, 4);
    const r = rng(2);
    const targets = Int32Array.from({ length: R }, () => Math.floor(r() * V));
    const L = tensor(gpu, logits, [R, Vp], 'f32', { track: false });
    const T = tensor(gpu, targets, [R], 'i32', { track: false });
    const losses = empty(gpu, [R], 'f32', { track: false });
    const D = empty(gpu, [R, Vp], 'f32', { track: false });
    const count = empty(gpu, [1], 'f32', { track: false });
    const rec = () =>
      fusedClassifierInto(gpu, {
        R,
        V,
        Vp,
        logits: L.buffer,
        targets: T.buffer,
        losses: losses.buffer,
        dlogits: D.buffer,
        count: count.buffer,
      });
    const t = await timeGpu(gpu, rec, { quick });
    // Losses of the first rows against f64; tolerance as in classifier.test.ts.
    const got = await losses.read();
    const n = Math.min(R, 4);
    const ref = classifierLossesRef(logits, targets, null, n, V, Vp);
    const tol = (Math.ceil(V / 256) + 36) * EPS32 * 8;
    const ok = Array.from(ref).every((x, i) => Math.abs(got[i]! - x) <= tol * Math.abs(x));
    const rows: BenchRow[] = [
      { name: 'copy v1 (baseline)', shape: '', medianMs: NaN, rate: { value: copyGBs, unit: 'GB/s' }, check: 'n/a' },
      bandwidthRow(
        {
          name: 'fused classifier v2 (losses + dlogits)',
          shape: `R=${R} V=${V} Vp=${Vp}`,
          ...{ t, bytes: 8 * R * Vp, copyGBs, check: ok ? 'pass' : 'fail' },
        },
        log,
      ),
    ];
    for (const x of [L, T, losses, D, count]) x.dispose();
    return rows;
  },
};
export default suite;
