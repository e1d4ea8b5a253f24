// Ending the `wgpt` process without losing or mangling its output.
//
// Writes to a pipe are asynchronous in Node: process.exit() right after a command would cut what is still queued
// (64 KiB, a pipe's buffer, reached `| cat`). So the process exits only once stdout and stderr have handed
// everything to the OS. It still exits explicitly then, since open native handles (a Dawn instance, worker
// threads) could otherwise keep it alive after the command is done.
//
// A reader that goes away early (`| head -c 100`) makes the next write fail with EPIPE. The process then ends the
// way Unix tools do, through SIGPIPE: silently, with status 141, and at once without running exit handlers, which
// matters when GPU work is in flight (process.exit() there tears Dawn down under a running callback).

/** Routes write errors on stdout and stderr: EPIPE ends the process quietly, others are reported once. */
export function handleOutputErrors(): void {
  let reported = false;
  for (const [name, stream] of [['stdout', process.stdout], ['stderr', process.stderr]] as const) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') return endOnBrokenPipe();
      // Say it once, on whichever stream still works; the command goes on, its output is lost, and it exits 1.
      process.exitCode = 1;
      if (reported) return;
      reported = true;
      const other = name === 'stdout' ? process.stderr : process.stdout;
      if (!other.destroyed) other.write(`wgpt: cannot write to ${name}: ${e.code ?? e.message}\n`);
    });
  }
}

function endOnBrokenPipe(): void {
  // If SIGPIPE were somehow still ignored, the process carries on with its output discarded and exits 141.
  process.exitCode = 141;
  // Node ignores SIGPIPE; adding and removing a listener gives it back its default action (ending the process).
  const noop = () => {};
  process.on('SIGPIPE', noop);
  process.off('SIGPIPE', noop);
  process.kill(process.pid, 'SIGPIPE');
}

/** Resolves once everything written to `stream` so far has been handed to the OS (or the stream is gone). */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || stream.writableEnded) return resolve();
    // Writes complete in order, so the callback of an empty write runs after every earlier write is done.
    stream.write('', () => resolve());
  });
}

/** Waits for stdout and stderr to drain, then exits with `code`. */
export async function exitWhenFlushed(code: number): Promise<never> {
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
}
