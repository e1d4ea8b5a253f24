// Generation speed with and without the KV cache: new tokens per second of generate() (greedy, wall clock from
// the call to the last token, prefill included, one logits row read back per token). Software adapters: a small
// model (L=2, C=64, NH=4, maxT=64, V=512) with a 16-token prompt and 48 new tokens, so the context ends at maxT
// and never falls back to re-prefilling; hardware: GPT-2 124M (d12, random weights) with a 64-token prompt and 256
// new tokens. The check: both paths emit the same token ids.
import type { Gpu } from '@wgpt/runtime';
import type { BenchRow, BenchSuite } from '@wgpt/bench';
import { makeConfig, PRESETS } from './config.ts';
import { initParams } from './init.ts';
import { GPT2 } from './model.ts';
import { generate } from './sample.ts';

async function run(
  model: GPT2,
  prompt: number[],
  maxNewTokens: number,
  kvCache: boolean,
): Promise<{ ids: number[]; ms: number }> {
  const ids: number[] = [];
  const t0 = performance.now();
  for await (const t of generate(model, prompt, { maxNewTokens, temperature: 0, kvCache })) ids.push(t);
  return { ids, ms: performance.now() - t0 };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const suite: BenchSuite = {
  name: 'sample',
  gpu: true,
  async run({ gpu: g, quick, log }) {
    const gpu = g as Gpu;
    const small = gpu.software || quick;
    const config = small ? makeConfig({ L: 2, C: 64, NH: 4, maxT: 64, V: 512 }) : PRESETS.d12!;
    const [P, N] = small ? [16, quick ? 16 : 48] : [64, 256];
    const reps = quick ? 1 : 3;
    const label = small
      ? `L=${config.L} C=${config.C} NH=${config.NH} maxT=${config.maxT} V=${config.V}`
      : `GPT-2 124M (d12, maxT=${config.maxT})`;
    log(`${label}: prompt ${P}, ${N} new tokens, ${reps} runs per path`);
    const model = new GPT2(gpu, config, initParams(config, 1));
    try {
      const prompt = Array.from({ length: P }, (_, i) => (i * 37 + 11) % config.V);
      // Pipelines compile outside the timing.
      await run(model, prompt, 2, true);
      await run(model, prompt, 2, false);
      const rows: BenchRow[] = [];
      const results: Record<string, { ids: number[]; ms: number[] }> = {};
      for (const kv of [true, false]) {
        const key = kv ? 'kv' : 'full';
        results[key] = { ids: [], ms: [] };
        for (let r = 0; r < reps; r++) {
          const got = await run(model, prompt, N, kv);
          results[key].ids = got.ids;
          results[key].ms.push(got.ms);
        }
        log(`  ${kv ? 'KV cache' : 'full forward'}: ${results[key].ms.map((m) => m.toFixed(0)).join(', ')} ms`);
      }
      const same = JSON.stringify(results.kv!.ids) === JSON.stringify(results.full!.ids);
      const msKv = median(results.kv!.ms);
      const msFull = median(results.full!.ms);
      for (const [name, ms] of [['generate, KV cache', msKv], ['generate, full forward per token', msFull]] as const) {
        rows.push({
          name,
          shape: `${label}, prompt ${P}, ${N} new`,
          medianMs: ms,
          rate: { value: (N * 1000) / ms, unit: 'tokens/s' },
          check: same ? 'pass' : 'fail',
          note: name.includes('KV') ? `${(msFull / msKv).toFixed(2)}x the full forward's tokens/s` : undefined,
        });
      }
      return rows;
    } finally {
      model.dispose();
    }
  },
};

export default suite;
