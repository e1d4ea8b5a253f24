// Supervised fine-tuning: the rows as a batch source (every conversation once per epoch, positions that restore
// exactly), the trainer's masked loss against a plain mean over the trained tokens, exact resume with the chat
// format in every checkpoint, exact-answer scoring on a crafted model, and `wgpt sft` / `wgpt chat eval` as users
// run them.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GPT2, initParams, lossWeights, makeConfig, readLlmcModel, writeLlmcModel } from '@wgpt/gpt2';
import { Gpu, noGrad, tensor, tidyAsync } from '@wgpt/runtime';
import { saveTokenizer, trainBpe } from '@wgpt/tokenizer';
import {
  accuracy,
  answerCases,
  type ChatMessage,
  chatFormat,
  ConversationRows,
  firstAnswerCase,
  holdOut,
  newRowBatch,
  planRows,
  prepareModelForChat,
  renderConversation,
  resolveChatFormat,
  sft,
  synthConversations,
  writeRows,
} from '../src/index.ts';
import { getEncoding } from '@wgpt/tokenizer';
import { craftChatModel } from './crafted.ts';

const ROOT = new URL('../../..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'wgpt-sft-'));
const tokDir = join(dir, 'tok');
const basePath = join(dir, 'base.bin');
const convs = [...synthConversations(40, 3, { kinds: ['arithmetic'], simple: true })];
let gpu: Gpu;

beforeAll(async () => {
  const text = convs.map((m) => m.map((x) => x.content).join(' ')).join('\n');
  saveTokenizer(tokDir, trainBpe(text, { vocabSize: 300, pattern: 'gpt2', specialTokens: ['<|endoftext|>'] }), 't');
  const config = makeConfig({ L: 1, C: 16, NH: 2, V: 300, maxT: 48 });
  writeLlmcModel(basePath, { config, params: initParams(config, 5) });
  gpu = await Gpu.open({});
});
afterAll(() => gpu?.destroy());

const cf = () => resolveChatFormat(tokDir);
const rendered = () => convs.map((m) => renderConversation(cf(), m));

describe('ConversationRows', () => {
  it('gives every conversation once per epoch, in a new order each epoch, and restores a position exactly', () => {
    const items = rendered();
    const src = new ConversationRows(items, { B: 3, T: 48, mode: 'pad', shuffle: true, seed: 7, name: 'c' });
    expect(src.batchesPerEpoch).toBe(Math.ceil(items.length / 3));
    const firstIds = (ids: Int32Array) => ids[0]! * 1e6 + ids[8]! * 1e3 + ids[9]!;
    const seen = (epochRows: Int32Array[]) => epochRows.map(firstIds).sort();
    const rowsOf = (n: number) => {
      const rows: Int32Array[] = [];
      for (let i = 0; i < n; i++) {
        const b = src.next();
        for (let r = 0; r < 3; r++)
          if (b.mask!.slice(r * 48, (r + 1) * 48).some(Boolean)) rows.push(b.inputs.slice(r * 48, (r + 1) * 48));
      }
      return rows;
    };
    const e0 = rowsOf(src.batchesPerEpoch);
    expect(src.state).toEqual({ epoch: 1, shard: 0, window: 0 });
    const e1 = rowsOf(src.batchesPerEpoch);
    expect(e0).toHaveLength(items.length);
    expect(seen(e0)).toEqual(seen(items.map((it) => Int32Array.from({ length: 48 }, (_, k) => it.ids[k] ?? 0))));
    expect(seen(e1)).toEqual(seen(e0));
    expect(e1.map(firstIds)).not.toEqual(e0.map(firstIds)); // reshuffled
    // A position read mid-epoch gives the same batches after restore, in another source too.
    const at = { epoch: 1, shard: 0, window: 4 };
    src.restore(at);
    const a = src.next();
    const other = new ConversationRows(items, { B: 3, T: 48, mode: 'pad', shuffle: true, seed: 7, name: 'c' });
    other.restore(at);
    expect(other.next()).toEqual(a);
    expect(() => other.restore({ epoch: 0, shard: 0, window: 99 })).toThrow(/past the 14 batches of that epoch/);
  });

  it('masks exactly the targets that are assistant tokens, with target 0 where the mask is 0', () => {
    const items = rendered().slice(0, 4);
    const b = new ConversationRows(items, { B: 4, T: 48, mode: 'pad', shuffle: false, seed: 0, name: 'c' }).next();
    for (let r = 0; r < 4; r++) {
      const it = items[r]!;
      for (let t = 0; t < 48; t++) {
        const i = r * 48 + t;
        const inside = t + 1 < it.ids.length;
        expect(b.mask![i]).toBe(inside ? it.mask[t + 1] : 0);
        if (b.mask![i]) expect(b.targets[i]).toBe(it.ids[t + 1]);
        else expect(b.targets[i]).toBeGreaterThanOrEqual(0);
      }
    }
  });

  it('names the data by its content: other conversations are other data', () => {
    const o = { B: 2, T: 48, mode: 'pad' as const, shuffle: true, seed: 1, name: 'c' };
    const a = new ConversationRows(rendered(), o).identity();
    expect(new ConversationRows(rendered(), o).identity()).toEqual(a);
    expect(new ConversationRows(rendered().slice(1), o).identity()[0]!.sample).not.toBe(a[0]!.sample);
    expect(() => new ConversationRows([], o)).toThrow('c: no conversations to train on');
  });
});

describe('the masked loss', () => {
  it('lossWeights makes a step the plain mean over every trained token of its micro-batches', () => {
    const m = (...x: number[]) => ({ inputs: new Int32Array(4), targets: new Int32Array(4), mask: Uint8Array.from(x) });
    // 3 trained tokens in all: each weighs 2·4/3, so Σ w·l / (2·4) over both micro-batches is their mean.
    const w = lossWeights([m(1, 0, 0, 0), m(0, 1, 1, 0)], 4)!;
    expect(w.map((a) => [...a])).toEqual([[8 / 3, 0, 0, 0].map(Math.fround), [0, 8 / 3, 8 / 3, 0].map(Math.fround)]);
    expect(lossWeights([{ inputs: new Int32Array(4), targets: new Int32Array(4) }], 4)).toBeNull();
    expect(lossWeights([m(0, 0, 0, 0)], 4)![0]).toEqual(new Float32Array(4));
  });

  it.each(['pad', 'pack'] as const)(
    "%s: a first step's loss over two micro-batches is the mean of the trained tokens' losses, each conversation alone",
    async (mode) => {
      // Short conversations, so that rows hold several when packed.
      const items = Array.from({ length: 40 }, (_, i) =>
        renderConversation(cf(), [
          { role: 'user', content: `${i}` },
          { role: 'assistant', content: `${(7 * i) % 10}` },
        ]),
      );
      const out = join(dir, `mean-${mode}`);
      const opts = { ...trainOpts(out, 1), cf: cf(), train: items, val: [], dataName: 'c', mode };
      const r = await sft(gpu, { ...opts, base: readLlmcModel(basePath), totalBatchTokens: 2 * 4 * 48 });
      // The rows of the step's two micro-batches (the source's first epoch, seed 1), the model before the step (sft
      // grows V to hold the markers the same way), and every conversation of them run on its own from position 0:
      // the mean of the losses at the trained positions, summed in f64.
      const plan = planRows(items, { T: 48, mode, seed: 1 });
      const rows = newRowBatch(8, 48);
      writeRows(plan, items, 0, rows, 0);
      const ready = prepareModelForChat(readLlmcModel(basePath), cf(), 1).model;
      const model = new GPT2(gpu, ready.config, ready.params);
      let sum = 0;
      let n = 0;
      for (let row = 0; row < 8; row++) {
        for (let t = row * 48; t < (row + 1) * 48;) {
          let end = t + 1;
          while (end < (row + 1) * 48 && rows.segments[end] === rows.segments[t]) end++;
          if (rows.segments[t]! >= 0) {
            const len = end - t;
            const targets = rows.targets.slice(t, end).map((x) => (x < 0 ? 0 : x));
            const losses = await tidyAsync(async () => {
              const x = tensor(gpu, rows.inputs.slice(t, end), [1, len], 'i32');
              const { losses } = noGrad(() => model.forward(x, tensor(gpu, targets, [1, len], 'i32')));
              return new Float32Array(await gpu.read(losses!.buffer, 4 * len));
            });
            for (let k = 0; k < len; k++) {
              if (rows.mask[t + k]) {
                sum += losses[k]!;
                n++;
              }
            }
          }
          t = end;
        }
      }
      model.dispose();
      expect(n).toBeGreaterThanOrEqual(16);
      if (mode === 'pack') expect(plan.rows.slice(0, 8).filter((row) => row.length > 1).length).toBeGreaterThan(4);
      // f32 losses of ~6 summed in f32 by the mean kernel: relative error well under 1e-5.
      expect(Number.isFinite(r.steps[0]!.loss)).toBe(true);
      expect(Math.abs(r.steps[0]!.loss - sum / n)).toBeLessThan(1e-5 * (sum / n));
    },
  );
});

function trainOpts(outDir: string, steps: number) {
  return {
    B: 4,
    T: 48,
    totalBatchTokens: 4 * 48,
    steps,
    lr: 3e-3,
    warmupSteps: 0,
    finalLrFrac: 1,
    weightDecay: 0,
    maxNorm: 1,
    valEvery: 2,
    valBatches: 2,
    sampleEvery: 0,
    sampleTokens: 8,
    checkpointEvery: 2,
    outDir,
    seed: 1,
    log: () => {},
  };
}

describe('sft()', () => {
  it('resumes exactly, writes chat_format.json into every checkpoint, and validates on held-out rows', async () => {
    const { train, val } = holdOut(rendered(), 0.1, 1);
    expect(val).toHaveLength(4);
    const common = { base: readLlmcModel(basePath), cf: cf(), train, val, dataName: 'c', mode: 'pad' as const };
    const whole = await sft(gpu, { ...common, ...trainOpts(join(dir, 'whole'), 4) });
    const half = join(dir, 'half');
    await sft(gpu, { ...common, ...trainOpts(half, 4), stopAfter: 2 });
    const resumed = await sft(gpu, { ...common, ...trainOpts(half, 4), resume: join(half, 'checkpoint') });
    expect(resumed.steps.map((s) => s.loss)).toEqual(whole.steps.slice(2).map((s) => s.loss));
    expect(resumed.valLosses.at(-1)).toEqual(whole.valLosses.at(-1));
    expect(Number.isFinite(whole.valLosses.at(-1)!.loss)).toBe(true);
    expect(readFileSync(join(half, 'checkpoint', 'chat_format.json'), 'utf8')).toContain('"wgpt-chatml"');
    expect(whole.initialised).toEqual([300, 301, 302]);
    const m = readLlmcModel(join(whole.checkpoint, 'model.bin'));
    expect(m.config.V).toBe(303);
  });
});

describe('exact answers', () => {
  const msgs = (q: string, a: string): ChatMessage[] => [
    { role: 'system', content: 'S' },
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: 'Hello' },
    { role: 'user', content: q },
    { role: 'assistant', content: a },
  ];

  it('firstAnswerCase takes the first reply to a question; holdOut splits by seed', () => {
    expect(firstAnswerCase(msgs('q', 'a'))).toEqual({ messages: msgs('q', 'a').slice(0, 2), expected: 'Hello' });
    expect(firstAnswerCase([{ role: 'user', content: 'q' }])).toBeNull();
    const h = holdOut([...Array(10).keys()], 0.2, 3);
    expect(h.val).toHaveLength(2);
    expect([...h.train, ...h.val].sort((a, b) => a - b)).toEqual([...Array(10).keys()]);
    expect(holdOut([1], 0.5, 0)).toEqual({ train: [1], val: [] });
  });

  it('scores greedy replies of a crafted model exactly', async () => {
    const r50k = chatFormat(getEncoding('r50k_base'));
    const crafted = craftChatModel(r50k, { reply: 'I am crafted.', maxT: 64 });
    const model = new GPT2(gpu, crafted.config, crafted.params);
    const cases = [
      { messages: [{ role: 'user' as const, content: 'Who?' }], expected: 'I am crafted.' },
      { messages: [{ role: 'user' as const, content: 'What?' }], expected: 'I am crafted' },
    ];
    const results = await answerCases(model, r50k, cases);
    model.dispose();
    expect(results.map((x) => [x.reply, x.correct])).toEqual([
      ['I am crafted.', true],
      ['I am crafted.', false],
    ]);
    expect(accuracy(results)).toEqual({ correct: 1, total: 2, share: 0.5 });
  });
});

