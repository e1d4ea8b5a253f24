// Starting ranks: `launchLocal` runs N copies of a command on this node, one process per rank (one GPU each, when
// there is a way to give each its own: see gpuForRank), with the environment torchrun would give them; `joinJob`
// is the rank's side: it reads that environment (or torchrun's, or Slurm's) and joins the job's collective.
import { spawn, type StdioOptions } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { UsageError } from '@wgpt/base/errors';
import { DistError, type Collective } from './collective.ts';
import { readDistEnv, type DistEnv } from './env.ts';
import { ShmCollective } from './shm.ts';
import { pickAdder, readSumChoice, type SumChoice } from './sum.ts';
import { TorchCollective } from './torch.ts';

export interface LaunchOptions {
  nproc: number;
  command: string;
  args: string[];
  cwd?: string;
  /** Added to this process's environment for every rank. */
  env?: Record<string, string>;
  /** Default 'inherit'; tests pass 'pipe' and read `children`. */
  stdio?: StdioOptions;
  /**
   * After the first rank fails, how long the others get to end on their own (their collective tells them at once
   * that a rank is gone) before they are sent SIGTERM, then SIGKILL after as long again. Default 30 s.
   */
  graceMs?: number;
  /** Called with each rank's process as it starts (to read its output). */
  onSpawn?: (rank: number, child: import('node:child_process').ChildProcess) => void;
}

