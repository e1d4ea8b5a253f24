// `wgpt train`, `wgpt sample`, `wgpt eval`.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { Gpu, noGrad, tensor, tidyAsync, WgptError } from '@wgpt/runtime';
import { getEncoding, isOpenAiEncodingName, loadTokenizer, type Encoding } from '@wgpt/tokenizer';
import { makeConfig, PRESETS, type GPT2Config } from './config.ts';
import { importHfGpt2 } from './hf.ts';
import { initParams } from './init.ts';
import { readLlmcModel, type ModelFile } from './llmc.ts';
import { ShardLoader } from './loader.ts';
import { GPT2 } from './model.ts';
import { generate, printable } from './sample.ts';
import { findShards, train } from './train.ts';

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new WgptError(`not an integer: ${v}`);
  return n;
};
const num = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new WgptError(`not a number: ${v}`);
  return n;
};

export function pickEncoding(name: string): Encoding {
  if (existsSync(name)) return loadTokenizer(name);
  if (isOpenAiEncodingName(name)) return getEncoding(name);
  throw new WgptError(`unknown tokenizer "${name}": r50k_base, cl100k_base, o200k_base, or a folder saved by \`wgpt tokenizer train\``);
}

/** A model from an llm.c .bin, a checkpoint folder, or a Hugging Face GPT-2 .safetensors file. */
export function loadModelFile(path: string): ModelFile {
  if (!existsSync(path)) throw new WgptError(`${path}: no such checkpoint`);
  if (statSync(path).isDirectory()) return readLlmcModel(join(path, 'model.bin'));
  if (path.endsWith('.safetensors')) return importHfGpt2(path);
  return readLlmcModel(path);
}

function configFrom(o: { preset?: string; depth?: number; channels?: number; heads?: number; vocab?: number; context?: number }, vocabDefault: number): GPT2Config {
  if (o.preset) {
    const p = PRESETS[o.preset];
    if (!p) throw new WgptError(`unknown preset ${o.preset}: ${Object.keys(PRESETS).join(', ')}`);
    return makeConfig({ ...p, V: o.vocab ?? p.V, maxT: o.context ?? p.maxT });
  }
  return makeConfig({ L: o.depth ?? 2, C: o.channels ?? 64, NH: o.heads ?? 4, V: o.vocab ?? vocabDefault, maxT: o.context ?? 64 });
}

