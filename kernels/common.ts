// Small helpers shared by the kernel families' op definitions.
import { WgptError, grid1d, type Gpu, type Tensor } from '@wgpt/runtime';

export { grid1d };

const dummies = new WeakMap<Gpu, GPUBuffer>();

/** A 16-byte read-only placeholder for optional bindings (e.g. no bias): binding the output there would alias. */
export function placeholder(gpu: Gpu): GPUBuffer {
  let b = dummies.get(gpu);
  if (!b) {
    b = gpu.device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE, label: 'optional-binding placeholder' });
    dummies.set(gpu, b);
  }
  return b;
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
