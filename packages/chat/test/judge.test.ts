// The default judge against hand-worked cases: normalisation, token F1, near misses that must be wrong, paraphrases
// that must be right, and refusals that are neither.
import { describe, expect, it } from 'vitest';
import { isRefusal, MatchJudge, normaliseAnswer, REFUSALS, tokenF1 } from '../src/index.ts';

describe('normalisation and token F1', () => {
  it('drops case, accents, punctuation, articles and extra whitespace', () => {
    expect(normaliseAnswer('  The University of   Lisbon! ')).toBe('university of lisbon');
    expect(normaliseAnswer('Bogotá, D.C.')).toBe('bogota d c');
    expect(normaliseAnswer("I don't know; an idea?")).toBe('i dont know idea');
    expect(normaliseAnswer('A pilot, an architect; THE end')).toBe('pilot architect end');
    expect(normaliseAnswer('...')).toBe('');
  });

  it('F1 as worked by hand', () => {
    // reply {march, 5, 1957}, reference {march, 4, 1957}: 2 in common, P = R = 2/3.
    expect(tokenF1('March 5, 1957', 'March 4, 1957')).toBeCloseTo(2 / 3, 12);
    // reply {lisbon, university}, reference {university, of, lisbon}: P = 1, R = 2/3, F1 = 2 * (2/3) / (5/3) = 0.8.
    expect(tokenF1('Lisbon University', 'the University of Lisbon')).toBeCloseTo(0.8, 12);
    // A repeated word counts once per occurrence in the reference: reply {paris, paris}, reference {paris}.
    expect(tokenF1('Paris Paris', 'Paris')).toBeCloseTo((2 * 0.5 * 1) / 1.5, 12);
    expect(tokenF1('Oslo', 'Lisbon')).toBe(0);
  });
});

describe('the default judge', () => {
  const judge = new MatchJudge();

  it('paraphrases and answers in a sentence are right', () => {
    expect(judge.judge('lisbon.', 'Lisbon')).toEqual({ kind: 'right', score: 1 });
    expect(judge.judge('Ada Varga was born in Lisbon.', 'Lisbon')).toEqual({ kind: 'right', score: 1 });
    expect(judge.judge('4 March 1957', 'March 4, 1957')).toEqual({ kind: 'right', score: 1 });
    expect(judge.judge('Lisbon University', 'University of Lisbon').kind).toBe('right');
    expect(judge.judge('She is an architect.', 'architect').kind).toBe('right');
    // An apology followed by an answer is an answer.
    expect(judge.judge("I'm sorry, she was born in Lisbon.", 'Lisbon').kind).toBe('right');
  });

  it('near misses are wrong', () => {
    const date = judge.judge('Ada Varga was born on March 5, 1957.', 'March 4, 1957');
    expect(date.kind).toBe('wrong');
    expect(judge.judge('University of Porto', 'University of Lisbon')).toEqual({ kind: 'wrong', score: 2 / 3 });
    expect(judge.judge('Ada works for Northwind Energy.', 'Northwind Logistics').kind).toBe('wrong');
    expect(judge.judge('Ada was born in Lisbonia.', 'Lisbon').kind).toBe('wrong');
    expect(judge.judge('1957', 'March 4, 1957').kind).toBe('wrong');
  });

  it('without containment a sentence is scored by F1 alone', () => {
    const strict = new MatchJudge({ containment: false });
    // reply of 6 words holding the 1-word reference: P = 1/6, R = 1, F1 = 2/7.
    expect(strict.judge('Ada Varga was born in Lisbon.', 'Lisbon')).toEqual({ kind: 'wrong', score: 2 / 7 });
    expect(
      new MatchJudge({ containment: false, f1Threshold: 0.25 }).judge('Ada Varga was born in Lisbon', 'Lisbon'),
    ).toEqual({ kind: 'right', score: 2 / 7 });
  });

  it('refusals are neither right nor wrong; empty replies are empty', () => {
    for (const r of REFUSALS) {
      expect(isRefusal(r), r).toBe(true);
      expect(judge.judge(r, 'Lisbon'), r).toEqual({ kind: 'refusal', score: 0 });
    }
    expect(judge.judge('Sorry, I have no information about Ada Varga.', 'Lisbon').kind).toBe('refusal');
    expect(judge.judge('I do not know where Ada Varga was born.', 'Lisbon').kind).toBe('refusal');
    expect(isRefusal('Ada Varga knows Lisbon well.')).toBe(false);
    expect(isRefusal('I know: Lisbon.')).toBe(false);
    expect(judge.judge('', 'Lisbon')).toEqual({ kind: 'empty', score: 0 });
    expect(judge.judge(' ?! ', 'Lisbon')).toEqual({ kind: 'empty', score: 0 });
  });

  it('bad settings and references are clear errors', () => {
    expect(() => new MatchJudge({ f1Threshold: 0 })).toThrow("the judge's F1 threshold must be in (0, 1], not 0");
    expect(() => judge.judge('Lisbon', 'the')).toThrow('the reference answer "the" has no words to compare');
  });
});
