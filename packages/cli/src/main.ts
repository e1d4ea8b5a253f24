// `wgpt`: one binary, subcommands registered by the packages (each exports register(program) from its cli.ts).
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { register as registerChat } from '@wgpt/chat';
import { register as registerData } from '@wgpt/data';
import { register as registerGpt2 } from '@wgpt/gpt2';
import { register as registerTokenizer } from '@wgpt/tokenizer';
import { register as registerWeb } from '@wgpt/web';
import { reportError } from './errors.ts';
import { registerExperiment } from './experiment-command.ts';
import { exitWhenFlushed, handleOutputErrors } from './output.ts';
import { registerRuntimeCommands } from './runtime-commands.ts';

/** The version of the wgpt workspace (the root package.json's). */
const ROOT_PACKAGE = new URL('../../../package.json', import.meta.url);
export const VERSION = (JSON.parse(readFileSync(ROOT_PACKAGE, 'utf8')) as { version: string }).version;

/** Commander's error message in wgpt's form: `wgpt: ...`, a suggestion on the same line. */
function oneLine(s: string): string {
  return s.replace(/^error: /, 'wgpt: ').replace(/\n\(Did you mean (.*)\)\n$/, ' (did you mean $1)\n');
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('wgpt')
    .description('A WebGPU-first LLM stack: data, tokenizer, GPT-2 training and sampling on hand-written WGSL kernels.')
    .version(VERSION, '-V, --version', 'print the version')
    .option(
      '--adapter <name|index>',
      'WebGPU adapter to use (see `wgpt gpus`); default: env WGPT_ADAPTER, else the first hardware adapter, ' +
        'else SwiftShader',
    )
    .option('--debug', 'print the stack trace of every error, not only of unexpected ones')
    .configureHelp({ sortSubcommands: true })
    // Commander's own errors (unknown option, invalid value...) are thrown instead of exiting with 1, so that main
    // exits with 2, the usage status. Their one line starts with `wgpt:` like every other error. Subcommands
    // inherit both settings when they are created, so this comes before the packages register theirs.
    .exitOverride()
    .configureOutput({ outputError: (s, write) => write(oneLine(s)) });
  registerRuntimeCommands(program);
  registerTokenizer(program);
  registerData(program);
  registerGpt2(program);
  registerChat(program);
  registerExperiment(program);
  registerWeb(program);
  return program;
}

/** Runs one command line and returns the exit status (it never exits itself). */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return Number(process.exitCode ?? 0);
  } catch (e) {
    // The flag may not have been parsed when commander rejected the command line.
    const debug = !!program.opts().debug || argv.includes('--debug');
    const r = reportError(e, debug);
    if (r.text) process.stderr.write(`${r.text}\n`);
    return r.exitCode;
  }
}

const isMain = process.argv[1] && /wgpt(\.mjs)?$|main\.ts$/.test(process.argv[1]);
if (isMain) {
  handleOutputErrors();
  void main(process.argv).then(exitWhenFlushed);
}
