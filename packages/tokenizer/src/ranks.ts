// Reading and writing tiktoken rank files on disk, with a SHA-256 check (Node).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseRankBytes, RankFileError } from './rankfile.ts';

export { RankFileError } from './rankfile.ts';

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Parse rank-file content into the bytes of each rank (index = rank), after checking its SHA-256 when one is
 * given. `file` names the source in errors.
 */
export function parseRankFile(content: Uint8Array | string, file: string, expectedSha256?: string): Uint8Array[] {
  const buf = typeof content === 'string' ? new TextEncoder().encode(content) : content;
  if (expectedSha256 !== undefined) {
    const got = sha256Hex(buf);
    if (got !== expectedSha256) {
      throw new RankFileError(`${file}: sha256 ${got} does not match the expected ${expectedSha256}`, file);
    }
  }
  return parseRankBytes(buf, file);
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
