// The pipeline's output files: zero-padded unit numbers, atomic writes, completion markers and the per-document
// removal log. Every file is written under a temporary name and renamed when complete.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { WgptError } from '@wgpt/base';

export const pad = (n: number) => String(n).padStart(5, '0');

/**
 * Creates `dir` and its missing parents one level at a time, and fails naming `dir` when that is not possible.
 * (Node's `mkdirSync(dir, { recursive: true })` never returns for some paths, e.g. /proc/x on Linux: mkdir says
 * ENOENT although the parent exists, and Node retries the parent for ever.)
 */
export function makeDirs(dir: string, what = 'output directory'): void {
  const abs = path.resolve(dir);
  const missing: string[] = [];
  for (let d = abs; ; d = path.dirname(d)) {
    let st: fs.Stats | undefined;
    try { st = fs.statSync(d); } catch (e) {
      // ENOTDIR: a file on the way, found and named one level up.
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw cannotCreate(dir, what, e);
    }
    if (st) {
      if (!st.isDirectory()) throw new WgptError(`cannot create the ${what} ${dir}: ${d} is not a directory`);
      break;
    }
    missing.push(d);
    if (path.dirname(d) === d) break;
  }
  for (const d of missing.reverse()) {
    try { fs.mkdirSync(d); } catch (e) {
      // EEXIST: made meanwhile by another task.
      const made = (e as NodeJS.ErrnoException).code === 'EEXIST' && fs.statSync(d).isDirectory();
      if (!made) throw cannotCreate(dir, what, e);
    }
  }
  try { fs.accessSync(abs, fs.constants.W_OK); } catch (e) { throw cannotCreate(dir, what, e); }
}

function cannotCreate(dir: string, what: string, e: unknown): WgptError {
  const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
  return new WgptError(`cannot create or write the ${what} ${dir} (${code}); choose another path with -o/--output`);
}

/**
 * Writes `data` to `file` only if `file` does not exist yet, atomically (the content appears whole); false when
 * another writer got there first. For files that several tasks may create at once (plan.json, tokenizer.json).
 */
export function createExclusive(file: string, data: string): boolean {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
  fs.writeFileSync(tmp, data);
  try {
    fs.linkSync(tmp, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

export function writeAtomic(file: string, data: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

const markerPath = (out: string, step: string, unit?: number) =>
  path.join(out, 'done', unit === undefined ? step : `${step}.${pad(unit)}`);
export const isDone = (out: string, step: string, unit?: number) => fs.existsSync(markerPath(out, step, unit));
export const markDone = (out: string, step: string, unit?: number) =>
  writeAtomic(markerPath(out, step, unit), new Date().toISOString() + '\n');

/**
 * Per-document removal log: one JSON line {id, url, stage, reason[, detail]} per removed document, streamed to a
 * temp file and renamed.
 */
export class RemovedLog {
  private lines: string[] = [];
  private readonly tmp: string;
  private readonly fd: number;
  constructor(readonly file: string) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const dir = path.dirname(file), base = path.basename(file);
    // Left by an interrupted attempt (the output lock keeps two runs of one unit apart).
    for (const f of fs.readdirSync(dir)) {
      if (f.startsWith(`${base}.tmp-`)) fs.rmSync(path.join(dir, f), { force: true });
    }
    this.tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
    this.fd = fs.openSync(this.tmp, 'w');
  }
  add(id: string, url: string | undefined, stage: string, reason: string, detail?: string): void {
    this.lines.push(JSON.stringify({ id, url, stage, reason, ...(detail ? { detail } : {}) }) + '\n');
    if (this.lines.length >= 1000) this.flush();
  }
  private flush(): void {
    if (this.lines.length) fs.writeSync(this.fd, this.lines.join(''));
    this.lines = [];
  }
  finish(): void {
    this.flush();
    fs.closeSync(this.fd);
    fs.renameSync(this.tmp, this.file);
  }
}
