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

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Parse rank-file content into the bytes of each rank (index = rank). `file` names the source in errors.
 * Ranks must be the integers 0..n-1, each exactly once, and the byte strings must be distinct.
 */
export function parseRankFile(content: Uint8Array | string, file: string, expectedSha256?: string): Uint8Array[] {
  const buf = typeof content === 'string' ? new TextEncoder().encode(content) : content;
  if (expectedSha256 !== undefined) {
    const got = sha256Hex(buf);
    if (got !== expectedSha256) {
      throw new RankFileError(`${file}: sha256 ${got} does not match the expected ${expectedSha256}`, file);
    }
  }
  const text = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString('latin1');
  const tokens: Uint8Array[] = [];
  const seen = new Set<string>();
  let lineNo = 0;
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    lineNo++;
    const line = text.slice(start, end);
    start = end + 1;
    if (line.length === 0) continue; // blank (e.g. trailing) lines are allowed
    const sp = line.indexOf(' ');
    const b64 = sp < 0 ? '' : line.slice(0, sp);
    const rankStr = sp < 0 ? '' : line.slice(sp + 1);
    if (sp <= 0 || !B64.test(b64) || b64.length % 4 !== 0 || !/^\d+$/.test(rankStr)) {
      throw new RankFileError(
        `${file}:${lineNo}: malformed line ${JSON.stringify(line.slice(0, 80))} (expected "<base64 bytes> <rank>")`,
        file,
        lineNo,
      );
    }
    const rank = Number(rankStr);
    if (rank !== tokens.length) {
      throw new RankFileError(`${file}:${lineNo}: rank ${rank} out of order (expected ${tokens.length})`, file, lineNo);
    }
    const bytes = new Uint8Array(Buffer.from(b64, 'base64'));
    if (bytes.length === 0) throw new RankFileError(`${file}:${lineNo}: empty token`, file, lineNo);
    const key = Buffer.from(bytes).toString('latin1');
    if (seen.has(key)) throw new RankFileError(`${file}:${lineNo}: duplicate token ${JSON.stringify(b64)}`, file, lineNo);
    seen.add(key);
    tokens.push(bytes);
  }
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
