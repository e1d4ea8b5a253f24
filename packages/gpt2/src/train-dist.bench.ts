// Data-parallel training step time: `wgpt train --nproc 2` with the gradients' all-reduce overlapped with backward
// (--bucket-mb 25) and after it (--bucket-mb 0), on random token shards. The two must log the same losses (the
// reduction is the same per element), which is the check. With one GPU the two ranks share it
// (WGPT_DIST_SHARE_GPU=1): the times then say what the host path costs, not the scaling across GPUs.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ShardWriter } from '@wgpt/data';
import type { BenchRow, BenchSuite } from '@wgpt/bench';

const ROOT = join(dirname(new URL(import.meta.url).pathname), '../../..');

function run(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) =>
    execFile(
      process.execPath,
      [join(ROOT, 'scripts/wgpt.mjs'), ...args],
      { cwd: ROOT, env: { ...process.env, WGPT_DIST_SHARE_GPU: '1' }, maxBuffer: 64 << 20 },
      (e, _stdout, stderr) => resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, stderr }),
    ),
  );
}

const suite: BenchSuite = {
  name: 'train-dist',
  async run({ quick, log }) {
    if (!existsSync(join(ROOT, 'scripts/wgpt.mjs'))) {
      log('skipped: wgpt.mjs is not beside this bundle (run from the repository)');
      return [];
    }
    const dir = mkdtempSync(join(tmpdir(), 'wgpt-bench-train-dist-'));
    try {
      // Quick: a one-layer model of 16 channels; else GPT-2 124M at B=4, T=1024 per rank.
      const V = quick ? 61 : 50257;
      const model = quick
        ? ['--depth', '1', '--channels', '16', '--heads', '2', '--vocab', String(V), '--context', '16']
        : ['--preset', 'd12', '--vocab', String(V)];
      const [B, T, steps] = quick ? [2, 8, 7] : [4, 1024, 8];
      let seed = 1;
      const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % V;
      for (const split of ['train', 'val'] as const) {
        const w = new ShardWriter({ dir, prefix: 'b', split, part: 0, nVocab: V, shardTokens: 1 << 20 });
        const docs = split === 'train' ? 2 * B * (steps + 1) * 2 : 4;
        for (let d = 0; d < docs; d++) w.addDocument(Array.from({ length: T + 1 }, rnd));
        w.close();
      }
      const rows: BenchRow[] = [];
      const losses: string[] = [];
      for (const mb of [25, 0]) {
        const out = join(dir, `run-${mb}`);
        const args = ['train', '--data', dir, ...model, '-B', String(B), '-T', String(T), '--steps', String(steps)];
        const r = await run([...args, '--sample-every', '0', '--nproc', '2', '--bucket-mb', String(mb), '--out', out]);
        if (r.code !== 0) throw new Error(`train-dist bench: wgpt train failed: ${r.stderr.trim().split('\n').at(-1)}`);
        const log = readFileSync(join(out, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
        losses.push(JSON.stringify(log.map((e: { loss: number }) => e.loss)));
        // The first step compiles the pipelines: the median of the others.
        const ms = log.slice(1).map((e: { ms: number }) => e.ms).sort((a: number, b: number) => a - b);
        const median = ms[Math.floor(ms.length / 2)]!;
        rows.push({
          name: `wgpt train --nproc 2, all-reduce ${mb ? `overlapped (--bucket-mb ${mb})` : 'after backward'}`,
          shape: `${quick ? 'L=1 C=16' : 'GPT-2 124M'} B=${B} T=${T} per rank`,
          medianMs: median,
          rate: { value: (2 * B * T * 1000) / median, unit: 'tok/s' },
          check: 'n/a',
        });
      }
      const same = losses[0] === losses[1];
      for (const row of rows) row.check = same ? 'pass' : 'fail';
      return rows;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
export default suite;
