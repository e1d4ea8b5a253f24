// Where a training step of the demo model spends its GPU time, and A/B timings of kernel variants at its shapes.
//   node scripts/run-ts.mjs tools/profile-step.ts [step] [kernels] [--rounds N] [--steps N] [--filter RE]
// step:    trains the demo's model (GPT-2 L=2 C=64 NH=4 V=512, B=4 T=64) a few steps with timestamp queries on and
//          prints GPU ms per step for each kernel.
// kernels: each kernel at the demo's shapes, the previous default on software adapters against the new one (matmul
//          v3/v4, flash attention v1/v3, LayerNorm v1/v2, the fused classifier v1/v2, AdamW v1/v2, elementwise
//          v1/v2) in the same process, alternating within each round; prints
//          per variant the median and the minimum over rounds and the spread ((max − min) / 2 relative to the
//          median) as the noise estimate, the ratio of the medians, and per family the medians weighted by how often
//          the step runs each shape. The machine is shared, so only same-process, same-round comparisons mean much.
import { backward, empty, Gpu, tensor, tidyAsync, type Tensor } from '@wgpt/runtime';
import { randomF32 } from '@wgpt/runtime/testing';
import {
  AdamW,
  accumulateInto,
  accumulatePairInto,
  addInto,
  geluBackwardInto,
  fusedClassifierBackwardInto,
  fusedClassifierInto,
  flashBackward,
  flashForward,
  flashPlan,
  gemm,
  layernormBackwardInto,
  layernormForwardInto,
  type FlashPlan,
  type GemmArgs,
} from '@wgpt/kernels';
import { GPT2, initParams, makeConfig } from '@wgpt/gpt2';

const args = process.argv.slice(2);
const opt = (name: string, d: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1]! : d;
};
const modes = args.filter((a, i) => !a.startsWith('--') && !(i > 0 && args[i - 1]!.startsWith('--')));
const runStep = modes.length === 0 || modes.includes('step');
const runKernels = modes.length === 0 || modes.includes('kernels');
const rounds = Number(opt('--rounds', '7'));
const profSteps = Number(opt('--steps', '5'));
const filter = new RegExp(opt('--filter', '.'), 'i');

const gpu = await Gpu.open({ adapter: process.env.WGPT_ADAPTER });
const prof = gpu.profiler;
if (!prof) throw new Error(`${gpu.describe()} has no timestamp queries`);
console.log(`adapter: ${gpu.describe()}`);

const [L, C, NH, V, B, T] = [2, 64, 4, 512, 4, 64];

/** GPU ms of everything `record` dispatches, from timestamp queries. */
async function gpuMs(record: () => void, reps: number): Promise<number> {
  await prof!.collect();
  prof!.reset();
  prof!.enabled = true;
  for (let i = 0; i < reps; i++) record();
  await gpu.sync();
  prof!.enabled = false;
  const times = await prof!.collect();
  prof!.reset();
  return times.reduce((a, t) => a + t.totalMs, 0) / reps;
}

if (runStep) {
  const config = makeConfig({ L, C, NH, V, maxT: T });
  const model = new GPT2(gpu, config, initParams(config, 1));
  const adamw = new AdamW(gpu, model.parameters(), { lr: 3e-4 }, model.decayFlags());
  const ids = Int32Array.from({ length: B * T }, (_, i) => Math.floor(((i * 2654435761) >>> 0) % V));
  const x = tensor(gpu, ids, [B, T], 'i32', { track: false });
  const y = tensor(
    gpu,
    ids.map((_, i) => ids[(i + 1) % ids.length]!),
    [B, T],
    'i32',
    { track: false },
  );
  const step = () =>
    tidyAsync(async () => {
      adamw.zeroGrad();
      const { loss } = model.forward(x, y);
      backward(loss!);
      adamw.update();
      return loss!.item();
    });
  await step(); // compiles every pipeline
  await step();
  await prof.collect();
  prof.reset();
  prof.enabled = true;
  const d0 = gpu.dispatchCount;
  const walls: number[] = [];
  for (let s = 0; s < profSteps; s++) {
    const t0 = performance.now();
    await step();
    await gpu.sync();
    walls.push(performance.now() - t0);
  }
  prof.enabled = false;
  const times = await prof.collect();
  prof.reset();
  walls.sort((a, b) => a - b);
  const total = times.reduce((a, t) => a + t.totalMs, 0) / profSteps;
  console.log(
    `\nstep: GPT-2 L=${L} C=${C} NH=${NH} V=${V} B=${B} T=${T}, ${profSteps} steps profiled: ` +
      `${total.toFixed(1)} GPU ms/step in ${(gpu.dispatchCount - d0) / profSteps} dispatches, ` +
      `wall median ${walls[walls.length >> 1]!.toFixed(1)} ms/step (with timestamp queries on)`,
  );
  for (const t of times)
    console.log(
      `  ${t.label.padEnd(36)} ${String(t.count / profSteps).padStart(4)}/step ` +
        `${(t.totalMs / profSteps).toFixed(2).padStart(8)} ms/step`,
    );
  adamw.dispose();
  model.dispose();
  x.dispose();
  y.dispose();
}

