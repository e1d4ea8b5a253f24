// ChatSession on the GPU: exact replies of a crafted model (test/crafted.ts), prompts against js-tiktoken's
// encoding of the ChatML text, the turns dropped when the context is full, the KV cache prefilling only what is new,
// and on a random model (where attention matters) every reply equal to a full forward per token over its prompt.
// Also, without a GPU: the streamed text of a reply, and what the REPL makes of a line.
import { Tiktoken } from 'js-tiktoken/lite';
import gpt2 from 'js-tiktoken/ranks/gpt2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate, GPT2, type KVCache, makeConfig, paramOffsets } from '@wgpt/gpt2';
import type { Gpu, Tensor } from '@wgpt/runtime';
import { randomF32, testGpu } from '@wgpt/runtime/testing';
import { getEncoding } from '@wgpt/tokenizer';
import { type ChatMessage, ChatSession, chatFormat, ContextError, parseReplLine, ReplyText } from '../src/index.ts';
import { craftChatModel } from './crafted.ts';

const cf = chatFormat(getEncoding('r50k_base'));
// GPT-2's vocabulary with the markers at the ids wgpt gives them, written here independently of the code under test.
const IM_START = 50257;
const IM_END = 50258;
const IM_SEP = 50259;
const reference = new Tiktoken(gpt2, { '<|im_start|>': IM_START, '<|im_end|>': IM_END, '<|im_sep|>': IM_SEP });
const chatml = (messages: ChatMessage[]) =>
  messages.map((m) => `<|im_start|>${m.role}<|im_sep|>${m.content}<|im_end|>`).join('');
/** The prompt for the assistant's next message, encoded by js-tiktoken. */
const promptFor = (messages: ChatMessage[]) =>
  reference.encode(`${chatml(messages)}<|im_start|>assistant<|im_sep|>`, 'all');
const length = (m: ChatMessage) => reference.encode(chatml([m]), 'all').length;
/** <|im_start|>assistant<|im_sep|>: 4 tokens in GPT-2's vocabulary ("ass", "istant"). */
const OPENER = reference.encode('<|im_start|>assistant<|im_sep|>', 'all').length;

const REPLY = 'Hi! I am crafted.';
const user = (content: string): ChatMessage => ({ role: 'user', content });
const assistant = (content: string): ChatMessage => ({ role: 'assistant', content });
const system = (content: string): ChatMessage => ({ role: 'system', content });

describe('ReplyText', () => {
  it('streams a character split over tokens once whole; non-UTF-8 bytes and unknown ids give U+FFFD', () => {
    const text = 'a 🤖 robot, naïve';
    const ids = cf.encoding.encodeOrdinary(text);
    const r = new ReplyText(cf);
    const pieces = ids.map((id) => r.push(id));
    expect(pieces.join('') + r.end()).toBe(text);
    expect(r.text).toBe(text);
    // The emoji's four bytes come in more than one token: the tokens before its last give nothing.
    expect(pieces.filter((p) => p === '').length).toBeGreaterThan(0);
    expect(pieces.every((p) => p === '' || !p.includes('\uFFFD'))).toBe(true);

    const cut = new ReplyText(cf);
    const robot = cf.encoding.encodeOrdinary('🤖');
    expect(robot.length).toBeGreaterThan(1);
    expect(cut.push(robot[0]!)).toBe('');
    expect(cut.push(cf.encoding.encodeOrdinary('x')[0]!)).toBe('\uFFFDx'); // the cut character, then the x
    expect(cut.push(cf.vocabSize + 5)).toBe('\uFFFD'); // an id the encoding does not have
    expect(cut.push(robot[0]!) + cut.end()).toBe('\uFFFD'); // unfinished at the end
    expect(cut.text).toBe(new TextDecoder().decode(new Uint8Array([0xf0, 0x9f, 0x78, 0xef, 0xbf, 0xbd, 0xf0, 0x9f])));
  });
});

