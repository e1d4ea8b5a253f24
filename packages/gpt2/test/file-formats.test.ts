// Model, training-state and safetensors files: read and written in pieces (any size), and damaged ones rejected
// with one line naming the file.
//
// Node cannot read a file over 2 GiB into one buffer (GPT-2 774M is 3.1 GB). Here that limit is scaled down to
// 4 KB: readFileSync of a model, state or safetensors file over 4 KB throws as Node's does, and so does a single
// read call over 4 KB, so files of a few KB take the same path a 6 GB one does.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { WgptError } from '@wgpt/runtime';
import {
  exportHfGpt2,
  importHfGpt2,
  ioChunkBytes,
  loadCheckpoint,
  makeConfig,
  paramCount,
  readLlmcModel,
  readSafetensors,
  saveCheckpoint,
  setIoChunkBytes,
  writeLlmcModel,
  type TrainState,
} from '../src/index.ts';

const LIMIT = 4096;
// vi.mock runs before the module's constants exist, so the factory spells LIMIT out.
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const ours = /(model\.bin|state\.bin|\.safetensors)$/;
  const big = (p: unknown) => typeof p === 'string' && ours.test(p) && fs.statSync(p).size > 4096;
  const readFileSync = ((p: string, ...rest: unknown[]) => {
    if (big(p)) throw new RangeError(`${p}: File size is greater than the (scaled-down) limit`);
    return (fs.readFileSync as (...a: unknown[]) => unknown)(p, ...rest);
  }) as typeof fs.readFileSync;
  const readSync = ((fd: number, buf: NodeJS.ArrayBufferView, off: number, len: number, pos: number | null) => {
    if (typeof len === 'number' && len > 4096)
      throw new RangeError(`read of ${len} bytes over the (scaled-down) limit`);
    return fs.readSync(fd, buf, off, len, pos);
  }) as typeof fs.readSync;
  return { ...fs, default: { ...fs, readFileSync, readSync }, readFileSync, readSync };
});

const real = await vi.importActual<typeof import('node:fs')>('node:fs');
const dir = mkdtempSync(join(tmpdir(), 'wgpt-files-'));
// 4,000+ parameters: model.bin is ~17 KB and state.bin ~33 KB, several times the limit.
const config = makeConfig({ maxT: 8, V: 40, L: 2, NH: 2, C: 8 });
const params = Float32Array.from({ length: paramCount(config) }, (_, i) => Math.sin(i * 0.37) * (1 + (i % 7)));

let oldChunk = 0;
beforeAll(() => {
  oldChunk = setIoChunkBytes(1000); // not a multiple of 4 or 3: pieces end inside values
});
afterAll(() => {
  setIoChunkBytes(oldChunk);
});

function state(): TrainState {
  const sizes = [100, paramCount(config) - 100];
  const fill = (k: number) => sizes.map((s) => Float32Array.from({ length: s }, (_, i) => Math.cos(i * k)));
  const optimizer = { step: 7, m: fill(1), v: fill(2) };
  return { step: 7, loader: { epoch: 1, shard: 0, window: 3 }, optimizer, seed: 11, settings: { lr: 0.001 } };
}

const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const same = (a: Float32Array, b: Float32Array) => bytes(a).equals(bytes(b));

