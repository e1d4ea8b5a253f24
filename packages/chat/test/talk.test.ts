// `wgpt chat` as users run it (node scripts/wgpt.mjs chat ...), in child processes, on crafted models
// (test/crafted.ts): --once and --json with their exact output, the checks of checkpoint and tokenizer, and the REPL
// driven through stdin (each step waits for the next prompt on stdout, never on time) and stopped by SIGINT.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Tiktoken } from 'js-tiktoken/lite';
import gpt2 from 'js-tiktoken/ranks/gpt2';
import { beforeAll, describe, expect, it } from 'vitest';
import { getEncoding } from '@wgpt/tokenizer';
import { chatFormat, HELP, PROMPT } from '../src/index.ts';
import { craftChatModel, writeCraftedCheckpoint } from './crafted.ts';

const ROOT = new URL('../../..', import.meta.url).pathname;
const run = promisify(execFile);
const cf = chatFormat(getEncoding('r50k_base'));
const IM_END = 50258;
const reference = new Tiktoken(gpt2, { '<|im_start|>': 50257, '<|im_end|>': IM_END, '<|im_sep|>': 50259 });
const tokens = (chatml: string) => reference.encode(chatml, 'all').length;
/** One regular expression from pieces, for lines too long to write as one. */
const line = (...parts: RegExp[]) => new RegExp(parts.map((p) => p.source).join(''));

const REPLY = 'Hi! I am crafted.';
const dir = mkdtempSync(join(tmpdir(), 'wgpt-chat-talk-'));
const hello = join(dir, 'hello'); // chat_format.json beside model.bin
const bare = join(dir, 'bare'); // the same model, no chat_format.json
const loop = join(dir, 'loop'); // "Singing: la la la ..." until stopped
const tiny = join(ROOT, 'tests/fixtures/gpt2-tiny/model.bin'); // V = 61: no room for the markers

beforeAll(() => {
  const m = craftChatModel(cf, { reply: REPLY, maxT: 64 });
  writeCraftedCheckpoint(hello, cf, m);
  writeCraftedCheckpoint(bare, cf, m, false);
  writeCraftedCheckpoint(loop, cf, craftChatModel(cf, { reply: 'Singing: la', end: 'loop', maxT: 1024 }));
});

