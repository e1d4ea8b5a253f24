// The browser pages of `wgpt serve` in headless Chromium (WebGPU on SwiftShader), one browser for the file: each
// page loads without console errors and does its job, checked against the same packages run in Node here; bad input
// (a file that is no checkpoint, no WebGPU, a server that went away) ends in a visible message, never a blank page.
// Screenshots of every page go to out/screenshots/; WGPT_UPDATE_SCREENSHOTS=1 also refreshes docs/img/web-*.png.
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from './chromium.ts';
import { type ChatMessage, chatFormat, chatmlText, ChatSession, renderConversation } from '@wgpt/chat';
import { generate, GPT2, initParams, makeConfig, paramCount, paramOffsets } from '@wgpt/gpt2';
import { type Gpu, noGrad, tensor, tidyAsync } from '@wgpt/runtime';
import { relErr, testGpu } from '@wgpt/runtime/testing';
import { type Encoding, getEncoding, trainBpe, trainedEncoding } from '@wgpt/tokenizer';
import { startServer, tokenPieces, TRAIN_TEXT, type WgptServer } from '@wgpt/web';
import { attentionProbsRef, qkvRef } from './attention-ref.ts';
import { makeWebFixtures, type WebFixtures } from './web-fixtures.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const SHOTS = join(ROOT, 'out', 'screenshots');

let fx: WebFixtures;
let srv: WgptServer;
let browser: Browser;
let gpu: Gpu;

beforeAll(async () => {
  fx = makeWebFixtures();
  srv = await startServer({ port: 0, checkpoints: [fx.model, fx.chat, fx.sharp], tokenizer: fx.tokenizer });
  mkdirSync(SHOTS, { recursive: true });
  gpu = await testGpu();
  browser = await launchChromium({ width: 1000, height: 720 });
});

afterAll(async () => {
  await browser?.close();
  await srv?.close();
});

/** A page with its console errors and uncaught exceptions collected. */
async function open(path: string, base = srv.url, before?: (p: Page) => Promise<void>) {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${(e as Error).message}`));
  if (before) await before(page);
  await page.goto(new URL(path, base).href);
  return { page, errors };
}

/** A PNG of the page in out/screenshots/; one per page (`committed`) is also kept under docs/img/. */
async function screenshot(page: Page, name: string, committed = false): Promise<void> {
  const file = join(SHOTS, `web-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  if (committed && process.env.WGPT_UPDATE_SCREENSHOTS)
    copyFileSync(file, join(ROOT, 'docs', 'img', `web-${name}.png`));
}

const statusOf = (page: Page) =>
  page.$eval('#status', (e) => ({ text: e.textContent ?? '', kind: e.className, role: e.getAttribute('role') }));

async function waitForError(page: Page): Promise<{ text: string; role: string | null }> {
  await page.waitForFunction(() => document.getElementById('status')?.classList.contains('error'), {
    timeout: 60_000,
  });
  return statusOf(page);
}

// Emoji (one with joiners), CJK, accents, a ligature, whitespace runs with tabs and newlines, digits, and
// special-token text: the kinds of input where byte-level BPE splits characters and pre-tokenization matters. No
// CR: a textarea turns CRLF into LF, as browsers do.
const MIXED =
  'Déjà vu — 東京タワーに行きました。 🙂👩‍👩‍👧 ﬁne\t\t  spaced   out\n\n\n    indented\n \nLF 1234567 ' +
  "don't <|endoftext|> 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 !!!???";

const SHOWN =
  'Tokenizers split text into pieces: "tokenization" becomes token ids.\n\n' +
  '    def add(a, b):\n        return a + b  # 12345 + 678\n\nDéjà vu, naïve café.';

/** The text the token spans spell: partial tokens (\xNN) back to bytes, the drawn ↵ dropped. */
function spelled(spans: { text: string; partial: boolean }[]): Buffer {
  const parts = spans.map((s) =>
    s.partial
      ? Buffer.from(
          s.text
            .split('\\x')
            .slice(1)
            .map((h) => parseInt(h, 16)),
        )
      : Buffer.from(s.text.replace(/↵\n/g, '\n'), 'utf8'),
  );
  return Buffer.concat(parts);
}

