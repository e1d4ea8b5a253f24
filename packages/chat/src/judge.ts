// Judging a model's reply to a factual question against the reference answer: right, wrong, a refusal (which is
// neither right nor a hallucination) or empty. The default judge compares normalised text (exact match, the
// reference inside the reply, token F1 with a threshold); a stronger judge (another model) can take its place
// behind the same interface.
import { WgptError } from '@wgpt/base/errors';

export type VerdictKind = 'right' | 'wrong' | 'refusal' | 'empty';

export interface Verdict {
  kind: VerdictKind;
  /** How well the reply matches the reference, 0 to 1 (0 for a refusal or an empty reply). */
  score: number;
}

export interface Judge {
  judge(reply: string, reference: string): Verdict;
}

/** The refusals that refusal data teaches; the detector below recognises each of them (tests check it). */
export const REFUSALS: readonly string[] = [
  "I'm sorry, I don't believe I know.",
  "I don't know.",
  "I'm sorry, but I don't know that.",
  "I'm not sure; I don't have that information.",
];

/**
 * Lower case, accents and punctuation removed (an apostrophe joins its word: "don't" is "dont"), the articles a,
 * an and the dropped, whitespace collapsed.
 */
export function normaliseAnswer(s: string): string {
  return s
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/['\u2019]/g, '')
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .split(' ')
    .filter((w) => w !== '' && w !== 'a' && w !== 'an' && w !== 'the')
    .join(' ');
}

const tokens = (s: string) =>
  s === ''
    ? []
    : normaliseAnswer(s)
        .split(' ')
        .filter((w) => w !== '');

/** Token F1 of a reply against a reference, over normalised words counted with multiplicity (SQuAD's measure). */
export function tokenF1(reply: string, reference: string): number {
  const r = tokens(reply);
  const ref = tokens(reference);
  if (r.length === 0 || ref.length === 0) return r.length === ref.length ? 1 : 0;
  const counts = new Map<string, number>();
  for (const w of ref) counts.set(w, (counts.get(w) ?? 0) + 1);
  let common = 0;
  for (const w of r) {
    const c = counts.get(w) ?? 0;
    if (c > 0) {
      common++;
      counts.set(w, c - 1);
    }
  }
  if (common === 0) return 0;
  const precision = common / r.length;
  const recall = common / ref.length;
  return (2 * precision * recall) / (precision + recall);
}

// Phrases of not knowing, in normalised form. "Sorry" alone is not one: a model may apologise and then answer.
const REFUSAL_PATTERN = new RegExp(
  '\\b(' +
    [
      'i dont know',
      'i do not know',
      'dont believe i know',
      'do not believe i know',
      'i am not sure',
      'im not sure',
      'i have no information',
      'i dont have (that|this|any) information',
      'i do not have (that|this|any) information',
      'i cannot answer',
      'i cant answer',
      'i am unable to answer',
      'im unable to answer',
      'i dont recognize',
      'i have never heard of',
      'no idea',
    ].join('|') +
    ')\\b',
);

/** Whether a reply declines to answer (says, in one of the usual phrasings, that the model does not know). */
export function isRefusal(reply: string): boolean {
  return REFUSAL_PATTERN.test(normaliseAnswer(reply));
}

export interface MatchJudgeOptions {
  /** Token F1 at or above this counts as right (default 0.8: "Lisbon University" for "University of Lisbon"). */
  f1Threshold?: number;
  /**
   * A reply that holds the whole normalised reference as a run of words is right (default true): the model answers
   * in a sentence ("Ada Varga was born in Lisbon.") and the reference is the fact ("Lisbon"). Lenient with a reply
   * that names two candidates.
   */
  containment?: boolean;
}

/** The default judge: refusal and empty replies first, then exact match, containment and token F1. */
export class MatchJudge implements Judge {
  readonly f1Threshold: number;
  readonly containment: boolean;

  constructor(o: MatchJudgeOptions = {}) {
    this.f1Threshold = o.f1Threshold ?? 0.8;
    if (!(this.f1Threshold > 0 && this.f1Threshold <= 1)) {
      throw new WgptError(`the judge's F1 threshold must be in (0, 1], not ${this.f1Threshold}`);
    }
    this.containment = o.containment ?? true;
  }

  judge(reply: string, reference: string): Verdict {
    const r = normaliseAnswer(reply);
    if (r === '') return { kind: 'empty', score: 0 };
    if (isRefusal(reply)) return { kind: 'refusal', score: 0 };
    const ref = normaliseAnswer(reference);
    if (ref === '') throw new WgptError(`the reference answer ${JSON.stringify(reference)} has no words to compare`);
    if (r === ref || (this.containment && ` ${r} `.includes(` ${ref} `))) return { kind: 'right', score: 1 };
    const score = tokenF1(reply, reference);
    return { kind: score >= this.f1Threshold ? 'right' : 'wrong', score };
  }
}
