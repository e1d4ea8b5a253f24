// Probing to refusal data: classification thresholds, report counts, refusal conversations (and that they render and
// mask like any other), exact counts of the mix, and the metrics on a hand-counted case.
import { Tiktoken } from 'js-tiktoken/lite';
import gpt2 from 'js-tiktoken/ranks/gpt2';
import { describe, expect, it } from 'vitest';
import {
  askedFact,
  type ChatMessage,
  type Classified,
  classify,
  type FactQuestion,
  factQuestions,
  factualityMetrics,
  type FactualityData,
  makePeople,
  mixCounts,
  mixRefusals,
  probeReport,
  REFUSALS,
  refusalData,
  renderConversation,
  resolveChatFormat,
  type Verdict,
  type VerdictKind,
} from '../src/index.ts';

const v = (...kinds: VerdictKind[]): Verdict[] => kinds.map((kind) => ({ kind, score: kind === 'right' ? 1 : 0 }));

describe('classification', () => {
  it('known, unknown and uncertain at the default and at given thresholds', () => {
    expect(classify('q', v('right', 'right', 'right', 'right')).knowledge).toBe('known');
    expect(classify('q', v('right', 'right', 'right', 'wrong')).knowledge).toBe('known');
    expect(classify('q', v('right', 'right', 'wrong', 'wrong')).knowledge).toBe('uncertain');
    expect(classify('q', v('right', 'wrong', 'wrong', 'wrong')).knowledge).toBe('uncertain');
    // Refused and empty samples are not right.
    expect(classify('q', v('wrong', 'refusal', 'empty', 'wrong')).knowledge).toBe('unknown');
    const c = classify('q', v('right', 'right', 'right', 'wrong'), { knownAt: 1 });
    expect([c.knowledge, c.rightFraction]).toEqual(['uncertain', 0.75]);
    expect(classify('q', v('right', 'wrong', 'wrong', 'wrong'), { unknownAt: 0.25 }).knowledge).toBe('unknown');
  });

  it('bad thresholds and no samples are clear errors', () => {
    expect(() => classify('q', v('right'), { knownAt: 0.5, unknownAt: 0.5 })).toThrow(
      'classification needs 0 <= unknownAt < knownAt <= 1, not unknownAt 0.5 and knownAt 0.5',
    );
    expect(() => classify('q', [])).toThrow('a question needs at least one judged sample to be classified');
  });

  it('the report counts questions and samples', () => {
    const cs = [
      classify('a', v('right', 'right')),
      classify('b', v('wrong', 'refusal')),
      classify('c', v('right', 'empty')),
      classify('d', v('right', 'right')),
    ];
    expect(probeReport(cs)).toEqual({
      questions: 4,
      known: 2,
      unknown: 1,
      uncertain: 1,
      samples: { right: 5, wrong: 1, refusal: 1, empty: 1 },
    });
  });
});

/** Questions classified in turn known, unknown, uncertain. */
function classified(n: number): Classified<FactQuestion>[] {
  const qs = factQuestions(makePeople(n, 0, 2).known, 3).slice(0, n);
  const samples = [v('right', 'right'), v('wrong', 'wrong'), v('right', 'wrong')];
  return qs.map((q, i) => classify(q, samples[i % 3]!));
}

describe('refusal data', () => {
  it('unknown questions get a refusal, known ones their reference reply, uncertain ones nothing', () => {
    const cs = classified(30);
    const data = refusalData(cs, 5, askedFact);
    expect(data.answers).toHaveLength(10);
    expect(data.refusals).toHaveLength(10);
    expect(data.answers).toEqual(
      cs
        .filter((_, i) => i % 3 === 0)
        .map((c) => [
          { role: 'user', content: c.question.question },
          { role: 'assistant', content: c.question.reply },
        ]),
    );
    const unknown = cs.filter((_, i) => i % 3 === 1);
    data.refusals.forEach((m, i) => {
      expect(m[0]).toEqual({ role: 'user', content: unknown[i]!.question.question });
      expect(m[1]!.role).toBe('assistant');
      expect(REFUSALS).toContain(m[1]!.content);
    });
    // Seeded: the same seed draws the same phrasings, and more than one of them.
    expect(refusalData(cs, 5, askedFact)).toEqual(data);
    expect(new Set(data.refusals.map((m) => m[1]!.content)).size).toBeGreaterThan(1);
  });

  it('a refusal renders and masks like any other reply: its tokens and <|im_end|> are trained', () => {
    const cf = resolveChatFormat('r50k_base');
    // GPT-2's ranks through js-tiktoken, independent of wgpt's tokenizer; <|im_end|> is 50258 in r50k_base.
    const ref = new Tiktoken(gpt2);
    for (const refusal of REFUSALS) {
      const messages: ChatMessage[] = [
        { role: 'user', content: 'Where was Ada Varga born?' },
        { role: 'assistant', content: refusal },
      ];
      const { ids, mask } = renderConversation(cf, messages);
      const trained = Array.from(ids).filter((_, i) => mask[i] === 1);
      expect(trained).toEqual([...ref.encode(refusal), 50258]);
      // The trained tokens are the last ones: nothing after the refusal's <|im_end|>.
      expect(Array.from(mask.slice(ids.length - trained.length))).toEqual(trained.map(() => 1));
    }
  });
});

