// Errors a user can act on: what failed, with which file, flag or value, and what to do. The CLI prints their
// message on one line (`wgpt: <message>`) and exits with `exitCode`; any other error is a bug and gets a stack.

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
