// `wgpt probe`: which questions a model knows the answer to, from k sampled replies per question, judged and
// classified; one JSONL line per question and a report on stdout. And `wgpt chat bio`, the data to probe: fictional
// people, documents about them for pre-training, and questions about them.
import { closeSync, existsSync, openSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { intArg, numArg, UsageError } from '@wgpt/base';
import { withPath } from '@wgpt/base/errors';
import { GPT2, loadModelFile } from '@wgpt/gpt2';
import { Gpu } from '@wgpt/runtime';
import type { Command } from 'commander';
import { BIO_FILES, writeBioData } from './bio.ts';
import { checkModelForChat } from './chat.ts';
import { prepareModelForChat } from './embed.ts';
import { resolveChatFormat } from './format.ts';
import { MatchJudge } from './judge.ts';
import { probe, probeJsonl, readProbed, readProbeQuestions } from './probe.ts';
import { mixRefusals, probeReport, refusalData } from './refusal.ts';
import { conversationJsonl } from './synth.ts';

interface ProbeFlags {
  checkpoint: string;
  tokenizer: string;
  questions: string;
  samples: number;
  temperature: number;
  maxTokens: number;
  seed: number;
  knownAt: number;
  unknownAt: number;
  f1: number;
  out: string;
  overwrite?: boolean;
  json?: boolean;
}

async function probeCommand(o: ProbeFlags, adapter: string | undefined): Promise<void> {
  if (!(o.unknownAt < o.knownAt)) {
    throw new UsageError(`--unknown-at ${o.unknownAt} must be below --known-at ${o.knownAt}`);
  }
  if (!o.overwrite && existsSync(o.out)) {
    throw new UsageError(`--out ${o.out} already exists; choose another, or pass --overwrite to replace it`);
  }
  const cf = resolveChatFormat(o.tokenizer, '--tokenizer');
  let m = loadModelFile(o.checkpoint);
  // A model not yet fine-tuned for chat is probed as fine-tuning starts from it (new rows for the markers).
  if (m.config.V < cf.vocabSize) m = prepareModelForChat(m, cf, 0).model;
  else checkModelForChat(o.checkpoint, m.config, cf, o.tokenizer);
  const questions = await readProbeQuestions(o.questions);
  const judge = new MatchJudge({ f1Threshold: o.f1 });
  // Written to a temporary file renamed at the end, so that a failed run leaves no half file.
  const tmp = `${o.out}.tmp-${process.pid}`;
  const gpu = await Gpu.open({ adapter });
  let fd: number | undefined;
  try {
    fd = withPath(tmp, () => openSync(tmp, 'w'));
    const model = new GPT2(gpu, m.config, m.params);
    const results = await probe(model, cf, questions, judge, {
      ...o,
      onResult: (r) => withPath(tmp, () => writeSync(fd!, probeJsonl(r))),
    });
    model.dispose();
    closeSync(fd);
    fd = undefined;
    withPath(o.out, () => renameSync(tmp, o.out));
    const report = probeReport(results);
    if (o.json) {
      console.log(JSON.stringify({ checkpoint: o.checkpoint, file: o.questions, out: o.out, ...report }));
      return;
    }
    const s = report.samples;
    console.log(
      `${report.questions} questions, ${o.samples} samples each at temperature ${o.temperature}: ` +
        `known ${report.known}, unknown ${report.unknown}, uncertain ${report.uncertain}\n` +
        `samples: right ${s.right}, wrong ${s.wrong}, refusal ${s.refusal}, empty ${s.empty}\n` +
        `per question: ${o.out}`,
    );
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  } finally {
    gpu.destroy();
  }
}

const MAX_SEED = 2 ** 32 - 1;

/** Registers `wgpt probe`. */
export function registerProbe(program: Command): void {
  program
    .command('probe')
    .description(
      'which questions a model knows: k sampled replies per question, judged against the reference answer ' +
        '(normalised match, token F1, refusals apart), each question classified known, unknown or uncertain',
    )
    .requiredOption('--checkpoint <path>', 'the model: llm.c .bin, checkpoint folder, or .safetensors')
    .option('--tokenizer <name|dir>', "the model's encoding or tokenizer folder", 'r50k_base')
    .requiredOption(
      '--questions <file>',
      'JSONL {"messages": [...], "answer"?}: the reference is "answer", else the reply',
    )
    .option('--samples <n>', 'sampled replies per question', intArg({ min: 1 }), 5)
    .option('--temperature <x>', 'softmax temperature of the samples (0: greedy)', numArg({ min: 0 }), 0.7)
    .option('--max-tokens <n>', 'the most tokens of a reply', intArg({ min: 1 }), 32)
    .option(
      '--seed <n>',
      'sampling seed (question i, sample j: seed + i * k + j)',
      intArg({ min: 0, max: MAX_SEED }),
      0,
    )
    .option(
      '--known-at <x>',
      'known when at least this share of the samples is right',
      numArg({ above: 0, max: 1 }),
      0.75,
    )
    .option('--unknown-at <x>', 'unknown when at most this share is right', numArg({ min: 0, below: 1 }), 0)
    .option('--f1 <x>', 'token F1 at or above which a reply is right', numArg({ above: 0, max: 1 }), 0.8)
    .requiredOption('--out <file>', 'one JSONL line per question: replies, verdicts, knowledge')
    .option('--overwrite', 'replace --out if it exists')
    .option('--json', 'print the report as JSON')
    .action(async (o: ProbeFlags, c: Command) => probeCommand(o, c.optsWithGlobals().adapter as string | undefined));
}

interface BioFlags {
  out: string;
  people: number;
  neverExisted: number;
  docs: number;
  seed: number;
  overwrite?: boolean;
}

/** Registers `chat bio` on the `chat` command. */
export function registerBio(chat: Command): void {
  chat
    .command('bio')
    .description(
      'write fictional people, documents about them (pre-training text) and questions about them and about ' +
        'people who never existed (fine-tuning and probing), all from one seed',
    )
    .requiredOption('-o, --out <dir>', `the folder: ${Object.values(BIO_FILES).join(', ')}`)
    .option('--people <n>', 'people the documents are about', intArg({ min: 1 }), 1000)
    .option(
      '--never-existed <n>',
      'people no document mentions, for questions that must be refused',
      intArg({ min: 0 }),
      200,
    )
    .option('--docs <n>', 'documents per person (paraphrases: other sentences, other orders)', intArg({ min: 1 }), 4)
    .option('--seed <n>', 'random seed (the same seed writes the same bytes)', intArg({ min: 0, max: MAX_SEED }), 0)
    .option('--overwrite', 'replace the files if they exist')
    .action((o: BioFlags) => {
      const r = writeBioData(o.out, { ...o, known: o.people, docsPerPerson: o.docs });
      console.log(
        `wrote ${r.documents} documents about ${o.people} people, ${r.questions} questions about them and ` +
          `${r.neverSeen} about ${o.neverExisted} people who never existed to ${o.out}`,
      );
    });
}

interface RefusalFlags {
  probe: string;
  out: string;
  refusalFraction: number;
  total?: number;
  seed: number;
  overwrite?: boolean;
}

async function refusalsCommand(o: RefusalFlags): Promise<void> {
  if (!o.overwrite && existsSync(o.out)) {
    throw new UsageError(`--out ${o.out} already exists; choose another, or pass --overwrite to replace it`);
  }
  const probed = await readProbed(o.probe);
  const data = refusalData(probed, o.seed, (q) => q);
  const mix = mixRefusals(data, { refusalFraction: o.refusalFraction, total: o.total, seed: o.seed });
  const tmp = `${o.out}.tmp-${process.pid}`;
  withPath(tmp, () => writeFileSync(tmp, mix.map((m) => conversationJsonl(m)).join('')));
  withPath(o.out, () => renameSync(tmp, o.out));
  const refusals = mix.filter((m) => data.refusals.includes(m)).length;
  console.log(
    `${o.probe}: ${data.answers.length} known and ${data.refusals.length} unknown questions ` +
      `(${probed.length - data.answers.length - data.refusals.length} uncertain left out); ` +
      `wrote ${mix.length} conversations, ${refusals} of them refusals, to ${o.out}`,
  );
}

/** Registers `chat refusals` on the `chat` command. */
export function registerRefusals(chat: Command): void {
  chat
    .command('refusals')
    .description(
      "fine-tuning data from wgpt probe's output: known questions with their replies, unknown ones answered " +
        'with a refusal, mixed at --refusal-fraction (uncertain ones left out)',
    )
    .requiredOption('--probe <file>', 'the JSONL that wgpt probe wrote')
    .requiredOption('-o, --out <file>', 'the conversations, JSONL {"messages": [...]}')
    .option('--refusal-fraction <x>', 'share of refusals in the mix', numArg({ min: 0, max: 1 }), 0.25)
    .option('--total <n>', 'conversations in the mix (default: as many as fit at the fraction)', intArg({ min: 0 }))
    .option('--seed <n>', 'seed of the refusal phrasings and of the mix', intArg({ min: 0, max: MAX_SEED }), 0)
    .option('--overwrite', 'replace --out if it exists')
    .action(async (o: RefusalFlags) => refusalsCommand(o));
}
