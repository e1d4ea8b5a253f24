// `wgpt train --nproc 2` through the torch.distributed backend (WGPT_DIST_BACKEND=torch): the same run as through
// the shared-memory backend, so the same parameters, byte for byte (both sum the gradients in rank order in f32).
// With ZeRO-1 a step also broadcasts (the owners' tensors) besides the all-reduce.
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { ShardWriter } from '@wgpt/data';
import { defaultPython } from '@wgpt/runtime/dist';

const ROOT = new URL('..', import.meta.url).pathname;
const out = mkdtempSync(join(tmpdir(), 'wgpt-train-torch-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));
const hasTorch =
  spawnSync(defaultPython(), ['-c', 'import torch.distributed as d; assert d.is_gloo_available()']).status === 0;
if (!hasTorch && process.env.CI) throw new Error(`${defaultPython()} has no torch with Gloo: CI must install it`);

it.skipIf(!hasTorch)(
  'wgpt train --nproc 2: the torch backend gives the parameters of the shm backend',
  async () => {
    const data = join(out, 'data');
    for (const split of ['train', 'val'] as const) {
      const w = new ShardWriter({ dir: data, prefix: 't', split, part: 0, nVocab: 61, shardTokens: 400 });
      for (let d = 0; d < (split === 'train' ? 60 : 10); d++) {
        w.addDocument([60, ...Array.from({ length: 15 }, (_, i) => (d + i * (1 + (d % 3))) % 60)]);
      }
      w.close();
    }
    const model = ['--depth', '1', '--channels', '16', '--heads', '2', '--vocab', '61', '--context', '16'];
    const args = ['train', '--data', data, ...model, '-B', '2', '-T', '8', '--steps', '2', '--sample-every', '0'];
    const wgpt = (backend: string) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
        execFile(
          'node',
          ['scripts/wgpt.mjs', ...args, '--nproc', '2', '--zero', '1', '--out', join(out, backend)],
          { cwd: ROOT, env: { ...process.env, WGPT_DIST_BACKEND: backend, WGPT_DIST_JOIN_TIMEOUT: '120' } },
          (e, stdout, stderr) => resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        ),
      );
    const [shm, torch] = await Promise.all([wgpt('shm'), wgpt('torch')]);
    expect(shm.code, shm.stderr).toBe(0);
    expect(torch.code, torch.stderr).toBe(0);
    expect(torch.stdout.match(/^step +\d\/2 \| loss/gm)).toHaveLength(2);
    for (const f of ['model.bin', 'state.bin']) {
      const file = (b: string) => readFileSync(join(out, b, 'checkpoint', f));
      expect(file('torch').equals(file('shm')), f).toBe(true);
    }
  },
  180_000,
);
