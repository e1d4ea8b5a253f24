// Seeded randomness for data order and synthetic data: pure-rand's xoroshiro128+ with its unbiased integer
// distribution, so the same seed gives the same choices on every machine and Node version.
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';

export class Rng {
  private readonly g;

  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`seed ${seed} is not an integer`);
    // xoroshiro128plus takes a 32-bit seed; fold larger seeds so that they still differ.
    this.g = xoroshiro128plus((seed ^ Math.floor(seed / 2 ** 32)) | 0);
  }

  /** An integer in [lo, hi], both included. */
  int(lo: number, hi: number): number {
    return uniformInt(this.g, lo, hi);
  }

  /** A number in [0, 1). */
  float(): number {
    return uniformFloat64(this.g);
  }

  /** A standard normal number (Box-Muller; 1 - u keeps log away from 0). */
  normal(): number {
    return Math.sqrt(-2 * Math.log(1 - this.float())) * Math.cos(2 * Math.PI * this.float());
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list');
    return items[this.int(0, items.length - 1)];
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  /** Shuffles in place (Fisher-Yates) and returns the array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      const t = items[i];
      items[i] = items[j];
      items[j] = t;
    }
    return items;
  }
}
