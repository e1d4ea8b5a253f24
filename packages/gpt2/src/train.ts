// The GPT-2 training loop (llm.c's train_gpt2 on wgpt): AdamW with a cosine schedule after warmup, gradient
// accumulation to a total batch in tokens, clipping at a global norm, validation every N steps, a sample every N
// steps, one log line per step (+ JSONL), a loss plot at the end, atomic checkpoints and exact resume.
// The batches come from a BatchSource: token shards (ShardLoader) for pre-training, or any other source, such as
// rows of conversations with a loss mask for fine-tuning; with a mask the loss is the mean over the masked-in tokens.
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import {
  backward,
  bufferRange,
  empty,
  noGrad,
  profileTable,
  tensor,
  tidy,
  tidyAsync,
  WgptError,
  type Gpu,
  type Tensor,
} from '@wgpt/runtime';
import {
  allReduceSpans,
  broadcastSpans,
  coveringSpans,
  type Collective,
} from '@wgpt/runtime/dist';
import { AdamW, checkPositions, checkSegments, gemm, type AdamWState } from '@wgpt/kernels';
import { paramCount, type GPT2Config } from './config.ts';
import {
  type Batch,
  type BatchSource,
  ShardLoader,
  type ValidationSource,
} from './loader.ts';
import { GPT2 } from './model.ts';
import { lossPlotSvg } from './plot.ts';
import { generate, printable } from './sample.ts';
import { loadCheckpoint, removeCheckpoints, saveCheckpoint, tidyCheckpoints } from './checkpoint.ts';
import { writeFileAtomic } from './atomic.ts';
import { runSettings, settingsChanges, type SettingNumbers } from './run-settings.ts';
import { Buckets, gatherMoments, zeroOwners } from './train-dist.ts';

export { runSettings, settingsChanges, type RunSettings } from './run-settings.ts';
export { zeroOwners } from './train-dist.ts';

