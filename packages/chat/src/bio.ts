// Fictional biographies for studying what a model knows: seeded people with a few facts each, paraphrased plain
// text documents about them for pre-training, and questions with reference answers about them for fine-tuning and
// probing. Cities are capitals from the countries-list package. No package in reach ships given names, surnames,
// occupations or company names, so short lists of those are written here; a name is a pair from two lists, so
// thousands of people can be drawn, and a "never-existed" person is drawn by the same generator with a name that
// no known person has.
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WgptError, withPath } from '@wgpt/base/errors';
import { synthCountries } from './synth.ts';
import type { ChatMessage } from './render.ts';
import { Rng } from './rng.ts';

// Lists as comma-separated text: prettier would give each item a line of its own.
const list = (s: string) => s.split(', ');

const GIVEN = list(
  'Ada, Bruno, Celia, Dario, Elena, Farid, Greta, Hugo, Ines, Jonas, Kira, Lars, Mira, Nikos, Olga, Pavel, ' +
    'Quinn, Rosa, Sami, Tara, Umar, Vera, Wim, Xenia, Yusuf, Zora, Amara, Boris, Clara, Emil, Freya, Goran, ' +
    'Hana, Ivo, Leila, Milo, Nadia, Oskar, Priya, Ravi, Sofia, Tomas, Una, Viktor, Wanda, Yara, Anton, Bianca, ' +
    'Cyrus, Dalia',
);

const SURNAMES = list(
  'Abara, Brandt, Castell, Dravic, Eklund, Farrow, Galloway, Halvorsen, Ishikawa, Jovanic, Kowalczyk, ' +
    'Lindqvist, Marchetti, Novak, Okafor, Petrescu, Quintero, Rasmussen, Sandoval, Takahashi, Ulrich, Varga, ' +
    'Whitcombe, Yilmaz, Zielinski, Almeida, Bergstrom, Costa, Delacroix, Esposito, Fonseca, Gruber, Horvath, ' +
    'Iversen, Janssen, Kaminski, Lefebvre, Moreau, Nakamura, Oyelaran, Pellegrini, Rinaldi, Svoboda, Tanaka, ' +
    'Vasquez, Wojcik, Achterberg, Bianchi, Cardoso, Demir',
);

const OCCUPATIONS = list(
  'architect, geologist, translator, pharmacist, civil engineer, librarian, marine biologist, accountant, ' +
    'journalist, software developer, veterinarian, economist, pilot, chemist, urban planner, statistician, ' +
    'historian, electrician, nurse, photographer',
);

const MAJORS = list(
  'physics, history, economics, biology, mathematics, linguistics, chemistry, philosophy, computer science, ' +
    'architecture, geography, law, medicine, music, sociology',
);

const COMPANY_STEMS = list(
  'Northwind, Bluepeak, Silverline, Redfern, Ironbridge, Greenhollow, Starling, Copperfield, Westgate, ' +
    'Brightwater, Oakridge, Stonebay, Highmoor, Clearpath, Amberly, Foxglove',
);

const COMPANY_KINDS = list(
  'Logistics, Pharmaceuticals, Engineering, Publishing, Robotics, Textiles, Energy, Insurance, Software, ' +
    'Shipping, Foods, Instruments',
);

const UNIVERSITY_FORMS = list(
  'University of {c}, {c} Institute of Technology, {c} State University, Royal College of {c}, {c} Polytechnic',
);

const MONTHS = list('January, February, March, April, May, June, July, August, September, October, November, December');

export interface BirthDate {
  year: number;
  /** 1 to 12. */
  month: number;
  day: number;
}

export interface Person {
  name: string;
  birthDate: BirthDate;
  birthCity: string;
  /** The country of the birth city (documents say it; questions ask for the city). */
  birthCountry: string;
  university: string;
  major: string;
  employer: string;
  occupation: string;
}

/** The facts that documents state and questions ask about. */
export type BioFact = 'birthDate' | 'birthCity' | 'university' | 'major' | 'employer' | 'occupation';
export const BIO_FACTS: readonly BioFact[] = [
  'birthDate',
  'birthCity',
  'university',
  'major',
  'employer',
  'occupation',
];

/** "March 4, 1957". */
export function formatDate(d: BirthDate): string {
  return `${MONTHS[d.month - 1]} ${d.day}, ${d.year}`;
}

let cities: { city: string; country: string }[] | undefined;

