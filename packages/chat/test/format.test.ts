// The chat format of each kind of vocabulary, and chat_format.json written beside a checkpoint and checked.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { padVocab } from '@wgpt/gpt2';
import { getEncoding, saveTokenizer, trainBpe } from '@wgpt/tokenizer';
import {
  checkChatFormat,
  readChatFormatInfo,
  renderConversation,
  resolveChatFormat,
  writeChatFormat,
} from '../src/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'wgpt-chat-format-'));
const TEXT = 'The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs. '.repeat(40);

/** A tokenizer folder as `wgpt tokenizer train` writes it. */
function trained(folder: string, vocabSize: number, specialTokens: string[], text = TEXT, name = folder): string {
  const out = join(dir, folder);
  saveTokenizer(out, trainBpe(text, { vocabSize, pattern: 'gpt4', specialTokens }), name);
  return out;
}

describe('chat formats', () => {
  it('o200k_base and cl100k_base use their own marker ids and need no new rows', () => {
    const o = resolveChatFormat('o200k_base');
    expect([o.imStart, o.imEnd, o.imSep, o.vocabSize]).toEqual([200264, 200265, 200266, 200267]);
    expect(o.added).toEqual([]);
    expect(o.encoding).toBe(getEncoding('o200k_base'));
    const c = resolveChatFormat('cl100k_base');
    expect([c.imStart, c.imEnd, c.imSep, c.vocabSize]).toEqual([100264, 100265, 100266, 100277]);
    expect(c.added).toEqual([]);
  });

  it("r50k_base gets 50257-50259, inside GPT-2's padded vocabulary; its own tokens are unchanged", () => {
    const cf = resolveChatFormat('r50k_base');
    expect([cf.imStart, cf.imEnd, cf.imSep]).toEqual([50257, 50258, 50259]);
    expect(cf.added).toEqual([50257, 50258, 50259]);
    expect(cf.vocabSize).toBe(50260);
    expect(cf.vocabSize).toBeLessThanOrEqual(padVocab(50257));
    const base = getEncoding('r50k_base');
    const text = 'GPT-2 reads <|endoftext|> and this 🤖.';
    expect(cf.encoding.encode(text, { allowedSpecial: ['<|endoftext|>'] })).toEqual(
      base.encode(text, { allowedSpecial: ['<|endoftext|>'] }),
    );
    expect(cf.encoding.eotToken).toBe(50256);
    expect(cf.encoding.decode([50257, 50259, 50258])).toBe('<|im_start|><|im_sep|><|im_end|>');
    expect(resolveChatFormat('r50k_base')).toBe(cf); // one per encoding
  });

  it('a trained vocabulary gets the markers it lacks after its last id', () => {
    const plain = resolveChatFormat(trained('plain', 300, ['<|endoftext|>']));
    expect([plain.imStart, plain.imEnd, plain.imSep]).toEqual([300, 301, 302]);
    expect(plain.added).toEqual([300, 301, 302]);
    expect(plain.vocabSize).toBe(303);
    // One marker already there (trained with --special): only the other two are added.
    const some = resolveChatFormat(trained('some', 300, ['<|endoftext|>', '<|im_start|>']));
    expect([some.imStart, some.imEnd, some.imSep]).toEqual([299, 300, 301]);
    expect(some.added).toEqual([300, 301]);
    const r = renderConversation(plain, [{ role: 'assistant', content: 'fox' }]);
    expect(plain.encoding.decode(r.ids)).toBe('<|im_start|>assistant<|im_sep|>fox<|im_end|>');
  });

  it('an --encoding that is neither an encoding nor a tokenizer folder is one line naming the flag', () => {
    expect(() => resolveChatFormat('gpt5_base')).toThrow(
      /^--encoding: "gpt5_base" is neither an encoding \(r50k_base, cl100k_base, o200k_base\) nor a tokenizer folder/,
    );
    expect(() => resolveChatFormat(dir)).toThrow(/nor a tokenizer folder with a tokenizer\.json/);
  });

  it('chat_format.json: written, read back and checked; a mismatch or a broken file is one line naming it', () => {
    const r50k = resolveChatFormat('r50k_base');
    const file = join(dir, 'chat_format.json');
    writeChatFormat(file, r50k);
    expect(readChatFormatInfo(file)).toEqual({
      format: 'wgpt-chatml',
      version: 1,
      encoding: 'r50k_base',
      imStart: 50257,
      imEnd: 50258,
      imSep: 50259,
      added: [50257, 50258, 50259],
      vocabSize: 50260,
      vocabSha256: r50k.vocabSha256,
    });
    expect(() => checkChatFormat(file, r50k)).not.toThrow();
    const o200k = resolveChatFormat('o200k_base');
    expect(() => checkChatFormat(file, o200k)).toThrow(
      new RegExp(
        `^${file}: the checkpoint's chat format is not this one \\(encoding "r50k_base" there, "o200k_base" here; ` +
          'imStart 50257 there, 200264 here; .*vocabSize 50260 there, 200267 here\\); use the encoding or ' +
          'tokenizer folder it was made with$',
      ),
    );
    // Same name and size, other tokens: only the hash tells them apart.
    const a = resolveChatFormat(trained('same', 300, ['<|endoftext|>']));
    const other = 'Sphinx of black quartz, judge my vow! How vexingly quick daft zebras jump. '.repeat(40);
    const b = resolveChatFormat(trained('other', 300, ['<|endoftext|>'], other, 'same'));
    expect(b.encoding.name).toBe('same');
    const fa = join(dir, 'a.json');
    writeChatFormat(fa, a);
    expect(a.vocabSize).toBe(b.vocabSize);
    expect(() => checkChatFormat(fa, b)).toThrow(/same size but other tokens \(vocabSha256 differs\)/);
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{"format": "wgpt-chatml", "version": 1, "imStart": "x"}');
    expect(() => readChatFormatInfo(broken)).toThrow(new RegExp(`^${broken}: "imStart" must be a non-negative`));
    writeFileSync(broken, '{');
    expect(() => checkChatFormat(broken, a)).toThrow(new RegExp(`^${broken}: invalid JSON`));
    expect(() => checkChatFormat(join(dir, 'none.json'), a)).toThrow(/none\.json: cannot read the chat format/);
  });
});
