// All-reduce of f32 data in a GPU buffer: read back through the pool's mapped staging buffers (Gpu.read), reduced
// across ranks on the host, and uploaded through a mapped MAP_WRITE staging buffer and a copy, not
// queue.writeBuffer (which crashed dawn.node when handed shared memory). Done in chunks, so the readback of the
// next chunk is in flight while this one is reduced, and staging memory stays at a few chunks whatever the size.
import { bufferRange } from '../buffers.ts';
import type { Gpu } from '../gpu.ts';
import { DistError, type Collective, type ReduceOp } from './collective.ts';

export interface DeviceAllReduceOptions {
  /** Byte offset of the data in the buffer (a multiple of 4). Default 0. */
  offset?: number;
  /** Floats per chunk (default 4 Mi, 16 MiB). */
  chunkFloats?: number;
}

/** Replaces `count` floats of `buf` on every rank by their sum (or mean) over the ranks: the same bits everywhere. */
export async function allReduceBuffer(
  gpu: Gpu,
  c: Collective,
  buf: GPUBuffer,
  count: number,
  op: ReduceOp = 'sum',
  opts: DeviceAllReduceOptions = {},
): Promise<void> {
  const offset = opts.offset ?? 0;
  const chunk = opts.chunkFloats ?? 1 << 22;
  if (offset % 4 !== 0) throw new DistError(`all-reduce of "${buf.label}" at byte ${offset}: not a multiple of 4`);
  if (!Number.isInteger(chunk) || chunk < 1) throw new DistError(`chunk of ${chunk} floats: give a positive integer`);
  if (c.worldSize === 1 || count === 0) return;
  const at = (k: number) => offset + k * chunk * 4;
  const len = (k: number) => Math.min(chunk, count - k * chunk);
  const chunks = Math.ceil(count / chunk);
  let next: Promise<ArrayBuffer> | null = gpu.read(buf, len(0) * 4, at(0));
  for (let k = 0; k < chunks; k++) {
    const data = new Float32Array(await next!);
    next = k + 1 < chunks ? gpu.read(buf, len(k + 1) * 4, at(k + 1)) : null;
    await c.allReduce(data, op);
    await upload(gpu, buf, data, at(k));
  }
  await next;
}

/** Writes host data into `buf` at `offset` through a mapped staging buffer and a copy recorded in queue order. */
export async function upload(gpu: Gpu, buf: GPUBuffer, data: Float32Array, offset: number): Promise<void> {
  const bytes = data.byteLength;
  const staging = gpu.pool.acquire(bytes, GPUBufferUsage.MAP_WRITE | GPUBufferUsage.COPY_SRC, 'upload staging');
  try {
    await staging.mapAsync(GPUMapMode.WRITE, 0, bytes);
    new Float32Array(staging.getMappedRange(0, bytes)).set(data);
    staging.unmap();
    gpu.copy(staging, 0, buf, offset, bytes);
    // Submitted before the staging buffer goes back to the pool, so no later mapping of it can race this copy.
    gpu.flush();
  } finally {
    gpu.pool.release(staging);
  }
}

/** Floats at a byte offset of one GPU buffer. */
export interface BufferSpan {
  buffer: GPUBuffer;
  offset: number;
  count: number;
}

/**
 * The fewest spans that cover these (possibly packed) tensors: one per underlying buffer, from its first tensor's
 * start to its last one's end (gaps between packed tensors are padding, reduced along with the rest).
 */
export function coveringSpans(tensors: readonly { buffer: GPUBuffer; bytes: number }[]): BufferSpan[] {
  const byRoot = new Map<GPUBuffer, { start: number; end: number }>();
  for (const t of tensors) {
    const r = bufferRange(t.buffer);
    const s = byRoot.get(r.buffer);
    if (!s) byRoot.set(r.buffer, { start: r.offset, end: r.offset + t.bytes });
    else {
      s.start = Math.min(s.start, r.offset);
      s.end = Math.max(s.end, r.offset + t.bytes);
    }
  }
  return [...byRoot].map(([buffer, s]) => ({ buffer, offset: s.start, count: (s.end - s.start) / 4 }));
}

/** allReduceBuffer over each span in turn (every rank must give the same spans in the same order). */
export async function allReduceSpans(
  gpu: Gpu,
  c: Collective,
  spans: readonly BufferSpan[],
  op: ReduceOp = 'sum',
): Promise<void> {
  for (const s of spans) await allReduceBuffer(gpu, c, s.buffer, s.count, op, { offset: s.offset });
}

/**
 * For each rank r in turn, the floats of spans[r] (that rank's spans of GPU buffers) go from rank r to every other
 * rank: r reads them back, one broadcast carries them packed, the others upload them through one staging buffer and
 * a copy per span. Every rank gives the same spans; afterwards they hold r's bits there.
 */
export async function broadcastSpans(
  gpu: Gpu,
  c: Collective,
  spans: readonly (readonly BufferSpan[])[],
): Promise<void> {
  if (spans.length !== c.worldSize) {
    throw new DistError(`broadcastSpans: ${spans.length} span lists for ${c.worldSize} ranks`);
  }
  if (c.worldSize === 1) return;
  for (let r = 0; r < c.worldSize; r++) {
    const list = spans[r]!;
    const n = list.reduce((a, s) => a + s.count, 0);
    if (n === 0) continue;
    const packed = r === c.rank ? await readSpans(gpu, list) : new Float32Array(n);
    await c.broadcast(packed, r);
    if (r === c.rank) continue;
    await uploadSpans(gpu, list, packed);
  }
}

/**
 * Starts reading spans back, packed in order: the copies are recorded and submitted now, behind what is recorded
 * so far, so the data is there as soon as the GPU gets that far (while later work is recorded and runs). Into
 * `into` when given (e.g. a sharedArray), straight from the mapped staging buffers.
 */
export function readSpans(gpu: Gpu, spans: readonly BufferSpan[], into?: Float32Array): Promise<Float32Array> {
  const total = spans.reduce((a, s) => a + s.count, 0);
  if (into && into.length < total) {
    throw new DistError(`readSpans: ${total} floats into an array of ${into.length}`);
  }
  const out = into ? into.subarray(0, total) : new Float32Array(total);
  let at = 0;
  const parts = spans.map((s) => gpu.readInto(s.buffer, out.subarray(at, (at += s.count)), s.offset));
  gpu.flush();
  return Promise.all(parts).then(() => out);
}

/** Writes packed host data into spans (in order) through one mapped staging buffer and a copy per span. */
export async function uploadSpans(gpu: Gpu, spans: readonly BufferSpan[], packed: Float32Array): Promise<void> {
  const bytes = packed.byteLength;
  if (!bytes) return;
  const staging = gpu.pool.acquire(bytes, GPUBufferUsage.MAP_WRITE | GPUBufferUsage.COPY_SRC, 'span upload staging');
  try {
    await staging.mapAsync(GPUMapMode.WRITE, 0, bytes);
    new Float32Array(staging.getMappedRange(0, bytes)).set(packed);
    staging.unmap();
    let at = 0;
    for (const s of spans) gpu.copy(staging, 4 * at, s.buffer, s.offset, 4 * s.count), (at += s.count);
    gpu.flush(); // before the staging buffer goes back to the pool (see upload)
  } finally {
    gpu.pool.release(staging);
  }
}
