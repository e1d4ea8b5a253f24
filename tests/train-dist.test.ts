// Data-parallel training: two rank processes at B rows each against one process at B rows with two micro-batches
// of gradient accumulation over the same rows, one step, no clipping. What the arithmetic says:
// - A rank's gradient is exactly twice the accumulating run's micro-batch gradient (its backward starts from 1
//   instead of 1/2, a power of two), so for a parameter with one gradient contribution per backward the ranks' mean
//   fl(g0 + g1)/2 equals the accumulated fl(g0/2 + g1/2) bit for bit, and so does AdamW's update of it. wte is
//   used twice (embedding and the tied classifier): the single run adds its four contributions as
//   ((e0 + c0) + e1) + c1, the ranks as (e0 + c0) + (e1 + c1), so wte may differ. AdamW's first step moves each
//   element by lr·(m̂/(√v̂ + ε) + wd·p) with |m̂/(√v̂ + ε)| ≤ 1 (up to a few roundings, 8u here): two runs differ by
//   at most 2·lr·(1 + 8u), plus one rounding of each result.
// - The logged loss: the ranks average their micro-batch losses l0, l1 in f32 (fl(l0 + l1)/2), the single run in
//   f64 ((l0 + l1)/2): |difference| ≤ u·|l0 + l1|/2 = u·loss, u = 2^-24.
// - Every rank ends the step with the same bits.
// Resuming on another rank count: both runs start step t from the same bits (parameters and moments), so again
// only wte differs, by its gradient's order of additions. After t steps AdamW's |m̂/√v̂| is at most
// R_t = (1-β1)/(1-β1^t) · √((1-β2^t)/(1-β2)) · √(Σ_{j<t} (β1²/β2)^j) (Cauchy–Schwarz over the gradients' history),
// so the two updates differ by at most 2·lr·R_t·(1 + 8u), plus one rounding of each result (R_1 = 1 above).
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { ShardWriter } from '@wgpt/data';
import { learningRate, loadCheckpoint, makeConfig, paramOffsets } from '@wgpt/gpt2';
import { launchLocal } from '@wgpt/runtime/dist';

const ROOT = new URL('..', import.meta.url).pathname;
const out = mkdtempSync(join(tmpdir(), 'wgpt-train-dist-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));
const u = 2 ** -24;
const LR = 1e-2; // the fixture's peak learning rate, at least the first step's

type Result = { steps: { loss: number; gradNorm: number }[]; params: Float32Array };

async function job(name: string, nproc: number, steps = 1, extra: string[] = []): Promise<Result[]> {
  let stderr = '';
  const res = await launchLocal({
    nproc,
    command: process.execPath,
    args: ['scripts/run-ts.mjs', 'tests/fixtures/train-rank.ts', out, name, String(steps), '1e9', ...extra],
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
    graceMs: 1500,
    onSpawn: (_, child) => child.stderr!.on('data', (d: Buffer) => (stderr += d.toString())),
  });
  expect(res.exits.map((e) => e.code), stderr).toEqual(Array(nproc).fill(0));
  return [...Array(nproc).keys()].map((r) => {
    const j = JSON.parse(readFileSync(join(out, `${name}-rank${r}.json`), 'utf8')) as { params: string };
    const b = Buffer.from(j.params, 'base64');
    return { ...(j as unknown as Result), params: new Float32Array(b.buffer, b.byteOffset, b.length / 4) };
  });
}

const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
const wte = paramOffsets(makeConfig({ maxT: 16, V: 61, L: 1, NH: 2, C: 16 })).wte!;

/** Every element of `b` off `a` by at most `limit` plus one rounding of each, as a fraction of that (≤ 1 passes). */
function worstOf(a: Float32Array, b: Float32Array, limit: number): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const bound = limit + u * (Math.abs(a[i]!) + Math.abs(b[i]!));
    worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / bound);
  }
  return worst;
}

