// Saving and loading trained tokenizers: a tiktoken rank file plus a small JSON with the pattern and specials.
import { createReadStream, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WgptError, withPath } from '@wgpt/base/errors';
import { BpeEncoding, type Encoding } from './encoding.ts';
import { isPatternName, type PatternName, TIKTOKEN_PATTERNS } from './patterns.ts';
import { formatRankFile, readRankFile, sha256Hex } from './ranks.ts';
import { encodeStream } from './stream.ts';
import type { TrainedBpe } from './train.ts';

export const RANK_FILE = 'tokenizer.tiktoken';
export const CONFIG_FILE = 'tokenizer.json';

export interface TokenizerConfig {
  format: 'wgpt-bpe';
  version: 1;
  name: string;
  /** Pre-tokenization pattern: gpt2 (r50k), gpt4 (cl100k) or gpt4o (o200k). */
  pattern: PatternName;
  /** The pattern as tiktoken writes it (informational). */
  patternRegex: string;
  specialTokens: Record<string, number>;
  eot: string | null;
  vocabSize: number;
  rankFile: string;
  rankFileSha256: string;
}

/** Write DIR/tokenizer.tiktoken and DIR/tokenizer.json. Same vocabulary -> byte-identical files. */
export function saveTokenizer(dir: string, t: TrainedBpe, name = 'trained'): TokenizerConfig {
  mkdirSync(dir, { recursive: true });
  const ranks = Buffer.from(formatRankFile(t.tokens), 'latin1');
  const rankPath = join(dir, RANK_FILE);
  withPath(rankPath, () => writeFileSync(rankPath, ranks));
  const eot = '<|endoftext|>' in t.specialTokens ? '<|endoftext|>' : (Object.keys(t.specialTokens)[0] ?? null);
  const config: TokenizerConfig = {
    format: 'wgpt-bpe',
    version: 1,
    name,
    pattern: t.pattern,
    patternRegex: TIKTOKEN_PATTERNS[t.pattern],
    specialTokens: t.specialTokens,
    eot,
    vocabSize: t.vocabSize,
    rankFile: RANK_FILE,
    rankFileSha256: sha256Hex(ranks),
  };
  const configPath = join(dir, CONFIG_FILE);
  withPath(configPath, () => writeFileSync(configPath, `${JSON.stringify(config, null, 2)}\n`));
  return config;
}

/** A tokenizer folder that cannot be loaded: names the file and what is wrong with it. */
export class TokenizerConfigError extends WgptError {
  override name = 'TokenizerConfigError';
}

/** Load a tokenizer saved by saveTokenizer (the rank file is checked against the hash in the JSON). */
export function loadTokenizer(dir: string): Encoding {
  const cfgPath = join(dir, CONFIG_FILE);
  let raw: string;
  try {
    raw = readFileSync(cfgPath, 'utf8');
  } catch (e) {
    throw new TokenizerConfigError(`${cfgPath}: cannot read tokenizer config (${(e as Error).message})`);
  }
  let cfg: TokenizerConfig;
  try {
    cfg = JSON.parse(raw) as TokenizerConfig;
  } catch (e) {
    throw new TokenizerConfigError(`${cfgPath}: invalid JSON (${(e as Error).message})`);
  }
  const bad = (what: string) => new TokenizerConfigError(`${cfgPath}: ${what}`);
  if (cfg.format !== 'wgpt-bpe') throw bad(`"format" is ${JSON.stringify(cfg.format)}, expected "wgpt-bpe"`);
  if (!isPatternName(cfg.pattern)) throw bad(`unknown "pattern" ${JSON.stringify(cfg.pattern)} (gpt2, gpt4 or gpt4o)`);
  if (typeof cfg.specialTokens !== 'object' || cfg.specialTokens === null) {
    throw bad('"specialTokens" must be an object');
  }
  const rankPath = join(dir, cfg.rankFile ?? RANK_FILE);
  const tokens = readRankFile(rankPath, cfg.rankFileSha256);
  // Any tiktoken rank file works (ours start with the 256 single bytes in order; OpenAI's do not).
  try {
    return new BpeEncoding({
      name: cfg.name ?? 'trained',
      pattern: cfg.pattern,
      tokens,
      specialTokens: cfg.specialTokens,
      eot: cfg.eot ?? undefined,
    });
  } catch (e) {
    throw new TokenizerConfigError(`${dir}: ${(e as Error).message}`);
  }
}

/** Encode a file in a streaming way; `onProgress(bytesRead, totalBytes)` after each read. */
export async function encodeFile(
  enc: Encoding,
  path: string,
  onProgress?: (bytesRead: number, totalBytes: number) => void,
): Promise<number[]> {
  const total = statSync(path).size;
  let read = 0;
  const stream = createReadStream(path, { highWaterMark: 1 << 20 });
  async function* bytes(): AsyncGenerator<Uint8Array> {
    for await (const b of stream as AsyncIterable<Buffer>) {
      read += b.length;
      onProgress?.(read, total);
      yield b;
    }
  }
  const out: number[] = [];
  for await (const batch of encodeStream(enc, bytes())) for (const id of batch) out.push(id);
  return out;
}
