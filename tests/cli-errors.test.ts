// How `wgpt` ends on bad input: one line `wgpt: <file or flag>: <what is wrong>`, no stack trace, exit status 2 for
// usage errors and 1 for failures. Every numeric flag of the commands in packages/cli, tokenizer and gpt2 is checked
// when the command line is parsed, before any work starts. main() runs in this process (each case fails before a
// GPU is opened); tests/cli.test.ts checks the real binary.
import { existsSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command, Option } from 'commander';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildProgram, main } from '@wgpt/cli';
import { ShardWriter } from '@wgpt/data';

/** Runs `wgpt ...args` in this process; returns the exit status and what went to stdout and stderr. */
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

// What each command needs besides the flag under test (parsing stops at the bad value before these are used).
const BASE: Record<string, string[]> = {
  train: ['train', '--data', 'x'],
  sample: ['sample', '--checkpoint', 'x'],
  eval: ['eval', '--checkpoint', 'x', '--tokens', 'y'],
  'tokenizer train': ['tokenizer', 'train', '-i', 'x', '-o', 'y'],
  selfcheck: ['selfcheck'],
  demo: ['demo'],
  bench: ['bench'],
  sft: ['sft', '--checkpoint', 'x'],
  'chat eval': ['chat', 'eval', '--checkpoint', 'x'],
  'chat synth': ['chat', 'synth', '-o', 'x'],
  'chat stats': ['chat', 'stats', '-f', 'x', '-e', 'r50k_base'],
  'chat talk': ['chat', 'talk', '--checkpoint', 'x'],
  probe: ['probe', '--checkpoint', 'x', '--questions', 'y', '--out', 'z'],
  'chat bio': ['chat', 'bio', '-o', 'x'],
  'chat refusals': ['chat', 'refusals', '--probe', 'x', '-o', 'y'],
  serve: ['serve'],
  'eval-factuality': ['eval-factuality', '--checkpoint', 'x', '--known', 'y', '--never-seen', 'z'],
  'experiment refusal': ['experiment', 'refusal'],
};

interface Row {
  command: keyof typeof BASE;
  /** The option's long flag. */
  flag: string;
  /** Values that must be refused, each for a reason the range states. */
  bad: string[];
  /** Values that must be accepted, with what they parse to. */
  good: [string, unknown][];
}

type Cmd = Row['command'];
const row = (command: Cmd, flag: string, bad: string[], good: Row['good']): Row => ({ command, flag, bad, good });
// Sizes are integers of at least 1; counts where 0 is off integers of at least 0; seeds fit in 32 bits.
const size = (command: Cmd, flag: string) =>
  row(
    command,
    flag,
    ['0', '-1', '2.5', 'x', ''],
    [
      ['1', 1],
      ['64', 64],
    ],
  );
const count = (command: Cmd, flag: string) =>
  row(
    command,
    flag,
    ['-1', '1.5', 'x'],
    [
      ['0', 0],
      ['25', 25],
    ],
  );
const seed = (command: Cmd) =>
  row(
    command,
    '--seed',
    ['-1', '4294967296', '1.5'],
    [
      ['0', 0],
      ['4294967295', 4294967295],
    ],
  );
const MODEL_SIZES = ['--depth', '--channels', '--heads', '--vocab', '--context'];

/** The flags of a training run, shared by train and sft. */
const runRows = (c: Cmd): Row[] => [
  ...['--batch', '--seq', '--total-batch', '--steps'].map((f) => size(c, f)),
  row(
    c,
    '--lr',
    ['0', '-1', 'NaN', 'Infinity', 'x'],
    [
      ['6e-4', 6e-4],
      ['1', 1],
    ],
  ),
  count(c, '--warmup'),
  row(
    c,
    '--final-lr-frac',
    ['-0.1', '1.5', 'x'],
    [
      ['0', 0],
      ['0.1', 0.1],
      ['1', 1],
    ],
  ),
  row(
    c,
    '--weight-decay',
    ['-0.1', 'x'],
    [
      ['0', 0],
      ['0.1', 0.1],
    ],
  ),
  row(
    c,
    '--grad-clip',
    ['-1', 'x'],
    [
      ['0', 0],
      ['1', 1],
    ],
  ),
  size(c, '--val-every'),
  size(c, '--val-batches'),
  count(c, '--sample-every'),
  size(c, '--sample-tokens'),
  count(c, '--checkpoint-every'),
  seed(c),
];