describe('parseReplLine', () => {
  it.each([
    ['Hello', { kind: 'ask', text: 'Hello' }],
    ['  spaced  ', { kind: 'ask', text: '  spaced  ' }],
    ['//etc/passwd?', { kind: 'ask', text: '/etc/passwd?' }],
    ['', null],
    ['   ', null],
    ['/system Be brief. ', { kind: 'system', text: 'Be brief.' }],
    ['/system', { kind: 'system', text: null }],
    ['/reset', { kind: 'reset' }],
    ['/reset now', { kind: 'unknown', command: '/reset now' }],
    ['/temperature 0.5', { kind: 'temperature', value: '0.5' }],
    ['/temperature', { kind: 'temperature', value: null }],
    ['/help', { kind: 'help' }],
    ['/quit', { kind: 'quit' }],
    ['/exit', { kind: 'unknown', command: '/exit' }],
  ])('%j', (line, want) => {
    expect(parseReplLine(line)).toEqual(want);
  });
});

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

/** A session on a model, with the (pos, T) of every forwardCached call on its cache. */
function sessionOn(model: GPT2, settings: Partial<ChatSession['settings']> = {}) {
  const calls: [number, number][] = [];
  const forward = model.forwardCached.bind(model);
  model.forwardCached = (tokens: Tensor, c: KVCache, pos?: number, opts?: { lastOnly?: boolean }) => {
    calls.push([pos ?? c.length, tokens.shape[1]!]);
    return forward(tokens, c, pos, opts);
  };
  const s = new ChatSession(model, cf, { temperature: 0, maxTokens: 12, seed: 1, ...settings });
  return { s, calls };
}

