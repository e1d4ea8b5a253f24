// Stopping long work cleanly on SIGINT (Ctrl-C) and SIGTERM (what Slurm time limits, Kubernetes and most launchers
// send): the work polls `signal` at safe points (after a training step), saves what it must, and the process exits
// with 128 + the signal's number, the status a shell reports for a process killed by that signal.
//
// A second signal only says that the process is already stopping. Ending the process from a signal handler with
// process.exit() would run the native exit handlers while Dawn may still be inside a GPU callback (it crashed that
// way), and would lose the checkpoint being written. A third signal restores the default action and raises the
// signal again: the kernel ends the process at once without running exit handlers (as SIGKILL would), so nothing
// is torn down under running native code; files written atomically keep their previous version.
import { constants } from 'node:os';

export type StopSignal = 'SIGINT' | 'SIGTERM';

export interface StopOnSignals {
  /** The first signal received, or null while none has come. */
  readonly signal: StopSignal | null;
  /** 128 + the first signal's number (130 for SIGINT, 143 for SIGTERM), or null while none has come. */
  readonly exitCode: number | null;
  /**
   * Removes the handlers, so that a later signal has its default action again (it ends the process). Once a signal
   * has come they stay until the process ends: a repeated signal while it winds down is still only noted.
   */
  dispose(): void;
}

const SIGNALS: readonly StopSignal[] = ['SIGINT', 'SIGTERM'];

/**
 * Handles SIGINT and SIGTERM until dispose(). `stopping` says what the work does when asked to stop, e.g.
 * 'finishing this step, writing a checkpoint, then exiting'. Messages go to `log` (default: stderr).
 */
export function stopOnSignals(
  stopping: string,
  log: (line: string) => void = (l) => void process.stderr.write(`${l}\n`),
): StopOnSignals {
  let first: StopSignal | null = null;
  let count = 0;
  const handler = (sig: StopSignal) => {
    count++;
    if (count === 1) {
      first = sig;
      log(`\nwgpt: ${sig}: ${stopping} (exit status ${128 + constants.signals[sig]})`);
    } else if (count === 2) {
      log(
        `wgpt: ${sig} again: already stopping, the process exits as soon as that is done; ` +
          'a third signal ends it at once, without saving',
      );
    } else {
      remove();
      process.kill(process.pid, sig);
    }
  };
  const remove = () => {
    for (const s of SIGNALS) process.off(s, handler);
  };
  for (const s of SIGNALS) process.on(s, handler);
  return {
    get signal() {
      return first;
    },
    get exitCode() {
      return first === null ? null : 128 + constants.signals[first];
    },
    dispose: () => {
      if (first === null) remove();
    },
  };
}
