// The part of @wgpt/tokenizer that uses no Node APIs (for browsers and workers): encodings built from rank
// bytes you fetch yourself, training, streaming. `@wgpt/tokenizer` adds loading from disk, saving and the CLI.
export { BpeEncoding, DisallowedSpecialError } from './encoding.ts';
export type { Encoding, EncodeOptions, EncodingSpec, SpecialSet } from './encoding.ts';
export { parseRankBytes, RankFileError } from './rankfile.ts';
export { TIKTOKEN_PATTERNS, JS_PATTERNS, PATTERN_NAMES, isPatternName, regexSplit } from './patterns.ts';
export type { PatternName } from './patterns.ts';
export { decodeUtf8Escaped, encodeUtf8Escaped, Utf8EscapeDecoder, lastSafeCut } from './utf8.ts';
export { trainBpe, trainBpeStream, trainFromCounts, trainedEncoding, ChunkCounter } from './train.ts';
export { VocabSizeError, checkVocabSize, MAX_VOCAB_SIZE } from './train.ts';
export type { TrainOptions, TrainedBpe } from './train.ts';
export { encodeStream } from './stream.ts';
export type { StreamOptions } from './stream.ts';
