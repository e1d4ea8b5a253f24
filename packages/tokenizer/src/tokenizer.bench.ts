// Tokenizer benchmarks: encode throughput for the three OpenAI encodings against js-tiktoken, gpt-tokenizer and
// tiktoken (wasm) on the same text in the same run, decode throughput, and training time / peak memory.
import { createRequire } from 'node:module';
import type { BenchRow, BenchSuite } from '@wgpt/bench';
import { getEncoding, OPENAI_ENCODING_NAMES, type OpenAiEncodingName } from './registry.ts';
import { codeText, englishText, htmlText, localizedText } from './testing/corpus.ts';
import { trainBpe } from './train.ts';

const require = createRequire(import.meta.url);

type Enc = (s: string) => ArrayLike<number>;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function time(f: () => void, iters: number): number {
  const ts: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    f();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

function sameIds(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The bench text, all real: English prose, TypeScript code, HTML news pages, and messages in 13 languages. */
export function benchText(quick: boolean): string {
  const k = quick ? 0.02 : 1;
  return [
    englishText(Math.round(1_500_000 * k)),
    codeText(Math.round(1_000_000 * k)),
    htmlText(Math.round(1_000_000 * k)),
    localizedText(Math.round(500_000 * k)),
  ].join('\n');
}

async function baselines(name: OpenAiEncodingName): Promise<{ label: string; encode: Enc; free?: () => void }[]> {
  const jsTiktoken = require('js-tiktoken') as typeof import('js-tiktoken');
  const js = jsTiktoken.getEncoding(name);
  const gpt = (await import(`gpt-tokenizer/encoding/${name}`)) as { encode: (s: string) => number[] };
  const tiktoken = require('tiktoken') as typeof import('tiktoken');
  const wasm = tiktoken.get_encoding(name);
  return [
    { label: 'js-tiktoken', encode: (s) => js.encode(s) },
    { label: 'gpt-tokenizer', encode: (s) => gpt.encode(s) },
    { label: 'tiktoken (wasm)', encode: (s) => wasm.encode(s), free: () => wasm.free() },
  ];
}

const suite: BenchSuite = {
  name: 'tokenizer',
  async run({ quick, log }) {
    const rows: BenchRow[] = [];
    // Training first, before the encodings and baselines are loaded, so that its memory is its own.
    // Training: vocabulary of 32,768 on ~10 MB of English (quick: 1,000 on 200 kB), one thread.
    const trainChars = quick ? 200_000 : 10_000_000;
    const vocabSize = quick ? 1000 : 32768;
    const corpus = englishText(trainChars);
    const tmb = Buffer.byteLength(corpus) / 1e6;
    log(`training ${vocabSize} on ${tmb.toFixed(1)} MB`);
    global.gc?.();
    const base = process.memoryUsage();
    let peakRss = base.rss;
    let peakHeap = base.heapUsed;
    const sample = () => {
      const m = process.memoryUsage();
      if (m.rss > peakRss) peakRss = m.rss;
      if (m.heapUsed > peakHeap) peakHeap = m.heapUsed;
    };
    const t0 = performance.now();
    const trained = trainBpe(corpus, { vocabSize, pattern: 'gpt4', onProgress: sample });
    sample();
    const tms = performance.now() - t0;
    rows.push({
      name: `train BPE gpt4 pattern (wgpt)`,
      shape: `vocab ${vocabSize}, ${tmb.toFixed(1)} MB English`,
      medianMs: tms,
      rate: { value: tmb / (tms / 1000), unit: 'MB/s' },
      check: trained.vocabSize === vocabSize ? 'pass' : 'fail',
      note:
        `peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB (+${((peakRss - base.rss) / 2 ** 20).toFixed(0)}), ` +
        `peak heap ${(peakHeap / 2 ** 20).toFixed(0)} MiB; 1 run`,
    });

    const text = benchText(quick);
    const bytes = Buffer.byteLength(text);
    const mb = bytes / 1e6;
    const shape = `${mb.toFixed(2)} MB real text (prose, code, HTML, 13 languages)`;
    const iters = quick ? 2 : 5;
    log(`bench text: ${shape}`);

    for (const name of OPENAI_ENCODING_NAMES) {
      const enc = getEncoding(name);
      const ours: Enc = (s) => enc.encode(s);
      const others = await baselines(name);
      // Reference ids from tiktoken (OpenAI's Rust core); warm every implementation once (caches, JIT).
      const want = others[2].encode(text);
      const got = ours(text);
      const check = sameIds(got, want) ? 'pass' : 'fail';
      for (const o of others) o.encode(text);
      log(`${name}: timing`);
      // Interleaved rounds, so that load from other processes hits every implementation alike.
      // js-tiktoken is ~20x slower: it runs in the first 3 rounds only.
      const rounds = quick ? 2 : 7;
      const oursMs: number[] = [];
      const theirMs: number[][] = others.map(() => []);
      for (let r = 0; r < rounds; r++) {
        oursMs.push(time(() => ours(text), 1));
        others.forEach((o, k) => {
          if (o.label === 'js-tiktoken' && r >= 3) return;
          theirMs[k].push(time(() => o.encode(text), 1));
        });
      }
      const ms = median(oursMs);
      const base = others.map((o, k) => ({
        label: o.label,
        ms: median(theirMs[k]),
        ok: sameIds(o.encode(text), want),
      }));
      const fastestJs = base.filter((b) => b.label !== 'tiktoken (wasm)').reduce((a, b) => (a.ms < b.ms ? a : b));
      rows.push({
        name: `encode ${name} (wgpt)`,
        shape,
        medianMs: ms,
        rate: { value: mb / (ms / 1000), unit: 'MB/s' },
        ofBaseline: { fraction: fastestJs.ms / ms, baseline: `${fastestJs.label} (speedup)` },
        check,
        note: `${got.length} tokens`,
      });
      for (const b of base) {
        rows.push({
          name: `encode ${name} (${b.label})`,
          shape,
          medianMs: b.ms,
          rate: { value: mb / (b.ms / 1000), unit: 'MB/s' },
          check: b.ok ? 'pass' : 'fail',
          note: b.ok ? undefined : 'ids differ from tiktoken',
        });
      }
      const dms = time(() => enc.decodeBytes(got), iters);
      rows.push({
        name: `decodeBytes ${name} (wgpt)`,
        shape: `${got.length} tokens`,
        medianMs: dms,
        rate: { value: mb / (dms / 1000), unit: 'MB/s' },
        check: Buffer.from(enc.decodeBytes(got)).toString() === text ? 'pass' : 'fail',
      });
      for (const o of others) o.free?.();
    }

    return rows;
  },
};

export default suite;
