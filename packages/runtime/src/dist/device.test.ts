// All-reduce of GPU buffers across two rank processes, each with its own device (SwiftShader here).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { BCAST_FLOATS, BCAST_SPANS, rankInput } from '../../test/dist-data.ts';
import { launchLocal } from './index.ts';

const ROOT = new URL('../../../../', import.meta.url).pathname;
const out = mkdtempSync(join(tmpdir(), 'wgpt-dist-gpu-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

it('2 ranks: the rank-order f32 sum, the same bits on both, guard bands kept; spans sent by their owners', async () => {
  const n = 100_003; // 4 device chunks of 30011 floats, the last one short
  const W = 2;
  let stderr = '';
  const res = await launchLocal({
    nproc: W,
    command: process.execPath,
    args: ['scripts/run-ts.mjs', 'packages/runtime/test/dist-gpu-rank.ts', out, String(n)],
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
    graceMs: 1500,
    onSpawn: (_, child) => child.stderr!.on('data', (d: Buffer) => (stderr += d.toString())),
  });
  expect(stderr).not.toMatch(/Error/);
  expect(res.exits.map((e) => e.code)).toEqual([0, 0]);
  const xs = [0, 1].map((r) => rankInput(r, n, 4));
  const want = new Float32Array(n + 10).fill(-7);
  for (let i = 0; i < n; i++) want[5 + i] = xs[0]![i]! + xs[1]![i]!; // stored as f32: one f32 addition
  for (let r = 0; r < W; r++) {
    const b = readFileSync(join(out, `gpu-rank${r}.f32`));
    expect(Buffer.compare(b, Buffer.from(want.buffer))).toBe(0);
  }
  // broadcastSpans: each owner's spans reach the other rank; floats in no span keep each rank's own value.
  for (let r = 0; r < W; r++) {
    const want = rankInput(r, BCAST_FLOATS, 6);
    BCAST_SPANS.forEach((list, owner) => {
      const theirs = rankInput(owner, BCAST_FLOATS, 6);
      for (const [at, count] of list) want.set(theirs.subarray(at, at + count), at);
    });
    const b = readFileSync(join(out, `gpu-bcast-rank${r}.f32`));
    expect(Buffer.compare(b, Buffer.from(want.buffer)), `rank ${r}`).toBe(0);
  }
  expect(rankInput(0, 5, 6)).not.toEqual(rankInput(1, 5, 6)); // the ranks' values tell them apart
}, 120_000);
