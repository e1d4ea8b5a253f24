// `wgpt probe` on a hand-made model whose greedy reply is always the same sentence: questions whose reference is in
// that sentence are known, the others unknown; the per-question lines, the report, and the errors as users see them.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { chatFormat, REFUSALS } from '../src/index.ts';
import { getEncoding } from '@wgpt/tokenizer';
import { craftChatModel, writeCraftedCheckpoint } from './crafted.ts';

const ROOT = new URL('../../..', import.meta.url).pathname;
const run = promisify(execFile);
const cf = chatFormat(getEncoding('r50k_base'));
const REPLY = 'She was born in Lisbon.';
const dir = mkdtempSync(join(tmpdir(), 'wgpt-chat-probe-'));
const ckpt = join(dir, 'model');
const questions = join(dir, 'q.jsonl');

const line = (question: string, reply: string, answer?: string) =>
  `${JSON.stringify({
    messages: [
      { role: 'user', content: question },
      { role: 'assistant', content: reply },
    ],
    answer,
  })}\n`;

beforeAll(() => {
  writeCraftedCheckpoint(ckpt, cf, craftChatModel(cf, { reply: REPLY, maxT: 64 }));
  writeFileSync(
    questions,
    line('Where was Ada Varga born?', 'Ada Varga was born in Lisbon.', 'Lisbon') +
      '\n' +
      line('Where was Bruno Novak born?', 'Bruno Novak was born in Porto.', 'Porto') +
      line('Where was she born?', REPLY),
  );
});

async function wgpt(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('node', ['scripts/wgpt.mjs', ...args], { cwd: ROOT, timeout: 300_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

const args = (out: string, ...more: string[]) => [
  'probe',
  '--checkpoint',
  ckpt,
  '--tokenizer',
  'r50k_base',
  '--questions',
  questions,
  '--samples',
  '2',
  '--temperature',
  '0',
  '--out',
  out,
  ...more,
];

describe('wgpt probe', () => {
  it('samples, judges and classifies each question; one line per question and a report', async () => {
    const out = join(dir, 'probe.jsonl');
    const r = await wgpt(...args(out, '--json'));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      questions: 3,
      known: 2,
      unknown: 1,
      uncertain: 0,
      samples: { right: 4, wrong: 2, refusal: 0, empty: 0 },
    });
    const lines = readFileSync(out, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.reference, l.replies, l.verdicts, l.rightFraction, l.knowledge])).toEqual([
      ['Lisbon', [REPLY, REPLY], ['right', 'right'], 1, 'known'],
      ['Porto', [REPLY, REPLY], ['wrong', 'wrong'], 0, 'unknown'],
      // No "answer" on the line: the reference is the assistant's reply.
      [REPLY, [REPLY, REPLY], ['right', 'right'], 1, 'known'],
    ]);
    expect(lines[0].messages).toEqual([{ role: 'user', content: 'Where was Ada Varga born?' }]);
    expect([lines[1].answer, lines[1].reply]).toEqual(['Porto', 'Bruno Novak was born in Porto.']);

    // The plain report; an existing --out is kept unless --overwrite.
    const again = await wgpt(...args(out));
    expect(again.code).toBe(2);
    expect(again.stderr).toBe(`wgpt: --out ${out} already exists; choose another, or pass --overwrite to replace it\n`);
    const plain = await wgpt(...args(out, '--overwrite'));
    expect(plain.code).toBe(0);
    expect(plain.stdout).toBe(
      '3 questions, 2 samples each at temperature 0: known 2, unknown 1, uncertain 0\n' +
        'samples: right 4, wrong 2, refusal 0, empty 0\n' +
        `per question: ${out}\n`,
    );
  });

  it('wgpt chat refusals turns probed questions into fine-tuning data', async () => {
    const probed = join(dir, 'probed.jsonl');
    expect((await wgpt(...args(probed))).code).toBe(0);
    const out = join(dir, 'sft.jsonl');
    const r = await wgpt('chat', 'refusals', '--probe', probed, '-o', out, '--refusal-fraction', '0.5');
    expect(r.stderr).toBe('');
    // 2 known, 1 unknown: at one half, 1 refusal and 1 answer fit (3 would need round(1.5) = 2 refusals).
    expect(r.stdout).toBe(
      `${probed}: 2 known and 1 unknown questions (0 uncertain left out); ` +
        `wrote 2 conversations, 1 of them refusals, to ${out}\n`,
    );
    const convs = readFileSync(out, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l).messages);
    const refusal = convs.find((m) => m[0].content === 'Where was Bruno Novak born?');
    expect(REFUSALS).toContain(refusal[1].content);
    const answer = convs.find((m) => m !== refusal);
    expect([
      [
        { role: 'user', content: 'Where was Ada Varga born?' },
        { role: 'assistant', content: 'Ada Varga was born in Lisbon.' },
      ],
      [
        { role: 'user', content: 'Where was she born?' },
        { role: 'assistant', content: REPLY },
      ],
    ]).toContainEqual(answer);

    const bad = join(dir, 'bad-probed.jsonl');
    writeFileSync(bad, readFileSync(probed, 'utf8').replace('"knowledge":"unknown"', '"knowledge":"maybe"'));
    const e = await wgpt('chat', 'refusals', '--probe', bad, '-o', join(dir, 'none.jsonl'));
    expect(e).toMatchObject({
      code: 1,
      stderr:
        `wgpt: ${bad}:2: "knowledge" is not one of known, unknown, uncertain; ` +
        "expected a line of wgpt probe's output\n",
    });
    expect(existsSync(join(dir, 'none.jsonl'))).toBe(false);
  });

  it('wgpt chat bio writes the data to probe', async () => {
    const out = join(dir, 'bio');
    const r = await wgpt('chat', 'bio', '-o', out, '--people', '4', '--never-existed', '2', '--docs', '2');
    expect(r).toEqual({
      code: 0,
      stdout:
        'wrote 8 documents about 4 people, 24 questions about them and 12 about 2 people who never existed ' +
        `to ${out}\n`,
      stderr: '',
    });
    expect(readFileSync(join(out, 'questions.jsonl'), 'utf8').split('\n')).toHaveLength(25);
  });

  it('bad thresholds and bad question lines are one-line errors, and no output is left', async () => {
    const out = join(dir, 'bad.jsonl');
    const t = await wgpt(...args(out, '--known-at', '0.5', '--unknown-at', '0.5'));
    expect(t).toMatchObject({ code: 2, stderr: 'wgpt: --unknown-at 0.5 must be below --known-at 0.5\n' });
    const bad = join(dir, 'bad-q.jsonl');
    const cases: [string, string][] = [
      [
        JSON.stringify({ messages: [{ role: 'assistant', content: 'Hi.' }] }),
        'no user question answered by the assistant',
      ],
      [
        JSON.stringify({ messages: [{ role: 'user', content: 'Hi?' }], answer: 'x' }),
        'has no assistant message; fix the line',
      ],
      [line('Where?', 'There.').replace('}]}', '}], "answer": 1}').trimEnd(), '"answer" must be a non-empty string'],
    ];
    for (const [text, why] of cases) {
      writeFileSync(bad, `${line('Where?', 'There.', 'There')}${text}\n`);
      const q = await wgpt(...args(out).map((a) => (a === questions ? bad : a)));
      expect(q.code, text).toBe(1);
      expect(q.stderr, text).toMatch(
        new RegExp(`^wgpt: ${bad}:2: [^\\n]*${why.replace(/[.*?"]/g, '\\$&')}[^\\n]*\\n$`),
      );
      expect(existsSync(out), text).toBe(false);
    }
  });
});

