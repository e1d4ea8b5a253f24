// The torch.distributed backend's failures: a rank that exits, hangs, loses its sidecar, aborts or disagrees, and
// one that never joins, each ending the job with a message naming the rank, and no sidecar left running.
import { describe, expect, it } from 'vitest';
import { hasTorch, noSidecars, run } from '../../test/torch-jobs.ts';

describe.skipIf(!hasTorch)(
  'a rank that fails ends the whole job with a message naming it, and no sidecar stays',
  () => {
    // 3 s for a missing rank; joining (node, tsx, importing torch) has its own, longer timeout on a busy machine.
    const env = { WGPT_DIST_TIMEOUT: '3', WGPT_DIST_JOIN_TIMEOUT: '120' };
    // The jobs run at the same time; each test waits for its own.
    const jobs = {
      exit: run(2, ['exit', '1'], env),
      hang: run(2, ['hang', '1'], env),
      kill: run(2, ['killsidecar', '1'], env),
      abort: run(2, ['abort'], env),
      mismatch: run(2, ['mismatch'], env),
      nojoin: run(2, ['nojoin'], { ...env, WGPT_DIST_JOIN_TIMEOUT: '6' }, 2000),
    };
    const expectAll = (stderr: string[], re: RegExp) => stderr.forEach((s) => expect(s).toMatch(re));

    it('a rank that exits: the other names it', async () => {
      const res = await jobs.exit;
      expect(res.exits.map((e) => e.code)).toEqual([1, 3]);
      expect(res.stderr[0]).toMatch(/DistError: rank 1 exited or crashed .* allReduce\(sum\) of 10 floats \(call 2\)/);
    }, 120_000);

    it('a rank that never arrives: named as behind, every rank ends, the hung one too', async () => {
      const res = await jobs.hang;
      expect(res.exits.map((e) => [e.code, e.signal])).toEqual([
        [1, null],
        [1, null],
      ]);
      expectAll(res.stderr, /DistError: rank 1 did not reach allReduce\(sum\) of 10 floats \(call 2\) within 3 s/);
    }, 120_000);

    it('a sidecar killed: its rank names it; the other rank names the silent rank', async () => {
      const res = await jobs.kill;
      expect(res.exits.map((e) => e.code)).toEqual([1, 1]);
      expect(res.stderr[1]).toMatch(/DistError: rank 1's torch sidecar \(.*pid \d+\) was killed by SIGKILL/);
      expect(res.stderr[0]).toMatch(/DistError: rank 1 stopped responding \(no heartbeat/);
    }, 120_000);

    it('abort reaches a rank that runs no operation', async () => {
      const res = await jobs.abort;
      expect(res.exits.map((e) => e.code)).toEqual([1, 1]);
      expectAll(res.stderr, /DistError: rank 1 gave up/);
    }, 120_000);

    it('ranks that call different operations: named, both', async () => {
      const res = await jobs.mismatch;
      expect(res.exits.map((e) => e.code)).toEqual([1, 1]);
      expectAll(
        res.stderr,
        /ranks disagree: rank 0 called allReduce\(sum\) of 10 floats .* rank 1 called .* 11 floats/,
      );
    }, 120_000);

    it('a rank that never joins: named, and the rank that joined ends too', async () => {
      const res = await jobs.nojoin;
      expect(res.stderr[0]).toMatch(/DistError: rank 1 did not join within 6 s/);
      expect(res.exits.map((e) => e.code)).toEqual([1, null]);
    }, 120_000);

    it('no sidecar is left running, and no shared file', async () => {
      const all = await Promise.all(Object.values(jobs));
      for (const res of all) expect(res.left).toEqual([]);
      expect(await noSidecars(all.flatMap((res) => res.pids))).toEqual([]);
    }, 120_000);
  },
);
