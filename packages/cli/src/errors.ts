// How `wgpt` reports the error that ended a command. Errors a user can act on get one line, `wgpt: <file or flag>:
// <what is wrong and what to do>`, and their exit code; a stack trace is printed only for real bugs (and for every
// error with --debug). Ours are the WgptErrors; Node's system errors about a file (ENOENT, EACCES, ENOSPC...) are
// the user's too, named by their path.
import { inspect } from 'node:util';
import { CommanderError, InvalidArgumentError } from 'commander';
import { systemErrorMessage, WgptError } from '@wgpt/base/errors';

export interface ErrorReport {
  /** What to print on stderr (no trailing newline), or '' when commander has printed it already. */
  text: string;
  exitCode: number;
}

/** Exit statuses besides 0: 1 a failure, 2 a usage error (and 130/143 after SIGINT/SIGTERM, 141 on a closed pipe). */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Commander's own errors (unknown option, invalid value, missing argument, help) have been printed by commander. */
function printedByCommander(e: unknown): e is CommanderError {
  return e instanceof CommanderError && !(e instanceof InvalidArgumentError);
}

export function reportError(e: unknown, debug: boolean): ErrorReport {
  const stack = () => (e instanceof Error ? inspect(e) : String(e));
  if (printedByCommander(e)) {
    // --help and --version end through here with exit code 0; everything else commander reports is usage.
    return { text: '', exitCode: e.exitCode === 0 ? 0 : EXIT_USAGE };
  }
  if (e instanceof InvalidArgumentError) return { text: `wgpt: ${debug ? stack() : e.message}`, exitCode: EXIT_USAGE };
  if (e instanceof WgptError) return { text: `wgpt: ${debug ? stack() : e.message}`, exitCode: e.exitCode };
  const system = systemErrorMessage(e);
  if (system !== null) return { text: `wgpt: ${system}${debug ? `\n${stack()}` : ''}`, exitCode: EXIT_FAILURE };
  const text = `wgpt: unexpected error (a bug in wgpt; please report it with this output):\n${stack()}`;
  return { text, exitCode: EXIT_FAILURE };
}
