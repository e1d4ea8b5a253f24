// From probing to refusal data and back to evaluation: a question is classified from k judged samples of the
// model's answers (known, unknown, uncertain); unknown questions become conversations that teach a refusal, known
// ones keep their reference reply, and the two are mixed at a chosen ratio. The metrics afterwards are pure
// functions of judged answers: accuracy and over-refusal on known facts, refusal and hallucination on people the
// model never saw.
import { WgptError } from '@wgpt/base/errors';
import { type FactQuestion, questionConversation } from './bio.ts';
import { REFUSALS, type Verdict, type VerdictKind } from './judge.ts';
import type { ChatMessage } from './render.ts';
import { Rng } from './rng.ts';

export type Knowledge = 'known' | 'unknown' | 'uncertain';

export interface ClassifyOptions {
  /** Known when at least this fraction of the samples is right (default 0.75). */
  knownAt?: number;
  /** Unknown when at most this fraction is right (default 0: every sample wrong, refused or empty). */
  unknownAt?: number;
}

export interface Classified<Q = FactQuestion> {
  question: Q;
  verdicts: Verdict[];
  /** The fraction of the samples judged right. */
  rightFraction: number;
  knowledge: Knowledge;
}

function thresholds(o: ClassifyOptions): { knownAt: number; unknownAt: number } {
  const knownAt = o.knownAt ?? 0.75;
  const unknownAt = o.unknownAt ?? 0;
  if (!(unknownAt >= 0 && unknownAt < knownAt && knownAt <= 1)) {
    throw new WgptError(
      `classification needs 0 <= unknownAt < knownAt <= 1, not unknownAt ${unknownAt} and knownAt ${knownAt}`,
    );
  }
  return { knownAt, unknownAt };
}

/** Classifies one question from its judged samples. */
export function classify<Q>(question: Q, verdicts: readonly Verdict[], o: ClassifyOptions = {}): Classified<Q> {
  const { knownAt, unknownAt } = thresholds(o);
  if (verdicts.length === 0) throw new WgptError('a question needs at least one judged sample to be classified');
  const right = verdicts.filter((v) => v.kind === 'right').length;
  const rightFraction = right / verdicts.length;
  const knowledge = rightFraction >= knownAt ? 'known' : rightFraction <= unknownAt ? 'unknown' : 'uncertain';
  return { question, verdicts: [...verdicts], rightFraction, knowledge };
}

export interface ProbeReport {
  questions: number;
  known: number;
  unknown: number;
  uncertain: number;
  /** Judged samples of every question together, per kind. */
  samples: Record<VerdictKind, number>;
}

/** Counts of classified questions and of their samples. */
export function probeReport(classified: readonly Classified<unknown>[]): ProbeReport {
  const r: ProbeReport = {
    questions: classified.length,
    known: 0,
    unknown: 0,
    uncertain: 0,
    samples: { right: 0, wrong: 0, refusal: 0, empty: 0 },
  };
  for (const c of classified) {
    r[c.knowledge]++;
    for (const v of c.verdicts) r.samples[v.kind]++;
  }
  return r;
}

// ---- refusal data

export interface FactualityData {
  /** Known questions with their reference replies. */
  answers: ChatMessage[][];
  /** Unknown questions answered with a refusal. */
  refusals: ChatMessage[][];
}

/** A question as refusal data needs it: the messages that ask it and the reply that answers it. */
export interface AskedQuestion {
  messages: ChatMessage[];
  reply: string;
}

/** A FactQuestion as an AskedQuestion: the user's question alone, and its reference reply. */
export function askedFact(q: FactQuestion): AskedQuestion {
  const [user, assistant] = questionConversation(q);
  return { messages: [user!], reply: assistant!.content };
}

/**
 * The conversations that classified questions teach: a known question keeps its reply, an unknown one gets a
 * refusal drawn from `refusals` (seeded); uncertain questions teach nothing and are left out. `asked` gives a
 * question's messages and reply (askedFact for FactQuestions; a probed question already has both).
 */
