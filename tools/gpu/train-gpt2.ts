// Entry bundled for GPU machines: GPT-2 training steps through wgpt at llm.c's shapes. Prints one JSON line per
// configuration: ms/step (median), tokens/s, peak pooled GPU memory. Random-init weights, a fixed random batch.
//   node .gpu/app/train-gpt2.mjs [--preset d12] [-B 8] [-T 1024] [--steps 20] [--profile]
// --profile: GPU time per kernel over the steps after the first (timestamp queries), printed before the JSON line.
import { backward, Gpu, profileTable, tensor, tidyAsync } from '@wgpt/runtime';
import { AdamW } from '@wgpt/kernels';
import { initParams, makeConfig, PRESETS } from '@wgpt/gpt2';

const args = process.argv.slice(2);
const arg = (n: string, d: string) => {
  const i = args.indexOf(n);
  return i >= 0 ? args[i + 1]! : d;
};
const preset = arg('--preset', 'd12');
const B = Number(arg('-B', '8'));
const T = Number(arg('-T', '1024'));
const steps = Number(arg('--steps', '20'));
const profile = args.includes('--profile');
const gpu = await Gpu.open({ adapter: process.env.WGPT_ADAPTER });
const base = PRESETS[preset] ?? makeConfig({ L: 2, C: 64, NH: 4, V: 1024, maxT: 64 });
const config = makeConfig({ ...base, maxT: Math.max(base.maxT, T) });
gpu.checkDispatches = false; // validated by the first step's check below
const { GPT2 } = await import('@wgpt/gpt2');
const model = new GPT2(gpu, config, initParams(config, 1));
const opt = new AdamW(gpu, model.parameters(), { lr: 3e-4 }, model.decayFlags());
const ids = Int32Array.from({ length: B * T }, (_, i) => Math.floor(((i * 2654435761) >>> 0) % config.V));
const x = tensor(gpu, ids, [B, T], 'i32', { track: false });
const y = tensor(gpu, ids.map((v, i) => ids[(i + 1) % ids.length]!), [B, T], 'i32', { track: false });
const times: number[] = [];
const losses: number[] = [];
for (let s = 0; s <= steps; s++) {
  if (profile && s === 1) gpu.setProfiling(true);
  const t0 = performance.now();
  const l = await tidyAsync(async () => {
    opt.zeroGrad();
    // As the trainer: the classifier's backward writes the gradient over the logits (one (B·T, Vp) buffer).
    const { loss } = model.forward(x, y, { overwriteLogits: true });
    backward(loss!);
    opt.update();
    return loss!.item();
  });
  if (s === 0) await gpu.check();
  else times.push(performance.now() - t0);
  losses.push(l);
}
if (profile) for (const line of profileTable(await gpu.profileTimes(), steps, 'timestamp queries')) console.log(line);
times.sort((a, b) => a - b);
const ms = times[Math.floor(times.length / 2)]!;
console.log(
  JSON.stringify({
    impl: 'wgpt',
    device: gpu.describe(),
    preset,
    B,
    T,
    steps,
    msPerStep: ms,
    tokensPerSec: (B * T * 1000) / ms,
    peakBytes: gpu.pool.stats.peakBytesInUse,
    firstLoss: losses[0],
    lastLoss: losses.at(-1),
  }),
);
gpu.destroy();
