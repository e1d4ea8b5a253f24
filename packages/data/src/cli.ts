// `wgpt data ...` commands. Progress goes to stderr, results to stdout.
import fs from 'node:fs';
import path from 'node:path';
import { intArg, numArg, UsageError, WgptError } from '@wgpt/base';
import { getEncoding, isOpenAiEncodingName, loadTokenizer, OPENAI_ENCODING_NAMES } from '@wgpt/tokenizer';
import { Command, InvalidArgumentError, Option } from 'commander';
import { readConfigFile, type PipelineConfig } from './config.ts';
import { ensureCorpus, htmlBenchmarkFiles, packWarc, type CorpusName } from './corpus.ts';
import { runPipeline, type Manifest } from './pipeline.ts';
import { STEPS, type Step } from './plan.ts';
import { formatStatsTable } from './report.ts';
import { readShard, readShardHeader } from './shards.ts';
import { BYTE_TOKENIZER, type TokenEncoder } from './tokenize.ts';
import { prestartWorkers } from './workers.ts';

export { BYTE_TOKENIZER };

/**
 * Picks the tokenizer for `--tokenizer NAME`: 'bytes', an OpenAI encoding ('r50k_base' | 'cl100k_base' |
 * 'o200k_base'), or the directory of a tokenizer trained with `wgpt tokenizer train`.
 */
export async function pickTokenizer(name: string): Promise<TokenEncoder> {
  if (name === 'bytes') return BYTE_TOKENIZER;
  if (fs.existsSync(name)) return loadTokenizer(name);
  if (!isOpenAiEncodingName(name)) {
    throw new UsageError(`--tokenizer ${JSON.stringify(name)}: unknown; use bytes, ` +
      `${OPENAI_ENCODING_NAMES.join(', ')}, or a trained tokenizer's directory`);
  }
  return getEncoding(name);
}

/**
 * Task index/count from flags, else SLURM_ARRAY_TASK_ID/COUNT, else JOB_COMPLETION_INDEX (Kubernetes indexed
 * jobs). A variable that is set but not a whole number is an error naming it.
 */
export function taskFromEnv(index: number | undefined, count: number | undefined, env = process.env):
  { taskIndex: number; taskCount: number } {
  const num = (name: string, min: number): number | undefined => {
    const s = env[name];
    if (s === undefined || s === '') return undefined;
    const n = Number(s);
    if (!Number.isSafeInteger(n) || n < min) {
      throw new UsageError(`$${name}=${JSON.stringify(s)}: expected a whole number ≥ ${min}`);
    }
    return n;
  };
  const taskIndex = index ?? num('SLURM_ARRAY_TASK_ID', 0) ?? num('JOB_COMPLETION_INDEX', 0) ?? 0;
  const taskCount = count ?? num('SLURM_ARRAY_TASK_COUNT', 1) ?? 1;
  if (taskIndex >= taskCount) {
    throw new UsageError(`task index ${taskIndex} is outside 0..${taskCount - 1} for a task count of ${taskCount} ` +
      '(--task-index/--task-count, or $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT or $JOB_COMPLETION_INDEX)');
  }
  return { taskIndex, taskCount };
}

/** One ISO 639 code of a variadic --languages. */
const languageCode = (value: string, previous: string[] | undefined): string[] => {
  if (!/^[a-z]{2,3}$/.test(value)) throw new InvalidArgumentError(`${JSON.stringify(value)} is not an ISO 639 code`);
  return [...(previous ?? []), value];
};

const CORPORA = ['htmlpages', 'sotu', 'moby-dick'];