async function wgpt(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('node', ['scripts/wgpt.mjs', ...args], { cwd: ROOT, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('wgpt chat --once', () => {
  it('prints the reply, which ends at <|im_end|>, and nothing else (no chat_format.json: V is checked)', async () => {
    expect(await wgpt('chat', '--checkpoint', bare, '--once', 'Hello?', '--temperature', '0')).toEqual({
      code: 0,
      stdout: `${REPLY}\n`,
      stderr: '',
    });
  });

  it('--json: the prompt (system message, question, opener), the ids, the text, why it stopped', async () => {
    const args = ['chat', 'talk', '--checkpoint', hello, '--temperature', '0', '--json', '--tokenizer', 'r50k_base'];
    const r = await wgpt(...args, '--system', 'Be brief.', '--once', 'What is 2+2? 🤖');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const prompt = '<|im_start|>system<|im_sep|>Be brief.<|im_end|><|im_start|>user<|im_sep|>What is 2+2? 🤖<|im_end|>';
    expect(JSON.parse(r.stdout)).toEqual({
      prompt_ids: reference.encode(`${prompt}<|im_start|>assistant<|im_sep|>`, 'all'),
      ids: [...reference.encode(REPLY), IM_END],
      text: REPLY,
      stopped: 'im_end',
    });
    expect(r.stdout.endsWith('}\n')).toBe(true);
  });

  it('--max-tokens: the reply stops there, and says so (on stderr; in --json as "stopped")', async () => {
    const args = ['chat', '--checkpoint', hello, '--temperature', '0', '--max-tokens', '3', '--once', 'Hi'];
    expect(await wgpt(...args)).toEqual({
      code: 0,
      stdout: 'Hi! I\n',
      stderr: 'wgpt chat: the reply stopped at --max-tokens 3, before its <|im_end|>\n',
    });
    const j = await wgpt(...args, '--json');
    expect(JSON.parse(j.stdout)).toMatchObject({
      ids: reference.encode('Hi! I'),
      text: 'Hi! I',
      stopped: 'max_tokens',
    });
  });

  const long = 'word '.repeat(60);
  it.each([
    [['--checkpoint', hello, '--tokenizer', 'gpt5'], 2, /^wgpt: --tokenizer: "gpt5" is neither an encoding \(/],
    [
      ['--checkpoint', hello, '--tokenizer', 'cl100k_base'],
      1,
      line(
        /^wgpt: .*hello\/chat_format\.json: the checkpoint's chat format is not this one /,
        /\(encoding "r50k_base" there, "cl100k_base" here; .*use the encoding or tokenizer folder it was made with\n$/,
      ),
    ],
    [
      ['--checkpoint', tiny],
      1,
      line(
        /^wgpt: .*model\.bin: the model's vocabulary \(V=61\) is too small for the chat markers of r50k_base /,
        /\(.* ids 50257, 50258, 50259; V ≥ 50260 needed\): it was not fine-tuned for chat\. Fine-tune it/,
      ),
    ],
    [
      ['--checkpoint', bare, '--tokenizer', 'o200k_base'],
      1,
      /^wgpt: .*bare: the model's vocabulary \(V=50260\) is too small for the chat markers of o200k_base \(/,
    ],
    [['--checkpoint', join(dir, 'none')], 1, /^wgpt: .*none: no such checkpoint\n$/],
    [['--checkpoint', hello, '--json'], 2, /^wgpt: --json goes with --once/],
    [['--checkpoint', hello, '--once', ' '], 2, /^wgpt: --once: the question is empty\n$/],
    [
      ['--checkpoint', hello, '--once', long],
      2,
      new RegExp(
        `^wgpt: --once: the question is ${tokens(`<|im_start|>user<|im_sep|>${long}<|im_end|>`)} tokens: with the ` +
          "system message \\(0\\) and a reply of up to 32 tokens it passes the model's context of 64 tokens; shorten",
      ),
    ],
    [
      ['--checkpoint', hello, '--system', long, '--once', 'Hi'],
      2,
      /^wgpt: --system: the system message is \d+ tokens: with a question and a reply of up to 32 tokens it passes/,
    ],
    [['--checkpoint', hello, '--max-tokens', '64'], 2, /^wgpt: --max-tokens 64 leaves no room for a prompt in the/],
    [['--checkpoint', hello, '--temperature', '-1'], 2, /^wgpt: option '--temperature <x>' argument '-1' is invalid/],
    [[], 2, /^wgpt: required option '--checkpoint <path>' not specified\n$/],
  ])('%j: one line, exit status %i', async (args, code, message) => {
    const r = await wgpt('chat', ...(args as string[]));
    expect(r.code, r.stderr).toBe(code);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message as RegExp);
    expect(r.stderr.trimEnd()).not.toContain('\n');
  });
});

/** `wgpt chat` in a child process: lines go to its stdin; next() waits for its next prompt on stdout. */
class Repl {
  readonly proc: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private seen = 0;
  private waiters: (() => void)[] = [];

  constructor(args: string[]) {
    this.proc = spawn('node', ['scripts/wgpt.mjs', 'chat', ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    const wake = () => this.waiters.forEach((w) => w());
    this.proc.stdout!.on('data', (d: Buffer) => ((this.stdout += d), wake()));
    this.proc.stderr!.on('data', (d: Buffer) => ((this.stderr += d), wake()));
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => (resolve({ code, signal }), wake())));
  }

  /** Resolves once `ok()` holds; fails if the process ends first. */
  private until(ok: () => boolean, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (ok()) {
          this.waiters = this.waiters.filter((w) => w !== check);
          resolve();
        } else if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
          reject(new Error(`wgpt chat ended before ${what}:\n${this.stdout}\n${this.stderr}`));
        }
      };
      this.waiters.push(check);
      check();
    });
  }

  /** What the REPL printed from its previous prompt (or its start) up to its next prompt. */
  async next(): Promise<string> {
    const at = () => {
      const i = this.stdout.indexOf(`\n${PROMPT}`, this.seen);
      return i < 0 || i + 1 + PROMPT.length > this.stdout.length ? -1 : i + 1;
    };
    await this.until(() => at() >= 0, 'the next prompt');
    const i = at();
    const out = this.stdout.slice(this.seen, i);
    this.seen = i + PROMPT.length;
    return out;
  }

  /** Types a line; returns what the REPL printed up to its next prompt. */
  async say(line: string): Promise<string> {
    this.proc.stdin!.write(`${line}\n`);
    return this.next();
  }

  /** Resolves once the text after the last prompt matches `re`. */
  async waitFor(re: RegExp): Promise<void> {
    await this.until(() => re.test(this.stdout.slice(this.seen)), String(re));
  }
}

