// llm.c's fused classifier for GPT-2's padded vocabulary: per-row losses and the logits' gradient in one kernel.
//
// Contract of the op `fusedClassifier(logits (R, Vp), targets (R) i32, { V, mask?, scale? })`:
// - returns per-row losses (R): mask[r] · (−log softmax(logits[r, :V])[targets[r]]), exactly 0 where mask[r] = 0;
// - its output is meant to be reduced to L = scale · Σ_r losses[r] / count, count = Σ mask = the number of unmasked
//   rows (R without a mask), i.e. the mean over unmasked rows (a weighted mean for non-0/1 mask weights). The forward
//   kernel writes dL/dlogits during the forward pass (as llm.c does; the probabilities are never stored), into a
//   saved buffer;
// - backward takes the upstream gradient g (R) as a tensor and writes the exact VJP, saved · g[r] · count / scale.
//   With the intended upstream g[r] = scale · mask[r] / count this equals the saved gradient (one streaming pass);
//   any other g (e.g. a sum instead of a mean) is still handled exactly, so a mismatch cannot go silently wrong;
// - Vp must be a multiple of 4 (rows are read as vec4; GPT-2 pads to a multiple of 64). Columns V ≤ v < Vp are
//   ignored in the softmax (whatever they hold) and get gradient 0; a target outside [0, V) on an unmasked row
//   makes that row's loss and gradient NaN; masked rows get loss 0 and gradient 0 whatever their target.
import {
  defineOp,
  empty,
  grid1d,
  isGradEnabled,
  WgptError,
  type Gpu,
  type KernelSpec,
  type Tensor,
} from '@wgpt/runtime';
import { expectDtype, expectSameGpu, expectShape, placeholder } from '../common.ts';
import backwardSource from './fused_classifier_backward.wgsl';
import forwardSource from './fused_classifier.wgsl';

