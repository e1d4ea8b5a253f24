// `wgpt experiment refusal`: does probing what a model knows and teaching it to refuse the rest (Llama 3's
// factuality recipe) make a model we train say "I don't know" about people it never saw, without losing what it
// knows? Everything is made here from one seed, so what the model knows is known by construction:
//   1. fictional people: `known` ones, documents about them (paraphrases); never-existed ones drawn the same way;
//   2. a byte-level BPE vocabulary trained on the documents and questions;
//   3. a small GPT-2 pre-trained on the documents (the only place the facts are stated);
//   4. SFT on questions about a share of the known people (two of the three question phrasings);
//   5. probing the SFT model: k sampled replies per question about every known person and about the never-existed
//      people set aside for training, each question classified known / unknown / uncertain;
//   6. SFT again, from the SFT model, on the probe's data: known questions keep their answers, unknown ones get a
//      refusal;
//   7. both models evaluated (greedy) on held-out questions (the third phrasing) about the known people and on
//      questions about never-existed people that no training step saw.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WgptError } from '@wgpt/base/errors';
import { ShardWriter } from '@wgpt/data';
import { Gpu } from '@wgpt/runtime';
import { GPT2, initParams, makeConfig, readLlmcModel, train, type ModelFile } from '@wgpt/gpt2';
import {
  BIO_FACTS,
  biographyDocuments,
  chatFormat,
  type ChatMessage,
  evaluateFactuality,
  type EvalQuestion,
  factualityTable,
  type FactQuestion,
  type FactualityMetrics,
  makePeople,
  MatchJudge,
  probe,
  probeJsonl,
  probeReport,
  type ProbeQuestion,
  type ProbeReport,
  verdictShare,
  type VerdictKind,
  type Person,
  QUESTION_FORMS,
  Rng,
  questionConversation,
  questionJsonl,
  REFUSALS,
  refusalData,
  renderConversation,
  sft,
  TemplateQuestions,
} from '@wgpt/chat';
import { saveTokenizer, trainBpe, trainedEncoding } from '@wgpt/tokenizer';

export interface RefusalExperimentOptions {
  out: string;
  seed: number;
  /** People the documents are about. */
  known: number;
  /** The share of the known people whose questions the first SFT trains on. */
  qaShare: number;
  /** Never-existed people whose questions are probed, and so become refusal data. */
  neverTrain: number;
  /** Never-existed people asked about only in the evaluation. */
  neverEval: number;
  docsPerPerson: number;
  vocabSize: number;
  L: number;
  C: number;
  NH: number;
  T: number;
  B: number;
  pretrainSteps: number;
  sftSteps: number;
  refusalSteps: number;
  lr: number;
  /** The learning rate of the refusal stage (it starts from a fine-tuned model: lower than `lr`). */
  refusalLr: number;
  /** Sampled replies per probed question, and their temperature. */
  samples: number;
  temperature: number;
  adapter?: string;
  log?: (s: string) => void;
}

export type RefusalSizes = Omit<RefusalExperimentOptions, 'out' | 'adapter' | 'log'>;

/**
 * The sizes of a run: `cpu` (the default) runs on SwiftShader in the time the README states; `gpu` is ten times the
 * people and a model of 6 layers and 256 channels for a GPU.
 */
export const REFUSAL_PRESETS: Record<'cpu' | 'gpu', RefusalSizes> = {
  cpu: {
    seed: 1,
    known: 48,
    qaShare: 0.75,
    neverTrain: 256,
    neverEval: 32,
    docsPerPerson: 6,
    vocabSize: 768,
    L: 2,
    C: 64,
    NH: 4,
    T: 64,
    B: 8,
    pretrainSteps: 1500,
    sftSteps: 600,
    refusalSteps: 800,
    lr: 3e-3,
    refusalLr: 1.5e-3,
    samples: 2,
    temperature: 0.7,
  },
  gpu: {
    seed: 1,
    known: 480,
    qaShare: 0.75,
    neverTrain: 480,
    neverEval: 200,
    docsPerPerson: 8,
    vocabSize: 2048,
    L: 6,
    C: 256,
    NH: 8,
    T: 128,
    B: 32,
    pretrainSteps: 6000,
    sftSteps: 2000,
    refusalSteps: 2000,
    lr: 1e-3,
    refusalLr: 5e-4,
    samples: 4,
    temperature: 0.7,
  },
};

