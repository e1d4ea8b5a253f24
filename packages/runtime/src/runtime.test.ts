import { afterAll, describe, expect, it } from 'vitest';
import {
  backward,
  BufferPool,
  checkSpec,
  defineOp,
  empty,
  fill,
  fillBuffer,
  keep,
  kernelId,
  noGrad,
  parseAdapterList,
  pipelineKey,
  sizeClass,
  tensor,
  tidy,
  tidyAsync,
  topoSort,
  type Gpu,
  type KernelSpec,
  type Tensor,
} from './index.ts';
import { stackScopeTracker } from './scope.ts';
import { checkOp, EPS32, testGpu } from './testing.ts';

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
    const list = parseAdapterList(
      'no suitable backends found\nAvailable adapters:\n' +
        " * backend: 'vulkan', name: 'NVIDIA H200'\n * backend: 'vulkan', name: 'SwiftShader Device (Subzero)'\n",
    );
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
    expect(() => tidy(() => tensor(gpu, { length: n } as ArrayLike<number>, [n]))).toThrow(
      /exceeds this adapter's maxStorageBufferBindingSize of \d+ bytes/,
    );
  });

  it('near the binding limit, a buffer reused within a size class still holds the request', async () => {
    gpu = await testGpu();
    // With a 6000-byte limit, requests of 5200 and 5800 bytes share the 6144-byte size class, which passes it.
    const pool = new BufferPool(gpu.device, { maxBufferSize: 1 << 20, maxStorageBufferBindingSize: 6000 });
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
    const a = pool.acquire(5200, usage);
    pool.release(a);
    const b = pool.acquire(5800, usage);
    expect(b.size).toBeGreaterThanOrEqual(5800);
    expect(b.size).toBeLessThanOrEqual(6000);
    expect(b).toBe(a); // one buffer serves the class
    pool.release(b);
    expect(pool.acquire(6000, usage).size).toBe(6000);
    expect(() => pool.acquire(6004, usage)).toThrow(/exceeds this adapter's maxStorageBufferBindingSize of 6000/);
    expect(pool.stats.allocations).toBe(1);
    pool.destroy();
  });

  it('hands out the oldest free buffer of a class, whatever order buffers were released in', async () => {
    gpu = await testGpu();
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
    const pool = new BufferPool(gpu.device, gpu.limits);
    const [a, b, c] = [pool.acquire(5000, usage), pool.acquire(5000, usage), pool.acquire(5000, usage)];
    // Released in two different orders, the same three come back in creation order.
    for (const order of [
      [b, c, a],
      [c, a, b],
    ]) {
      for (const x of order) pool.release(x);
      // By identity (toEqual would find any two buffers of one size and usage equal).
      const got = [pool.acquire(5000, usage), pool.acquire(5000, usage), pool.acquire(5000, usage)];
      expect(got.map((x) => [a, b, c].indexOf(x))).toEqual([0, 1, 2]);
    }
    expect(pool.stats.allocations).toBe(3);
    pool.destroy();
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

describe('tidyAsync across interleaved async tasks', () => {
  const gate = () => {
    let open!: () => void;
    const p = new Promise<void>((r) => (open = r));
    return { p, open };
  };

  it('a tensor belongs to the scope of the task that created it', async () => {
    gpu = await testGpu();
    const [gA, gB] = [gate(), gate()];
    let x: Tensor | undefined;
    let y: Tensor | undefined;
    let z: Tensor | undefined;
    // A enters its scope and waits; B enters its own and creates y; A wakes and creates x while B waits.
    const a = tidyAsync(async () => {
      await gA.p;
      x = tensor(gpu, [1], [1]);
      return x;
    });
    const b = tidyAsync(async () => {
      y = tensor(gpu, [2], [1]);
      gA.open();
      await gB.p;
      return null;
    });
    // A third task, in no scope, creates z while both scopes are pending.
    await Promise.resolve();
    z = tensor(gpu, [3], [1]);
    gA.open(); // (already open unless B failed to start)
    const ra = await a;
    gB.open();
    await b;
    expect(ra).toBe(x);
    expect(x!.isDisposed, "A's result survives B's scope").toBe(false);
    expect(y!.isDisposed, "B's tensor goes with B's scope").toBe(true);
    expect(z.isDisposed, 'a tensor created outside both scopes is not theirs').toBe(false);
    expect(Array.from(await x!.read())).toEqual([1]);
    x!.dispose();
    z.dispose();
  });

  it('where no async context exists, a second pending tidyAsync throws instead of mixing scopes', async () => {
    const scopes = stackScopeTracker();
    const g = gate();
    const first = scopes.runAsync(new Set(), () => g.p);
    await expect(scopes.runAsync(new Set(), async () => 1)).rejects.toThrow(/another tidyAsync\(\) is pending/);
    g.open();
    await first;
    expect(await scopes.runAsync(new Set(), async () => 2)).toBe(2); // one after the other is fine
  });
});

// out = x·y, or out = x when use_y is 0; out += ... when accumulate is 1. The test ops below are built on it.
const fmaSpec: KernelSpec = {
  name: 'test_mul_add',
  version: 'v1',
  source: `
struct Params { n: u32, use_y: u32, accumulate: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.x;
  if (i >= params.n) { return; }
  var v = x[i];
  if (params.use_y == 1u) { v = v * y[i]; }
  if (params.accumulate == 1u) { v = v + out[i]; }
  out[i] = v;
}`,
  file: 'packages/runtime/src/runtime.test.ts',
  bindings: [
    { name: 'x', kind: 'read-only-storage' },
    { name: 'y', kind: 'read-only-storage' },
    { name: 'out', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [
    { name: 'n', type: 'u32' },
    { name: 'use_y', type: 'u32' },
    { name: 'accumulate', type: 'u32' },
  ],
};

/** out (+)= x · y (y given) or out (+)= x. */
function fma(x: Tensor, y: Tensor | null, out: GPUBuffer, accumulate: 0 | 1): void {
  x.gpu.dispatch(fmaSpec, {
    buffers: { x: x.buffer, y: (y ?? x).buffer, out },
    uniforms: { n: x.size, use_y: y ? 1 : 0, accumulate },
    workgroups: [Math.ceil(x.size / 64)],
  });
}

const mul = defineOp({
  name: 'test_mul',
  forward(a: Tensor, b: Tensor) {
    const out = empty(a.gpu, a.shape);
    fma(a, b, out.buffer, 0);
    return { out, saved: null };
  },
  backward(ctx, g, { args: [a, b] }) {
    // Two separate contributions when a and b are the same tensor (x·x): the second adds to the first.
    const da = ctx.grad(a);
    if (da) fma(g, b, da.tensor.buffer, da.accumulate);
    const db = ctx.grad(b);
    if (db) fma(g, a, db.tensor.buffer, db.accumulate);
  },
});

const plus = defineOp({
  name: 'test_add',
  forward(a: Tensor, b: Tensor) {
    const out = empty(a.gpu, a.shape);
    fma(a, null, out.buffer, 0);
    fma(b, null, out.buffer, 1);
    return { out, saved: null };
  },
  backward(ctx, g, { args }) {
    for (const t of args) {
      const d = ctx.grad(t);
      if (d) fma(g, null, d.tensor.buffer, d.accumulate);
    }
  },
});

describe('recording', () => {
  /** Counts the bind groups the device creates while `fn` runs. */
  function countBindGroups(fn: () => void): number {
    const dev = gpu.device;
    const orig = dev.createBindGroup;
    let n = 0;
    dev.createBindGroup = (d) => (n++, orig.call(dev, d));
    try {
      fn();
    } finally {
      dev.createBindGroup = orig;
    }
    return n;
  }

  it('a repeated step reuses its bind groups and gets the same results', async () => {
    gpu = await testGpu();
    const step = () =>
      tidyAsync(async () => {
        const x = tensor(gpu, [1, 2, 3, 4], [4], 'f32', { requiresGrad: true });
        const made = countBindGroups(() => backward(plus(mul(x, x), x), tensor(gpu, [1, 1, 1, 1], [4])));
        return { made, grad: Array.from(await x.grad!.read()) };
      });
    const first = await step();
    const second = await step();
    expect(first.made).toBeGreaterThan(0);
    expect(second.made).toBe(0);
    expect(first.grad).toEqual([3, 5, 7, 9]); // 2x + 1
    expect(second.grad).toEqual(first.grad);
  });

  it('dispatches of one kernel on the same buffers in one submit each see their own uniforms', async () => {
    gpu = await testGpu();
    const t = tensor(gpu, [0, 0, 0, 0, 0, 0], [6]);
    // One bind group for all three (same pipeline and buffer); the uniforms differ (n and the bits).
    fill(t, 1);
    const made = countBindGroups(() => {
      fillBuffer(gpu, t.buffer, 4, 0x40000000); // 2.0
      fillBuffer(gpu, t.buffer, 2, 0x40400000); // 3.0
    });
    expect(made).toBe(0);
    expect(Array.from(await t.read())).toEqual([3, 3, 2, 2, 1, 1]);
    t.dispose();
  });

  it('a rejected bind group is reported with its kernel each time it is used', async () => {
    gpu = await testGpu();
    const bad = gpu.device.createBuffer({ size: 256, usage: GPUBufferUsage.COPY_DST });
    for (let i = 0; i < 2; i++) {
      fillBuffer(gpu, bad, 4, 0);
      await expect(gpu.sync()).rejects.toThrow(/dispatching fill@v1 .* workgroups \(1, 1, 1\)/);
    }
    bad.destroy();
  });
});

describe('kernel specs', () => {
  it('checkSpec: an override derived from others needs no default in the spec and must not be set by it', () => {
    const source = 'override A: u32 = 2;\noverride B: u32 = A * 2;\n@compute @workgroup_size(B) fn main() {}';
    const spec: KernelSpec = {
      name: 'test_derived',
      version: 'v1',
      source,
      file: 'x.wgsl',
      bindings: [],
      overrides: { A: 2 },
    };
    expect(checkSpec(spec)).toEqual([]);
    expect(checkSpec({ ...spec, overrides: { A: 2, B: 4 } })).toEqual([
      expect.stringMatching(/override "B" is derived/),
    ]);
    expect(checkSpec({ ...spec, overrides: {} })).toEqual([expect.stringMatching(/override "A" has no default/)]);
  });

  it('names a kernel by name@version, with the revision past the first', () => {
    const spec: KernelSpec = { name: 'k', version: 'v2', source: '', file: 'k.wgsl', bindings: [] };
    expect(kernelId(spec)).toBe('k@v2');
    expect(kernelId({ ...spec, revision: 1 })).toBe('k@v2');
    expect(kernelId({ ...spec, revision: 3 })).toBe('k@v2-r3');
    expect(pipelineKey({ ...spec, revision: 3 }, { B: 1, A: 2 })).toBe('k@v2-r3(A=2,B=1)');
  });

  it('the test kernel below matches its spec', () => expect(checkSpec(fmaSpec)).toEqual([]));
});

describe('autograd', () => {
  it('a diamond (fan-out and fan-in) gets the gradients of central differences of an f64 reference', async () => {
    gpu = await testGpu();
    // u = x·y and v = x·x fan out from x; z = u + v fans in; w = z·u uses u on two paths. u's gradient is complete
    // only after both w's and z's backward ran: a node run before all its consumers gives a wrong dx and dy.
    const n = 37;
    const data = (seed: number) =>
      Float32Array.from({ length: n }, (_, i) => 0.5 + ((i * 7919 + seed * 104729) % 997) / 997);
    const r = await checkOp(
      gpu,
      (x, y) => {
        const u = mul(x, y);
        return mul(plus(u, mul(x, x)), u);
      },
      [
        { data: data(1), shape: [n] },
        { data: data(2), shape: [n] },
      ],
      ([x, y]) => x!.map((xi, i) => (xi * y![i]! + xi * xi) * xi * y![i]!),
    );
    // Inputs in [0.5, 1.5): every term is positive (a gradient element is g times a sum of positive terms), so
    // nothing cancels and relative errors add. The forward rounds 4 times on its longest path (x·y, +, ·); dx
    // passes through at most 8 roundings (g·z, g·u, their sum, then ·y and two ·x contributions added), the
    // accumulating pass one more: ≤ 9ε per element, 16ε bounds it. f64 central differences are exact to ~1e-10.
    expect(r.forward).toBeLessThanOrEqual(16 * EPS32);
    for (const e of [...r.gradWrite, ...r.gradAccumulate]) expect(e).toBeLessThanOrEqual(16 * EPS32);
  });

  it('sorts a chain of ops four times as long as a d48 GPT-2 graph', async () => {
    gpu = await testGpu();
    tidy(() => {
      let t = tensor(gpu, [1], [1], 'f32', { requiresGrad: true });
      for (let i = 0; i < 2000; i++) t = plus(t, t);
      const order = topoSort(t);
      expect(order).toHaveLength(2000);
      expect(order[0]!.output.node!.inputs[0]!.node).toBeNull(); // inputs before outputs
      expect(order[1999]!.output).toBe(t);
    });
  });

  it('records nothing under noGrad', async () => {
    gpu = await testGpu();
    tidy(() => {
      const x = tensor(gpu, [1], [1], 'f32', { requiresGrad: true });
      const y = noGrad(() => mul(x, x));
      expect(y.node).toBeNull();
      expect(() => backward(y)).toThrow(/does not depend/);
    });
  });

  it('onGradFinal: each leaf once, right after the backward of its last consumer is recorded', async () => {
    gpu = await testGpu();
    await tidyAsync(async () => {
      // y = (x·x + w)·(w + c). Backward runs the outer mul, then w + c (a use of w), then x·x + w (w's last use),
      // then x·x (x's only consumer). c requires no gradient and is never reported.
      const x = tensor(gpu, [1, 2], [2], 'f32', { requiresGrad: true });
      const w = tensor(gpu, [3, 4], [2], 'f32', { requiresGrad: true });
      const c = tensor(gpu, [1, 1], [2], 'f32');
      const y = mul(plus(mul(x, x), w), plus(w, c));
      const seen: string[] = [];
      const atCall: Promise<Float32Array>[] = [];
      backward(y, tensor(gpu, [1, 1], [2]), {
        onGradFinal: (t) => {
          seen.push(t === x ? 'x' : t === w ? 'w' : '?');
          atCall.push(t.grad!.read() as Promise<Float32Array>); // its copy is recorded now, in queue order
        },
      });
      expect(seen).toEqual(['w', 'x']);
      // What the gradients held at the call is their final value: dy/dw = x² + 2w + c, dy/dx = 2x(w + c).
      const [gw, gx] = await Promise.all(atCall);
      expect(Array.from(gw!)).toEqual([1 + 6 + 1, 4 + 8 + 1]);
      expect(Array.from(gx!)).toEqual([2 * 1 * 4, 2 * 2 * 5]);
    });
  });

  it('markGradReady() needs a gradient buffer; backward then adds to it', async () => {
    gpu = await testGpu();
    await tidyAsync(async () => {
      const x = tensor(gpu, [3], [1], 'f32', { requiresGrad: true });
      expect(() => x.markGradReady()).toThrow(/no gradient buffer/);
      x.ensureGrad().write([10]);
      expect(x.gradReady).toBe(false);
      x.markGradReady();
      backward(mul(x, x)); // d(x²)/dx = 6, added to the 10 written
      expect(Array.from(await x.grad!.read())).toEqual([16]);
    });
  });
});