export const fusedClassifierSpec: KernelSpec = {
  name: 'fused_classifier',
  version: 'v1',
  revision: 2,
  description:
    'one workgroup per row, vec4 rows (r1: scalar), online max/sum per thread, two-level 16-way merge, ' +
    'gradient written in the same kernel',
  source: forwardSource,
  file: 'kernels/classifier/fused_classifier.wgsl',
  bindings: [
    { name: 'logits', kind: 'read-only-storage' },
    { name: 'targets', kind: 'read-only-storage' },
    { name: 'mask', kind: 'read-only-storage' },
    { name: 'losses', kind: 'storage' },
    { name: 'dlogits', kind: 'storage' },
    { name: 'count_out', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [
    { name: 'R', type: 'u32' },
    { name: 'V', type: 'u32' },
    { name: 'Vp', type: 'u32' },
    { name: 'has_mask', type: 'u32' },
    { name: 'write_grad', type: 'u32' },
    { name: 'scale', type: 'f32' },
  ],
  overrides: { WG: 256 },
};

export const fusedClassifierBackwardSpec: KernelSpec = {
  name: 'fused_classifier_backward',
  version: 'v1',
  revision: 2,
  description:
    'one thread per vec4 (r1: per element): saved gradient times the upstream row gradient, relative to the ' +
    'intended one',
  source: backwardSource,
  file: 'kernels/classifier/fused_classifier_backward.wgsl',
  bindings: [
    { name: 'saved', kind: 'read-only-storage' },
    { name: 'dlosses', kind: 'read-only-storage' },
    { name: 'count', kind: 'read-only-storage' },
    { name: 'dlogits', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [
    { name: 'R', type: 'u32' },
    { name: 'Vp', type: 'u32' },
    { name: 'inv_scale', type: 'f32' },
    { name: 'accumulate', type: 'u32' },
  ],
  overrides: { WG: 256 },
};

export interface FusedClassifierArgs {
  R: number;
  V: number;
  Vp: number;
  logits: GPUBuffer;
  targets: GPUBuffer;
  /** (R) f32 of 0/1, or none (every row counts). */
  mask?: GPUBuffer;
  losses: GPUBuffer;
  /** (R, Vp) gradient output, or none to compute the losses only. Must not be `logits`. */
  dlogits?: GPUBuffer;
  /** One f32: the number of unmasked rows, written by the kernel. */
  count: GPUBuffer;
  scale?: number;
  /** Threads per row (a multiple of 16, within the device's limits); default classifierWorkgroupSize(gpu). */
  workgroupSize?: number;
}

/**
 * Threads per row. The kernel reads each row twice (softmax statistics, then the gradient); the second read should
 * hit L2. With 256 threads per row an H100 keeps ~1000 rows of 200 KB (GPT-2's 50304 columns) in flight, far more
 * than its 50 MB L2; with 1024 threads (as llm.c uses) about 264, which fit. Software adapters keep 256.
 */
export function classifierWorkgroupSize(gpu: Gpu): number {
  if (gpu.software) return 256;
  const max = Math.min(gpu.limits.maxComputeInvocationsPerWorkgroup, gpu.limits.maxComputeWorkgroupSizeX);
  return max >= 1024 ? 1024 : 256;
}

/** Records the fused classifier kernel (the raw form, for a trainer that manages its own buffers). Vp % 4 == 0. */
export function fusedClassifierInto(gpu: Gpu, a: FusedClassifierArgs, scratch?: GPUBuffer): void {
  if (a.Vp % 4 !== 0)
    throw new WgptError(`fused_classifier: Vp=${a.Vp} must be a multiple of 4 (rows are read as vec4)`);
  gpu.dispatch(fusedClassifierSpec, {
    buffers: {
      logits: a.logits,
      targets: a.targets,
      mask: a.mask ?? placeholder(gpu),
      losses: a.losses,
      dlogits: a.dlogits ?? scratch!,
      count_out: a.count,
    },
    uniforms: {
      R: a.R,
      V: a.V,
      Vp: a.Vp,
      has_mask: a.mask ? 1 : 0,
      write_grad: a.dlogits ? 1 : 0,
      scale: a.scale ?? 1,
    },
    overrides: { WG: a.workgroupSize ?? classifierWorkgroupSize(gpu) },
    workgroups: grid1d(gpu, a.R, 1),
    context: `R=${a.R} V=${a.V} Vp=${a.Vp}${a.mask ? ' masked' : ''}`,
  });
}

export interface FusedClassifierOptions {
  /** Real vocabulary size; logits' last dimension is Vp ≥ V (padded columns are ignored). */
  V: number;
  /** (R) f32, 1 for rows that count and 0 for rows that do not (SFT prompt tokens, padding); other weights work too. */
  mask?: Tensor;
  /** dloss scale of the intended loss L = scale · mean over unmasked rows (default 1). Must be nonzero. */
  scale?: number;
}

interface Saved {
  dl: Tensor | null;
  count: Tensor;
  scale: number;
}

/** Per-row losses of GPT-2's classifier (see the contract at the top of this file). */
export const fusedClassifier = defineOp({
  name: 'fused_classifier',
  forward(logits: Tensor, targets: Tensor, opts: FusedClassifierOptions) {
    const op = 'fused_classifier';
    expectSameGpu(op, logits, targets, ...(opts.mask ? [opts.mask] : []));
    expectShape(op, logits, 2);
    const [R, Vp] = logits.shape as [number, number];
    const { V } = opts;
    if (!Number.isInteger(V) || V < 1 || V > Vp)
      throw new WgptError(`${op}: V=${V} must be an integer in [1, ${Vp}] (the logits' last dimension)`);
    if (Vp % 4 !== 0)
      throw new WgptError(
        `${op}: the logits' last dimension ${Vp} must be a multiple of 4 (rows are read as vec4): ` +
          'pad the vocabulary, e.g. to a multiple of 64',
      );
    expectShape(op, targets, 1, [R]);
    expectDtype(op, targets, 'i32');
    if (opts.mask) {
      expectShape(op, opts.mask, 1, [R]);
      expectDtype(op, opts.mask, 'f32');
    }
    const scale = opts.scale ?? 1;
    if (!Number.isFinite(scale) || scale === 0) throw new WgptError(`${op}: scale ${scale} must be finite and nonzero`);
    const gpu = logits.gpu;
    const losses = empty(gpu, [R]);
    const count = empty(gpu, [1], 'f32', { name: 'classifier count' });
    const wantGrad = isGradEnabled() && logits.requiresGrad;
    const dl = wantGrad ? empty(gpu, [R, Vp], 'f32', { name: 'classifier dlogits' }) : null;
    // Without a gradient the kernel still needs a (distinct, writable) buffer bound: a tiny one it never writes.
    const scratch = dl ? undefined : empty(gpu, [4], 'f32', { track: false });
    fusedClassifierInto(
      gpu,
      {
        R,
        V,
        Vp,
        logits: logits.buffer,
        targets: targets.buffer,
        mask: opts.mask?.buffer,
        losses: losses.buffer,
        dlogits: dl?.buffer,
        count: count.buffer,
        scale,
      },
      scratch?.buffer,
    );
    scratch?.dispose();
    return { out: losses, saved: { dl, count, scale } as Saved };
  },
  backward(ctx, g, { args: [logits], saved }) {
    const [R, Vp] = logits.shape as [number, number];
    const d = ctx.grad(logits);
    if (!d) return;
    if (!saved.dl)
      throw new WgptError('fused_classifier: backward without a saved gradient (forward ran with grad off)');
    const gpu = logits.gpu;
    gpu.dispatch(fusedClassifierBackwardSpec, {
      buffers: { saved: saved.dl.buffer, dlosses: g.buffer, count: saved.count.buffer, dlogits: d.tensor.buffer },
      uniforms: { R, Vp, inv_scale: 1 / saved.scale, accumulate: d.accumulate },
      workgroups: grid1d(gpu, (R * Vp) / 4, 256),
      context: `R=${R} Vp=${Vp}`,
    });
  },
});
