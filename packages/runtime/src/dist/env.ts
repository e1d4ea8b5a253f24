// Which rank this process is, from the environment its launcher set: torchrun (RANK, WORLD_SIZE, LOCAL_RANK,
// LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT, TORCHELASTIC_RUN_ID), Slurm's srun (SLURM_PROCID, SLURM_NTASKS,
// SLURM_LOCALID, SLURM_NTASKS_PER_NODE / SLURM_STEP_TASKS_PER_NODE, SLURM_JOB_ID, SLURM_STEP_ID) or wgpt's own
// local launcher (the torchrun names plus WGPT_DIST_ID). Nothing set means one rank.
import { UsageError } from '@wgpt/base/errors';

export interface DistEnv {
  rank: number;
  worldSize: number;
  localRank: number;
  /** Ranks on this node. */
  localWorldSize: number;
  /** Where torchrun's or Slurm's job would rendezvous across nodes (not used by the shared-memory backend). */
  masterAddr?: string;
  masterPort?: number;
  /** Names this job's run on this node: local ranks with the same id find each other. */
  jobId: string;
  source: 'single' | 'wgpt' | 'torchrun' | 'slurm';
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, min: number): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min) {
    throw new UsageError(`environment variable ${name}="${v}" is not an integer ≥ ${min}: check the launcher`);
  }
  return Number(v);
}

/** Slurm writes tasks per node as "2" or "2(x3),1"; the entry for this node is what we need, the first is close. */
function slurmTasksPerNode(env: Env): number | undefined {
  const v = env.SLURM_NTASKS_PER_NODE || env.SLURM_STEP_TASKS_PER_NODE || env.SLURM_TASKS_PER_NODE;
  const m = v ? /^(\d+)/.exec(v) : null;
  return m ? Number(m[1]) : undefined;
}

export function readDistEnv(env: Env = process.env): DistEnv {
  let out: DistEnv;
  if (env.RANK !== undefined || env.WORLD_SIZE !== undefined) {
    const worldSize = int(env, 'WORLD_SIZE', 1);
    const rank = int(env, 'RANK', 0);
    if (worldSize === undefined || rank === undefined) {
      throw new UsageError('RANK and WORLD_SIZE must be set together (torchrun sets both): check the launcher');
    }
    const localRank = int(env, 'LOCAL_RANK', 0) ?? rank;
    const localWorldSize = int(env, 'LOCAL_WORLD_SIZE', 1) ?? worldSize;
    out = {
      rank,
      worldSize,
      localRank,
      localWorldSize,
      masterAddr: env.MASTER_ADDR || undefined,
      masterPort: int(env, 'MASTER_PORT', 1),
      jobId: env.WGPT_DIST_ID || env.TORCHELASTIC_RUN_ID || `port-${env.MASTER_PORT ?? 'none'}`,
      source: env.WGPT_DIST_ID ? 'wgpt' : 'torchrun',
    };
  } else if (env.SLURM_PROCID !== undefined && env.SLURM_NTASKS !== undefined) {
    const worldSize = int(env, 'SLURM_NTASKS', 1)!;
    const rank = int(env, 'SLURM_PROCID', 0)!;
    out = {
      rank,
      worldSize,
      localRank: int(env, 'SLURM_LOCALID', 0) ?? 0,
      localWorldSize: slurmTasksPerNode(env) ?? worldSize,
      jobId: `slurm-${env.SLURM_JOB_ID ?? 'job'}-${env.SLURM_STEP_ID ?? 'step'}`,
      source: 'slurm',
    };
  } else {
    return { rank: 0, worldSize: 1, localRank: 0, localWorldSize: 1, jobId: `pid-${process.pid}`, source: 'single' };
  }
  if (out.rank >= out.worldSize) {
    throw new UsageError(`rank ${out.rank} is not below the world size ${out.worldSize}: check the launcher`);
  }
  if (out.localRank >= out.localWorldSize) {
    throw new UsageError(
      `local rank ${out.localRank} is not below the ranks on this node (${out.localWorldSize}): check the launcher`,
    );
  }
  if (!/^[\w.-]+$/.test(out.jobId)) out.jobId = out.jobId.replace(/[^\w.-]/g, '_');
  return out;
}
