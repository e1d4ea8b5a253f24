// UTF-8 with "surrogate escapes": bytes that are not part of a valid UTF-8 sequence are carried in JS strings
// as the lone surrogates U+DC80..U+DCFF (byte 0x80 + k -> U+DC80 + k), so that byte-level BPE can keep them
// byte-exact. Valid UTF-8 never decodes to a lone surrogate, so the mapping is unambiguous.

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Decode UTF-8, mapping each invalid byte to U+DC00 + byte. */
export function decodeUtf8Escaped(b: Uint8Array): string {
  try {
    return strictUtf8.decode(b);
  } catch {
    // fall through to the byte-exact decoder
  }
  const parts: string[] = [];
  let codes: number[] = [];
  const n = b.length;
  let i = 0;
  while (i < n) {
    const c = b[i];
    let cp = -1;
    let len = 1;
    if (c < 0x80) cp = c;
    else if (c >= 0xc2 && c <= 0xdf) {
      if (i + 1 < n && (b[i + 1] & 0xc0) === 0x80) {
        cp = ((c & 0x1f) << 6) | (b[i + 1] & 0x3f);
        len = 2;
      }
    } else if (c >= 0xe0 && c <= 0xef) {
      const lo = c === 0xe0 ? 0xa0 : 0x80;
      const hi = c === 0xed ? 0x9f : 0xbf;
      if (i + 2 < n && b[i + 1] >= lo && b[i + 1] <= hi && (b[i + 2] & 0xc0) === 0x80) {
        cp = ((c & 0x0f) << 12) | ((b[i + 1] & 0x3f) << 6) | (b[i + 2] & 0x3f);
        len = 3;
      }
    } else if (c >= 0xf0 && c <= 0xf4) {
      const lo = c === 0xf0 ? 0x90 : 0x80;
      const hi = c === 0xf4 ? 0x8f : 0xbf;
      if (i + 3 < n && b[i + 1] >= lo && b[i + 1] <= hi && (b[i + 2] & 0xc0) === 0x80 && (b[i + 3] & 0xc0) === 0x80) {
        cp = ((c & 0x07) << 18) | ((b[i + 1] & 0x3f) << 12) | ((b[i + 2] & 0x3f) << 6) | (b[i + 3] & 0x3f);
        len = 4;
      }
    }
    if (cp < 0) codes.push(0xdc00 + c);
    else if (cp >= 0x10000) {
      cp -= 0x10000;
      codes.push(0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
    } else codes.push(cp);
    i += len;
    if (codes.length >= 8192) {
      parts.push(String.fromCharCode.apply(null, codes));
      codes = [];
    }
  }
  parts.push(String.fromCharCode.apply(null, codes));
  return parts.join('');
}

/** Length of an incomplete (but so far valid) UTF-8 sequence at the end of b, 0 if none. */
function incompleteTail(b: Uint8Array): number {
  const n = b.length;
  for (let k = 1; k <= 3 && k <= n; k++) {
    const c = b[n - k];
    if ((c & 0xc0) === 0x80) continue; // continuation byte: look further back
    const need = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 1;
    return need > k ? k : 0;
  }
  return 0;
}

/** Incremental decoder for byte streams (file reads): a sequence cut between two reads is joined first. */
export class Utf8EscapeDecoder {
  private pending = new Uint8Array(0);

  decode(chunk: Uint8Array, stream = true): string {
    let b = chunk;
    if (this.pending.length > 0) {
      b = new Uint8Array(this.pending.length + chunk.length);
      b.set(this.pending);
      b.set(chunk, this.pending.length);
    }
    const keep = stream ? incompleteTail(b) : 0;
    this.pending = b.slice(b.length - keep);
    return decodeUtf8Escaped(keep ? b.subarray(0, b.length - keep) : b);
  }

  end(): string {
    const s = this.pending.length ? decodeUtf8Escaped(this.pending) : '';
    this.pending = new Uint8Array(0);
    return s;
  }
}

/** UTF-8 bytes of a string in which U+DC80..U+DCFF are escaped raw bytes (other lone surrogates -> U+FFFD). */
export function encodeUtf8Escaped(s: string): Uint8Array {
  const buf = new Uint8Array(s.length * 3);
  let n = 0;
  const len = s.length;
  for (let i = 0; i < len; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) buf[n++] = c;
    else if (c < 0x800) {
      buf[n++] = 0xc0 | (c >> 6);
      buf[n++] = 0x80 | (c & 63);
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < len ? s.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
        buf[n++] = 0xf0 | (c >> 18);
        buf[n++] = 0x80 | ((c >> 12) & 63);
        buf[n++] = 0x80 | ((c >> 6) & 63);
        buf[n++] = 0x80 | (c & 63);
      } else if (c >= 0xdc80 && c <= 0xdcff) buf[n++] = c - 0xdc00;
      else {
        buf[n++] = 0xef;
        buf[n++] = 0xbf;
        buf[n++] = 0xbd;
      }
    } else {
      buf[n++] = 0xe0 | (c >> 12);
      buf[n++] = 0x80 | ((c >> 6) & 63);
      buf[n++] = 0x80 | (c & 63);
    }
  }
  return buf.slice(0, n);
}

const SAFE_CUT = /\P{White_Space}\n(?=\p{L})/gu;

/**
 * The last position in `text` where it can be cut without changing how any of the three patterns splits it:
 * right after a newline that follows a non-space character and precedes a letter. No pattern matches across
 * such a newline-letter boundary, and the chunks before it are the same whether or not text follows.
 * Returns -1 when there is none.
 */
export function lastSafeCut(text: string, from = 0): number {
  // Search windows of growing size from the end so that the common case looks at little text.
  for (let w = 4096; ; w *= 4) {
    const s = Math.max(from, text.length - w);
    SAFE_CUT.lastIndex = s;
    let last = -1;
    let m: RegExpExecArray | null;
    // Matches cannot overlap (the next one's first character follows this one's newline).
    while ((m = SAFE_CUT.exec(text)) !== null) last = m.index + m[0].length;
    if (last >= 0) return last;
    if (s === from) return -1;
  }
}
