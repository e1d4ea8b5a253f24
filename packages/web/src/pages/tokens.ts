// Tokens as the tokenizer page shows them: one piece per token, its text when its bytes are whole UTF-8, else its
// bytes as \xNN (a character split over tokens, e.g. an emoji or a CJK character in a small vocabulary).
import type { Encoding } from '@wgpt/tokenizer/core';

export interface TokenPiece {
  id: number;
  text: string;
  special: boolean;
  /** True when the token's bytes are not whole UTF-8 characters on their own. */
  partial: boolean;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function tokenPieces(enc: Encoding, ids: ArrayLike<number>): TokenPiece[] {
  const out: TokenPiece[] = [];
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    const bytes = enc.tokenBytes(id);
    const special = enc.isSpecial(id);
    try {
      out.push({ id, text: utf8.decode(bytes), special, partial: false });
    } catch {
      const text = [...bytes].map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('');
      out.push({ id, text, special, partial: true });
    }
  }
  return out;
}

/** Unicode code points, UTF-8 bytes: the counts the page shows beside the token count. */
export function textCounts(text: string): { characters: number; bytes: number } {
  return { characters: [...text].length, bytes: new TextEncoder().encode(text).length };
}
