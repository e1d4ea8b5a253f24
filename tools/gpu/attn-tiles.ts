// Entry bundled for GPU machines: flash attention v1 and v2 forward+backward at GPT-2 124M's shape (B=8, NH=12,
// HS=64, T=1024) over several tile sizes, each checked against the default plan's output and gradient (relErr), to
// choose the hardware defaults by measurement. One JSON line per configuration.
//   node .gpu/app/attn-tiles.mjs [--T 1024]
import { empty, Gpu, tensor } from '@wgpt/runtime';
import { randomF32, relErr } from '@wgpt/runtime/testing';
import { timeGpu } from '@wgpt/bench';
import { describePlan, flashBackward, flashForward, flashPlan, type FlashPlan } from '@wgpt/kernels';

const args = process.argv.slice(2);
const T = Number(args[args.indexOf('--T') + 1] ?? 1024) || 1024;
const s = { B: 8, T, NH: 12, HS: 64, C: 768 };
const gpu = await Gpu.open({ adapter: process.env.WGPT_ADAPTER });
const u = { track: false } as const;
const X = tensor(gpu, randomF32(s.B * s.T * 3 * s.C, 1), [s.B, s.T, 3 * s.C], 'f32', u);
const dO = tensor(gpu, randomF32(s.B * s.T * s.C, 2), [s.B, s.T, s.C], 'f32', u);
const O = empty(gpu, [s.B, s.T, s.C], 'f32', u);
const dX = empty(gpu, [s.B, s.T, 3 * s.C], 'f32', u);
const lse = empty(gpu, [s.B, s.NH, s.T], 'f32', u);
const D = empty(gpu, [s.B, s.NH, s.T], 'f32', u);
const run = (plan: FlashPlan) => {
  flashForward(gpu, X.buffer, O.buffer, lse.buffer, s, plan);
  const b = { qkv: X.buffer, out: O.buffer, dout: dO.buffer, lse: lse.buffer, D: D.buffer, dqkv: dX.buffer };
  flashBackward(gpu, { ...b, accumulate: 0 }, s, plan);
};
const flops = 3.5 * 4 * s.B * s.NH * s.HS * ((s.T * (s.T + 1)) / 2);
let ref: { o: Float32Array; d: Float32Array } | null = null;
const plans: FlashPlan[] = [flashPlan(gpu, s.HS, { version: 'v1' })];
const V1_TILES = [
  [16, 16, 16], [16, 16, 8], [16, 16, 4], [16, 32, 8], [16, 32, 4], [32, 16, 8], [16, 64, 4], [32, 32, 8],
  [32, 32, 4], [64, 32, 4],
];
for (const [BR, BC, TPR] of V1_TILES) {
  try {
    plans.push(flashPlan(gpu, s.HS, { version: 'v1', tiles: { BR, BC, TPR } }));
  } catch (e) {
    console.log(JSON.stringify({ tiles: { BR, BC, TPR }, error: (e as Error).message }));
  }
}
for (const R of [1, 2, 4]) {
  for (const [rows, cols] of [
    [32, 32],
    [64, 64],
    [64, 32],
  ]) {
    const t = { BR: rows, BC: cols, R, TX: 16 };
    try {
      plans.push(flashPlan(gpu, s.HS, { version: 'v2', v2Tiles: { forward: t, dq: t, dkv: { ...t } } }));
    } catch (e) {
      console.log(JSON.stringify({ v2: t, error: (e as Error).message }));
    }
  }
}
for (const plan of plans) {
  try {
    const t = await timeGpu(gpu, () => run(plan), { quick: false });
    const o = (await O.read()) as Float32Array;
    const d = (await dX.read()) as Float32Array;
    ref ??= { o, d };
    const err = { out: relErr(o, ref.o), dqkv: relErr(d, ref.d) };
    const line = { plan: describePlan(plan), ms: t.ms, gflops: flops / (t.ms * 1e6), timer: t.timer, err };
    console.log(JSON.stringify(line));
  } catch (e) {
    console.log(JSON.stringify({ plan: describePlan(plan), error: (e as Error).message.slice(0, 300) }));
  }
}
gpu.destroy();
