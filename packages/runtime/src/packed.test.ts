// Packed tensors (slices of shared buffers): layout, what kernels and host transfers see through a slice, gradients
// packed alike, in-place gradients, and the recording device that counts a step without running it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  backward,
  BufferSlice,
  defineOp,
  empty,
  fill,
  fillSpec,
  packLayout,
  parameters,
  tensor,
  tidy,
  tidyAsync,
  TensorPack,
  type Gpu,
  type Tensor,
} from './index.ts';
import { recordingGpu, testGpu } from './testing.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});
afterAll(() => gpu.destroy());

/**
 * y = x (a copy), whose backward writes dy into dx through gradInPlace when allowed: the shape of the fused
 * classifier's in-place option, with a copy as the "kernel".
 */
const passThrough = defineOp({
  name: 'test_pass_in_place',
  forward(x: Tensor, opts: { inPlace: boolean }) {
    const out = empty(x.gpu, x.shape);
    x.gpu.copy(x.buffer, 0, out.buffer, 0, x.bytes);
    return { out, saved: opts.inPlace };
  },
  backward(ctx, g, { args: [x], saved: inPlace }) {
    const d = inPlace ? ctx.gradInPlace(x, 'test_pass_in_place') : ctx.grad(x);
    if (!d) return;
    if (d.accumulate) throw new Error('this test op only overwrites');
    x.gpu.copy(g.buffer, 0, d.tensor.buffer, 0, x.bytes);
  },
});

describe('packLayout', () => {
  it('aligns every offset, and starts a new segment where the next tensor would pass the limit', () => {
    const l = packLayout([4, 1000, 256, 300, 12, 700], 256, 1536);
    expect(l.slots).toEqual([
      { segment: 0, offset: 0, bytes: 4 },
      { segment: 0, offset: 256, bytes: 1000 },
      { segment: 0, offset: 1280, bytes: 256 }, // ends at the limit exactly
      { segment: 1, offset: 0, bytes: 300 },
      { segment: 1, offset: 512, bytes: 12 },
      { segment: 1, offset: 768, bytes: 700 },
    ]);
    expect(l.segments).toEqual([1536, 1468]);
    expect(() => packLayout([2048], 256, 1536)).toThrow(/2048 bytes does not fit a buffer binding of at most 1536/);
  });
});

