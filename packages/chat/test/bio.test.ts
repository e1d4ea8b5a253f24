// Fictional biographies: seeded people and documents, never-existed people disjoint from the known ones, documents
// that state every fact in several paraphrases, and questions whose reference answers are the person's facts.
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { countries } from 'countries-list';
import { describe, expect, it } from 'vitest';
import {
  BIO_FACTS,
  BIO_FILES,
  biographyDocuments,
  factQuestions,
  makePeople,
  NAME_COUNT,
  type Person,
  questionJsonl,
  QUESTION_FORMS,
  readConversationFile,
  TemplateQuestions,
  writeBioData,
} from '../src/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'wgpt-chat-bio-'));
const MONTHS = 'January February March April May June July August September October November December'.split(' ');
// Days per month written out here, February by the Gregorian leap rule.
const daysIn = (y: number, m: number) =>
  m === 2 ? (y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : 28) : [4, 6, 9, 11].includes(m) ? 30 : 31;

describe('fictional people', () => {
  it('the same seed gives the same people and documents; another seed others', () => {
    const a = makePeople(50, 20, 1);
    expect(makePeople(50, 20, 1)).toEqual(a);
    expect(makePeople(50, 20, 2).known).not.toEqual(a.known);
    expect(biographyDocuments(a.known, 3, 5)).toEqual(biographyDocuments(a.known, 3, 5));
    expect(biographyDocuments(a.known, 3, 5)).not.toEqual(biographyDocuments(a.known, 3, 6));
  });

  it('never-existed people have names no known person has, and no document mentions them', () => {
    const { known, neverExisted } = makePeople(300, 100, 3);
    expect(neverExisted).toHaveLength(100);
    const names = new Set(known.map((p) => p.name));
    expect(names.size).toBe(300);
    for (const p of neverExisted) expect(names.has(p.name), p.name).toBe(false);
    expect(new Set(neverExisted.map((p) => p.name)).size).toBe(100);
    const text = biographyDocuments(known, 2, 3).join('\n');
    for (const p of neverExisted) expect(text.includes(p.name), p.name).toBe(false);
    // The known people do not depend on how many never-existed ones are drawn after them.
    expect(makePeople(300, 7, 3).known).toEqual(known);
  });

  it('facts are well formed: real dates, capitals from countries-list as birth cities', () => {
    const pairs = new Set(Object.values(countries).map((c) => `${c.capital} in ${c.name}`));
    for (const p of makePeople(500, 0, 9).known) {
      const { year, month, day } = p.birthDate;
      expect(day >= 1 && day <= daysIn(year, month), `${p.name} ${year}-${month}-${day}`).toBe(true);
      const pair = `${p.birthCity} in ${p.birthCountry.replace(/^the /, '')}`;
      expect(pairs.has(pair), pair).toBe(true);
      expect(p.university).toMatch(/\w/);
    }
  });

  it('asking for more people than the names allow is a clear error', () => {
    expect(() => makePeople(NAME_COUNT, 0, 1)).toThrow(/more than the \d+ that the name lists allow; draw fewer/);
    expect(() => makePeople(-1, 0, 1)).toThrow('the count of known people must be >= 0, not -1');
  });
});

/** Every fact as a document states it. */
function factTexts(p: Person): string[] {
  const { year, month, day } = p.birthDate;
  return [`${MONTHS[month - 1]} ${day}, ${year}`, p.birthCity, p.university, p.major, p.employer, p.occupation];
}

describe('documents', () => {
  it('each states every fact of its person and names the person first; paraphrases and orders vary', () => {
    const { known } = makePeople(40, 0, 11);
    const per = 4;
    const docs = biographyDocuments(known, per, 12);
    expect(docs).toHaveLength(40 * per);
    const openings = new Set<string>();
    known.forEach((p, i) => {
      const mine = docs.slice(i * per, (i + 1) * per);
      for (const d of mine) {
        for (const f of factTexts(p)) expect(d, f).toContain(f);
        // The name once, in the first sentence; "they" afterwards.
        expect(d.split(p.name)).toHaveLength(2);
        expect(d.indexOf(p.name)).toBeLessThan(d.indexOf('.'));
        const first = d.slice(0, d.indexOf('.'));
        openings.add(
          factTexts(p)
            .map((f) => (first.includes(f) ? 1 : 0))
            .join(''),
        );
      }
      // Paraphrases: at least two of the four documents about a person differ.
      expect(new Set(mine).size, p.name).toBeGreaterThan(1);
    });
    // The first sentence states each kind of fact in some documents (the university's sentence holds the major).
    for (const f of ['100000', '010000', '001100', '000010', '000001']) expect([...openings]).toContain(f);
  });

  it('with fullName every sentence names the person, and the facts and their order are the same', () => {
    const { known } = makePeople(10, 0, 11);
    const plain = biographyDocuments(known, 2, 12);
    const full = biographyDocuments(known, 2, 12, { fullName: true });
    full.forEach((d, i) => {
      const p = known[Math.floor(i / 2)]!;
      const sentences = d.split(/(?<=\.) (?=[A-Z])/);
      expect(sentences).toHaveLength(5);
      for (const s of sentences) expect(s, d).toContain(p.name);
      expect(d).not.toMatch(/\b[Tt]hey\b|\btheir\b/);
      for (const f of factTexts(p)) expect(d.indexOf(f) >= 0, f).toBe(true);
      expect(d.replaceAll(p.name, '').length).toBeLessThan(plain[i]!.length);
    });
  });
});

