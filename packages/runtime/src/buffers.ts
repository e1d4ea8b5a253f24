// A pool of GPU buffers in size classes, reused across steps.
//
// Why a pool and not create/destroy: a training step allocates the same shapes every step, and on an H200 dawn.node
// (webgpu 0.6.2) aborted soon after a process moved from matmuls at one size to large new buffers for the next (18 of
// 19 runs; tools/gpu/stress.ts is the regression). Buffers here are created once per size class and kept for the life
// of the pool; nothing is destroyed before `destroy()` (or an explicit `trim()`), so steady-state training creates and
// destroys nothing.
//
// A request gets the oldest free buffer of its class (not the last one freed): what is free at the start of a step is
// then a set, whatever order the previous step released its buffers in, so a step that repeats the same requests
// gets the same buffers every time, and the Gpu's cached bind groups (keyed by buffer) keep matching.
import { formatBytes, GpuValidationError } from './errors.ts';

export interface PoolStats {
  /** Bytes handed out and not yet released (size-class bytes, not requested bytes). */
  bytesInUse: number;
  /** Highest bytesInUse seen. */
  peakBytesInUse: number;
  /** Bytes of every buffer the pool created and still holds (in use + free). */
  bytesReserved: number;
  /** createBuffer calls made. */
  allocations: number;
  /** acquire() calls served from a free buffer. */
  reuses: number;
  /** Buffers currently handed out. */
  live: number;
}

/**
 * Size classes: four per power of two above 4 KiB (waste at most 25%), one 4 KiB class below, so a handful of
 * shapes map to a handful of buffers. Multiples of 16 bytes keep vec4 access legal.
 */
export function sizeClass(bytes: number): number {
  const min = 4096;
  if (bytes <= min) return min;
  const octave = 2 ** Math.floor(Math.log2(bytes));
  const step = octave / 4;
  return Math.ceil(bytes / step) * step;
}

export class BufferPool {
  /** Free buffers per class, newest first (the oldest is popped). */
  private free = new Map<string, GPUBuffer[]>();
  /** Creation order of every buffer made. */
  private serial = new WeakMap<GPUBuffer, number>();
  private made = 0;
  private all = new Set<GPUBuffer>();
  private handedOut = new Map<GPUBuffer, { bytes: number; key: string }>();
  readonly stats: PoolStats = {
    bytesInUse: 0,
    peakBytesInUse: 0,
    bytesReserved: 0,
    allocations: 0,
    reuses: 0,
    live: 0,
  };

  constructor(
    private device: GPUDevice,
    private limits: { maxBufferSize: number; maxStorageBufferBindingSize: number },
    /** Receives each allocation's error-scope result (out of memory, validation) to report at the next check. */
    private report?: (error: Promise<GPUError | null>, what: () => string) => void,
  ) {}

  /**
   * A buffer of at least `bytes`, of the request's size class; with `exact`, of exactly `bytes` rounded up to 16
   * (for buffers that live the whole run, e.g. packed parameters, where a size class would waste up to 25%).
   */
  acquire(bytes: number, usage: GPUBufferUsageFlags, label?: string, opts: { exact?: boolean } = {}): GPUBuffer {
    if (!Number.isFinite(bytes) || bytes < 0)
      throw new GpuValidationError(`Buffer size ${bytes} is not a valid byte count${label ? ` (${label})` : ''}`);
    const size = opts.exact ? Math.ceil(Math.max(bytes, 4) / 16) * 16 : sizeClass(Math.max(bytes, 4));
    const isStorage = (usage & GPUBufferUsage.STORAGE) !== 0;
    const limit = isStorage
      ? Math.min(this.limits.maxStorageBufferBindingSize, this.limits.maxBufferSize)
      : this.limits.maxBufferSize;
    if (bytes > limit) {
      throw new GpuValidationError(
        `Buffer of ${bytes} bytes (${formatBytes(bytes)})${label ? ` for ${label}` : ''} exceeds this adapter's ` +
          `${isStorage ? 'maxStorageBufferBindingSize' : 'maxBufferSize'} of ${limit} bytes (${formatBytes(limit)}).`,
      );
    }
    // The size class may round past the limit while the request does not: then the class's buffers are the
    // limit's size, which still holds every request of the class (each is ≤ limit), so any of them can be reused.
    const allocSize = Math.min(size, limit);
    const key = `${opts.exact ? 'exact ' : ''}${size}:${usage}`;
    const list = this.free.get(key);
    let buf = list?.pop();
    if (buf) {
      this.stats.reuses++;
    } else {
      if (this.report) {
        this.device.pushErrorScope('out-of-memory');
        this.device.pushErrorScope('validation');
      }
      buf = this.device.createBuffer({ size: allocSize, usage, label: label ?? `pool ${formatBytes(allocSize)}` });
      if (this.report) {
        const what = () =>
          `allocating ${formatBytes(allocSize)}${label ? ` for ${label}` : ''} ` +
          `(${formatBytes(this.stats.bytesReserved)} already reserved by the pool)`;
        this.report(this.device.popErrorScope(), what);
        this.report(this.device.popErrorScope(), what);
      }
      this.all.add(buf);
      this.serial.set(buf, this.made++);
      this.stats.allocations++;
      this.stats.bytesReserved += buf.size;
    }
    this.handedOut.set(buf, { bytes: buf.size, key });
    this.stats.live++;
    this.stats.bytesInUse += buf.size;
    if (this.stats.bytesInUse > this.stats.peakBytesInUse) this.stats.peakBytesInUse = this.stats.bytesInUse;
    return buf;
  }

