import { mkdtempSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ChunkCounter,
  loadTokenizer,
  saveTokenizer,
  trainBpe,
  trainBpeStream,
  trainedEncoding,
  VocabSizeError,
} from './index.ts';
import { PATTERN_NAMES } from './patterns.ts';
import { naiveTrain } from './testing/naive-train.ts';
import { codeText, englishText, generatedText, proseText } from './testing/corpus.ts';

const small = [
  { name: 'prose', text: proseText(6000) },
  { name: 'code', text: codeText(5000) },
  { name: 'mixed scripts', text: generatedText(3000, 11) },
  { name: 'runs', text: 'aaaaaaa aaaa aaa bbbbbb ab ab abab ' + '0'.repeat(50) + ' '.repeat(20) + 'x\n\n\n' },
];

describe('trainBpe', () => {
  it.each(PATTERN_NAMES)('equals the naive reference trainer (%s pattern)', (pattern) => {
    for (const { name, text } of small) {
      const nMerges = 150;
      const want = naiveTrain(text, pattern, nMerges);
      const got = trainBpe(text, { vocabSize: 256 + nMerges + 1, pattern });
      expect(got.merges, `${name}`).toEqual(want.merges);
      expect(got.tokens.map((t) => Array.from(t)), `${name}`).toEqual(want.tokens);
    }
  });

  it('is deterministic: same input, same files', () => {
    const text = proseText(40_000);
    const d1 = mkdtempSync(join(tmpdir(), 'wgpt-train-'));
    const d2 = mkdtempSync(join(tmpdir(), 'wgpt-train-'));
    saveTokenizer(d1, trainBpe(text, { vocabSize: 600, pattern: 'gpt4' }));
    saveTokenizer(d2, trainBpe(text, { vocabSize: 600, pattern: 'gpt4' }));
    for (const f of ['tokenizer.tiktoken', 'tokenizer.json'])
      expect(readFileSync(join(d1, f))).toEqual(readFileSync(join(d2, f)));
  });

  it('saves and loads; the loaded tokenizer encodes like the trained one and round-trips', () => {
    const text = proseText(60_000);
    const t = trainBpe(text, {
      vocabSize: 800,
      pattern: 'gpt4o',
      specialTokens: ['<|endoftext|>', '<|im_start|>', '<|im_end|>'],
    });
    expect(t.vocabSize).toBe(800);
    expect(t.specialTokens).toEqual({ '<|endoftext|>': 797, '<|im_start|>': 798, '<|im_end|>': 799 });
    const dir = mkdtempSync(join(tmpdir(), 'wgpt-train-'));
    saveTokenizer(dir, t, 'tiny');
    const enc = loadTokenizer(dir);
    expect(enc.name).toBe('tiny');
    expect(enc.nVocab).toBe(800);
    expect(enc.eotToken).toBe(797);
    const sample = generatedText(20_000, 5) + text.slice(0, 5000);
    const ids = enc.encodeOrdinary(sample);
    expect(ids).toEqual(trainedEncoding(t).encodeOrdinary(sample));
    expect(enc.decode(ids)).toBe(sample);
    expect(ids.length).toBeLessThan(new TextEncoder().encode(sample).length);
    expect(enc.encode('<|im_start|>hi<|im_end|>', { allowedSpecial: 'all' })).toEqual([
      798,
      ...enc.encodeOrdinary('hi'),
      799,
    ]);
    expect(() => enc.encode('<|endoftext|>')).toThrow(/endoftext/);
  });

  it.each(PATTERN_NAMES)('a saved vocabulary (%s) encodes like tiktoken loaded with the same files', (pattern) => {
    const { Tiktoken } = createRequire(import.meta.url)('tiktoken') as typeof import('tiktoken');
    const dir = mkdtempSync(join(tmpdir(), 'wgpt-train-'));
    const cfg = saveTokenizer(
      dir,
      trainBpe(englishText(400_000), { vocabSize: 3000, pattern, specialTokens: ['<|endoftext|>', '<|im_start|>'] }),
    );
    const ref = new Tiktoken(
      readFileSync(join(dir, 'tokenizer.tiktoken'), 'utf8'),
      cfg.specialTokens,
      cfg.patternRegex,
    );
    try {
      const enc = loadTokenizer(dir);
      const sample =
        `${codeText(60_000)}\n${generatedText(60_000, 21)}\n` + `${proseText(60_000)}<|im_start|>x<|endoftext|>`;
      expect(enc.encode(sample, { allowedSpecial: 'all' })).toEqual(Array.from(ref.encode(sample, 'all')));
    } finally {
      ref.free();
    }
  });

  it('loads any tiktoken rank file with a tokenizer.json, and names the directory in errors', async () => {
    const { copyFileSync, writeFileSync } = await import('node:fs');
    const { rankFilePath, sha256Hex, getEncoding } = await import('./index.ts');
    const dir = mkdtempSync(join(tmpdir(), 'wgpt-train-'));
    copyFileSync(rankFilePath('r50k_base'), join(dir, 'tokenizer.tiktoken'));
    const cfg = {
      format: 'wgpt-bpe',
      version: 1,
      name: 'gpt2-copy',
      pattern: 'gpt2',
      specialTokens: { '<|endoftext|>': 50256 },
      eot: '<|endoftext|>',
      rankFile: 'tokenizer.tiktoken',
      rankFileSha256: sha256Hex(readFileSync(join(dir, 'tokenizer.tiktoken'))),
    };
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(cfg));
    const s = proseText(20_000);
    expect(loadTokenizer(dir).encodeOrdinary(s)).toEqual(getEncoding('r50k_base').encodeOrdinary(s));
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify({ ...cfg, specialTokens: { '<|endoftext|>': 7 } }));
    expect(() => loadTokenizer(dir)).toThrow(
      `${dir}: special token "<|endoftext|>" id 7 collides with a mergeable token`,
    );
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify({ ...cfg, pattern: 'bert' }));
    expect(() => loadTokenizer(dir)).toThrow(/tokenizer\.json: unknown "pattern" "bert"/);
  });

  it('a corrupted saved rank file is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wgpt-train-'));
    saveTokenizer(dir, trainBpe('hello hello world', { vocabSize: 260, pattern: 'gpt2' }));
    const { appendFileSync } = await import('node:fs');
    appendFileSync(join(dir, 'tokenizer.tiktoken'), 'AAAA 999\n');
    expect(() => loadTokenizer(dir)).toThrow(/tokenizer\.tiktoken: sha256 .* does not match/);
  });

  it('vocab size below 256 + specials is a clear error', () => {
    expect(() => trainBpe('abc', { vocabSize: 256, pattern: 'gpt2' })).toThrow(VocabSizeError);
    expect(() => trainBpe('abc', { vocabSize: 257, pattern: 'gpt2', specialTokens: ['<|a|>', '<|b|>'] })).toThrow(
      /at least 256 .* \+ 2 .* = 258/,
    );
    expect(trainBpe('abc', { vocabSize: 257, pattern: 'gpt2' }).vocabSize).toBe(257);
  });

  it('streams: pieces of any size count the same chunks as the whole text', async () => {
    const text = (proseText(300_000) + '\n' + generatedText(100_000, 9)).repeat(5);
    for (const pattern of PATTERN_NAMES) {
      const whole = new ChunkCounter(pattern);
      whole.addDocument(text);
      const streamed = new ChunkCounter(pattern);
      const bytes = new TextEncoder().encode(text);
      for (let i = 0; i < bytes.length; i += 65_537) streamed.pushBytes(bytes.subarray(i, i + 65_537));
      streamed.end();
      expect(streamed.counts).toEqual(whole.counts);
    }
    const a = await trainBpeStream([text.slice(0, 1000), text.slice(1000, 5000)], { vocabSize: 300, pattern: 'gpt4' });
    expect(a.merges).toEqual(trainBpe(text.slice(0, 5000), { vocabSize: 300, pattern: 'gpt4' }).merges);
  });

  it('trains on bytes with invalid UTF-8 and keeps them byte-exact', async () => {
    const good = new TextEncoder().encode(proseText(20_000));
    const bytes = new Uint8Array(good.length);
    bytes.set(good);
    for (let i = 0; i < bytes.length; i += 97) bytes[i] = 0xff; // sprinkle invalid bytes
    for (let i = 5; i < bytes.length; i += 211) bytes[i] = 0x80;
    const t = await trainBpeStream([bytes.subarray(0, 7000), bytes.subarray(7000)], {
      vocabSize: 500,
      pattern: 'gpt4',
    });
    expect(t.tokens.some((tok) => tok.includes(0xff) && tok.length > 1)).toBe(true);
    const enc = trainedEncoding(t);
    expect(enc.decodeBytes(enc.encodeBytes(bytes))).toEqual(bytes);
  });

  it('stops early when the corpus has no pairs left', () => {
    const t = trainBpe('ab', { vocabSize: 1000, pattern: 'gpt2' });
    expect(t.tokens.length).toBe(257);
    expect(t.vocabSize).toBe(258);
  });
});