describe('ChatSession on a crafted model', () => {
  let model: GPT2;
  beforeAll(() => {
    const m = craftChatModel(cf, { reply: REPLY, maxT: 96 });
    model = new GPT2(gpu, m.config, m.params);
  });
  afterAll(() => model.dispose());

  it('answers with the reply and stops at <|im_end|>; the prompts are the ChatML of the conversation', async () => {
    const { s, calls } = sessionOn(model);
    try {
      const pieces: string[] = [];
      const r1 = await s.ask('Hi there', { onText: (p) => pieces.push(p) });
      expect(r1.text).toBe(REPLY);
      expect(pieces.join('')).toBe(REPLY);
      expect(pieces.length).toBeGreaterThan(5); // streamed, a token at a time
      expect(r1.ids).toEqual([...reference.encode(REPLY), IM_END]);
      expect(r1.stopped).toBe('im_end');
      expect(r1.promptIds).toEqual(promptFor([user('Hi there')]));
      expect({ dropped: r1.dropped, kept: r1.kept }).toEqual({ dropped: 0, kept: 0 });

      // The next turn prefills only the last reply's <|im_end|> (never fed), the question and the opener.
      calls.length = 0;
      const r2 = await s.ask('And you?');
      expect(r2.promptIds).toEqual(promptFor([user('Hi there'), assistant(REPLY), user('And you?')]));
      const fed = r1.promptIds.length + r1.ids.length - 1;
      expect(calls[0]).toEqual([fed, r2.promptIds.length - fed]);
      expect(calls.slice(1).every(([, T]) => T === 1)).toBe(true);
      expect(r2.kept).toBe(1);

      // A new system message: the turns stay; the cache is rewritten from its first position that changed.
      s.setSystem('Be brief.');
      calls.length = 0;
      const r3 = await s.ask('Third');
      const all = [system('Be brief.'), user('Hi there'), assistant(REPLY), user('And you?'), assistant(REPLY)];
      expect(r3.promptIds).toEqual(promptFor([...all, user('Third')]));
      expect(calls[0]![0]).toBeLessThanOrEqual(2); // <|im_start|>, then "system" where "user" was
      expect(r3.text).toBe(REPLY);

      // /reset: the system message stays, so its tokens are not prefilled again.
      s.reset();
      calls.length = 0;
      const r4 = await s.ask('Again');
      expect(r4.promptIds).toEqual(promptFor([system('Be brief.'), user('Again')]));
      // The system message and the next <|im_start|>user<|im_sep|> are the same tokens as before.
      const same = length(system('Be brief.')) + 3;
      expect(calls[0]).toEqual([same, r4.promptIds.length - same]);
    } finally {
      s.dispose();
    }
  });

  it('stops at maxTokens, or when asked to; the turn is kept, closed with <|im_end|>', async () => {
    const { s } = sessionOn(model, { maxTokens: 3 });
    try {
      const r = await s.ask('Hi');
      expect(r).toMatchObject({ ids: reference.encode('Hi! I'), text: 'Hi! I', stopped: 'max_tokens' });
      let n = 0;
      const stopped = await s.ask('Go on', { shouldStop: () => ++n === 2 });
      expect(stopped).toMatchObject({ ids: reference.encode('Hi!'), text: 'Hi!', stopped: 'interrupted' });
      expect(s.ids).toEqual(
        reference.encode(chatml([user('Hi'), assistant('Hi! I'), user('Go on'), assistant('Hi!')]), 'all'),
      );
    } finally {
      s.dispose();
    }
  });

  it('drops the oldest turns that leave no room for a whole reply; the system message stays', async () => {
    const maxTokens = 30;
    const { s, calls } = sessionOn(model, { maxTokens });
    const sys = system('You are a helpful assistant.');
    s.setSystem(sys.content);
    try {
      const turns: ChatMessage[][] = [];
      for (const [i, q] of ['Hi', 'What is 2+2?', 'Why?', 'Tell me a long story about a cat.', 'Ok'].entries()) {
        // Which turns fit, counted here from the reference tokenizer: the most recent ones, with the system
        // message, the question, the opener and room for maxTokens within maxT = 96.
        const fixed = length(sys) + length(user(q)) + OPENER + maxTokens;
        let kept = turns.length;
        const size = (t: ChatMessage[]) => t.reduce((n, m) => n + length(m), 0);
        while (fixed + turns.slice(turns.length - kept).reduce((n, t) => n + size(t), 0) > 96) kept--;
        const expected = [sys, ...turns.slice(turns.length - kept).flat(), user(q)];
        calls.length = 0;
        const r = await s.ask(q);
        expect(r.promptIds, `turn ${i + 1}`).toEqual(promptFor(expected));
        expect({ dropped: r.dropped, kept: r.kept }, `turn ${i + 1}`).toEqual({ dropped: turns.length - kept, kept });
        expect(r.promptIds.length + maxTokens).toBeLessThanOrEqual(96);
        // A turn that drops others moves the kept ones: all after the system message (and the next
        // <|im_start|>user<|im_sep|>, the same tokens in every turn) is prefilled again.
        if (r.dropped > 0) expect(calls[0]![0]).toBe(length(sys) + 3);
        turns.splice(0, turns.length - kept);
        turns.push([user(q), assistant(REPLY)]);
      }
      expect(turns.length).toBeLessThan(5); // some were dropped
    } finally {
      s.dispose();
    }
  });

  it('drops a turn exactly when the prompt and a whole reply would pass maxT', async () => {
    // Two turns of 'Hi', then a third question: maxTokens fills the context to the last position, or one past it.
    const turn = length(user('Hi')) + length(assistant(REPLY));
    const question = length(user('Hi')) + OPENER;
    const exact = 96 - question - 2 * turn;
    expect(exact).toBeGreaterThan(reference.encode(REPLY).length); // room for the whole reply
    for (const [maxTokens, dropped] of [
      [exact, 0],
      [exact + 1, 1],
    ] as const) {
      const { s } = sessionOn(model, { maxTokens });
      try {
        await s.ask('Hi');
        await s.ask('Hi');
        const r = await s.ask('Hi');
        expect({ dropped: r.dropped, kept: r.kept }, `maxTokens ${maxTokens}`).toEqual({ dropped, kept: 2 - dropped });
        expect(r.promptIds.length).toBe(question + (2 - dropped) * turn);
      } finally {
        s.dispose();
      }
    }
  });

  it('refuses a question or a system message that leaves no room for a reply (ContextError)', async () => {
    const { s } = sessionOn(model, { maxTokens: 40 });
    try {
      const long = 'word '.repeat(60);
      const n = length(user(long));
      expect(n + OPENER + 40).toBeGreaterThan(96);
      await expect(s.ask(long)).rejects.toThrow(ContextError);
      await expect(s.ask(long)).rejects.toThrow(
        `the question is ${n} tokens: with the system message (0) and a reply of up to 40 tokens it passes the ` +
          "model's context of 96 tokens; shorten it or lower --max-tokens",
      );
      expect(() => s.setSystem(long)).toThrow(
        `the system message is ${length(system(long))} tokens: with a question and a reply of up to 40 tokens`,
      );
      expect(s.system).toBeNull();
      expect((await s.ask('Hi')).text).toBe(REPLY); // nothing was lost
    } finally {
      s.dispose();
    }
  });
});

