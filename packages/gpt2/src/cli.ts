// `wgpt train`, `wgpt sample`, `wgpt eval`.
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { intArg, intListArg, numArg, stopOnSignals, UsageError, withPath } from '@wgpt/base';
import { Gpu, noGrad, tensor, tidyAsync, WgptError } from '@wgpt/runtime';
import { joinJob, launchLocal, openRankGpu, readDistEnv } from '@wgpt/runtime/dist';
import { gpuPieceSummer } from '@wgpt/kernels';
import { getEncoding, isOpenAiEncodingName, loadTokenizer, type Encoding } from '@wgpt/tokenizer';
import { checkpointDirOf, checkpointModelPath, removeCheckpoints } from './checkpoint.ts';
import { makeConfig, PRESETS, type GPT2Config } from './config.ts';
import { importHfGpt2 } from './hf.ts';
import { initParams } from './init.ts';
import { readLlmcModel, type ModelFile } from './llmc.ts';
import { ShardLoader } from './loader.ts';
import { GPT2 } from './model.ts';
import { decodeForDisplay, generate, printable } from './sample.ts';
import { findShards, train } from './train.ts';

// Value parsers for the flags: commander reports a bad value naming the flag, with exit code 2.
const size = intArg({ min: 1 }); // sizes and step counts
const count = intArg({ min: 0 }); // "every N steps" where 0 is off, as each flag's help says
const seed = intArg({ min: 0, max: 2 ** 32 - 1 });
const tokenIds = intListArg({ min: 0 });
const fraction = numArg({ min: 0, max: 1 });

export function pickEncoding(name: string): Encoding {
  if (existsSync(name)) return loadTokenizer(name);
  if (isOpenAiEncodingName(name)) return getEncoding(name);
  throw new UsageError(
    `--tokenizer: unknown tokenizer "${name}": r50k_base, cl100k_base, o200k_base, ` +
      'or a folder saved by `wgpt tokenizer train`',
  );
}

/** A model from an llm.c .bin, a checkpoint folder, or a Hugging Face GPT-2 .safetensors file. */
export function loadModelFile(path: string): ModelFile {
  // A checkpoint folder: its model.bin, or after a crash the newest whole one beside it (checkpoint.old, .tmp-*).
  // A read error names no file on its own (a folder where a file should be gives a bare EISDIR).
  if (!existsSync(path) || statSync(path).isDirectory()) {
    const model = checkpointModelPath(path);
    if (!existsSync(model)) {
      throw new WgptError(`${path}: ${existsSync(path) ? 'no checkpoint there (no model.bin)' : 'no such checkpoint'}`);
    }
    return withPath(model, () => readLlmcModel(model));
  }
  if (path.endsWith('.safetensors')) return withPath(path, () => importHfGpt2(path));
  return withPath(path, () => readLlmcModel(path));
}

function configFrom(
  o: { preset?: string; depth?: number; channels?: number; heads?: number; vocab?: number; context?: number },
  vocabDefault: number,
): GPT2Config {
  if (o.preset) {
    const p = PRESETS[o.preset]!;
    return makeConfig({ ...p, V: o.vocab ?? p.V, maxT: o.context ?? p.maxT });
  }
  const C = o.channels ?? 64;
  const NH = o.heads ?? 4;
  if (C % NH) throw new UsageError(`--channels ${C} is not a multiple of --heads ${NH}`);
  return makeConfig({ L: o.depth ?? 2, C, NH, V: o.vocab ?? vocabDefault, maxT: o.context ?? 64 });
}

/** What train() would refuse later, refused before a GPU is opened and named by flag. */
function checkBatchFlags(
  o: { batch: number; seq: number; totalBatch?: number },
  config: GPT2Config,
  ranks = 1,
): void {
  if (o.seq > config.maxT) {
    throw new UsageError(`-T, --seq ${o.seq} exceeds the model's context ${config.maxT} (--context)`);
  }
  const bt = ranks * o.batch * o.seq;
  const what = ranks > 1 ? `ranks·B·T = ${ranks}·${o.batch}·${o.seq}` : `B·T = ${o.batch}·${o.seq}`;
  if (o.totalBatch !== undefined && o.totalBatch % bt) {
    throw new UsageError(`--total-batch ${o.totalBatch} is not a multiple of ${what} = ${bt} tokens`);
  }
}

