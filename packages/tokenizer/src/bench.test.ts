import { expect, it } from 'vitest';
import suite from './tokenizer.bench.ts';

it('the bench suite runs in quick mode and every row checks out', async () => {
  const rows = await suite.run({ quick: true, log: () => {} });
  expect(rows.length).toBeGreaterThan(10);
  for (const r of rows) {
    expect(r.medianMs).toBeGreaterThan(0);
    // gpt-tokenizer's ids are its own business; ours and tiktoken's must pass.
    if (!r.name.includes('gpt-tokenizer')) expect(r.check, r.name).toBe('pass');
  }
});
