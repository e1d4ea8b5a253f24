// llm.c's fused classifier for GPT-2's padded vocabulary: per-row losses in the forward, the logits' gradient in the
// backward, which computes the softmax statistics again rather than keeping anything of size (rows, Vp).
//
// Contract of the op `fusedClassifier(logits (R, Vp), targets (R) i32, { V, mask?, inPlace? })`:
// - returns per-row losses (R): mask[r] · (−log softmax(logits[r, :V])[targets[r]]), exactly 0 where mask[r] = 0;
// - backward takes the upstream gradient g (R) and writes the exact VJP g[r] · mask[r] · (p − onehot(target));
// - with inPlace, the backward writes that gradient over the logits (llm.c's trick: the logits' one buffer becomes
//   their gradient, for a caller that no longer needs the logits: GPT-2's tied-embedding matmul needs only its
//   output's gradient). The logits then refuse reads and ops. Where the logits have a gradient already (another
//   consumer wrote it), the backward adds to that instead;
// - Vp must be a multiple of 4 (rows are read as vec4; GPT-2 pads to a multiple of 64). Columns V ≤ v < Vp are
//   ignored in the softmax (whatever they hold) and get gradient 0; a target outside [0, V) on an unmasked row
//   makes that row's loss and gradient NaN; masked rows get loss 0 and gradient 0 whatever their target.
//
// Two versions of the two kernels, with the same outputs up to rounding (the sum of exps is added in another order):
//   v1  one workgroup per row, an online (max, sum) per thread merged through workgroup memory: for GPUs.
//   v2  one subgroup of 4 invocations per row, vec4 accumulators, the exact max then the sum, merged by subgroup
//       operations: no workgroup memory or barriers, for CPU adapters (SwiftShader). Needs subgroups of 4.
import { defineOp, empty, grid1d, WgptError, type Gpu, type KernelSpec, type Tensor } from '@wgpt/runtime';
import { expectDtype, expectSameGpu, expectShape, placeholder, subgroupsOf4 } from '../common.ts';
import backwardSource from './fused_classifier_backward.wgsl';
import backwardV2Source from './fused_classifier_backward_v2.wgsl';
import forwardSource from './fused_classifier.wgsl';
import forwardV2Source from './fused_classifier_v2.wgsl';

