// `wgpt`: one binary, subcommands registered by the packages (each exports register(program) from its cli.ts).
import { Command } from 'commander';
import { register as registerData } from '@wgpt/data';
import { register as registerGpt2 } from '@wgpt/gpt2';
import { register as registerTokenizer } from '@wgpt/tokenizer';
import { registerRuntimeCommands } from './runtime-commands.ts';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('wgpt')
    .description('A WebGPU-first LLM stack: data, tokenizer, GPT-2 training and sampling on hand-written WGSL kernels.')
    .option('--adapter <name|index>', 'WebGPU adapter to use (see `wgpt gpus`); default: env WGPT_ADAPTER, else the first hardware adapter, else SwiftShader')
    .showHelpAfterError()
    .configureHelp({ sortSubcommands: true });
  registerRuntimeCommands(program);
  registerTokenizer(program);
  registerData(program);
  registerGpt2(program);
  return program;
}

const isMain = process.argv[1] && /wgpt(\.mjs)?$|main\.ts$/.test(process.argv[1]);
if (isMain) {
  buildProgram()
    .parseAsync(process.argv)
    .then(() => process.exit(process.exitCode ?? 0))
    .catch((e: Error) => {
      // Errors of our own are written for users: print the message, not a stack trace.
      const ours = e.name && /Wgpt|Adapter|Kernel|Gpu|Device/.test(e.name);
      console.error(`wgpt: ${ours ? e.message : (e.stack ?? e.message)}`);
      process.exit(1);
    });
}