/** Every prompt token must be in the model's vocabulary (a tokenizer bigger than the model's gives some outside). */
function checkPrompt(prompt: number[], V: number, flag: string): void {
  if (!prompt.length) {
    throw new UsageError(`${flag}: the prompt has no tokens; give some, or leave ${flag} out for an unconditioned one`);
  }
  const bad = prompt.find((t) => t >= V);
  if (bad !== undefined) {
    const hint = flag === '--prompt-ids' ? '' : " (is --tokenizer the model's tokenizer?)";
    throw new UsageError(`${flag}: prompt token ${bad} is outside the vocabulary [0, ${V}) of the model${hint}`);
  }
}

/** What a run folder already holds of a training run (log, plot, checkpoint folders), by name. */
export function runContents(dir: string): string[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return [];
  return readdirSync(dir)
    .filter((n) => n === 'log.jsonl' || n === 'loss.svg' || n === 'checkpoint' || n.startsWith('checkpoint.'))
    .sort();
}

/**
 * Refuses to start over in (or resume into) a folder that holds another run, unless --overwrite; with it, clears
 * that run's log and checkpoints when resuming from elsewhere (a fresh run clears them itself, in train()).
 */
export function checkOutDir(out: string, resume: string | undefined, overwrite: boolean): void {
  if (existsSync(out) && !statSync(out).isDirectory()) throw new UsageError(`--out ${out} is a file, not a folder`);
  const held = runContents(out);
  if (!held.length) return;
  const what = `${out} already holds a training run (${held.join(', ')})`;
  if (!resume) {
    const resumeHint = `--resume ${join(out, 'checkpoint')}`;
    if (!overwrite) {
      throw new WgptError(`${what}; continue it with ${resumeHint}, or pass --overwrite to start over (deletes them)`);
    }
    return;
  }
  const ck = checkpointDirOf(resume);
  if (resolve(dirname(ck)) === resolve(out)) {
    if (overwrite) {
      throw new UsageError(`--overwrite would delete ${basename(ck)}, which --resume continues from; leave it out`);
    }
    return;
  }
  if (!overwrite) {
    throw new WgptError(`${what}, not the run of ${ck}; choose another --out, or pass --overwrite to replace that run`);
  }
  rmSync(join(out, 'log.jsonl'), { force: true });
  removeCheckpoints(join(out, 'checkpoint'));
}

/** The flags of a training run that `wgpt train` and `wgpt sft` share, with the defaults that differ between them. */
export function addRunOptions(
  cmd: Command,
  d: { steps: number; lr: number; out: string; seq?: number; weightDecay: number; valEvery: number; seed: number },
): Command {
  const T = d.seq === undefined ? '' : ` (default ${d.seq})`;
  return cmd
    .option('-B, --batch <n>', 'micro-batch size', size, 4)
    .option('-T, --seq <n>', `sequence length (at most the context)${T}`, size)
    .option('--total-batch <tokens>', 'tokens per optimizer step (multiple of B·T)', size)
    .option('--steps <n>', 'optimizer steps', size, d.steps)
    .option('--lr <x>', 'peak learning rate (> 0)', numArg({ above: 0 }), d.lr)
    .option('--warmup <n>', 'warmup steps (0: none)', count, 10)
    .option('--final-lr-frac <x>', 'final learning rate as a fraction of the peak (0 to 1)', fraction, 0.1)
    .option('--weight-decay <x>', 'AdamW weight decay (2-D weights only; 0: none)', numArg({ min: 0 }), d.weightDecay)
    .option('--grad-clip <x>', 'clip gradients to this global norm (0: off)', numArg({ min: 0 }), 1.0)
    .option('--val-every <n>', 'validation loss every N steps (and after the last)', size, d.valEvery)
    .option('--val-batches <n>', 'batches per validation', size, 10)
    .option('--sample-every <n>', 'generate a sample every N steps (0: never)', count, 20)
    .option('--sample-tokens <n>', 'tokens per sample', size, 64)
    .option('--checkpoint-every <n>', 'checkpoint every N steps, and at the end (0: only at the end)', count, 0)
    .option('--out <dir>', 'run folder: log.jsonl, loss.svg, checkpoint/', d.out)
    .option('--resume <dir>', 'continue from a checkpoint folder (after a crash: the newest complete one beside it)')
    .option('--overwrite', 'start over in an --out folder that holds a run, deleting its log and checkpoints')
    .option('--allow-change', 'resume even if settings that change the numbers (data, batch, schedule, seed...) differ')
    .option('--seed <n>', 'seed for init and data order', seed, d.seed)
    .addOption(
      new Option(
        '--profile [how]',
        'time every kernel of the steps after the first and print GPU time per kernel over a step, dispatches per ' +
          'step and the matmul share (timestamp queries where the adapter has them; "wall": wall time per dispatch)',
      ).choices(['wall']),
    );
}

