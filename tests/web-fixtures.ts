// Files for the web tests: a trained tokenizer folder, a tiny GPT-2 as an llm.c .bin, a chat checkpoint folder
// (model.bin with the ChatML markers in its vocabulary and its chat_format.json), and a file that is no checkpoint.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chatFormat, writeChatFormat } from '@wgpt/chat';
import { type GPT2Config, makeConfig, paramCount, paramOffsets, writeLlmcModel } from '@wgpt/gpt2';
import { randomF32 } from '@wgpt/runtime/testing';
import { type Encoding, loadTokenizer, saveTokenizer, trainBpe } from '@wgpt/tokenizer';

export interface WebFixtures {
  dir: string;
  tokenizer: string;
  enc: Encoding;
  /** An llm.c model file, V = the tokenizer's size. */
  model: string;
  modelConfig: GPT2Config;
  modelParams: Float32Array;
  /** A checkpoint folder fine-tuned-shaped for chat: V holds the three markers; chat_format.json beside it. */
  chat: string;
  chatConfig: GPT2Config;
  chatParams: Float32Array;
  /**
   * An llm.c model file like `model` whose LayerNorm weights are 1 to 3 instead of ±0.15: attention patterns and
   * next-token probabilities far from uniform (the model view's test tells them apart).
   */
  sharp: string;
  sharpParams: Float32Array;
  /** Text that is not a checkpoint. */
  notACheckpoint: string;
}

const CORPUS =
  'The quick brown fox jumps over the lazy dog. Tokens, tokens, tokens: a tokenizer splits text into pieces. ' +
  'Once upon a time there was a model that learned to count: one, two, three, four. ';

/** Small shapes: SwiftShader in Chromium runs at about a GFLOP/s. */
export function makeWebFixtures(): WebFixtures {
  const dir = mkdtempSync(join(tmpdir(), 'wgpt-web-'));
  const tokenizer = join(dir, 'tokenizer');
  saveTokenizer(tokenizer, trainBpe(CORPUS.repeat(4), { vocabSize: 300, pattern: 'gpt2' }), 'tiny');
  const enc = loadTokenizer(tokenizer);
  // Weights of ±0.15: peaked logits, so sampling does not hinge on the last bits of a probability.
  const modelConfig = makeConfig({ L: 2, C: 32, NH: 2, V: enc.nVocab, maxT: 64 });
  const modelParams = randomF32(paramCount(modelConfig), 5, -0.15, 0.15);
  const model = join(dir, 'tiny.bin');
  writeLlmcModel(model, { config: modelConfig, params: modelParams });
  const cf = chatFormat(enc);
  const chatConfig = makeConfig({ L: 2, C: 32, NH: 2, V: cf.vocabSize, maxT: 64 });
  const chatParams = randomF32(paramCount(chatConfig), 6, -0.15, 0.15);
  const chat = join(dir, 'sft');
  mkdirSync(chat);
  writeLlmcModel(join(chat, 'model.bin'), { config: chatConfig, params: chatParams });
  writeChatFormat(join(chat, 'chat_format.json'), cf);
  const sharpParams = modelParams.slice();
  const ln = randomF32(paramCount(modelConfig), 7, 1, 3);
  for (const name of ['ln1w', 'ln2w', 'lnfw']) {
    const o = paramOffsets(modelConfig)[name]!;
    sharpParams.set(ln.subarray(o.offset, o.offset + o.size), o.offset);
  }
  const sharp = join(dir, 'sharp.bin');
  writeLlmcModel(sharp, { config: modelConfig, params: sharpParams });
  const notACheckpoint = join(dir, 'notes.bin');
  writeFileSync(notACheckpoint, 'these are my notes, not a model\n'.repeat(64));
  return {
    dir,
    tokenizer,
    enc,
    model,
    modelConfig,
    modelParams,
    chat,
    chatConfig,
    chatParams,
    sharp,
    sharpParams,
    notACheckpoint,
  };
}
