// Commands that only need the runtime and kernels: gpus, selfcheck, demo, bench.
import { InvalidArgumentError, type Command } from 'commander';
import { intArg } from '@wgpt/base';
import { Gpu, listAdapters, formatBytes, type AdapterEntry } from '@wgpt/runtime';
import { matchLayerDevices, pciId, vulkanDeviceListing } from '@wgpt/runtime/dist';
import { MAX_VOCAB_SIZE } from '@wgpt/tokenizer';
import { runSelfCheck } from './selfcheck.ts';

const size = intArg({ min: 1 });

/** A JavaScript regular expression, checked when the command line is parsed. */
function regexArg(value: string): string {
  try {
    new RegExp(value);
  } catch (e) {
    throw new InvalidArgumentError(`not a regular expression: ${(e as Error).message}`);
  }
  return value;
}

/** An adapter's first line in `wgpt gpus`; the PCI bus (from Mesa's device-select layer) tells identical GPUs apart. */
export function adapterHeading(r: AdapterEntry & { vendor: string; pciId?: string; pci?: string }): string {
  const bus = r.pci ? `, ${r.pciId} at PCI ${r.pci}` : '';
  const vendor = r.vendor ? `, ${r.vendor}` : '';
  return `[${r.index}] ${r.name}  (${r.backend}${r.software ? ', software' : ''}${vendor}${bus})`;
}

function adapterOf(cmd: Command): string | undefined {
  return cmd.optsWithGlobals().adapter as string | undefined;
}

export function registerRuntimeCommands(program: Command): void {
  program
    .command('gpus')
    .description('list the WebGPU adapters this process can open, with their limits and features')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const list = await listAdapters();
      const layer = await vulkanDeviceListing();
      const devices = layer.devices ? matchLayerDevices(list, layer.devices) : [];
      const rows = [];
      for (const a of list) {
        const gpu = await Gpu.open({ adapter: a.index });
        const d = devices[a.index];
        rows.push({
          ...a,
          ...(d?.pci ? { pciId: pciId(d), pci: d.pci } : {}),
          vendor: gpu.adapterInfo?.vendor ?? '',
          architecture: gpu.adapterInfo?.architecture ?? '',
          features: [...gpu.features],
          maxStorageBufferBindingSize: gpu.limits.maxStorageBufferBindingSize,
          maxBufferSize: gpu.limits.maxBufferSize,
          maxComputeInvocationsPerWorkgroup: gpu.limits.maxComputeInvocationsPerWorkgroup,
          maxComputeWorkgroupStorageSize: gpu.limits.maxComputeWorkgroupStorageSize,
        });
        gpu.destroy();
      }
      if (opts.json) return void console.log(JSON.stringify(rows, null, 2));
      if (!rows.length)
        return void console.log(
          'No WebGPU adapters found. On a machine without a GPU: sudo apt-get install chromium libvulkan1',
        );
      for (const r of rows) {
        console.log(adapterHeading(r));
        console.log(
          `    max binding ${formatBytes(r.maxStorageBufferBindingSize)}, ` +
            `max buffer ${formatBytes(r.maxBufferSize)}, ` +
            `${r.maxComputeInvocationsPerWorkgroup} invocations/workgroup, ` +
            `${formatBytes(r.maxComputeWorkgroupStorageSize)} workgroup memory`,
        );
        console.log(`    features used by wgpt: ${r.features.join(', ') || 'none'}`);
      }
    });

  program
    .command('selfcheck')
    .description('train a small MLP on the chosen adapter and check that the loss falls (a runtime self-test)')
    .option('--steps <n>', 'training steps', size, 150)
    .option('--hidden <n>', 'hidden width', size, 64)
    .option('--seed <n>', 'random seed', intArg({ min: 0, max: 2 ** 32 - 1 }), 1)
    .option('--profile', 'time every kernel with timestamp queries and print a table')
    .action(async (opts: { steps: number; hidden: number; seed: number; profile?: boolean }, cmd: Command) => {
      const ok = await runSelfCheck({ ...opts, adapter: adapterOf(cmd) });
      if (!ok) process.exitCode = 1;
    });

  program
    .command('demo')
    .description(
      'the whole path on the embedded default: prose → BPE tokenizer → token shards → ' +
        'GPT-2 pre-training with samples → fine-tuning for chat on synthetic conversations → a chat transcript',
    )
    .option('--out <dir>', 'output folder', 'out/demo')
    // The demo fails unless the last step's loss is below the first's: that takes two steps.
    .option(
      '--steps <n>',
      'pre-training steps, at least 2 (default: 600 on SwiftShader, 500 on a GPU)',
      intArg({ min: 2 }),
    )
    // 256 byte tokens and <|endoftext|> at least.
    .option('--vocab-size <n>', 'BPE vocabulary size', intArg({ min: 257, max: MAX_VOCAB_SIZE }), 512)
    .option(
      '--sft-steps <n>',
      'fine-tuning steps for chat (0: none)',
      intArg({ min: 0 }),
      900,
    )
    .action(async (opts: { out: string; steps?: number; sftSteps?: number; vocabSize: number }, cmd: Command) => {
      const { runDemo } = await import('./demo.ts');
      const r = await runDemo({ adapter: adapterOf(cmd), ...opts });
      if (!(r.lastLoss < r.firstLoss)) {
        console.error(`demo: the loss did not fall (${r.firstLoss} -> ${r.lastLoss})`);
        process.exitCode = 1;
      }
    });

  program
    .command('bench')
    .description('run every *.bench.ts suite, print a markdown table and write JSON')
    .option('--quick', 'small sizes and few iterations (a smoke test)')
    .option('--filter <regex>', 'only suites whose name matches', regexArg)
    .option('--out <file>', 'JSON output', 'bench/results/latest.json')
    .action(async (opts: { quick?: boolean; filter?: string; out: string }, cmd: Command) => {
      const { runBenches } = await import('@wgpt/bench');
      await runBenches({ quick: !!opts.quick, filter: opts.filter, out: opts.out, adapter: adapterOf(cmd) });
    });
}
