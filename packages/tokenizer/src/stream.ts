// Streaming encode for large inputs: pieces of text or bytes of any size go in, batches of token ids come out.
// Pieces are joined and cut only where no pattern can match across the cut (see lastSafeCut), so the ids are
// exactly those of encoding the whole input at once (special-token text is treated as plain text).
import { BpeEncoding, type Encoding } from './encoding.ts';
import { encodeUtf8Escaped, lastSafeCut, Utf8EscapeDecoder } from './utf8.ts';

export interface StreamOptions {
  /** Carry text until at least this many characters are buffered before cutting (default 1M). */
  minBatchChars?: number;
}

function encodeEscaped(enc: Encoding, text: string): number[] {
  if (enc instanceof BpeEncoding) return enc.encodeEscaped(text);
  return enc.encodeBytes(encodeUtf8Escaped(text));
}

/** Encode a stream of strings or byte chunks (invalid UTF-8 kept byte-exact); yields batches of ids. */
export async function* encodeStream(
  enc: Encoding,
  source: AsyncIterable<string | Uint8Array> | Iterable<string | Uint8Array>,
  opts: StreamOptions = {},
): AsyncGenerator<number[]> {
  const minBatch = opts.minBatchChars ?? 1 << 20;
  const dec = new Utf8EscapeDecoder();
  let carry = '';
  let searched = 0;
  let kind: 'string' | 'bytes' | undefined;
  // Strings are made well-formed (lone surrogates -> U+FFFD) as encode() does; in bytes, invalid UTF-8 is
  // carried as escapes. Cuts never split a surrogate pair (they follow a newline).
  const encodeHead = (text: string) =>
    kind === 'string' ? enc.encodeOrdinary(text) : encodeEscaped(enc, text);
  for await (const piece of source) {
    const k = typeof piece === 'string' ? 'string' : 'bytes';
    if (kind !== undefined && k !== kind)
      throw new Error('encodeStream: a stream must be all strings or all byte chunks');
    kind = k;
    carry += typeof piece === 'string' ? piece : dec.decode(piece);
    if (carry.length < minBatch) continue;
    const cut = lastSafeCut(carry, Math.max(0, searched - 4));
    if (cut <= 0) {
      searched = carry.length; // only new text can hold a cut point next time
      continue;
    }
    yield encodeHead(carry.slice(0, cut));
    carry = carry.slice(cut);
    searched = carry.length;
  }
  carry += dec.end();
  if (carry.length > 0) yield encodeHead(carry);
}