const TABLE: Row[] = [
  ...MODEL_SIZES.map((f) => size('train', f)),
  ...runRows('train'),
  ...runRows('sft'),
  row(
    'sft',
    '--val-frac',
    ['-0.1', '1', 'x'],
    [
      ['0', 0],
      ['0.05', 0.05],
    ],
  ),
  size('sft', '--synth'),
  size('chat eval', '--synth'),
  seed('chat eval'),
  size('chat eval', '--limit'),
  size('chat eval', '--max-tokens'),
  count('chat eval', '--show'),
  size('chat synth', '--count'),
  seed('chat synth'),
  row(
    'chat stats',
    '--seq',
    ['1', '0', 'x'],
    [
      ['2', 2],
      ['64', 64],
    ],
  ),
  seed('chat stats'),
  row(
    'chat talk',
    '--temperature',
    ['-1', 'x'],
    [
      ['0', 0],
      ['0.7', 0.7],
    ],
  ),
  size('chat talk', '--top-k'),
  row(
    'chat talk',
    '--top-p',
    ['0', '1.5', 'x'],
    [
      ['0.9', 0.9],
      ['1', 1],
    ],
  ),
  size('chat talk', '--max-tokens'),
  seed('chat talk'),
  count('demo', '--sft-steps'),
  size('probe', '--samples'),
  row(
    'probe',
    '--temperature',
    ['-1', 'x'],
    [
      ['0', 0],
      ['0.7', 0.7],
    ],
  ),
  size('probe', '--max-tokens'),
  seed('probe'),
  row(
    'probe',
    '--known-at',
    ['0', '1.5', 'x'],
    [
      ['0.5', 0.5],
      ['1', 1],
    ],
  ),
  row(
    'probe',
    '--unknown-at',
    ['-0.1', '1', 'x'],
    [
      ['0', 0],
      ['0.5', 0.5],
    ],
  ),
  row(
    'probe',
    '--f1',
    ['0', '1.5', 'x'],
    [
      ['0.8', 0.8],
      ['1', 1],
    ],
  ),
  size('chat bio', '--people'),
  count('chat bio', '--never-existed'),
  size('chat bio', '--docs'),
  seed('chat bio'),
  row(
    'chat refusals',
    '--refusal-fraction',
    ['-0.1', '1.5', 'x'],
    [
      ['0', 0],
      ['0.25', 0.25],
      ['1', 1],
    ],
  ),
  count('chat refusals', '--total'),
  seed('chat refusals'),
  row(
    'train',
    '--nproc',
    ['0', '1025', '1.5', 'x'],
    [
      ['1', 1],
      ['1024', 1024],
    ],
  ),
  row(
    'train',
    '--zero',
    ['-1', '2', '0.5', 'x'],
    [
      ['0', 0],
      ['1', 1],
    ],
  ),
  count('train', '--bucket-mb'),
  size('eval-factuality', '--max-tokens'),
  row(
    'eval-factuality',
    '--f1',
    ['0', '1.5', 'x'],
    [
      ['0.8', 0.8],
      ['1', 1],
    ],
  ),
  count('eval-factuality', '--show-replies'),
  ...['--known', '--docs', '--layers', '--channels', '--heads', '--batch', '--pretrain-steps', '--sft-steps']
    .concat(['--refusal-steps', '--samples'])
    .map((f) => size('experiment refusal', f)),
  row(
    'experiment refusal',
    '--seed',
    ['-1', '1.5', 'x'],
    [
      ['0', 0],
      ['7', 7],
    ],
  ),
  row(
    'experiment refusal',
    '--qa-share',
    ['0', '1.5', 'x'],
    [
      ['0.5', 0.5],
      ['1', 1],
    ],
  ),
  count('experiment refusal', '--never-train'),
  size('experiment refusal', '--never-eval'),
  row(
    'experiment refusal',
    '--vocab-size',
    ['299', '65537', 'x'],
    [
      ['300', 300],
      ['65536', 65536],
    ],
  ),
  row(
    'experiment refusal',
    '--context',
    ['15', 'x'],
    [
      ['16', 16],
      ['64', 64],
    ],
  ),
  row('experiment refusal', '--lr', ['0', '-1', 'x'], [['3e-3', 3e-3]]),
  row('experiment refusal', '--refusal-lr', ['0', '-1', 'x'], [['1e-3', 1e-3]]),
  row(
    'experiment refusal',
    '--temperature',
    ['-1', 'x'],
    [
      ['0', 0],
      ['0.7', 0.7],
    ],
  ),
  row(
    'sample',
    '--prompt-ids',
    ['1,x', '-1', '1,,2', '2.5', ''],
    [
      ['5', [5]],
      ['5, 9,2', [5, 9, 2]],
      ['0', [0]],
    ],
  ),
  size('sample', '--max-tokens'),
  row(
    'sample',
    '--temperature',
    ['-1', '-0.01', 'x'],
    [
      ['0', 0],
      ['0.7', 0.7],
      ['2', 2],
    ],
  ),
  size('sample', '--top-k'),
  row(
    'sample',
    '--top-p',
    ['0', '-0.5', '1.5', 'x'],
    [
      ['0.9', 0.9],
      ['1', 1],
    ],
  ),
  seed('sample'),
  row(
    'sample',
    '--stop',
    ['x', '1,-2', '3.5'],
    [
      ['61', [61]],
      ['9999,0', [9999, 0]],
    ],
  ),
  ...['--batch', '--seq', '--batches'].map((f) => size('eval', f)),
  row(
    'tokenizer train',
    '--vocab-size',
    ['255', '2097153', '300.5', 'x'],
    [
      ['256', 256],
      ['1000', 1000],
    ],
  ),
  size('selfcheck', '--steps'),
  size('selfcheck', '--hidden'),
  seed('selfcheck'),
  row(
    'demo',
    '--steps',
    ['1', '0', 'x'],
    [
      ['2', 2],
      ['200', 200],
    ],
  ),
  row(
    'demo',
    '--vocab-size',
    ['256', '2.5', 'x'],
    [
      ['257', 257],
      ['512', 512],
    ],
  ),
  row('bench', '--filter', ['(', '[a-'], [['matmul|gelu', 'matmul|gelu']]),
  row(
    'serve',
    '--port',
    ['-1', '65536', '1.5', 'x', ''],
    [
      ['0', 0],
      ['8080', 8080],
      ['65535', 65535],
    ],
  ),
  row(
    'serve',
    '--max-upload-mb',
    ['0', '-1', '2.5', 'x', '16385'],
    [
      ['1', 1],
      ['16384', 16384],
    ],
  ),
];

