// The checkpoint writer under crashes: a crash (a thrown error from the fault hook, which leaves the files exactly as
// a SIGKILL at that point would) at every rename and removal of one run, then at every one of the resumed run, and
// after each pair a resume must find the newest committed checkpoint whole and bit-identical to what was saved.
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  checkpointModelPath,
  loadCheckpoint,
  makeConfig,
  paramCount,
  saveCheckpoint,
  setFaultHook,
  tidyCheckpoints,
  type ModelFile,
  type TrainState,
} from '../src/index.ts';

const config = makeConfig({ maxT: 4, V: 5, L: 1, NH: 1, C: 4 });
const sizes = [7, 13, 1]; // moments of three made-up tensors; only their total has to match the parameter count
sizes[2] = paramCount(config) - 20;

/** What a run saves at `step`: every value depends on the step, so a checkpoint of another step cannot pass. */
function saved(step: number): { model: ModelFile; state: TrainState } {
  const params = Float32Array.from({ length: paramCount(config) }, (_, i) => Math.sin(step * 1000 + i));
  const moment = (k: number, j: number, s: number) =>
    Float32Array.from({ length: s }, (_, i) => Math.cos(step * 77 + k * 13 + j * 5 + i));
  const optimizer = { step, m: sizes.map((s, j) => moment(1, j, s)), v: sizes.map((s, j) => moment(2, j, s)) };
  return {
    model: { config, params },
    state: { step, loader: { epoch: 0, shard: 1, window: step }, optimizer, seed: 9 },
  };
}

class Crash extends Error {}

/** Counts fault points; throws a Crash at the `at`-th (never when `at` is 0). Returns a reader of the count. */
function faults(at: number): () => number {
  let n = 0;
  setFaultHook(() => {
    if (++n === at) throw new Crash(`crash at fault point ${at}`);
  });
  return () => n;
}
afterEach(() => setFaultHook(null));

/** The step a resume would continue from (0: start over), checking the checkpoint is the one saved at that step. */
function resumeStep(dir: string): number {
  return resumeFrom(dir).step;
}

function resumeFrom(dir: string): { step: number; from: string } {
  let got: ReturnType<typeof loadCheckpoint>;
  try {
    got = loadCheckpoint(dir);
  } catch (e) {
    // Nothing committed yet, and no complete folder: a resume has to start over.
    if (/no complete checkpoint|no checkpoint|cannot open/.test((e as Error).message)) return { step: 0, from: '' };
    throw e;
  }
  const want = saved(got.state.step);
  expect(Buffer.from(got.model.params.buffer).equals(Buffer.from(want.model.params.buffer))).toBe(true);
  expect(got.state.loader).toEqual(want.state.loader);
  expect(got.state.optimizer.m.map((a) => [...a])).toEqual(want.state.optimizer.m.map((a) => [...a]));
  expect(got.state.optimizer.v.map((a) => [...a])).toEqual(want.state.optimizer.v.map((a) => [...a]));
  // sample/eval read the model of the same folder
  expect(checkpointModelPath(dir)).toBe(join(got.dir, 'model.bin'));
  return { step: got.state.step, from: got.dir };
}

const LAST = 3;

/**
 * A run as train() makes one: resume, then save every step to LAST, pushing each step whose save returned (is
 * committed); a run resumed at the last step from a folder left by a crash saves it again, to put it in place.
 */
async function run(dir: string, committed: number[]): Promise<void> {
  const { step, from } = resumeFrom(dir);
  if (from === dir) tidyCheckpoints(dir, step);
  else if (step === LAST) await saveCheckpoint(dir, saved(step).model, saved(step).state);
  for (let s = step + 1; s <= LAST; s++) {
    const { model, state } = saved(s);
    await saveCheckpoint(dir, model, state);
    committed.push(s);
  }
}

async function crashes(dir: string, at: number, committed: number[]): Promise<boolean> {
  faults(at);
  try {
    await run(dir, committed);
    return false;
  } catch (e) {
    if (!(e instanceof Crash)) throw e;
    return true;
  } finally {
    setFaultHook(null);
  }
}