const run = promisify(execFile);
async function wgpt(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('node', ['scripts/wgpt.mjs', ...args], { cwd: ROOT, timeout: 300_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('wgpt sft and wgpt chat eval', () => {
  it('fine-tune on a JSONL file, then score the replies', async () => {
    const data = join(dir, 'data.jsonl');
    writeFileSync(data, convs.map((m) => `${JSON.stringify({ messages: m })}\n`).join(''));
    const out = join(dir, 'cli');
    const r = await wgpt(
      'sft',
      '--checkpoint',
      basePath,
      '--tokenizer',
      tokDir,
      '--data',
      data,
      '--out',
      out,
      '--steps',
      '2',
      '-B',
      '2',
      '--val-every',
      '2',
      '--val-batches',
      '1',
      '--sample-every',
      '2',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /rows of T=48, packed: 38 conversations in \d+ rows, [\d.]+% padding, loss on \d+ tokens; 2 held/,
    );
    expect(r.stdout).toMatch(/--- sample at step 2 ---\nuser: .+\nassistant: /);
    expect(existsSync(join(out, 'checkpoint', 'chat_format.json'))).toBe(true);
    const e = await wgpt(
      'chat',
      'eval',
      '--checkpoint',
      join(out, 'checkpoint'),
      '--tokenizer',
      tokDir,
      '--data',
      data,
      '--limit',
      '3',
      '--max-tokens',
      '4',
      '--json',
    );
    expect(e.code).toBe(0);
    expect(JSON.parse(e.stdout)).toMatchObject({ total: 3, excluded: 0, base: false });
    const before = await wgpt(
      'chat',
      'eval',
      '--checkpoint',
      basePath,
      '--tokenizer',
      tokDir,
      '--data',
      data,
      '--limit',
      '2',
      '--max-tokens',
      '2',
      '--json',
    );
    expect(before.code).toBe(0);
    expect(JSON.parse(before.stdout)).toMatchObject({ total: 2, base: true });
    const held = await wgpt(
      'chat',
      'eval',
      '--checkpoint',
      join(out, 'checkpoint'),
      '--tokenizer',
      tokDir,
      '--data',
      data,
      '--exclude',
      data,
      '--json',
    );
    expect(held.code).toBe(1);
    expect(held.stderr).toMatch(/no conversation has a question answered by the assistant/);
  });

  it.each([
    [['-T', '64'], 2, /^wgpt: -T, --seq 64 exceeds the base model's context 48\n$/],
    [['--data', '/nonexistent.jsonl'], 1, /^wgpt: \/nonexistent.jsonl: cannot read/],
    [['--val-frac', '1'], 2, /--val-frac/],
    [['--rows', 'both'], 2, /--rows/],
  ])('refuses %j with a one-line error', async (extra, code, message) => {
    const r = await wgpt('sft', '--checkpoint', basePath, '--tokenizer', tokDir, '--out', join(dir, 'bad'), ...extra);
    expect(r.code).toBe(code);
    expect(r.stderr).toMatch(message);
  });
});
