// safetensors (Hugging Face's tensor file): u64 little-endian header length N, N bytes of JSON
// { name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__": {...} }, then the raw data. F32 only here,
// plus F16/BF16 on read (converted to f32), since GPT-2 checkpoints in the wild come in all three.
// Reading opens the file, checks the whole header against the file, and reads one tensor at a time with positioned
// reads, so a file of any size loads (GPT-2 1.5B is 6.2 GB) and a caller can place each tensor before the next.
import { closeSync, fstatSync, openSync } from 'node:fs';
import { WgptError } from '@wgpt/runtime';
import { ioChunkBytes, readAt, writeFileAtomic } from './atomic.ts';

export interface NamedTensor {
  shape: number[];
  data: Float32Array;
}

export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  /** Byte range within the data section (after the header). */
  begin: number;
  end: number;
}

/** Bytes per element of the dtypes whose sizes we can check; the readable ones are F32, F16 and BF16. */
const DTYPE_BYTES: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, U64: 8, I32: 4, U32: 4, I16: 2, U16: 2, I8: 1, U8: 1, BOOL: 1,
};
/** The header is JSON text; real ones are tens of KB. A bigger length means a file that is not safetensors. */
const MAX_HEADER = 100 << 20;

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
const show = (x: unknown): string => JSON.stringify(x)?.slice(0, 40) ?? 'undefined';

/** An open safetensors file: its checked header, and `read(name)` for one tensor as f32. Call close() when done. */
export class SafetensorsFile {
  readonly entries = new Map<string, SafetensorsEntry>();
  readonly metadata: Record<string, string> = {};
  private fd: number;
  private base = 0;

