// `wgpt eval-factuality`: a model's greedy answers to questions about people it was trained on and about people it
// never saw, judged, as accuracy, over-refusal, refusal and hallucination rates (a table, or --json).
import { intArg, numArg } from '@wgpt/base';
import { GPT2, loadModelFile } from '@wgpt/gpt2';
import { Gpu } from '@wgpt/runtime';
import type { Command } from 'commander';
import { checkModelForChat } from './chat.ts';
import { prepareModelForChat } from './embed.ts';
import { evaluateFactuality, factualityTable } from './factuality.ts';
import { resolveChatFormat } from './format.ts';
import { MatchJudge } from './judge.ts';
import { readProbeQuestions } from './probe.ts';

interface EvalFlags {
  checkpoint: string;
  tokenizer: string;
  known: string;
  neverSeen: string;
  maxTokens: number;
  f1: number;
  json?: boolean;
  showReplies?: number;
}

async function evalCommand(o: EvalFlags, adapter: string | undefined): Promise<void> {
  const cf = resolveChatFormat(o.tokenizer, '--tokenizer');
  let m = loadModelFile(o.checkpoint);
  // A model not yet fine-tuned for chat is evaluated as fine-tuning would start from it (rows for the markers).
  if (m.config.V < cf.vocabSize) m = prepareModelForChat(m, cf, 0).model;
  else checkModelForChat(o.checkpoint, m.config, cf, o.tokenizer);
  const known = await readProbeQuestions(o.known);
  const neverSeen = await readProbeQuestions(o.neverSeen);
  const gpu = await Gpu.open({ adapter });
  try {
    const model = new GPT2(gpu, m.config, m.params);
    try {
      const e = await evaluateFactuality(
        model,
        cf,
        { known, neverSeen },
        new MatchJudge({ f1Threshold: o.f1 }),
        o.maxTokens,
      );
      if (o.json) {
        const files = { known: o.known, neverSeen: o.neverSeen };
        console.log(JSON.stringify({ checkpoint: o.checkpoint, files, metrics: e.metrics }));
        return;
      }
      console.log(factualityTable([{ name: 'rate', metrics: e.metrics }]));
      const n = o.showReplies ?? 0;
      const sample = [
        ...e.known.slice(0, n).map((j, i) => [known[i]!, j] as const),
        ...e.neverSeen.slice(0, n).map((j, i) => [neverSeen[i]!, j] as const),
      ];
      for (const [q, j] of sample) {
        console.log(`${q.where}: ${q.messages.at(-1)!.content} -> ${j.reply} [${j.verdict.kind}]`);
      }
    } finally {
      model.dispose();
    }
  } finally {
    gpu.destroy();
  }
}

/** Registers `wgpt eval-factuality`. */
export function registerEvalFactuality(program: Command): void {
  program
    .command('eval-factuality')
    .description(
      'greedy answers to questions about known people and about never-seen people, judged: accuracy and ' +
        'over-refusal on known facts, refusal on never-seen people, hallucination (confident wrong answers)',
    )
    .requiredOption('--checkpoint <path>', 'the model: llm.c .bin, checkpoint folder, or .safetensors')
    .option('--tokenizer <name|dir>', "the model's encoding or tokenizer folder", 'r50k_base')
    .requiredOption('--known <file>', 'JSONL questions about people the model was trained on ({"messages", "answer"?})')
    .requiredOption('--never-seen <file>', 'JSONL questions about people the model never saw')
    .option('--max-tokens <n>', 'the most tokens of a reply', intArg({ min: 1 }), 32)
    .option('--f1 <x>', 'token F1 at or above which a reply is right', numArg({ above: 0, max: 1 }), 0.8)
    .option('--show-replies <n>', 'print the first n replies of each set with their verdicts', intArg({ min: 0 }), 0)
    .option('--json', 'print the metrics as JSON')
    .action(async (o: EvalFlags, c: Command) => evalCommand(o, c.optsWithGlobals().adapter as string | undefined));
}