  /** Returns a buffer for reuse. Commands already recorded that use it still see its old contents (queue order). */
  release(buf: GPUBuffer): void {
    const out = this.handedOut.get(buf);
    if (!out) throw new GpuValidationError(`Buffer "${buf.label}" released twice or not from this pool`);
    this.handedOut.delete(buf);
    this.stats.live--;
    this.stats.bytesInUse -= out.bytes;
    let list = this.free.get(out.key);
    if (!list) this.free.set(out.key, (list = []));
    // Kept newest first: the insertion point of buf by creation order (lists are short: a step's buffers of a class).
    const at = this.serial.get(buf)!;
    let i = list.length;
    while (i > 0 && this.serial.get(list[i - 1]!)! < at) i--;
    list.splice(i, 0, buf);
  }

  /** Destroys free buffers (not those in use). Only between steps, after the queue is idle. */
  trim(): number {
    let freed = 0;
    for (const list of this.free.values()) {
      for (const b of list) {
        freed += b.size;
        this.all.delete(b);
        b.destroy();
      }
      list.length = 0;
    }
    this.stats.bytesReserved -= freed;
    return freed;
  }

  destroy(): void {
    for (const b of this.all) b.destroy();
    this.all.clear();
    this.free.clear();
    this.handedOut.clear();
    this.stats.bytesInUse = this.stats.bytesReserved = this.stats.live = 0;
  }
}

/**
 * A byte range of a GPUBuffer, accepted by the runtime wherever it takes a GPUBuffer (dispatch bindings, copy,
 * clear, write, read): a tensor packed with others into one buffer (packed.ts) has one as its `buffer`, so every
 * kernel binds it as {buffer, offset, size} without knowing. It cannot be mapped or destroyed, and WebGPU itself
 * does not accept it: code that hands buffers to the device directly resolves them with `bufferRange()` first.
 */
export class BufferSlice implements GPUBuffer {
  readonly __brand = 'GPUBuffer' as const;
  label: string;

  constructor(
    /** The buffer the range lies in (never itself a slice). */
    readonly root: GPUBuffer,
    /** Byte offset of the range in root. */
    readonly offset: number,
    /** Bytes in the range. */
    readonly size: number,
    label?: string,
  ) {
    if (root instanceof BufferSlice) throw new GpuValidationError('BufferSlice of a BufferSlice: slice the root');
    if (offset < 0 || size < 0 || offset + size > root.size || offset % 4 || size % 4)
      throw new GpuValidationError(
        `BufferSlice [${offset}, ${offset + size}) does not lie in buffer "${root.label}" of ${root.size} bytes ` +
          'at 4-byte boundaries',
      );
    this.label = label ?? `${root.label} [${offset}, ${offset + size})`;
  }

  get usage(): GPUFlagsConstant {
    return this.root.usage;
  }

  get mapState(): GPUBufferMapState {
    return this.root.mapState;
  }

  mapAsync(): Promise<undefined> {
    throw new GpuValidationError(`${this.label}: a slice of a buffer cannot be mapped (read it through the Gpu)`);
  }

  getMappedRange(): ArrayBuffer {
    throw new GpuValidationError(`${this.label}: a slice of a buffer cannot be mapped (read it through the Gpu)`);
  }

  unmap(): undefined {
    throw new GpuValidationError(`${this.label}: a slice of a buffer cannot be mapped`);
  }

  destroy(): undefined {
    throw new GpuValidationError(`${this.label}: a slice of a buffer is not destroyed by itself; destroy its root`);
  }
}

/** The real buffer behind `buf` and the byte range that `buf` stands for in it. */
export function bufferRange(buf: GPUBuffer): { buffer: GPUBuffer; offset: number; size: number } {
  return buf instanceof BufferSlice
    ? { buffer: buf.root, offset: buf.offset, size: buf.size }
    : { buffer: buf, offset: 0, size: buf.size };
}
