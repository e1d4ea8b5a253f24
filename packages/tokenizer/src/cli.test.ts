import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { register } from './cli.ts';
import { UsageError } from '@wgpt/base/errors';
import { CliError, getEncoding, loadTokenizer, TokenizerConfigError } from './index.ts';
import { englishText, proseText } from './testing/corpus.ts';

async function run(...args: string[]): Promise<{ out: string; err: string }> {
  const io = { outBuf: '', errBuf: '', out(s: string) { this.outBuf += s; }, err(s: string) { this.errBuf += s; } };
  const program = new Command().name('wgpt').exitOverride();
  program.configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) });
  register(program, io);
  await program.parseAsync(args, { from: 'user' });
  return { out: io.outBuf, err: io.errBuf };
}

const dir = mkdtempSync(join(tmpdir(), 'wgpt-cli-'));

describe('wgpt tokenize', () => {
  it('prints ids, as text and as JSON', async () => {
    const { out } = await run('tokenize', '--encoding', 'o200k_base', '--text', 'hello world');
    expect(out).toBe(`${getEncoding('o200k_base').encode('hello world').join(' ')}\n`);
    const j = await run('tokenize', '--encoding', 'cl100k_base', '--text', 'hello world', '--json');
    expect(JSON.parse(j.out)).toEqual([15339, 1917]);
    expect((await run('tokenize', '--text', '', '--json')).out).toBe('[]\n');
    expect((await run('tokenize', '--text', '')).out).toBe('\n');
  });

  it('decodes ids back', async () => {
    const { out } = await run('tokenize', '--encoding', 'cl100k_base', '--decode', '--text', '15339 1917');
    expect(out).toBe('hello world\n');
    const j = await run('tokenize', '-e', 'cl100k_base', '--decode', '--json', '--text', '[15339, 1917]');
    expect(JSON.parse(j.out)).toBe('hello world');
    await expect(run('tokenize', '-e', 'r50k_base', '--decode', '--text', '1 2 x3')).rejects.toThrow(
      '--text:1: "x3" is not a token id',
    );
    await expect(run('tokenize', '-e', 'r50k_base', '--decode', '--text', '1\n99999')).rejects.toThrow(
      '--text:2: token id 99999 is out of range',
    );
  });

  it('encodes files byte-exactly, invalid UTF-8 included', async () => {
    const f = join(dir, 'bad.txt');
    const bytes = Buffer.from([0x68, 0x69, 0xff, 0xfe, 0x20, 0xe6, 0x97, 0xa5, 0xe6, 0x97]);
    writeFileSync(f, bytes);
    const { out } = await run('tokenize', '-e', 'o200k_base', '--file', f, '--json');
    const ids = JSON.parse(out) as number[];
    expect(Buffer.from(getEncoding('o200k_base').decodeBytes(ids))).toEqual(bytes);
  });

  it('a large file streams to the same ids as encoding it whole', async () => {
    const text = englishText(3_000_000);
    const f = join(dir, 'big.txt');
    writeFileSync(f, text);
    const { out } = await run('tokenize', '-e', 'cl100k_base', '--file', f, '--json');
    expect(JSON.parse(out)).toEqual(getEncoding('cl100k_base').encodeOrdinary(text));
  });

  it('special tokens are plain text unless --allow-special', async () => {
    const a = await run('tokenize', '-e', 'cl100k_base', '--text', '<|endoftext|>', '--json');
    expect(JSON.parse(a.out)).not.toContain(100257);
    const b = await run('tokenize', '-e', 'cl100k_base', '--text', '<|endoftext|>', '--json', '--allow-special');
    expect(JSON.parse(b.out)).toEqual([100257]);
  });

  it('--stats prints characters, bytes, bits and tokens per encoding', async () => {
    const text = proseText(5000);
    const { out } = await run('tokenize', '--stats', '--text', text);
    const bytes = Buffer.byteLength(text);
    expect(out).toContain(`UTF-8 bytes  ${bytes}\n`);
    expect(out).toContain(`bits         ${bytes * 8}\n`);
    for (const n of ['r50k_base', 'cl100k_base', 'o200k_base'] as const) {
      expect(out).toMatch(new RegExp(`${n}\\s+${getEncoding(n).encodeOrdinary(text).length}\\s`));
    }
    const j = JSON.parse((await run('tokenize', '--stats', '--json', '--text', 'héllo')).out);
    expect(j).toEqual({
      characters: 5,
      utf8Bytes: 6,
      bits: 48,
      tokens: expect.objectContaining({ cl100k_base: expect.any(Number) }),
    });
  });

  it('clear errors', async () => {
    await expect(run('tokenize', '-e', 'p99k', '--text', 'x')).rejects.toThrow(
      /'-e, --encoding <name>' argument 'p99k' is invalid\. Allowed choices are r50k_base, cl100k_base, o200k_base/,
    );
    // Misused flags are usage errors (exit code 2), unreadable inputs failures (1); both are WgptErrors.
    const usage = { exitCode: 2, message: 'give exactly one of --text T or --file F' };
    await expect(run('tokenize', '-e', 'r50k_base')).rejects.toThrow(expect.objectContaining(usage));
    await expect(run('tokenize', '--decode', '--stats', '--text', '1')).rejects.toThrow(UsageError);
    const missing = run('tokenize', '-e', 'r50k_base', '--file', join(dir, 'nope.txt'));
    await expect(missing).rejects.toThrow(/nope\.txt: cannot read: no such file or folder$/);
    await expect(missing).rejects.toThrow(expect.objectContaining({ name: 'CliError', exitCode: 1 }));
    await expect(run('tokenize', '-e', 'r50k_base', '--decode', '--text', 'x')).rejects.toThrow(CliError);
    await expect(run('tokenize', '--tokenizer', dir, '--text', 'x')).rejects.toThrow(TokenizerConfigError);
    await expect(run('tokenize', '-e', 'r50k_base', '--file', dir)).rejects.toThrow(
      /: not a file \(--file takes a file/,
    );
  });
});

describe('wgpt tokenizer train', () => {
  it('trains, saves, and the result loads and round-trips', async () => {
    const f1 = join(dir, 'a.txt');
    const f2 = join(dir, 'b.txt');
    writeFileSync(f1, proseText(100_000));
    writeFileSync(f2, englishText(50_000));
    const out = join(dir, 'tok');
    const r = await run(
      'tokenizer',
      'train',
      '--input',
      f1,
      f2,
      '--vocab-size',
      '1000',
      '--pattern',
      'gpt4',
      '--out',
      out,
      '--special',
      '<|endoftext|>',
      '<|im_start|>',
    );
    expect(r.out).toMatch(/trained tok: vocab 1000/);
    expect(r.err).toMatch(/merges 742\/742/);
    const cfg = JSON.parse(readFileSync(join(out, 'tokenizer.json'), 'utf8'));
    expect(cfg.pattern).toBe('gpt4');
    expect(cfg.specialTokens).toEqual({ '<|endoftext|>': 998, '<|im_start|>': 999 });
    const enc = loadTokenizer(out);
    const s = 'The quick brown fox, naïvely.';
    expect(enc.decode(enc.encodeOrdinary(s))).toBe(s);
    const t = await run('tokenize', '--tokenizer', out, '--text', s, '--json');
    expect(JSON.parse(t.out)).toEqual(enc.encodeOrdinary(s));
  });

  it('rejects a too-small vocab size and bad patterns', async () => {
    const f = join(dir, 'a.txt');
    const train = (...args: string[]) => run('tokenizer', 'train', '-o', join(dir, 'x'), ...args);
    await expect(train('-i', f, '-n', '200')).rejects.toThrow(
      /'-n, --vocab-size <n>' argument '200' is invalid\. 200 must be at least 256/,
    );
    await expect(train('-i', f, '-n', '300.5')).rejects.toThrow(
      /'-n, --vocab-size <n>' argument '300\.5' is invalid\. not an integer/,
    );
    // 256 bytes + the default <|endoftext|> need 257: the trainer's own check, reported against the flag.
    await expect(train('-i', f, '-n', '256')).rejects.toThrow(/^--vocab-size: vocab size 256 is too small.*257$/);
    await expect(train('-i', f, '-n', '300', '-s', 'a', 'b', 'a')).rejects.toThrow(/^--special: "a" is given twice$/);
    await expect(train('-i', f, '-n', '300', '-p', 'bert')).rejects.toThrow(
      /'-p, --pattern <name>' argument 'bert' is invalid\. Allowed choices are gpt2, gpt4, gpt4o/,
    );
    await expect(train('-i', dir, '-n', '300')).rejects.toThrow(/: not a file \(--input takes text files\)$/);
    await expect(
      run('tokenizer', 'train', '-i', join(dir, 'missing.txt'), '-n', '300', '-o', join(dir, 'x')),
    ).rejects.toThrow(/missing\.txt: cannot read/);
  });
});
