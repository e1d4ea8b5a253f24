// `wgpt data ...` commands. Progress goes to stderr, results to stdout.
import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { ensureCorpus, htmlBenchmarkFiles, packWarc, type CorpusName } from './corpus.ts';
import { formatStatsTable, runPipeline, STEPS, type PipelineConfig, type Step } from './pipeline.ts';
import { prestartWorkers } from './workers.ts';
import { readShard, readShardHeader } from './shards.ts';
import { BYTE_TOKENIZER, type TokenEncoder } from './tokenize.ts';
import { getEncoding, isOpenAiEncodingName, loadTokenizer, OPENAI_ENCODING_NAMES } from '@wgpt/tokenizer';

export { BYTE_TOKENIZER };

/**
 * Picks the tokenizer for `--tokenizer NAME`: 'bytes', an OpenAI encoding ('r50k_base' | 'cl100k_base' |
 * 'o200k_base'), or the directory of a tokenizer trained with `wgpt tokenizer train`.
 */
export async function pickTokenizer(name: string): Promise<TokenEncoder> {
  if (name === 'bytes') return BYTE_TOKENIZER;
  if (fs.existsSync(name)) return loadTokenizer(name);
  if (!isOpenAiEncodingName(name)) throw new Error(`unknown tokenizer "${name}": use bytes, ${OPENAI_ENCODING_NAMES.join(', ')}, or a trained tokenizer's directory`);
  return getEncoding(name);
}

/** Task index/count from flags, else SLURM_ARRAY_TASK_ID/COUNT, else JOB_COMPLETION_INDEX (Kubernetes indexed jobs). */
export function taskFromEnv(index: number | undefined, count: number | undefined, env = process.env): { taskIndex: number; taskCount: number } {
  const num = (s: string | undefined) => (s !== undefined && s !== '' && !Number.isNaN(Number(s)) ? Number(s) : undefined);
  const taskIndex = index ?? num(env.SLURM_ARRAY_TASK_ID) ?? num(env.JOB_COMPLETION_INDEX) ?? 0;
  const taskCount = count ?? num(env.SLURM_ARRAY_TASK_COUNT) ?? 1;
  return { taskIndex, taskCount };
}

const CORPORA = ['htmlpages', 'sotu', 'moby-dick'];
const int = (v: string) => { const n = Number.parseInt(v, 10); if (Number.isNaN(n)) throw new Error(`not an integer: ${v}`); return n; };

