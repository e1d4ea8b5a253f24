// Softmax cross-entropy per row: losses (R) from logits (R, V) and integer targets (R). The backward recomputes the
// softmax from the logits rather than storing probabilities. GPT-2 uses the fused classifier (kernels/classifier)
// instead, for its padded vocabulary; this op serves plain (R, V) logits (the selfchecks in the CLI and the browser).
import { defineOp, empty, type KernelSpec, type Tensor } from '@wgpt/runtime';
import { expectDtype, expectSameGpu, expectShape } from '../common.ts';
import backwardSource from './crossentropy_backward.wgsl';
import forwardSource from './crossentropy_forward.wgsl';

export const crossEntropyForwardSpec: KernelSpec = {
  name: 'cross_entropy_forward',
  version: 'v1',
  description: 'one workgroup per row, online max/sum per thread, tree merge',
  source: forwardSource,
  file: 'kernels/crossentropy/crossentropy_forward.wgsl',
  bindings: [
    { name: 'logits', kind: 'read-only-storage' },
    { name: 'targets', kind: 'read-only-storage' },
    { name: 'losses', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [
    { name: 'R', type: 'u32' },
    { name: 'V', type: 'u32' },
  ],
  overrides: { WG: 64 },
};

export const crossEntropyBackwardSpec: KernelSpec = {
  name: 'cross_entropy_backward',
  version: 'v1',
  source: backwardSource,
  file: 'kernels/crossentropy/crossentropy_backward.wgsl',
  bindings: [
    { name: 'logits', kind: 'read-only-storage' },
    { name: 'targets', kind: 'read-only-storage' },
    { name: 'dlosses', kind: 'read-only-storage' },
    { name: 'dlogits', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [
    { name: 'R', type: 'u32' },
    { name: 'V', type: 'u32' },
    { name: 'accumulate', type: 'u32' },
  ],
  overrides: { WG: 64 },
};

function rowGrid(R: number, max: number): [number, number] {
  if (R <= max) return [R, 1];
  const y = Math.ceil(R / max);
  return [Math.ceil(R / y), y];
}

/** losses (R) = −log softmax(logits)[target] per row. Targets are i32; one outside [0, V) makes that loss NaN. */
export const crossEntropy = defineOp({
  name: 'cross_entropy',
  forward(logits: Tensor, targets: Tensor) {
    expectSameGpu('cross_entropy', logits, targets);
    expectShape('cross_entropy', logits, 2);
    const [R, V] = logits.shape as [number, number];
    expectShape('cross_entropy', targets, 1, [R]);
    expectDtype('cross_entropy', targets, 'i32');
    const gpu = logits.gpu;
    const out = empty(gpu, [R]);
    gpu.dispatch(crossEntropyForwardSpec, {
      buffers: { logits: logits.buffer, targets: targets.buffer, losses: out.buffer },
      uniforms: { R, V },
      workgroups: rowGrid(R, gpu.limits.maxComputeWorkgroupsPerDimension),
      context: `R=${R} V=${V}`,
    });
    return { out, saved: null };
  },
  backward(ctx, g, { args: [logits, targets] }) {
    const [R, V] = logits.shape as [number, number];
    const d = ctx.grad(logits);
    if (!d) return;
    const gpu = logits.gpu;
    gpu.dispatch(crossEntropyBackwardSpec, {
      buffers: { logits: logits.buffer, targets: targets.buffer, dlosses: g.buffer, dlogits: d.tensor.buffer },
      uniforms: { R, V, accumulate: d.accumulate },
      workgroups: rowGrid(R, gpu.limits.maxComputeWorkgroupsPerDimension),
      context: `R=${R} V=${V}`,
    });
  },
});
