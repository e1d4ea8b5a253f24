// The runtime self-check: train a small MLP on three interleaved spirals with our kernels and autograd on
// whichever adapter is chosen, print the loss as it falls and the time taken, and fail if it does not fall.
import { backward, Gpu, keep, noGrad, parameters, profileTable, tensor, tidy, type Tensor } from '@wgpt/runtime';
import { AdamW, crossEntropy, gelu, linear, mean } from '@wgpt/kernels';
import { mulberry32 } from '@wgpt/runtime';

export interface SelfCheckOptions {
  steps: number;
  hidden: number;
  seed: number;
  adapter?: string;
  /** Time every kernel with timestamp queries and print the table at the end. */
  profile?: boolean;
  log?: (line: string) => void;
}

export interface SelfCheckResult {
  ok: boolean;
  firstLoss: number;
  lastLoss: number;
  accuracy: number;
  msPerStep: number;
  adapter: string;
}

/** CS231n's spiral data: `classes` arms of `perClass` points in 2-D, with a little angular noise. */
export function spirals(perClass: number, classes: number, rand: () => number): { x: Float32Array; y: Int32Array } {
  const n = perClass * classes;
  const x = new Float32Array(n * 2);
  const y = new Int32Array(n);
  for (let c = 0; c < classes; c++)
    for (let i = 0; i < perClass; i++) {
      const j = c * perClass + i;
      const r = i / perClass;
      const t = (c * 4 + 4 * r) + (rand() - 0.5) * 0.4;
      x[2 * j] = r * Math.sin(t);
      x[2 * j + 1] = r * Math.cos(t);
      y[j] = c;
    }
  return { x, y };
}

function init(rand: () => number, fanIn: number, n: number): Float32Array {
  const bound = 1 / Math.sqrt(fanIn);
  return Float32Array.from({ length: n }, () => (2 * rand() - 1) * bound);
}

export async function selfCheck(opts: SelfCheckOptions): Promise<SelfCheckResult> {
  const log = opts.log ?? ((s: string) => console.log(s));
  const t0 = performance.now();
  const gpu = await Gpu.open({ adapter: opts.adapter });
  try {
    const openMs = performance.now() - t0;
    log(`wgpt selfcheck on ${gpu.describe()} (opened in ${openMs.toFixed(0)} ms)`);
    const rand = mulberry32(opts.seed);
    const K = 3;
    const H = opts.hidden;
    const data = spirals(100, K, rand);
    const N = data.y.length;
    log(`MLP 2 -> ${H} -> ${H} -> ${K} (GELU), ${N} points of ${K} interleaved spirals, full batch, AdamW lr 1e-2`);
    // Packed into one buffer (as GPT-2's are): the optimizer updates them all in three dispatches.
    const [w1, b1, w2, b2, w3, b3] = parameters(gpu, [
      { shape: [H, 2], data: init(rand, 2, H * 2), name: 'w1' },
      { shape: [H], name: 'b1' },
      { shape: [H, H], data: init(rand, H, H * H), name: 'w2' },
      { shape: [H], name: 'b2' },
      { shape: [K, H], data: init(rand, H, K * H), name: 'w3' },
      { shape: [K], name: 'b3' },
    ]) as [Tensor, Tensor, Tensor, Tensor, Tensor, Tensor];
    const params = { w1, b1, w2, b2, w3, b3 };
    const plist = Object.values(params);
    const opt = new AdamW(gpu, plist, { lr: 1e-2, weightDecay: 1e-4, maxNorm: 1.0 });
    const x = tensor(gpu, data.x, [N, 2], 'f32', { track: false });
    const y = tensor(gpu, data.y, [N], 'i32', { track: false });
    const forward = () => {
      const h1 = gelu(linear(x, params.w1, params.b1));
      const h2 = gelu(linear(h1, params.w2, params.b2));
      return linear(h2, params.w3, params.b3);
    };

    let firstLoss = NaN;
    let lastLoss = NaN;
    const every = Math.max(1, Math.round(opts.steps / 6));
    const how = opts.profile ? gpu.setProfiling(true) : null;
    const tTrain = performance.now();
    const d0 = gpu.dispatchCount;
    for (let step = 1; step <= opts.steps; step++) {
      const logNow = step === 1 || step % every === 0 || step === opts.steps;
      const loss = tidy(() => {
        opt.zeroGrad();
        const l = mean(crossEntropy(forward(), y));
        backward(l);
        opt.update();
        return logNow ? keep(l) : null;
      });
      if (loss) {
        const v = await loss.item();
        loss.dispose();
        if (step === 1) firstLoss = v;
        lastLoss = v;
        const ms = (performance.now() - tTrain) / step;
        log(`step ${String(step).padStart(4)}  loss ${v.toFixed(4)}  ${ms.toFixed(1)} ms/step`);
      }
    }
    await gpu.sync();
    const trainMs = performance.now() - tTrain;
    const dispatchesPerStep = (gpu.dispatchCount - d0) / opts.steps;

    if (how) {
      const times = await gpu.profileTimes();
      gpu.setProfiling(false);
      const what = how === 'wall' ? 'wall time per dispatch, each submitted alone' : 'timestamp queries';
      for (const line of profileTable(times, opts.steps, what)) log(line);
    }
    const logits = noGrad(() => forward());
    const l = await logits.read();
    logits.dispose();
    let correct = 0;
    for (let i = 0; i < N; i++) {
      let best = 0;
      for (let k = 1; k < K; k++) if (l[i * K + k]! > l[i * K + best]!) best = k;
      if (best === data.y[i]) correct++;
    }
    const accuracy = correct / N;
    const ok = Number.isFinite(lastLoss) && lastLoss < 0.5 * firstLoss;
    log(
      `${opts.steps} steps in ${(trainMs / 1000).toFixed(2)} s (${(trainMs / opts.steps).toFixed(1)} ms/step, ` +
        `${dispatchesPerStep.toFixed(0)} dispatches/step), accuracy ${(100 * accuracy).toFixed(1)}%, ` +
        `peak GPU memory in use ${(gpu.pool.stats.peakBytesInUse / 1024).toFixed(0)} KiB`,
    );
    log(
      ok
        ? `PASS: loss fell from ${firstLoss.toFixed(4)} to ${lastLoss.toFixed(4)}`
        : `FAIL: loss went from ${firstLoss.toFixed(4)} to ${lastLoss.toFixed(4)} (expected to halve)`,
    );
    opt.dispose();
    w1.pack!.dispose(); // every parameter and gradient
    for (const t of [x, y]) t.dispose();
    return { ok, firstLoss, lastLoss, accuracy, msPerStep: trainMs / opts.steps, adapter: gpu.adapterName };
  } finally {
    gpu.destroy();
  }
}

export async function runSelfCheck(opts: SelfCheckOptions): Promise<boolean> {
  return (await selfCheck(opts)).ok;
}