export const fusedClassifierSpec: KernelSpec = {
  name: 'fused_classifier',
  version: 'v1',
  revision: 3,
  description: 'one workgroup per row, vec4 rows, online max/sum per thread, two-level 16-way merge; losses only',
  source: forwardSource,
  file: 'kernels/classifier/fused_classifier.wgsl',
  bindings: [
    { name: 'logits', kind: 'read-only-storage' },
    { name: 'targets', kind: 'read-only-storage' },
    { name: 'mask', kind: 'read-only-storage' },
    { name: 'losses', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [
    { name: 'R', type: 'u32' },
    { name: 'V', type: 'u32' },
    { name: 'Vp', type: 'u32' },
    { name: 'has_mask', type: 'u32' },
  ],
  overrides: { WG: 256 },
};

export const fusedClassifierBackwardSpec: KernelSpec = {
  name: 'fused_classifier_backward',
  version: 'v1',
  revision: 3,
  description:
    "one workgroup per row: the forward's statistics again, then the gradient, over the logits or into dlogits",
  source: backwardSource,
  file: 'kernels/classifier/fused_classifier_backward.wgsl',
  bindings: [
    { name: 'logits', kind: 'storage' },
    { name: 'targets', kind: 'read-only-storage' },
    { name: 'mask', kind: 'read-only-storage' },
    { name: 'dlosses', kind: 'read-only-storage' },
    { name: 'dlogits', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [
    { name: 'R', type: 'u32' },
    { name: 'V', type: 'u32' },
    { name: 'Vp', type: 'u32' },
    { name: 'has_mask', type: 'u32' },
    { name: 'in_place', type: 'u32' },
    { name: 'accumulate', type: 'u32' },
  ],
  overrides: { WG: 256 },
};

export const fusedClassifierV2Spec: KernelSpec = {
  ...fusedClassifierSpec,
  version: 'v2',
  revision: 1,
  description: 'one subgroup of 4 per row, vec4 accumulators, exact max then the sum, subgroup merges: CPU adapters',
  source: forwardV2Source,
  file: 'kernels/classifier/fused_classifier_v2.wgsl',
  overrides: { WG: 64 },
};

export const fusedClassifierBackwardV2Spec: KernelSpec = {
  ...fusedClassifierBackwardSpec,
  version: 'v2',
  revision: 1,
  description: "one subgroup of 4 per row: v2's statistics again, then the gradient, over the logits or into dlogits",
  source: backwardV2Source,
  file: 'kernels/classifier/fused_classifier_backward_v2.wgsl',
  overrides: { WG: 64 },
};

export type ClassifierVersion = 'v1' | 'v2';

/** The version for this device: v2 on software adapters with subgroups of 4, else v1. */
export function classifierVersion(gpu: Gpu): ClassifierVersion {
  return gpu.software && subgroupsOf4(gpu) ? 'v2' : 'v1';
}

function checkVersion(gpu: Gpu, version: ClassifierVersion): void {
  if (version === 'v2' && !subgroupsOf4(gpu))
    throw new Error(`fused_classifier v2 needs subgroups of 4 (${gpu.describe()})`);
}

export interface FusedClassifierArgs {
  R: number;
  V: number;
  Vp: number;
  logits: GPUBuffer;
  targets: GPUBuffer;
  /** (R) f32 of 0/1 (or other weights), or none (every row counts). */
  mask?: GPUBuffer;
  losses: GPUBuffer;
  /**
   * v1: threads per row (a multiple of 16, within the device's limits), default classifierWorkgroupSize(gpu).
   * v2: threads per workgroup (a multiple of 4: a quarter as many rows), default classifierV2Workgroup(R).
   */
  workgroupSize?: number;
  /** Default: classifierVersion(gpu). */
  version?: ClassifierVersion;
}

export interface FusedClassifierBackwardArgs extends Omit<FusedClassifierArgs, 'losses'> {
  /** The upstream gradient of the losses (R). */
  dlosses: GPUBuffer;
  /** (R, Vp) gradient output; none: written over `logits`. */
  dlogits?: GPUBuffer;
  /** With dlogits: add to its contents. */
  accumulate?: 0 | 1;
}

/**
 * Threads per row. The kernels read each row once (forward) or twice (backward: statistics, then the gradient);
 * the second read should hit L2. With 256 threads per row an H100 keeps ~1000 rows of 200 KB (GPT-2's 50304
 * columns) in flight, far more than its 50 MB L2; with 1024 threads (as llm.c uses) about 264, which fit. Software
 * adapters keep 256.
 */
export function classifierWorkgroupSize(gpu: Gpu): number {
  if (gpu.software) return 256;
  const max = Math.min(gpu.limits.maxComputeInvocationsPerWorkgroup, gpu.limits.maxComputeWorkgroupSizeX);
  return max >= 1024 ? 1024 : 256;
}

/**
 * v2's invocations per workgroup (4 per row): rows in groups of up to 16, but at least 16 workgroups where there are
 * 16 rows, so that a few long rows (a large vocabulary, a short batch) still spread over the CPU's cores.
 */
export function classifierV2Workgroup(R: number): number {
  return 4 * Math.min(16, Math.max(1, Math.floor(R / 16)));
}

function checkVp(Vp: number): void {
  if (Vp % 4 !== 0) throw new WgptError(`fused_classifier: Vp=${Vp} must be a multiple of 4 (rows are read as vec4)`);
}

/** Records the forward kernel (the raw form, for code that manages its own buffers): per-row losses. */
export function fusedClassifierInto(gpu: Gpu, a: FusedClassifierArgs): void {
  checkVp(a.Vp);
  const version = a.version ?? classifierVersion(gpu);
  checkVersion(gpu, version);
  const v2 = version === 'v2';
  const WG = a.workgroupSize ?? (v2 ? classifierV2Workgroup(a.R) : classifierWorkgroupSize(gpu));
  gpu.dispatch(v2 ? fusedClassifierV2Spec : fusedClassifierSpec, {
    buffers: { logits: a.logits, targets: a.targets, mask: a.mask ?? placeholder(gpu), losses: a.losses },
    uniforms: { R: a.R, V: a.V, Vp: a.Vp, has_mask: a.mask ? 1 : 0 },
    overrides: { WG },
    workgroups: grid1d(gpu, a.R, v2 ? WG / 4 : 1),
    context: `R=${a.R} V=${a.V} Vp=${a.Vp}${a.mask ? ' masked' : ''}`,
  });
}

/** Records the backward kernel (raw form): the logits' gradient into dlogits, or over the logits without it. */
export function fusedClassifierBackwardInto(gpu: Gpu, a: FusedClassifierBackwardArgs): void {
  checkVp(a.Vp);
  const version = a.version ?? classifierVersion(gpu);
  checkVersion(gpu, version);
  const v2 = version === 'v2';
  const WG = a.workgroupSize ?? (v2 ? classifierV2Workgroup(a.R) : classifierWorkgroupSize(gpu));
  gpu.dispatch(v2 ? fusedClassifierBackwardV2Spec : fusedClassifierBackwardSpec, {
    buffers: {
      logits: a.logits,
      targets: a.targets,
      mask: a.mask ?? placeholder(gpu),
      dlosses: a.dlosses,
      dlogits: a.dlogits ?? placeholder(gpu, 'write'),
    },
    uniforms: {
      R: a.R,
      V: a.V,
      Vp: a.Vp,
      has_mask: a.mask ? 1 : 0,
      in_place: a.dlogits ? 0 : 1,
      accumulate: a.dlogits ? (a.accumulate ?? 0) : 0,
    },
    overrides: { WG },
    workgroups: grid1d(gpu, a.R, v2 ? WG / 4 : 1),
    context: `R=${a.R} V=${a.V} Vp=${a.Vp}${a.mask ? ' masked' : ''}${a.dlogits ? '' : ' in place'}`,
  });
}

export interface FusedClassifierOptions {
  /** Real vocabulary size; logits' last dimension is Vp ≥ V (padded columns are ignored). */
  V: number;
  /** (R) f32, 1 for rows that count and 0 for rows that do not (SFT prompt tokens, padding); other weights work too. */
  mask?: Tensor;
  /**
   * Write the logits' gradient over the logits in backward (saves one (R, Vp) buffer); the logits are unreadable
   * after backward. For logits whose only other use is a producer that does not need them (a matmul).
   */
  inPlace?: boolean;
  /** Force a version (tests, benches); default: classifierVersion(). */
  version?: ClassifierVersion;
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
    const losses = empty(logits.gpu, [R]);
    fusedClassifierInto(logits.gpu, {
      R,
      V,
      Vp,
      logits: logits.buffer,
      targets: targets.buffer,
      mask: opts.mask?.buffer,
      losses: losses.buffer,
      version: opts.version,
    });
    return { out: losses, saved: null };
  },
  backward(ctx, g, { args: [logits, targets, opts] }) {
    const [R, Vp] = logits.shape as [number, number];
    const d = opts.inPlace ? ctx.gradInPlace(logits, 'fused_classifier') : ctx.grad(logits);
    if (!d) return;
    const inPlace = 'inPlace' in d && d.inPlace;
    fusedClassifierBackwardInto(logits.gpu, {
      R,
      V: opts.V,
      Vp,
      logits: logits.buffer,
      targets: targets.buffer,
      mask: opts.mask?.buffer,
      dlosses: g.buffer,
      dlogits: inPlace ? undefined : d.tensor.buffer,
      accumulate: d.accumulate,
      version: opts.version,
    });
  },
});
