// The shared-memory collective with the GPU summer attached gives the bytes it gives with the CPU summer, across
// rank processes that each open their own device (SwiftShader here), and those are the plain rank-order f32 sums.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchLocal, shardRange } from '@wgpt/runtime/dist';
import { afterAll, expect, it } from 'vitest';
import { rankOrderSumRef } from './allreduce.ref.ts';
import { summerInput } from './summer-data.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'wgpt-dist-sum-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const bytes = (file: string) => readFileSync(file);
const asBytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

for (const W of [2, 3])
  it(`${W} ranks, WGPT_DIST_SUM=gpu: GPU summer's bytes = CPU summer's = the rank-order sum`, async () => {
    const n = 10_007;
    const chunk = 4099; // the rank program's chunkFloats: several rounds, the last one short
    const out = join(dir, `w${W}`);
    mkdirSync(out);
    let stderr = '';
    const res = await launchLocal({
      nproc: W,
      command: process.execPath,
      args: ['scripts/run-ts.mjs', 'kernels/allreduce/summer-rank.ts', out, String(n)],
      cwd: ROOT,
      env: { WGPT_DIST_SUM: 'gpu' },
      stdio: ['ignore', 'ignore', 'pipe'],
      graceMs: 1500,
      onSpawn: (_, child) => child.stderr!.on('data', (d: Buffer) => (stderr += d.toString())),
    });
    expect(stderr).not.toMatch(/Error/);
    expect(res.exits.map((e) => e.code)).toEqual(new Array(W).fill(0));
    const inputs = (seed: number) => [...Array(W).keys()].map((r) => summerInput(r, n, seed));
    const want = {
      sum: rankOrderSumRef(inputs(1)),
      mean: rankOrderSumRef(inputs(1), true),
      scatter: rankOrderSumRef(inputs(2), true),
    };
    const rounds = Math.ceil(Math.ceil(n / W) / Math.floor(chunk / W));
    for (let r = 0; r < W; r++) {
      const s = shardRange(n, W, r);
      for (const what of ['sum', 'mean', 'scatter'] as const) {
        const ref = what === 'scatter' ? want.scatter.subarray(s.start, s.end) : want[what];
        const cpu = bytes(join(out, `cpu-${what}-rank${r}.f32`));
        expect(cpu.equals(asBytes(ref)), `cpu ${what}, rank ${r}`).toBe(true);
        expect(bytes(join(out, `gpu-${what}-rank${r}.f32`)).equals(cpu), `gpu ${what}, rank ${r}`).toBe(true);
      }
      // The GPU summer did the summing: once per round of each of the three operations.
      expect(JSON.parse(readFileSync(join(out, `calls-rank${r}.json`), 'utf8'))).toBe(3 * rounds);
    }
  }, 180_000);