async function tokensShown(page: Page) {
  return page.$$eval('#tokens .tok', (els) =>
    els.map((e) => ({
      id: Number((e as HTMLElement).dataset.id),
      text: e.textContent ?? '',
      partial: e.classList.contains('partial'),
      special: e.classList.contains('special'),
    })),
  );
}

async function countsShown(page: Page) {
  return page.$eval('#counts', (e) => ({
    chars: Number(e.querySelector('#count-chars')!.textContent),
    bytes: Number(e.querySelector('#count-bytes')!.textContent),
    tokens: Number(e.querySelector('#count-tokens')!.textContent),
  }));
}

/** Sets a form field's value as typing would, and waits for the page's next rendering. */
async function setField(page: Page, selector: string, value: string, event: 'input' | 'change'): Promise<void> {
  await page.evaluate(() => (window.wgptTokens = undefined));
  await page.$eval(
    selector,
    (e, v, ev) => {
      (e as HTMLInputElement).value = v;
      e.dispatchEvent(new Event(ev, { bubbles: true }));
    },
    value,
    event,
  );
  await page.waitForFunction('window.wgptTokens !== undefined', { timeout: 60_000 });
  const r = (await page.evaluate(() => window.wgptTokens)) as { error?: string };
  expect(r.error).toBeUndefined();
}

describe('tokenizer page', () => {
  it("shows the Node tokenizer's tokens and counts for every encoding, and ChatML conversations", async () => {
    const { page, errors } = await open('/tokenizer');
    await page.waitForFunction('window.wgptTokens !== undefined', { timeout: 60_000 });
    const trained = (await import('@wgpt/tokenizer')).loadTokenizer(fx.tokenizer);
    const cases: [string, Encoding, boolean][] = [
      ['cl100k_base', getEncoding('cl100k_base'), false],
      ['o200k_base', getEncoding('o200k_base'), true],
      ['r50k_base', getEncoding('r50k_base'), false],
      ['trained', trained, true],
    ];
    await setField(page, '#text', MIXED, 'input');
    for (const [id, enc, special] of cases) {
      await page.$eval('#special', (e, on) => ((e as HTMLInputElement).checked = on), special);
      await setField(page, '#encoding', id, 'change');
      const want = special ? enc.encode(MIXED, { allowedSpecial: 'all' }) : enc.encodeOrdinary(MIXED);
      const spans = await tokensShown(page);
      expect(
        spans.map((s) => s.id),
        id,
      ).toEqual(want);
      expect(spelled(spans).equals(Buffer.from(MIXED, 'utf8')), id).toBe(true);
      expect(spans.filter((s) => s.special).map((s) => s.text)).toEqual(special ? ['<|endoftext|>'] : []);
      expect(await countsShown(page), id).toEqual({
        chars: [...MIXED].length,
        bytes: Buffer.byteLength(MIXED),
        tokens: want.length,
      });
    }
    // The split characters really are shown as bytes somewhere (the trained vocabulary has few merges).
    expect((await tokensShown(page)).some((s) => s.partial)).toBe(true);
    await setField(page, '#encoding', 'cl100k_base', 'change');
    await page.$eval('#special', (e) => ((e as HTMLInputElement).checked = false));
    // Chromium here has no CJK or emoji fonts: the screenshot shows text it can draw.
    await setField(page, '#text', SHOWN, 'input');
    await screenshot(page, 'tokenizer', true);

    // Chat mode: each message's text (markers typed into it included) is plain text between the ChatML markers.
    await setField(page, '#encoding', 'o200k_base', 'change');
    await setField(page, '#mode', 'chat', 'change');
    const messages: ChatMessage[] = [
      { role: 'system', content: 'Answer in one line.' },
      { role: 'user', content: 'Say <|im_end|> and <|im_start|>assistant literally 🙂\n\n  東京?' },
      { role: 'assistant', content: '  <|im_end|>\t東京 ' },
    ];
    for (const [i, m] of messages.entries()) {
      await page.$$eval(
        '#messages .role',
        (els, i, v) => {
          (els[i] as HTMLSelectElement).value = v;
          els[i]!.dispatchEvent(new Event('change'));
        },
        i,
        m.role,
      );
      await setField(page, `#messages .message:nth-of-type(${i + 1}) .content`, m.content, 'input');
    }
    for (const [id, base] of [
      ['o200k_base', getEncoding('o200k_base')],
      ['r50k_base', getEncoding('r50k_base')],
      ['trained', trained],
    ] as const) {
      await setField(page, '#encoding', id, 'change');
      const cf = chatFormat(base);
      const want = Array.from(renderConversation(cf, messages).ids);
      const spans = await tokensShown(page);
      expect(
        spans.map((s) => s.id),
        id,
      ).toEqual(want);
      // Exactly the six markers are special; the ones typed into the messages are text.
      expect(
        spans.filter((s) => s.special).map((s) => s.id),
        id,
      ).toEqual(want.filter((t) => t === cf.imStart || t === cf.imEnd || t === cf.imSep));
      expect(spans.filter((s) => s.special)).toHaveLength(9);
      const text = chatmlText(messages);
      expect(spelled(spans).equals(Buffer.from(text, 'utf8')), id).toBe(true);
      expect(await countsShown(page), id).toEqual({
        chars: [...text].length,
        bytes: Buffer.byteLength(text),
        tokens: want.length,
      });
    }
    await setField(page, '#encoding', 'cl100k_base', 'change');
    await screenshot(page, 'tokenizer-chat');
    expect(errors).toEqual([]);
    await page.close();
  });
});