/**
 * Questions about each person in the phrasings of one role. For person i and fact j, phrasing (i + j) mod 3 is held
 * out for the evaluation and the other two are for training and probing; so each phrasing is trained for two
 * thirds of the people and held out for the rest, and a held-out question is a new pairing of a phrasing the model
 * has learned with a fact it has learned.
 */
function rotatedQuestions(people: readonly Person[], role: 'train' | 'eval', seed: number): FactQuestion[] {
  const rng = new Rng(seed);
  return people.flatMap((p, i) =>
    BIO_FACTS.flatMap((fact, j) => {
      const held = (i + j) % QUESTION_FORMS;
      const forms = role === 'eval' ? [held] : [0, 1, 2].filter((f) => f !== held);
      return forms.flatMap((f) => new TemplateQuestions([fact], [f]).questions(p, rng));
    }),
  );
}

export interface RefusalExperimentResult {
  sft: FactualityMetrics;
  refusal: FactualityMetrics;
  probe: ProbeReport;
  /** The verdicts on the held-out questions about people only in the documents (not in the metrics). */
  docOnly: { sft: VerdictKind[]; refusal: VerdictKind[] };
  table: string;
  checkpoints: { base: string; sft: string; refusal: string };
  tokenizer: string;
  seconds: number;
}

const asEval = (q: FactQuestion): EvalQuestion => ({
  messages: [{ role: 'user', content: q.question }],
  reference: q.answer,
});

/**
 * Half of the never-existed people whose questions teach refusals (every other one) renamed to a known person's given
 * name with another known person's surname: the closest misses, which teach the model that knowing both parts of a
 * name is not knowing the person. A mixed name that a known or never-existed person already has is skipped; when
 * none is left the person keeps the drawn name.
 */
function withMixedNames(people: Person[], known: readonly Person[], others: readonly Person[], seed: number): Person[] {
  const rng = new Rng(seed);
  const taken = new Set([...known, ...others, ...people].map((p) => p.name));
  const parts = known.map((p) => p.name.split(' ') as [string, string]);
  return people.map((p, i) => {
    if (i % 2 === 1 || known.length < 2) return p;
    for (let tries = 0; tries < 20; tries++) {
      const name = `${rng.pick(parts)[0]} ${rng.pick(parts)[1]}`;
      if (taken.has(name)) continue;
      taken.add(name);
      return { ...p, name };
    }
    return p;
  });
}

