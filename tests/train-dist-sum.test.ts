// wgpt train --nproc 2 with each way of summing the all-reduce: the JavaScript loop, BLAS (where the machine has
// it) and the WGSL kernel on each rank's GPU (WGPT_DIST_SUM=gpu, attached by the trainer once the GPU is open).
// Every way adds the same f32 values in the same rank order, so the runs must agree to the bit: the logged losses
// and the checkpoint's parameters and moments. (The GPU kernel would differ only on subnormal values, which these
// gradients do not produce: the test would say so.)
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { ShardWriter } from '@wgpt/data';

const ROOT = new URL('..', import.meta.url).pathname;
const out = mkdtempSync(join(tmpdir(), 'wgpt-train-dist-sum-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

it('the losses and checkpoint bytes are the same with js, blas (auto) and gpu summation', async () => {
  const data = join(out, 'data');
  for (const split of ['train', 'val'] as const) {
    const w = new ShardWriter({ dir: data, prefix: 't', split, part: 0, nVocab: 61, shardTokens: 400 });
    for (let d = 0; d < (split === 'train' ? 40 : 10); d++) {
      w.addDocument([60, ...Array.from({ length: 15 }, (_, i) => (d * 7 + i * (1 + (d % 3))) % 60)]);
    }
    w.close();
  }
  const model = ['--depth', '1', '--channels', '16', '--heads', '2', '--vocab', '61', '--context', '16'];
  const args = ['train', '--data', data, ...model, '-B', '2', '-T', '8', '--steps', '2', '--sample-every', '0'];
  const runs: Record<string, { log: string; model: Buffer; state: Buffer; stdout: string }> = {};
  for (const sum of ['js', 'auto', 'gpu']) {
    const dir = join(out, sum);
    const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(
        'node',
        ['scripts/wgpt.mjs', ...args, '--nproc', '2', '--out', dir],
        { cwd: ROOT, env: { ...process.env, WGPT_DIST_SUM: sum } },
        (e, stdout, stderr) => resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      ),
    );
    expect(r.code, r.stderr).toBe(0);
    const log = readFileSync(join(dir, 'log.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.stringify((({ loss, gradNorm }) => ({ loss, gradNorm }))(JSON.parse(l))))
      .join('\n');
    const ck = join(dir, 'checkpoint');
    runs[sum] = {
      log,
      model: readFileSync(join(ck, 'model.bin')),
      state: readFileSync(join(ck, 'state.bin')),
      stdout: r.stdout,
    };
  }
  const { js, auto, gpu } = runs as Record<'js' | 'auto' | 'gpu', (typeof runs)[string]>;
  // The header says how the ranks summed: each run really took its own path.
  expect(js.stdout).toMatch(/on each of 2 ranks \(sums: js\)/);
  expect(auto.stdout).toMatch(/on each of 2 ranks \(sums: (blas \(lib[\w.]+\)|js)\)/);
  expect(gpu.stdout).toMatch(/on each of 2 ranks \(sums: gpu\)/);
  expect(js.log.split('\n')).toHaveLength(2);
  for (const [name, r] of [
    ['auto', auto],
    ['gpu', gpu],
  ] as const) {
    expect(r.log, name).toBe(js.log);
    expect(r.model.equals(js.model), `${name}: model.bin`).toBe(true);
    expect(r.state.equals(js.state), `${name}: state.bin (moments)`).toBe(true);
  }
}, 240_000);
