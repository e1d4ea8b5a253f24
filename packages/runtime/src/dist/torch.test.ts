// The torch.distributed (Gloo) backend across real rank processes (launchLocal, WGPT_DIST_BACKEND=torch): results
// against references computed here and byte for byte against the shared-memory backend on the same inputs, and the
// way it fails to start (torch-fail.test.ts: the failures of a running job).
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '@wgpt/base/errors';
import { CASES, rankInput, worstOverBound } from '../../test/dist-data.ts';
import { expectedOps, hasTorch, noSidecars, rankOrderSum, run } from '../../test/torch-jobs.ts';
import { defaultPython, joinJob } from './index.ts';


const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function firstDiff(a: Uint8Array, b: Uint8Array): number | 'length' {
  if (a.length !== b.length) return 'length';
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}
const bytes = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

// 2 ranks as in CI, and 3, where the order of the additions changes the bits.
describe.skipIf(!hasTorch).each([2, 3])('%i ranks through torch.distributed (Gloo)', (W) => {
  const out = mkdtempSync(join(tmpdir(), 'wgpt-torch-'));
  const shm = mkdtempSync(join(tmpdir(), 'wgpt-torch-shm-'));
  dirs.push(out, shm);
  // Regions of 4099 floats: 100003 floats take 25 or more rounds of the reductions, the gather and the broadcast,
  // with a short last piece; 1 float leaves the shards of ranks ≥ 1 empty.
  const env = { TEST_CHUNK: '4099', WGPT_DIST_JOIN_TIMEOUT: '120' };
  const done = run(W, ['ops', out], env);
  const shmDone = W === 2 ? run(W, ['ops', shm], { ...env, WGPT_DIST_BACKEND: 'shm' }) : null;
  const load = (dir: string, name: string, r: number) => {
    const b = readFileSync(join(dir, `${name}-rank${r}.f32`));
    return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  };

  it('every rank exits cleanly, through the torch backend, leaving no file and no sidecar', async () => {
    const res = await done;
    expect(res.stderr.filter((s) => /Error/.test(s))).toEqual([]);
    expect(res.exits.map((e) => e.code)).toEqual(Array(W).fill(0));
    expect(res.left).toEqual([]);
    expect([...Array(W).keys()].map((r) => readFileSync(join(out, `backend-rank${r}.txt`), 'utf8'))).toEqual(
      Array(W).fill('TorchCollective'),
    );
    expect(await noSidecars(res.pids)).toEqual([]);
  }, 120_000);

  it.each(CASES)(
    'allReduce sum and mean of %s (%i floats): the f64 sum within f32 rounding, same bits',
    async (name, n) => {
      await done;
      const xs = [...Array(W).keys()].map((r) => rankInput(r, n, 0));
      for (const op of ['sum', 'mean'] as const) {
        const got = [...Array(W).keys()].map((r) => load(out, `${op}-${name}`, r));
        for (let r = 1; r < W; r++) expect(firstDiff(bytes(got[r]!), bytes(got[0]!))).toBe(-1);
        expect(worstOverBound(xs, got[0]!, op)).toBeLessThanOrEqual(1); // the f64 sum within f32 rounding
        // And exactly the rank-order f32 sum (divided by W in f32 for the mean), which the shared-memory backend
        // gives (shm.test.ts).
        const exact = rankOrderSum(W, n, 0);
        const ref = op === 'sum' ? exact : exact.map((v) => v / W);
        expect(firstDiff(bytes(got[0]!), bytes(ref))).toBe(-1);
      }
    },
    120_000,
  );

  it.skipIf(W !== 2)(
    'every result is byte for byte what the shared-memory backend gives on the same inputs',
    async () => {
      const [res, ref] = await Promise.all([done, shmDone!]);
      expect(ref.exits.map((e) => e.code)).toEqual([0, 0]);
      expect(res.exits.map((e) => e.code)).toEqual([0, 0]);
      // The shared-memory run also reduced views of its sharedArrays (shared*.f32), which torch has no form of.
      const files = readdirSync(shm).filter((f) => f.endsWith('.f32') && !f.startsWith('shared'));
      expect(files).toHaveLength(CASES.length * 5 * W);
      for (const f of files) expect(firstDiff(readFileSync(join(out, f)), readFileSync(join(shm, f))), f).toBe(-1);
    },
    120_000,
  );

  it.each(CASES)(
    'reduceScatter, allGather, broadcast (root 1) of %s (%i floats) against plain references',
    async (name, n) => {
      await done;
      for (let r = 0; r < W; r++) {
        const want = expectedOps(W, r);
        for (const op of ['scatter', 'gather', 'bcast']) {
          const ref = want.get(`${op}-${name}-rank${r}.f32`)!;
          expect(firstDiff(bytes(load(out, `${op}-${name}`, r)), bytes(ref)), `${op}, rank ${r}`).toBe(-1);
        }
      }
    },
    120_000,
  );
});

describe.skipIf(!hasTorch)('the sidecar cannot start', () => {
  const env = { WGPT_DIST_TIMEOUT: '3', WGPT_DIST_JOIN_TIMEOUT: '120' };
  it('WGPT_PYTHON at nothing, or at a Python without torch: one line naming it and what to do', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wgpt-torch-py-'));
    dirs.push(dir);
    const noTorch = join(dir, 'python-without-torch');
    // -S: no site packages, which is where Debian's torch lives.
    writeFileSync(noTorch, `#!/bin/sh\nexec ${defaultPython()} -S "$@"\n`);
    chmodSync(noTorch, 0o755);
    const [missing, bare] = await Promise.all([
      run(2, ['exit', '1'], { ...env, WGPT_PYTHON: join(dir, 'no-such-python') }),
      run(2, ['exit', '1'], { ...env, WGPT_PYTHON: noTorch }),
    ]);
    for (const r of [0, 1]) {
      expect(missing.stderr[r]).toMatch(
        new RegExp(
          `DistError: rank ${r} cannot start the torch sidecar with .*no-such-python \\(ENOENT\\): set ` +
            'WGPT_PYTHON .*apt-get install python3-torch',
        ),
      );
      expect(bare.stderr[r]).toMatch(
        new RegExp(
          `DistError: rank ${r}'s torch sidecar \\(.*python-without-torch\\): cannot import torch: ` +
            'ModuleNotFoundError.*: set WGPT_PYTHON',
        ),
      );
    }
  }, 120_000);
});

it('WGPT_DIST_BACKEND other than shm or torch: a usage error naming it', async () => {
  const env = { RANK: '0', WORLD_SIZE: '2', WGPT_DIST_BACKEND: 'nccl' };
  await expect(joinJob({ env })).rejects.toThrow(UsageError);
  await expect(joinJob({ env })).rejects.toThrow('WGPT_DIST_BACKEND="nccl" is not one of shm, torch');
  await expect(joinJob({ env: { ...env, WGPT_DIST_BACKEND: 'torch' } })).rejects.toThrow(/needs MASTER_ADDR/);
  // Ranks on several nodes: shm refused by name; torch by default, which under Slurm needs the exported address.
  const twoNodes = { RANK: '0', WORLD_SIZE: '2', LOCAL_WORLD_SIZE: '1', WGPT_DIST_BACKEND: 'shm' };
  await expect(joinJob({ env: twoNodes })).rejects.toThrow(/2 ranks, 1 on this node: the shared-memory backend/);
  const slurm = { SLURM_PROCID: '0', SLURM_NTASKS: '2', SLURM_NTASKS_PER_NODE: '1' };
  await expect(joinJob({ env: slurm })).rejects.toThrow(/torch backend needs MASTER_ADDR .* under Slurm export/);
});