it('2 ranks at B rows track 1 rank accumulating 2 micro-batches of B rows; every rank has the same bits', async () => {
  const [[one], [r0, r1]] = await Promise.all([job('one', 1), job('two', 2)]);
  expect(bits(r1!.params)).toBe(bits(r0!.params));
  expect(r1!.steps).toEqual(r0!.steps);

  const want = one!.steps[0]!.loss;
  expect(Math.abs(r0!.steps[0]!.loss - want)).toBeLessThanOrEqual(u * want);

  expect(wte.offset).toBe(0);
  const a = one!.params;
  const b = r0!.params;
  expect(bits(b.subarray(wte.size))).toBe(bits(a.subarray(wte.size)));
  expect(worstOf(a.subarray(0, wte.size), b.subarray(0, wte.size), 2 * LR * (1 + 8 * u))).toBeLessThanOrEqual(1);
}, 180_000);

// Three steps of 2 ranks without a stop, with ZeRO-1, and stopped after step 2 then resumed on 1 rank.
type Runs = { dp: Result[]; zero: Result[]; overlap: Result[]; split: Result[]; resumed: Result; acc: Result[][] };
let started: Promise<Runs> | undefined;
const runs = () =>
  (started ??= (async () => {
    const zero = ['zero=1'];
    const [dp, z, split] = await Promise.all([
      job('dp3', 2, 3),
      job('zero3', 2, 3, zero),
      job('split', 2, 3, ['stop=2']),
    ]);
    // Buckets of 4 KB: the tiny model's 16 gradients (about 19 KB) in several buckets.
    // And 2 micro-batches per rank, reduced after backward and overlapped (the last micro-batch only).
    const acc = ['total=64'];
    const [[resumed], overlap, ...accRuns] = await Promise.all([
      job('resumed', 1, 3, ['resume=split']),
      job('ov3', 2, 3, ['bucket=4096']),
      job('acc', 2, 2, acc),
      job('ovacc', 2, 2, [...acc, 'bucket=4096']),
    ]);
    return { dp, zero: z, overlap, split, resumed: resumed!, acc: accRuns };
  })());

it('ZeRO-1 gives every rank the bits of plain data parallelism, and the same checkpoint files', async () => {
  const { dp, zero } = await runs();
  for (const r of [...dp, ...zero]) expect(bits(r.params)).toBe(bits(dp[0]!.params));
  for (const r of zero) expect(r.steps).toEqual(dp[0]!.steps);
  for (const f of ['state.bin', 'model.bin']) {
    const file = (name: string) => readFileSync(join(out, `${name}-run`, 'checkpoint', f));
    expect(file('zero3').equals(file('dp3')), f).toBe(true);
  }
  expect(loadCheckpoint(join(out, 'zero3-run', 'checkpoint')).state.optimizer.m.every((m) => m.length > 0)).toBe(true);
}, 180_000);

it('the all-reduce overlapped with backward in small buckets gives the bits of reducing after it', async () => {
  const { dp, overlap, acc } = await runs();
  for (const r of overlap) expect(bits(r.params)).toBe(bits(dp[0]!.params));
  for (const r of overlap) expect(r.steps).toEqual(dp[0]!.steps);
  const [after, during] = acc as [Result[], Result[]];
  expect(bits(after[0]!.params)).not.toBe(bits(dp[0]!.params)); // other rows, other numbers
  for (const r of [...after, ...during]) expect(bits(r.params)).toBe(bits(after[0]!.params));
  for (const r of during) expect(r.steps).toEqual(after[0]!.steps);
}, 180_000);

