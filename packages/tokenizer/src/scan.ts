// Pre-tokenizers: split text into chunks with an encoding's pattern.
import { type PatternName, patternRegex } from './patterns.ts';

export type Scanner = (text: string, emit: (chunk: string) => void) => void;

export function makeRegexScanner(name: PatternName): Scanner {
  const re = patternRegex(name);
  return (text, emit) => {
    re.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(text)) !== null) emit(m[0]);
  };
}

export function makeScanner(name: PatternName): Scanner {
  return makeRegexScanner(name);
}