describe('checkpoint writing under crashes', () => {
  it('after a crash at any rename or removal and another in the resumed run, the newest checkpoint loads', async () => {
    const root = mkdtempSync(join(tmpdir(), 'wgpt-ckfault-'));
    const count = faults(0);
    const probe = join(root, 'probe', 'checkpoint');
    await run(probe, []);
    const points = count();
    setFaultHook(null);
    expect(points).toBe(15); // 3 for the first save, 6 for each later one (the loops below follow any count)
    let pairs = 0;
    for (let n = 1; n <= points; n++) {
      const first = join(root, `n${n}`);
      const committed: number[] = [];
      expect(await crashes(join(first, 'checkpoint'), n, committed)).toBe(true);
      expect(resumeStep(join(first, 'checkpoint'))).toBeGreaterThanOrEqual(committed.at(-1) ?? 0);
      // Every fault point of the resumed run, each from a copy of the folder the first crash left.
      for (let m = 1; ; m++) {
        const dir = join(root, `n${n}m${m}`);
        cpSync(first, dir, { recursive: true });
        const c2 = [...committed];
        const crashed = await crashes(join(dir, 'checkpoint'), m, c2);
        const step = resumeStep(join(dir, 'checkpoint'));
        expect(step, `crash at ${n}, then at ${m}`).toBeGreaterThanOrEqual(c2.at(-1) ?? 0);
        // The third run finishes and leaves one checkpoint folder, of the last step.
        await run(join(dir, 'checkpoint'), c2);
        expect(readdirSync(dir).sort(), `crash at ${n}, then at ${m}`).toEqual(['checkpoint']);
        expect(resumeStep(join(dir, 'checkpoint'))).toBe(LAST);
        rmSync(dir, { recursive: true });
        pairs++;
        if (!crashed) break;
      }
    }
    expect(pairs).toBeGreaterThan(points * 3);
  });

  it('a damaged checkpoint folder is passed over for the complete one beside it, and replaced on save', async () => {
    const root = mkdtempSync(join(tmpdir(), 'wgpt-ckdamaged-'));
    const dir = join(root, 'checkpoint');
    await saveCheckpoint(dir, saved(1).model, saved(1).state);
    cpSync(dir, join(root, 'keep'), { recursive: true });
    await saveCheckpoint(dir, saved(2).model, saved(2).state);
    // A step-1 copy beside a step-2 folder with one flipped bit in model.bin: the hash passes the step-2 one over.
    const m = join(dir, 'model.bin');
    const bytes = readFileSync(m);
    bytes[2000]! ^= 1;
    writeFileSync(m, bytes);
    cpSync(join(root, 'keep'), `${dir}.old`, { recursive: true });
    let got = loadCheckpoint(dir);
    expect(got.dir).toBe(`${dir}.old`);
    expect(got.state.step).toBe(1);
    expect(got.skipped.join()).toMatch(/checkpoint: checksum mismatch between model\.bin and state\.bin/);
    // A truncated model.bin: passed over too.
    writeFileSync(m, readFileSync(m).subarray(0, statSync(m).size - 4));
    got = loadCheckpoint(dir);
    expect(got.dir).toBe(`${dir}.old`);
    rmSync(`${dir}.old`, { recursive: true });
    expect(() => loadCheckpoint(dir)).toThrow(/checkpoint\/model\.bin: \d+ bytes, but the header's config .* needs/);
    await saveCheckpoint(dir, saved(2).model, saved(2).state);
    expect(readdirSync(root).sort()).toEqual(['checkpoint', 'keep']);
    expect(loadCheckpoint(dir).state.step).toBe(2);
  });

  it('a newer checkpoint left by another run is not removed by an older save', async () => {
    const root = mkdtempSync(join(tmpdir(), 'wgpt-cknewer-'));
    const dir = join(root, 'checkpoint');
    await saveCheckpoint(dir, saved(5).model, saved(5).state);
    // as a crashed writer leaves it (the pid is not alive elsewhere)
    const other = `${dir}.tmp-${process.pid}-feedbeef`;
    cpSync(dir, other, { recursive: true });
    await saveCheckpoint(dir, saved(2).model, saved(2).state);
    expect(existsSync(other)).toBe(true);
    expect(loadCheckpoint(dir).state.step).toBe(5);
  });
});
