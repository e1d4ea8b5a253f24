// Errors a user can act on: what failed, with which file, flag or value, and what to do. The CLI prints their
// message on one line (`wgpt: <message>`) and exits with `exitCode`; any other error is a bug and gets a stack,
// except Node's system errors about a file or the environment, which systemErrorMessage puts in one line.

export class WgptError extends Error {
  override name = 'WgptError';
  /** The process exit code when this error ends a command: 1 for failures, 2 for usage errors. */
  exitCode = 1;
}

/** A bad flag, argument or value on the command line (exit code 2). */
export class UsageError extends WgptError {
  override name = 'UsageError';
  override exitCode = 2;
}

// Node's system errors that are about the file system or the environment rather than about wgpt's code.
const SYSTEM_ERRORS: Record<string, string> = {
  ENOENT: 'no such file or folder',
  ENOTDIR: 'a part of the path is not a folder',
  EISDIR: 'is a folder where a file is expected',
  EEXIST: 'already exists: remove it or choose another name',
  ENOTEMPTY: 'the folder is not empty: remove it or choose another one',
  EACCES: 'permission denied: check its permissions or choose another path',
  EPERM: 'operation not permitted: check its permissions or choose another path',
  EROFS: 'the file system is read-only: write somewhere else',
  ENOSPC: 'no space left on the device: free some space or write somewhere else',
  EDQUOT: 'disk quota exceeded: free some space or write somewhere else',
  EFBIG: 'file too large for this file system',
  ENAMETOOLONG: 'the name is too long',
  ELOOP: 'too many levels of symbolic links',
  EMFILE: 'too many open files: raise the limit (ulimit -n)',
  ENFILE: 'too many open files in the system',
  EBUSY: 'the file or device is busy',
  EXDEV: 'cannot move across file systems',
  EIO: 'input/output error from the device',
};

interface SystemError extends Error {
  code: string;
  syscall: string;
  errno: number;
  path?: string;
  dest?: string;
}

function isSystemError(e: unknown): e is SystemError {
  const x = e as Partial<SystemError>;
  return (
    e instanceof Error && typeof x.code === 'string' && typeof x.syscall === 'string' && typeof x.errno === 'number'
  );
}

/** What is wrong (and what to do) for a Node system error (ENOENT, EACCES, ENOSPC...), without its path; else null. */
export function systemErrorReason(e: unknown): string | null {
  if (!isSystemError(e)) return null;
  return SYSTEM_ERRORS[e.code] ?? `${e.code} (${e.syscall})`;
}

/**
 * One line for a Node system error: its path (and the destination of a rename or copy), what is wrong and what to
 * do. Null for any other error.
 */
export function systemErrorMessage(e: unknown): string | null {
  const what = systemErrorReason(e);
  if (what === null) return null;
  const { path, dest, syscall } = e as SystemError;
  if (path === undefined) return `${syscall}: ${what}`;
  return `${path}${dest !== undefined ? ` -> ${dest}` : ''}: ${what}`;
}

/**
 * Runs `fn`, giving a system error that names no file the `path` it was about: a failed write() (ENOSPC, EIO...)
 * reports only its syscall, and the user needs to know which file could not be written.
 */
export function withPath<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (isSystemError(e) && e.path === undefined) e.path = path;
    throw e;
  }
}
