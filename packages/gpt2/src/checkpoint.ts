// A training checkpoint is a folder: model.bin (llm.c's model file, usable by llm.c and `wgpt sample`) and
// state.bin (our training state: AdamW moments and step, data-loader position, seed), tied together by a SHA-256
// over the parameters and moments recorded in state.bin.
// Writing: both files go to a fresh temp folder (each fsynced), the old folder is renamed aside, the new one
// renamed into place, the old one removed. A crash at any point leaves a complete checkpoint at `dir` or at
// `dir.old`, which loadCheckpoint falls back to.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync, mkdirSync } from 'node:fs';
import { WgptError } from '@wgpt/runtime';
import type { AdamWState } from '@wgpt/kernels';
import { writeFileAtomic } from './atomic.ts';
import { readLlmcModel, writeLlmcModel, type ModelFile } from './llmc.ts';
import type { LoaderState } from './loader.ts';

export interface TrainState {
  step: number;
  loader: LoaderState;
  optimizer: AdamWState;
  seed: number;
}

const MAGIC = 'WGPTSTAT';

function digest(params: Float32Array, opt: AdamWState): string {
  const h = createHash('sha256');
  const feed = (a: Float32Array) => h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  feed(params);
  for (const m of opt.m) feed(m);
  for (const v of opt.v) feed(v);
  return h.digest('hex');
}

export async function saveCheckpoint(dir: string, model: ModelFile, state: TrainState): Promise<void> {
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  writeLlmcModel(`${tmp}/model.bin`, model);
  const meta = {
    version: 1,
    step: state.step,
    loader: state.loader,
    seed: state.seed,
    optimizerStep: state.optimizer.step,
    sizes: state.optimizer.m.map((m) => m.length),
    sha256: digest(model.params, state.optimizer),
  };
  const json = Buffer.from(JSON.stringify(meta), 'utf8');
  const head = Buffer.alloc(12);
  head.write(MAGIC, 0, 'ascii');
  head.writeUInt32LE(json.byteLength, 8);
  writeFileAtomic(`${tmp}/state.bin`, [head, json, ...state.optimizer.m, ...state.optimizer.v]);
  const old = `${dir}.old`;
  rmSync(old, { recursive: true, force: true });
  if (existsSync(dir)) renameSync(dir, old);
  renameSync(tmp, dir);
  rmSync(old, { recursive: true, force: true });
}

export function loadCheckpoint(dirIn: string): { model: ModelFile; state: TrainState } {
  let dir = dirIn;
  if (!existsSync(`${dir}/state.bin`) && existsSync(`${dir}.old/state.bin`)) dir = `${dir}.old`; // a crash mid-swap
  if (!existsSync(`${dir}/state.bin`)) throw new WgptError(`${dirIn}: no checkpoint (model.bin + state.bin) there`);
  const model = readLlmcModel(`${dir}/model.bin`);
  const raw = readFileSync(`${dir}/state.bin`);
  if (raw.byteLength < 12 || raw.toString('ascii', 0, 8) !== MAGIC) throw new WgptError(`${dir}/state.bin: not a wgpt training state (bad magic)`);
  const n = raw.readUInt32LE(8);
  let meta: { version: number; step: number; loader: LoaderState; seed: number; optimizerStep: number; sizes: number[]; sha256: string };
  try {
    meta = JSON.parse(raw.toString('utf8', 12, 12 + n));
  } catch {
    throw new WgptError(`${dir}/state.bin: its JSON header is corrupt`);
  }
  const total = meta.sizes.reduce((a, b) => a + b, 0);
  if (raw.byteLength !== 12 + n + 8 * total) throw new WgptError(`${dir}/state.bin: ${raw.byteLength} bytes, expected ${12 + n + 8 * total} for ${total} moments`);
  const floats = new Float32Array(raw.buffer.slice(raw.byteOffset + 12 + n, raw.byteOffset + raw.byteLength));
  const m: Float32Array[] = [];
  const v: Float32Array[] = [];
  let off = 0;
  for (const s of meta.sizes) {
    m.push(floats.slice(off, off + s));
    off += s;
  }
  for (const s of meta.sizes) {
    v.push(floats.slice(off, off + s));
    off += s;
  }
  const optimizer: AdamWState = { step: meta.optimizerStep, m, v };
  if (digest(model.params, optimizer) !== meta.sha256) throw new WgptError(`${dir}: checksum mismatch between model.bin and state.bin (corrupt or torn checkpoint)`);
  return { model, state: { step: meta.step, loader: meta.loader, optimizer, seed: meta.seed } };
}
