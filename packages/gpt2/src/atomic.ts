// File I/O for model and training files: crash-safe writes, reads in bounded pieces, and a fault hook for tests.
//
// writeFileAtomic: write a temp file beside the target, fsync it, rename over the target, fsync the folder. A crash
// at any point leaves either the old file or the new one, never a torn mix.
// Reads and writes go through positioned calls of at most `ioChunkBytes()` each, so no single buffer or call has
// to hold a whole file: Node refuses to read a file over 2 GiB into one buffer (GPT-2 774M is 3.1 GB in f32).
import { closeSync, fsyncSync, openSync, readSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { WgptError } from '@wgpt/runtime';

let chunkBytes = 1 << 30;

/** The largest piece one read or write call moves. */
export function ioChunkBytes(): number {
  return chunkBytes;
}

/** Sets the piece size (tests use a few bytes so small files take the many-piece path); returns the old one. */
export function setIoChunkBytes(n: number): number {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`setIoChunkBytes: ${n} is not a positive integer`);
  const old = chunkBytes;
  chunkBytes = n;
  return old;
}

/**
 * Crash testing: every rename and removal made through this module (checkpoint writing, the log rewrite on resume,
 * any writeFileAtomic) goes through faultPoint first. A hook set here (or the environment variable
 * WGPT_TEST_KILL_AT=N, which SIGKILLs the process at the Nth such operation) can stop the process exactly between
 * two file-system operations.
 */
export type FaultHook = (op: 'rename' | 'remove', path: string) => void;
let faultHook: FaultHook | null = null;
{
  const n = Number(process.env.WGPT_TEST_KILL_AT);
  if (Number.isInteger(n) && n > 0) {
    let count = 0;
    faultHook = () => {
      if (++count === n) process.kill(process.pid, 'SIGKILL');
    };
  }
}

export function setFaultHook(hook: FaultHook | null): void {
  faultHook = hook;
}

export function faultPoint(op: 'rename' | 'remove', path: string): void {
  faultHook?.(op, path);
}

/** rename(2) behind a fault point. */
export function renameChecked(from: string, to: string): void {
  faultPoint('rename', from);
  renameSync(from, to);
}

/** Makes renames and creations in `dir` durable; some filesystems refuse to fsync folders, which is harmless. */
export function fsyncDir(dir: string): void {
  try {
    const dfd = openSync(dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    /* not supported here */
  }
}

function bytesOf(c: ArrayBufferView): Uint8Array {
  return c instanceof Uint8Array ? c : new Uint8Array(c.buffer, c.byteOffset, c.byteLength);
}

/** Writes all of `c` at the file's current position, in pieces of at most ioChunkBytes. */
export function writeAll(fd: number, c: ArrayBufferView): void {
  const u8 = bytesOf(c);
  let off = 0;
  while (off < u8.byteLength) off += writeSync(fd, u8, off, Math.min(u8.byteLength - off, chunkBytes));
}

/**
 * Fills `into` from byte `position` of the file, in pieces of at most ioChunkBytes, handing each piece to `onPiece`
 * (for hashing while reading). A short file is a WgptError naming it.
 */
export function readAt(
  fd: number,
  into: ArrayBufferView,
  position: number,
  path: string,
  onPiece?: (piece: Uint8Array) => void,
): void {
  const u8 = bytesOf(into);
  let off = 0;
  while (off < u8.byteLength) {
    const got = readSync(fd, u8, off, Math.min(u8.byteLength - off, chunkBytes), position + off);
    if (got <= 0) throw new WgptError(`${path}: unexpected end of file at byte ${position + off}`);
    onPiece?.(u8.subarray(off, off + got));
    off += got;
  }
}

/** Feeds a typed array to a hash in pieces of at most ioChunkBytes. */
export function hashInPieces(h: { update(b: Uint8Array): unknown }, a: ArrayBufferView): void {
  const u8 = bytesOf(a);
  for (let off = 0; off < u8.byteLength; off += chunkBytes) {
    h.update(u8.subarray(off, Math.min(u8.byteLength, off + chunkBytes)));
  }
}

/** Writes `chunks` (any iterable, so large outputs can be produced one piece at a time) to `path` atomically. */
export function writeFileAtomic(path: string, chunks: Iterable<ArrayBufferView>): void {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
  const fd = openSync(tmp, 'w');
  try {
    for (const c of chunks) writeAll(fd, c);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameChecked(tmp, path);
  fsyncDir(dirname(path));
}

/** unlink(2) behind a fault point; a missing file is fine. */
export function unlinkChecked(path: string): void {
  faultPoint('remove', path);
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}
