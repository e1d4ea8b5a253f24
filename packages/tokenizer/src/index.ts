export * from './core.ts';
export {
  getEncoding,
  OPENAI_ENCODINGS,
  OPENAI_ENCODING_NAMES,
  isOpenAiEncodingName,
  rankFilePath,
} from './registry.ts';
export type { OpenAiEncodingName } from './registry.ts';
export { parseRankFile, readRankFile, formatRankFile, sha256Hex } from './ranks.ts';
export { saveTokenizer, loadTokenizer, encodeFile, RANK_FILE, CONFIG_FILE, TokenizerConfigError } from './io.ts';
export type { TokenizerConfig } from './io.ts';
export { register, parseIds, CliError } from './cli.ts';
export type { CliIo } from './cli.ts';