export function register(program: Command): void {
  program
    .command('train')
    .description('pre-train GPT-2 on token shards (llm.c format) with AdamW, validation, samples and checkpoints')
    .requiredOption('--data <dir>', 'folder with *_train_*.bin and *_val_*.bin shards (from `wgpt data run`)')
    .option('--preset <name>', `model size: ${Object.keys(PRESETS).join(', ')} (124M, 350M, 774M, 1558M)`)
    .option('--depth <n>', 'layers (without --preset)', int)
    .option('--channels <n>', 'channels', int)
    .option('--heads <n>', 'attention heads', int)
    .option('--vocab <n>', "vocabulary size (default: the tokenizer's)", int)
    .option('--context <n>', 'context length (maxT)', int)
    .option('--init-from <file>', 'start from a model file (llm.c .bin or Hugging Face .safetensors) instead of random init')
    .option('-B, --batch <n>', 'micro-batch size', int, 4)
    .option('-T, --seq <n>', 'sequence length', int, 64)
    .option('--total-batch <tokens>', 'tokens per optimizer step (multiple of B·T)', int)
    .option('--steps <n>', 'optimizer steps', int, 100)
    .option('--lr <x>', 'peak learning rate', num, 6e-4)
    .option('--warmup <n>', 'warmup steps', int, 10)
    .option('--final-lr-frac <x>', 'final learning rate as a fraction of the peak', num, 0.1)
    .option('--weight-decay <x>', 'AdamW weight decay (2-D weights only)', num, 0.1)
    .option('--grad-clip <x>', 'clip gradients to this global norm (0: off)', num, 1.0)
    .option('--val-every <n>', 'validation loss every N steps', int, 25)
    .option('--val-batches <n>', 'batches per validation', int, 10)
    .option('--sample-every <n>', 'generate a sample every N steps (0: never)', int, 20)
    .option('--sample-tokens <n>', 'tokens per sample', int, 64)
    .option('--checkpoint-every <n>', 'checkpoint every N steps (always at the end)', int, 0)
    .option('--tokenizer <name|dir>', 'tokenizer for printing samples', 'r50k_base')
    .option('--out <dir>', 'run folder: log.jsonl, loss.svg, checkpoint/', 'out/train')
    .option('--resume <dir>', 'continue from a checkpoint folder')
    .option('--seed <n>', 'seed for init and data order', int, 42)
    .action(async (o, cmd: Command) => {
      const enc = pickEncoding(o.tokenizer);
      const shards = findShards(o.data);
      let init: ModelFile | null = o.initFrom ? loadModelFile(o.initFrom) : null;
      const config = init ? init.config : configFrom(o, enc.nVocab);
      const gpu = await Gpu.open({ adapter: cmd.optsWithGlobals().adapter });
      let stop = false;
      const onInt = () => {
        if (stop) process.exit(130);
        stop = true;
        console.error('\n[train] interrupted: finishing this step and writing a checkpoint (Ctrl-C again to abort)');
      };
      process.on('SIGINT', onInt);
      try {
        const r = await train(gpu, {
          config,
          init: init?.params ?? initParams(config, o.seed),
          trainFiles: shards.train,
          valFiles: shards.val,
          B: o.batch,
          T: o.seq,
          totalBatchTokens: o.totalBatch ?? o.batch * o.seq,
          steps: o.steps,
          lr: o.lr,
          warmupSteps: o.warmup,
          finalLrFrac: o.finalLrFrac,
          weightDecay: o.weightDecay,
          maxNorm: o.gradClip,
          valEvery: o.valEvery,
          valBatches: o.valBatches,
          sampleEvery: o.sampleEvery,
          sampleTokens: o.sampleTokens,
          checkpointEvery: o.checkpointEvery,
          outDir: o.out,
          resume: o.resume,
          seed: o.seed,
          decode: (ids) => enc.decode(ids),
          eotToken: enc.eotToken,
          shouldStop: () => stop,
        });
        init = null;
        console.log(`checkpoint: ${r.checkpoint}\nloss plot: ${r.plot}\nlog: ${join(o.out, 'log.jsonl')}`);
        if (r.stoppedEarly && !stop) process.exitCode = 1;
      } finally {
        process.off('SIGINT', onInt);
        gpu.destroy();
      }
    });

  program
    .command('sample')
    .description('generate text from a checkpoint (llm.c .bin, checkpoint folder, or Hugging Face .safetensors)')
    .requiredOption('--checkpoint <path>', 'model to sample from')
    .option('--prompt <text>', 'prompt text (default: <|endoftext|>, an unconditioned document)')
    .option('--prompt-ids <ids>', 'prompt as comma-separated token ids')
    .option('--max-tokens <n>', 'tokens to generate', int, 64)
    .option('--temperature <x>', '0 = greedy', num, 1)
    .option('--top-k <n>', 'sample from the k most likely tokens', int)
    .option('--top-p <x>', 'nucleus sampling threshold', num)
    .option('--seed <n>', 'sampling seed', int, 1337)
    .option('--stop <ids>', 'comma-separated stop token ids (default: <|endoftext|>)')
    .option('--tokenizer <name|dir>', 'tokenizer of the model', 'r50k_base')
    .option('--json', 'print {"ids", "text"} instead of streaming text')
    .option('--no-kv-cache', 'run a full forward over the context for every token instead of reusing keys and values')
    .action(async (o, cmd: Command) => {
      const enc = pickEncoding(o.tokenizer);
      const m = loadModelFile(o.checkpoint);
      const ids = (s: string) => s.split(',').map((x) => int(x.trim()));
      const prompt = o.promptIds ? ids(o.promptIds) : o.prompt !== undefined ? enc.encode(o.prompt, { allowedSpecial: 'all' }) : [enc.eotToken];
      const gpu = await Gpu.open({ adapter: cmd.optsWithGlobals().adapter });
      try {
        const model = new GPT2(gpu, m.config, m.params);
        const out: number[] = [];
        const opts = { maxNewTokens: o.maxTokens, temperature: o.temperature, topK: o.topK, topP: o.topP, seed: o.seed, stopTokens: o.stop ? ids(o.stop) : [enc.eotToken], kvCache: o.kvCache !== false };
        let printed = '';
        // The prompt first (a document continues it), unless it is only <|endoftext|> (an unconditioned sample).
        if (!o.json && !(prompt.length === 1 && prompt[0] === enc.eotToken)) process.stdout.write(printable(enc.decode(prompt)));
        for await (const t of generate(model, prompt, opts)) {
          out.push(t);
          if (!o.json) {
            // Stream text as it becomes valid UTF-8 (a token can end mid-character).
            const text = enc.decode(out);
            if (!text.endsWith('\uFFFD')) {
              process.stdout.write(printable(text.slice(printed.length)));
              printed = text;
            }
          }
        }
        if (o.json) console.log(JSON.stringify({ prompt, ids: out, text: enc.decode(out) }));
        else process.stdout.write(printable(enc.decode(out).slice(printed.length)) + '\n');
        model.dispose();
      } finally {
        gpu.destroy();
      }
    });

  program
    .command('eval')
    .description('mean loss of a checkpoint on a token shard, as JSON')
    .requiredOption('--checkpoint <path>', 'model (llm.c .bin, checkpoint folder, or .safetensors)')
    .requiredOption('--tokens <shard>', 'token shard (llm.c format)')
    .option('-B, --batch <n>', 'batch size', int, 4)
    .option('-T, --seq <n>', 'sequence length', int, 64)
    .option('--batches <n>', 'at most this many batches (default: the whole shard)', int)
    .action(async (o, cmd: Command) => {
      const m = loadModelFile(o.checkpoint);
      const loader = new ShardLoader([o.tokens], o.batch, o.seq, { shuffle: false, seed: 0 });
      const n = Math.min(o.batches ?? Infinity, loader.batchesPerEpoch);
      const gpu = await Gpu.open({ adapter: cmd.optsWithGlobals().adapter });
      try {
        const model = new GPT2(gpu, m.config, m.params);
        let sum = 0;
        for (let i = 0; i < n; i++) {
          const b = loader.next();
          sum += await tidyAsync(async () => {
            const { loss } = noGrad(() => model.forward(tensor(gpu, b.inputs, [o.batch, o.seq], 'i32'), tensor(gpu, b.targets, [o.batch, o.seq], 'i32')));
            return loss!.item();
          });
        }
        console.log(JSON.stringify({ checkpoint: o.checkpoint, tokens: o.tokens, batches: n, B: o.batch, T: o.seq, loss: sum / n }));
        model.dispose();
      } finally {
        gpu.destroy();
      }
    });
}