export async function runRefusalExperiment(o: RefusalExperimentOptions): Promise<RefusalExperimentResult> {
  const log = o.log ?? ((s: string) => console.log(s));
  const t0 = performance.now();
  const secs = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
  if (!(o.qaShare > 0 && o.qaShare <= 1)) throw new WgptError(`the QA share must be in (0, 1], not ${o.qaShare}`);
  mkdirSync(o.out, { recursive: true });

  // ---- 1. people, documents, questions
  const people = makePeople(o.known, o.neverTrain + o.neverEval, o.seed);
  const nQa = Math.max(1, Math.round(o.known * o.qaShare));
  const qaPeople = people.known.slice(0, nQa);
  const docOnly = people.known.slice(nQa);
  const neverEval = people.neverExisted.slice(o.neverTrain);
  const neverTrain = withMixedNames(people.neverExisted.slice(0, o.neverTrain), people.known, neverEval, o.seed + 9);
  // Every sentence names its person: a training window that starts mid-document still says whose fact it is.
  const docs = biographyDocuments(people.known, o.docsPerPerson, o.seed + 1, { fullName: true });
  const valDocs = biographyDocuments(people.known, 1, o.seed + 2, { fullName: true });
  const sftQuestions = rotatedQuestions(qaPeople, 'train', o.seed + 3);
  const probeQuestions = [
    ...sftQuestions,
    ...rotatedQuestions(docOnly, 'train', o.seed + 4),
    ...rotatedQuestions(neverTrain, 'train', o.seed + 5),
  ];
  const evalQa = rotatedQuestions(qaPeople, 'eval', o.seed + 6);
  const evalDocOnly = rotatedQuestions(docOnly, 'eval', o.seed + 7);
  const evalNever = rotatedQuestions(neverEval, 'eval', o.seed + 8);
  const dataDir = join(o.out, 'data');
  mkdirSync(dataDir, { recursive: true });
  const writeQuestions = (name: string, qs: FactQuestion[]) =>
    writeFileSync(join(dataDir, name), qs.map((q) => questionJsonl(q)).join(''));
  writeFileSync(join(dataDir, 'documents.txt'), `${docs.join('\n')}\n`);
  writeQuestions('sft.jsonl', sftQuestions);
  writeQuestions('eval-known.jsonl', evalQa);
  writeQuestions('eval-documents-only.jsonl', evalDocOnly);
  writeQuestions('eval-never-seen.jsonl', evalNever);
  log(
    `== 1. people: ${o.known} in ${docs.length} documents (${o.docsPerPerson} paraphrases each), ` +
      `${nQa} of them with questions in fine-tuning; ${o.neverTrain} never-existed people to probe, ` +
      `${o.neverEval} more only in the evaluation (seed ${o.seed}); every other one probed is named with a known ` +
      `person's given name and another's surname; files in ${dataDir}`,
  );
  log(`   e.g. "${docs[0]}"`);

  // ---- 2. tokenizer
  const questionText = probeQuestions.map((q) => `${q.question} ${q.reply}`);
  const bpe = trainBpe([...docs, ...questionText, ...REFUSALS], {
    vocabSize: o.vocabSize,
    pattern: 'gpt2',
    specialTokens: ['<|endoftext|>'],
  });
  const tokDir = join(o.out, 'tokenizer');
  saveTokenizer(tokDir, bpe, 'bio');
  const enc = trainedEncoding(bpe, 'bio');
  const cf = chatFormat(enc);
  log(`== 2. tokenizer: byte-level BPE of ${o.vocabSize} tokens trained on the documents and questions (${secs()})`);

  // Every conversation the fine-tuning stages can make must fit in a row: checked now, before any training.
  const longestRefusal = REFUSALS.reduce((a, r) => (r.length > a.length ? r : a));
  let longest = 0;
  for (const q of [...probeQuestions, ...evalQa, ...evalDocOnly, ...evalNever]) {
    for (const reply of [q.reply, longestRefusal]) {
      longest = Math.max(longest, renderConversation(cf, questionConversation(q, reply)).ids.length);
    }
  }
  if (longest > o.T) {
    throw new WgptError(
      `a question with its reply takes up to ${longest} tokens, more than the context ${o.T}: ` +
        `raise --context, or --vocab-size for shorter tokens`,
    );
  }
  // ---- 3. pre-training
  const shardDir = join(o.out, 'shards');
  const files: Record<'train' | 'val', string[]> = { train: [], val: [] };
  let tokens = 0;
  for (const [split, part] of [
    ['train', docs],
    ['val', valDocs],
  ] as const) {
    const w = new ShardWriter({ dir: shardDir, prefix: 'bio', split, part: 0, nVocab: enc.nVocab });
    for (const d of part) {
      const ids = [enc.eotToken, ...enc.encodeOrdinary(d)];
      if (split === 'train') tokens += ids.length;
      w.addDocument(ids);
    }
    files[split] = w.close().map((s) => join(shardDir, s.file));
  }
  const gpu = await Gpu.open({ adapter: o.adapter });
  try {
    const config = makeConfig({ L: o.L, C: o.C, NH: o.NH, V: enc.nVocab, maxT: o.T });
    const epochs = (o.pretrainSteps * o.B * o.T) / tokens;
    log(
      `== 3. pre-training GPT-2 (L=${o.L}, C=${o.C}, NH=${o.NH}, context ${o.T}) on ${gpu.describe()}: ` +
        `${tokens} tokens of documents, ${o.pretrainSteps} steps of ${o.B}x${o.T} (${epochs.toFixed(0)} epochs); ` +
        'validation on new paraphrases of the same facts',
    );
    const quiet = (s: string) => {
      // Step lines only every 100 steps: the experiment's own lines are the ones to read.
      const m = /^step\s+(\d+)\//.exec(s);
      if (!m || Number(m[1]) % 100 === 0) log(`   ${s}`);
    };
    const pre = await train(gpu, {
      config,
      init: initParams(config, o.seed),
      trainFiles: files.train,
      valFiles: files.val,
      B: o.B,
      T: o.T,
      totalBatchTokens: o.B * o.T,
      steps: o.pretrainSteps,
      lr: o.lr,
      warmupSteps: Math.round(o.pretrainSteps / 50),
      finalLrFrac: 0.1,
      weightDecay: 0,
      maxNorm: 1,
      valEvery: Math.max(1, Math.round(o.pretrainSteps / 3)),
      valBatches: 4,
      sampleEvery: 0,
      sampleTokens: 0,
      checkpointEvery: 0,
      outDir: join(o.out, 'base'),
      seed: o.seed,
      eotToken: enc.eotToken,
      log: quiet,
    });
    log(`   validation loss ${pre.valLosses.at(-1)?.loss.toFixed(3)} (${secs()})`);
    const base = readLlmcModel(join(pre.checkpoint, 'model.bin'));

    // ---- 4. SFT on questions about part of the people
    const fineTune = async (
      name: string,
      from: ModelFile,
      convs: ChatMessage[][],
      steps: number,
      seed: number,
      lr = o.lr,
    ) => {
      const r = await sft(gpu, {
        base: from,
        cf,
        train: convs.map((m) => renderConversation(cf, m)),
        val: [],
        dataName: name,
        mode: 'pack',
        B: o.B,
        T: o.T,
        totalBatchTokens: o.B * o.T,
        steps,
        lr,
        warmupSteps: Math.round(steps / 20),
        finalLrFrac: 0.1,
        weightDecay: 0,
        maxNorm: 1,
        valEvery: 0,
        valBatches: 0,
        sampleEvery: 0,
        sampleTokens: 0,
        checkpointEvery: 0,
        outDir: join(o.out, name),
        seed,
        log: quiet,
      });
      return { checkpoint: r.checkpoint, model: readLlmcModel(join(r.checkpoint, 'model.bin')) };
    };
    log(
      `== 4. fine-tuning (SFT) on ${sftQuestions.length} questions about ${nQa} people ` +
        `(2 of the 3 phrasings of each fact), ${o.sftSteps} steps`,
    );
    const first = await fineTune(
      'sft',
      base,
      sftQuestions.map((q) => questionConversation(q)),
      o.sftSteps,
      o.seed,
    );
    log(`   (${secs()})`);

    // ---- 5. probing
    const judge = new MatchJudge();
    const asProbe = (q: FactQuestion, i: number): ProbeQuestion => ({
      messages: [{ role: 'user', content: q.question }],
      reference: q.answer,
      reply: q.reply,
      where: `question ${i}`,
      extra: { person: q.person, fact: q.fact },
    });
    log(
      `== 5. probing the SFT model: ${probeQuestions.length} questions (about the ${o.known} known people and ` +
        `${o.neverTrain} never-existed ones), ${o.samples} samples each at temperature ${o.temperature}`,
    );
    const sftModel = new GPT2(gpu, first.model.config, first.model.params);
    const probed = await (async () => {
      try {
        return await probe(sftModel, cf, probeQuestions.map(asProbe), judge, {
          samples: o.samples,
          temperature: o.temperature,
          maxTokens: 24,
          seed: o.seed,
        });
      } finally {
        sftModel.dispose();
      }
    })();
    const report = probeReport(probed);
    const kinds = (from: number, to: number) => {
      const r = probeReport(probed.slice(from, to));
      return `known ${r.known}, unknown ${r.unknown}, uncertain ${r.uncertain}`;
    };
    const nDoc = 2 * docOnly.length * BIO_FACTS.length;
    log(
      `   questions in the SFT data: ${kinds(0, sftQuestions.length)}\n` +
        `   about people only in the documents: ${kinds(sftQuestions.length, sftQuestions.length + nDoc)}\n` +
        `   about never-existed people: ${kinds(sftQuestions.length + nDoc, probed.length)} (${secs()})`,
    );
    writeFileSync(
      join(dataDir, 'probe.jsonl'),
      // wgpt probe's own lines, so that `wgpt chat refusals --probe` reads them.
      probed.map(probeJsonl).join(''),
    );

    // ---- 6. SFT again with refusals
    const data = refusalData(probed, o.seed, (q) => ({ messages: q.messages, reply: q.reply }));
    // The known answers are replayed until they are at least a third of the mix: refusals far outnumber them (most
    // probed people never existed), and without replay the refusal stage wears away what the model knew.
    const copies = data.answers.length ? Math.max(1, Math.ceil(data.refusals.length / (2 * data.answers.length))) : 1;
    const mix = [...Array.from({ length: copies }, () => data.answers).flat(), ...data.refusals];
    log(
      `== 6. fine-tuning again, from the SFT model: ${data.answers.length} known questions with their answers ` +
        `(${copies} copies of each), ${data.refusals.length} unknown ones with a refusal ("${REFUSALS[0]}", ...), ` +
        `${o.refusalSteps} steps at learning rate ${o.refusalLr}`,
    );
    if (mix.length === 0) throw new WgptError('the probe classified every question uncertain: no data to train on');
    const second = await fineTune('refusal', first.model, mix, o.refusalSteps, o.seed + 1, o.refusalLr);
    log(`   (${secs()})`);

    // ---- 7. evaluation
    log(
      `== 7. evaluation (greedy) on held-out phrasings: ${evalQa.length} questions about the people with ` +
        `questions in SFT, ${evalDocOnly.length} about people only in the documents, ${evalNever.length} about ` +
        'never-existed people that no training step saw',
    );
    const evaluate = async (m: ModelFile) => {
      const model = new GPT2(gpu, m.config, m.params);
      try {
        const sets = { known: evalQa.map(asEval), neverSeen: evalNever.map(asEval), other: evalDocOnly.map(asEval) };
        return await evaluateFactuality(model, cf, sets, judge, 24);
      } finally {
        model.dispose();
      }
    };
    const before = await evaluate(first.model);
    const after = await evaluate(second.model);
    const docOnlyRows = (
      [
        ['accuracy', ['right']],
        ['refusal', ['refusal']],
        ['hallucination', ['wrong']],
      ] as const
    ).map(([what, kinds]) => ({
      label: `people only in documents: ${what}`,
      values: [before, after].map((e) => verdictShare(e.other, ...kinds)),
    }));
    const table = factualityTable(
      [
        { name: 'SFT', metrics: before.metrics },
        { name: 'SFT + refusals', metrics: after.metrics },
      ],
      docOnlyRows,
    );
    log(table);
    const examples = [
      [evalQa[0]!, after.known[0]!],
      [evalNever[0]!, after.neverSeen[0]!],
    ] as const;
    log(
      `== after refusal training:\n` +
        examples.map(([q, j]) => `   user: ${q.question}\n   assistant: ${j.reply}`).join('\n'),
    );
    const seconds = (performance.now() - t0) / 1000;
    const result: RefusalExperimentResult = {
      sft: before.metrics,
      refusal: after.metrics,
      probe: report,
      docOnly: { sft: before.other.map((j) => j.verdict.kind), refusal: after.other.map((j) => j.verdict.kind) },
      table,
      checkpoints: { base: pre.checkpoint, sft: first.checkpoint, refusal: second.checkpoint },
      tokenizer: tokDir,
      seconds,
    };
    writeFileSync(
      join(o.out, 'results.json'),
      `${JSON.stringify({ options: { ...o, log: undefined }, ...result }, null, 2)}\n`,
    );
    log(
      `== done in ${secs()}; results in ${join(o.out, 'results.json')}\n` +
        `   chat with it: pnpm wgpt chat --checkpoint ${second.checkpoint} --tokenizer ${tokDir}`,
    );
    return result;
  } finally {
    gpu.destroy();
  }
}
