// Host all-reduce between rank processes (@wgpt/runtime/dist): the shared-memory backend for 1 MB..1 GB on 2 and 4
// ranks (of private arrays, and of sharedArrays), the torch.distributed (Gloo) backend for 1..256 MB on 2 ranks where
// a Python with torch is found; bus bandwidth against host memcpy bandwidth measured in the same run at the same size.
// Bus bandwidth is NCCL's convention: algorithm bandwidth (bytes / time) × 2(W-1)/W, what each rank's links carry
// in a ring; memcpy bandwidth is bytes copied / time (a typed-array copy of the same size, median of a few).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { defaultPython, launchLocal } from '@wgpt/runtime/dist';
import type { BenchRow, BenchSuite } from './types.ts';

const ROOT = join(dirname(new URL(import.meta.url).pathname), '..');
const MB = 1e6;

function memcpyGBps(bytes: number, iters: number): number {
  const a = new Float32Array(bytes / 4).fill(1);
  const b = new Float32Array(bytes / 4);
  b.set(a); // first touch of b's pages out of the timing
  const ts: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    b.set(a);
    ts.push(performance.now() - t0);
  }
  ts.sort((x, y) => x - y);
  return bytes / (ts[Math.floor(ts.length / 2)]! * 1e6);
}

const suite: BenchSuite = {
  name: 'allreduce',
  async run({ quick, log }) {
    const script = join(ROOT, 'bench/allreduce-rank.ts');
    const runner = join(ROOT, 'scripts/run-ts.mjs');
    if (!existsSync(script) || !existsSync(runner)) {
      log('skipped: the rank program is not beside this bundle (run from the repository)');
      return [];
    }
    const sizes = quick ? [1 * MB, 4 * MB] : [1, 4, 16, 64, 256, 1024].map((m) => m * MB);
    const worlds = quick ? [2] : [2, 4];
    const jobs = worlds.map((W) => ({ backend: 'shm' as 'shm' | 'torch', W, sizes }));
    const py = spawnSync(defaultPython(), ['-c', 'import torch.distributed as d; assert d.is_gloo_available()']);
    if (py.status === 0) jobs.push({ backend: 'torch', W: 2, sizes: sizes.filter((b) => b <= 256 * MB) });
    else log(`torch gloo rows skipped: ${defaultPython()} has no torch with Gloo (WGPT_PYTHON)`);
    const iters = quick ? 3 : 10;
    const rows: BenchRow[] = [];
    const dir = mkdtempSync(join(tmpdir(), 'wgpt-bench-allreduce-'));
    try {
      for (const { backend, W, sizes } of jobs) {
        const out = join(dir, `${backend}-w${W}.json`);
        const res = await launchLocal({
          nproc: W,
          command: process.execPath,
          args: [runner, script, out, String(iters), ...sizes.map(String)],
          cwd: ROOT,
          env: { WGPT_DIST_BACKEND: backend },
          stdio: ['ignore', 'ignore', 'inherit'],
        });
        if (res.firstFailure) throw new Error(`all-reduce bench: rank ${res.firstFailure.rank} failed (see above)`);
        const got = JSON.parse(readFileSync(out, 'utf8')) as {
          bytes: number;
          medianMs: number;
          ok: boolean;
          shared: boolean;
        }[];
        for (const g of got) {
          const bus = (g.bytes / (g.medianMs * 1e6)) * ((2 * (W - 1)) / W);
          const memcpy = memcpyGBps(g.bytes, quick ? 3 : 5);
          rows.push({
            name:
              `all-reduce sum, ${backend === 'shm' ? 'shared memory' : 'torch gloo'}` +
              `${g.shared ? ' (sharedArray)' : ''}, ${W} ranks`,
            shape: `${g.bytes / MB} MB`,
            medianMs: g.medianMs,
            rate: { value: bus, unit: 'GB/s bus' },
            ofBaseline: { fraction: bus / memcpy, baseline: `memcpy ${memcpy.toFixed(2)} GB/s` },
            check: g.ok ? 'pass' : 'fail',
          });
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return rows;
  },
};
export default suite;