describe('mixing', () => {
  const conv = (tag: string, i: number): ChatMessage[] => [
    { role: 'user', content: `${tag} ${i}` },
    { role: 'assistant', content: tag },
  ];
  const data = (nR: number, nA: number): FactualityData => ({
    refusals: Array.from({ length: nR }, (_, i) => conv('refusal', i)),
    answers: Array.from({ length: nA }, (_, i) => conv('answer', i)),
  });
  const counts = (mix: ChatMessage[][]) => ({
    refusals: mix.filter((m) => m[1]!.content === 'refusal').length,
    answers: mix.filter((m) => m[1]!.content === 'answer').length,
    distinct: new Set(mix.map((m) => m[0]!.content)).size,
  });

  it('exact counts at a given total, each conversation at most once, seeded', () => {
    const mix = mixRefusals(data(10, 30), { refusalFraction: 0.25, total: 20, seed: 1 });
    expect(counts(mix)).toEqual({ refusals: 5, answers: 15, distinct: 20 });
    expect(mixRefusals(data(10, 30), { refusalFraction: 0.25, total: 20, seed: 1 })).toEqual(mix);
    expect(mixRefusals(data(10, 30), { refusalFraction: 0.25, total: 20, seed: 2 })).not.toEqual(mix);
    expect(mixCounts(0.3, 7)).toEqual({ refusals: 2, answers: 5 });
  });

  it('by default as many as fit at the fraction', () => {
    expect(counts(mixRefusals(data(10, 30), { refusalFraction: 0.25, seed: 1 }))).toEqual({
      refusals: 10,
      answers: 30,
      distinct: 40,
    });
    // 21 would need round(10.5) = 11 refusals.
    expect(counts(mixRefusals(data(10, 30), { refusalFraction: 0.5, seed: 1 }))).toEqual({
      refusals: 10,
      answers: 10,
      distinct: 20,
    });
    // 11 rounds to 1 refusal and 10 answers: more than the fraction's plain quotient of 10 allows.
    expect(counts(mixRefusals(data(1, 10), { refusalFraction: 0.1, seed: 1 }))).toMatchObject({
      refusals: 1,
      answers: 10,
    });
    expect(counts(mixRefusals(data(4, 6), { refusalFraction: 0, seed: 1 }))).toMatchObject({ refusals: 0, answers: 6 });
    expect(counts(mixRefusals(data(4, 6), { refusalFraction: 1, seed: 1 }))).toMatchObject({ refusals: 4, answers: 0 });
  });

  it('asking for more than there is is a clear error', () => {
    expect(() => mixRefusals(data(10, 30), { refusalFraction: 0.5, total: 30, seed: 1 })).toThrow(
      'a mix of 30 at refusal fraction 0.5 needs 15 refusals and 15 answers; ' +
        'there are 10 and 30: ask for a smaller total',
    );
    expect(() => mixRefusals(data(1, 1), { refusalFraction: 1.5, seed: 1 })).toThrow(
      'the refusal fraction must be in [0, 1], not 1.5',
    );
  });
});

describe('metrics', () => {
  it('accuracy, over-refusal and hallucination as counted by hand', () => {
    const known = v('right', 'right', 'right', 'wrong', 'refusal', 'empty');
    const neverSeen = v('refusal', 'refusal', 'refusal', 'wrong', 'right');
    expect(factualityMetrics(known, neverSeen)).toEqual({
      known: { n: 6, accuracy: 3 / 6, overRefusal: 1 / 6, hallucination: 1 / 6 },
      // A right guess about someone who never existed is made up all the same.
      neverSeen: { n: 5, refusal: 3 / 5, hallucination: 2 / 5 },
      hallucination: 3 / 11,
    });
    expect(factualityMetrics([], [])).toEqual({
      known: { n: 0, accuracy: null, overRefusal: null, hallucination: null },
      neverSeen: { n: 0, refusal: null, hallucination: null },
      hallucination: null,
    });
  });
});