/** The run's settings: SettingNumbers (batch shape, schedule, optimizer, seed, which a resume must keep) and these. */
export interface TrainOptions extends SettingNumbers {
  config: GPT2Config;
  /** Initial parameters (llm.c order): initParams() for a fresh model, or a model file's. */
  init: Float32Array;
  /** Training token shards, read by a ShardLoader; or give `trainSource`. */
  trainFiles?: string[];
  /** Validation token shards (none: no validation); or give `valSource`. */
  valFiles?: string[];
  /**
   * The training batches, instead of `trainFiles`: any source of B×T batches (with a loss mask or without) whose
   * position a checkpoint records and whose identity a resume checks.
   */
  trainSource?: BatchSource;
  /** The validation batches, instead of `valFiles`. */
  valSource?: ValidationSource;
  valEvery: number;
  valBatches: number;
  sampleEvery: number;
  sampleTokens: number;
  checkpointEvery: number;
  /**
   * Run folder: log.jsonl, loss.svg, checkpoint/. A run that does not resume starts over there: it empties the log
   * and removes earlier checkpoints (the CLI refuses an existing run folder unless --overwrite).
   */
  outDir: string;
  /**
   * Continue from the checkpoint in this folder (model.bin + state.bin), or from the newest complete one beside it
   * after a crash. The run's settings must equal the checkpoint's (see RunSettings) unless `allowChange`.
   */
  resume?: string;
  /** Resume even though settings that change the numbers differ from the checkpoint's (each change is logged). */
  allowChange?: boolean;
  /** Stop (with a checkpoint) after this step, as if interrupted; the schedule still runs to `steps`. */
  stopAfter?: number;
  /** Checked after every step: return true to stop with a checkpoint (e.g. on SIGINT). */
  shouldStop?: () => boolean;
  /** For printing samples; ids are printed when absent. */
  decode?: (ids: number[]) => string;
  /** The token a sample starts from (<|endoftext|>); not used with `sampler`. */
  eotToken: number;
  /** Makes the text printed as the sample every `sampleEvery` steps, instead of a document from <|endoftext|>. */
  sampler?: (model: GPT2, step: number) => Promise<string>;
  /** Files written into every checkpoint folder with model.bin and state.bin (name → text), e.g. a chat format. */
  checkpointFiles?: Record<string, string>;
  /**
   * Data parallelism: this process is one rank of the collective's job. B is then each rank's rows. The training
   * source always hands out batches of B rows; a step reads accum·worldSize of them, and micro-batch m of rank r is
   * the step's batch m·worldSize + r, so a step covers the same rows whatever the split between ranks and
   * accumulation (a run may resume with another rank count and the same totalBatchTokens). The gradients and
   * micro-batch losses become their mean over the ranks before the update (the same bits on every rank, so every
   * rank applies the same update); totalBatchTokens counts every rank's tokens. Only rank 0 logs, validates,
   * samples and writes (log, checkpoints, plot); the others wait for it at the next step's all-reduce.
   */
  collective?: Collective;
  /**
   * ZeRO stage with a collective: 0 (default) every rank keeps all AdamW moments and updates every tensor; 1 each
   * rank keeps the moments of the tensors it owns (assigned greedily by size, zeroOwners), updates those, and sends
   * them to the others, so every rank ends the step with the same bits as with 0. Checkpoints are the same files.
   */
  zero?: 0 | 1;
  /**
   * With a collective: overlap the gradients' all-reduce with backward, in buckets of about this many bytes, each
   * read back and reduced once backward has recorded everything that adds to it (last micro-batch only); the
   * results are the same bits as without. 0 or absent: reduce everything after backward.
   */
  bucketBytes?: number;
  /** Read the final parameters back into TrainResult.params (every rank's, for checks across ranks). */
  returnParams?: boolean;
  /** Measured f32 peak of the adapter in TFLOP/s for MFU; measured at start when absent. */
  peakTflops?: number;
  /**
   * Time every kernel of the training steps after the first (which compiles the pipelines) and log, at the end,
   * GPU time per kernel over a step, dispatches per step and the matmuls' share: timestamp queries where the
   * adapter has them, else wall time per dispatch ('wall' forces that).
   */
  profile?: boolean | 'wall';
  log?: (line: string) => void;
}

export interface StepLog {
  step: number;
  loss: number;
  lr: number;
  gradNorm: number;
  ms: number;
  tokensPerSec: number;
  mfu: number;
  skipped?: boolean;
  valLoss?: number;
}

/** A run's log.jsonl, one entry per step: unreadable lines (a line torn by a crash) are skipped. */
function readLog(file: string): StepLog[] {
  if (!existsSync(file)) return [];
  const out: StepLog[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      const e = JSON.parse(line) as StepLog;
      if (typeof e === 'object' && e !== null && Number.isInteger(e.step)) out.push(e);
    } catch {
      /* torn or foreign line */
    }
  }
  return out;
}

export interface TrainResult {
  steps: StepLog[];
  valLosses: { step: number; loss: number }[];
  checkpoint: string;
  plot: string;
  stoppedEarly?: string;
  /** The parameters at the end (llm.c's order), with TrainOptions.returnParams. */
  params?: Float32Array;
}

/** A one-line bar on stderr when it is a terminal (log lines go to stdout and stay readable in files). */
function progressBar(step: number, steps: number, etaMs: number): void {
  if (!process.stderr.isTTY) return;
  const width = 30;
  const done = Math.round((width * step) / steps);
  process.stderr.write(
    `\r[${'#'.repeat(done)}${'.'.repeat(width - done)}] ${step}/${steps}, ` +
      `eta ${(etaMs / 1000).toFixed(0)} s ${step === steps ? '\n' : ''}`,
  );
}

