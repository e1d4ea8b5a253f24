// Fused classifier, forward (losses) and backward (the gradient written over the logits, as training runs it): GB/s
// of their minimum traffic (logits read once, the gradient written once: 8·R·Vp bytes; v1 reads the logits three
// times in all, v2 five) and the fraction of the copy kernel's bandwidth measured in the same run. R = 1024 rows of
// GPT-2's padded vocabulary on hardware (the full B·T = 8192 rows would need 1.6 GB). Where v2 runs (subgroups of 4),
// v1 and v2 both, one after the other in the same process.
import { empty, tensor, type Gpu } from '@wgpt/runtime';
import { EPS32, randomF32, rng } from '@wgpt/runtime/testing';
import { bandwidthRow, copyBandwidth, timeGpu, type BenchRow, type BenchSuite } from '@wgpt/bench';
import { subgroupsOf4 } from '../common.ts';
import { fusedClassifierBackwardInto, fusedClassifierInto, type ClassifierVersion } from './classifier.ts';
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
    const G = tensor(gpu, new Float32Array(R).fill(1 / R), [R], 'f32', { track: false }); // the mean's gradient
    const rows: BenchRow[] = [
      { name: 'copy v1 (baseline)', shape: '', medianMs: NaN, rate: { value: copyGBs, unit: 'GB/s' }, check: 'n/a' },
    ];
    const versions: ClassifierVersion[] = subgroupsOf4(gpu) ? ['v1', 'v2'] : ['v1'];
    const names = { v1: 'fused classifier v1-r3', v2: 'fused classifier v2 (subgroup per row)' };
    for (const version of versions) {
      const args = { R, V, Vp, logits: L.buffer, targets: T.buffer, version };
      L.write(logits); // the previous version left its gradient there
      fusedClassifierInto(gpu, { ...args, losses: losses.buffer });
      // Losses of the first rows against f64 (later runs see the gradient in place of the logits); tolerance as in
      // classifier.test.ts (the larger of the two versions' bounds).
      const got = await losses.read();
      const n = Math.min(R, 4);
      const ref = classifierLossesRef(logits, targets, null, n, V, Vp);
      const tol = Math.max(Math.ceil(V / 256) + 36, Math.ceil(V / 64) + 11) * EPS32 * 8;
      const ok = Array.from(ref).every((x, i) => Math.abs(got[i]! - x) <= tol * Math.abs(x));
      const rec = () => {
        fusedClassifierInto(gpu, { ...args, losses: losses.buffer });
        fusedClassifierBackwardInto(gpu, { ...args, dlosses: G.buffer });
      };
      const t = await timeGpu(gpu, rec, { quick });
      rows.push(
        bandwidthRow(
          {
            name: `${names[version]} (losses, then dlogits in place)`,
            shape: `R=${R} V=${V} Vp=${Vp}`,
            ...{ t, bytes: 8 * R * Vp, copyGBs, check: ok ? 'pass' : 'fail' },
          },
          log,
        ),
      );
    }
    for (const x of [L, T, losses, G]) x.dispose();
    return rows;
  },
};
export default suite;
