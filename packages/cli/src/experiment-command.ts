// `wgpt experiment refusal`: the controlled factuality experiment (refusal-experiment.ts). Every size is a flag; a
// flag left out takes the preset's value (`--preset cpu`, the default, or `gpu`).
import { existsSync, readdirSync } from 'node:fs';
import { intArg, numArg, UsageError } from '@wgpt/base';
import { Option, type Command } from 'commander';
import { REFUSAL_PRESETS, type RefusalSizes } from './refusal-experiment.ts';

/** Each flag: its option text, the key of the sizes it sets, what it is, and its parser. */
const SIZE_FLAGS: [string, keyof RefusalSizes, string, (v: string) => number][] = [
  [
    '--seed <n>',
    'seed',
    'the seed of everything (the same seed gives the same table)',
    intArg({ min: 0, max: 2 ** 31 - 1 }),
  ],
  ['--known <n>', 'known', 'people the documents are about', intArg({ min: 1 })],
  ['--qa-share <x>', 'qaShare', 'share of them with questions in SFT', numArg({ above: 0, max: 1 })],
  [
    '--never-train <n>',
    'neverTrain',
    'never-existed people probed (their questions become refusals)',
    intArg({ min: 0 }),
  ],
  ['--never-eval <n>', 'neverEval', 'never-existed people in the evaluation only', intArg({ min: 1 })],
  ['--docs <n>', 'docsPerPerson', 'documents (paraphrases) per person', intArg({ min: 1 })],
  ['--vocab-size <n>', 'vocabSize', 'BPE vocabulary size', intArg({ min: 300, max: 65536 })],
  ['--layers <n>', 'L', 'transformer layers', intArg({ min: 1 })],
  ['--channels <n>', 'C', 'channels (a multiple of --heads)', intArg({ min: 1 })],
  ['--heads <n>', 'NH', 'attention heads', intArg({ min: 1 })],
  ['-T, --context <n>', 'T', 'context length', intArg({ min: 16 })],
  ['-B, --batch <n>', 'B', 'rows per step', intArg({ min: 1 })],
  ['--pretrain-steps <n>', 'pretrainSteps', 'pre-training steps', intArg({ min: 1 })],
  ['--sft-steps <n>', 'sftSteps', 'first fine-tuning steps', intArg({ min: 1 })],
  ['--refusal-steps <n>', 'refusalSteps', 'fine-tuning steps with refusals', intArg({ min: 1 })],
  ['--lr <x>', 'lr', 'peak learning rate of pre-training and the first SFT', numArg({ above: 0 })],
  ['--refusal-lr <x>', 'refusalLr', 'peak learning rate of the refusal stage', numArg({ above: 0 })],
  ['--samples <n>', 'samples', 'sampled replies per probed question', intArg({ min: 1 })],
  ['--temperature <x>', 'temperature', 'temperature of the probe', numArg({ min: 0 })],
];

/** Commander's attribute name of a flag ("--qa-share <x>" → qaShare). */
const attribute = (flags: string) => /--([\w-]+)/.exec(flags)![1]!.replace(/-(\w)/g, (_, c: string) => c.toUpperCase());

export function registerExperiment(program: Command): void {
  const experiment = program.command('experiment').description('controlled experiments run end to end from one seed');
  const cmd = experiment
    .command('refusal')
    .description(
      'fictional people → pre-training on documents about them → SFT on questions about some → probing → SFT ' +
        'with refusals for what the model does not know → accuracy, refusal and hallucination before and after',
    )
    .option('--out <dir>', 'output folder', 'out/refusal')
    .option('--overwrite', 'reuse --out if it holds an earlier run')
    .addOption(
      new Option('--preset <name>', 'sizes for flags left out: cpu (SwiftShader) or gpu')
        .choices(['cpu', 'gpu'])
        .default('cpu'),
    );
  const { cpu, gpu } = REFUSAL_PRESETS;
  for (const [flags, key, what, parse] of SIZE_FLAGS) {
    cmd.option(flags, `${what} (cpu ${cpu[key]}, gpu ${gpu[key]})`, parse);
  }
  cmd
    .option('--json', 'print the results as JSON at the end')
    .action(async (f: Record<string, unknown>, c: Command) => {
      const sizes: RefusalSizes = { ...REFUSAL_PRESETS[f.preset as 'cpu' | 'gpu'] };
      for (const [flags, key] of SIZE_FLAGS) {
        const v = f[attribute(flags)];
        if (v !== undefined) sizes[key] = v as number;
      }
      if (sizes.C % sizes.NH !== 0) {
        throw new UsageError(`--channels ${sizes.C} is not a multiple of --heads ${sizes.NH}`);
      }
      const out = f.out as string;
      if (!f.overwrite && existsSync(out) && readdirSync(out).length > 0) {
        throw new UsageError(`--out ${out} already holds files; choose another folder, or pass --overwrite`);
      }
      const { runRefusalExperiment } = await import('./refusal-experiment.ts');
      const r = await runRefusalExperiment({
        ...sizes,
        out,
        adapter: c.optsWithGlobals().adapter as string | undefined,
      });
      if (f.json) console.log(JSON.stringify(r));
    });
}
