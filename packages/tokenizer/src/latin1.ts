// Bytes as "latin1" strings (one char per byte, 0..255): cheap Map keys for byte strings. No Node APIs.

/** The bytes b[start, end) as a string of char codes 0..255. */
export function latin1Of(b: Uint8Array, start: number, end: number): string {
  if (end - start <= 16) {
    let s = '';
    for (let i = start; i < end; i++) s += String.fromCharCode(b[i]);
    return s;
  }
  let s = '';
  for (let i = start; i < end; i += 8192) {
    s += String.fromCharCode.apply(null, b.subarray(i, Math.min(end, i + 8192)) as unknown as number[]);
  }
  return s;
}

/** Each token's bytes as a latin1 string and the index from them to ranks, computed while parsing a rank file. */
export const latin1Keys = new WeakMap<readonly Uint8Array[], { keys: string[]; index: Map<string, number> }>();