describe('packed tensors', () => {
  it('hold their data at aligned slices; kernels, copies, clears and reads see only their own range', async () => {
    const shapes = [[3], [5, 7], [1], [64]];
    const data = shapes.map((s, i) => Float32Array.from({ length: s.reduce((a, b) => a * b) }, (_, j) => i + j / 8));
    const pack = new TensorPack(
      gpu,
      shapes.map((shape, i) => ({ shape, data: data[i], name: `t${i}` })),
    );
    const ts = pack.tensors;
    expect(pack.segments).toHaveLength(1);
    for (const [i, t] of ts.entries()) {
      expect(t.buffer).toBeInstanceOf(BufferSlice);
      expect((t.buffer as BufferSlice).offset % gpu.limits.minStorageBufferOffsetAlignment).toBe(0);
      expect(Array.from(await t.read())).toEqual(Array.from(data[i]!));
    }
    // A kernel binds a slice as its range: filling t1 leaves its neighbours and the padding alone.
    fill(ts[1]!, 9);
    // A copy into a slice (from another buffer: WebGPU copies nothing within one buffer), a clear of a part of one.
    const src = tensor(gpu, [7, 8, 9], [3], 'f32', { track: false });
    gpu.copy(src.buffer, 4, ts[0]!.buffer, 0, 8);
    src.dispose();
    gpu.clear(ts[3]!.buffer, 8, 8);
    const seg = await pack.segments[0]!.read();
    const offs = pack.layout.slots.map((s) => s.offset / 4);
    expect(Array.from(seg.subarray(offs[0], offs[0]! + 3))).toEqual([8, 9, 2 / 8]);
    expect(seg.subarray(offs[1], offs[1]! + 35).every((x) => x === 9)).toBe(true);
    expect(seg[offs[2]!]).toBe(2);
    const t3 = Array.from(data[3]!);
    t3.splice(2, 2, 0, 0);
    expect(Array.from(seg.subarray(offs[3], offs[3]! + 64))).toEqual(t3);
    // Everything between the tensors is zero.
    const used = new Set(
      pack.layout.slots.flatMap((s) => Array.from({ length: s.bytes / 4 }, (_, j) => s.offset / 4 + j)),
    );
    expect(Array.from(seg).filter((x, i) => !used.has(i) && x !== 0)).toEqual([]);
    pack.dispose();
  });

  it('refuses host transfers past a slice and a binding at a misaligned offset, naming them', async () => {
    const [a] = parameters(gpu, [{ shape: [4], name: 'a' }]);
    expect(() => gpu.copy(a!.buffer, 8, a!.buffer, 0, 16)).toThrow(/copy from "a": bytes \[8, 24\) do not lie/);
    await expect(gpu.read(a!.buffer, 20)).rejects.toThrow(/read of "a"/);
    expect(() => a!.write([1, 2, 3, 4, 5])).toThrow(/5 values/);
    expect(() => parameters(gpu, [{ shape: [2, 3], data: [1, 2], name: 'w' }])).toThrow(
      /w: 2 values for shape \[2, 3\]/,
    );
    const root = (a!.buffer as BufferSlice).root;
    const odd = new BufferSlice(root, 4, 8, 'odd');
    expect(() =>
      gpu.dispatch(fillSpec, { buffers: { out: odd }, uniforms: { n: 2, bits: 0 }, workgroups: [1] }),
    ).toThrow(/binding "out" starts at byte 4 of its buffer, not a multiple of minStorageBufferOffsetAlignment/);
    expect(() => new BufferSlice(root, 0, root.size + 4)).toThrow(/does not lie in buffer/);
    expect(() => odd.mapAsync()).toThrow(/cannot be mapped/);
    a!.pack!.dispose();
  });

  it('gradients: packed at the same offsets when first needed, written by backward, zeroed in one clear', async () => {
    const ps = parameters(gpu, [
      { shape: [3], data: [1, 2, 3], name: 'p0' },
      { shape: [70], data: Array.from({ length: 70 }, (_, i) => i), name: 'p1' },
    ]);
    const pack = ps[0]!.pack as TensorPack;
    expect(pack.gradSegments).toBeNull(); // nothing allocated for inference
    await tidyAsync(async () => {
      pack.ensureGrads();
      expect(pack.gradSegments).toHaveLength(1);
      ps.forEach((p, i) => {
        const g = p.grad!.buffer as BufferSlice;
        expect(g.root).toBe(pack.gradSegments![0]!.buffer);
        expect(g.offset).toBe(pack.layout.slots[i]!.offset);
      });
      // The upstream gradient lands in p0's slice of the gradient buffer, and nowhere else.
      backward(passThrough(ps[0]!, { inPlace: false }), tensor(gpu, [0.5, 1, 2], [3]));
      const all = await pack.gradSegments![0]!.read();
      const at = pack.layout.slots.map((s) => s.offset / 4);
      expect(Array.from(all.subarray(at[0], at[0]! + 3))).toEqual([0.5, 1, 2]);
      // p1's gradient was never written: NaN-poisoned in tests; the padding between them is zero.
      expect(all.subarray(at[1], at[1]! + 70).every((x) => Number.isNaN(x) === gpu.poisonNew)).toBe(true);
      expect(all.subarray(3, at[1]).every((x) => x === 0)).toBe(true);
      pack.zeroGrads();
      expect((await pack.gradSegments![0]!.read()).every((x) => x === 0)).toBe(true);
      expect(ps.every((p) => p.gradReady)).toBe(true);
    });
    pack.dispose();
  });

  it('gradInPlace: the first contribution is written over the input, which then refuses reads and ops', async () => {
    await tidyAsync(async () => {
      const x = tensor(gpu, [1, 2, 3, 4], [4], 'f32', { requiresGrad: true });
      const y = passThrough(x, { inPlace: true });
      backward(y, tensor(gpu, [5, 6, 7, 8], [4]));
      expect(x.grad!.buffer).toBe(x.buffer); // no second buffer
      expect(Array.from(await x.grad!.read())).toEqual([5, 6, 7, 8]);
      await expect(x.read()).rejects.toThrow(/holds its gradient now \(test_pass_in_place wrote it/);
      expect(() => passThrough(x, { inPlace: false })).toThrow(/test_pass_in_place of .*holds its gradient/);
    });
    // An input with a gradient already, or a parameter, gets a separate gradient as grad() gives it.
    await tidyAsync(async () => {
      const x = tensor(gpu, [1, 2], [2], 'f32', { requiresGrad: true });
      x.ensureGrad();
      backward(passThrough(x, { inPlace: true }), tensor(gpu, [3, 4], [2]));
      expect(x.grad!.buffer).not.toBe(x.buffer);
      expect(Array.from(await x.read())).toEqual([1, 2]);
      const [p] = parameters(gpu, [{ shape: [2], data: [1, 2] }]);
      backward(passThrough(p!, { inPlace: true }), tensor(gpu, [3, 4], [2]));
      expect(Array.from(await p!.read())).toEqual([1, 2]);
      expect(Array.from(await p!.grad!.read())).toEqual([3, 4]);
      p!.pack!.dispose();
    });
  });
});

describe('recording device', () => {
  it('counts the dispatches and pool bytes a real device would, executing nothing', async () => {
    const run = (g: Gpu) => {
      const start = { d: g.dispatchCount, inUse: g.pool.stats.bytesInUse };
      g.pool.stats.peakBytesInUse = start.inUse;
      tidy(() => {
        const [p] = parameters(g, [{ shape: [300], data: new Float32Array(300) }]);
        const x = tensor(g, new Float32Array(1000), [1000], 'f32', { requiresGrad: true });
        backward(passThrough(x, { inPlace: false }), tensor(g, new Float32Array(1000), [1000]));
        fill(x, 1);
        p!.pack!.dispose();
      });
      return { dispatches: g.dispatchCount - start.d, peak: g.pool.stats.peakBytesInUse - start.inUse };
    };
    const rec = recordingGpu();
    rec.poisonNew = gpu.poisonNew;
    const want = run(gpu);
    expect(want.dispatches).toBeGreaterThan(0);
    expect(run(rec)).toEqual(want);
    rec.destroy();
  });
});
