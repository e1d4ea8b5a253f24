// ZeRO-1's assignment of tensors to ranks (the training test checks that ZeRO-1 gives plain data parallelism's bits).
import { expect, it } from 'vitest';
import { zeroOwners } from '../src/train.ts';

it('zeroOwners: the largest tensor first, each to the least loaded rank, the lowest rank on a tie', () => {
  // Loads before each choice: 5 → rank 0 (0, 0 a tie); 3 → rank 1 (5, 0); 3 → rank 1 (5, 3); 2 → rank 0 (5, 6);
  // 1 → rank 1 (7, 6).
  expect(zeroOwners([1, 3, 5, 2, 3], 2)).toEqual([1, 1, 0, 0, 1]);
  // Equal sizes go round in index order; one rank owns everything.
  expect(zeroOwners([4, 4, 4, 4], 3)).toEqual([0, 1, 2, 0]);
  expect(zeroOwners([7, 1], 1)).toEqual([0, 0]);
  // More ranks than tensors: the extra ranks own nothing.
  expect(zeroOwners([2, 9], 4)).toEqual([1, 0]);
});