/** Node's logits for every position of `ids` (T rows of Vp), with the checkpoint's parameters on Dawn. */
async function nodeLogits(model: GPT2, ids: number[]): Promise<Float32Array> {
  return tidyAsync(async () => {
    const { logits } = noGrad(() => model.forward(tensor(gpu, ids, [1, ids.length], 'i32')));
    return (await logits.read()) as Float32Array;
  });
}

describe('generate page', () => {
  it("computes Node's logits, samples Node's tokens with the same seed, and streams them", async () => {
    const { page, errors } = await open('/generate');
    await page.waitForFunction(() => window.wgptGenerate?.state !== 'loading', { timeout: 120_000 });
    expect(await page.evaluate(() => window.wgptGenerate?.error)).toBeUndefined();
    const model = new GPT2(gpu, fx.modelConfig, fx.modelParams);
    try {
      const prompt = fx.enc.encode('Once upon a time there was a model');
      const mine = await nodeLogits(model, prompt);
      const theirs = (await page.evaluate((ids) => window.wgptGenerate!.logits!(ids), prompt)) as number[];
      // The same kernels in f32 on two builds of SwiftShader: sums of at most C=32 or 4C=128 products per output,
      // through two layers; rounding differs by a few ulps per sum, far below 1e-5 relative.
      expect(theirs).toHaveLength(mine.length);
      expect(relErr(theirs, mine)).toBeLessThanOrEqual(1e-5);

      const o = { maxNewTokens: 24, temperature: 1, topK: 0, topP: 1, seed: 7 };
      const want: number[] = [];
      for await (const t of generate(model, prompt, o)) want.push(t);
      const set = (id: string, v: string) => page.$eval(`#${id}`, (e, v) => ((e as HTMLInputElement).value = v), v);
      await set('prompt', 'Once upon a time there was a model');
      await set('max-tokens', '24');
      await set('temperature', '1');
      await set('seed', '7');
      await page.click('#generate');
      await page.waitForFunction(() => ['done', 'error'].includes(window.wgptGenerate!.state), { timeout: 120_000 });
      const r = (await page.evaluate(() => window.wgptGenerate)) as { ids: number[]; text: string; error?: string };
      expect(r.error).toBeUndefined();
      expect(r.ids).toEqual(want);
      expect(r.text).toBe(fx.enc.decode(want));
      expect(await page.$eval('#output .generated', (e) => e.textContent)).toBe(r.text);
      expect(await page.$eval('#stats', (e) => e.textContent)).toMatch(
        /^24 tokens in [\d.]+ s \([\d.]+ tokens\/s\) on .+/,
      );
      await screenshot(page, 'generate', true);
      expect(errors).toEqual([]);
    } finally {
      model.dispose();
      await page.close();
    }
  });

  it('refuses a picked file that is not a checkpoint, saying which and why', async () => {
    const { page } = await open('/generate');
    await page.waitForFunction(() => window.wgptGenerate?.state === 'ready', { timeout: 120_000 });
    const input = await page.$('#file');
    await (input as unknown as { uploadFile(p: string): Promise<void> }).uploadFile(fx.notACheckpoint);
    const s = await waitForError(page);
    expect(s.text).toMatch(/^notes\.bin: bad magic \d+ \(an llm\.c model file starts with 20240326/);
    expect(s.role).toBe('alert');
    await page.close();
  });
});

describe('chat page', () => {
  it("answers as @wgpt/chat's ChatSession does in Node, streaming, and keeps the conversation", async () => {
    const { page, errors } = await open('/chat');
    await page.waitForFunction(() => window.wgptChat?.state !== 'loading', { timeout: 120_000 });
    expect(await page.evaluate(() => window.wgptChat?.error)).toBeUndefined();
    const model = new GPT2(gpu, fx.chatConfig, fx.chatParams);
    const session = new ChatSession(model, chatFormat(fx.enc), { temperature: 0, maxTokens: 12, seed: 1337 });
    try {
      await page.$eval('#max-tokens', (e) => {
        (e as HTMLInputElement).value = '12';
        e.dispatchEvent(new Event('change'));
      });
      for (const [i, q] of ['What is a token?', 'And a model?'].entries()) {
        const want = (await session.ask(q)).text;
        await page.$eval('#question', (e, q) => ((e as HTMLTextAreaElement).value = q), q);
        await page.click('#send');
        await page.waitForFunction((n) => window.wgptChat!.replies.length === n || window.wgptChat!.error, {}, i + 1);
        expect(await page.evaluate(() => window.wgptChat!.error)).toBeUndefined();
        expect(await page.evaluate((i) => window.wgptChat!.replies[i], i)).toBe(want);
        expect(await page.$$eval('.bubble.assistant', (els) => els.map((e) => e.textContent))).toHaveLength(i + 1);
      }
      await screenshot(page, 'chat', true);
      expect(errors).toEqual([]);
    } finally {
      session.dispose();
      model.dispose();
      await page.close();
    }
  });
});

describe('train page', () => {
  it("trains from Node's first loss down, pauses (no step while paused) and resumes", async () => {
    const { page, errors } = await open('/train');
    await page.waitForFunction(() => window.wgptTrain?.state !== 'loading', { timeout: 120_000 });
    const run = await page.evaluate(() => {
      const s = window.wgptTrain!;
      return { ids: s.ids!, config: s.config!, o: s.options!, error: s.error };
    });
    expect(run.error).toBeUndefined();
    const { o } = run;
    // The page's tokens are those of @wgpt/tokenizer's trainer run here on the same text.
    const enc = trainedEncoding(trainBpe(TRAIN_TEXT, { vocabSize: o.vocabSize, pattern: 'gpt2' }));
    expect(run.ids).toEqual(enc.encode(TRAIN_TEXT, { allowedSpecial: 'all' }));
    const config = makeConfig({ L: o.L, C: o.C, NH: o.NH, V: enc.nVocab, maxT: o.T });
    expect(run.config).toEqual(config);
    // Node's loss before the first update: the same init and seed, and the first batch: rows b of T tokens from
    // b·T, targets one further.
    const { B, T } = o;
    const rows = (shift: number) => Array.from({ length: B * T }, (_, n) => run.ids[n + shift]!);
    const model = new GPT2(gpu, config, initParams(config, o.seed));
    const nodeLoss = await tidyAsync(async () => {
      const { loss } = noGrad(() =>
        model.forward(tensor(gpu, rows(0), [B, T], 'i32'), tensor(gpu, rows(1), [B, T], 'i32')),
      );
      return loss!.item();
    });
    model.dispose();

    const set = (id: string, v: string) => page.$eval(`#${id}`, (e, v) => ((e as HTMLInputElement).value = v), v);
    await set('steps', '1000');
    await set('sample-every', '5');
    await page.click('#toggle');
    await page.waitForFunction(() => window.wgptTrain!.losses.length >= 15 || window.wgptTrain!.error, {
      timeout: 300_000,
    });
    // Pause: the step under way when the button is pressed is the last one.
    const pause = () =>
      page.evaluate(() => {
        const k = window.wgptTrain!.losses.length;
        document.getElementById('toggle')!.click();
        return k;
      });
    let k = await pause();
    await page.waitForFunction(() => ['paused', 'error'].includes(window.wgptTrain!.state), { timeout: 120_000 });
    let r = (await page.evaluate(() => window.wgptTrain)) as NonNullable<Window['wgptTrain']>;
    expect(r.error).toBeUndefined();
    expect(r.losses.length).toBeLessThanOrEqual(k + 1);
    // The first loss is a mean over B·T = 128 positions of ln Σ exp(logit) − logit[target], near ln V ≈ 5.8, in f32
    // by the same kernels on two builds of SwiftShader: the logits agree within 1e-5 relative (generate page), and
    // at init they are within ±1 (weights 0.02), so each position's term moves by at most ~2e-5 and so does the
    // mean; 5e-5 leaves room for the f32 rounding of the mean itself (ulp of 5.8 is 5e-7).
    expect(Math.abs(r.losses[0]! - nodeLoss)).toBeLessThanOrEqual(5e-5);
    // From uniform to learning the text's most common pairs: the mean of steps 13-15 is well below that of 1-3
    // (step-to-step noise at this size is ~0.1).
    const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
    expect(mean(r.losses.slice(12, 15))).toBeLessThan(mean(r.losses.slice(0, 3)) - 0.5);
    // Paused: no step runs while the page waits.
    const n = r.losses.length;
    await new Promise((f) => setTimeout(f, 1500));
    expect(await page.evaluate(() => window.wgptTrain!.losses.length)).toBe(n);
    expect(await page.$eval('#toggle', (e) => e.textContent)).toBe('Resume');
    // Resumed: the steps go on from where they stopped, on the same chart.
    await page.click('#toggle');
    await page.waitForFunction((n) => window.wgptTrain!.losses.length >= n + 3, { timeout: 120_000 }, n);
    k = await pause();
    await page.waitForFunction(() => window.wgptTrain!.state === 'paused', { timeout: 120_000 });
    r = (await page.evaluate(() => window.wgptTrain)) as NonNullable<Window['wgptTrain']>;
    expect(r.losses.length).toBeLessThanOrEqual(k + 1);
    const plotted = (await page.evaluate(() => window.wgptTrain!.plotted!())) as [number[], number[]];
    expect(plotted[0]).toEqual(r.losses.map((_, i) => i + 1));
    expect(plotted[1]).toEqual(r.losses);
    // A sample every 5 steps, shown newest first.
    expect(r.samples.map((s) => s.step)).toEqual(r.losses.map((_, i) => i + 1).filter((s) => s % 5 === 0));
    expect(await page.$$eval('#samples .sample', (els) => els.length)).toBe(r.samples.length);
    expect(await page.$eval('#progress', (e) => e.textContent)).toMatch(
      new RegExp(`^step ${r.losses.length}/1000 \\| loss \\d+\\.\\d{4} \\| norm `),
    );
    await screenshot(page, 'train', true);
    expect(errors).toEqual([]);
    await page.close();
  });
});

describe('model page', () => {
  it("shows the architecture, attention equal to an f64 forward's, and Node's next-token probabilities", async () => {
    const { page, errors } = await open('/model');
    await page.waitForFunction(() => window.wgptModel?.shown !== undefined || window.wgptModel?.error, {
      timeout: 120_000,
    });
    expect(await page.evaluate(() => window.wgptModel!.error)).toBeUndefined();
    const c = fx.modelConfig;
    // The architecture: every parameter tensor with its shape and count, and the total.
    const table = await page.$$eval('#arch tr', (trs) =>
      trs.slice(1).map((tr) => Array.from(tr.querySelectorAll('td'), (td) => td.textContent ?? '')),
    );
    const offs = paramOffsets(c);
    expect(table.slice(0, -1)).toEqual(
      Object.entries(offs).map(([name, o]) => [name, o.shape.join(' × '), o.size.toLocaleString('en')]),
    );
    expect(table.at(-1)).toEqual(['total', '', paramCount(c).toLocaleString('en')]);
    expect(await page.$eval('#summary', (e) => e.textContent)).toContain(
      `${paramCount(c).toLocaleString('en')} parameters`,
    );

    // The model with LayerNorm weights of 1 to 3 (checkpoint 2): attention and logits far from uniform.
    await page.evaluate(() => (window.wgptModel!.shown = undefined));
    await page.$eval('#checkpoint', (e) => {
      (e as HTMLSelectElement).value = '2';
      e.dispatchEvent(new Event('change'));
    });
    await page.click('#inspect');
    await page.waitForFunction(() => window.wgptModel!.shown !== undefined || window.wgptModel!.error, {
      timeout: 120_000,
    });
    expect(await page.evaluate(() => window.wgptModel!.error)).toBeUndefined();
    const prompt = 'Once upon a time there was a model';
    const ids = fx.enc.encode(prompt);
    const T = ids.length;
    for (const layer of [0, 1]) {
      const got = (await page.evaluate((ids, l) => window.wgptModel!.inspect!(ids, l), ids, layer)) as {
        attention: number[][][];
        lastLogits: number[];
      };
      const want = attentionProbsRef(qkvRef(c, fx.sharpParams, ids, layer), T, c.C, c.NH);
      // The page's q and k are f32 from a forward that agrees with f64 to ~1e-5 relative (logits, above); the
      // scores q·k/√HS are within ±5 here, so off by at most ~5e-5, and a softmax moves each probability by at most
      // half the largest score error (the ∞-norm of its Jacobian is ≤ ½): 2.5e-5, and 5e-5 with room.
      let worst = 0;
      for (let h = 0; h < c.NH; h++)
        for (let i = 0; i < T; i++)
          for (let j = 0; j < T; j++) worst = Math.max(worst, Math.abs(got.attention[h]![i]![j]! - want[h]![i]![j]!));
      expect(worst, `layer ${layer}`).toBeLessThanOrEqual(5e-5);
      // Far from uniform (at most 1/4 in rows of four keys or more), so the comparison tells heads and rows apart.
      expect(Math.max(...got.attention.flatMap((head) => head.slice(3).flat()))).toBeGreaterThan(0.5);
      // Each row is a distribution over the keys it sees.
      for (const row of got.attention.flat()) expect(Math.abs(row.reduce((a, v) => a + v, 0) - 1)).toBeLessThan(1e-12);
      expect(got.attention[0]![0]!.slice(1).every((v) => v === 0)).toBe(true);
    }

    // The shown next tokens: Node's logits after the prompt, softmax in f64 here.
    const shown = (await page.evaluate(() => window.wgptModel!.shown)) as NonNullable<
      NonNullable<Window['wgptModel']>['shown']
    >;
    expect(shown.ids).toEqual(ids);
    const model = new GPT2(gpu, c, fx.sharpParams);
    try {
      const logits = await nodeLogits(model, ids);
      const last = Array.from(logits.subarray((T - 1) * c.Vp, (T - 1) * c.Vp + c.V));
      const m = Math.max(...last);
      const z = last.reduce((a, v) => a + Math.exp(v - m), 0);
      const probs = last.map((v, id) => ({ id, p: Math.exp(v - m) / z })).sort((a, b) => b.p - a.p || a.id - b.id);
      // Logits within 1e-5 relative (|logit| ≲ 10 here) move a probability by at most ~2e-4 of itself.
      expect(shown.top.map((t) => t.id)).toEqual(probs.slice(0, 10).map((t) => t.id));
      shown.top.forEach((t, i) => expect(Math.abs(t.p - probs[i]!.p)).toBeLessThanOrEqual(2e-4 * probs[i]!.p + 1e-12));
      expect(shown.top.map((t) => t.text)).toEqual(
        tokenPieces(
          fx.enc,
          shown.top.map((t) => t.id),
        ).map((p) => p.text),
      );
    } finally {
      model.dispose();
    }
    expect(await page.$$eval('#top tr', (trs) => trs.length)).toBe(11);
    await screenshot(page, 'model', true);
    expect(errors).toEqual([]);
    await page.close();
  });
});

describe('bad conditions: a visible message that says what to do', () => {
  it('a browser without WebGPU', async () => {
    const noGpu = async (p: Page) => {
      await p.evaluateOnNewDocument(() => {
        delete (Navigator.prototype as { gpu?: unknown }).gpu;
      });
    };
    for (const path of ['/generate', '/chat', '/train', '/model']) {
      const { page } = await open(path, srv.url, noGpu);
      const s = await waitForError(page);
      expect(s.text, path).toMatch(/^This browser has no WebGPU .* start Chromium with --enable-unsafe-webgpu/);
      if (path === '/generate') await screenshot(page, 'no-webgpu');
      await page.close();
    }
    // The tokenizer page needs no WebGPU.
    const { page, errors } = await open('/tokenizer', srv.url, noGpu);
    await page.waitForFunction('window.wgptTokens !== undefined', { timeout: 60_000 });
    expect(await page.evaluate(() => window.wgptTokens)).toHaveProperty('ids');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('a model too large for the adapter', async () => {
    // An adapter whose largest buffer is 16 KiB: the checkpoint's token embedding (320 × 32 f32, 40 KiB) is over it.
    const smallAdapter = async (p: Page) => {
      await p.evaluateOnNewDocument(() => {
        const real = Object.getOwnPropertyDescriptor(GPUDevice.prototype, 'limits')!.get!;
        Object.defineProperty(GPUDevice.prototype, 'limits', {
          get(this: GPUDevice) {
            const l = real.call(this) as GPUSupportedLimits;
            return new Proxy(l, { get: (t, k) => (k === 'maxStorageBufferBindingSize' ? 16384 : Reflect.get(t, k)) });
          },
        });
      });
    };
    const want: [string, string][] = [
      ['/model', 'tiny.bin is too large for this adapter: its token embedding (Vp=320 × C=32) needs 40960 bytes'],
      ['/train', "the page's model (B=4 T=32) is too large for this adapter: its token embedding (Vp=320 × C=32)"],
    ];
    for (const [path, start] of want) {
      const { page } = await open(path, srv.url, smallAdapter);
      const s = await waitForError(page);
      expect(s.text, path).toBe(
        `${start}${path === '/model' ? '' : ' needs 40960 bytes'}, and its largest buffer is 16384 bytes ` +
          '(maxStorageBufferBindingSize); use a smaller model, batch or context, or a browser on a GPU',
      );
      if (path === '/model') await screenshot(page, 'too-large');
      await page.close();
    }
  });

  it('a server that went away', async () => {
    const other = await startServer({ port: 0 });
    const { page } = await open('/tokenizer', other.url);
    await page.waitForFunction('window.wgptTokens !== undefined', { timeout: 60_000 });
    await other.close();
    await page.$eval('#encoding', (e) => {
      (e as HTMLSelectElement).value = 'o200k_base';
      e.dispatchEvent(new Event('change'));
    });
    const s = await waitForError(page);
    expect(s.text).toBe(
      `cannot reach the wgpt server at ${other.url.slice(0, -1)}: it has stopped or the network is down. ` +
        'Start it again (wgpt serve) and reload this page.',
    );
    await screenshot(page, 'server-gone');
    await page.close();
  });
});
