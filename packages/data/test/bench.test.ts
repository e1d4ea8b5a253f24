import { describe, expect, it } from 'vitest';
import suite from '../src/data.bench.ts';

// The quick bench as a correctness check: every row is reported and both end-to-end runs keep the same documents.
// How fast it runs is the benchmark's business (bench/RESULTS.md), not a test's.
describe('data bench (quick)', () => {
  it('reports every stage and end to end with 1 and 2 workers, same documents kept', async () => {
    const rows = await suite.run({ quick: true, log: () => {} });
    expect(suite.gpu).toBeUndefined();
    expect(rows.length).toBe(12);
    for (const r of rows) {
      expect(r.medianMs).toBeGreaterThan(0);
      expect(r.rate!.value).toBeGreaterThan(0);
      expect(r.check).not.toBe('fail');
    }
    expect(rows.filter((r) => r.name.startsWith('end to end')).map((r) => r.check)).toEqual(['pass', 'pass']);
  });
});
