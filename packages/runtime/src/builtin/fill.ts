import type { Gpu } from '../gpu.ts';
import type { KernelSpec } from '../kernel.ts';
import type { Tensor } from '../tensor.ts';
import source from './fill.wgsl';

export const fillSpec: KernelSpec = {
  name: 'fill',
  version: 'v1',
  description: 'one thread per 32-bit word',
  source,
  file: 'packages/runtime/src/builtin/fill.wgsl',
  bindings: [
    { name: 'out', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [
    { name: 'n', type: 'u32' },
    { name: 'bits', type: 'u32' },
  ],
  overrides: { WG: 256 },
};

/** Workgroup grid for n threads in groups of wg: x up to the per-dimension limit, the rest in y. */
export function grid1d(gpu: Gpu, n: number, wg: number): [number, number] {
  const groups = Math.ceil(n / wg);
  const max = gpu.limits.maxComputeWorkgroupsPerDimension;
  if (groups <= max) return [groups, 1];
  const y = Math.ceil(groups / max);
  return [Math.ceil(groups / y), y];
}

const f32bits = new DataView(new ArrayBuffer(4));

/** Records a fill of every element of `t` with `value` (interpreted in t's dtype) or the raw `bits`. */
export function fill(t: Tensor, value: number, opts: { bits?: boolean } = {}): void {
  let bits: number;
  if (opts.bits) bits = value >>> 0;
  else if (t.dtype === 'f32') {
    f32bits.setFloat32(0, value, true);
    bits = f32bits.getUint32(0, true);
  } else bits = value >>> 0;
  fillBuffer(t.gpu, t.buffer, t.size, bits);
}

export function fillBuffer(gpu: Gpu, buffer: GPUBuffer, words: number, bits: number): void {
  if (!words) return;
  gpu.dispatch(fillSpec, {
    buffers: { out: buffer },
    uniforms: { n: words, bits },
    workgroups: grid1d(gpu, words, 256),
    context: `n=${words}`,
  });
}

/** A quiet NaN with a recognisable payload: the poison written into fresh buffers when poisoning is on. */
export const POISON_BITS = 0x7fc0dead;
