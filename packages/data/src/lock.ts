// The lock that keeps two runs of the same task off one output directory. A run cleans up what an interrupted
// earlier attempt at its units left (temp files, partial shards), so a second run of those units would delete the
// first one's files under it. Tasks of a job array (--task-index/--task-count) own disjoint units and must run at
// once, so each task locks its own file, locks/task-<index>-of-<count>.lock, holding the owner's pid, host and the
// time it started; a run also refuses to start while a live run of another task shape owns any of its units
// (task 0 of 1 owns every unit, so it waits for a whole job array). A lock whose pid is gone from this host is
// stale: the next run takes it over and says so. A lock from another host cannot be checked and counts as held.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WgptError } from '@wgpt/base';
import { createExclusive } from './outputs.ts';

export interface LockOwner {
  pid: number;
  host: string;
  taskIndex: number;
  taskCount: number;
  startedAt: string;
  /** Tells this lock apart from a later one of the same task (pids are reused). */
  token: string;
}

/** The units of `units` that task `index` of `count` owns (u mod count = index). */
const owns = (index: number, count: number, u: number) => u % count === index;

/** Whether two task shapes share a unit among `units`. */
export function tasksOverlap(a: [number, number], b: [number, number], units: number): boolean {
  for (let u = 0; u < units; u++) if (owns(a[0], a[1], u) && owns(b[0], b[1], u)) return true;
  return false;
}

/** True unless the owner is known to be gone: same host and no process with that pid. */
export function isAlive(owner: Pick<LockOwner, 'pid' | 'host'>): boolean {
  if (owner.host !== os.hostname()) return true;
  try {
    process.kill(owner.pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

function readOwner(file: string): LockOwner | null {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as LockOwner;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    // Unreadable content: written by something else; treat as held so nothing is deleted under a live run.
    return { pid: -1, host: '?', taskIndex: -1, taskCount: -1, startedAt: '?', token: '' };
  }
}

function heldError(out: string, file: string, o: LockOwner, what: string): WgptError {
  const here = o.host === os.hostname();
  const task = o.taskIndex >= 0 ? `task ${o.taskIndex} of ${o.taskCount}` : 'another run';
  return new WgptError(
    `${out}: ${what} is running there already: ${task}, pid ${o.pid} on ${here ? 'this host' : `host ${o.host}`}, ` +
      `since ${o.startedAt} (lock ${file}). Wait for it to finish` +
      (here ? '' : `, or delete the lock file if that process is gone from ${o.host}`),
  );
}

export class OutputLock {
  private released = false;
  private constructor(readonly file: string, readonly owner: LockOwner) {}

  /**
   * Takes the lock of task `taskIndex` of `taskCount` on `out`, whose plan has `units` work units. Throws a
   * WgptError naming the holder when a live run holds it or owns some of the same units.
   */
  static acquire(out: string, taskIndex: number, taskCount: number, units: number,
    log: (line: string) => void = () => {}): OutputLock {
    const dir = path.join(out, 'locks');
    const file = path.join(dir, `task-${taskIndex}-of-${taskCount}.lock`);
    const owner: LockOwner = {
      pid: process.pid, host: os.hostname(), taskIndex, taskCount,
      startedAt: new Date().toISOString(), token: crypto.randomBytes(8).toString('hex'),
    };
    // A few rounds at most: each failed round found a stale lock and removed it (or saw it removed).
    for (let round = 0; ; round++) {
      if (createExclusive(file, JSON.stringify(owner))) break;
      const held = readOwner(file);
      if (held && (isAlive(held) || round >= 3)) throw heldError(out, file, held, 'this task');
      if (!held && round >= 3) throw new WgptError(`${out}: cannot take the lock ${file}; try again`);
      if (held) takeOverStale(file, held, log);
    }
    const lock = new OutputLock(file, owner);
    // Another task shape (say, task 0 of 1 while a 4-task array runs) may own some of the same units.
    for (const name of fs.readdirSync(dir)) {
      const m = /^task-(\d+)-of-(\d+)\.lock$/.exec(name);
      if (!m || path.join(dir, name) === file) continue;
      const other: [number, number] = [Number(m[1]), Number(m[2])];
      if (!tasksOverlap([taskIndex, taskCount], other, units)) continue;
      const held = readOwner(path.join(dir, name));
      if (held && isAlive(held)) {
        lock.release();
        throw heldError(out, path.join(dir, name), held, `a run owning some of the same units`);
      }
    }
    return lock;
  }

  /** Removes the lock file if it is still this run's. */
  release(): void {
    if (this.released) return;
    this.released = true;
    if (readOwner(this.file)?.token === this.owner.token) fs.rmSync(this.file, { force: true });
  }
}

/**
 * Removes a stale lock. A guard file makes sure that of two runs finding the same stale lock, only one removes it
 * (the other could otherwise remove the lock the first has just taken).
 */
function takeOverStale(file: string, stale: LockOwner, log: (line: string) => void): void {
  const guard = `${file}.takeover`;
  if (!createExclusive(guard, JSON.stringify({ pid: process.pid, host: os.hostname() }))) {
    const g = readOwner(guard);
    if (g && !isAlive(g)) fs.rmSync(guard, { force: true }); // left by a run that died while taking over
    return;
  }
  try {
    if (readOwner(file)?.token !== stale.token) return; // someone else took it over meanwhile
    fs.rmSync(file, { force: true });
    log(`[data] note: took over the lock ${file} from pid ${stale.pid} (started ${stale.startedAt}), which is ` +
      'no longer running; the units it left unfinished are redone');
  } finally {
    fs.rmSync(guard, { force: true });
  }
}