function commandAt(program: Command, path: string): Command {
  let c = program;
  for (const name of path.split(' ')) c = c.commands.find((x) => x.name() === name)!;
  return c;
}

function optionOf(program: Command, row: Row): Option {
  const o = commandAt(program, row.command).options.find((x) => x.long === row.flag);
  if (!o) throw new Error(`${row.command} has no option ${row.flag}`);
  return o;
}

describe('numeric flags', () => {
  it('every flag that takes a number or a list of numbers is in the table', () => {
    const program = buildProgram();
    const listed = new Set(TABLE.map((r) => `${r.command} ${r.flag}`));
    const numeric: string[] = [];
    for (const path of Object.keys(BASE)) {
      for (const o of commandAt(program, path).options) {
        if (/<(n|x|tokens|ids)>/.test(o.flags)) numeric.push(`${path} ${o.long}`);
      }
    }
    expect(numeric.length).toBeGreaterThan(30);
    expect(numeric.filter((k) => !listed.has(k))).toEqual([]);
  });

  it('accepts the values at the edges of each range', () => {
    const program = buildProgram();
    for (const row of TABLE) {
      const o = optionOf(program, row);
      for (const [value, parsed] of row.good) {
        expect(o.parseArg!(value, undefined), `${row.command} ${row.flag} ${value}`).toEqual(parsed);
      }
    }
  });

  it('refuses each bad value with one line naming the flag, exit status 2', async () => {
    const program = buildProgram();
    for (const row of TABLE) {
      const o = optionOf(program, row);
      for (const value of row.bad) {
        const r = await wgpt(...BASE[row.command]!, `${row.flag}=${value}`);
        const what = `${row.command} ${row.flag}=${value}`;
        expect(r.code, what).toBe(2);
        expect(r.stdout, what).toBe('');
        const flags = o.flags.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        expect(r.stderr, what).toMatch(new RegExp(`^wgpt: option '${flags}' argument '.*' is invalid\\. [^\\n]+\\n$`));
      }
    }
  });
});

