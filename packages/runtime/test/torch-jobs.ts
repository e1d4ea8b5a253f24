// Helpers of the torch backend's tests: rank jobs through launchLocal (WGPT_DIST_BACKEND=torch) and the sidecars
// they leave running.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { defaultPython, launchLocal } from '../src/dist/index.ts';
import { expectedOps, rankOrderSum } from './dist-data.ts';

export { expectedOps, rankOrderSum };

const ROOT = new URL('../../../', import.meta.url).pathname;
const RANK = 'packages/runtime/test/dist-rank.ts';
// CI installs torch (scripts/bootstrap.sh --with-torch) and must run these; elsewhere they need it too.
export const hasTorch =
  spawnSync(defaultPython(), ['-c', 'import torch.distributed as d; assert d.is_gloo_available()']).status === 0;
if (!hasTorch && process.env.CI) throw new Error(`${defaultPython()} has no torch with Gloo: CI must install it`);

/** The sidecars of the given rank processes still running (their command line names the rank's shared file). */
export function sidecars(rankPids: number[]): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmd.includes('torch_sidecar.py') && rankPids.some((p) => cmd.includes(`wgpt-torch-${p}-`))) out.push(pid);
    } catch {
      /* ended meanwhile */
    }
  }
  return out;
}

/** Runs W ranks of the test program on a backend; returns each rank's exit and stderr and the files left behind. */
export async function run(W: number, args: string[], env: Record<string, string> = {}, graceMs = 20_000) {
  const stderr: string[] = Array(W).fill('');
  const pids: number[] = [];
  const res = await launchLocal({
    nproc: W,
    command: process.execPath,
    args: ['scripts/run-ts.mjs', RANK, ...args],
    cwd: ROOT,
    env: { WGPT_DIST_BACKEND: 'torch', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
    // Time for the others to name a rank that failed before the launcher ends them.
    graceMs,
    onSpawn: (r, child) => {
      pids[r] = child.pid!;
      child.stderr!.on('data', (d: Buffer) => (stderr[r] += d.toString()));
    },
  });
  const left = existsSync('/dev/shm')
    ? readdirSync('/dev/shm').filter((f) => pids.some((p) => f.startsWith(`wgpt-torch-${p}-`)))
    : [];
  return { ...res, stderr, left, pids };
}

/** Waits (up to 30 s: a store-hosting sidecar stays until the others have read the job's end) for no sidecar. */
export async function noSidecars(rankPids: number[]): Promise<string[]> {
  for (let i = 0; i < 300 && sidecars(rankPids).length; i++) await new Promise((r) => setTimeout(r, 100));
  return sidecars(rankPids);
}
