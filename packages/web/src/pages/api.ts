// What `wgpt serve` tells its pages (GET /api/info), shared by the server and the pages.
import type { ChatFormatInfo } from '@wgpt/chat';
import type { GPT2Config } from '@wgpt/gpt2';
import type { PatternName } from '@wgpt/tokenizer/core';

export interface EncodingInfo {
  /** The name in /api/ranks/<id>: an OpenAI encoding's name, or `trained` for `--tokenizer DIR`. */
  id: string;
  name: string;
  pattern: PatternName;
  specialTokens: Record<string, number>;
  eot: string | null;
  /** SHA-256 of the rank file, checked by the page. */
  sha256: string;
  nVocab: number;
}

export interface CheckpointInfo {
  /** The name in /api/checkpoints/<id> (its parameters as little-endian f32, llm.c's order). */
  id: string;
  name: string;
  config: GPT2Config;
  /** The chat format saved beside the checkpoint (chat_format.json), or null. */
  chat: ChatFormatInfo | null;
}

export interface ServerInfo {
  encodings: EncodingInfo[];
  checkpoints: CheckpointInfo[];
  maxUploadBytes: number;
}
