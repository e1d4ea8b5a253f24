// A training checkpoint is a folder: model.bin (llm.c's model file, usable by llm.c and `wgpt sample`) and
// state.bin (our training state: AdamW moments and step, data-loader position, seed, the run's settings), tied
// together by a SHA-256 over the parameters and moments recorded in state.bin.
//
// Writing `dir` (fault points, see atomic.ts, before every rename and removal):
//   1. both files go to a fresh `dir.tmp-<pid>-<random>` (each written to a temp file, fsynced, renamed);
//   2. if `dir` exists: `dir.old` is removed and `dir` renamed to `dir.old`;
//   3. the new folder is renamed to `dir` and the parent folder fsynced;
//   4. only now, with the newest checkpoint complete at `dir`: `dir.old` and the temp folders of dead processes
//      whose step is not newer are removed (tidyCheckpoints; a resume from `dir` does the same). A removal first
//      deletes state.bin, so a half-removed folder is never taken for a checkpoint.
// Nothing is removed unless a complete newer copy exists elsewhere, so after any sequence of crashes one of `dir`,
// `dir.old` or `dir.tmp-*` is complete, and loadCheckpoint takes the newest complete one (checked by its hash).
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readdirSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { WgptError } from '@wgpt/runtime';
import type { AdamWState } from '@wgpt/kernels';
import { faultPoint, fsyncDir, hashInPieces, readAt, renameChecked, unlinkChecked, writeFileAtomic } from './atomic.ts';
import { readLlmcModel, writeLlmcModel, type ModelFile } from './llmc.ts';
import type { LoaderState } from './loader.ts';

export interface TrainState {
  step: number;
  loader: LoaderState;
  optimizer: AdamWState;
  seed: number;
  /** The run's settings (see train.ts), to check that a resume is exact; absent in checkpoints of older versions. */
  settings?: Record<string, unknown>;
  /** Data-parallel ranks that wrote it (absent: one, or an older wgpt). */
  ranks?: number;
  /** Rows of B tokens the training source had handed out over every rank since the run began (absent: unknown). */
  rows?: number;
}

const MAGIC = 'WGPTSTAT';
const VERSION = 1;
const HEAD_BYTES = 12;
/** The JSON header holds a few numbers and the run's settings: far below this unless the file is not ours. */
const MAX_META_BYTES = 64 << 20;

interface StateMeta {
  version: number;
  step: number;
  loader: LoaderState;
  seed: number;
  optimizerStep: number;
  sizes: number[];
  sha256: string;
  settings?: Record<string, unknown>;
  ranks?: number;
  rows?: number;
}

