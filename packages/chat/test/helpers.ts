// Random conversations for the tests: every role, code, emoji, scripts other than Latin, and whitespace at the
// edges of messages (which must survive exactly).
import type { ChatMessage, ChatRole } from '../src/index.ts';
import { Rng } from '../src/index.ts';

const PIECES = [
  'Hello',
  ' world',
  'What is 2+2?',
  '2 + 2 = 4.',
  '  leading spaces',
  'trailing spaces   ',
  '\n\nblank lines\n\n',
  '\ttab',
  'function f(x) {\n  return x * 2; // double\n}\n',
  'SELECT * FROM t WHERE a <> 1;',
  '👋🏽',
  '🤖🧠',
  '👨‍👩‍👧',
  '日本語のテキスト',
  'Ελληνικά',
  'שלום עולם',
  'naïve café',
  '1234567890',
  '<tag attr="x">',
  '<|not_a_special|>',
  '   ',
  '\r\n',
  "don't",
  'x',
];

/** Text of 1..8 random pieces, never empty or only whitespace. */
export function randomContent(rng: Rng): string {
  let s = '';
  const n = rng.int(1, 8);
  for (let i = 0; i < n; i++) s += rng.pick(PIECES);
  return s.trim() === '' ? `${s}x` : s;
}

/** A conversation of 1..9 messages: maybe a system message first, then user and assistant turns (some repeated). */
export function randomConversation(rng: Rng): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (rng.chance(0.4)) messages.push({ role: 'system', content: randomContent(rng) });
  const turns = rng.int(1, 8);
  for (let i = 0; i < turns; i++) {
    const role: ChatRole = rng.chance(0.15) ? rng.pick(['user', 'assistant', 'system']) : i % 2 ? 'assistant' : 'user';
    messages.push({ role, content: randomContent(rng) });
  }
  return messages;
}
