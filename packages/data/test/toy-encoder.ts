import type { TokenEncoder } from '../src/tokenize.ts';

/** Byte-level toy tokenizer: token = UTF-8 byte, EOT = 256. */
export const byteEncoder: TokenEncoder = {
  name: 'toy-bytes',
  nVocab: 257,
  eotToken: 256,
  encodeOrdinary: (text: string) => Array.from(new TextEncoder().encode(text)),
};

/** Same but with a vocabulary too large for uint16 tokens. */
export const bigEncoder: TokenEncoder = {
  name: 'toy-big',
  nVocab: 100_000,
  eotToken: 99_999,
  encodeOrdinary: (text: string) => Array.from(new TextEncoder().encode(text), (b) => b * 300),
};