export interface RankExit {
  rank: number;
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface LaunchResult {
  exits: RankExit[];
  /** The first rank that ended with a failure, if any: the one to name. */
  firstFailure?: RankExit;
}

/** Runs `nproc` ranks of a command on this node and waits for all of them. */
export async function launchLocal(opts: LaunchOptions): Promise<LaunchResult> {
  if (!Number.isInteger(opts.nproc) || opts.nproc < 1) {
    throw new UsageError(`--nproc ${opts.nproc}: give a positive whole number of ranks`);
  }
  const id = `local-${process.pid}-${randomBytes(4).toString('hex')}`;
  const exits: RankExit[] = [];
  let firstFailure: RankExit | undefined;
  const grace = opts.graceMs ?? 30_000;
  // The torch backend meets at MASTER_ADDR:MASTER_PORT (rank 0's sidecar hosts the store there): here, on loopback.
  const rendezvous: Record<string, string> = {};
  const wanted = { ...process.env, ...opts.env };
  if (wanted.WGPT_DIST_BACKEND === 'torch' && !wanted.MASTER_PORT) {
    Object.assign(rendezvous, { MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(await freePort()) });
  }
  const children = [...Array(opts.nproc).keys()].map((rank) => {
    const child = spawn(opts.command, opts.args, {
      cwd: opts.cwd,
      stdio: opts.stdio ?? 'inherit',
      env: {
        ...process.env,
        ...opts.env,
        ...rendezvous,
        RANK: String(rank),
        WORLD_SIZE: String(opts.nproc),
        LOCAL_RANK: String(rank),
        LOCAL_WORLD_SIZE: String(opts.nproc),
        WGPT_DIST_ID: id,
      },
    });
    opts.onSpawn?.(rank, child);
    return child;
  });
  const timers: NodeJS.Timeout[] = [];
  const stopOthers = () => {
    timers.push(
      setTimeout(() => {
        for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
        timers.push(
          setTimeout(() => {
            for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
          }, grace),
        );
      }, grace),
    );
  };
  await Promise.all(
    children.map(
      (child, rank) =>
        new Promise<void>((resolve) => {
          child.on('error', (e) => {
            exits.push({ rank, code: null, signal: null });
            firstFailure ??= { rank, code: null, signal: null };
            stopOthers();
            process.stderr.write(`wgpt: rank ${rank}: cannot start ${opts.command}: ${e.message}\n`);
            resolve();
          });
          child.on('exit', (code, signal) => {
            const e = { rank, code, signal };
            exits.push(e);
            if ((code !== 0 || signal) && !firstFailure) {
              firstFailure = e;
              stopOthers();
            }
            resolve();
          });
        }),
    ),
  );
  for (const t of timers) clearTimeout(t);
  exits.sort((a, b) => a.rank - b.rank);
  return { exits, firstFailure };
}

/** A TCP port nobody listens on now (the kernel's pick), for a rendezvous on loopback. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** A Unix socket path for a job: short enough for the 107-byte limit, private to the user's temp folder. */
export function jobSocketPath(jobId: string, dir = os.tmpdir()): string {
  const p = path.join(dir, `wgpt-dist-${jobId}.sock`);
  if (Buffer.byteLength(p) < 100) return p;
  return path.join(dir, `wgpt-dist-${createHash('sha256').update(jobId).digest('hex').slice(0, 16)}.sock`);
}

export interface JoinOptions {
  env?: Record<string, string | undefined>;
  chunkFloats?: number;
  /** Default: WGPT_DIST_TIMEOUT seconds from the environment, else 600 s. */
  timeoutMs?: number;
  /** How long the ranks may take to start and join. Default: WGPT_DIST_JOIN_TIMEOUT seconds, else timeoutMs. */
  joinTimeoutMs?: number;
}

export interface Job {
  env: DistEnv;
  collective: Collective;
  /**
   * WGPT_DIST_SUM. The collective sums on the host until told otherwise: with 'gpu', a rank that has opened its
   * GPU gives it `collective.useSummer(gpuPieceSummer(gpu))` (@wgpt/kernels) before its first reduction.
   */
  sum: SumChoice;
}

/**
 * This process's rank joins its job's collective (a job of one rank needs nobody). The backend is
 * WGPT_DIST_BACKEND (shm or torch), by default shm when every rank is on this node and torch otherwise.
 */
export async function joinJob(opts: JoinOptions = {}): Promise<Job> {
  const vars = opts.env ?? process.env;
  const env = readDistEnv(vars);
  const sum = readSumChoice(vars);
  const backend = vars.WGPT_DIST_BACKEND || (env.localWorldSize === env.worldSize ? 'shm' : 'torch');
  if (backend !== 'shm' && backend !== 'torch') {
    throw new UsageError(`WGPT_DIST_BACKEND="${backend}" is not one of shm, torch`);
  }
  if (backend === 'torch' && sum !== 'auto') {
    throw new UsageError(
      `WGPT_DIST_SUM=${sum} chooses how the shared-memory backend sums; the torch backend sums in its sidecar: ` +
        'unset WGPT_DIST_SUM',
    );
  }
  if (backend === 'shm' && env.localWorldSize !== env.worldSize) {
    throw new UsageError(
      `this job has ${env.worldSize} ranks, ${env.localWorldSize} on this node: the shared-memory backend ` +
        '(WGPT_DIST_BACKEND=shm) joins the ranks of one node only; unset it to use the torch backend',
    );
  }
  const seconds = (name: string): number | undefined => {
    const t = vars[name];
    if (t === undefined || t === '') return undefined;
    if (!/^\d+(\.\d+)?$/.test(t) || Number(t) <= 0) {
      throw new UsageError(`${name}="${t}" is not a positive number of seconds`);
    }
    return Number(t) * 1000;
  };
  const timeoutMs = opts.timeoutMs ?? seconds('WGPT_DIST_TIMEOUT');
  const joinTimeoutMs = opts.joinTimeoutMs ?? seconds('WGPT_DIST_JOIN_TIMEOUT');
  if (backend === 'torch') {
    const addr = env.masterAddr ?? vars.MASTER_ADDR;
    const port = env.masterPort ?? (vars.MASTER_PORT ? Number(vars.MASTER_PORT) : undefined);
    if (!addr || !port) {
      throw new UsageError(
        'the torch backend needs MASTER_ADDR and MASTER_PORT (torchrun and wgpt train --nproc set them; under ' +
          'Slurm export MASTER_ADDR=<the first node> MASTER_PORT=<a free port>)',
      );
    }
    const collective = await TorchCollective.connect({
      rank: env.rank,
      worldSize: env.worldSize,
      masterAddr: addr,
      masterPort: port,
      jobId: env.jobId,
      chunkFloats: opts.chunkFloats,
      timeoutMs,
      joinTimeoutMs,
      env: vars,
    });
    return { env, collective, sum };
  }
  const collective = await ShmCollective.connect({
    rank: env.rank,
    worldSize: env.worldSize,
    socketPath: jobSocketPath(env.jobId),
    chunkFloats: opts.chunkFloats,
    timeoutMs,
    joinTimeoutMs,
    adder: env.worldSize > 1 ? await pickAdder(vars) : undefined,
  });
  return { env, collective, sum };
}

/**
 * Runs a rank's work: joins the job, runs `main`, closes. When `main` throws, the other ranks are told at once
 * (their next operation throws a DistError naming this rank and the error) and the error is rethrown here.
 */
export async function runRank<T>(
  main: (c: Collective, env: DistEnv, job: Job) => Promise<T>,
  opts: JoinOptions = {},
): Promise<T> {
  const job = await joinJob(opts);
  const { env, collective } = job;
  let out: T;
  try {
    // A rank that is busy elsewhere (computing, or stuck) when the job fails still ends, with the job's reason.
    out = await Promise.race([main(collective, env, job), collective.failed]);
  } catch (e) {
    if (!(e instanceof DistError)) {
      collective.abort(`rank ${env.rank} failed: ${(e as Error)?.message ?? String(e)}`);
    }
    throw e;
  }
  await collective.close();
  return out;
}
