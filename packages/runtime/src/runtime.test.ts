import { afterAll, describe, expect, it } from 'vitest';
import { backward, defineOp, fill, keep, noGrad, parseAdapterList, sizeClass, tensor, tidy, topoSort, type Gpu } from './index.ts';
import { testGpu } from './testing.ts';

let gpu: Gpu;
afterAll(() => gpu?.destroy());

describe('device', () => {
  it('opens an adapter and reports it', async () => {
    gpu = await testGpu();
    expect(gpu.adapterName.length).toBeGreaterThan(0);
    expect(gpu.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 << 20);
  });

  it('opens several independent devices that do not share buffers', async () => {
    const { Gpu } = await import('./gpu.ts');
    const gs = await Gpu.openMany(2);
    expect(gs[0]!.device).not.toBe(gs[1]!.device);
    const ts = gs.map((g, i) => tensor(g, [i, i + 1], [2]));
    expect(Array.from(await ts[1]!.read())).toEqual([1, 2]);
    expect(Array.from(await ts[0]!.read())).toEqual([0, 1]);
    gs.forEach((g) => g.destroy());
  });

  it('parses Dawn adapter listings', () => {
    const list = parseAdapterList("no suitable backends found\nAvailable adapters:\n * backend: 'vulkan', name: 'NVIDIA H200'\n * backend: 'vulkan', name: 'SwiftShader Device (Subzero)'\n");
    expect(list).toEqual([
      { index: 0, backend: 'vulkan', name: 'NVIDIA H200', software: false },
      { index: 1, backend: 'vulkan', name: 'SwiftShader Device (Subzero)', software: true },
    ]);
  });
});

describe('buffers and tensors', () => {
  it('round-trips data through a tensor', async () => {
    gpu = await testGpu();
    const data = Float32Array.from({ length: 1001 }, (_, i) => i * 0.5 - 3);
    const t = tensor(gpu, data, [7, 11, 13]);
    expect(Array.from(await t.read())).toEqual(Array.from(data));
    t.dispose();
  });

  it('fills with values and poisons new tensors with NaN', async () => {
    gpu = await testGpu();
    const t = tidy(() => {
      const t = tensor(gpu, new Float32Array(70000), [70000]);
      fill(t, 2.5);
      return t;
    });
    const v = await t.read();
    expect(v.every((x) => x === 2.5)).toBe(true);
    t.dispose();
    const { empty } = await import('./tensor.ts');
    const p = empty(gpu, [5]);
    expect(Array.from(await p.read()).every(Number.isNaN)).toBe(true);
    p.dispose();
  });

  it('size classes waste at most 25% and are multiples of 16', () => {
    for (const n of [1, 17, 4096, 4097, 5000, 1 << 20, (1 << 20) + 1, 123456789]) {
      const c = sizeClass(n);
      expect(c).toBeGreaterThanOrEqual(n);
      expect(c % 16).toBe(0);
      if (n > 4096) expect(c / n).toBeLessThanOrEqual(1.25);
    }
  });

  it('reuses pooled buffers and tracks bytes in use', async () => {
    gpu = await testGpu();
    const before = { ...gpu.pool.stats };
    for (let i = 0; i < 20; i++) tensor(gpu, new Float32Array(3000), [3000]).dispose();
    const s = gpu.pool.stats;
    expect(s.allocations - before.allocations).toBeLessThanOrEqual(1);
    expect(s.bytesInUse).toBe(before.bytesInUse);
    await gpu.sync();
  });

  it('rejects a buffer larger than the adapter allows, naming size and limit', async () => {
    gpu = await testGpu();
    const n = gpu.limits.maxStorageBufferBindingSize / 4 + 16;
    expect(() => tidy(() => tensor(gpu, { length: n } as ArrayLike<number>, [n]))).toThrow(/exceeds this adapter's maxStorageBufferBindingSize of \d+ bytes/);
  });

  it('tidy disposes what it does not return; keep() saves a tensor', async () => {
    gpu = await testGpu();
    let a, b, c;
    const r = tidy(() => {
      a = tensor(gpu, [1, 2], [2]);
      b = keep(tensor(gpu, [3], [1]));
      c = tensor(gpu, [4], [1]);
      return c;
    });
    expect(a!.isDisposed).toBe(true);
    expect(b!.isDisposed).toBe(false);
    expect(r.isDisposed).toBe(false);
    b!.dispose();
    r.dispose();
  });
});

describe('autograd', () => {
  // A pretend op that records its calls: enough to test the tape without kernels.
  const calls: string[] = [];
  const twice = defineOp({
    name: 'test_identity_tape',
    forward: (x: import('./tensor.ts').Tensor, tag: string) => ({ out: tensor(x.gpu, new Float32Array(x.size), x.shape), saved: tag }),
    backward: (ctx, g, tag) => {
      calls.push(tag);
      void ctx;
      void g;
    },
  });

  it('orders nodes topologically and runs backward in reverse', async () => {
    gpu = await testGpu();
    calls.length = 0;
    tidy(() => {
      const x = tensor(gpu, [1], [1], 'f32', { requiresGrad: true });
      const a = twice(x, 'a');
      const b = twice(a, 'b');
      const c = twice(b, 'c');
      expect(topoSort(c).map((n) => n.name)).toEqual(['test_identity_tape', 'test_identity_tape', 'test_identity_tape']);
      // Only c's node has a ready gradient after seeding; b's never becomes ready since the pretend op writes none.
      backward(c);
    });
    expect(calls).toEqual(['c']);
  });

  it('records nothing under noGrad', async () => {
    gpu = await testGpu();
    tidy(() => {
      const x = tensor(gpu, [1], [1], 'f32', { requiresGrad: true });
      const y = noGrad(() => twice(x, 'n'));
      expect(y.node).toBeNull();
      expect(() => backward(y)).toThrow(/does not depend/);
    });
  });
});
