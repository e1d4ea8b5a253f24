// Reading and writing tiktoken rank files: one token per line, `base64(bytes) rank`, ranks 0..n-1 in order.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

export class RankFileError extends Error {
  constructor(
    message: string,
    readonly file: string,
    readonly line?: number,
  ) {
    super(message);
    this.name = 'RankFileError';
  }
}

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

const B64_VALUE = new Int8Array(256).fill(-1);
for (let i = 0; i < 64; i++) B64_VALUE['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.charCodeAt(i)] = i;

/** Each token's bytes as a latin1 string, computed while parsing (BpeCore reuses them). */
export const latin1Keys = new WeakMap<readonly Uint8Array[], { keys: string[]; index: Map<string, number> }>();

/**
 * Parse rank-file content into the bytes of each rank (index = rank). `file` names the source in errors.
 * Ranks must be the integers 0..n-1 in order, and the byte strings must be distinct.
 */
export function parseRankFile(content: Uint8Array | string, file: string, expectedSha256?: string): Uint8Array[] {
  const buf = typeof content === 'string' ? new TextEncoder().encode(content) : content;
  if (expectedSha256 !== undefined) {
    const got = sha256Hex(buf);
    if (got !== expectedSha256) {
      throw new RankFileError(`${file}: sha256 ${got} does not match the expected ${expectedSha256}`, file);
    }
  }
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
    const line = Buffer.from(buf.subarray(start, Math.min(end, start + 80))).toString('latin1');
    throw new RankFileError(`${file}:${lineNo}: ${why} in line ${JSON.stringify(line)} (expected "<base64 bytes> <rank>")`, file, lineNo);
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
  const allStr = Buffer.from(all.buffer, all.byteOffset, o).toString('latin1');
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

export function readRankFile(path: string, expectedSha256?: string): Uint8Array[] {
  let data: Uint8Array;
  try {
    data = readFileSync(path);
  } catch (e) {
    throw new RankFileError(`${path}: cannot read rank file (${(e as Error).message})`, path);
  }
  return parseRankFile(data, path, expectedSha256);
}

/** Serialize ranks in tiktoken's format (`base64 rank\n` per token). */
export function formatRankFile(tokens: readonly Uint8Array[]): string {
  let out = '';
  for (let i = 0; i < tokens.length; i++) out += `${Buffer.from(tokens[i]).toString('base64')} ${i}\n`;
  return out;
}