/** The configuration this run gives: the config file's, with the flags on top of it. */
async function runConfig(o: Record<string, unknown>): Promise<PipelineConfig> {
  const file = typeof o.config === 'string' ? readConfigFile(o.config) : {};
  const cfg: PipelineConfig = { ...file, output: (o.output as string | undefined) ?? file.output ?? 'out/data' };
  if (o.input) cfg.inputs = o.input as string[];
  // Corpus names stand for the cached corpora (fetched on first use).
  if (cfg.inputs) {
    cfg.inputs = await Promise.all(cfg.inputs.map(async (i) =>
      (CORPORA.includes(i) && !fs.existsSync(i) ? ensureCorpus(i as CorpusName) : i)));
  }
  // No inputs: resume what the output was started with, or else use the embedded pages.
  if (!cfg.inputs?.length && !fs.existsSync(path.join(cfg.output, 'plan.json'))) {
    cfg.inputs = [await ensureCorpus('htmlpages')];
  }
  if (o.units !== undefined) cfg.units = o.units as number;
  if (o.languages || o.minLanguageScore !== undefined) {
    cfg.language = {
      ...(cfg.language || {}),
      ...(o.languages ? { languages: o.languages as string[] } : {}),
      ...(o.minLanguageScore !== undefined ? { minScore: o.minLanguageScore as number } : {}),
    };
  }
  if (o.valFraction !== undefined || o.shardTokens !== undefined) {
    cfg.tokenize = {
      ...(cfg.tokenize ?? {}),
      ...(o.valFraction !== undefined ? { valFraction: o.valFraction as number } : {}),
      ...(o.shardTokens !== undefined ? { shardTokens: o.shardTokens as number } : {}),
    };
  }
  if (o.dedup === false) cfg.dedup = false;
  if (o.pii === false) cfg.pii = false;
  return cfg;
}

function printSummary(m: Manifest, output: string): void {
  process.stdout.write(formatStatsTable(m.stages) + '\n\n');
  const read = m.stages.find((st) => st.name === 'read');
  const kept = m.totals.train.docs + m.totals.val.docs;
  if (read && read.in > 0) {
    process.stdout.write(`kept ${kept} of ${read.in} input documents (${((100 * kept) / read.in).toFixed(1)} %)\n`);
  }
  const { train, val } = m.totals;
  process.stdout.write(`train: ${train.docs} docs, ${train.tokens} tokens in ${train.shards} shard(s); ` +
    `val: ${val.docs} docs, ${val.tokens} tokens in ${val.shards} shard(s); ` +
    `tokenizer ${m.tokenizer.name} (${m.format.dtype})\n`);
  process.stdout.write(`manifest: ${path.join(output, 'manifest.json')}\n`);
}

