// The GPT-2 training loop (llm.c's train_gpt2 on wgpt): AdamW with a cosine schedule after warmup, gradient
// accumulation to a total batch in tokens, clipping at a global norm, validation every N steps, a sample every N
// steps, one log line per step (+ JSONL), a loss plot at the end, atomic checkpoints and exact resume.
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { backward, noGrad, tensor, tidyAsync, WgptError, type Gpu } from '@wgpt/runtime';
import { AdamW, gemm } from '@wgpt/kernels';
import { paramCount, type GPT2Config } from './config.ts';
import { ShardLoader } from './loader.ts';
import { GPT2 } from './model.ts';
import { lossPlotSvg } from './plot.ts';
import { generate, printable } from './sample.ts';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.ts';

export interface TrainOptions {
  config: GPT2Config;
  /** Initial parameters (llm.c order); random GPT-2 init when absent. */
  init: Float32Array;
  trainFiles: string[];
  valFiles: string[];
  B: number;
  T: number;
  /** Tokens per optimizer step; a multiple of B·T (the rest is gradient accumulation). */
  totalBatchTokens: number;
  steps: number;
  lr: number;
  warmupSteps: number;
  /** The cosine schedule ends at lr · finalLrFrac. */
  finalLrFrac: number;
  weightDecay: number;
  maxNorm: number;
  valEvery: number;
  valBatches: number;
  sampleEvery: number;
  sampleTokens: number;
  checkpointEvery: number;
  outDir: string;
  /** Continue from the checkpoint in this folder (model.bin + state.bin). */
  resume?: string;
  /** Stop (with a checkpoint) after this step, as if interrupted; the schedule still runs to `steps`. */
  stopAfter?: number;
  /** Checked after every step: return true to stop with a checkpoint (e.g. on SIGINT). */
  shouldStop?: () => boolean;
  seed: number;
  /** For printing samples; ids are printed when absent. */
  decode?: (ids: number[]) => string;
  /** The token a sample starts from (<|endoftext|>). */
  eotToken: number;
  /** Measured f32 peak of the adapter in TFLOP/s for MFU; measured at start when absent. */
  peakTflops?: number;
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

export interface TrainResult {
  steps: StepLog[];
  valLosses: { step: number; loss: number }[];
  checkpoint: string;
  plot: string;
  stoppedEarly?: string;
}

/** A one-line bar on stderr when it is a terminal (log lines go to stdout and stay readable in files). */
function progressBar(step: number, steps: number, etaMs: number): void {
  if (!process.stderr.isTTY) return;
  const width = 30;
  const done = Math.round((width * step) / steps);
  process.stderr.write(`\r[${'#'.repeat(done)}${'.'.repeat(width - done)}] ${step}/${steps}, eta ${(etaMs / 1000).toFixed(0)} s ${step === steps ? '\n' : ''}`);
}

/** llm.c's schedule: linear warmup to lr, then cosine from lr down to lr·finalLrFrac at the last step. */
export function learningRate(step: number, o: Pick<TrainOptions, 'lr' | 'warmupSteps' | 'finalLrFrac' | 'steps'>): number {
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
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new WgptError(`${dir}: not a folder of token shards (run \`wgpt data run\` first)`);
  const files = readdirSync(dir).filter((f) => f.endsWith('.bin')).sort();
  const train = files.filter((f) => /(^|_)train(_|\.)/.test(f)).map((f) => join(dir, f));
  const val = files.filter((f) => /(^|_)val(_|\.)/.test(f)).map((f) => join(dir, f));
  if (!train.length) throw new WgptError(`${dir}: no training shards (*_train_*.bin)`);
  return { train, val };
}

export async function train(gpu: Gpu, o: TrainOptions): Promise<TrainResult> {
  const log = o.log ?? ((s: string) => console.log(s));
  const { config, B, T } = o;
  if (T > config.maxT) throw new WgptError(`sequence length T=${T} exceeds the model's context ${config.maxT}`);
  if (o.totalBatchTokens % (B * T)) throw new WgptError(`total batch ${o.totalBatchTokens} tokens is not a multiple of B·T = ${B * T}`);
  const accum = o.totalBatchTokens / (B * T);
  mkdirSync(o.outDir, { recursive: true });

  let params = o.init;
  let startStep = 0;
  const trainLoader = new ShardLoader(o.trainFiles, B, T, { shuffle: true, seed: o.seed });
  const valLoader = o.valFiles.length ? new ShardLoader(o.valFiles, B, T, { shuffle: false, seed: 0 }) : null;
  let resumed: Awaited<ReturnType<typeof loadCheckpoint>> | null = null;
  if (o.resume) {
    resumed = loadCheckpoint(o.resume);
    const keys = ['maxT', 'V', 'Vp', 'L', 'NH', 'C'] as const;
    if (keys.some((k) => resumed!.model.config[k] !== config[k])) throw new WgptError(`${o.resume}: checkpoint config ${JSON.stringify(resumed.model.config)} differs from ${JSON.stringify(config)}`);
    params = resumed.model.params;
    startStep = resumed.state.step;
    trainLoader.restore(resumed.state.loader);
  }
  const model = new GPT2(gpu, config, params);
  const opt = new AdamW(gpu, model.parameters(), { lr: o.lr, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: o.weightDecay, maxNorm: o.maxNorm }, model.decayFlags());
  if (resumed) {
    const { loadAdamW } = await import('@wgpt/kernels');
    loadAdamW(opt, resumed.state.optimizer);
  }
  const peak = o.peakTflops ?? (await measurePeakTflops(gpu));
  const fpt = flopsPerToken(config, T);
  log(
    `GPT-2 L=${config.L} C=${config.C} NH=${config.NH} V=${config.V} (Vp ${config.Vp}), ${(paramCount(config) / 1e6).toFixed(2)}M parameters on ${gpu.describe()}; ` +
      `B=${B} T=${T}, ${accum} micro-batch(es) per step (${o.totalBatchTokens} tokens), ${o.steps} steps${startStep ? `, resuming after step ${startStep}` : ''}; MFU against ${peak >= 1 ? `${peak.toFixed(1)} TFLOP/s` : `${(peak * 1000).toFixed(2)} GFLOP/s`} (our matmul, measured now)`,
  );
  const logFile = join(o.outDir, 'log.jsonl');
  if (!resumed) writeFileSync(logFile, '');
  const steps: StepLog[] = [];
  const valLosses: { step: number; loss: number }[] = [];
  const scale = tensor(gpu, [1 / accum], [1], 'f32', { track: false });
  let badInARow = 0;
  let lastCheckpoint = resumed ? o.resume! : '';
  let stoppedEarly: string | undefined;

  const validate = async (): Promise<number> => {
    if (!valLoader) return NaN;
    valLoader.reset();
    let sum = 0;
    const n = Math.min(o.valBatches, valLoader.batchesPerEpoch);
    for (let i = 0; i < n; i++) {
      const b = valLoader.next();
      sum += await tidyAsync(async () => {
        const { loss } = noGrad(() => model.forward(tensor(gpu, b.inputs, [B, T], 'i32'), tensor(gpu, b.targets, [B, T], 'i32')));
        return loss!.item();
      });
    }
    return sum / n;
  };

  const sample = async (step: number) => {
    const ids: number[] = [];
    for await (const t of generate(model, [o.eotToken], { maxNewTokens: o.sampleTokens, temperature: 1, seed: o.seed + step, stopTokens: [o.eotToken] })) ids.push(t);
    const text = o.decode ? o.decode(ids.filter((t) => t !== o.eotToken)) : ids.join(' ');
    log(`--- sample at step ${step} ---\n${printable(text)}\n---`);
  };

  const checkpoint = async (step: number) => {
    const dir = join(o.outDir, 'checkpoint');
    await saveCheckpoint(dir, { config, params: await model.toFlat() }, { step, loader: trainLoader.state, optimizer: await (await import('@wgpt/kernels')).saveAdamW(opt), seed: o.seed });
    lastCheckpoint = dir;
  };

  const tStart = performance.now();
  for (let step = startStep + 1; step <= o.steps; step++) {
    const t0 = performance.now();
    const lr = learningRate(step, o);
    opt.zeroGrad();
    let lossSum = 0;
    for (let micro = 0; micro < accum; micro++) {
      const b = trainLoader.next();
      lossSum += await tidyAsync(async () => {
        const { loss } = model.forward(tensor(gpu, b.inputs, [B, T], 'i32'), tensor(gpu, b.targets, [B, T], 'i32'));
        backward(loss!, scale);
        return loss!.item();
      });
    }
    const loss = lossSum / accum;
    opt.computeNormSq();
    const gradNorm = Math.sqrt(await opt.normSq.item());
    const skipped = !Number.isFinite(loss) || !Number.isFinite(gradNorm);
    if (skipped) {
      badInARow++;
      log(`step ${step}: loss ${loss} / grad norm ${gradNorm} is not finite: update skipped (${badInARow} in a row)`);
      if (badInARow >= 3) {
        stoppedEarly = `3 non-finite steps in a row at step ${step}; the last good checkpoint is ${lastCheckpoint || '(none yet)'}`;
        log(`stopping: ${stoppedEarly}`);
        break;
      }
    } else {
      badInARow = 0;
      opt.update(lr, { normComputed: true });
    }
    await gpu.sync();
    const ms = performance.now() - t0;
    const tps = (o.totalBatchTokens * 1000) / ms;
    const entry: StepLog = { step, loss, lr, gradNorm, ms, tokensPerSec: tps, mfu: (tps * fpt) / (peak * 1e12), ...(skipped ? { skipped } : {}) };
    const eta = ((performance.now() - tStart) / (step - startStep)) * (o.steps - step);
    progressBar(step, o.steps, eta);
    log(
      `step ${String(step).padStart(String(o.steps).length)}/${o.steps} | loss ${loss.toFixed(6)} | lr ${lr.toExponential(2)} | norm ${gradNorm.toFixed(4)} | ` +
        `${ms.toFixed(1)} ms | ${Math.round(tps)} tok/s | MFU ${(100 * entry.mfu).toFixed(1)}% | eta ${(eta / 1000).toFixed(0)} s`,
    );
    if (valLoader && (step % o.valEvery === 0 || step === o.steps)) {
      entry.valLoss = await validate();
      valLosses.push({ step, loss: entry.valLoss });
      log(`val loss ${entry.valLoss.toFixed(6)}`);
    }
    appendFileSync(logFile, JSON.stringify(entry) + '\n');
    steps.push(entry);
    if (o.sampleEvery > 0 && (step % o.sampleEvery === 0 || step === o.steps)) await sample(step);
    const stopNow = step === o.stopAfter || !!o.shouldStop?.();
    if ((o.checkpointEvery > 0 && step % o.checkpointEvery === 0) || step === o.steps || stopNow) await checkpoint(step);
    if (stopNow && step < o.steps) {
      stoppedEarly = `stopped after step ${step}; resume with the checkpoint ${lastCheckpoint}`;
      log(stoppedEarly);
      break;
    }
  }
  const plot = join(o.outDir, 'loss.svg');
  writeFileSync(plot, lossPlotSvg(steps.map((s) => ({ step: s.step, loss: s.loss })), valLosses, `GPT-2 L=${config.L} C=${config.C}: loss`));
  opt.dispose();
  model.dispose();
  scale.dispose();
  return { steps, valLosses, checkpoint: lastCheckpoint, plot, stoppedEarly };
}