describe('files larger than one read', () => {
  it('the scaled-down limit holds (a whole-file read of these files fails)', () => {
    const p = join(dir, 'limit-model.bin');
    writeLlmcModel(p, { config, params });
    expect(ioChunkBytes()).toBe(1000);
    expect(() => readFileSync(p)).toThrow(/limit/);
    expect(real.readFileSync(p).length).toBeGreaterThan(LIMIT);
  });

  it("llm.c's model file round-trips through many pieces", () => {
    const p = join(dir, 'model.bin');
    writeLlmcModel(p, { config, params });
    let pieces = 0;
    const back = readLlmcModel(p, { onPiece: () => pieces++ });
    expect(back.config).toEqual(config);
    expect(same(back.params, params)).toBe(true);
    expect(pieces).toBe(Math.ceil((4 * params.length) / 1000));
  });

  it('a checkpoint (model.bin + state.bin) round-trips, hash verified, through many pieces', async () => {
    const ck = join(dir, 'checkpoint');
    const s = state();
    await saveCheckpoint(ck, { config, params }, s);
    const back = loadCheckpoint(ck);
    expect(same(back.model.params, params)).toBe(true);
    expect(back.state.optimizer.m.every((m, i) => same(m, s.optimizer.m[i]!))).toBe(true);
    expect(back.state.optimizer.v.every((v, i) => same(v, s.optimizer.v[i]!))).toBe(true);
    expect({ ...back.state, optimizer: undefined }).toEqual({ ...s, optimizer: undefined });
  });

  it('Hugging Face safetensors export and import go tensor by tensor through many pieces', () => {
    const p = join(dir, 'model.safetensors');
    exportHfGpt2(p, { config, params });
    const back = importHfGpt2(p);
    expect(back.config).toEqual(config);
    const want = params.slice();
    want.fill(0, config.V * config.C, config.Vp * config.C); // padded wte rows are not in the HF file
    expect(same(back.params, want)).toBe(true);
  });

  it('F16 and BF16 tensors convert across piece boundaries', () => {
    // Known encodings: f16 0x3c00 = 1, 0xc000 = -2, 0x3800 = 0.5, 0x7bff = 65504, 0x0001 = 2^-24 (subnormal),
    // 0x7c00 = +inf; bf16 0x3f80 = 1, 0xc020 = -2.5, 0x4049 = 3.140625.
    const f16 = [0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x7c00];
    const f16Want = [1, -2, 0.5, 65504, 2 ** -24, Infinity];
    const bf16 = [0x3f80, 0xc020, 0x4049];
    const bf16Want = [1, -2.5, 3.140625];
    const n = 700; // 1400 bytes each: more than one 1000-byte piece
    const a = Uint16Array.from({ length: n }, (_, i) => f16[i % f16.length]!);
    const b = Uint16Array.from({ length: n }, (_, i) => bf16[i % bf16.length]!);
    const header = JSON.stringify({
      a: { dtype: 'F16', shape: [n], data_offsets: [0, 2 * n] },
      b: { dtype: 'BF16', shape: [7, 100], data_offsets: [2 * n, 4 * n] },
    });
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    const p = join(dir, 'halves.safetensors');
    writeFileSync(p, Buffer.concat([len, Buffer.from(header), Buffer.from(a.buffer), Buffer.from(b.buffer)]));
    const { tensors } = readSafetensors(p);
    expect([...tensors.get('a')!.data]).toEqual(Array.from({ length: n }, (_, i) => f16Want[i % f16.length]));
    expect(tensors.get('b')!.shape).toEqual([7, 100]);
    expect([...tensors.get('b')!.data]).toEqual(Array.from({ length: n }, (_, i) => bf16Want[i % bf16.length]));
  });
});

/** The error of `f`: a WgptError whose message is one line. */
function userError(f: () => unknown): string {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err, 'expected a WgptError').toBeInstanceOf(WgptError);
  const msg = (err as Error).message;
  expect(msg).not.toContain('\n');
  return msg;
}

describe('damaged training state', () => {
  /** A copy of a good checkpoint with state.bin's JSON header replaced by `json`. */
  async function withMeta(name: string, edit: (meta: Record<string, unknown>) => unknown): Promise<string> {
    const ck = join(dir, name);
    await saveCheckpoint(ck, { config, params }, state());
    const file = join(ck, 'state.bin');
    const raw = real.readFileSync(file);
    const n = raw.readUInt32LE(8);
    const meta = JSON.parse(raw.toString('utf8', 12, 12 + n)) as Record<string, unknown>;
    const json = Buffer.from(JSON.stringify(edit(meta)));
    const head = Buffer.from(raw.subarray(0, 12));
    head.writeUInt32LE(json.length, 8);
    writeFileSync(file, Buffer.concat([head, json, raw.subarray(12 + n)]));
    return ck;
  }

  type Meta = Record<string, unknown>;
  it.each([
    ['null', () => null, /state\.bin: its JSON header is null, not an object/],
    ['an array', () => [1, 2], /state\.bin: its JSON header is \[1,2\], not an object/],
    ['a string', () => 'x', /state\.bin: its JSON header is "x", not an object/],
    [
      'no step',
      (m: Meta) => ({ ...m, step: undefined }),
      /state\.bin: field "step" is missing, expected a non-negative/,
    ],
    ['a string step', (m: Record<string, unknown>) => ({ ...m, step: '7' }), /field "step" is "7"/],
    ['sizes not a list', (m: Meta) => ({ ...m, sizes: 5 }), /field "sizes" is 5, expected a list of tensor sizes/],
    ['a negative size', (m: Record<string, unknown>) => ({ ...m, sizes: [-1, 2] }), /field "sizes" is \[-1,2\]/],
    ['loader null', (m: Meta) => ({ ...m, loader: null }), /field "loader" is null, expected an object/],
    ['loader without window', (m: Meta) => ({ ...m, loader: { epoch: 0, shard: 0 } }), /"loader\.window" is missing/],
    ['a numeric hash', (m: Meta) => ({ ...m, sha256: 12 }), /field "sha256" is 12, expected a SHA-256/],
    ['settings an array', (m: Meta) => ({ ...m, settings: [] }), /field "settings" is \[\], expected an object/],
    ['another version', (m: Record<string, unknown>) => ({ ...m, version: 9 }), /state\.bin: training state version 9/],
    ['sizes of another model', (m: Meta) => ({ ...m, sizes: [1, 2] }), /state\.bin: \d+ bytes, expected \d+ for 3/],
  ])('a JSON header that is %s is a one-line error naming the file', async (name, edit, want) => {
    const ck = await withMeta(`bad-${name.replace(/\W+/g, '-')}`, edit);
    expect(userError(() => loadCheckpoint(ck))).toMatch(want);
  });

  it('a header length beyond the file, and bad magic', async () => {
    const ck = join(dir, 'bad-len');
    await saveCheckpoint(ck, { config, params }, state());
    const file = join(ck, 'state.bin');
    const raw = real.readFileSync(file);
    raw.writeUInt32LE(0x7fffffff, 8);
    writeFileSync(file, raw);
    expect(userError(() => loadCheckpoint(ck))).toMatch(
      /state\.bin: its JSON header length 2147483647 exceeds the file/,
    );
    raw.write('NOTSTATE', 0, 'ascii');
    writeFileSync(file, raw);
    expect(userError(() => loadCheckpoint(ck))).toMatch(/state\.bin: not a wgpt training state \(bad magic\)/);
  });
});

