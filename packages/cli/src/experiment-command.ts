// `wgpt experiment refusal`: the controlled factuality experiment (refusal-experiment.ts), every size a flag with
// the CPU-sized default.
import { existsSync, readdirSync } from 'node:fs';
import { intArg, numArg, UsageError } from '@wgpt/base';
import type { Command } from 'commander';
import { REFUSAL_DEFAULTS, type RefusalExperimentOptions } from './refusal-experiment.ts';

type Flags = Omit<RefusalExperimentOptions, 'adapter' | 'log' | 'L' | 'C' | 'NH' | 'T' | 'B' | 'docsPerPerson'> & {
  overwrite?: boolean;
  json?: boolean;
};
type SizeFlags = { layers: number; channels: number; heads: number; context: number; batch: number; docs: number };

export function registerExperiment(program: Command): void {
  const experiment = program.command('experiment').description('controlled experiments run end to end from one seed');
  const d = REFUSAL_DEFAULTS;
  experiment
    .command('refusal')
    .description(
      'fictional people → pre-training on documents about them → SFT on questions about some → probing → SFT ' +
        'with refusals for what the model does not know → accuracy, refusal and hallucination before and after',
    )
    .option('--out <dir>', 'output folder', 'out/refusal')
    .option('--overwrite', 'reuse --out if it holds an earlier run')
    .option(
      '--seed <n>',
      'the seed of everything (the same seed gives the same table)',
      intArg({ min: 0, max: 2 ** 31 - 1 }),
      d.seed,
    )
    .option('--known <n>', 'people the documents are about', intArg({ min: 1 }), d.known)
    .option('--qa-share <x>', 'share of them with questions in SFT', numArg({ above: 0, max: 1 }), d.qaShare)
    .option('--never-train <n>', 'never-existed people probed (refusal data)', intArg({ min: 0 }), d.neverTrain)
    .option('--never-eval <n>', 'never-existed people in the evaluation only', intArg({ min: 1 }), d.neverEval)
    .option('--docs <n>', 'documents (paraphrases) per person', intArg({ min: 1 }), d.docsPerPerson)
    .option('--vocab-size <n>', 'BPE vocabulary size', intArg({ min: 300, max: 65536 }), d.vocabSize)
    .option('--layers <n>', 'transformer layers', intArg({ min: 1 }), d.L)
    .option('--channels <n>', 'channels (a multiple of --heads)', intArg({ min: 1 }), d.C)
    .option('--heads <n>', 'attention heads', intArg({ min: 1 }), d.NH)
    .option('-T, --context <n>', 'context length', intArg({ min: 16 }), d.T)
    .option('-B, --batch <n>', 'rows per step', intArg({ min: 1 }), d.B)
    .option('--pretrain-steps <n>', 'pre-training steps', intArg({ min: 1 }), d.pretrainSteps)
    .option('--sft-steps <n>', 'first fine-tuning steps', intArg({ min: 1 }), d.sftSteps)
    .option('--refusal-steps <n>', 'fine-tuning steps with refusals', intArg({ min: 1 }), d.refusalSteps)
    .option('--lr <x>', 'peak learning rate of every stage', numArg({ above: 0 }), d.lr)
    .option('--samples <n>', 'sampled replies per probed question', intArg({ min: 1 }), d.samples)
    .option('--temperature <x>', 'temperature of the probe', numArg({ min: 0 }), d.temperature)
    .option('--json', 'print the results as JSON at the end')
    .action(async (f: Flags & SizeFlags, c: Command) => {
      if (f.channels % f.heads !== 0) {
        throw new UsageError(`--channels ${f.channels} is not a multiple of --heads ${f.heads}`);
      }
      if (!f.overwrite && existsSync(f.out) && readdirSync(f.out).length > 0) {
        throw new UsageError(`--out ${f.out} already holds files; choose another folder, or pass --overwrite`);
      }
      const { runRefusalExperiment } = await import('./refusal-experiment.ts');
      const r = await runRefusalExperiment({
        ...f,
        docsPerPerson: f.docs,
        L: f.layers,
        C: f.channels,
        NH: f.heads,
        T: f.context,
        B: f.batch,
        adapter: c.optsWithGlobals().adapter as string | undefined,
      });
      if (f.json) console.log(JSON.stringify(r));
    });
}
