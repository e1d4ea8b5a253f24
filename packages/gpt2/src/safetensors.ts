// safetensors (Hugging Face's tensor file): u64 little-endian header length N, N bytes of JSON
// { name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__": {...} }, then the raw data. F32 only here,
// plus F16/BF16 on read (converted to f32), since GPT-2 checkpoints in the wild come in all three.
import { readFileSync } from 'node:fs';
import { WgptError } from '@wgpt/runtime';
import { writeFileAtomic } from './atomic.ts';

export interface NamedTensor {
  shape: number[];
  data: Float32Array;
}

export function readSafetensors(path: string): { tensors: Map<string, NamedTensor>; metadata: Record<string, string> } {
  const buf = readFileSync(path);
  if (buf.byteLength < 8) throw new WgptError(`${path}: too short for a safetensors header`);
  const n = Number(buf.readBigUInt64LE(0));
  if (n > buf.byteLength - 8 || n > 100 << 20) throw new WgptError(`${path}: header length ${n} exceeds the file (${buf.byteLength} bytes)`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  } catch (e) {
    throw new WgptError(`${path}: header is not JSON: ${(e as Error).message}`);
  }
  const base = 8 + n;
  const tensors = new Map<string, NamedTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = v as Record<string, string>;
      continue;
    }
    const t = v as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const [begin, end] = t.data_offsets;
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (begin < 0 || end > buf.byteLength - base || end < begin) throw new WgptError(`${path}: tensor ${name} has data_offsets [${begin}, ${end}] outside the file`);
    const raw = buf.subarray(base + begin, base + end);
    const bytesPer = t.dtype === 'F32' ? 4 : t.dtype === 'F16' || t.dtype === 'BF16' ? 2 : 0;
    if (!bytesPer) throw new WgptError(`${path}: tensor ${name} has dtype ${t.dtype}; supported: F32, F16, BF16`);
    if (raw.byteLength !== count * bytesPer) throw new WgptError(`${path}: tensor ${name} holds ${raw.byteLength} bytes, its shape [${t.shape}] of ${t.dtype} needs ${count * bytesPer}`);
    const data = new Float32Array(count);
    if (t.dtype === 'F32') new Uint8Array(data.buffer).set(raw);
    else if (t.dtype === 'BF16') {
      const u32 = new Uint32Array(data.buffer);
      for (let i = 0; i < count; i++) u32[i] = raw.readUInt16LE(2 * i) << 16;
    } else for (let i = 0; i < count; i++) data[i] = halfToFloat(raw.readUInt16LE(2 * i));
    tensors.set(name, { shape: t.shape, data });
  }
  return { tensors, metadata };
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

export function writeSafetensors(path: string, tensors: Map<string, NamedTensor>, metadata: Record<string, string> = {}): void {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let off = 0;
  for (const [name, t] of tensors) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw new WgptError(`writeSafetensors: ${name} has ${t.data.length} values for shape [${t.shape}]`);
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [off, off + 4 * count] };
    off += 4 * count;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so the data starts 8-byte aligned (as the reference writer does).
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  writeFileAtomic(path, [len, Buffer.from(json, 'utf8'), ...[...tensors.values()].map((t) => t.data)]);
}
