// One GPT-2 training step (forward, backward, AdamW) on the local adapter: ms, tokens/s, MFU against the measured
// matmul rate, peak pooled GPU memory; then one more step profiled (GPU time per kernel, dispatches, matmul share).
// Small config on software adapters; GPT-2 124M (B=8, T=1024) on hardware.
import { backward, profileTable, tensor, tidyAsync, type Gpu } from '@wgpt/runtime';
import { AdamW } from '@wgpt/kernels';
import type { BenchRow, BenchSuite } from '@wgpt/bench';
import { makeConfig, paramCount, PRESETS } from './config.ts';
import { initParams } from './init.ts';
import { GPT2 } from './model.ts';
import { flopsPerToken, measurePeakTflops } from './train.ts';

const suite: BenchSuite = {
  name: 'gpt2-train-step',
  gpu: true,
  async run({ gpu: g, quick, log }) {
    const gpu = g as Gpu;
    const big = !gpu.software && !quick;
    const config = big ? PRESETS.d12! : makeConfig({ L: 2, C: 64, NH: 4, V: 1024, maxT: 64 });
    const [B, T] = big ? [8, 1024] : quick ? [1, 32] : [4, 64];
    const peak = await measurePeakTflops(gpu);
    const model = new GPT2(gpu, config, initParams(config, 1));
    const opt = new AdamW(gpu, model.parameters(), {}, model.decayFlags());
    const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 2654435761) % config.V);
    const x = tensor(gpu, ids, [B, T], 'i32', { track: false });
    const y = tensor(gpu, ids, [B, T], 'i32', { track: false });
    const one = tensor(gpu, [1], [1], 'f32', { track: false });
    // As the trainer records it: the logits' gradient over the logits, no upload or read before the update.
    const step = () =>
      tidyAsync(async () => {
        opt.zeroGrad();
        const { loss } = model.forward(x, y, { overwriteLogits: true });
        backward(loss!, one);
        opt.update();
        return loss!.item();
      });
    const first = await step(); // compiles every pipeline
    const times: number[] = [];
    const n = quick ? 2 : big ? 10 : 4;
    let last = first;
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      last = await step();
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    const ms = times[Math.floor(times.length / 2)]!;
    const tps = (B * T * 1000) / ms;
    const mfu = (tps * flopsPerToken(config, T)) / (peak * 1e12);
    const peakBytes = gpu.pool.stats.peakBytesInUse;
    log(
      `L=${config.L} C=${config.C} B=${B} T=${T}: ${ms.toFixed(1)} ms/step, ${tps.toFixed(0)} tok/s, ` +
        `MFU ${(100 * mfu).toFixed(1)}%, peak ${(peakBytes / 2 ** 20).toFixed(1)} MiB`,
    );
    const how = gpu.setProfiling(true);
    const d0 = gpu.dispatchCount;
    await step();
    const dispatches = gpu.dispatchCount - d0;
    gpu.setProfiling(false);
    const what = how === 'wall' ? 'wall time per dispatch, each submitted alone' : 'timestamp queries';
    for (const line of profileTable(await gpu.profileTimes(), 1, what)) log(line);
    log(`dispatches per step: ${dispatches} (AdamW ${opt.dispatchesPerStep})`);
    gpu.resetProfile();
    const row: BenchRow = {
      name: 'train step (fwd+bwd+AdamW)',
      shape:
        `L=${config.L} C=${config.C} NH=${config.NH} Vp=${config.Vp} B=${B} T=${T} ` +
        `(${(paramCount(config) / 1e6).toFixed(2)}M params)`,
      medianMs: ms,
      rate: { value: tps, unit: 'tokens/s' },
      ofBaseline: { fraction: mfu, baseline: `matmul peak ${(peak * 1000).toFixed(2)} GFLOP/s (MFU)` },
      // Same batch every step: the loss must fall and stay finite.
      check: Number.isFinite(last) && last < first ? 'pass' : 'fail',
      note: `peak GPU memory ${(peakBytes / 2 ** 20).toFixed(1)} MiB`,
    };
    opt.dispose();
    model.dispose();
    x.dispose();
    y.dispose();
    one.dispose();
    return [row];
  },
};
export default suite;