describe('questions', () => {
  it('one question per fact, naming the person, the reply stating the reference answer', () => {
    const { known } = makePeople(20, 0, 4);
    const qs = factQuestions(known, 8);
    expect(qs).toHaveLength(20 * BIO_FACTS.length);
    expect(factQuestions(known, 8)).toEqual(qs);
    for (const [i, q] of qs.entries()) {
      const p = known[Math.floor(i / BIO_FACTS.length)];
      expect(q.person).toBe(p.name);
      expect(q.fact).toBe(BIO_FACTS[i % BIO_FACTS.length]);
      expect(q.question).toContain(p.name);
      expect(q.question).toMatch(/\?$/);
      expect(q.reply).toContain(q.answer);
      expect(factTexts(p)).toContain(q.answer);
    }
    expect(
      new Set(qs.filter((q) => q.fact === 'birthCity').map((q) => q.question.replace(q.person, 'N'))).size,
    ).toBeGreaterThan(1);
  });

  it('forms split the phrasings: disjoint forms never ask a fact the same way', () => {
    const { known } = makePeople(30, 0, 4);
    const phrasings = (forms: number[]) => {
      const qs = factQuestions(known, 8, new TemplateQuestions(BIO_FACTS, forms));
      return new Set(qs.map((q) => `${q.fact}: ${q.question.replace(q.person, 'N')}`));
    };
    const all = phrasings([0, 1, 2]);
    // Every fact in each of its QUESTION_FORMS phrasings, drawn over 30 people.
    expect(all.size).toBe(BIO_FACTS.length * QUESTION_FORMS);
    const parts = [[0, 1], [2], [0], [1]].map(phrasings);
    expect(parts.map((p) => p.size)).toEqual([2, 1, 1, 1].map((n) => n * BIO_FACTS.length));
    for (const q of parts[1]!) expect(parts[0]!.has(q), q).toBe(false);
    expect(new Set([...parts[0]!, ...parts[1]!])).toEqual(all);
    expect(new Set([...parts[2]!, ...parts[3]!])).toEqual(parts[0]);
    for (const bad of [[], [3], [-1], [0.5]]) {
      expect(() => new TemplateQuestions(BIO_FACTS, bad)).toThrow(/question forms must be indices in \[0, 3\)/);
    }
  });

  it('JSONL lines read back as conversations, with the reference beside them', async () => {
    const qs = factQuestions(makePeople(5, 0, 4).known, 1);
    const f = join(dir, 'q.jsonl');
    writeFileSync(f, qs.map((q) => questionJsonl(q)).join(''));
    const { conversations, stats } = await readConversationFile(f);
    expect(stats.formats.openai).toBe(qs.length);
    expect(conversations.map((c) => c.messages)).toEqual(
      qs.map((q) => [
        { role: 'user', content: q.question },
        { role: 'assistant', content: q.reply },
      ]),
    );
    const first = JSON.parse(questionJsonl(qs[0]!));
    expect([first.person, first.fact, first.answer]).toEqual([qs[0]!.person, qs[0]!.fact, qs[0]!.answer]);
  });
});

describe('writeBioData', () => {
  const o = { known: 30, neverExisted: 10, docsPerPerson: 3, seed: 5 };
  const read = (d: string) => Object.values(BIO_FILES).map((f) => readFileSync(join(d, f), 'utf8'));

  it('the same seed writes the same bytes; documents, questions and people read back', async () => {
    const [a, b] = [join(dir, 'a'), join(dir, 'b')];
    expect(writeBioData(a, o)).toEqual({ documents: 90, questions: 30 * BIO_FACTS.length, neverSeen: 60 });
    writeBioData(b, o);
    expect(read(b)).toEqual(read(a));
    expect(readdirSync(a).sort()).toEqual(Object.values(BIO_FILES).sort());
    const [docs, , , people] = read(a).map((t) =>
      t
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l)),
    );
    expect(docs.map((d: { id: string }) => d.id).slice(0, 2)).toEqual(['bio-00', 'bio-01']);
    expect(docs.every((d: { person: string; text: string }) => d.text.includes(d.person))).toBe(true);
    expect(people.filter((p: { known: boolean }) => !p.known)).toHaveLength(10);
    const neverSeen = await readConversationFile(join(a, BIO_FILES.neverSeen));
    expect(neverSeen.conversations).toHaveLength(60);
    const text = docs.map((d: { text: string }) => d.text).join('\n');
    for (const c of neverSeen.conversations) {
      const name = people.find((p: { name: string }) => c.messages[0]!.content.includes(p.name)).name;
      expect(text.includes(name), name).toBe(false);
    }
  });

  it('existing files are kept unless overwrite', () => {
    const d = join(dir, 'kept');
    writeBioData(d, o);
    const before = read(d);
    expect(() => writeBioData(d, { ...o, seed: 6 })).toThrow(
      `${join(d, BIO_FILES.documents)} already exists; choose another folder, or pass --overwrite to replace it`,
    );
    expect(read(d)).toEqual(before);
    writeBioData(d, { ...o, seed: 6, overwrite: true });
    expect(read(d)).not.toEqual(before);
  });
});
