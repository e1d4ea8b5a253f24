// Parsing tiktoken rank files: one token per line, `base64(bytes) rank`, ranks 0..n-1 in order. No Node APIs
// (ranks.ts adds reading from disk and the SHA-256 check).
import { WgptError } from '@wgpt/base/errors';
import { latin1Keys, latin1Of } from './latin1.ts';

/** A rank file that cannot be read or parsed: names the file and line. */
export class RankFileError extends WgptError {
  override name = 'RankFileError';
  constructor(
    message: string,
    readonly file: string,
    readonly line?: number,
  ) {
    super(message);
  }
}

const B64_VALUE = new Int8Array(256).fill(-1);
for (let i = 0; i < 64; i++)
  B64_VALUE['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.charCodeAt(i)] = i;

/**
 * Parse rank-file content into the bytes of each rank (index = rank). `file` names the source in errors.
 * Ranks must be the integers 0..n-1 in order, and the byte strings must be distinct.
 */
export function parseRankBytes(content: Uint8Array | string, file: string): Uint8Array[] {
  const buf = typeof content === 'string' ? new TextEncoder().encode(content) : content;
  const n = buf.length;
  // Decoded bytes are never longer than the base64 text.
  const all = new Uint8Array(n);
  let o = 0;
  const tokens: Uint8Array[] = [];
  const keys: string[] = [];
  const seen = new Map<string, number>();
  const lines: number[] = [];
  let lineNo = 0;
  let i = 0;
  const fail = (why: string): never => {
    let end = i;
    while (end < n && buf[end] !== 10) end++;
    let start = i;
    while (start > 0 && buf[start - 1] !== 10) start--;
    const line = latin1Of(buf, start, Math.min(end, start + 80));
    throw new RankFileError(
      `${file}:${lineNo}: ${why} in line ${JSON.stringify(line)} (expected "<base64 bytes> <rank>")`,
      file,
      lineNo,
    );
  };
  while (i < n) {
    lineNo++;
    if (buf[i] === 10) {
      i++; // blank line
      continue;
    }
    // base64 field
    const start = o;
    let acc = 0;
    let bits = 0;
    let count = 0;
    let pad = 0;
    while (i < n && buf[i] !== 32 && buf[i] !== 10 && buf[i] !== 13) {
      const c = buf[i];
      if (c === 61) pad++;
      else {
        const v = B64_VALUE[c];
        if (v < 0 || pad > 0) fail('malformed base64');
        acc = ((acc << 6) | v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
          bits -= 8;
          all[o++] = (acc >> bits) & 0xff;
        }
      }
      count++;
      i++;
    }
    if (count === 0 || count % 4 !== 0 || pad > 2) fail('malformed base64');
    if (buf[i] !== 32) fail('missing rank');
    i++;
    let rank = 0;
    let digits = 0;
    while (i < n && buf[i] >= 48 && buf[i] <= 57) {
      rank = rank * 10 + (buf[i] - 48);
      digits++;
      i++;
    }
    if (buf[i] === 13) i++;
    if (digits === 0 || digits > 9 || (i < n && buf[i] !== 10)) fail('malformed rank');
    i++; // newline
    if (rank !== tokens.length) {
      throw new RankFileError(`${file}:${lineNo}: rank ${rank} out of order (expected ${tokens.length})`, file, lineNo);
    }
    if (o === start) throw new RankFileError(`${file}:${lineNo}: empty token`, file, lineNo);
    tokens.push(all.subarray(start, o));
    lines.push(lineNo);
  }
  // Keys: slices of one latin1 string of all the bytes (cheap), checked for duplicates.
  const allStr = latin1Of(all, 0, o);
  for (let r = 0; r < tokens.length; r++) {
    const t = tokens[r];
    const key = allStr.slice(t.byteOffset - all.byteOffset, t.byteOffset - all.byteOffset + t.length);
    const prev = seen.get(key);
    if (prev !== undefined) {
      throw new RankFileError(`${file}:${lines[r]}: duplicate token (the same bytes as rank ${prev})`, file, lines[r]);
    }
    seen.set(key, r);
    keys.push(key);
  }
  latin1Keys.set(tokens, { keys, index: seen });
  return tokens;
}