/**
 * The classifier's row weights that make a step's loss the mean over every masked-in position of its micro-batches
 * (null when the batches have no mask: every position counts, as in pre-training). Each micro-batch's loss is the
 * mean of its B·T weighted per-position losses and the step's loss the mean of the micro-batch losses (backward
 * scales each by 1/accum), so a weight of accum·B·T / N on each of the step's N masked-in positions (0 elsewhere)
 * makes the step's loss Σ losses / N, and each position's gradient 1/N of its own: every trained token counts the
 * same however the tokens fall into micro-batches (llm.c's choice), where a mean per micro-batch would weight a
 * token of a micro-batch with few trained tokens more. A step without any masked-in position has weights 0: loss 0.
 */
export function lossWeights(batches: readonly Batch[], rows: number): Float32Array[] | null {
  if (!batches.some((b) => b.mask)) return null;
  let n = 0;
  for (const b of batches) {
    if (!b.mask) throw new Error('lossWeights: every micro-batch of a step needs a mask, or none');
    if (b.mask.length !== rows) throw new Error(`lossWeights: a mask of ${b.mask.length} for ${rows} positions`);
    for (const m of b.mask) if (m) n++;
  }
  const w = n ? (batches.length * rows) / n : 0;
  return batches.map((b) => Float32Array.from(b.mask!, (m) => (m ? w : 0)));
}

/** llm.c's schedule: linear warmup to lr, then cosine from lr down to lr·finalLrFrac at the last step. */
export function learningRate(
  step: number,
  o: Pick<TrainOptions, 'lr' | 'warmupSteps' | 'finalLrFrac' | 'steps'>,
): number {
  if (step <= o.warmupSteps) return (o.lr * step) / Math.max(1, o.warmupSteps);
  const decay = (step - o.warmupSteps) / Math.max(1, o.steps - o.warmupSteps);
  const coeff = 0.5 * (1 + Math.cos(Math.PI * Math.min(1, decay)));
  const min = o.lr * o.finalLrFrac;
  return min + coeff * (o.lr - min);
}

/** Training FLOPs per token: 6 per parameter plus attention's 12·L·C·T (PaLM appendix B, as llm.c counts). */
export function flopsPerToken(c: GPT2Config, T: number): number {
  return 6 * paramCount(c) + 12 * c.L * c.C * T;
}

/** The adapter's f32 rate through our best matmul, in TFLOP/s (the MFU denominator). */
export async function measurePeakTflops(gpu: Gpu): Promise<number> {
  const n = gpu.software ? 256 : 4096;
  const a = tensor(gpu, new Float32Array(n * n).fill(0.5), [n, n], 'f32', { track: false });
  const c = tensor(gpu, new Float32Array(n * n), [n, n], 'f32', { track: false });
  const run = () => gemm(gpu, { M: n, N: n, K: n, a: a.buffer, b: a.buffer, c: c.buffer });
  run();
  await gpu.sync();
  // The fastest of a few timed runs: the rate the adapter can reach, not what a busy moment gave.
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    run();
    await gpu.sync();
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  a.dispose();
  c.dispose();
  return (2 * n ** 3) / best / 1e12;
}

/** Train and validation shards of a data folder (names with _train_ / _val_, as `wgpt data run` writes them). */
export function findShards(dir: string): { train: string[]; val: string[] } {
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new WgptError(`${dir}: not a folder of token shards (run \`wgpt data run\` first)`);
  const files = readdirSync(dir).filter((f) => f.endsWith('.bin')).sort();
  const train = files.filter((f) => /(^|_)train(_|\.)/.test(f)).map((f) => join(dir, f));
  const val = files.filter((f) => /(^|_)val(_|\.)/.test(f)).map((f) => join(dir, f));
  if (!train.length) throw new WgptError(`${dir}: no training shards (*_train_*.bin)`);
  return { train, val };
}

