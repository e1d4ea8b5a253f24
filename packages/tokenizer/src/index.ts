export { getEncoding, OPENAI_ENCODINGS, OPENAI_ENCODING_NAMES, isOpenAiEncodingName, rankFilePath } from './registry.ts';
export type { OpenAiEncodingName } from './registry.ts';
export { BpeEncoding, DisallowedSpecialError, decodeUtf8Escaped } from './encoding.ts';
export type { Encoding, EncodeOptions, EncodingSpec, SpecialSet } from './encoding.ts';
export { parseRankFile, readRankFile, formatRankFile, RankFileError, sha256Hex } from './ranks.ts';
export { TIKTOKEN_PATTERNS, JS_PATTERNS, PATTERN_NAMES, isPatternName, regexSplit } from './patterns.ts';
export type { PatternName } from './patterns.ts';