export function register(program: Command): void {
  const data = program.command('data').description('data pipeline: WARC/text → filters → dedup → token shards (FineWeb recipe)');

  data.command('run')
    .description('run the pipeline (all steps this task can run; re-running resumes)')
    .option('--config <file>', 'pipeline.json (PipelineConfig); flags override it')
    .option('-i, --input <paths...>', 'input files or directories, or corpus names htmlpages | sotu | moby-dick (default: htmlpages)')
    .option('-o, --output <dir>', 'output directory (default out/data)')
    .option('--workers <n>', 'threads for the process step (this thread + N-1 worker threads sharing the documents)', int, 1)
    .option('--task-index <i>', 'this task (default $SLURM_ARRAY_TASK_ID or $JOB_COMPLETION_INDEX or 0)', int)
    .option('--task-count <k>', 'number of tasks (default $SLURM_ARRAY_TASK_COUNT or 1)', int)
    .option('--units <n>', 'work units, the resume granularity (fixed at the first run; default: the task count)', int)
    .addOption(new Option('--step <steps...>', 'only these steps').choices([...STEPS]))
    .option('--tokenizer <name>', "tokenizer: 'bytes', or an @wgpt/tokenizer encoding (r50k_base, cl100k_base, o200k_base)", 'r50k_base')
    .option('--languages <codes...>', 'languages to keep (ISO 639-1)')
    .option('--min-language-score <x>', 'fastText score threshold', Number.parseFloat)
    .option('--val-fraction <x>', 'fraction of documents in the validation split', Number.parseFloat)
    .option('--shard-tokens <n>', 'tokens per shard', int)
    .option('--no-dedup', 'skip MinHash and exact deduplication')
    .option('--no-pii', 'skip e-mail/IP replacement')
    .option('--json', 'print the stats as JSON instead of a table')
    .action(async (o) => {
      // Worker threads load their modules and the language model while this thread reads the config, fetches the
      // corpus and loads the tokenizer. Errors surface again (and are reported) when the run uses them.
      if (o.workers > 1) prestartWorkers(o.workers - 1).catch(() => {});
      const cfg: PipelineConfig = o.config ? JSON.parse(fs.readFileSync(o.config, 'utf8')) : { inputs: [], output: o.output };
      if (o.input) cfg.inputs = o.input;
      // Corpus names stand for the cached corpora (fetched on first use).
      cfg.inputs = await Promise.all((cfg.inputs ?? []).map(async (i) => (CORPORA.includes(i) && !fs.existsSync(i) ? ensureCorpus(i as CorpusName) : i)));
      if (!cfg.inputs || cfg.inputs.length === 0) cfg.inputs = [await ensureCorpus('htmlpages')];
      cfg.output = o.output ?? cfg.output ?? 'out/data';
      if (o.units) cfg.units = o.units;
      if (o.languages || o.minLanguageScore !== undefined) cfg.language = { ...(cfg.language || {}), ...(o.languages ? { languages: o.languages } : {}), ...(o.minLanguageScore !== undefined ? { minScore: o.minLanguageScore } : {}) };
      if (o.valFraction !== undefined || o.shardTokens !== undefined) cfg.tokenize = { ...(cfg.tokenize ?? {}), ...(o.valFraction !== undefined ? { valFraction: o.valFraction } : {}), ...(o.shardTokens !== undefined ? { shardTokens: o.shardTokens } : {}) };
      if (o.dedup === false) cfg.dedup = false;
      if (o.pii === false) cfg.pii = false;
      const { taskIndex, taskCount } = taskFromEnv(o.taskIndex, o.taskCount);
      const tokenizer = await pickTokenizer(o.tokenizer);
      const r = await runPipeline(cfg, { workers: o.workers, taskIndex, taskCount, steps: o.step as Step[] | undefined, tokenizer });
      for (const [step, units] of Object.entries(r.skipped)) process.stderr.write(`[data] ${step}: ${units.length} unit(s) already done, skipped\n`);
      if (r.manifest) {
        const m = r.manifest;
        if (o.json) process.stdout.write(JSON.stringify(m.stages, null, 2) + '\n');
        else {
          process.stdout.write(formatStatsTable(m.stages) + '\n\n');
          const read = m.stages.find((st) => st.name === 'read');
          const kept = m.totals.train.docs + m.totals.val.docs;
          if (read && read.in > 0) process.stdout.write(`kept ${kept} of ${read.in} input documents (${((100 * kept) / read.in).toFixed(1)} %)\n`);
          process.stdout.write(`train: ${m.totals.train.docs} docs, ${m.totals.train.tokens} tokens in ${m.totals.train.shards} shard(s); ` +
            `val: ${m.totals.val.docs} docs, ${m.totals.val.tokens} tokens in ${m.totals.val.shards} shard(s); tokenizer ${m.tokenizer.name} (${m.format.dtype})\n`);
          process.stdout.write(`manifest: ${path.join(cfg.output, 'manifest.json')}\n`);
        }
      } else {
        process.stdout.write(`task ${taskIndex}/${taskCount}: ran ${JSON.stringify(r.ran)}; other steps wait for the remaining tasks\n`);
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
      if (!CORPORA.includes(name)) throw new Error(`unknown corpus ${name}`);
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
          process.stdout.write(`${f}: magic ${h.magic} version ${h.version} ${h.bytesPerToken === 2 ? 'uint16' : 'uint32'} ${h.tokens} tokens; first: ${[...t.subarray(0, 12)].join(' ')}\n`);
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
      if (!fs.existsSync(f)) throw new Error(`${f} not found: the run has not finished`);
      process.stdout.write(formatStatsTable(JSON.parse(fs.readFileSync(f, 'utf8'))) + '\n');
    });
}