export async function train(gpu: Gpu, o: TrainOptions): Promise<TrainResult> {
  const W = o.collective?.worldSize ?? 1;
  const rank = o.collective?.rank ?? 0;
  const lead = rank === 0;
  const log = lead ? (o.log ?? ((s: string) => console.log(s))) : () => {};
  const { config, B, T } = o;
  if (T > config.maxT) throw new WgptError(`sequence length T=${T} exceeds the model's context ${config.maxT}`);
  if (o.totalBatchTokens % (W * B * T)) {
    const what = W > 1 ? `ranks·B·T = ${W}·${B}·${T}` : `B·T = ${B * T}`;
    throw new WgptError(`total batch ${o.totalBatchTokens} tokens is not a multiple of ${what}`);
  }
  const accum = o.totalBatchTokens / (W * B * T);
  const zero = W > 1 ? (o.zero ?? 0) : 0;
  // Packed rows: each sequence attends only to itself and its positions restart (checked once per batch here, so a
  // source that breaks the contract fails naming the row rather than training on a wrong mask).
  const packing = (b: Batch) => {
    if (!b.segments || !b.positions) return {};
    checkSegments(b.segments, B, T);
    checkPositions(b.positions, config.maxT, T);
    return {
      segments: tensor(gpu, b.segments, [B * T], 'i32'),
      positions: tensor(gpu, b.positions, [B * T], 'i32'),
    };
  };
  if (o.sampleEvery > 0 && !o.sampler && !(Number.isInteger(o.eotToken) && o.eotToken >= 0 && o.eotToken < config.V)) {
    throw new WgptError(
      `samples start from the <|endoftext|> token, but its id ${o.eotToken} is not in the model's vocabulary ` +
        `[0, ${config.V}); use the tokenizer the data was made with, or turn samples off (--sample-every 0)`,
    );
  }

  let params = o.init;
  let startStep = 0;
  // Shards are checked against the model's vocabulary V (ids in V..Vp would silently train the padding rows).
  let trainLoader: BatchSource;
  if (o.trainSource) trainLoader = o.trainSource;
  else if (o.trainFiles?.length) {
    trainLoader = new ShardLoader(o.trainFiles, B, T, { shuffle: true, seed: o.seed, vocab: config.V });
  } else throw new WgptError('train: no training data (trainFiles or trainSource)');
  const valOpts = { shuffle: false, seed: 0, vocab: config.V };
  const valLoader: ValidationSource | null =
    o.valSource ?? (o.valFiles?.length ? new ShardLoader(o.valFiles, B, T, valOpts) : null);
  for (const [what, src, rows] of [['training', trainLoader, B], ['validation', valLoader, B]] as const) {
    if (src && (src.B !== rows || src.T !== T)) {
      throw new Error(`train: the ${what} batches are ${src.B}×${src.T}, the run's are ${rows}×${T}`);
    }
  }
  const settings = runSettings(o, trainLoader);
  let resumed: ReturnType<typeof loadCheckpoint> | null = null;
  let history: StepLog[] = [];
  if (o.resume) {
    resumed = loadCheckpoint(o.resume);
    for (const s of resumed.skipped) log(`passed over a damaged checkpoint: ${s}`);
    const from = resumed.dir;
    if (/\.(old|tmp-[^/\\]*)$/.test(from)) {
      log(`resuming from ${from}, the newest complete checkpoint (left by a crash)`);
    }
    const was = resumed.model.config;
    const keys = ['maxT', 'V', 'Vp', 'L', 'NH', 'C'] as const;
    const diff = keys.filter((k) => was[k] !== config[k]).map((k) => `${k} ${was[k]} → ${config[k]}`);
    if (diff.length) throw new WgptError(`${from}: the checkpoint's model has a different shape: ${diff.join(', ')}`);
    if (!resumed.state.settings) {
      const note = `${from} does not record its run's settings (an older wgpt wrote it)`;
      log(`${note}: this resume cannot be checked to be exact`);
    } else {
      const changes = settingsChanges(resumed.state.settings, settings);
      if (changes.length && !o.allowChange) {
        throw new WgptError(
          `${from}: resuming with other settings would not continue the run exactly: ${changes.join('; ')}. ` +
            `Give the checkpoint's values, or pass --allow-change to continue with the new ones`,
        );
      }
      for (const c of changes) log(`setting changed on resume (--allow-change): ${c}`);
    }
    params = resumed.model.params;
    startStep = resumed.state.step;
    trainLoader.restore(resumed.state.loader);
    const ranks = resumed.state.ranks ?? 1;
    if (ranks !== W) {
      // The source's position counts batches of B rows, whatever the rank count: the same rows come next.
      log(
        `continuing a run of ${ranks} rank(s) on ${W}: ${accum} micro-batch(es) of ${B} rows per rank, the same ` +
          `${W * accum * B} rows per step (${resumed.state.rows ?? '?'} rows read so far)`,
      );
    }
  }
  mkdirSync(o.outDir, { recursive: true });
  const logFile = join(o.outDir, 'log.jsonl');
  if (resumed) {
    // The log up to the checkpoint's step (later lines were written by the run that crashed and are redone now),
    // from this folder or, when resuming into a new one, from the checkpoint's run folder.
    const source = existsSync(logFile) ? logFile : join(dirname(resolve(resumed.dir)), 'log.jsonl');
    const byStep = new Map<number, StepLog>();
    for (const e of readLog(source)) if (e.step <= startStep) byStep.set(e.step, e);
    history = [...byStep.values()].sort((a, b) => a.step - b.step);
    if (lead) writeFileAtomic(logFile, [Buffer.from(history.map((e) => JSON.stringify(e) + '\n').join(''), 'utf8')]);
  } else if (lead) {
    removeCheckpoints(join(o.outDir, 'checkpoint')); // an earlier run's, which a later --resume must not pick up
    writeFileSync(logFile, '');
  }
  const model = new GPT2(gpu, config, params);
  const owners = zero ? zeroOwners(model.parameters().map((p) => p.size), W) : null;
  const opt = new AdamW(
    gpu,
    model.parameters(),
    { lr: o.lr, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: o.weightDecay, maxNorm: o.maxNorm },
    model.decayFlags(),
    owners ? { owned: owners.map((r) => r === rank) } : {},
  );
  if (resumed) {
    const { loadAdamW } = await import('@wgpt/kernels');
    loadAdamW(opt, resumed.state.optimizer);
  }
  const peak = o.peakTflops ?? (await measurePeakTflops(gpu));
  const fpt = flopsPerToken(config, T);
  log(
    `GPT-2 L=${config.L} C=${config.C} NH=${config.NH} V=${config.V} (Vp ${config.Vp}), ` +
      `${(paramCount(config) / 1e6).toFixed(2)}M parameters on ${gpu.describe()}; ` +
      `B=${B} T=${T}${W > 1 ? ` on each of ${W} ranks${zero ? ' (ZeRO-1)' : ''}` : ''}` +
      `${W > 1 && o.collective?.summation ? ` (sums: ${o.collective.summation})` : ''}, ` +
      `${accum} micro-batch(es) per step ` +
      `(${o.totalBatchTokens} tokens), ` +
      `${o.steps} steps${startStep ? `, resuming after step ${startStep}` : ''}; ` +
      `MFU against ${peak >= 1 ? `${peak.toFixed(1)} TFLOP/s` : `${(peak * 1000).toFixed(2)} GFLOP/s`} ` +
      `(our matmul, measured now)`,
  );
  const steps: StepLog[] = [];
  const valLosses: { step: number; loss: number }[] = [];
  const scale = tensor(gpu, [1 / accum], [1], 'f32', { track: false });
  let badInARow = 0;
  let lastCheckpoint = resumed ? resumed.dir : '';
  let stoppedEarly: string | undefined;

  const validate = async (): Promise<number> => {
    if (!valLoader) return NaN;
    valLoader.reset();
    let sum = 0;
    // With a mask: the mean over every masked-in position of the batches (each batch's mean is over all B·T
    // positions, the masked-out ones adding 0, so it is turned back into a sum).
    let counted = 0;
    const n = Math.min(o.valBatches, valLoader.batchesPerEpoch);
    for (let i = 0; i < n; i++) {
      const b = valLoader.next();
      const mask = b.mask ? Float32Array.from(b.mask, (m) => (m ? 1 : 0)) : null;
      if (mask) counted += mask.reduce((a, m) => a + m, 0);
      const mean = await tidyAsync(async () => {
        const { loss } = noGrad(() =>
          model.forward(
            tensor(gpu, b.inputs, [B, T], 'i32'),
            tensor(gpu, b.targets, [B, T], 'i32'),
            { ...packing(b), ...(mask ? { mask: tensor(gpu, mask, [B * T]) } : {}) },
          ),
        );
        return loss!.item();
      });
      sum += mask ? mean * B * T : mean;
    }
    return counted ? sum / counted : sum / n;
  };

  const sample = async (step: number) => {
    if (o.sampler) {
      log(`--- sample at step ${step} ---\n${printable(await o.sampler(model, step))}\n---`);
      return;
    }
    const ids: number[] = [];
    for await (const t of generate(model, [o.eotToken], {
      maxNewTokens: o.sampleTokens,
      temperature: 1,
      seed: o.seed + step,
      stopTokens: [o.eotToken],
    }))
      ids.push(t);
    const text = o.decode ? o.decode(ids.filter((t) => t !== o.eotToken)) : ids.join(' ');
    log(`--- sample at step ${step} ---\n${printable(text)}\n---`);
  };

  // Every rank's moments (with ZeRO-1 each owner sends its own to the others); rank 0 writes them.
  const optimizerState = async () => {
    const st = await opt.state();
    if (owners) await gatherMoments(o.collective!, owners, model.parameters().map((p) => p.size), st);
    return st;
  };
  const checkpoint = async (step: number, optimizer: AdamWState) => {
    const dir = join(o.outDir, 'checkpoint');
    // Rows the training source has handed out since the run began (not known when resuming an older checkpoint).
    const before = resumed ? resumed.state.rows : 0;
    await saveCheckpoint(dir, { config, params: await model.toFlat() }, {
      step,
      loader: trainLoader.state,
      optimizer,
      seed: o.seed,
      settings: { ...settings },
      ranks: W,
      ...(before === undefined ? {} : { rows: before + (step - startStep) * W * accum * B }),
    }, o.checkpointFiles);
    lastCheckpoint = dir;
  };

  if (resumed && lead) {
    const own = join(o.outDir, 'checkpoint');
    // What a crash left beside this run's checkpoint goes now, as the next save would remove it.
    if (resolve(resumed.dir) === resolve(own)) tidyCheckpoints(own, startStep);
    // A run resumed at its last step from a folder left by a crash (checkpoint.old, .tmp-*) puts it in place.
    else if (startStep >= o.steps) await checkpoint(startStep, resumed.state.optimizer);
  }
  const tStart = performance.now();
  // Each micro-batch's loss lands here on the GPU; the optimizer's status carries them back with the norm.
  const microLosses = empty(gpu, [accum], 'f32', { track: false, name: 'micro-batch losses' });
  const reduced = o.collective ? coveringSpans([...model.parameters().map((p) => p.grad!), microLosses]) : [];
  const overlap = !!o.collective && (o.bucketBytes ?? 0) > 0;
  const sharedBuckets: Float32Array[] = []; // the buckets' shared arrays, made in the first step (Buckets)
  // Each parameter's gradient, for the buckets of the overlapped all-reduce.
  const gradSpans = new Map(
    model.parameters().map((p) => {
      const { buffer, offset } = bufferRange(p.grad!.buffer);
      return [p, { buffer, offset, count: p.size }] as const;
    }),
  );
  // Per rank, the parameters it owns under ZeRO-1 (one span per tensor, padding left out).
  const ownedSpans = owners
    ? [...Array(W).keys()].map((r) =>
        model.parameters().flatMap((p, i) => {
          if (owners[i] !== r) return [];
          const { buffer, offset } = bufferRange(p.buffer);
          return [{ buffer, offset, count: p.size }];
        }),
      )
    : null;
  const profiled = { steps: 0, dispatches: 0, how: '' };
  for (let step = startStep + 1; step <= o.steps; step++) {
    const t0 = performance.now();
    const lr = learningRate(step, o);
    const profiling = !!o.profile && step > startStep + 1;
    if (profiling) profiled.how = gpu.setProfiling(true, { wall: o.profile === 'wall' });
    const d0 = gpu.dispatchCount;
    // One submit and one wait per step: every micro-batch's tokens go up first (an upload submits what is recorded
    // before it), then forward, backward and the update are recorded, and one read after the update returns the
    // losses, the norm and whether the update was applied (the GPU skips a non-finite step by itself). With ranks,
    // the all-reduce (and ZeRO-1's broadcast) add their own reads, uploads and submits.
    const batches = Array.from({ length: accum * W }, () => trainLoader.next());
    // Weights over all ranks' rows: the mean over ranks of each rank's mean is then the mean over all positions.
    const weights = lossWeights(batches, B * T);
    const result = await tidyAsync(async () => {
      const xy = Array.from({ length: accum }, (_, micro) => micro * W + rank).map((k) => ({
        x: tensor(gpu, batches[k]!.inputs, [B, T], 'i32'),
        y: tensor(gpu, batches[k]!.targets, [B, T], 'i32'),
        mask: weights ? tensor(gpu, weights[k]!, [B * T]) : undefined,
        ...packing(batches[k]!),
      }));
      opt.zeroGrad();
      const buckets = overlap ? new Buckets(gpu, o.collective!, gradSpans, o.bucketBytes!, sharedBuckets) : null;
      xy.forEach(({ x, y, mask, segments, positions }, micro) =>
        tidy(() => {
          const { loss } = model.forward(x, y, { overwriteLogits: true, mask, segments, positions });
          const last = buckets && micro === accum - 1;
          backward(loss!, scale, last ? { onGradFinal: (t) => buckets.ready(t) } : {});
          gpu.copy(loss!.buffer, 0, microLosses.buffer, 4 * micro, 4);
        }),
      );
      // The mean over the ranks of the gradients and of the losses (which decide whether the update is applied).
      if (buckets) await buckets.finish([{ buffer: microLosses.buffer, offset: 0, count: accum }]);
      else if (o.collective) await allReduceSpans(gpu, o.collective, reduced, 'mean');
      opt.update(lr, { skipNonFinite: true, losses: microLosses });
      // ZeRO-1: each owner's updated tensors to every rank (a skipped step sends them unchanged).
      if (ownedSpans) await broadcastSpans(gpu, o.collective!, ownedSpans);
      return opt.lastStep();
    });
    if (profiling) {
      gpu.setProfiling(false);
      profiled.steps++;
      profiled.dispatches += gpu.dispatchCount - d0;
    }
    // The mean of the micro-batch losses (each an f32 read back), added in order as before.
    const loss = Array.from(result.losses).reduce((a, l) => a + l, 0) / accum;
    const gradNorm = result.gradNorm;
    const skipped = !result.applied;
    // The GPU decided on the bits of the f32 values; a finite f32 loss sum cannot overflow a double here.
    if (skipped === (Number.isFinite(loss) && Number.isFinite(gradNorm)))
      throw new Error(`step ${step}: the GPU ${skipped ? 'skipped' : 'applied'} an update with loss ${loss}, ` +
        `norm ${gradNorm}`);
    if (skipped) {
      badInARow++;
      log(`step ${step}: loss ${loss} / grad norm ${gradNorm} is not finite: update skipped (${badInARow} in a row)`);
      if (badInARow >= 3) {
        stoppedEarly =
          `3 non-finite steps in a row at step ${step}; ` +
          `the last good checkpoint is ${lastCheckpoint || '(none yet)'}`;
        log(`stopping: ${stoppedEarly}`);
        break;
      }
    } else badInARow = 0;
    const ms = performance.now() - t0;
    const tps = (o.totalBatchTokens * 1000) / ms;
    const entry: StepLog = {
      step,
      loss,
      lr,
      gradNorm,
      ms,
      tokensPerSec: tps,
      mfu: (tps * fpt) / (W * peak * 1e12), // tokens of all ranks, each rank on its own GPU
      ...(skipped ? { skipped } : {}),
    };
    const eta = ((performance.now() - tStart) / (step - startStep)) * (o.steps - step);
    if (lead) progressBar(step, o.steps, eta);
    log(
      `step ${String(step).padStart(String(o.steps).length)}/${o.steps} | loss ${loss.toFixed(6)} | ` +
        `lr ${lr.toExponential(2)} | norm ${gradNorm.toFixed(4)} | ` +
        `${ms.toFixed(1)} ms | ${Math.round(tps)} tok/s | MFU ${(100 * entry.mfu).toFixed(1)}% | ` +
        `eta ${(eta / 1000).toFixed(0)} s`,
    );
    if (lead && valLoader && (step % o.valEvery === 0 || step === o.steps)) {
      entry.valLoss = await validate();
      valLosses.push({ step, loss: entry.valLoss });
      log(`val loss ${entry.valLoss.toFixed(6)}`);
    }
    if (lead) appendFileSync(logFile, JSON.stringify(entry) + '\n');
    steps.push(entry);
    if (lead && o.sampleEvery > 0 && (step % o.sampleEvery === 0 || step === o.steps)) await sample(step);
    let stopNow = step === o.stopAfter || !!o.shouldStop?.();
    if (o.collective) {
      // Every rank stops after the same step (a signal may reach one rank first): stop if any rank would.
      const flag = new Float32Array([stopNow ? 1 : 0]);
      await o.collective.allReduce(flag);
      stopNow = flag[0]! > 0;
    }
    if ((o.checkpointEvery > 0 && step % o.checkpointEvery === 0) || step === o.steps || stopNow) {
      const st = lead || owners ? await optimizerState() : null; // with ZeRO-1 every rank sends its moments
      if (lead) await checkpoint(step, st!);
    }
    if (stopNow && step < o.steps) {
      stoppedEarly = `stopped after step ${step}; resume with the checkpoint ${lastCheckpoint}`;
      log(stoppedEarly);
      break;
    }
  }
  const plot = join(o.outDir, 'loss.svg');
  // The whole run: the steps before the checkpoint this run resumed from (read back from the log), then this run's.
  const all = [...history, ...steps];
  const allVal = all.filter((s) => Number.isFinite(s.valLoss)).map((s) => ({ step: s.step, loss: s.valLoss! }));
  const title = `GPT-2 L=${config.L} C=${config.C}: loss`;
  if (lead) writeFileSync(plot, await lossPlotSvg(all.map((s) => ({ step: s.step, loss: s.loss })), allVal, title));
  if (o.profile) {
    if (!profiled.steps) log('profile: no step after the first ran, nothing timed');
    else {
      const times = await gpu.profileTimes();
      const how = profiled.how === 'wall' ? 'wall time per dispatch, each submitted alone' : 'timestamp queries';
      for (const line of profileTable(times, profiled.steps, how)) log(line);
      log(`dispatches per step: ${(profiled.dispatches / profiled.steps).toFixed(0)} (AdamW ${opt.dispatchesPerStep})`);
      gpu.resetProfile();
    }
  }
  const finalParams = o.returnParams ? await model.toFlat() : undefined;
  opt.dispose();
  model.dispose();
  scale.dispose();
  microLosses.dispose();
  return { steps, valLosses, checkpoint: lastCheckpoint, plot, stoppedEarly, params: finalParams };
}
