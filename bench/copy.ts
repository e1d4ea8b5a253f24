// A vec4 copy kernel: the bandwidth ceiling that memory-bound kernels report themselves against. It is bench
// infrastructure, not a model op, so it lives here; bench/specs.test.ts checks its spec against the WGSL.
import { grid1d, WgptError, type Gpu, type KernelSpec } from '@wgpt/runtime';
import source from './copy.wgsl';

export const copySpec: KernelSpec = {
  name: 'copy',
  version: 'v1',
  description: 'one vec4 per thread',
  source,
  file: 'bench/copy.wgsl',
  bindings: [
    { name: 'src', kind: 'read-only-storage' },
    { name: 'out', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [{ name: 'n4', type: 'u32' }],
  overrides: { WG: 256 },
};

/** Copies n floats (n a multiple of 4) from src to out with the copy kernel. */
export function copyKernel(gpu: Gpu, src: GPUBuffer, out: GPUBuffer, n: number): void {
  if (n % 4) throw new WgptError(`copyKernel: n=${n} is not a multiple of 4`);
  gpu.dispatch(copySpec, {
    buffers: { src, out },
    uniforms: { n4: n / 4 },
    workgroups: grid1d(gpu, n / 4, 256),
    context: `n=${n}`,
  });
}