it('a run of 2 ranks resumed on 1 rank accumulating 2 micro-batches continues it (bound above)', async () => {
  const { dp, split, resumed } = await runs();
  // The stopped run's checkpoint: 2 ranks, 2 steps of 2 ranks · 1 micro-batch · 2 rows.
  const st = loadCheckpoint(join(out, 'split-run', 'checkpoint')).state;
  expect([st.step, st.ranks, st.rows]).toEqual([2, 2, 8]);
  expect(split[0]!.steps).toEqual(dp[0]!.steps.slice(0, 2));
  expect(resumed.steps).toHaveLength(1);
  const want = dp[0]!.steps[2]!.loss;
  expect(Math.abs(resumed.steps[0]!.loss - want)).toBeLessThanOrEqual(u * want);
  const a = dp[0]!.params;
  const b = resumed.params;
  expect(bits(b.subarray(wte.size))).toBe(bits(a.subarray(wte.size)));
  const [b1, b2, t] = [0.9, 0.95, 3];
  let s = 0;
  for (let j = 0; j < t; j++) s += (b1 * b1 / b2) ** j;
  const R = ((1 - b1) / (1 - b1 ** t)) * Math.sqrt((1 - b2 ** t) / (1 - b2)) * Math.sqrt(s);
  const lr = learningRate(t, { lr: LR, warmupSteps: 2, finalLrFrac: 0.1, steps: 3 });
  expect(worstOf(a.subarray(0, wte.size), b.subarray(0, wte.size), 2 * lr * R * (1 + 8 * u))).toBeLessThanOrEqual(1);
  // The resumed run checkpoints as 1 rank, 12 rows read.
  const end = loadCheckpoint(join(out, 'resumed-run', 'checkpoint')).state;
  expect([end.step, end.ranks, end.rows]).toEqual([3, 1, 12]);
}, 180_000);

it('wgpt train --nproc 2 --zero 1: rank 0 alone prints and writes; 1 rank resumes with the global batch', async () => {
  const data = join(out, 'data');
  for (const split of ['train', 'val'] as const) {
    const w = new ShardWriter({ dir: data, prefix: 't', split, part: 0, nVocab: 61, shardTokens: 400 });
    for (let d = 0; d < (split === 'train' ? 60 : 10); d++) {
      w.addDocument([60, ...Array.from({ length: 15 }, (_, i) => (d + i * (1 + (d % 3))) % 60)]);
    }
    w.close();
  }
  const run = join(out, 'cli-run');
  const model = ['--depth', '1', '--channels', '16', '--heads', '2', '--vocab', '61', '--context', '16'];
  const args = ['train', '--data', data, ...model, '-B', '2', '-T', '8', '--steps', '2', '--sample-every', '0'];
  const wgpt = (...extra: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
      execFile('node', ['scripts/wgpt.mjs', ...args, ...extra], { cwd: ROOT }, (e, stdout, stderr) =>
        resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      ),
    );
  const r = await wgpt('--nproc', '2', '--zero', '1', '--out', run);
  expect(r.code, r.stderr).toBe(0);
  // One header and one line per step: printed by rank 0 only.
  expect(r.stdout.match(/^GPT-2 L=1.*on each of 2 ranks \(ZeRO-1\)/gm)).toHaveLength(1);
  expect(r.stdout.match(/^step +\d\/2 \| loss/gm)).toHaveLength(2);
  expect(readFileSync(join(run, 'log.jsonl'), 'utf8').trim().split('\n')).toHaveLength(2);
  expect(existsSync(join(run, 'checkpoint', 'model.bin'))).toBe(true);

  // On 1 rank the default global batch is 1·B·T, which would change the run: refused; with the same --total-batch
  // (and more steps, allowed) it continues.
  const more = ['--steps', '3', '--resume', run, '--out', run];
  const refused = await wgpt(...more);
  expect(refused.code).toBe(1);
  expect(refused.stderr).toMatch(/^wgpt: .*--total-batch 32 → 16.*--allow-change/);
  const resumed = await wgpt(...more, '--total-batch', '32', '--allow-change'); // for --steps alone
  expect(resumed.code, resumed.stderr).toBe(0);
  expect(resumed.stdout.match(/^setting changed on resume.*$/gm)).toEqual([
    'setting changed on resume (--allow-change): --steps 2 → 3',
  ]);
  expect(resumed.stdout).toMatch(/^continuing a run of 2 rank\(s\) on 1: 2 micro-batch\(es\) of 2 rows per rank/m);
  expect(resumed.stdout.match(/^step +\d\/3 \| loss/gm)).toHaveLength(1);
}, 180_000);
