// Bad input gets an error a user can act on: unknown adapter, no adapter, WGSL that does not compile, a dispatch
// WebGPU rejects, a lost device.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceLostError, fillSpec, Gpu, GpuValidationError, KernelCompileError, NoAdapterError, pickAdapter, tensor, type KernelSpec } from '@wgpt/runtime';
import { testGpu } from '@wgpt/runtime/testing';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});
afterAll(() => gpu.destroy());

const broken: KernelSpec = {
  name: 'broken_for_test',
  version: 'v1',
  source: 'struct Params { n: u32 }\n@group(0) @binding(0) var<storage, read_write> out: array<f32>;\n@group(0) @binding(1) var<uniform> params: Params;\n@compute @workgroup_size(64)\nfn main(@builtin(global_invocation_id) g: vec3<u32>) {\n  out[g.x] = undefined_thing;\n}\n',
  file: 'tests/broken.wgsl',
  bindings: [
    { name: 'out', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [{ name: 'n', type: 'u32' }],
};

describe('adapter selection', () => {
  const list = [
    { index: 0, backend: 'vulkan', name: 'NVIDIA H100', software: false },
    { index: 1, backend: 'vulkan', name: 'SwiftShader Device (Subzero)', software: true },
  ];
  it('prefers hardware, takes names, substrings and indices', () => {
    expect(pickAdapter(list, undefined).name).toBe('NVIDIA H100');
    expect(pickAdapter(list, 'swiftshader').index).toBe(1);
    expect(pickAdapter(list, 1).index).toBe(1);
    expect(pickAdapter(list, '0').index).toBe(0);
  });
  it('an unknown name lists the adapters', () => {
    expect(() => pickAdapter(list, 'radeon')).toThrow(NoAdapterError);
    expect(() => pickAdapter(list, 'radeon')).toThrow(/No adapter named "radeon"\. Adapters:\n {2}\[0\] NVIDIA H100 \(vulkan\)\n {2}\[1\] SwiftShader Device \(Subzero\) \(vulkan, software\)/);
    expect(() => pickAdapter(list, 7)).toThrow(/No adapter with index 7/);
  });
  it('no adapter at all says what to install', () => {
    expect(() => pickAdapter([], undefined)).toThrow(/apt-get install .*libvulkan1/);
  });
  it('Gpu.open with an unknown adapter fails with the list', async () => {
    await expect(Gpu.open({ adapter: 'no-such-gpu' })).rejects.toThrow(/No adapter named "no-such-gpu"\. Adapters:\n.*SwiftShader/);
  });
});

describe('kernel errors', () => {
  it('a WGSL compile error names kernel, file, line and message', async () => {
    const err = await gpu.compile(broken).catch((e: Error) => e);
    expect(err).toBeInstanceOf(KernelCompileError);
    expect((err as Error).message).toMatch(/broken_for_test@v1/);
    expect((err as Error).message).toMatch(/tests\/broken\.wgsl:6:\d+: .*undefined_thing/);
  });

  it('a dispatch WebGPU rejects names the kernel and the shapes at the next sync', async () => {
    // A buffer without STORAGE usage bound as storage: a validation error inside the dispatch's error scope.
    const bad = gpu.device.createBuffer({ size: 256, usage: GPUBufferUsage.COPY_DST });
    gpu.dispatch(fillSpec, { buffers: { out: bad }, uniforms: { n: 64, bits: 0 }, workgroups: [1], context: 'n=64 (test)' });
    const err = await gpu.sync().catch((e: Error) => e);
    expect(err).toBeInstanceOf(GpuValidationError);
    expect((err as Error).message).toMatch(/dispatching fill@v1 \(packages\/runtime\/src\/builtin\/fill\.wgsl\) workgroups \(1, 1, 1\) \[n=64 \(test\)\]/);
    bad.destroy();
    // The device stays usable afterwards.
    const t = tensor(gpu, [1, 2, 3], [3]);
    expect(Array.from(await t.read())).toEqual([1, 2, 3]);
    t.dispose();
  });

  it('missing uniforms and unknown overrides are refused before anything is recorded', () => {
    const t = tensor(gpu, [0], [1]);
    expect(() => gpu.dispatch(fillSpec, { buffers: { out: t.buffer }, uniforms: { n: 1 }, workgroups: [1] })).toThrow(/uniform "bits" not given/);
    expect(() => gpu.dispatch(fillSpec, { buffers: { out: t.buffer }, uniforms: { n: 1, bits: 0 }, overrides: { TILE: 8 }, workgroups: [1] })).toThrow(/no override "TILE"/);
    expect(() => gpu.dispatch(fillSpec, { buffers: {}, uniforms: { n: 1, bits: 0 }, workgroups: [1] })).toThrow(/no buffer given for binding "out"/);
    t.dispose();
  });
});

describe('device loss', () => {
  it('is reported, and every later call throws instead of hanging', async () => {
    const other = await Gpu.open();
    const t = tensor(other, [1, 2], [2]);
    const errors: unknown[] = [];
    const origError = console.error;
    console.error = (...a: unknown[]) => void errors.push(a);
    try {
      other.device.destroy(); // as a driver reset would
      await other.device.lost;
      await new Promise((r) => setTimeout(r, 0));
      expect(other.lost).toBe(true);
      expect(() => tensor(other, [1], [1]).read()).toThrow(DeviceLostError);
      await expect(t.read()).rejects.toThrow(DeviceLostError);
      expect(String(errors[0])).toMatch(/lost/);
    } finally {
      console.error = origError;
    }
  });
});