/** The flags of addRunOptions, parsed, as the trainer's options (T resolved by the caller). */
export interface RunFlags {
  batch: number;
  seq: number;
  totalBatch?: number;
  steps: number;
  lr: number;
  warmup: number;
  finalLrFrac: number;
  weightDecay: number;
  gradClip: number;
  valEvery: number;
  valBatches: number;
  sampleEvery: number;
  sampleTokens: number;
  checkpointEvery: number;
  out: string;
  resume?: string;
  allowChange?: boolean;
  seed: number;
  profile?: true | 'wall';
}

export function runOptions(o: RunFlags) {
  return {
    B: o.batch,
    T: o.seq,
    totalBatchTokens: o.totalBatch ?? o.batch * o.seq,
    steps: o.steps,
    lr: o.lr,
    warmupSteps: o.warmup,
    finalLrFrac: o.finalLrFrac,
    weightDecay: o.weightDecay,
    maxNorm: o.gradClip,
    valEvery: o.valEvery,
    valBatches: o.valBatches,
    sampleEvery: o.sampleEvery,
    sampleTokens: o.sampleTokens,
    checkpointEvery: o.checkpointEvery,
    outDir: o.out,
    resume: o.resume,
    allowChange: !!o.allowChange,
    seed: o.seed,
    profile: o.profile === 'wall' ? ('wall' as const) : !!o.profile,
  };
}

