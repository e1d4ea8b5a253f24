// AdamW over a list of parameters: global gradient norm (Σ g² over every parameter, one buffer), then one fused
// update kernel per parameter that clips by that norm on the GPU, so a step needs no readback.
import { empty, tensor, WgptError, type Gpu, type KernelSpec, type Tensor } from '@wgpt/runtime';
import { grid1d } from '../common.ts';
import adamwSource from './adamw.wgsl';
import sumsqSource from './sumsq.wgsl';

export const adamwSpec: KernelSpec = {
  name: 'adamw',
  version: 'v1',
  description: 'one thread per parameter, clipping scale computed in-kernel from the global norm',
  source: adamwSource,
  file: 'kernels/adamw/adamw.wgsl',
  bindings: [
    { name: 'param', kind: 'storage' },
    { name: 'grad', kind: 'read-only-storage' },
    { name: 'm', kind: 'storage' },
    { name: 'v', kind: 'storage' },
    { name: 'norm_sq', kind: 'read-only-storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [
    { name: 'n', type: 'u32' },
    { name: 'lr', type: 'f32' },
    { name: 'beta1', type: 'f32' },
    { name: 'beta2', type: 'f32' },
    { name: 'eps', type: 'f32' },
    { name: 'weight_decay', type: 'f32' },
    { name: 'bias_correction1', type: 'f32' },
    { name: 'bias_correction2', type: 'f32' },
    { name: 'max_norm', type: 'f32' },
  ],
  overrides: { WG: 256 },
};

export const sumsqSpec: KernelSpec = {
  name: 'sumsq',
  version: 'v1',
  source: sumsqSource,
  file: 'kernels/adamw/sumsq.wgsl',
  bindings: [
    { name: 'x', kind: 'read-only-storage' },
    { name: 'out', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [
    { name: 'n', type: 'u32' },
    { name: 'accumulate', type: 'u32' },
  ],
  overrides: { WG: 256 },
};

export interface AdamWConfig {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Clip gradients to this global L2 norm; 0 disables clipping. */
  maxNorm: number;
}

export const ADAMW_DEFAULTS: AdamWConfig = {
  lr: 3e-4,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.1,
  maxNorm: 1.0,
};

/** Records norm_sq = Σ over tensors of Σ g² into `out` (one element). */
export function globalNormSq(gpu: Gpu, grads: Tensor[], out: Tensor): void {
  if (!grads.length) return void gpu.clear(out.buffer, 0, 4);
  grads.forEach((g, i) =>
    gpu.dispatch(sumsqSpec, {
      buffers: { x: g.buffer, out: out.buffer },
      uniforms: { n: g.size, accumulate: i === 0 ? 0 : 1 },
      workgroups: [1],
      context: `${g}`,
    }),
  );
}

export class AdamW {
  readonly config: AdamWConfig;
  step = 0;
  readonly m: Tensor[];
  readonly v: Tensor[];
  /** Σ g² of the last step, on the GPU: read it (await normSq.item()) only when you need the number. */
  readonly normSq: Tensor;

  /**
   * @param params the parameters to update, in a fixed order (the order of m and v in checkpoints)
   * @param decay per parameter: whether weight decay applies (GPT-2: 2-D weights yes, biases and norms no);
   *   default: parameters of rank ≥ 2.
   */
  constructor(
    readonly gpu: Gpu,
    readonly params: Tensor[],
    config: Partial<AdamWConfig> = {},
    readonly decay: boolean[] = params.map((p) => p.shape.length >= 2),
  ) {
    this.config = { ...ADAMW_DEFAULTS, ...config };
    if (decay.length !== params.length)
      throw new WgptError(`AdamW: ${decay.length} decay flags for ${params.length} parameters`);
    const z = (p: Tensor) => tensor(gpu, new Float32Array(p.size), p.shape, 'f32', { track: false });
    this.m = params.map(z);
    this.v = params.map(z);
    this.normSq = empty(gpu, [1], 'f32', { track: false, name: 'grad norm²' });
  }

  /** Records Σ g² over every parameter into normSq (update() does this itself unless told it is done). */
  computeNormSq(): void {
    for (const p of this.params)
      if (!p.grad || !p.gradReady)
        throw new WgptError(`AdamW: parameter ${p} has no gradient; call zeroGrad() before backward`);
    globalNormSq(
      this.gpu,
      this.params.map((p) => p.grad!),
      this.normSq,
    );
  }

  /**
   * One update with the current grads. `lr` overrides the configured rate (schedules). With normComputed, the
   * norm recorded by computeNormSq() (e.g. read to guard against NaN) is used as it is.
   */
  update(lr = this.config.lr, opts: { normComputed?: boolean } = {}): void {
    const { gpu, config: c } = this;
    if (!opts.normComputed) this.computeNormSq();
    this.step++;
    const bc1 = 1 - c.beta1 ** this.step;
    const bc2 = 1 - c.beta2 ** this.step;
    this.params.forEach((p, i) => {
      gpu.dispatch(adamwSpec, {
        buffers: {
          param: p.buffer,
          grad: p.grad!.buffer,
          m: this.m[i]!.buffer,
          v: this.v[i]!.buffer,
          norm_sq: this.normSq.buffer,
        },
        uniforms: {
          n: p.size,
          lr,
          beta1: c.beta1,
          beta2: c.beta2,
          eps: c.eps,
          weight_decay: this.decay[i] ? c.weightDecay : 0,
          bias_correction1: bc1,
          bias_correction2: bc2,
          max_norm: c.maxNorm,
        },
        workgroups: grid1d(gpu, p.size, 256),
        context: `${p}`,
      });
    });
  }

  zeroGrad(): void {
    for (const p of this.params) p.zeroGrad();
  }

  dispose(): void {
    for (const t of [...this.m, ...this.v, this.normSq]) t.dispose();
  }
}

/** Moments and step of an AdamW, in the optimizer's parameter order: what a training checkpoint stores. */
export interface AdamWState {
  step: number;
  m: Float32Array[];
  v: Float32Array[];
}

export async function saveAdamW(opt: AdamW): Promise<AdamWState> {
  const read = (t: Tensor) => t.read() as Promise<Float32Array>;
  return { step: opt.step, m: await Promise.all(opt.m.map(read)), v: await Promise.all(opt.v.map(read)) };
}

export function loadAdamW(opt: AdamW, s: AdamWState): void {
  if (s.m.length !== opt.m.length)
    throw new WgptError(`AdamW state has ${s.m.length} moments, the optimizer ${opt.m.length} parameters`);
  opt.step = s.step;
  s.m.forEach((m, i) => opt.m[i]!.write(m));
  s.v.forEach((v, i) => opt.v[i]!.write(v));
}