function digest(params: Float32Array, opt: AdamWState): string {
  const h = createHash('sha256');
  hashInPieces(h, params);
  for (const m of opt.m) hashInPieces(h, m);
  for (const v of opt.v) hashInPieces(h, v);
  return h.digest('hex');
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
const show = (x: unknown): string => JSON.stringify(x)?.slice(0, 40) ?? 'missing';

/** Checks the JSON header field by field, so a damaged file is a one-line error naming the file and the field. */
function parseMeta(raw: unknown, file: string): StateMeta {
  const fail = (what: string): never => {
    throw new WgptError(`${file}: ${what}; the file is damaged or not a wgpt training state`);
  };
  if (!isObject(raw)) return fail(`its JSON header is ${show(raw)}, not an object`);
  const field = (name: string, ok: (x: unknown) => boolean, expected: string): unknown => {
    if (!ok(raw[name])) fail(`field "${name}" is ${show(raw[name])}, expected ${expected}`);
    return raw[name];
  };
  const version = field('version', (x) => typeof x === 'number', 'a number') as number;
  if (version !== VERSION) {
    throw new WgptError(`${file}: training state version ${version}; this wgpt reads version ${VERSION}`);
  }
  const loader = field('loader', isObject, 'an object') as Record<string, unknown>;
  for (const k of ['epoch', 'shard', 'window']) {
    if (!isCount(loader[k])) fail(`field "loader.${k}" is ${show(loader[k])}, expected a count`);
  }
  return {
    version,
    step: field('step', isCount, 'a non-negative integer') as number,
    loader: { epoch: loader.epoch as number, shard: loader.shard as number, window: loader.window as number },
    seed: field('seed', (x) => Number.isSafeInteger(x), 'an integer') as number,
    optimizerStep: field('optimizerStep', isCount, 'a non-negative integer') as number,
    sizes: field('sizes', (x) => Array.isArray(x) && x.every(isCount), 'a list of tensor sizes') as number[],
    sha256: field('sha256', (x) => typeof x === 'string' && /^[0-9a-f]{64}$/.test(x), 'a SHA-256 in hex') as string,
    settings: field('settings', (x) => x === undefined || isObject(x), 'an object') as StateMeta['settings'],
    ranks: field('ranks', (x) => x === undefined || (isCount(x) && x > 0), 'a rank count') as number | undefined,
    rows: field('rows', (x) => x === undefined || isCount(x), 'a count of rows') as number | undefined,
  };
}

/** Reads and checks state.bin's header; `dataAt` is where the moments start. Does not read the moments. */
function readStateHead(file: string): { meta: StateMeta; dataAt: number } {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new WgptError(`${file}: cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(HEAD_BYTES);
    if (size >= HEAD_BYTES) readAt(fd, head, 0, file);
    if (size < HEAD_BYTES || head.toString('ascii', 0, 8) !== MAGIC) {
      throw new WgptError(`${file}: not a wgpt training state (bad magic)`);
    }
    const n = head.readUInt32LE(8);
    if (n > size - HEAD_BYTES || n > MAX_META_BYTES) {
      throw new WgptError(`${file}: its JSON header length ${n} exceeds the file (${size} bytes)`);
    }
    const json = Buffer.alloc(n);
    readAt(fd, json, HEAD_BYTES, file);
    let raw: unknown;
    try {
      raw = JSON.parse(json.toString('utf8'));
    } catch {
      throw new WgptError(`${file}: its JSON header is corrupt`);
    }
    const meta = parseMeta(raw, file);
    const total = meta.sizes.reduce((a, b) => a + b, 0);
    const want = HEAD_BYTES + n + 8 * total;
    if (size !== want) throw new WgptError(`${file}: ${size} bytes, expected ${want} for ${total} moments`);
    return { meta, dataAt: HEAD_BYTES + n };
  } finally {
    closeSync(fd);
  }
}

/** Removes a checkpoint folder; state.bin goes first, so from the first step on it is no longer a checkpoint. */
function removeCheckpointDir(dir: string): void {
  if (!existsSync(dir)) return;
  unlinkChecked(join(dir, 'state.bin'));
  faultPoint('remove', dir);
  rmSync(dir, { recursive: true, force: true });
}

/** `dir.tmp-*` siblings: folders being written, or left by a crash. */
function tempFolders(dir: string): string[] {
  const parent = dirname(dir);
  const prefix = `${basename(dir)}.tmp-`;
  if (!existsSync(parent)) return [];
  return readdirSync(parent)
    .filter((n) => n.startsWith(prefix))
    .sort()
    .map((n) => join(parent, n));
}

/** Whether a temp folder may belong to a running process (another trainer writing it right now). */
function writerAlive(tmp: string): boolean {
  const pid = Number(/\.tmp-(\d+)-/.exec(basename(tmp))?.[1]);
  if (!Number.isInteger(pid) || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The step of a checkpoint folder from its state.bin header (cheap), or null when it has none or a broken one. */
function stepOf(dir: string): number | null {
  try {
    const { meta } = readStateHead(join(dir, 'state.bin'));
    const model = join(dir, 'model.bin');
    const total = meta.sizes.reduce((a, b) => a + b, 0);
    if (!existsSync(model) || statSync(model).size !== 1024 + 4 * total) return null;
    return meta.step;
  } catch (e) {
    if (e instanceof WgptError) return null;
    throw e;
  }
}

/** `extra`: more files for the folder (name → text), written with the others, so they come and go with it. */
export async function saveCheckpoint(
  dir: string,
  model: ModelFile,
  state: TrainState,
  extra: Record<string, string> = {},
): Promise<void> {
  const tmp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  mkdirSync(tmp, { recursive: true });
  writeLlmcModel(`${tmp}/model.bin`, model);
  for (const [name, text] of Object.entries(extra)) writeFileAtomic(join(tmp, name), [Buffer.from(text, 'utf8')]);
  const meta: StateMeta = {
    version: VERSION,
    step: state.step,
    loader: state.loader,
    seed: state.seed,
    optimizerStep: state.optimizer.step,
    sizes: state.optimizer.m.map((m) => m.length),
    sha256: digest(model.params, state.optimizer),
    ...(state.settings ? { settings: state.settings } : {}),
    ...(state.ranks === undefined ? {} : { ranks: state.ranks }),
    ...(state.rows === undefined ? {} : { rows: state.rows }),
  };
  const json = Buffer.from(JSON.stringify(meta), 'utf8');
  const head = Buffer.alloc(HEAD_BYTES);
  head.write(MAGIC, 0, 'ascii');
  head.writeUInt32LE(json.byteLength, 8);
  writeFileAtomic(`${tmp}/state.bin`, [head, json, ...state.optimizer.m, ...state.optimizer.v]);
  const old = `${dir}.old`;
  if (existsSync(dir)) {
    if (stepOf(dir) !== null) {
      removeCheckpointDir(old);
      renameChecked(dir, old);
    } else removeCheckpointDir(dir); // damaged; the new folder is complete, so nothing good is lost
  }
  renameChecked(tmp, dir);
  fsyncDir(dirname(dir));
  tidyCheckpoints(dir, state.step);
}

/**
 * Removes what crashes left beside `dir` (`dir.old`, temp folders of dead writers) that is not newer than `step`.
 * Only for a `dir` known to hold a complete checkpoint of `step` (just written, or just loaded and verified).
 */
export function tidyCheckpoints(dir: string, step: number): void {
  removeCheckpointDir(`${dir}.old`);
  for (const t of tempFolders(dir)) {
    const s = stepOf(t);
    if (!writerAlive(t) && (s === null || s <= step)) removeCheckpointDir(t);
  }
}

/** `dir`, `dir.old` and `dir.tmp-*`, newest step first (a tie goes to `dir`, then `dir.old`), with their steps. */
function candidates(dir: string): { path: string; step: number | null }[] {
  const all = [dir, `${dir}.old`, ...tempFolders(dir)].filter((p) => existsSync(p));
  return all
    .map((path, order) => ({ path, step: stepOf(path), order }))
    .sort((a, b) => (b.step ?? -1) - (a.step ?? -1) || a.order - b.order)
    .map(({ path, step }) => ({ path, step }));
}

function loadFrom(dir: string): { model: ModelFile; state: TrainState } {
  const file = join(dir, 'state.bin');
  const { meta, dataAt } = readStateHead(file);
  const h = createHash('sha256');
  const model = readLlmcModel(join(dir, 'model.bin'), { onPiece: (p) => h.update(p) });
  const total = meta.sizes.reduce((a, b) => a + b, 0);
  if (total !== model.params.length) {
    throw new WgptError(`${file}: moments for ${total} parameters, but model.bin has ${model.params.length}`);
  }
  const fd = openSync(file, 'r');
  const m: Float32Array[] = [];
  const v: Float32Array[] = [];
  try {
    let at = dataAt;
    for (const list of [m, v]) {
      for (const s of meta.sizes) {
        const a = new Float32Array(s);
        readAt(fd, a, at, file, (p) => h.update(p));
        at += 4 * s;
        list.push(a);
      }
    }
  } finally {
    closeSync(fd);
  }
  if (h.digest('hex') !== meta.sha256) {
    throw new WgptError(`${dir}: checksum mismatch between model.bin and state.bin (corrupt or torn checkpoint)`);
  }
  const optimizer: AdamWState = { step: meta.optimizerStep, m, v };
  const { step, loader, seed, settings, ranks, rows } = meta;
  const dist = { ...(ranks === undefined ? {} : { ranks }), ...(rows === undefined ? {} : { rows }) };
  return { model, state: { step, loader, optimizer, seed, ...(settings ? { settings } : {}), ...dist } };
}

/** A run folder given instead of its checkpoint (`--resume out/run1`) means out/run1/checkpoint. */
export function checkpointDirOf(dirIn: string): string {
  const hasOwn = existsSync(join(dirIn, 'state.bin')) || existsSync(`${dirIn}.old`) || tempFolders(dirIn).length > 0;
  const sub = join(dirIn, 'checkpoint');
  if (!hasOwn && (existsSync(sub) || existsSync(`${sub}.old`) || tempFolders(sub).length)) return sub;
  return dirIn;
}

export interface LoadedCheckpoint {
  model: ModelFile;
  state: TrainState;
  /** The folder it came from: `dir`, or `dir.old` / `dir.tmp-*` after a crash. */
  dir: string;
  /** Newer or equal folders passed over, each with the reason (for the log). */
  skipped: string[];
}

/**
 * The newest complete checkpoint at `dir` or beside it (`dir.old`, `dir.tmp-*` left by a crash), verified by its
 * SHA-256. Throws a WgptError naming each folder tried and what was wrong when none is complete.
 */
export function loadCheckpoint(dirIn: string): LoadedCheckpoint {
  const dir = checkpointDirOf(dirIn);
  const list = candidates(dir);
  if (!list.length) throw new WgptError(`${dirIn}: no checkpoint (model.bin + state.bin) there`);
  const problems: string[] = [];
  for (const c of list) {
    try {
      return { ...loadFrom(c.path), dir: c.path, skipped: problems };
    } catch (e) {
      if (!(e instanceof WgptError)) throw e;
      problems.push(e.message);
    }
  }
  if (problems.length === 1) throw new WgptError(problems[0]);
  throw new WgptError(`${dirIn}: no complete checkpoint among ${list.length} folders: ${problems.join('; ')}`);
}

/**
 * The model file of a checkpoint folder for sampling or evaluation: the newest folder among `dir`, `dir.old` and
 * `dir.tmp-*` whose state.bin header and model.bin size are whole (model.bin is itself written atomically), or
 * `dir/model.bin` for a folder that holds only a model.
 */
export function checkpointModelPath(dirIn: string): string {
  const dir = checkpointDirOf(dirIn);
  const best = candidates(dir).find((c) => c.step !== null);
  return join(best?.path ?? dir, 'model.bin');
}

/** Removes `dir` and every `dir.old` / `dir.tmp-*` beside it (a run started over). */
export function removeCheckpoints(dir: string): void {
  for (const d of [dir, `${dir}.old`, ...tempFolders(dir)]) removeCheckpointDir(d);
}
