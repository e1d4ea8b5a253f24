import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WgptError } from '@wgpt/base';
import { afterAll, describe, expect, it } from 'vitest';
import { OutputLock, tasksOverlap } from '../src/lock.ts';
import { tmpDir } from './helpers.ts';

/** A pid that belonged to a process which has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '0']);
  return r.pid!;
}
/** A live process other than this one (killed at the end). */
const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 600_000)'], { stdio: 'ignore' });
afterAll(() => { sleeper.kill(); });

function writeLock(out: string, task: [number, number], owner: Record<string, unknown>): string {
  const f = path.join(out, 'locks', `task-${task[0]}-of-${task[1]}.lock`);
  fs.mkdirSync(path.dirname(f), { recursive: true });
  const o = { taskIndex: task[0], taskCount: task[1], startedAt: '2026-01-01T00:00:00.000Z', token: 'x', ...owner };
  fs.writeFileSync(f, JSON.stringify(o));
  return f;
}

describe('output lock', () => {
  it('one run per task: a second acquire of the same task fails naming the holder; release frees it', () => {
    const out = tmpDir();
    const a = OutputLock.acquire(out, 0, 1, 4);
    const f = path.join(out, 'locks', 'task-0-of-1.lock');
    expect(JSON.parse(fs.readFileSync(f, 'utf8')))
      .toMatchObject({ pid: process.pid, host: os.hostname(), taskIndex: 0 });
    let err: unknown;
    try { OutputLock.acquire(out, 0, 1, 4); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(WgptError);
    expect((err as Error).message).toBe(`${out}: this task is running there already: task 0 of 1, pid ${process.pid} ` +
      `on this host, since ${a.owner.startedAt} (lock ${f}). Wait for it to finish`);
    a.release();
    expect(fs.existsSync(f)).toBe(false);
    OutputLock.acquire(out, 0, 1, 4).release();
  });

  it('tasks of an array run at once; a run whose units overlap a live one is refused', () => {
    const out = tmpDir();
    const locks = [0, 1, 2, 3].map((i) => OutputLock.acquire(out, i, 4, 8));
    // task 0 of 2 owns units 0, 2, 4, 6: tasks 0 and 2 of 4 hold some of them
    expect(() => OutputLock.acquire(out, 0, 2, 8))
      .toThrow(/a run owning some of the same units is running there already: task [02] of 4/);
    expect(() => OutputLock.acquire(out, 0, 1, 8)).toThrow(/running there already/);
    // and the refused run left no lock of its own behind
    expect(fs.readdirSync(path.join(out, 'locks')).sort()).toEqual([0, 1, 2, 3].map((i) => `task-${i}-of-4.lock`));
    for (const l of locks) l.release();
    OutputLock.acquire(out, 0, 2, 8).release();
  });

  it('units a task shape does not share are not a conflict', () => {
    expect(tasksOverlap([1, 2], [0, 1], 1)).toBe(false); // one unit: task 1 of 2 owns none
    expect(tasksOverlap([1, 2], [0, 1], 2)).toBe(true);
    expect(tasksOverlap([0, 2], [1, 4], 8)).toBe(false); // even units vs 1, 5
    expect(tasksOverlap([1, 2], [1, 4], 8)).toBe(true);
  });

  it('takes over a stale lock (its pid is gone from this host) and says so', () => {
    const out = tmpDir();
    const pid = deadPid();
    const f = writeLock(out, [0, 1], { pid, host: os.hostname() });
    const lines: string[] = [];
    const l = OutputLock.acquire(out, 0, 1, 1, (s) => lines.push(s));
    expect(lines).toEqual([`[data] note: took over the lock ${f} from pid ${pid} (started 2026-01-01T00:00:00.000Z), ` +
      'which is no longer running; the units it left unfinished are redone']);
    expect(JSON.parse(fs.readFileSync(f, 'utf8')).pid).toBe(process.pid);
    l.release();
  });

  it('a live pid of another process on this host holds the lock', () => {
    const out = tmpDir();
    writeLock(out, [0, 1], { pid: sleeper.pid, host: os.hostname() });
    expect(() => OutputLock.acquire(out, 0, 1, 1)).toThrow(`task 0 of 1, pid ${sleeper.pid} on this host`);
  });

  it("a lock from another host cannot be checked: held, and the message says how to clear it", () => {
    const out = tmpDir();
    const f = writeLock(out, [0, 1], { pid: deadPid(), host: 'node-17.cluster' });
    expect(() => OutputLock.acquire(out, 0, 1, 1)).toThrow(`on host node-17.cluster, since 2026-01-01T00:00:00.000Z ` +
      `(lock ${f}). Wait for it to finish, or delete the lock file if that process is gone from node-17.cluster`);
  });

  it("release leaves a lock alone that is no longer this run's", () => {
    const out = tmpDir();
    const l = OutputLock.acquire(out, 0, 1, 1);
    const f = writeLock(out, [0, 1], { pid: sleeper.pid, host: os.hostname(), token: 'other' });
    l.release();
    expect(fs.existsSync(f)).toBe(true);
  });
});