describe('the wgpt chat REPL', () => {
  it('answers, keeps the conversation, and carries out /temperature, /system, /reset, /help and /quit', async () => {
    const c = new Repl(['--checkpoint', hello, '--temperature', '0', '--max-tokens', '12']);
    expect(await c.next()).toMatch(
      line(
        /^wgpt chat: .*hello \(V=50260, context 64 tokens\), ChatML in r50k_base; /,
        /replies of up to 12 tokens, temperature 0\.\n\/help lists the commands; \/quit or Ctrl-D leaves\.\n$/,
      ),
    );
    expect(await c.say('Hi')).toBe(`${REPLY}\n`);
    expect(await c.say('/temperature')).toBe('[temperature 0]\n');
    expect(await c.say('/temperature 1')).toBe('[temperature 1]\n');
    // At temperature 1 the crafted model's next token is one of ~50k about as likely as it (a logit of about 8
    // against 0): the reply is another one.
    const random = await c.say('Hi');
    expect(random).not.toBe(`${REPLY}\n`);
    expect(await c.say('/temperature x')).toBe('[/temperature: "x" is not a number ≥ 0; e.g. /temperature 0.7]\n');
    expect(await c.say('/temperature 0')).toBe('[temperature 0 (greedy)]\n');
    expect(await c.say('/reset')).toBe('[new conversation]\n');

    // A system message long enough that, with one turn before it, the next question leaves no room for a reply
    // of 12 tokens in the context of 64: the oldest turn is dropped then, and only then.
    const system =
      'You are a helpful assistant. You answer in one short sentence, and you never answer with a list or a table.';
    const sys = tokens(`<|im_start|>system<|im_sep|>${system}<|im_end|>`);
    const question = tokens('<|im_start|>user<|im_sep|>Hi<|im_end|><|im_start|>assistant<|im_sep|>');
    const turn = question + tokens(`${REPLY}<|im_end|>`);
    expect(sys + question + 12).toBeLessThanOrEqual(64);
    expect(sys + turn + question + 12).toBeGreaterThan(64);
    expect(await c.say(`/system ${system}`)).toBe('[system message set]\n');
    // Without the /reset, the two turns before it would not fit with the system message: nothing is dropped here.
    expect(await c.say('Hi')).toBe(`${REPLY}\n`);
    expect(await c.say('Hi')).toBe(
      `${REPLY}\n[dropped the oldest turn to fit the context of 64 tokens; 0 earlier turns kept]\n`,
    );
    expect(await c.say('/system')).toBe('[system message removed]\n');
    expect(await c.say('Hi')).toBe(`${REPLY}\n`);
    expect(await c.say('/reset')).toBe('[new conversation]\n');
    expect(await c.say('/help')).toBe(`${HELP}\n`);
    expect(await c.say('/nope')).toBe('[unknown command /nope; /help lists the commands]\n');
    expect(await c.say('//quit')).toBe(`${REPLY}\n`); // a message, not the command
    c.proc.stdin!.write('/quit\n');
    expect(await c.exited).toEqual({ code: 0, signal: null });
    expect(c.stdout.slice(-PROMPT.length)).toBe(PROMPT);
    expect(c.stderr).toBe('');
  });

  it('the end of the input (Ctrl-D) leaves after the reply in progress, with status 0', async () => {
    const c = new Repl(['--checkpoint', hello, '--temperature', '0']);
    await c.next();
    c.proc.stdin!.end('Hi\n');
    expect(await c.exited).toEqual({ code: 0, signal: null });
    expect(c.stdout.slice(c.stdout.lastIndexOf(`\n${PROMPT}${REPLY}`))).toBe(`\n${PROMPT}${REPLY}\n${PROMPT}\n`);
  });

  it('SIGINT (Ctrl-C) during a reply stops it, the turn is kept; at the prompt it leaves with status 130', async () => {
    const c = new Repl(['--checkpoint', loop, '--temperature', '0', '--max-tokens', '1000']);
    await c.next();
    c.proc.stdin!.write('Sing\n');
    await c.waitFor(/^Singing: la la/);
    c.proc.kill('SIGINT');
    const stopped = await c.next();
    expect(stopped).toMatch(/^Singing:( la)+\n\[stopped after (\d+) tokens; the turn is kept\]\n$/);
    const n = Number(/after (\d+) tokens/.exec(stopped)![1]);
    expect(n).toBeLessThan(1000);
    expect(stopped.split(' la').length - 1).toBe(n - 3); // "S", "inging", ":" and the la's
    c.proc.kill('SIGINT');
    expect(await c.exited).toEqual({ code: 130, signal: null });
    expect(c.stderr).toBe('');
  });
});
