// The pipeline's output files: zero-padded unit numbers, atomic writes, completion markers and the per-document
// removal log. Every file is written under a temporary name and renamed when complete.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export const pad = (n: number) => String(n).padStart(5, '0');

export function writeAtomic(file: string, data: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

const markerPath = (out: string, step: string, unit?: number) => path.join(out, 'done', unit === undefined ? step : `${step}.${pad(unit)}`);
export const isDone = (out: string, step: string, unit?: number) => fs.existsSync(markerPath(out, step, unit));
export const markDone = (out: string, step: string, unit?: number) => writeAtomic(markerPath(out, step, unit), new Date().toISOString() + '\n');

/** Per-document removal log: one JSON line {id, url, stage, reason[, detail]} per removed document, streamed to a temp file and renamed. */
export class RemovedLog {
  private lines: string[] = [];
  private readonly tmp: string;
  private readonly fd: number;
  constructor(readonly file: string) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const dir = path.dirname(file), base = path.basename(file);
    for (const f of fs.readdirSync(dir)) if (f.startsWith(`${base}.tmp-`)) fs.rmSync(path.join(dir, f), { force: true }); // interrupted attempt
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