export function register(program: Command): void {
  const data = program.command('data')
    .description('data pipeline: WARC/text → filters → dedup → token shards (FineWeb recipe)');

  data.command('run')
    .description('run the pipeline (all steps this task can run; re-running resumes)')
    .option('--config <file>', 'pipeline.json (PipelineConfig); flags override it')
    .option('-i, --input <paths...>',
      'input files or directories, or corpus names htmlpages | sotu | moby-dick (default: htmlpages; ' +
      'when resuming, the inputs the output was started with)')
    .option('-o, --output <dir>', 'output directory (default out/data)')
    .option('--workers <n>', 'threads for the process step (this thread + N-1 worker threads sharing the documents)',
      intArg({ min: 1 }), 1)
    .option('--task-index <i>', 'this task (default $SLURM_ARRAY_TASK_ID or $JOB_COMPLETION_INDEX or 0)',
      intArg({ min: 0 }))
    .option('--task-count <k>', 'number of tasks (default $SLURM_ARRAY_TASK_COUNT or 1)', intArg({ min: 1 }))
    .option('--units <n>', 'work units, the resume granularity (fixed at the first run; default: the task count)',
      intArg({ min: 1 }))
    .addOption(new Option('--step <steps...>', 'only these steps').choices([...STEPS]))
    .option('--tokenizer <name>',
      "tokenizer: 'bytes', or an @wgpt/tokenizer encoding (r50k_base, cl100k_base, o200k_base)", 'r50k_base')
    .option('--languages <codes...>', 'languages to keep (ISO 639-1)', languageCode)
    .option('--min-language-score <x>', 'fastText score threshold, 0..1', numArg({ min: 0, max: 1 }))
    .option('--val-fraction <x>', 'fraction of documents in the validation split, [0, 1)', numArg({ min: 0, below: 1 }))
    .option('--shard-tokens <n>', 'tokens per shard', intArg({ min: 1, max: 2 ** 31 - 1 }))
    .option('--no-dedup', 'skip MinHash and exact deduplication')
    .option('--no-pii', 'skip e-mail/IP replacement')
    .option('--json', 'print the stats as JSON instead of a table')
    .action(async (o: Record<string, any>) => {
      // Worker threads load their modules and the language model while this thread reads the config, fetches the
      // corpus and loads the tokenizer. Errors surface again (and are reported) when the run uses them.
      if (o.workers > 1) prestartWorkers(o.workers - 1).catch(() => {});
      const { taskIndex, taskCount } = taskFromEnv(o.taskIndex, o.taskCount);
      const cfg = await runConfig(o);
      const tokenizer = await pickTokenizer(o.tokenizer);
      const steps = o.step as Step[] | undefined;
      const r = await runPipeline(cfg, { workers: o.workers, taskIndex, taskCount, steps, tokenizer });
      for (const [step, units] of Object.entries(r.skipped)) {
        process.stderr.write(`[data] ${step}: ${units.length} unit(s) already done, skipped\n`);
      }
      if (r.manifest) {
        if (o.json) process.stdout.write(JSON.stringify(r.manifest.stages, null, 2) + '\n');
        else printSummary(r.manifest, cfg.output);
      } else {
        process.stdout.write(`task ${taskIndex}/${taskCount}: ran ${JSON.stringify(r.ran)}; ` +
          'other steps wait for the remaining tasks\n');
      }
    });

  data.command('pack-warc')
    .description('pack HTML files into a WARC.gz (default: the ~258 htmlparser-benchmark pages)')
    .option('-o, --out <file>', 'output WARC.gz', 'htmlpages.warc.gz')
    .argument('[files...]', 'HTML files (default: htmlparser-benchmark/files/*.html)')
    .action(async (files: string[], o) => {
      const list = files.length ? files : htmlBenchmarkFiles();
      const r = await packWarc(list, o.out);
      process.stdout.write(`${o.out}: ${r.records} records, ${r.bytes} bytes\n`);
    });

  data.command('fetch')
    .description('fetch and cache a corpus (sotu, moby-dick, htmlpages); prints its path')
    .argument('<name>', 'sotu | moby-dick | htmlpages')
    .action(async (name: string) => {
      if (!CORPORA.includes(name)) {
        throw new UsageError(`unknown corpus ${JSON.stringify(name)}: use ${CORPORA.join(', ')}`);
      }
      process.stdout.write((await ensureCorpus(name as CorpusName)) + '\n');
    });

  data.command('inspect')
    .description('check token shards: header, token count, first tokens')
    .argument('<shards...>')
    .action((files: string[]) => {
      let bad = 0;
      for (const f of files) {
        try {
          const h = readShardHeader(f);
          const t = readShard(f);
          const dtype = h.bytesPerToken === 2 ? 'uint16' : 'uint32';
          process.stdout.write(`${f}: magic ${h.magic} version ${h.version} ${dtype} ${h.tokens} tokens; ` +
            `first: ${[...t.subarray(0, 12)].join(' ')}\n`);
        } catch (e) {
          bad++;
          process.stderr.write(`${(e as Error).message}\n`);
        }
      }
      if (bad) process.exitCode = 1;
    });

  data.command('stats')
    .description('print the stats table of a finished run')
    .argument('<output>', 'output directory of `wgpt data run`')
    .action((dir: string) => {
      const f = path.join(dir, 'stats.json');
      if (!fs.existsSync(f)) throw new WgptError(`${f} not found: the run has not finished`);
      process.stdout.write(formatStatsTable(JSON.parse(fs.readFileSync(f, 'utf8'))) + '\n');
    });
}