export function register(program: Command): void {
  const trainCmd = program
    .command('train')
    .description('pre-train GPT-2 on token shards (llm.c format) with AdamW, validation, samples and checkpoints')
    .requiredOption('--data <dir>', 'folder with *_train_*.bin and *_val_*.bin shards (from `wgpt data run`)')
    .addOption(new Option('--preset <name>', 'model size: 124M, 350M, 774M, 1558M').choices(Object.keys(PRESETS)))
    .option('--depth <n>', 'layers (without --preset)', size)
    .option('--channels <n>', 'channels (a multiple of --heads)', size)
    .option('--heads <n>', 'attention heads', size)
    .option('--vocab <n>', "vocabulary size (default: the tokenizer's)", size)
    .option('--context <n>', 'context length (maxT)', size)
    .option(
      '--init-from <file>',
      'start from a model file (llm.c .bin or Hugging Face .safetensors) instead of random init',
    )
    .option('--tokenizer <name|dir>', 'tokenizer for printing samples', 'r50k_base')
    .option(
      '--nproc <n>',
      'data-parallel ranks on this node, one process each (-B is then each rank\'s rows); torchrun and srun ' +
        'start ranks themselves',
      intArg({ min: 1, max: 1024 }),
      1,
    )
    .option(
      '--zero <stage>',
      'ZeRO stage with --nproc: 1 shards the AdamW moments by tensor across the ranks (same results, less memory)',
      intArg({ min: 0, max: 1 }),
      0,
    )
    .option(
      '--bucket-mb <n>',
      'with --nproc: all-reduce the gradients in buckets of this many MB while backward still runs (0: after it)',
      intArg({ min: 0 }),
      25,
    );
  addRunOptions(trainCmd, {
    steps: 100,
    lr: 6e-4,
    out: 'out/train',
    seq: 64,
    weightDecay: 0.1,
    valEvery: 25,
    seed: 42,
  }).action(async (o, cmd: Command) => {
    o.seq ??= 64;
    const dist = readDistEnv();
    // Rank 0 writes the run folder, the others must not refuse it for existing once rank 0 has made it.
    if (dist.rank === 0) checkOutDir(o.out, o.resume, !!o.overwrite);
    if (o.zero && o.nproc === 1 && dist.worldSize === 1) {
      const what = `--zero ${o.zero} shards the optimizer across ranks`;
      throw new UsageError(`${what}: give --nproc 2 or more, or leave it out`);
    }
    if (o.nproc > 1 && dist.worldSize === 1) {
      // This process only launches: the same command once per rank, each told its rank by the environment.
      // A signal reaches every rank (one process group): they agree on a step to stop after, so this one waits.
      const wait = () => {};
      process.on('SIGINT', wait).on('SIGTERM', wait);
      const res = await launchLocal({ nproc: o.nproc, command: process.execPath, args: process.argv.slice(1) });
      process.off('SIGINT', wait).off('SIGTERM', wait);
      const f = res.firstFailure;
      if (f && (f.code === 130 || f.code === 143) && res.exits.every((e) => e.code === f.code)) {
        process.exitCode = f.code; // stopped by a signal, with a checkpoint
      } else if (f) {
        throw new WgptError(`rank ${f.rank} of ${o.nproc} failed (${f.signal ?? `exit status ${f.code}`})`);
      }
      return;
    }
    if (dist.worldSize > 1 && cmd.getOptionValueSource('nproc') === 'cli' && o.nproc !== dist.worldSize) {
      throw new UsageError(`--nproc ${o.nproc}, but the launcher started ${dist.worldSize} ranks: leave --nproc out`);
    }
    const enc = pickEncoding(o.tokenizer);
    const shards = findShards(o.data);
    let init: ModelFile | null = o.initFrom ? loadModelFile(o.initFrom) : null;
    const config = init ? init.config : configFrom(o, enc.nVocab);
    checkBatchFlags(o, config, dist.worldSize);
    // The tokenizer prints samples; when it is used (or named), it must fit the model, checked before step 1.
    if (o.sampleEvery > 0 || cmd.getOptionValueSource('tokenizer') === 'cli') {
      if (enc.nVocab > config.V) {
        throw new WgptError(
          `tokenizer ${o.tokenizer} has ${enc.nVocab} tokens, more than the model's vocabulary V=${config.V}: ` +
            `give the model the tokenizer's size (--vocab ${enc.nVocab}) or use the tokenizer the data was made with`,
        );
      }
      if (o.sampleEvery > 0 && enc.eotToken < 0) {
        throw new WgptError(
          `tokenizer ${o.tokenizer} has no <|endoftext|> special token ` +
            `(it was trained without special tokens), and ` +
            `samples start from it: train the tokenizer with it (the default of --special), or pass --sample-every 0`,
        );
      }
    }
    const job = dist.worldSize > 1 ? await joinJob() : undefined;
    const collective = job?.collective;
    const adapter = cmd.optsWithGlobals().adapter;
    const gpu = collective && adapter === undefined ? await openRankGpu(dist) : await Gpu.open({ adapter });
    if (job?.sum === 'gpu') collective!.useSummer!(gpuPieceSummer(gpu)); // WGPT_DIST_SUM=gpu
    // SIGINT and SIGTERM stop after the step in progress, with a checkpoint; the exit status then says which.
    const signals = stopOnSignals('finishing this step, writing a checkpoint, then exiting');
    try {
      const run = train(gpu, {
        config,
        init: init?.params ?? initParams(config, o.seed),
        trainFiles: shards.train,
        valFiles: shards.val,
        ...runOptions(o),
        totalBatchTokens: o.totalBatch ?? dist.worldSize * o.batch * o.seq,
        decode: (ids) => decodeForDisplay(enc, ids),
        eotToken: enc.eotToken,
        shouldStop: () => signals.signal !== null,
        collective,
        zero: o.zero as 0 | 1,
        bucketBytes: o.bucketMb * 2 ** 20,
      });
      // A rank busy elsewhere when another one fails still ends, with the job's reason.
      const r = collective ? await Promise.race([run, collective.failed]) : await run;
      init = null;
      if (dist.rank === 0) {
        console.log(`checkpoint: ${r.checkpoint}\nloss plot: ${r.plot}\nlog: ${join(o.out, 'log.jsonl')}`);
      }
      if (r.stoppedEarly) process.exitCode = signals.exitCode ?? 1;
      await collective?.close();
    } catch (e) {
      if (collective && !(e instanceof WgptError && e.name === 'DistError')) {
        collective.abort(`rank ${dist.rank} failed: ${(e as Error)?.message ?? String(e)}`);
      }
      throw e;
    } finally {
      signals.dispose();
      gpu.destroy();
    }
  });

  program
    .command('sample')
    .description('generate text from a checkpoint (llm.c .bin, checkpoint folder, or Hugging Face .safetensors)')
    .requiredOption('--checkpoint <path>', 'model to sample from')
    .option('--prompt <text>', 'prompt text (default: <|endoftext|>, an unconditioned document)')
    .option('--prompt-ids <ids>', 'prompt as comma-separated token ids', tokenIds)
    .option('--max-tokens <n>', 'tokens to generate', size, 64)
    .option('--temperature <x>', 'softmax temperature (0: greedy)', numArg({ min: 0 }), 1)
    .option('--top-k <n>', 'sample from the k most likely tokens', size)
    .option('--top-p <x>', 'nucleus sampling threshold, in (0, 1]', numArg({ above: 0, max: 1 }))
    .option('--seed <n>', 'sampling seed', seed, 1337)
    .option('--stop <ids>', 'comma-separated stop token ids (default: <|endoftext|>)', tokenIds)
    .option('--tokenizer <name|dir>', 'tokenizer of the model', 'r50k_base')
    .option('--json', 'print {"ids", "text"} instead of streaming text')
    .option('--no-kv-cache', 'run a full forward over the context for every token instead of reusing keys and values')
    .action(async (o, cmd: Command) => {
      const enc = pickEncoding(o.tokenizer);
      const m = loadModelFile(o.checkpoint);
      if (!o.promptIds && o.prompt === undefined && enc.eotToken < 0) {
        throw new WgptError(
          `tokenizer ${o.tokenizer} has no <|endoftext|> special token (it was trained without special tokens), ` +
            `which a sample without a prompt starts from: give --prompt or --prompt-ids`,
        );
      }
      const hasText = o.prompt !== undefined;
      const prompt: number[] =
        o.promptIds ?? (hasText ? enc.encode(o.prompt, { allowedSpecial: 'all' }) : [enc.eotToken]);
      checkPrompt(prompt, m.config.V, o.promptIds ? '--prompt-ids' : hasText ? '--prompt' : '--tokenizer');
      const gpu = await Gpu.open({ adapter: cmd.optsWithGlobals().adapter });
      try {
        const model = new GPT2(gpu, m.config, m.params);
        const out: number[] = [];
        // Without <|endoftext|> (a tokenizer trained without special tokens) a sample stops only at --max-tokens.
        const stopTokens: number[] = o.stop ?? (enc.eotToken >= 0 ? [enc.eotToken] : []);
        const opts = {
          maxNewTokens: o.maxTokens,
          temperature: o.temperature,
          topK: o.topK,
          topP: o.topP,
          seed: o.seed,
          stopTokens,
          kvCache: o.kvCache !== false,
        };
        let printed = '';
        // The prompt first (a document continues it), unless it is only <|endoftext|> (an unconditioned sample).
        if (!o.json && !(prompt.length === 1 && prompt[0] === enc.eotToken))
          process.stdout.write(printable(decodeForDisplay(enc, prompt)));
        for await (const t of generate(model, prompt, opts)) {
          out.push(t);
          if (!o.json) {
            // Stream text as it becomes valid UTF-8 (a token can end mid-character).
            const text = decodeForDisplay(enc, out);
            if (!text.endsWith('\uFFFD')) {
              process.stdout.write(printable(text.slice(printed.length)));
              printed = text;
            }
          }
        }
        if (o.json) console.log(JSON.stringify({ prompt, ids: out, text: decodeForDisplay(enc, out) }));
        else process.stdout.write(printable(decodeForDisplay(enc, out).slice(printed.length)) + '\n');
        model.dispose();
      } finally {
        gpu.destroy();
      }
    });

  program
    .command('eval')
    .description('mean loss of a checkpoint on a token shard, as JSON')
    .requiredOption('--checkpoint <path>', 'model (llm.c .bin, checkpoint folder, or .safetensors)')
    .requiredOption('--tokens <shard>', 'token shard (llm.c format)')
    .option('-B, --batch <n>', 'batch size', size, 4)
    .option('-T, --seq <n>', "sequence length (at most the model's context)", size, 64)
    .option('--batches <n>', 'at most this many batches (default: the whole shard)', size)
    .action(async (o, cmd: Command) => {
      const m = loadModelFile(o.checkpoint);
      if (o.seq > m.config.maxT) {
        throw new UsageError(`-T, --seq ${o.seq} exceeds the model's context ${m.config.maxT}`);
      }
      const loader = withPath(
        o.tokens,
        () => new ShardLoader([o.tokens], o.batch, o.seq, { shuffle: false, seed: 0, vocab: m.config.V }),
      );
      const n = Math.min(o.batches ?? Infinity, loader.batchesPerEpoch);
      const gpu = await Gpu.open({ adapter: cmd.optsWithGlobals().adapter });
      try {
        const model = new GPT2(gpu, m.config, m.params);
        let sum = 0;
        for (let i = 0; i < n; i++) {
          const b = loader.next();
          sum += await tidyAsync(async () => {
            const { loss } = noGrad(() =>
              model.forward(
                tensor(gpu, b.inputs, [o.batch, o.seq], 'i32'),
                tensor(gpu, b.targets, [o.batch, o.seq], 'i32'),
              ),
            );
            return loss!.item();
          });
        }
        const loss = sum / n;
        if (!Number.isFinite(loss)) {
          const why = n ? 'the model holds NaN or infinite parameters' : 'no batches (--batches 0)';
          throw new WgptError(`${o.checkpoint}: the loss on ${o.tokens} over ${n} batches is ${loss}: ${why}`);
        }
        const { checkpoint, tokens } = o;
        console.log(JSON.stringify({ checkpoint, tokens, batches: n, B: o.batch, T: o.seq, loss }));
        model.dispose();
      } finally {
        gpu.destroy();
      }
    });
}
