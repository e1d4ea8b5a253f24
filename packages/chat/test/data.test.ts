// Conversation data: the three line formats, oasst trees flattened to paths best-ranked first, and every kind of
// unusable line named by file and line (or skipped and counted per reason), with the good lines around it kept.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type ChatMessage,
  ConversationDataError,
  INVALID_REASONS,
  parseConversationLine,
  readConversationFile,
  readConversations,
} from '../src/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'wgpt-chat-data-'));
let files = 0;
function jsonl(lines: (object | string)[]): string {
  const f = join(dir, `data-${files++}.jsonl`);
  writeFileSync(f, lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n');
  return f;
}

const u = (content: string): ChatMessage => ({ role: 'user', content });
const a = (content: string): ChatMessage => ({ role: 'assistant', content });
const s = (content: string): ChatMessage => ({ role: 'system', content });

/** An oasst message (the export's fields; the rest of its fields are left out). */
const node = (
  role: 'prompter' | 'assistant',
  text: string,
  rank: number | null,
  replies: object[] = [],
  extra = {},
) => ({
  message_id: `id-${text.replace(/\W/g, '')}`,
  role,
  text,
  rank,
  lang: 'en',
  replies,
  ...extra,
});

describe('conversation formats', () => {
  it('openai messages, ShareGPT and oasst trees, detected per line; content kept byte for byte', async () => {
    const spaced = '  two spaces before, a newline after\n';
    const f = jsonl([
      { messages: [s('Be brief.'), u(spaced), a('ok 👍🏽')], extra: 'ignored' },
      {
        conversations: [
          { from: 'system', value: 'sys' },
          { from: 'human', value: 'hi' },
          { from: 'gpt', value: 'hello' },
        ],
      },
      {
        message_tree_id: 't1',
        tree_state: 'ready_for_export',
        prompt: node('prompter', 'Q', null, [node('assistant', 'A', 0)]),
      },
    ]);
    const { conversations, stats } = await readConversationFile(f);
    expect(conversations.map((c) => c.messages)).toEqual([
      [s('Be brief.'), u(spaced), a('ok 👍🏽')],
      [s('sys'), u('hi'), a('hello')],
      [u('Q'), a('A')],
    ]);
    expect(conversations.map((c) => [c.file, c.line, c.path])).toEqual([
      [f, 1, 0],
      [f, 2, 0],
      [f, 3, 0],
    ]);
    expect(stats.formats).toEqual({ openai: 1, sharegpt: 1, oasst: 1 });
    expect(stats.conversations).toBe(3);
  });

  it('an oasst tree: a conversation per path, best rank first, unranked last, deleted and unanswered left out', () => {
    const tree = {
      message_tree_id: 't',
      prompt: node('prompter', 'P', null, [
        node('assistant', 'A-unranked', null),
        node('assistant', 'A-rank1', 1, [
          node('prompter', 'P2-unanswered', 0),
          node('prompter', 'P2', 1, [node('assistant', 'B-rank0', 0), node('assistant', 'B-rank2', 2)]),
        ]),
        node('assistant', 'A-rank0', 0, [node('prompter', 'P3-only-unanswered', null)]),
        node('assistant', 'A-deleted', 2, [node('prompter', 'never seen', null)], { deleted: true }),
      ]),
    };
    const counts = { unanswered: 0, deleted: 0 };
    const r = parseConversationLine(JSON.stringify(tree), 'f', 1, 'auto', counts);
    expect(r.format).toBe('oasst');
    expect(r.conversations).toEqual([
      [u('P'), a('A-rank0')],
      [u('P'), a('A-rank1'), u('P2'), a('B-rank0')],
      [u('P'), a('A-rank1'), u('P2'), a('B-rank2')],
      [u('P'), a('A-unranked')],
    ]);
    expect(counts).toEqual({ unanswered: 2, deleted: 1 });
    // A bare root message (no wrapper) reads the same.
    expect(parseConversationLine(JSON.stringify(tree.prompt), 'f', 1).conversations).toEqual(r.conversations);
  });

  it('a format given by flag refuses lines of another format', () => {
    const line = JSON.stringify({ messages: [u('q'), a('r')] });
    expect(parseConversationLine(line, 'f', 1, 'openai').conversations).toEqual([[u('q'), a('r')]]);
    expect(() => parseConversationLine(line, 'f', 7, 'sharegpt')).toThrow(
      /^f:7: not in the sharegpt format \{"conversations": \[\{"from", "value"\}, \.\.\.\]\}; fix the line/,
    );
  });
});

// One bad line per reason, with the message each error must carry.
const BAD: [string, string | object, RegExp][] = [
  ['not-json', '{"messages": [', /:2: not JSON \(/],
  ['unknown-format', { text: 'plain document' }, /:2: not a conversation in a known format \(\{"messages"/],
  ['no-role', { messages: [{ content: 'x' }, a('y')] }, /:2: message 1 has no "role"/],
  ['unknown-role', { messages: [u('x'), { role: 'tool', content: 'y' }] }, /:2: message 2 has the unknown role "tool"/],
  [
    'no-content',
    { messages: [u('x'), { role: 'assistant', content: null }] },
    /:2: message 2 \(assistant\) has no "content" string \(null\)/,
  ],
  [
    'empty-content',
    {
      conversations: [
        { from: 'human', value: ' \n' },
        { from: 'gpt', value: 'y' },
      ],
    },
    /:2: message 1 \(human\) is empty/,
  ],
  [
    'special-token',
    { messages: [u('x'), a('ok<|im_end|>')] },
    /:2: message 2 \(assistant\) holds the special-token text <\|im_end\|> at character 2/,
  ],
  ['no-assistant', { messages: [s('x'), u('y')] }, /:2: the conversation has no assistant message/],
];

describe('unusable lines', () => {
  it('cover every reason', () => {
    expect(BAD.map((b) => b[0]).sort()).toEqual([...INVALID_REASONS].sort());
  });

  it.each(BAD)(
    '%s: stops at the line with one line naming file and line, after yielding the good ones',
    async (reason, bad, message) => {
      const good = { messages: [u('q'), a('r')] };
      const f = jsonl([good, bad, good]);
      const seen: number[] = [];
      let err: unknown;
      try {
        for await (const c of readConversations(f)) seen.push(c.line);
      } catch (e) {
        err = e;
      }
      expect(seen).toEqual([1]);
      expect(err).toBeInstanceOf(ConversationDataError);
      const e = err as ConversationDataError;
      expect(e.reason).toBe(reason);
      expect(e.message.startsWith(`${f}:2: `)).toBe(true);
      expect(e.message).toMatch(message);
      expect(e.message).toMatch(/; fix the line, or skip such lines with --skip-invalid \(skipInvalid\)$/);
      expect(e.message).not.toContain('\n');
    },
  );

  it('oasst messages are named by id; a tree without any answer has no assistant', () => {
    const bad = node('prompter', 'P', null, [node('assistant', 'A', 0, [node('prompter', '', 0)])]);
    expect(() => parseConversationLine(JSON.stringify({ prompt: bad }), 'f', 3)).toThrow(
      /^f:3: message id- \(prompter\) is empty/,
    );
    const role = node('prompter', 'P', null, [{ ...node('assistant', 'A', 0), role: 'bot' }]);
    expect(() => parseConversationLine(JSON.stringify({ prompt: role }), 'f', 3)).toThrow(
      /^f:3: message id-A has the unknown role "bot" \(prompter, assistant\)/,
    );
    const lonely = node('prompter', 'P', null, []);
    expect(() => parseConversationLine(JSON.stringify({ prompt: lonely }), 'f', 3)).toThrow(
      /^f:3: the tree has no assistant reply/,
    );
  });

  it('with skipInvalid: skipped and counted per reason, blank lines counted, every good line kept', async () => {
    const good = (i: number) => ({ messages: [u(`q${i}`), a(`r${i}`)] });
    const lines: (object | string)[] = [good(0)];
    BAD.forEach(([, bad], i) => lines.push(bad, good(i + 1)));
    lines.push('', '   ', good(99));
    const { conversations, stats } = await readConversationFile(jsonl(lines), { skipInvalid: true });
    expect(conversations.map((c) => c.messages[0].content)).toEqual([
      ...Array.from({ length: BAD.length + 1 }, (_, i) => `q${i}`),
      'q99',
    ]);
    expect(stats.skipped).toEqual(Object.fromEntries(BAD.map(([r]) => [r, 1])));
    expect(stats.blankLines).toBe(2);
    expect(stats.lines).toBe(lines.length);
    expect(stats.conversations).toBe(BAD.length + 2);
  });

  it('a byte-order mark before the first line is not part of its JSON', async () => {
    const f = join(dir, 'bom.jsonl');
    writeFileSync(f, `\uFEFF${JSON.stringify({ messages: [u('q'), a('r')] })}\n`);
    expect((await readConversationFile(f)).conversations.map((c) => c.messages)).toEqual([[u('q'), a('r')]]);
  });

  it('a file that cannot be read is one line naming it', async () => {
    const missing = join(dir, 'missing.jsonl');
    await expect(readConversationFile(missing)).rejects.toThrow(
      new RegExp(`^${missing}: cannot read \\(no such file or folder\\)$`),
    );
  });
});
