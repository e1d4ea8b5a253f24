import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  exportHfGpt2,
  importHfGpt2,
  makeConfig,
  paramCount,
  paramOffsets,
  PRESETS,
  readLlmcModel,
  readSafetensors,
  writeLlmcModel,
  writeSafetensors,
} from './index.ts';

const dir = mkdtempSync(join(tmpdir(), 'wgpt-gpt2-'));
const tiny = makeConfig({ maxT: 16, V: 50, L: 2, NH: 2, C: 8 });
const params = Float32Array.from({ length: paramCount(tiny) }, (_, i) => Math.sin(i * 0.37));

describe('GPT-2 config', () => {
  it('has the paper sizes', () => {
    // GPT-2 124M with llm.c's padded vocabulary: 124,475,904 parameters (llm.c prints this number).
    expect(paramCount(PRESETS.d12!)).toBe(124_475_904);
    expect(PRESETS.d12!.Vp).toBe(50304);
    expect(paramCount(PRESETS.d48!)).toBeGreaterThan(1.55e9);
  });
  it('rejects impossible shapes', () => {
    expect(() => makeConfig({ L: 2, NH: 3, C: 8 })).toThrow(/divisible by heads/);
  });
});

describe("llm.c's model file", () => {
  it('round-trips and writes llm.c\'s header', () => {
    const p = join(dir, 'm.bin');
    writeLlmcModel(p, { config: tiny, params });
    const raw = readFileSync(p);
    expect(Array.from(new Int32Array(raw.buffer, raw.byteOffset, 8))).toEqual([20240326, 3, 16, 50, 2, 2, 8, 64]);
    expect(raw.byteLength).toBe(1024 + 4 * paramCount(tiny));
    const back = readLlmcModel(p);
    expect(back.config).toEqual(tiny);
    expect(Buffer.from(back.params.buffer).equals(Buffer.from(params.buffer))).toBe(true);
  });

  it('names the file and the problem for bad input', () => {
    const p = join(dir, 'bad.bin');
    writeFileSync(p, Buffer.alloc(100));
    expect(() => readLlmcModel(p)).toThrow(/bad\.bin: 100 bytes is too short/);
    const h = new Int32Array(256);
    h.set([20240520, 1]);
    writeFileSync(p, Buffer.from(h.buffer));
    expect(() => readLlmcModel(p)).toThrow(/bad\.bin: bad magic 20240520 .*token shards use 20240520/);
    h.set([20240326, 5, 16, 50, 2, 2, 8, 64]);
    writeFileSync(p, Buffer.from(h.buffer));
    expect(() => readLlmcModel(p)).toThrow(/version 5 is not supported .*bf16/);
    h.set([20240326, 3, 16, 50, 2, 2, 8, 64]);
    writeFileSync(p, Buffer.concat([Buffer.from(h.buffer), Buffer.alloc(40)]));
    expect(() => readLlmcModel(p)).toThrow(/needs \d+ \(\d+ parameters\)/);
    expect(() => readLlmcModel(join(dir, 'missing.bin'))).toThrow(/no such model file/);
  });
});

describe('safetensors with Hugging Face GPT-2 names', () => {
  it('exports Conv1D weights transposed and imports them back exactly', () => {
    const p = join(dir, 'model.safetensors');
    exportHfGpt2(p, { config: tiny, params });
    const { tensors } = readSafetensors(p);
    const offs = paramOffsets(tiny);
    // h.1.attn.c_attn.weight is (C, 3C): element [c][o] = our qkvw[layer 1][o][c].
    const t = tensors.get('h.1.attn.c_attn.weight')!;
    expect(t.shape).toEqual([8, 24]);
    const C = 8;
    const base = offs.qkvw!.offset + 1 * 3 * C * C;
    expect(t.data[3 * 24 + 5]).toBe(params[base + 5 * C + 3]);
    expect(tensors.get('wte.weight')!.shape).toEqual([50, 8]); // V rows, not Vp
    const back = importHfGpt2(p);
    expect(back.config).toEqual(tiny);
    // Padded wte rows come back as zeros; everything else is identical.
    const want = params.slice();
    want.fill(0, offs.wte!.offset + 50 * C, offs.wte!.offset + 64 * C);
    expect(Buffer.from(back.params.buffer).equals(Buffer.from(want.buffer))).toBe(true);
  });

  it('reads the transformer.-prefixed names, and bf16 data', () => {
    const p = join(dir, 'prefixed.safetensors');
    exportHfGpt2(p, { config: tiny, params });
    const { tensors, metadata } = readSafetensors(p);
    const prefixed = new Map([...tensors].map(([k, v]) => [`transformer.${k}`, v]));
    writeSafetensors(p, prefixed, metadata);
    expect(importHfGpt2(p).config).toEqual(tiny);
  });

  it('reports a missing tensor and a wrong shape by name', () => {
    const p = join(dir, 'broken.safetensors');
    exportHfGpt2(p, { config: tiny, params });
    const { tensors, metadata } = readSafetensors(p);
    tensors.delete('h.1.mlp.c_fc.bias');
    writeSafetensors(p, tensors, metadata);
    expect(() => importHfGpt2(p)).toThrow(/broken\.safetensors: no tensor named h\.1\.mlp\.c_fc\.bias/);
    const { tensors: t2 } = readSafetensors(join(dir, 'model.safetensors'));
    t2.set('h.0.attn.c_proj.weight', { shape: [4, 16], data: new Float32Array(64) });
    writeSafetensors(p, t2, metadata);
    expect(() => importHfGpt2(p)).toThrow(/h\.0\.attn\.c_proj\.weight has shape \[4,16\], expected \[8,8\]/);
  });
});
