// Evaluating factuality: greedy replies to questions about people the model was trained on and about people it
// never saw, judged, and the rates that say whether it answers what it knows and refuses what it does not
// (accuracy, over-refusal, hallucination, refusal). Also the side-by-side table that compares models.
import type { GPT2 } from '@wgpt/gpt2';
import type { ChatFormat } from './format.ts';
import type { Judge, Verdict } from './judge.ts';
import { sampleReplies } from './probe.ts';
import { factualityMetrics, type FactualityMetrics } from './refusal.ts';
import type { ChatMessage } from './render.ts';

/** A question to evaluate: the messages that ask it and the reference answer. */
export interface EvalQuestion {
  messages: ChatMessage[];
  reference: string;
}

export interface JudgedReply {
  reply: string;
  verdict: Verdict;
}

export interface FactualityEval {
  metrics: FactualityMetrics;
  known: JudgedReply[];
  neverSeen: JudgedReply[];
  /** The judged replies to `other`, which the metrics leave out. */
  other: JudgedReply[];
}

/**
 * Greedy replies (at most maxTokens) to both sets, judged, and their metrics; `other` questions (a group the
 * caller rates itself) are answered and judged in the same batches.
 */
export async function evaluateFactuality(
  model: GPT2,
  cf: ChatFormat,
  sets: { known: readonly EvalQuestion[]; neverSeen: readonly EvalQuestion[]; other?: readonly EvalQuestion[] },
  judge: Judge,
  maxTokens = 32,
): Promise<FactualityEval> {
  const all = [...sets.known, ...sets.neverSeen, ...(sets.other ?? [])];
  const replies = await sampleReplies(
    model,
    cf,
    all.map((q) => q.messages),
    { samples: 1, temperature: 0, maxTokens, seed: 0 },
  );
  const judged = all.map((q, i) => {
    const reply = replies[i]![0]!;
    return { reply, verdict: judge.judge(reply, q.reference) };
  });
  const known = judged.slice(0, sets.known.length);
  const neverSeen = judged.slice(sets.known.length, sets.known.length + sets.neverSeen.length);
  const other = judged.slice(sets.known.length + sets.neverSeen.length);
  return {
    metrics: factualityMetrics(
      known.map((j) => j.verdict),
      neverSeen.map((j) => j.verdict),
    ),
    known,
    neverSeen,
    other,
  };
}

/** The share of judged replies of the given kinds (null for none). */
export function verdictShare(judged: readonly JudgedReply[], ...kinds: Verdict['kind'][]): number | null {
  if (judged.length === 0) return null;
  return judged.filter((j) => kinds.includes(j.verdict.kind)).length / judged.length;
}

const pct = (x: number | null) => (x === null ? '-' : `${(100 * x).toFixed(1)}%`);

/** The metrics' rows: label, then the value per model. */
const ROWS: [string, (m: FactualityMetrics) => number | null][] = [
  ['known facts: accuracy', (m) => m.known.accuracy],
  ['known facts: over-refusal', (m) => m.known.overRefusal],
  ['known facts: hallucination', (m) => m.known.hallucination],
  ['never-seen people: refusal', (m) => m.neverSeen.refusal],
  ['never-seen people: hallucination', (m) => m.neverSeen.hallucination],
  ['hallucination, both sets', (m) => m.hallucination],
];

/**
 * A text table of the metrics of one or more models (columns), with the question counts in the header; `extra`
 * rows (a label and a rate per column) follow the metrics' rows.
 */
export function factualityTable(
  columns: readonly { name: string; metrics: FactualityMetrics }[],
  extra: readonly { label: string; values: readonly (number | null)[] }[] = [],
): string {
  const first = columns[0]?.metrics;
  const head = `questions: ${first?.known.n ?? 0} about known people, ${first?.neverSeen.n ?? 0} about never-seen`;
  const w0 = Math.max(...ROWS.map(([l]) => l.length), ...extra.map((e) => e.label.length));
  const widths = columns.map((c) => Math.max(c.name.length, 6));
  const line = (label: string, cells: string[]) =>
    `${label.padEnd(w0)}  ${cells.map((c, i) => c.padStart(widths[i]!)).join('  ')}`.trimEnd();
  return [
    head,
    line(
      '',
      columns.map((c) => c.name),
    ),
    ...ROWS.map(([label, f]) =>
      line(
        label,
        columns.map((c) => pct(f(c.metrics))),
      ),
    ),
    ...extra.map((e) => line(e.label, e.values.map(pct))),
  ].join('\n');
}
