// The terminal chat of `wgpt chat`: a line is a question (or a /command), the reply streams back as it is sampled.
//
// Ctrl-C during a reply stops it after the token in progress and keeps the turn as far as it got; Ctrl-C at the
// prompt leaves (exit status 130, as for a process ended by SIGINT), as do /quit and Ctrl-D (status 0). On a
// terminal readline sees Ctrl-C as a key; from elsewhere (a pipe, `kill -INT`) it comes as the signal SIGINT: both
// are handled the same way. Everything the REPL says goes to its output stream, in order with the replies; its own
// notes are in [brackets].
import { createInterface } from 'node:readline';
import { printable } from '@wgpt/gpt2';
import { type ChatSession, ContextError } from './chat.ts';

export const PROMPT = '> ';

export const HELP = [
  'Type a message and press Enter; the reply streams back. Commands:',
  '  /system TEXT     set the system message (/system alone removes it); the turns are kept',
  '  /reset           start a new conversation (the system message stays)',
  '  /temperature X   sampling temperature from the next reply on (0: greedy); alone: show it',
  '  /help            this list',
  '  /quit            leave (also Ctrl-D, or Ctrl-C at the prompt)',
  'Ctrl-C during a reply stops it (the turn is kept as far as it got). Start a message with // to send one that',
  'begins with /.',
].join('\n');

export interface ReplIo {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  /** Whether input and output are a terminal (readline then edits lines and sees Ctrl-C as a key). */
  terminal: boolean;
}

/** A line the REPL acts on: a command, or a message (null: nothing to do). */
export type ReplLine =
  | { kind: 'ask'; text: string }
  | { kind: 'system'; text: string | null }
  | { kind: 'reset' }
  | { kind: 'temperature'; value: string | null }
  | { kind: 'help' }
  | { kind: 'quit' }
  | { kind: 'unknown'; command: string }
  | null;

/** What a typed line means. A blank line means nothing; `//text` is the message `/text`. */
export function parseReplLine(line: string): ReplLine {
  if (line.trim() === '') return null;
  if (line.startsWith('//')) return { kind: 'ask', text: line.slice(1) };
  if (!line.startsWith('/')) return { kind: 'ask', text: line };
  const m = /^\/(\S*)\s*([\s\S]*)$/.exec(line.trimEnd())!;
  const [command, arg] = [m[1]!, m[2]!];
  switch (command) {
    case 'system':
      return { kind: 'system', text: arg === '' ? null : arg };
    case 'reset':
    case 'help':
    case 'quit':
      return arg === '' ? { kind: command } : { kind: 'unknown', command: line.trim() };
    case 'temperature':
      return { kind: 'temperature', value: arg === '' ? null : arg };
    default:
      return { kind: 'unknown', command: `/${command}` };
  }
}

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

/** Runs the REPL until /quit, end of input or Ctrl-C at the prompt; returns the exit status (0, or 130). */
export async function runRepl(session: ChatSession, io: ReplIo, banner: string): Promise<number> {
  const out = (s: string) => void io.output.write(s);
  const rl = createInterface({ input: io.input, output: io.output, prompt: PROMPT, terminal: io.terminal });
  let replying = false;
  let stopReply = false;
  let status = 0;
  let quit = false;
  const onInterrupt = () => {
    if (replying) {
      stopReply = true;
      return;
    }
    status = 130;
    out('\n');
    rl.close();
  };
  rl.on('SIGINT', onInterrupt);
  process.on('SIGINT', onInterrupt);
  try {
    out(`${banner}\n`);
    rl.prompt();
    for await (const line of rl) {
      const cmd = parseReplLine(line);
      if (cmd?.kind === 'quit') {
        quit = true;
        break;
      }
      if (cmd?.kind === 'ask') {
        replying = true;
        stopReply = false;
        try {
          const r = await session.ask(cmd.text, {
            onText: (s) => out(printable(s)),
            shouldStop: () => stopReply,
          });
          out('\n');
          if (r.stopped === 'max_tokens') out(`[stopped after ${r.ids.length} tokens, the --max-tokens limit]\n`);
          if (r.stopped === 'interrupted') out(`[stopped after ${plural(r.ids.length, 'token')}; the turn is kept]\n`);
          if (r.dropped > 0) {
            const oldest = r.dropped === 1 ? 'the oldest turn' : `the ${r.dropped} oldest turns`;
            out(
              `[dropped ${oldest} to fit the context of ${session.model.config.maxT} tokens; ` +
                `${plural(r.kept, 'earlier turn')} kept]\n`,
            );
          }
        } catch (e) {
          if (!(e instanceof ContextError)) throw e;
          out(`[${e.message}]\n`);
        } finally {
          replying = false;
        }
      } else if (cmd) {
        out(`${command(session, cmd)}\n`);
      }
      rl.prompt();
    }
    // At the end of the input (Ctrl-D): end the line the prompt is on.
    if (!quit && status === 0) out('\n');
  } finally {
    process.off('SIGINT', onInterrupt);
    rl.close();
  }
  return status;
}

/** Carries out a command other than a question or /quit; returns what to say. */
function command(session: ChatSession, cmd: Exclude<ReplLine, null | { kind: 'ask' | 'quit' }>): string {
  switch (cmd.kind) {
    case 'system':
      try {
        session.setSystem(cmd.text);
      } catch (e) {
        if (e instanceof ContextError) return `[/system: ${e.message}]`;
        throw e;
      }
      return cmd.text === null ? '[system message removed]' : '[system message set]';
    case 'reset':
      session.reset();
      return `[new conversation${session.system === null ? '' : ', same system message'}]`;
    case 'temperature': {
      if (cmd.value === null) return `[temperature ${session.settings.temperature}]`;
      const x = Number(cmd.value);
      if (cmd.value.trim() === '' || !Number.isFinite(x) || x < 0) {
        return `[/temperature: ${JSON.stringify(cmd.value)} is not a number ≥ 0; e.g. /temperature 0.7]`;
      }
      session.settings.temperature = x;
      return `[temperature ${x}${x === 0 ? ' (greedy)' : ''}]`;
    }
    case 'help':
      return HELP;
    case 'unknown':
      return `[unknown command ${cmd.command}; /help lists the commands]`;
  }
}