describe('flags checked against each other before any work starts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wgpt-flags-'));
  const w = new ShardWriter({ dir, prefix: 'f', split: 'train', part: 0, nVocab: 61 });
  w.addDocument(Array.from({ length: 100 }, (_, i) => i % 61));
  w.close();
  const train = ['train', '--data', dir, '--vocab', '61', '--out', join(dir, 'run')];

  it.each([
    [['--channels', '10', '--heads', '3'], /^wgpt: --channels 10 is not a multiple of --heads 3\n$/],
    [['--context', '16', '-T', '32'], /^wgpt: -T, --seq 32 exceeds the model's context 16 \(--context\)\n$/],
    [
      ['-B', '2', '-T', '8', '--total-batch', '100'],
      /^wgpt: --total-batch 100 is not a multiple of B·T = 2·8 = 16 tokens/,
    ],
    [['--tokenizer', 'no-such-tokenizer'], /^wgpt: --tokenizer: unknown tokenizer "no-such-tokenizer": /],
    [['--zero', '1'], /^wgpt: --zero 1 shards the optimizer across ranks: give --nproc 2 or more, or leave it out\n$/],
    [['--preset', 'd13'], /^wgpt: option '--preset <name>' argument 'd13' is invalid\. Allowed choices are d12, d24, /],
  ])('train %j', async (extra, message) => {
    const r = await wgpt(...train, ...(extra as string[]));
    expect(r.stderr).toMatch(message as RegExp);
    expect(r.code).toBe(2);
  });
});

