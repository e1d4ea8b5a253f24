// `wgpt chat render / synth / stats` through main(): their output, and one line with the right exit status for each
// kind of bad input.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '@wgpt/cli';
import { getEncoding } from '@wgpt/tokenizer';

async function wgpt(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((stdout += String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((stderr += String(s)), true));
  try {
    const code = await main(['node', 'wgpt', ...args]);
    return { code, stdout, stderr };
  } finally {
    vi.restoreAllMocks();
  }
}

afterEach(() => {
  process.exitCode = undefined;
});

const dir = mkdtempSync(join(tmpdir(), 'wgpt-chat-cli-'));
const file = (name: string, text: string) => {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
};
const MESSAGES = [
  { role: 'system', content: 'You are a helpful assistant.' },
  { role: 'user', content: 'What is 2+2?' },
  { role: 'assistant', content: '2 + 2 = 4.' },
];
const conv = file('conv.json', JSON.stringify({ messages: MESSAGES }));

describe('wgpt chat render', () => {
  it('prints the ids, the tokens of each message (markers by name) and what is trained', async () => {
    const r = await wgpt('chat', 'render', '--encoding', 'o200k_base', '--file', conv, '--prompt');
    expect(r).toEqual({
      code: 0,
      stderr: '',
      stdout: [
        '200264 17360 200266 3575 553 261 10297 29186 13 200265 200264 1428 200266 4827 382 220 17 10 17 30 200265 ' +
          '200264 173781 200266 17 659 220 17 314 220 19 13 200265 200264 173781 200266',
        '<|im_start|> "system" <|im_sep|> "You" " are" " a" " helpful" " assistant" "." <|im_end|>',
        '<|im_start|> "user" <|im_sep|> "What" " is" " " "2" "+" "2" "?" <|im_end|>',
        '<|im_start|> "assistant" <|im_sep|> "2" " +" " " "2" " =" " " "4" "." <|im_end|>',
        '<|im_start|> "assistant" <|im_sep|>',
        "36 tokens (o200k_base, vocabulary 200267); 9 trained: the assistant's content and <|im_end|>",
        '',
      ].join('\n'),
    });
  });

  it.each(['o200k_base', 'cl100k_base', 'r50k_base'])('--json %s: the ids decode to the ChatML text', async (name) => {
    const r = await wgpt('chat', 'render', '-e', name, '-f', conv, '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { encoding: string; ids: number[]; mask: number[] };
    expect(out.encoding).toBe(name);
    const text = MESSAGES.map((m) => `<|im_start|>${m.role}<|im_sep|>${m.content}<|im_end|>`).join('');
    // Decoded with the plain encoding plus the markers' ids (r50k_base has none of its own).
    const ids = { o200k_base: 200264, cl100k_base: 100264, r50k_base: 50257 }[name]!;
    const markers = ['<|im_start|>', '<|im_end|>', '<|im_sep|>'];
    const decoded = out.ids
      .map((id) => (id >= ids && id < ids + 3 ? markers[id - ids] : getEncoding(name as 'r50k_base').decode([id])))
      .join('');
    expect(decoded).toBe(text);
    // Trained: what follows the last <|im_sep|> (the assistant's reply and its <|im_end|>).
    expect(out.mask.filter((m) => m === 1)).toHaveLength(out.ids.length - out.ids.lastIndexOf(ids + 2) - 1);
  });

  it.each([
    [['-e', 'gpt5'], 2, /^wgpt: --encoding: "gpt5" is neither an encoding \(r50k_base, cl100k_base, o200k_base\) nor/],
    [
      ['-e', 'r50k_base', '-f', join(dir, 'none.json')],
      1,
      /^wgpt: .*none\.json: cannot read \(no such file or folder\)\n$/,
    ],
    [['-e', 'r50k_base', '-f', file('broken.json', '{"messages": [')], 1, /^wgpt: .*broken\.json: invalid JSON \(/],
    [['-e', 'r50k_base', '-f', file('list.json', '[]')], 1, /^wgpt: .*list\.json: expected \{"messages": \[\{"role"/],
    [['-e', 'r50k_base', '-f', file('empty.json', '{"messages": []}')], 1, /^wgpt: .*empty\.json: "messages" is empty/],
    [
      ['-e', 'r50k_base', '-f', file('tool.json', '{"messages": [{"role": "tool", "content": "x"}]}')],
      1,
      /^wgpt: .*tool\.json: message 1 has role "tool"; expected system, user, assistant\n$/,
    ],
  ])('%j: one line, exit status %i', async (args, code, message) => {
    const base = ['chat', 'render', ...(args as string[])];
    const r = await wgpt(...(base.includes('-f') ? base : [...base, '-f', conv]));
    expect(r.code).toBe(code);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message as RegExp);
    expect(r.stderr.trimEnd()).not.toContain('\n');
  });
});

describe('wgpt chat synth and stats', () => {
  it('synth: the same seed writes the same bytes, no overwriting; stats reports the wasted share', async () => {
    const a = join(dir, 'a.jsonl');
    const b = join(dir, 'b.jsonl');
    expect(await wgpt('chat', 'synth', '--out', a, '--count', '200', '--seed', '5')).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/^wrote 200 conversations \(\d+ messages, \d+ bytes\) to .*a\.jsonl\n$/),
    });
    await wgpt('chat', 'synth', '-o', b, '-n', '200', '--seed', '5');
    expect(readFileSync(a)).toEqual(readFileSync(b));
    const again = await wgpt('chat', 'synth', '-o', a, '-n', '3');
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^wgpt: .*a\.jsonl already exists; choose another --out, or pass --overwrite/);

    const s = await wgpt('chat', 'stats', '-f', a, '-e', 'r50k_base', '-T', '256');
    expect(s.code).toBe(0);
    expect(s.stdout).toMatch(/^.*a\.jsonl: 200 lines, 200 conversations \(openai 200\); none skipped\n/);
    expect(s.stdout).toMatch(/\nT=256 pack: \d+ rows, \d+ padding tokens, wasted \d+\.\d%/);
    const j = JSON.parse((await wgpt('chat', 'stats', '-f', a, '-e', 'r50k_base', '-T', '256', '--json')).stdout);
    expect(j.pack.padding).toBe(j.pack.rows * 256 - j.tokens);
    expect(j.pad.rows).toBe(200);
    expect(j.pad.wastedShare).toBeCloseTo(1 - j.tokens / (200 * 256), 12);
  });

  it('stats: a bad line stops with file:line, --skip-invalid counts it; too long for -T needs --truncate', async () => {
    const good = JSON.stringify({
      messages: [
        { role: 'user', content: 'q' },
        { role: 'assistant', content: 'a' },
      ],
    });
    const f = file('mixed.jsonl', `${good}\n{"messages": 3}\n${good}\n`);
    const r = await wgpt('chat', 'stats', '-f', f, '-e', 'r50k_base');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^wgpt: .*mixed\.jsonl:2: not a conversation in a known format/);
    const skip = await wgpt('chat', 'stats', '-f', f, '-e', 'r50k_base', '--skip-invalid');
    expect(skip.stdout).toMatch(/3 lines, 2 conversations \(openai 2\); skipped unknown-format 1\n/);
    const long = await wgpt('chat', 'stats', '-f', f, '-e', 'r50k_base', '--skip-invalid', '-T', '8');
    expect(long.code).toBe(1);
    expect(long.stderr).toMatch(/^wgpt: .*mixed\.jsonl:1: 11 tokens do not fit in a row of T=8; raise T, or pass/);
    const cut = await wgpt('chat', 'stats', '-f', f, '-e', 'r50k_base', '--skip-invalid', '-T', '8', '--truncate');
    expect(cut.stdout).toMatch(/T=8 pack: 2 rows, 0 padding tokens, .* 2 truncated \(6 tokens cut\)\n/);
  });

  it.each([
    ['synth', '--count', ['0', '-1', '2.5', 'x']],
    ['synth', '--seed', ['-1', '4294967296', '1.5']],
    ['stats', '--seq', ['1', '0', 'x']],
    ['stats', '--seed', ['-1', '4294967296']],
  ] as const)('%s %s: bad values are usage errors naming the flag', async (command, flag, values) => {
    const base = command === 'synth' ? ['-o', join(dir, 'never.jsonl')] : ['-f', conv, '-e', 'r50k_base'];
    for (const v of values) {
      const r = await wgpt('chat', command, ...base, `${flag}=${v}`);
      expect(r.code, `${flag}=${v}`).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`^wgpt: option '.*${flag} <n>' argument '${v}' is invalid\\. `));
    }
  });
});