describe('wgpt eval-factuality', () => {
  // The crafted model says REPLY to everything: right where the reference is Lisbon, wrong elsewhere; a second one
  // says a refusal to everything. The rates follow by hand from the four questions.
  it('judges greedy replies into the rates, as a table and as JSON', async () => {
    const known = join(dir, 'known.jsonl');
    const never = join(dir, 'never.jsonl');
    writeFileSync(
      known,
      line('Where was Ada Varga born?', 'x', 'Lisbon') + line('Where was Bruno Novak born?', 'x', 'Porto'),
    );
    writeFileSync(
      never,
      line('Where was Celia Brandt born?', 'x', 'Oslo') + line('Where was Dario Costa born?', 'x', 'Lisbon'),
    );
    const flags = ['--tokenizer', 'r50k_base', '--known', known, '--never-seen', never];
    const r = await wgpt('eval-factuality', '--checkpoint', ckpt, ...flags, '--json');
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout).metrics).toEqual({
      known: { n: 2, accuracy: 0.5, overRefusal: 0, hallucination: 0.5 },
      // A lucky guess about someone the model cannot know is a hallucination too.
      neverSeen: { n: 2, refusal: 0, hallucination: 1 },
      hallucination: 0.75,
    });
    const table = await wgpt('eval-factuality', '--checkpoint', ckpt, ...flags, '--show-replies', '1');
    expect(table.stdout).toBe(
      [
        'questions: 2 about known people, 2 about never-seen',
        '                                    rate',
        'known facts: accuracy              50.0%',
        'known facts: over-refusal           0.0%',
        'known facts: hallucination         50.0%',
        'never-seen people: refusal          0.0%',
        'never-seen people: hallucination  100.0%',
        'hallucination, both sets           75.0%',
        `${known}:1: Where was Ada Varga born? -> ${REPLY} [right]`,
        `${never}:1: Where was Celia Brandt born? -> ${REPLY} [wrong]`,
        '',
      ].join('\n'),
    );

    const refuser = join(dir, 'refuser');
    writeCraftedCheckpoint(refuser, cf, craftChatModel(cf, { reply: REFUSALS[1]!, maxT: 64 }));
    const s = await wgpt('eval-factuality', '--checkpoint', refuser, ...flags, '--json');
    expect(JSON.parse(s.stdout).metrics).toEqual({
      known: { n: 2, accuracy: 0, overRefusal: 1, hallucination: 0 },
      neverSeen: { n: 2, refusal: 1, hallucination: 0 },
      hallucination: 0,
    });
  });
});