export function refusalData<Q>(
  classified: readonly Pick<Classified<Q>, 'question' | 'knowledge'>[],
  seed: number,
  asked: (q: Q) => AskedQuestion,
  refusals: readonly string[] = REFUSALS,
): FactualityData {
  if (refusals.length === 0) throw new WgptError('refusal data needs at least one refusal phrasing');
  const rng = new Rng(seed);
  const out: FactualityData = { answers: [], refusals: [] };
  for (const c of classified) {
    if (c.knowledge === 'uncertain') continue;
    const { messages, reply } = asked(c.question);
    const answer = c.knowledge === 'known' ? reply : rng.pick(refusals);
    (c.knowledge === 'known' ? out.answers : out.refusals).push([...messages, { role: 'assistant', content: answer }]);
  }
  return out;
}

export interface MixOptions {
  /** The fraction of refusals in the mix, 0 to 1. */
  refusalFraction: number;
  /** How many conversations (default: as many as the two lists allow at that fraction). */
  total?: number;
  seed: number;
}

/** How many refusals and answers a mix of `total` holds: round(fraction * total) refusals, the rest answers. */
export function mixCounts(refusalFraction: number, total: number): { refusals: number; answers: number } {
  const refusals = Math.round(refusalFraction * total);
  return { refusals, answers: total - refusals };
}

/**
 * Refusals and answers drawn without repetition at `refusalFraction` and shuffled together (seeded), to add to the
 * SFT data. Asking for more of either kind than there is is an error saying how many there are.
 */
export function mixRefusals(data: FactualityData, o: MixOptions): ChatMessage[][] {
  const f = o.refusalFraction;
  if (!(f >= 0 && f <= 1)) throw new WgptError(`the refusal fraction must be in [0, 1], not ${f}`);
  const nR = data.refusals.length;
  const nA = data.answers.length;
  let total = o.total;
  if (total === undefined) {
    // The largest total whose rounded counts both fit (a linear search: rounding makes a formula off by one).
    total = nR + nA;
    while (total > 0) {
      const c = mixCounts(f, total);
      if (c.refusals <= nR && c.answers <= nA) break;
      total--;
    }
  }
  if (!Number.isSafeInteger(total) || total < 0) throw new WgptError(`the mix's total must be >= 0, not ${total}`);
  const want = mixCounts(f, total);
  if (want.refusals > nR || want.answers > nA) {
    throw new WgptError(
      `a mix of ${total} at refusal fraction ${f} needs ${want.refusals} refusals and ${want.answers} answers; ` +
        `there are ${nR} and ${nA}: ask for a smaller total`,
    );
  }
  const rng = new Rng(o.seed);
  const take = (list: ChatMessage[][], n: number) => rng.shuffle([...list]).slice(0, n);
  return rng.shuffle([...take(data.refusals, want.refusals), ...take(data.answers, want.answers)]);
}

// ---- metrics

export interface FactualityMetrics {
  known: {
    n: number;
    /** Right answers on questions about known people. */
    accuracy: number | null;
    /** Refusals where the model was taught the fact. */
    overRefusal: number | null;
    /** Wrong answers given as answers (not refusals, not empty). */
    hallucination: number | null;
  };
  neverSeen: {
    n: number;
    /** Refusals on questions about people the model never saw: the higher the better. */
    refusal: number | null;
    /** Any answer at all about them is made up. */
    hallucination: number | null;
  };
  /** Confident wrong answers over all questions of both sets. */
  hallucination: number | null;
}

const rate = (k: number, n: number) => (n === 0 ? null : k / n);

/**
 * Metrics from judged answers to questions about known people and about never-seen ones. An answer about a
 * never-seen person that the judge found "right" (a lucky guess) counts as a hallucination too: the model cannot
 * know it. Rates are null over an empty set.
 */
export function factualityMetrics(known: readonly Verdict[], neverSeen: readonly Verdict[]): FactualityMetrics {
  const count = (vs: readonly Verdict[], ...kinds: VerdictKind[]) => vs.filter((v) => kinds.includes(v.kind)).length;
  const knownWrong = count(known, 'wrong');
  const madeUp = count(neverSeen, 'wrong', 'right');
  return {
    known: {
      n: known.length,
      accuracy: rate(count(known, 'right'), known.length),
      overRefusal: rate(count(known, 'refusal'), known.length),
      hallucination: rate(knownWrong, known.length),
    },
    neverSeen: {
      n: neverSeen.length,
      refusal: rate(count(neverSeen, 'refusal'), neverSeen.length),
      hallucination: rate(madeUp, neverSeen.length),
    },
    hallucination: rate(knownWrong + madeUp, known.length + neverSeen.length),
  };
}
