// The shared-memory collective across real rank processes (started by launchLocal): results against references
// computed here, bit equality across ranks, and the failures a job must survive with a message naming the rank.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CASES, expectedOps, rankInput, rankOrderSum, worstOverBound } from '../../test/dist-data.ts';
import { launchLocal } from './index.ts';

const ROOT = new URL('../../../../', import.meta.url).pathname;
const RANK = 'packages/runtime/test/dist-rank.ts';

/** Runs W ranks of the test program; returns each rank's exit and stderr, and the files the job left behind. */
async function run(W: number, args: string[], env: Record<string, string> = {}) {
  const stderr: string[] = Array(W).fill('');
  const pids: number[] = [];
  const res = await launchLocal({
    nproc: W,
    command: process.execPath,
    args: ['scripts/run-ts.mjs', RANK, ...args],
    cwd: ROOT,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
    graceMs: 1500,
    onSpawn: (r, child) => {
      pids[r] = child.pid!;
      child.stderr!.on('data', (d: Buffer) => (stderr[r] += d.toString()));
    },
  });
  // The shared file is named by rank 0's pid, the socket by the launcher's (this process).
  const left = [
    ...(existsSync('/dev/shm') ? readdirSync('/dev/shm').filter((f) => f.startsWith(`wgpt-dist-${pids[0]}-`)) : []),
    ...readdirSync(tmpdir()).filter((f) => f.startsWith(`wgpt-dist-local-${process.pid}-`)),
  ];
  return { ...res, stderr, left };
}

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** Where two f32 arrays first differ in bits ('length' when their lengths do), or -1. */
function firstDiff(a: Float32Array, b: Float32Array): number | 'length' {
  if (a.length !== b.length) return 'length';
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

let jobs: Promise<unknown> = Promise.resolve();
// auto: BLAS's saxpy where the machine has a BLAS library (CI installs OpenBLAS), else the loop; js: the loop.
describe.each([
  [2, 'auto'],
  [4, 'auto'],
  [3, 'js'],
])('%i ranks, summation %s', (W, sum) => {
  const out = mkdtempSync(join(tmpdir(), 'wgpt-dist-'));
  dirs.push(out);
  // Slots of 4099 floats: 100003 floats take 25 rounds with a short last piece; 1 float leaves ranks ≥ 1 empty.
  // One job at a time: a job's socket exists while its ranks join, and another job's check for files left behind
  // would see it.
  const done = jobs.then(() => run(W, ['ops', out], { TEST_CHUNK: '4099', WGPT_DIST_SUM: sum }));
  jobs = done;
  const load = (name: string, r: number) => {
    const b = readFileSync(join(out, `${name}-rank${r}.f32`));
    return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  };

  it('every rank exits cleanly', async () => {
    const res = await done;
    expect(res.stderr.filter((s) => /Error/.test(s))).toEqual([]);
    expect(res.exits.map((e) => e.code)).toEqual(Array(W).fill(0));
    expect(res.left).toEqual([]);
  }, 60_000);

  it.each(CASES)('allReduce sum and mean of %s (%i floats): the f64 sum within f32 rounding, same bits', async (
    name,
    n,
  ) => {
    await done;
    const xs = [...Array(W).keys()].map((r) => rankInput(r, n, 0));
    const exact = rankOrderSum(W, n, 0);
    for (const op of ['sum', 'mean'] as const) {
      const got = [...Array(W).keys()].map((r) => load(`${op}-${name}`, r));
      for (let r = 1; r < W; r++) expect(firstDiff(got[r]!, got[0]!)).toBe(-1);
      expect(worstOverBound(xs, got[0]!, op)).toBeLessThanOrEqual(1); // the f64 sum within f32 rounding
      // And exactly the rank-order f32 sum (divided by W in f32 for the mean).
      const ref = op === 'sum' ? exact : exact.map((v) => v / W);
      expect(firstDiff(got[0]!, ref)).toBe(-1);
      // The same through a view into a sharedArray (no copies in or out), with the floats around it untouched.
      const around = new Float32Array(n + 9).fill(-7);
      around.set(ref, 5);
      for (let r = 0; r < W; r++) expect(firstDiff(load(`shared${op}-${name}`, r), around), `rank ${r}`).toBe(-1);
    }
  }, 60_000);

  it.each(CASES)('reduceScatter, allGather, broadcast of %s (%i floats) against plain references', async (
    name,
    n,
  ) => {
    await done;
    for (let r = 0; r < W; r++) {
      const want = expectedOps(W, r);
      for (const op of ['scatter', 'gather', 'bcast']) {
        const ref = want.get(`${op}-${name}-rank${r}.f32`)!;
        expect(firstDiff(load(`${op}-${name}`, r), ref), `${op}, rank ${r}`).toBe(-1);
      }
    }
  }, 60_000);
});

describe('a rank that fails ends the whole job with a message naming it', () => {
  // 1.5 s for a missing rank; 2.5 s before the others give up on a rank 0 that cannot answer at all.
  // Starting a rank (node, tsx) can take seconds on a busy machine: joining has its own, longer timeout.
  const env = { WGPT_DIST_TIMEOUT: '1.5', WGPT_DIST_JOIN_TIMEOUT: '60' };
  const expectAll = (stderr: string[], re: RegExp) => stderr.forEach((s) => expect(s).toMatch(re));

  it('a rank that throws: every rank ends with its error', async () => {
    const res = await run(3, ['throw'], env);
    expect(res.exits.map((e) => e.code)).toEqual([1, 1, 1]);
    expect(res.stderr[1]).toMatch(/Error: a bug in rank 1/);
    for (const r of [0, 2]) expect(res.stderr[r]).toMatch(/DistError: rank 1 failed: a bug in rank 1/);
  }, 60_000);

  it('a rank that exits: the others name it', async () => {
    const res = await run(3, ['exit', '1'], env);
    expect(res.exits.map((e) => e.code), JSON.stringify(res.exits)).toEqual([1, 3, 1]);
    for (const r of [0, 2]) expect(res.stderr[r]).toMatch(/rank 1 exited or crashed .* allReduce\(sum\) of 10 floats/);
  }, 60_000);

  it('a rank that never arrives: rank 0 times it out and every rank ends, the missing one too', async () => {
    const res = await run(3, ['hang', '1'], env);
    expect(res.exits.map((e) => [e.code, e.signal])).toEqual([[1, null], [1, null], [1, null]]);
    expectAll(res.stderr, /rank 1 did not reach allReduce\(sum\) of 10 floats \(call 2\) round 0 within 1\.5 s/);
  }, 60_000);

  it('rank 0 blocked (cannot even answer): the others time it out themselves', async () => {
    const res = await run(3, ['block', '0'], env);
    for (const r of [1, 2]) expect(res.stderr[r]).toMatch(/no answer from rank 0 within 2\.5 s .* rank 0 is hung/);
    expect(res.exits.slice(1).map((e) => e.code)).toEqual([1, 1]);
    expect(res.exits[0]!.signal).toBe('SIGTERM'); // the launcher ends it after the grace time
    expect(res.left).toEqual([]); // a rank 0 killed after the start leaves neither its file nor its socket
  }, 60_000);

  it('a rank that never joins: rank 0 names it, and the ranks that joined end too', async () => {
    const res = await run(3, ['nojoin'], { ...env, WGPT_DIST_JOIN_TIMEOUT: '1.5' });
    for (const r of [0, 2]) expect(res.stderr[r]).toMatch(/rank 1 did not join within 1\.5 s/);
    expect(res.exits.map((e) => e.code)).toEqual([1, null, 1]);
    expect(res.left).toEqual([]);
  }, 60_000);

  it('ranks that call different operations: named, both', async () => {
    const res = await run(2, ['mismatch'], env);
    expect(res.exits.map((e) => e.code)).toEqual([1, 1]);
    expectAll(res.stderr, /ranks disagree: rank \d called allReduce\(sum\) of 1[01] floats .* rank \d called/);
  }, 60_000);
});