describe('each kind of error through the CLI: one line, the right exit status', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wgpt-errors-'));
  const text = join(dir, 'a.txt');
  writeFileSync(text, 'The quick brown fox jumps over the lazy dog. '.repeat(50));
  const aFile = join(dir, 'plain-file');
  writeFileSync(aFile, 'x');
  // A tokenizer folder whose JSON is broken, and one whose rank file does not match its hash.
  const badJson = join(dir, 'bad-json');
  mkdirSync(badJson);
  writeFileSync(join(badJson, 'tokenizer.json'), '{ "format": ');
  const badRanks = join(dir, 'bad-ranks');
  mkdirSync(badRanks);
  const config = { format: 'wgpt-bpe', pattern: 'gpt2', specialTokens: {}, rankFileSha256: '0'.repeat(64) };
  writeFileSync(join(badRanks, 'tokenizer.json'), JSON.stringify(config));
  writeFileSync(join(badRanks, 'tokenizer.tiktoken'), 'YQ== 0\n');
  // A checkpoint folder whose model.bin is a folder, and one without model.bin.
  const ckptDir = join(dir, 'ckpt-dir');
  mkdirSync(join(ckptDir, 'model.bin'), { recursive: true });
  const ckptEmpty = join(dir, 'ckpt-empty');
  mkdirSync(ckptEmpty);
  // A tokenizer output folder whose rank file is /dev/full: every write fails with ENOSPC.
  const full = join(dir, 'full');
  mkdirSync(full);
  const devFull = existsSync('/dev/full');
  if (devFull) symlinkSync('/dev/full', join(full, 'tokenizer.tiktoken'));
  const tiny = 'tests/fixtures/gpt2-tiny/model.bin';
  const tokTrain = (out: string) => ['tokenizer', 'train', '-i', text, '-n', '260', '-o', out];

  /** The one line expected: `wgpt: <path>: <what>`, then anything matching `rest`. */
  const about = (path: string, what: string, rest = '$') =>
    new RegExp(`^wgpt: ${`${path}: ${what}`.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}${rest}`);
  const cases: [string, string[], number, RegExp][] = [
    ['UsageError (tokenizer)', ['tokenize', '-e', 'r50k_base'], 2, /^wgpt: give exactly one of --text T or --file F$/],
    [
      'CliError',
      ['tokenize', '-e', 'r50k_base', '--decode', '--text', '1 x'],
      1,
      about('--text:1', '"x" is not a token id'),
    ],
    [
      'CliError (input)',
      ['tokenize', '--file', join(dir, 'nope')],
      1,
      about(join(dir, 'nope'), 'cannot read: no such file or folder'),
    ],
    [
      'TokenizerConfigError',
      ['tokenize', '--tokenizer', badJson, '-t', 'x'],
      1,
      about(join(badJson, 'tokenizer.json'), 'invalid JSON (', ''),
    ],
    [
      'RankFileError',
      ['tokenize', '--tokenizer', badRanks, '-t', 'x'],
      1,
      about(join(badRanks, 'tokenizer.tiktoken'), 'sha256 ', '[0-9a-f]{64} does'),
    ],
    [
      'WgptError (gpt2)',
      ['sample', '--checkpoint', join(dir, 'none.bin')],
      1,
      about(join(dir, 'none.bin'), 'no such checkpoint'),
    ],
    [
      'WgptError (no model.bin)',
      ['sample', '--checkpoint', ckptEmpty],
      1,
      about(ckptEmpty, 'no checkpoint there (no model.bin)'),
    ],
    [
      'EISDIR',
      ['sample', '--checkpoint', ckptDir],
      1,
      about(join(ckptDir, 'model.bin'), 'is a folder where a file is expected'),
    ],
    [
      'EISDIR (eval)',
      ['eval', '--checkpoint', tiny, '--tokens', dir, '-T', '8'],
      1,
      about(dir, 'is a folder where a file is expected'),
    ],
    ['ENOTDIR', tokTrain(join(aFile, 'tok')), 1, about(join(aFile, 'tok'), 'a part of the path is not a folder')],
    ['EEXIST', ['demo', '--out', aFile], 1, about(aFile, 'already exists: remove it or choose another name')],
    ['commander: unknown option', ['tokenize', '--text', 'x', '--bogus'], 2, /^wgpt: unknown option '--bogus'$/],
    [
      'commander: missing option',
      ['eval', '--checkpoint', 'x'],
      2,
      /^wgpt: required option '--tokens <shard>' not specified$/,
    ],
    ['commander: unknown command', ['trian'], 2, /^wgpt: unknown command 'trian' \(did you mean train\?\)$/],
    [
      'WgptError (serve)',
      ['serve', '--port', '0', '--checkpoint', aFile],
      1,
      about(aFile, "1 bytes is too short for llm.c's 1024-byte header"),
    ],
    [
      'TokenizerConfigError (serve)',
      ['serve', '--port', '0', '--tokenizer', badJson],
      1,
      about(join(badJson, 'tokenizer.json'), 'invalid JSON (', ''),
    ],
    ['UsageError (serve)', ['serve', '--host', ' '], 2, /^wgpt: --host: empty; give an address such as 127\.0\.0\.1$/],
  ];
  const noSpace = 'no space left on the device: free some space or write somewhere else';
  if (devFull) cases.push(['ENOSPC', tokTrain(full), 1, about(join(full, 'tokenizer.tiktoken'), noSpace)]);

  it.each(cases)('%s', async (_, args, code, message) => {
    const r = await wgpt(...args);
    // Progress lines of `tokenizer train` aside, stderr holds the one line.
    const progress = /^\r?(reading|merges|\d+ unique chunks)/;
    const lines = r.stderr.split('\n').filter((l) => l && !progress.test(l));
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.code).toBe(code);
  });

  it('--debug adds the stack trace', async () => {
    const r = await wgpt('--debug', 'tokenize', '--file', join(dir, 'missing.txt'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^wgpt: CliError: .*missing\.txt: cannot read: no such file or folder\n\s+at /);
  });
});