interface Variant {
  label: string;
  record: () => void;
}
interface Case {
  family: string;
  name: string;
  /** How many times one training step of the demo runs this case. */
  perStep: number;
  reps: number;
  variants: Variant[];
  dispose: () => void;
}

// The previous default on software adapters, then the new one.
const matmulVersions = ['v3', 'v4'] as const;
const attentionVersions = ['v1', 'v3'] as const;
const layernormVersions = ['v1', 'v2'] as const;
const classifierVersions = ['v1', 'v2'] as const;
const adamwVersions = ['v1', 'v2'] as const;
const elementwiseVersions = ['v1', 'v2'] as const;
function matmulCases(): Case[] {
  const M = B * T;
  // Every product of the demo's step: (name, op(A) (M, K), op(B) (K, N), layout).
  const shapes: [string, number, number, number, boolean, boolean][] = [];
  for (const [name, K, N] of [
    ['qkv', C, 3 * C],
    ['attproj', C, C],
    ['fc', C, 4 * C],
    ['fcproj', 4 * C, C],
    ['lm head', C, V],
  ] as const) {
    shapes.push([`${name} fwd x·Wᵀ`, M, K, N, false, true]); // (M, K)·(N, K)ᵀ
    shapes.push([`${name} dx g·W`, M, N, K, false, false]); // (M, N)·(N, K)
    shapes.push([`${name} dW gᵀ·x`, N, M, K, true, false]); // (M, N)ᵀ·(M, K)
  }
  return shapes.map(([name, m, k, n, transA, transB]): Case => {
    const A = tensor(gpu, randomF32(m * k, 1), transA ? [k, m] : [m, k], 'f32', { track: false });
    const Bm = tensor(gpu, randomF32(k * n, 2), transB ? [n, k] : [k, n], 'f32', { track: false });
    const Cm = empty(gpu, [m, n], 'f32', { track: false });
    const g: GemmArgs = { M: m, N: n, K: k, a: A.buffer, b: Bm.buffer, c: Cm.buffer, transA, transB };
    return {
      family: 'matmul',
      name: `matmul ${name} M=${m} K=${k} N=${n}`,
      perStep: name.startsWith('lm head') ? 1 : L,
      reps: 4,
      variants: matmulVersions.map((version) => ({ label: version, record: () => gemm(gpu, { ...g, version }) })),
      dispose: () => [A, Bm, Cm].forEach((t) => t.dispose()),
    };
  });
}
function attentionCases(): Case[] {
  const s = { B, T, NH, HS: C / NH, C };
  const qkv = tensor(gpu, randomF32(B * T * 3 * C, 3), [B, T, 3 * C], 'f32', { track: false });
  const out = empty(gpu, [B, T, C], 'f32', { track: false });
  const dout = tensor(gpu, randomF32(B * T * C, 4), [B, T, C], 'f32', { track: false });
  const lse = empty(gpu, [B, NH, T], 'f32', { track: false });
  const D = empty(gpu, [B, NH, T], 'f32', { track: false });
  const dqkv = empty(gpu, [B, T, 3 * C], 'f32', { track: false });
  const plans: [string, FlashPlan][] = attentionVersions.map((v) => [v, flashPlan(gpu, s.HS, { version: v })]);
  const bw = { qkv: qkv.buffer, out: out.buffer, dout: dout.buffer, lse: lse.buffer, D: D.buffer };
  const cases: Case[] = [
    {
      family: 'attention',
      name: `attention forward B=${B} T=${T} NH=${NH} HS=${s.HS}`,
      perStep: L,
      reps: 4,
      variants: plans.map(([label, p]) => ({
        label,
        record: () => flashForward(gpu, qkv.buffer, out.buffer, lse.buffer, s, p),
      })),
      dispose: () => {},
    },
    {
      family: 'attention',
      name: `attention backward (D, dQ, dK/dV) B=${B} T=${T} NH=${NH} HS=${s.HS}`,
      perStep: L,
      reps: 4,
      variants: plans.map(([label, p]) => ({
        label,
        record: () => flashBackward(gpu, { ...bw, dqkv: dqkv.buffer, accumulate: 0 }, s, p),
      })),
      dispose: () => [qkv, out, dout, lse, D, dqkv].forEach((t) => t.dispose()),
    },
  ];
  return cases;
}
function layernormCases(): Case[] {
  const N = B * T;
  const t = (n: number, seed: number): Tensor => tensor(gpu, randomF32(n, seed), [n], 'f32', { track: false });
  const x = t(N * C, 5);
  const w = t(C, 6);
  const b = t(C, 7);
  const dout = t(N * C, 8);
  const out = empty(gpu, [N * C], 'f32', { track: false });
  const mean = empty(gpu, [N], 'f32', { track: false });
  const rstd = empty(gpu, [N], 'f32', { track: false });
  const dx = empty(gpu, [N * C], 'f32', { track: false });
  const dw = empty(gpu, [C], 'f32', { track: false });
  const db = empty(gpu, [C], 'f32', { track: false });
  const fwd = { x: x.buffer, weight: w.buffer, bias: b.buffer, out: out.buffer, mean: mean.buffer, rstd: rstd.buffer };
  const bwd = { x: x.buffer, weight: w.buffer, mean: mean.buffer, rstd: rstd.buffer, dout: dout.buffer };
  layernormForwardInto(gpu, { ...fwd, N, C });
  return [
    {
      family: 'layernorm',
      name: `layernorm forward N=${N} C=${C}`,
      perStep: 2 * L + 1,
      reps: 8,
      variants: layernormVersions.map((version) => ({
        label: version,
        record: () => layernormForwardInto(gpu, { ...fwd, N, C, version }),
      })),
      dispose: () => {},
    },
    {
      family: 'layernorm',
      name: `layernorm backward N=${N} C=${C} (+ reduce; dx, dweight, dbias accumulated)`,
      perStep: 2 * L + 1,
      reps: 8,
      variants: layernormVersions.map((version) => ({
        label: version,
        record: () =>
          layernormBackwardInto(gpu, {
            ...bwd,
            N,
            C,
            version,
            dx: { buffer: dx.buffer, accumulate: 1 },
            dweight: { buffer: dw.buffer, accumulate: 1 },
            dbias: { buffer: db.buffer, accumulate: 1 },
          }),
      })),
      dispose: () => [x, w, b, dout, out, mean, rstd, dx, dw, db].forEach((t) => t.dispose()),
    },
  ];
}
function classifierCases(): Case[] {
  const R = B * T;
  const logits = tensor(gpu, randomF32(R * V, 9, -4, 4), [R, V], 'f32', { track: false });
  const targets = tensor(
    gpu,
    Int32Array.from({ length: R }, (_, i) => (i * 7919) % V),
    [R],
    'i32',
    { track: false },
  );
  const losses = empty(gpu, [R], 'f32', { track: false });
  const g = tensor(gpu, new Float32Array(R).fill(1 / R), [R], 'f32', { track: false });
  const dlogits = empty(gpu, [R, V], 'f32', { track: false });
  const a = { R, V, Vp: V, logits: logits.buffer, targets: targets.buffer };
  return [
    {
      family: 'classifier',
      name: `fused classifier forward + backward R=${R} V=${V}`,
      perStep: 1,
      reps: 4,
      variants: classifierVersions.map((version) => ({
        label: version,
        record: () => {
          fusedClassifierInto(gpu, { ...a, losses: losses.buffer, version });
          // Into a separate gradient, so that every call sees the same logits.
          fusedClassifierBackwardInto(gpu, { ...a, dlosses: g.buffer, dlogits: dlogits.buffer, version });
        },
      })),
      dispose: () => [logits, targets, losses, g, dlogits].forEach((t) => t.dispose()),
    },
  ];
}
function adamwCases(): Case[] {
  const config = makeConfig({ L, C, NH, V, maxT: T });
  const model = new GPT2(gpu, config, initParams(config, 1));
  const opts = adamwVersions.map((version) => {
    const opt = new AdamW(gpu, model.parameters(), { lr: 1e-6 }, model.decayFlags(), { version });
    opt.zeroGrad();
    return opt;
  });
  return [
    {
      family: 'adamw',
      name: `AdamW (norm, status, update) over the demo model's parameters`,
      perStep: 1,
      reps: 4,
      variants: adamwVersions.map((label, i) => ({ label, record: () => opts[i]!.update() })),
      dispose: () => {
        opts.forEach((o) => o.dispose());
        model.dispose();
      },
    },
  ];
}
function elementwiseCases(): Case[] {
  const n = B * T * C;
  const t = (m: number, seed: number): Tensor => tensor(gpu, randomF32(m, seed), [m], 'f32', { track: false });
  const [a, b, o0, o1, x4, d4, o4] = [t(n, 11), t(n, 12), t(n, 13), t(n, 14), t(4 * n, 15), t(4 * n, 16), t(4 * n, 17)];
  const ew = (name: string, perStep: number, rec: (v: 'v1' | 'v2') => void): Case => ({
    family: 'elementwise',
    name,
    perStep,
    reps: 8,
    variants: elementwiseVersions.map((label) => ({ label, record: () => rec(label) })),
    dispose: () => {},
  });
  return [
    ew(`add n=${n}`, 2 * L, (v) => addInto(gpu, a.buffer, b.buffer, o0.buffer, n, v)),
    // add's backward: two accumulates (v1), one pair (v2).
    ew(`add backward (both gradients, accumulated) n=${n}`, 2 * L, (v) =>
      accumulatePairInto(
        gpu,
        a.buffer,
        n,
        { buffer: o0.buffer, accumulate: 1 },
        { buffer: o1.buffer, accumulate: 1 },
        v,
      ),
    ),
    ew(`accumulate n=${n}`, 2 * L + 1, (v) => accumulateInto(gpu, a.buffer, o0.buffer, n, 1, v)),
    {
      ...ew(`gelu backward n=${4 * n}`, L, (v) => geluBackwardInto(gpu, x4.buffer, d4.buffer, o4.buffer, 4 * n, 0, v)),
      dispose: () => [a, b, o0, o1, x4, d4, o4].forEach((x) => x.dispose()),
    },
  ];
}
if (runKernels) {
  gpu.checkDispatches = false;
  const cases = [
    ...matmulCases(),
    ...attentionCases(),
    ...layernormCases(),
    ...classifierCases(),
    ...adamwCases(),
    ...elementwiseCases(),
  ].filter((c) => filter.test(c.name));
  console.log(
    `\nkernels: GPU ms per call over ${rounds} rounds (variants alternate within each round): ` +
      'median / min ±spread, then old/new of the medians',
  );
  const perStep = new Map<string, Map<string, number>>(); // family → label → weighted medians
  for (const c of cases) {
    for (const v of c.variants) await gpuMs(v.record, 1); // compile outside the timing
    const ms: number[][] = c.variants.map(() => []);
    for (let r = 0; r < rounds; r++) {
      // Alternate the order too, so that neither variant always runs right after the other.
      const order = c.variants.map((_, i) => i);
      if (r % 2) order.reverse();
      for (const i of order) ms[i]!.push(await gpuMs(c.variants[i]!.record, c.reps));
    }
    const sorted = ms.map((m) => [...m].sort((a, b) => a - b));
    const meds = sorted.map((s) => s[s.length >> 1]!);
    const fam = perStep.get(c.family) ?? new Map<string, number>();
    perStep.set(c.family, fam);
    const line = c.variants.map((v, i) => {
      const s = sorted[i]!;
      fam.set(v.label, (fam.get(v.label) ?? 0) + c.perStep * meds[i]!);
      const spread = (50 * (s.at(-1)! - s[0]!)) / meds[i]!;
      return `${v.label} ${meds[i]!.toFixed(3)} / ${s[0]!.toFixed(3)} ms ±${spread.toFixed(0)}%`;
    });
    const ratio = meds.length > 1 ? `  ${(meds[0]! / meds.at(-1)!).toFixed(2)}x` : '';
    console.log(`  ${c.name.padEnd(58)} ${line.join('  ')}${ratio}`);
    c.dispose();
  }
  console.log('per step (medians times the number of calls in one step of the demo):');
  for (const [family, m] of perStep) {
    const v = [...m];
    const ratio = v.length > 1 ? `  ${(v[0]![1] / v.at(-1)![1]).toFixed(2)}x` : '';
    console.log(`  ${family.padEnd(10)} ${v.map(([l, t]) => `${l} ${t.toFixed(2)} ms`).join('  ')}${ratio}`);
  }
}
gpu.destroy();
