// Rank bookkeeping without processes: shards, the launchers' environments, socket paths.
import { describe, expect, it } from 'vitest';
import { UsageError } from '@wgpt/base/errors';
import {
  adapterForRank, cpuPieceSummer, joinJob, jobSocketPath, readDistEnv, readSumChoice, shardRange,
} from './index.ts';

describe('shardRange', () => {
  it('splits n into W contiguous shards in rank order, lengths differing by at most one', () => {
    for (const [n, W] of [[0, 3], [1, 2], [7, 4], [10, 5], [100_003, 8]] as const) {
      const shards = [...Array(W).keys()].map((r) => shardRange(n, W, r));
      expect(shards[0]!.start).toBe(0);
      expect(shards[W - 1]!.end).toBe(n);
      for (let r = 1; r < W; r++) expect(shards[r]!.start).toBe(shards[r - 1]!.end);
      const lens = shards.map((s) => s.end - s.start);
      expect(Math.max(...lens) - Math.min(...lens)).toBeLessThanOrEqual(1);
    }
    expect(shardRange(7, 4, 3)).toEqual({ start: 6, end: 7 });
  });
});

describe('readDistEnv', () => {
  it('nothing set: one rank', () => {
    expect(readDistEnv({})).toMatchObject({ rank: 0, worldSize: 1, localRank: 0, localWorldSize: 1, source: 'single' });
  });

  it("torchrun's variables", () => {
    const env = readDistEnv({
      RANK: '3', WORLD_SIZE: '8', LOCAL_RANK: '1', LOCAL_WORLD_SIZE: '2', MASTER_ADDR: 'node7', MASTER_PORT: '29500',
      TORCHELASTIC_RUN_ID: 'a1b2',
    });
    expect(env).toEqual({
      rank: 3, worldSize: 8, localRank: 1, localWorldSize: 2, masterAddr: 'node7', masterPort: 29500, jobId: 'a1b2',
      source: 'torchrun',
    });
  });

  it("Slurm's srun variables", () => {
    const env = readDistEnv({
      SLURM_PROCID: '5', SLURM_NTASKS: '8', SLURM_LOCALID: '1', SLURM_NTASKS_PER_NODE: '4', SLURM_JOB_ID: '991',
      SLURM_STEP_ID: '0',
    });
    expect(env).toMatchObject({ rank: 5, worldSize: 8, localRank: 1, localWorldSize: 4, jobId: 'slurm-991-0' });
    expect(readDistEnv({ SLURM_PROCID: '0', SLURM_NTASKS: '6', SLURM_STEP_TASKS_PER_NODE: '2(x3)' }).localWorldSize)
      .toBe(2);
  });

  it('bad values are usage errors naming the variable', () => {
    expect(() => readDistEnv({ RANK: '2', WORLD_SIZE: '2' })).toThrow(/rank 2 is not below the world size 2/);
    expect(() => readDistEnv({ RANK: 'x', WORLD_SIZE: '2' })).toThrow(/RANK="x" is not an integer/);
    expect(() => readDistEnv({ RANK: '0' })).toThrow(/RANK and WORLD_SIZE must be set together/);
    expect(() => readDistEnv({ RANK: '0', WORLD_SIZE: '2', LOCAL_RANK: '2', LOCAL_WORLD_SIZE: '2' })).toThrow(
      /local rank 2 is not below/,
    );
  });
});

describe('WGPT_DIST_SUM', () => {
  it('auto unless set to blas, js or gpu', () => {
    expect(readSumChoice({})).toBe('auto');
    expect(readSumChoice({ WGPT_DIST_SUM: '' })).toBe('auto');
    for (const v of ['auto', 'blas', 'js', 'gpu']) expect(readSumChoice({ WGPT_DIST_SUM: v })).toBe(v);
  });

  it('another value is a usage error naming it, from joinJob before it joins anything', async () => {
    expect(() => readSumChoice({ WGPT_DIST_SUM: 'GPU' })).toThrow(UsageError);
    expect(() => readSumChoice({ WGPT_DIST_SUM: 'fast' })).toThrow(/^WGPT_DIST_SUM="fast" is not one of auto, blas/);
    await expect(joinJob({ env: { WGPT_DIST_SUM: 'fast' } })).rejects.toThrow(/WGPT_DIST_SUM="fast"/);
    // The torch backend sums in its sidecar: a choice that could not be honoured is refused, not ignored.
    await expect(joinJob({ env: { WGPT_DIST_BACKEND: 'torch', WGPT_DIST_SUM: 'gpu' } })).rejects.toThrow(
      /^WGPT_DIST_SUM=gpu chooses how the shared-memory backend sums; the torch backend sums in its sidecar/,
    );
    const job = await joinJob({ env: { WGPT_DIST_SUM: 'gpu' } }); // one rank: joins nobody
    expect(job.sum).toBe('gpu');
    // A summer is attached between operations, never during one.
    const running = job.collective.allReduce(new Float32Array(4));
    expect(() => job.collective.useSummer!(cpuPieceSummer)).toThrow(/summer cannot change while it is in allReduce/);
    await running;
    job.collective.useSummer!(cpuPieceSummer);
    await job.collective.close();
  });
});

it('jobSocketPath stays under the Unix socket path limit', () => {
  expect(jobSocketPath('local-1-ab', '/tmp')).toBe('/tmp/wgpt-dist-local-1-ab.sock');
  const long = jobSocketPath('x'.repeat(200), '/tmp');
  expect(Buffer.byteLength(long)).toBeLessThan(100);
  expect(long).not.toBe(jobSocketPath('y'.repeat(200), '/tmp'));
});

describe('adapterForRank', () => {
  const gpu = (index: number, name: string, software = false) => ({ index, backend: 'vulkan', name, software });
  it('distinct GPUs: rank i gets the i-th hardware adapter', () => {
    const list = [gpu(0, 'SwiftShader Device (Subzero)', true), gpu(1, 'NVIDIA H200'), gpu(2, 'NVIDIA H100 80GB HBM3')];
    expect(adapterForRank(list, 0, 2)).toBe(1);
    expect(adapterForRank(list, 1, 2)).toBe(2);
  });
  it('identical GPUs, no device-select layer: refused, since dawn.node would open the first for every rank', () => {
    const list = [gpu(0, 'NVIDIA H200'), gpu(1, 'NVIDIA H200')];
    expect(() => adapterForRank(list, 0, 2)).toThrow(/should open adapter \[0\] "NVIDIA H200", .*\[1\] .* is \[0\]/);
    expect(() => adapterForRank(list, 1, 2)).toThrow(/should open adapter \[1\] "NVIDIA H200", .* opens .* \[0\]/);
    expect(adapterForRank(list, 1, 2, true)).toBe(1);
  });
  it('a name that contains an earlier one counts too; more ranks than GPUs is refused; CPU only is fine', () => {
    expect(() => adapterForRank([gpu(0, 'GPU X Pro'), gpu(1, 'GPU X')], 1, 2)).toThrow(/\[0\]/);
    expect(() => adapterForRank([gpu(0, 'A')], 0, 2)).toThrow(/2 ranks on this node but 1 GPU/);
    expect(adapterForRank([gpu(0, 'SwiftShader', true)], 3, 4)).toBeUndefined();
  });
});
