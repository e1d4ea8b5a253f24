// `wgpt serve`: the browser pages (tokenizer playground, generate, chat) on a local HTTP server.
import type { Command } from 'commander';
import { intArg, UsageError } from '@wgpt/base';
import { isLoopback, PAGES, startServer } from './serve.ts';

interface ServeFlags {
  host: string;
  port: number;
  checkpoint?: string[];
  tokenizer?: string;
  maxUploadMb: number;
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

export function register(program: Command): void {
  program
    .command('serve')
    .description('serve the browser pages (tokenizer playground, generate, chat) and the given files on localhost')
    .option(
      '--host <host>',
      'address to listen on (anything but loopback exposes the server to the network)',
      '127.0.0.1',
    )
    .option('--port <n>', 'port (0: any free port)', intArg({ min: 0, max: 65535 }), 8080)
    .option(
      '--checkpoint <file|dir>',
      'a checkpoint to offer (llm.c .bin, .safetensors or a checkpoint folder); repeatable',
      collect,
    )
    .option('--tokenizer <dir>', 'a tokenizer folder from `wgpt tokenizer train` to offer beside the OpenAI encodings')
    .option(
      '--max-upload-mb <n>',
      'largest checkpoint the pages may upload, in MiB',
      intArg({ min: 1, max: 16384 }),
      1024,
    )
    .action(async (o: ServeFlags) => {
      if (o.host.trim() === '') throw new UsageError('--host: empty; give an address such as 127.0.0.1');
      if (!isLoopback(o.host)) {
        process.stderr.write(
          `wgpt serve: warning: --host ${o.host} lets other machines reach this server and the files it serves; ` +
            'use it only on a network you trust\n',
        );
      }
      const s = await startServer({
        host: o.host,
        port: o.port,
        checkpoints: o.checkpoint,
        tokenizer: o.tokenizer,
        maxUploadBytes: o.maxUploadMb * 2 ** 20,
      });
      process.stdout.write(`wgpt serve: listening on ${s.url} (Ctrl-C to stop)\n`);
      for (const p of PAGES) process.stdout.write(`  ${s.url}${p}\n`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          resolve();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      await s.close();
    });
}