describe('ChatSession on a model whose reply is not how its text encodes', () => {
  it('keeps the sampled ids in the conversation, not a new encoding of the text', async () => {
    // "Hel" "lo" "!" decodes to "Hello!", which encodes as "Hello" "!".
    const ids = [...reference.encode('Hel'), ...reference.encode('lo'), ...reference.encode('!')];
    expect(reference.encode('Hello!')).not.toEqual(ids);
    const m = craftChatModel(cf, { reply: ids, maxT: 64 });
    const model = new GPT2(gpu, m.config, m.params);
    const { s, calls } = sessionOn(model);
    try {
      const r1 = await s.ask('Hi');
      expect(r1).toMatchObject({ ids: [...ids, IM_END], text: 'Hello!', stopped: 'im_end' });
      calls.length = 0;
      const r2 = await s.ask('Again');
      expect(r2.promptIds).toEqual([...r1.promptIds, ...r1.ids, ...promptFor([user('Again')])]);
      expect(calls[0]).toEqual([
        r1.promptIds.length + ids.length,
        r2.promptIds.length - r1.promptIds.length - ids.length,
      ]);
    } finally {
      s.dispose();
      model.dispose();
    }
  });
});

describe('ChatSession on a random model', () => {
  it('each reply is what a fresh generate() over its prompt gives, through turns dropped', async () => {
    // Attention matters here (the crafted model ignores it), so reused keys and values at a wrong position would
    // change the replies. Fresh: a KV cache of its own per reply (cached = uncached is kvcache.test.ts's subject).
    const cfg = makeConfig({ L: 2, C: 32, NH: 2, V: cf.vocabSize, maxT: 40 });
    const n = Object.values(paramOffsets(cfg)).reduce((a, o) => a + o.size, 0);
    const model = new GPT2(gpu, cfg, randomF32(n, 5, -0.15, 0.15));
    const { s, calls } = sessionOn(model, { maxTokens: 4 });
    try {
      s.setSystem('Be brief.');
      let dropped = 0;
      for (const [i, q] of ['Hi', 'What is 2+2?', 'Why?', 'Go on', 'Ok'].entries()) {
        calls.length = 0;
        const r = await s.ask(q);
        expect(calls.length).toBe(r.ids.length); // one prefill, then a token at a time
        if (i > 0) expect(calls[0]![0], 'some of the prompt came from the cache').toBeGreaterThan(0);
        const fresh: number[] = [];
        for await (const t of generate(model, r.promptIds, { maxNewTokens: 4, temperature: 0, stopTokens: [IM_END] })) {
          fresh.push(t);
        }
        expect(r.ids).toEqual(fresh);
        dropped += r.dropped;
      }
      expect(dropped).toBeGreaterThan(0);
    } finally {
      s.dispose();
      model.dispose();
    }
  });
});
