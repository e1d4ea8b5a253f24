// Tensors packed into a few large buffers: each tensor is a BufferSlice at an aligned byte offset, so kernels bind it
// as usual while one dispatch can bind all of them at once (a multi-tensor optimizer over the whole range, as llm.c
// keeps its parameters in one block). Gradients are packed the same way, with the same offsets, when first needed.
//
// Layout: tensors in the given order, each at a multiple of the device's minStorageBufferOffsetAlignment, a new
// segment (buffer) begun when the next tensor would pass the largest buffer a binding may cover. The bytes between
// tensors are zero from creation and nothing writes them (slices bind only their own range).
import { BufferSlice } from './buffers.ts';
import { WgptError } from './errors.ts';
import type { Gpu } from './gpu.ts';
import { fillBuffer, POISON_BITS } from './builtin/fill.ts';
import { checkShape, Tensor } from './tensor.ts';

export interface PackSlot {
  /** Index of the segment (buffer) holding the tensor. */
  segment: number;
  /** Byte offset in the segment. */
  offset: number;
  /** Bytes of the tensor (4 per element). */
  bytes: number;
}

export interface PackLayout {
  /** Bytes of each segment: through the end of its last tensor. */
  segments: number[];
  slots: PackSlot[];
}

/** Where tensors of `bytes` go: offsets aligned to `align`, segments of at most `maxSegment` bytes. */
export function packLayout(bytes: readonly number[], align: number, maxSegment: number): PackLayout {
  const segments: number[] = [];
  const slots: PackSlot[] = [];
  let end = 0;
  for (const [i, b] of bytes.entries()) {
    if (b > maxSegment)
      throw new WgptError(`tensor ${i} of ${b} bytes does not fit a buffer binding of at most ${maxSegment} bytes`);
    let at = Math.ceil(end / align) * align;
    if (!segments.length || at + b > maxSegment) {
      segments.push(0);
      at = 0;
    }
    slots.push({ segment: segments.length - 1, offset: at, bytes: b });
    end = at + b;
    segments[segments.length - 1] = end;
  }
  return { segments, slots };
}

export interface PackItem {
  shape: readonly number[];
  /** Initial values; zeros when absent. */
  data?: ArrayLike<number>;
  name?: string;
}

const storageUsage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/**
 * f32 tensors packed into shared buffers (see the top of this file). The tensors are untracked (no tidy() scope
 * frees them); dispose() the pack to give its buffers back.
 */
export class TensorPack {
  readonly tensors: Tensor[];
  readonly layout: PackLayout;
  /** One tensor per segment, owning its buffer; the packed tensors are views of these. */
  readonly segments: Tensor[];
  /** The gradients' segments, once ensureGrads() made them. */
  gradSegments: Tensor[] | null = null;
  private disposed = false;

  constructor(
    readonly gpu: Gpu,
    items: readonly PackItem[],
    opts: { param?: boolean; label?: string } = {},
  ) {
    items.forEach((it) => checkShape(it.shape));
    const sizes = items.map((it) => it.shape.reduce((a, b) => a * b, 1));
    items.forEach((it, i) => {
      if (it.data && it.data.length !== sizes[i])
        throw new WgptError(
          `${it.name ?? `packed tensor ${i}`}: ${it.data.length} values for shape [${it.shape.join(', ')}]`,
        );
    });
    this.layout = packLayout(
      sizes.map((n) => 4 * n),
      gpu.limits.minStorageBufferOffsetAlignment,
      packLimit(gpu),
    );
    const label = opts.label ?? 'packed tensors';
    this.segments = this.allocate(label);
    this.tensors = items.map((it, i) => {
      const slot = this.layout.slots[i]!;
      const seg = this.segments[slot.segment]!;
      const slice = new BufferSlice(seg.buffer, slot.offset, slot.bytes, it.name);
      const t = new Tensor(gpu, it.shape, 'f32', slice, { track: false, name: it.name });
      t.base = seg;
      t.pack = this;
      if (opts.param) {
        t.requiresGrad = true;
        t.isParam = true;
      }
      return t;
    });
    // Recorded clears first, then the writes (write() flushes them before uploading): padding is zero either way.
    items.forEach((it, i) => {
      if (it.data && sizes[i]) this.tensors[i]!.write(it.data);
    });
  }

  /** Zeroed segments for the layout, taken from the pool at their exact size. */
  private allocate(label: string): Tensor[] {
    return this.layout.segments.map((bytes, s) => {
      const buf = this.gpu.pool.acquire(bytes, storageUsage(), `${label} ${s}`, { exact: true });
      this.gpu.clear(buf, 0, Math.ceil(Math.max(bytes, 4) / 16) * 16);
      return new Tensor(this.gpu, [bytes / 4], 'f32', buf, { track: false, name: `${label} ${s}` });
    });
  }

  /** Allocates every tensor's gradient (same layout, slices of the gradient segments); poisoned in tests. */
  ensureGrads(): void {
    if (this.gradSegments) return;
    if (this.disposed) throw new WgptError('gradients of a disposed TensorPack');
    this.gradSegments = this.allocate('packed gradients');
    this.tensors.forEach((t, i) => {
      const slot = this.layout.slots[i]!;
      const seg = this.gradSegments![slot.segment]!;
      const name = `grad(${t.name ?? `t${t.id}`})`;
      const slice = new BufferSlice(seg.buffer, slot.offset, slot.bytes, name);
      const g = new Tensor(this.gpu, t.shape, 'f32', slice, { track: false, name });
      g.base = seg;
      // An element a kernel fails to write is NaN; the padding between tensors stays zero.
      if (this.gpu.poisonNew) fillBuffer(this.gpu, slice, t.size, POISON_BITS);
      t.adoptGrad(g);
    });
  }

  /** Zeroes every gradient with one clear per segment; backward then accumulates into them. */
  zeroGrads(): void {
    this.ensureGrads();
    for (const s of this.gradSegments!) this.gpu.clear(s.buffer, 0, s.bytes);
    for (const t of this.tensors) t.markGradReady();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const t of this.tensors) {
      t.grad?.dispose();
      t.dispose();
    }
    for (const s of [...this.segments, ...(this.gradSegments ?? [])]) s.dispose();
  }
}

/** The largest segment: a binding must be able to cover it whole, and the device must be able to allocate it. */
export function packLimit(gpu: Gpu): number {
  const align = gpu.limits.minStorageBufferOffsetAlignment;
  const max = Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
  return Math.floor(max / align) * align;
}

/** Trainable parameters packed into shared buffers (what `parameter()` makes, one buffer for all of them). */
export function parameters(gpu: Gpu, items: readonly PackItem[], label = 'parameters'): Tensor[] {
  return new TensorPack(gpu, items, { param: true, label }).tensors;
}
