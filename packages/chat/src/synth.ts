// Synthetic conversations, the embedded default data for fine-tuning where no conversation data set can be
// fetched: arithmetic with follow-ups, and facts about countries from the countries-list package (capitals,
// continents, currencies, languages, calling codes), a few phrasings each, one to three user turns. The answers
// keep one fixed form per kind of question, which a small model can learn. Seeded: the same seed and count give
// the same conversations, so `wgpt chat synth` writes the same bytes.
import { closeSync, existsSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { continents, countries, languages } from 'countries-list';
import { currencies } from 'countries-list/currencies';
import { WgptError, withPath } from '@wgpt/base/errors';
import type { ChatMessage } from './render.ts';
import { Rng } from './rng.ts';

const SYSTEM_PROMPTS = [
  'You are a helpful assistant.',
  'You are a helpful assistant. Answer briefly.',
  'You answer questions about arithmetic and geography in one sentence.',
];

const GREETINGS: [string, string][] = [
  ['Hi!', 'Hello! How can I help you today?'],
  ['Hello there.', 'Hello! What would you like to know?'],
  ['Good morning!', 'Good morning! How can I help?'],
];

// ---- arithmetic

type Op = '+' | '-' | '*';
const ASK: Record<Op, string[]> = {
  '+': ['What is {a}+{b}?', 'What is {a} + {b}?', "What's {a} plus {b}?", 'How much is {a} plus {b}?'],
  '-': ['What is {a}-{b}?', 'What is {a} - {b}?', "What's {a} minus {b}?", 'Subtract {b} from {a}.'],
  '*': ['What is {a}*{b}?', 'What is {a} times {b}?', 'How much is {a} times {b}?', 'Multiply {a} by {b}.'],
};

const fill = (template: string, vars: Record<string, string | number>) =>
  template.replace(/\{(\w+)\}/g, (_, k: string) => String(vars[k]));

function arithmetic(rng: Rng, messages: ChatMessage[], followUpCount?: number, onePhrasing = false): void {
  const op = rng.pick<Op>(['+', '-', '*']);
  let a: number;
  let b: number;
  if (op === '*') {
    a = rng.int(0, 12);
    b = rng.int(0, 12);
  } else {
    a = rng.int(0, 99);
    b = op === '-' ? rng.int(0, a) : rng.int(0, 99);
  }
  let r = op === '+' ? a + b : op === '-' ? a - b : a * b;
  messages.push({ role: 'user', content: fill(onePhrasing ? ASK[op][0] : rng.pick(ASK[op]), { a, b }) });
  messages.push({ role: 'assistant', content: `${a} ${op} ${b} = ${r}.` });
  const followUps = followUpCount ?? rng.int(0, 2);
  for (let f = 0; f < followUps; f++) {
    const kind = rng.int(0, 4);
    let ask: string;
    let answer: string;
    let next: number;
    if (kind === 0) {
      const k = rng.int(2, 9);
      next = r * k;
      ask = rng.pick([`And times ${k}?`, `Now multiply that by ${k}.`]);
      answer = `${r} * ${k} = ${next}.`;
    } else if (kind === 1) {
      const k = rng.int(1, 50);
      next = r + k;
      ask = rng.pick([`And plus ${k}?`, `Add ${k} to that.`]);
      answer = `${r} + ${k} = ${next}.`;
    } else if (kind === 2 && r > 0) {
      const k = rng.int(1, r);
      next = r - k;
      ask = rng.pick([`And minus ${k}?`, `Now subtract ${k}.`]);
      answer = `${r} - ${k} = ${next}.`;
    } else if (kind === 3) {
      next = r * 2;
      ask = rng.pick(['Double it.', 'And twice that?']);
      answer = `${r} * 2 = ${next}.`;
    } else {
      const divisors = [2, 3, 4, 5, 6, 7, 8, 9].filter((d) => r > 0 && r % d === 0);
      if (divisors.length === 0) {
        next = r + 1;
        ask = 'And one more?';
        answer = `${r} + 1 = ${next}.`;
      } else {
        const d = rng.pick(divisors);
        next = r / d;
        ask = rng.pick([`And divided by ${d}?`, `Divide that by ${d}.`]);
        answer = `${r} / ${d} = ${next}.`;
      }
    }
    messages.push({ role: 'user', content: ask });
    messages.push({ role: 'assistant', content: answer });
    r = next;
  }
}

// ---- countries

interface Country {
  name: string;
  capital: string;
  continent: string;
  currency: string;
  languages: string[];
  phone: number;
}

/** Names read with "the" (the United States, the Cook Islands). */
const WITH_THE = new RegExp(
  '^(United |Democratic Republic|Republic of|Central African|Dominican|Netherlands|Philippines|Bahamas|Gambia|' +
    'Comoros|Maldives|Seychelles|British |U\\.S\\. |Northern Mariana|Falkland|Faroe)|Islands$',
);

let countryList: Country[] | undefined;

/** Countries and territories with a capital, in the package's order. */
export function synthCountries(): Country[] {
  countryList ??= Object.values(countries)
    .filter((c) => c.capital !== '' && c.partOf === undefined && !c.userAssigned && c.currency.length > 0)
    .map((c) => ({
      name: WITH_THE.test(c.name) ? `the ${c.name}` : c.name,
      capital: c.capital,
      continent: continents[c.continent],
      currency: `${currencies[c.currency[0]].name} (${c.currency[0]})`,
      languages: c.languages.map((l) => languages[l].name),
      phone: c.phone[0],
    }));
  return countryList;
}

type Fact = 'capital' | 'continent' | 'currency' | 'languages' | 'phone';
const FACTS: Fact[] = ['capital', 'continent', 'currency', 'languages', 'phone'];

const QUESTIONS: Record<Fact, string[]> = {
  capital: [
    'What is the capital of {c}?',
    "What's the capital of {c}?",
    'Which city is the capital of {c}?',
    'Name the capital of {c}.',
  ],
  continent: ['Which continent is {c} in?', 'On which continent is {c}?', 'What continent is {c} part of?'],
  currency: ['What currency does {c} use?', 'What is the currency of {c}?', 'Which money do people use in {c}?'],
  languages: ['What language do people speak in {c}?', 'Which languages are spoken in {c}?'],
  phone: ['What is the calling code of {c}?', "What's the phone code for {c}?"],
};

const FOLLOW_UPS: Record<Fact, string[]> = {
  capital: ['And its capital?', 'What is its capital?'],
  continent: ['Which continent is it in?', 'And where is it?'],
  currency: ['What about its currency?', 'And what money do they use?'],
  languages: ['What languages are spoken there?', 'And what do people speak there?'],
  phone: ['And its calling code?', 'What is its phone code?'],
};

const upperFirst = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

function list(items: string[]): string {
  return items.length === 1 ? items[0] : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

function answer(fact: Fact, c: Country): string {
  switch (fact) {
    case 'capital':
      return `The capital of ${c.name} is ${c.capital}.`;
    case 'continent':
      return `${upperFirst(c.name)} is in ${c.continent}.`;
    case 'currency':
      return `${upperFirst(c.name)} uses the ${c.currency}.`;
    case 'languages':
      return `People in ${c.name} speak ${list(c.languages)}.`;
    case 'phone':
      return `The calling code of ${c.name} is +${c.phone}.`;
  }
}

function countryFacts(rng: Rng, messages: ChatMessage[], followUpCount?: number): void {
  const all = synthCountries();
  let country = rng.pick(all);
  let fact = rng.pick(FACTS);
  messages.push({ role: 'user', content: fill(rng.pick(QUESTIONS[fact]), { c: country.name }) });
  messages.push({ role: 'assistant', content: answer(fact, country) });
  const followUps = followUpCount ?? rng.int(0, 2);
  for (let f = 0; f < followUps; f++) {
    if (rng.chance(0.5)) {
      // The same question about another country.
      country = rng.pick(all);
      messages.push({ role: 'user', content: rng.pick([`And ${country.name}?`, `What about ${country.name}?`]) });
    } else {
      // Another question about the same country.
      fact = rng.pick(FACTS.filter((x) => x !== fact));
      messages.push({ role: 'user', content: rng.pick(FOLLOW_UPS[fact]) });
    }
    messages.push({ role: 'assistant', content: answer(fact, country) });
  }
}

// ---- conversations

/** What synthetic conversations hold. */
export type SynthKind = 'arithmetic' | 'countries';
export const SYNTH_KINDS: readonly SynthKind[] = ['arithmetic', 'countries'];

export interface SynthOptions {
  /** The kinds of questions, drawn evenly (default both). */
  kinds?: readonly SynthKind[];
  /**
   * A single question and its answer: no system message, greeting or follow-ups, and one phrasing per arithmetic
   * operation ("What is 7+5?"): short enough for a small context, and regular enough for a small model to learn.
   */
  simple?: boolean;
}

/** One synthetic conversation per call, from the generator's own stream of choices. */
export function synthConversation(rng: Rng, o: SynthOptions = {}): ChatMessage[] {
  const kinds = o.kinds ?? SYNTH_KINDS;
  if (kinds.length === 0) throw new WgptError('synthetic conversations: no kinds of questions to draw from');
  const messages: ChatMessage[] = [];
  if (!o.simple && rng.chance(0.25)) messages.push({ role: 'system', content: rng.pick(SYSTEM_PROMPTS) });
  if (!o.simple && rng.chance(0.1)) {
    const [hi, hello] = rng.pick(GREETINGS);
    messages.push({ role: 'user', content: hi }, { role: 'assistant', content: hello });
  }
  // Two kinds keep the draw the generator always made (one chance in two), so the same seed writes the same data.
  const kind = kinds.length === 2 ? (rng.chance(0.5) ? 'arithmetic' : 'countries') : rng.pick(kinds);
  const followUps = o.simple ? 0 : undefined;
  if (kind === 'arithmetic') arithmetic(rng, messages, followUps, o.simple);
  else countryFacts(rng, messages, followUps);
  return messages;
}

/** `count` synthetic conversations drawn from `seed`. */
export function* synthConversations(count: number, seed: number, o: SynthOptions = {}): Generator<ChatMessage[]> {
  const rng = new Rng(seed);
  for (let i = 0; i < count; i++) yield synthConversation(rng, o);
}

/** The JSONL line of a conversation (the OpenAI messages format that readConversations reads). */
export function conversationJsonl(messages: readonly ChatMessage[]): string {
  return `${JSON.stringify({ messages: messages.map((m) => ({ role: m.role, content: m.content })) })}\n`;
}

/**
 * Writes `count` synthetic conversations to `out` as JSONL (through a temporary file renamed at the end, so a
 * failed run leaves no half file). An existing `out` is replaced only with `overwrite`.
 */
export function writeSynthJsonl(
  out: string,
  count: number,
  seed: number,
  overwrite = false,
  o: SynthOptions = {},
): { conversations: number; messages: number; bytes: number } {
  if (!overwrite && existsSync(out)) {
    throw new WgptError(`${out} already exists; choose another --out, or pass --overwrite to replace it`);
  }
  const tmp = `${out}.tmp-${process.pid}`;
  let messages = 0;
  let bytes = 0;
  const fd = withPath(tmp, () => openSync(tmp, 'w'));
  try {
    let buf = '';
    const flush = () => {
      const b = Buffer.from(buf, 'utf8');
      withPath(tmp, () => writeSync(fd, b));
      bytes += b.length;
      buf = '';
    };
    for (const c of synthConversations(count, seed, o)) {
      messages += c.length;
      buf += conversationJsonl(c);
      if (buf.length > 1 << 20) flush();
    }
    flush();
    closeSync(fd);
    withPath(out, () => renameSync(tmp, out));
  } catch (e) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
    rmSync(tmp, { force: true });
    throw e;
  }
  return { conversations: count, messages, bytes };
}
