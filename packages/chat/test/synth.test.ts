// Synthetic conversations: the same seed writes the same bytes, every line reads back as valid data, the arithmetic
// is right, follow-ups continue from the previous result, and the facts are the countries-list package's.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { countries } from 'countries-list';
import { describe, expect, it } from 'vitest';
import { readConversationFile, synthConversations, synthCountries, writeSynthJsonl } from '../src/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'wgpt-chat-synth-'));

describe('synthetic conversations', () => {
  it('the same seed writes the same bytes, another seed other bytes; every line is valid data', async () => {
    const [a, b, c] = ['a', 'b', 'c'].map((n) => join(dir, `${n}.jsonl`));
    const ra = writeSynthJsonl(a, 300, 42);
    writeSynthJsonl(b, 300, 42);
    writeSynthJsonl(c, 300, 43);
    expect(readFileSync(a)).toEqual(readFileSync(b));
    expect(readFileSync(a)).not.toEqual(readFileSync(c));
    expect(ra.bytes).toBe(readFileSync(a).length);
    const { conversations, stats } = await readConversationFile(a);
    expect(conversations).toHaveLength(300);
    expect(stats.formats.openai).toBe(300);
    expect(conversations.reduce((n, c) => n + c.messages.length, 0)).toBe(ra.messages);
    // Multi-turn conversations and system messages both occur.
    expect(conversations.some((c) => c.messages.filter((m) => m.role === 'user').length >= 3)).toBe(true);
    expect(conversations.some((c) => c.messages[0].role === 'system')).toBe(true);
  });

  it('refuses to replace a file unless asked', () => {
    const f = join(dir, 'kept.jsonl');
    writeFileSync(f, 'precious\n');
    expect(() => writeSynthJsonl(f, 5, 1)).toThrow(`${f} already exists; choose another --out, or pass --overwrite`);
    expect(readFileSync(f, 'utf8')).toBe('precious\n');
    writeSynthJsonl(f, 5, 1, true);
    expect(readFileSync(f, 'utf8').split('\n')).toHaveLength(6);
  });

  it('arithmetic answers are right and each follow-up starts from the previous result', () => {
    let checked = 0;
    let followUps = 0;
    for (const messages of synthConversations(2000, 7)) {
      let previous: number | null = null;
      for (const m of messages) {
        if (m.role !== 'assistant') continue;
        const eq = /^(\d+) ([-+*/]) (\d+) = (\d+)\.$/.exec(m.content);
        if (!eq) {
          previous = null;
          continue;
        }
        const [x, op, y, r] = [Number(eq[1]), eq[2], Number(eq[3]), Number(eq[4])];
        const want = op === '+' ? x + y : op === '-' ? x - y : op === '*' ? x * y : x / y;
        expect(r, m.content).toBe(want);
        if (previous !== null) {
          expect(x, m.content).toBe(previous);
          followUps++;
        }
        previous = r;
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(500);
    expect(followUps).toBeGreaterThan(200);
  });

  it("capital answers are the package's capitals of the country asked about", () => {
    const capitalOf = new Map(Object.values(countries).map((c) => [c.name, c.capital]));
    const names = new Map(synthCountries().map((c) => [c.name, c.name.replace(/^the /, '')]));
    let checked = 0;
    for (const messages of synthConversations(2000, 8)) {
      for (const m of messages) {
        const cap = /^The capital of (.+) is (.+)\.$/.exec(m.content);
        if (m.role !== 'assistant' || !cap) continue;
        expect(names.has(cap[1]), cap[1]).toBe(true);
        expect(cap[2]).toBe(capitalOf.get(names.get(cap[1])!));
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(50);
  });
});