  constructor(readonly path: string) {
    try {
      this.fd = openSync(path, 'r');
    } catch (e) {
      throw new WgptError(`${path}: cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    try {
      this.parseHeader();
    } catch (e) {
      closeSync(this.fd);
      throw e;
    }
  }

  private parseHeader(): void {
    const path = this.path;
    const size = fstatSync(this.fd).size;
    if (size < 8) throw new WgptError(`${path}: ${size} bytes is too short for a safetensors header`);
    const len = Buffer.alloc(8);
    readAt(this.fd, len, 0, path);
    const n = len.readBigUInt64LE(0);
    if (n > BigInt(Math.min(size - 8, MAX_HEADER))) {
      const limit = `the file (${size} bytes)${n > MAX_HEADER ? ' or 100 MB' : ''}`;
      throw new WgptError(`${path}: header length ${n} exceeds ${limit}; not a safetensors file?`);
    }
    const text = Buffer.alloc(Number(n));
    readAt(this.fd, text, 8, path);
    let header: unknown;
    try {
      header = JSON.parse(text.toString('utf8'));
    } catch (e) {
      throw new WgptError(`${path}: header is not JSON: ${(e as Error).message}`);
    }
    if (!isObject(header)) throw new WgptError(`${path}: header is ${show(header)}, not a JSON object of tensors`);
    this.base = 8 + Number(n);
    const dataBytes = size - this.base;
    for (const [name, v] of Object.entries(header)) {
      if (name === '__metadata__') {
        if (!isObject(v) || Object.values(v).some((x) => typeof x !== 'string')) {
          throw new WgptError(`${path}: __metadata__ must be an object of strings`);
        }
        Object.assign(this.metadata, v);
        continue;
      }
      const bad = (what: string) => new WgptError(`${path}: tensor ${name}: ${what}`);
      if (!isObject(v)) throw bad(`its entry is ${JSON.stringify(v)}, not an object`);
      const { dtype, shape, data_offsets: offs } = v;
      if (typeof dtype !== 'string') throw bad(`dtype ${JSON.stringify(dtype)} is not a string`);
      if (!Array.isArray(shape) || !shape.every(isCount)) throw bad(`shape ${show(shape)} is not a list of sizes`);
      if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isCount)) {
        throw bad(`data_offsets ${show(offs)} is not [begin, end]`);
      }
      const [begin, end] = offs as [number, number];
      if (end < begin || end > dataBytes) {
        throw bad(`data_offsets [${begin}, ${end}] lie outside the ${dataBytes} data bytes`);
      }
      const per = DTYPE_BYTES[dtype];
      const count = (shape as number[]).reduce((a, b) => a * b, 1);
      if (per !== undefined && end - begin !== count * per) {
        throw bad(`holds ${end - begin} bytes, its shape [${shape}] of ${dtype} needs ${count * per}`);
      }
      this.entries.set(name, { dtype, shape: shape as number[], begin, end });
    }
    // The format requires the tensors to tile the data without overlapping; an overlap means a corrupt header.
    const sorted = [...this.entries].sort((a, b) => a[1].begin - b[1].begin);
    for (let i = 1; i < sorted.length; i++) {
      const [pn, p] = sorted[i - 1]!;
      const [cn, c] = sorted[i]!;
      if (c.begin < p.end) {
        throw new WgptError(`${path}: tensors ${pn} [${p.begin}, ${p.end}] and ${cn} [${c.begin}, ${c.end}] overlap`);
      }
    }
  }

  /** One tensor as f32 (F16 and BF16 converted), read in pieces. */
  read(name: string): NamedTensor {
    const t = this.entries.get(name);
    if (!t) throw new WgptError(`${this.path}: no tensor named ${name}`);
    const count = t.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(count);
    const at = this.base + t.begin;
    if (t.dtype === 'F32') readAt(this.fd, data, at, this.path);
    else if (t.dtype === 'F16' || t.dtype === 'BF16') {
      const u32 = new Uint32Array(data.buffer);
      const per = Math.max(1, Math.floor(ioChunkBytes() / 2));
      for (let i0 = 0; i0 < count; i0 += per) {
        const k = Math.min(per, count - i0);
        const piece = new Uint16Array(k);
        readAt(this.fd, piece, at + 2 * i0, this.path);
        if (t.dtype === 'BF16') for (let i = 0; i < k; i++) u32[i0 + i] = piece[i]! << 16;
        else for (let i = 0; i < k; i++) data[i0 + i] = halfToFloat(piece[i]!);
      }
    } else throw new WgptError(`${this.path}: tensor ${name} has dtype ${t.dtype}; supported: F32, F16, BF16`);
    return { shape: t.shape, data };
  }

  close(): void {
    closeSync(this.fd);
  }
}

export function openSafetensors(path: string): SafetensorsFile {
  return new SafetensorsFile(path);
}

/** Every tensor of a file (for a few tensors of a big file, use openSafetensors and read them one by one). */
export function readSafetensors(path: string): { tensors: Map<string, NamedTensor>; metadata: Record<string, string> } {
  const f = openSafetensors(path);
  try {
    const tensors = new Map<string, NamedTensor>();
    for (const name of f.entries.keys()) tensors.set(name, f.read(name));
    return { tensors, metadata: { ...f.metadata } };
  } finally {
    f.close();
  }
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/** A tensor to write: its data, or a function producing it when its turn comes (so only one is in memory). */
export interface TensorToWrite {
  shape: number[];
  data: Float32Array | (() => Float32Array);
}

export function writeSafetensors(
  path: string,
  tensors: Map<string, TensorToWrite>,
  metadata: Record<string, string> = {},
): void {
  const check = (name: string, t: TensorToWrite, data: Float32Array, count: number) => {
    if (data.length !== count) {
      throw new WgptError(`writeSafetensors: ${name} has ${data.length} values for shape [${t.shape}]`);
    }
  };
  const header: Record<string, unknown> = { __metadata__: metadata };
  let off = 0;
  for (const [name, t] of tensors) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (typeof t.data !== 'function') check(name, t, t.data, count);
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [off, off + 4 * count] };
    off += 4 * count;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so the data starts 8-byte aligned (as the reference writer does).
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  function* chunks(): Generator<ArrayBufferView> {
    yield len;
    yield Buffer.from(json, 'utf8');
    for (const [name, t] of tensors) {
      const data = typeof t.data === 'function' ? t.data() : t.data;
      const count = t.shape.reduce((a, b) => a * b, 1);
      check(name, t, data, count);
      yield data;
    }
  }
  writeFileAtomic(path, chunks());
}
