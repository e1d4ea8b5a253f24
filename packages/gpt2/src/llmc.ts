// llm.c's GPT-2 model file: 256 int32 header, then every parameter as fp32 in llm.c's order.
// header[0] = 20240326 (magic), [1] = 3 (fp32; llm.c's 5 is bf16), [2] = maxT, [3] = V, [4] = L, [5] = NH,
// [6] = C, [7] = Vp. A gpt2_124M.bin written by llm.c loads here, and ours loads there.
import { closeSync, openSync, statSync } from 'node:fs';
import { WgptError } from '@wgpt/runtime';
import { readAt, writeFileAtomic } from './atomic.ts';
import { paramCount, validateConfig, type GPT2Config } from './config.ts';

export const LLMC_MODEL_MAGIC = 20240326;
export const LLMC_MODEL_FP32 = 3;
const HEADER_INTS = 256;

export interface ModelFile {
  config: GPT2Config;
  /** Every parameter, flat, in llm.c's order (see paramOffsets). */
  params: Float32Array;
}

/** Reads a model file in pieces (any size); `onPiece` sees the parameter bytes as they arrive (for hashing). */
export function readLlmcModel(path: string, opts: { onPiece?: (piece: Uint8Array) => void } = {}): ModelFile {
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    throw new WgptError(`${path}: no such model file`);
  }
  if (size < HEADER_INTS * 4) throw new WgptError(`${path}: ${size} bytes is too short for llm.c's 1024-byte header`);
  const fd = openSync(path, 'r');
  try {
    const header = new Int32Array(HEADER_INTS);
    readAt(fd, header, 0, path);
    if (header[0] !== LLMC_MODEL_MAGIC)
      throw new WgptError(
        `${path}: bad magic ${header[0]} ` +
          `(an llm.c model file starts with ${LLMC_MODEL_MAGIC}; token shards use 20240520)`,
      );
    if (header[1] !== LLMC_MODEL_FP32) {
      throw new WgptError(
        `${path}: model file version ${header[1]} is not supported ` +
          `(only ${LLMC_MODEL_FP32} = fp32; llm.c's version 5 is bf16)`,
      );
    }
    const config: GPT2Config = {
      maxT: header[2]!,
      V: header[3]!,
      L: header[4]!,
      NH: header[5]!,
      C: header[6]!,
      Vp: header[7]!,
    };
    try {
      validateConfig(config);
    } catch (e) {
      throw new WgptError(`${path}: header holds an impossible config: ${(e as Error).message}`);
    }
    const n = paramCount(config);
    const want = HEADER_INTS * 4 + n * 4;
    if (size !== want)
      throw new WgptError(
        `${path}: ${size} bytes, but the header's config (${JSON.stringify(config)}) needs ${want} (${n} parameters)`,
      );
    const params = new Float32Array(n);
    readAt(fd, params, HEADER_INTS * 4, path, opts.onPiece);
    return { config, params };
  } finally {
    closeSync(fd);
  }
}

export function writeLlmcModel(path: string, m: ModelFile): void {
  validateConfig(m.config);
  const n = paramCount(m.config);
  if (m.params.length !== n)
    throw new WgptError(`writeLlmcModel: ${m.params.length} parameters given, the config needs ${n}`);
  const header = new Int32Array(HEADER_INTS);
  const c = m.config;
  header.set([LLMC_MODEL_MAGIC, LLMC_MODEL_FP32, c.maxT, c.V, c.L, c.NH, c.C, c.Vp]);
  writeFileAtomic(path, [header, m.params]);
}