/**
 * Capitals spelled in plain ASCII letters, in countries without a full stop in their names ("Washington D.C." and
 * the U.S. Virgin Islands are left out), so that a sentence ends at its full stop and a small byte-level tokenizer
 * sees every name in the same kind of bytes.
 */
function cityList(): { city: string; country: string }[] {
  cities ??= synthCountries()
    .filter((c) => /^[A-Za-z][A-Za-z '-]*$/.test(c.capital) && !c.name.includes('.'))
    .map((c) => ({ city: c.capital, country: c.name }));
  return cities;
}

/** How many distinct names the generator can draw. */
export const NAME_COUNT = GIVEN.length * SURNAMES.length;

const daysIn = (year: number, month: number) => new Date(Date.UTC(year, month, 0)).getUTCDate();

function drawPerson(rng: Rng, name: string): Person {
  const year = rng.int(1930, 2000);
  const month = rng.int(1, 12);
  const birth = rng.pick(cityList());
  return {
    name,
    birthDate: { year, month, day: rng.int(1, daysIn(year, month)) },
    birthCity: birth.city,
    birthCountry: birth.country,
    university: rng.pick(UNIVERSITY_FORMS).replace('{c}', rng.pick(cityList()).city),
    major: rng.pick(MAJORS),
    employer: `${rng.pick(COMPANY_STEMS)} ${rng.pick(COMPANY_KINDS)}`,
    occupation: rng.pick(OCCUPATIONS),
  };
}

export interface People {
  /** The people the documents are about. */
  known: Person[];
  /** People drawn the same way whose names no known person has: no document mentions them. */
  neverExisted: Person[];
}

/**
 * `known` people, then `neverExisted` more, all with distinct names, from `seed`. The known people depend only on
 * the seed and their count, so asking for more never-existed people leaves the known ones as they were.
 */
export function makePeople(known: number, neverExisted: number, seed: number): People {
  for (const [what, n] of [
    ['known', known],
    ['never-existed', neverExisted],
  ] as const) {
    if (!Number.isSafeInteger(n) || n < 0) throw new WgptError(`the count of ${what} people must be >= 0, not ${n}`);
  }
  if (known + neverExisted > NAME_COUNT / 2) {
    // Past half the names, drawing a fresh one would take ever more tries; fewer people still fit.
    throw new WgptError(
      `${known + neverExisted} people is more than the ${NAME_COUNT / 2} that the name lists allow; draw fewer`,
    );
  }
  const rng = new Rng(seed);
  const used = new Set<string>();
  const draw = () => {
    let name: string;
    do name = `${rng.pick(GIVEN)} ${rng.pick(SURNAMES)}`;
    while (used.has(name));
    used.add(name);
    return drawPerson(rng, name);
  };
  const k = Array.from({ length: known }, draw);
  return { known: k, neverExisted: Array.from({ length: neverExisted }, draw) };
}

// ---- documents

/** Sentence forms per fact; {s} is the subject (the name, or "They" after the first sentence). */
const SENTENCES: Record<BioFact, string[]> = {
  birthDate: ['{s} {was} born on {date}.', "{s}'s birthday is {date}.", '{s} came into the world on {date}.'],
  birthCity: [
    '{s} {was} born in {city}, {country}.',
    '{city}, {country} is where {s} {was} born.',
    '{s} {was} a native of {city} in {country}.',
  ],
  university: [
    '{s} studied {major} at the {university}.',
    '{s} graduated from the {university} with a degree in {major}.',
    '{s} attended the {university}, majoring in {major}.',
  ],
  major: [],
  employer: ['{s} {works} for {employer}.', '{s} {is} employed by {employer}.', '{s} {has} a job at {employer}.'],
  occupation: ['{s} {works} as {article} {occupation}.', 'By profession, {s} {is} {article} {occupation}.'],
};

const article = (word: string) => (/^[aeiou]/i.test(word) ? 'an' : 'a');

/** The university form already holds "of"; "the" is dropped before a name that starts with the city. */
function theUniversity(u: string): string {
  return u.startsWith('University') || u.startsWith('Royal') ? `the ${u}` : u;
}

function sentence(template: string, p: Person, first: boolean): string {
  const they = !first;
  const vars: Record<string, string> = {
    s: they ? 'they' : p.name,
    was: they ? 'were' : 'was',
    works: they ? 'work' : 'works',
    is: they ? 'are' : 'is',
    has: they ? 'have' : 'has',
    date: formatDate(p.birthDate),
    city: p.birthCity,
    country: p.birthCountry,
    major: p.major,
    university: p.university,
    employer: p.employer,
    occupation: p.occupation,
    article: article(p.occupation),
  };
  let s = template
    .replace('the {university}', theUniversity(p.university))
    .replace(/\{(\w+)\}/g, (_, k: string) => vars[k]!);
  // "they's birthday" reads as "their birthday".
  s = s.replace(/\bthey's\b/, 'their');
  return s.charAt(0).toUpperCase() + s.slice(1);
}

export interface DocumentOptions {
  /**
   * Name the person in every sentence instead of "they" after the first. Each sentence then states its fact about
   * the name on its own, which a small model with a short context learns far more easily: a training window that
   * starts mid-document still says whose fact it is.
   */
  fullName?: boolean;
}

/**
 * One document about a person: every fact once, in a drawn order and with drawn sentence forms; the first sentence
 * names the person and the rest say "they" (or the name again, with fullName).
 */
export function biographyDocument(p: Person, rng: Rng, o: DocumentOptions = {}): string {
  const facts = rng.shuffle(BIO_FACTS.filter((f) => SENTENCES[f].length > 0));
  return facts.map((f, i) => sentence(rng.pick(SENTENCES[f]), p, i === 0 || !!o.fullName)).join(' ');
}

/** `perPerson` documents about each person, person by person, from `seed`. */
export function biographyDocuments(
  people: readonly Person[],
  perPerson: number,
  seed: number,
  o: DocumentOptions = {},
): string[] {
  const rng = new Rng(seed);
  const docs: string[] = [];
  for (const p of people) for (let i = 0; i < perPerson; i++) docs.push(biographyDocument(p, rng, o));
  return docs;
}

// ---- questions

export interface FactQuestion {
  person: string;
  fact: BioFact;
  /** The user's question. */
  question: string;
  /** The fact itself ("Lisbon"), what a judge compares a reply with. */
  answer: string;
  /** The assistant reply that fine-tuning teaches ("Ada Varga was born in Lisbon."). */
  reply: string;
}

/** Makes questions about a person; the templates below are the default, a stronger generator can take its place. */
export interface QuestionSource {
  questions(p: Person, rng: Rng): FactQuestion[];
}

const FACT_VALUE: Record<BioFact, (p: Person) => string> = {
  birthDate: (p) => formatDate(p.birthDate),
  birthCity: (p) => p.birthCity,
  university: (p) => p.university,
  major: (p) => p.major,
  employer: (p) => p.employer,
  occupation: (p) => p.occupation,
};

const ASK: Record<BioFact, string[]> = {
  birthDate: ['When was {n} born?', "What is {n}'s date of birth?", 'On what date was {n} born?'],
  birthCity: ['Where was {n} born?', 'In which city was {n} born?', "What is {n}'s birthplace?"],
  university: ['Which university did {n} attend?', 'Where did {n} study?', 'What university did {n} go to?'],
  major: ['What did {n} study?', 'What was the major of {n}?', 'Which subject did {n} study at university?'],
  employer: ['Which company does {n} work for?', 'Who employs {n}?', 'Where does {n} work?'],
  occupation: ["What is {n}'s occupation?", 'What does {n} do for a living?', 'What is the job of {n}?'],
};

const REPLY: Record<BioFact, (p: Person) => string> = {
  birthDate: (p) => `${p.name} was born on ${formatDate(p.birthDate)}.`,
  birthCity: (p) => `${p.name} was born in ${p.birthCity}.`,
  university: (p) => `${p.name} attended ${theUniversity(p.university)}.`,
  major: (p) => `${p.name} studied ${p.major}.`,
  employer: (p) => `${p.name} works for ${p.employer}.`,
  occupation: (p) => `${p.name} is ${article(p.occupation)} ${p.occupation}.`,
};

/** How many phrasings TemplateQuestions has for each fact's question. */
export const QUESTION_FORMS = 3;

/**
 * One question per fact (or per fact in `facts`), each in a phrasing drawn from `forms` (indices below
 * QUESTION_FORMS; default all), answered in one fixed form. Disjoint forms give held-out phrasings of a question.
 */
export class TemplateQuestions implements QuestionSource {
  private readonly forms: readonly number[];

  constructor(
    private readonly facts: readonly BioFact[] = BIO_FACTS,
    forms?: readonly number[],
  ) {
    this.forms = forms ?? Array.from({ length: QUESTION_FORMS }, (_, i) => i);
    if (this.forms.length === 0 || this.forms.some((f) => !Number.isInteger(f) || f < 0 || f >= QUESTION_FORMS)) {
      throw new WgptError(`question forms must be indices in [0, ${QUESTION_FORMS}), not [${this.forms.join(', ')}]`);
    }
  }

  questions(p: Person, rng: Rng): FactQuestion[] {
    return this.facts.map((fact) => ({
      person: p.name,
      fact,
      question: ASK[fact][rng.pick(this.forms)]!.replace('{n}', p.name),
      answer: FACT_VALUE[fact](p),
      reply: REPLY[fact](p),
    }));
  }
}

/** Questions about each person from `source`, person by person, from `seed`. */
export function factQuestions(
  people: readonly Person[],
  seed: number,
  source: QuestionSource = new TemplateQuestions(),
): FactQuestion[] {
  const rng = new Rng(seed);
  return people.flatMap((p) => source.questions(p, rng));
}

/** A question as a conversation, answered with its reference reply (or with `reply`, e.g. a refusal). */
export function questionConversation(q: FactQuestion, reply: string = q.reply): ChatMessage[] {
  return [
    { role: 'user', content: q.question },
    { role: 'assistant', content: reply },
  ];
}

/**
 * The JSONL line of a question: {"messages": [...]} as readConversations reads it, with the person, the fact and
 * the reference answer beside the messages for probing.
 */
export function questionJsonl(q: FactQuestion, reply: string = q.reply): string {
  const line = { messages: questionConversation(q, reply), person: q.person, fact: q.fact, answer: q.answer };
  return `${JSON.stringify(line)}\n`;
}

// ---- files

/** The files `writeBioData` writes into its folder. */
export const BIO_FILES = {
  /** {"id", "person", "text"} per document: pre-training text (the JSONL that `wgpt data` reads). */
  documents: 'documents.jsonl',
  /** Questions about the known people, as questionJsonl writes them. */
  questions: 'questions.jsonl',
  /** Questions about the never-existed people. */
  neverSeen: 'never-seen.jsonl',
  /** Every person's facts, {"known": true|false, ...Person}. */
  people: 'people.jsonl',
} as const;

export interface BioDataOptions {
  known: number;
  neverExisted: number;
  docsPerPerson: number;
  seed: number;
  overwrite?: boolean;
}

/**
 * Writes people, documents and questions into `dir` from one seed (people from seed, documents from seed + 1,
 * questions from seed + 2 and seed + 3). Existing files are replaced only with `overwrite`, and each file is
 * written whole (a temporary file renamed), so a failed run leaves none half written.
 */
export function writeBioData(
  dir: string,
  o: BioDataOptions,
): { documents: number; questions: number; neverSeen: number } {
  const paths = Object.values(BIO_FILES).map((f) => join(dir, f));
  const existing = paths.filter((p) => existsSync(p));
  if (!o.overwrite && existing.length > 0) {
    throw new WgptError(`${existing[0]} already exists; choose another folder, or pass --overwrite to replace it`);
  }
  const people = makePeople(o.known, o.neverExisted, o.seed);
  const docs = biographyDocuments(people.known, o.docsPerPerson, o.seed + 1);
  const questions = factQuestions(people.known, o.seed + 2);
  const neverSeen = factQuestions(people.neverExisted, o.seed + 3);
  const width = String(Math.max(docs.length - 1, 0)).length;
  const text: Record<keyof typeof BIO_FILES, string> = {
    documents: docs
      .map((d, i) => {
        const person = people.known[Math.floor(i / o.docsPerPerson)]!.name;
        return `${JSON.stringify({ id: `bio-${String(i).padStart(width, '0')}`, person, text: d })}\n`;
      })
      .join(''),
    questions: questions.map((q) => questionJsonl(q)).join(''),
    neverSeen: neverSeen.map((q) => questionJsonl(q)).join(''),
    people: [
      ...people.known.map((p) => `${JSON.stringify({ known: true, ...p })}\n`),
      ...people.neverExisted.map((p) => `${JSON.stringify({ known: false, ...p })}\n`),
    ].join(''),
  };
  withPath(dir, () => mkdirSync(dir, { recursive: true }));
  for (const [key, file] of Object.entries(BIO_FILES) as [keyof typeof BIO_FILES, string][]) {
    const path = join(dir, file);
    const tmp = `${path}.tmp-${process.pid}`;
    withPath(tmp, () => writeFileSync(tmp, text[key]));
    withPath(path, () => renameSync(tmp, path));
  }
  return { documents: docs.length, questions: questions.length, neverSeen: neverSeen.length };
}