describe('damaged safetensors headers', () => {
  function file(name: string, header: unknown, dataBytes = 16, rawHeader?: string): string {
    const text = rawHeader ?? JSON.stringify(header);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(Buffer.byteLength(text)));
    const p = join(dir, `${name}.safetensors`);
    writeFileSync(p, Buffer.concat([len, Buffer.from(text), Buffer.alloc(dataBytes)]));
    return p;
  }
  const t = (over: Record<string, unknown> = {}) => ({ dtype: 'F32', shape: [2], data_offsets: [0, 8], ...over });

  it.each([
    ['null', null, /h-null\.safetensors: header is null, not a JSON object of tensors/],
    ['array', [1], /h-array\.safetensors: header is \[1\], not a JSON object of tensors/],
    ['number', 5, /header is 5, not a JSON object/],
    ['entry-null', { w: null }, /h-entry-null\.safetensors: tensor w: its entry is null, not an object/],
    ['no-offsets', { w: t({ data_offsets: undefined }) }, /tensor w: data_offsets undefined is not \[begin, end\]/],
    ['offsets-negative', { w: t({ data_offsets: [-8, 0] }) }, /tensor w: data_offsets \[-8,0\] is not \[begin, end\]/],
    ['offsets-reversed', { w: t({ data_offsets: [8, 0] }) }, /tensor w: data_offsets \[8, 0\] lie outside the 16 data/],
    ['offsets-beyond', { w: t({ data_offsets: [8, 24] }) }, /tensor w: data_offsets \[8, 24\] lie outside the 16 data/],
    ['offsets-strings', { w: t({ data_offsets: ['0', '8'] }) }, /data_offsets \["0","8"\] is not \[begin, end\]/],
    ['shape-bad', { w: t({ shape: 'x' }) }, /tensor w: shape "x" is not a list of sizes/],
    ['size-mismatch', { w: t({ shape: [3] }) }, /tensor w: holds 8 bytes, its shape \[3\] of F32 needs 12/],
    ['dtype-missing', { w: t({ dtype: undefined }) }, /tensor w: dtype undefined is not a string/],
    ['overlap', { a: t(), b: t({ data_offsets: [4, 12] }) }, /tensors a \[0, 8\] and b \[4, 12\] overlap/],
    ['metadata', { __metadata__: [], w: t() }, /__metadata__ must be an object of strings/],
  ])('a header that is %s is a one-line error naming the file', (name, header, want) => {
    const p = file(`h-${name}`, header);
    expect(userError(() => readSafetensors(p))).toMatch(want);
    expect(userError(() => importHfGpt2(p))).toMatch(want);
  });

  it('a header length beyond the file, and text that is not JSON', () => {
    const p = join(dir, 'short.safetensors');
    const b = Buffer.alloc(16);
    b.writeBigUInt64LE(1000n);
    writeFileSync(p, b);
    expect(userError(() => readSafetensors(p))).toMatch(/short\.safetensors: header length 1000 exceeds the file \(16/);
    const notJson = file('notjson', null, 0, '{"a": ');
    expect(userError(() => readSafetensors(notJson))).toMatch(/notjson\.safetensors: header is not JSON/);
  });
});
