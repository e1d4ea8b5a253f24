// Parsers for numeric command-line values, for commander's `.option(flags, description, parser, default)`. A value
// out of range is a commander InvalidArgumentError, which commander reports naming the flag (exit code 2).
import { InvalidArgumentError } from 'commander';

export interface Range {
  /** Smallest allowed value (inclusive). */
  min?: number;
  /** Largest allowed value (inclusive). */
  max?: number;
  /** The value must be strictly greater than this. */
  above?: number;
  /** The value must be strictly less than this. */
  below?: number;
}

function inRange(n: number, r: Range): string | null {
  if (r.min !== undefined && n < r.min) return `must be at least ${r.min}`;
  if (r.above !== undefined && n <= r.above) return `must be greater than ${r.above}`;
  if (r.max !== undefined && n > r.max) return `must be at most ${r.max}`;
  if (r.below !== undefined && n >= r.below) return `must be less than ${r.below}`;
  return null;
}

/** An integer in a range: `intArg({ min: 1 })` for sizes and counts. */
export function intArg(r: Range = {}): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isSafeInteger(n))
      throw new InvalidArgumentError(`not an integer: ${JSON.stringify(value)}`);
    const bad = inRange(n, r);
    if (bad) throw new InvalidArgumentError(`${n} ${bad}`);
    return n;
  };
}

/**
 * A finite number in a range: `numArg({ above: 0 })` for a learning rate, `numArg({ min: 0, max: 1 })` for a
 * fraction.
 */
export function numArg(r: Range = {}): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n))
      throw new InvalidArgumentError(`not a number: ${JSON.stringify(value)}`);
    const bad = inRange(n, r);
    if (bad) throw new InvalidArgumentError(`${n} ${bad}`);
    return n;
  };
}

/** Comma-separated integers in a range, e.g. token ids: `intListArg({ min: 0 })`. The bad item is named by position. */
export function intListArg(r: Range = {}): (value: string) => number[] {
  const one = intArg(r);
  return (value: string) => {
    const items = value.split(',');
    return items.map((item, i) => {
      try {
        return one(item.trim());
      } catch (e) {
        const where = items.length > 1 ? ` (item ${i + 1} of ${items.length})` : '';
        throw new InvalidArgumentError(`${(e as Error).message}${where}`);
      }
    });
  };
}
