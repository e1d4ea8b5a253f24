// Small helpers shared by the kernel families' op definitions.
import { WgptError, grid1d, type Gpu, type Tensor } from '@wgpt/runtime';

export { grid1d };

const dummies = new WeakMap<Gpu, { read: GPUBuffer; write: GPUBuffer }>();

/**
 * 16-byte placeholders for optional bindings (no bias, no pre-activation output). Binding the output there would
 * alias, and one buffer may not be bound both read-only and writable in a dispatch: so one of each kind.
 */
export function placeholder(gpu: Gpu, kind: 'read' | 'write' = 'read'): GPUBuffer {
  let d = dummies.get(gpu);
  if (!d) {
    const make = (label: string) => gpu.device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE, label });
    d = { read: make('optional read-only binding placeholder'), write: make('optional writable binding placeholder') };
    dummies.set(gpu, d);
  }
  return d[kind];
}

/**
 * Whether the device runs subgroups of exactly 4 invocations (SwiftShader's SIMD width): the kernels written for
 * software adapters share loads through subgroup broadcasts between the 4 lanes of a subgroup.
 */
export function subgroupsOf4(gpu: Gpu): boolean {
  const i = gpu.adapterInfo;
  return gpu.features.has('subgroups') && i?.subgroupMinSize === 4 && i?.subgroupMaxSize === 4;
}

/** Throws naming the op and the tensors when a shape is not what the op needs. */
export function expectShape(op: string, t: Tensor, rank: number, dims?: (number | undefined)[]): void {
  if (t.shape.length !== rank) throw new WgptError(`${op}: ${t} must have rank ${rank}`);
  dims?.forEach((d, i) => {
    if (d !== undefined && t.shape[i] !== d) throw new WgptError(`${op}: ${t} dimension ${i} must be ${d}`);
  });
}

export function expectSameGpu(op: string, ...ts: Tensor[]): void {
  for (const t of ts) if (t.gpu !== ts[0]!.gpu) throw new WgptError(`${op}: tensors live on different devices`);
}

export function expectDtype(op: string, t: Tensor, dtype: Tensor['dtype']): void {
  if (t.dtype !== dtype) throw new WgptError(`${op}: ${t} must be ${dtype}`);
}
