import { describe, expect, it } from 'vitest';
import suite from '../src/data.bench.ts';

describe('data bench (quick)', () => {
  it('reports every stage and end to end with 1 and 2 workers, same documents kept', async () => {
    const t = performance.now();
    const rows = await suite.run({ quick: true, log: () => {} });
    expect(suite.gpu).toBeUndefined();
    expect(rows.length).toBe(12);
    for (const r of rows) {
      expect(r.medianMs).toBeGreaterThan(0);
      expect(r.rate!.value).toBeGreaterThan(0);
      expect(r.check).not.toBe('fail');
    }
    expect(rows.filter((r) => r.name.startsWith('end to end')).map((r) => r.check)).toEqual(['pass', 'pass']);
    expect(performance.now() - t).toBeLessThan(60_000);
  });
});
