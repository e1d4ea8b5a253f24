import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { htmlBenchmarkFiles } from '../src/corpus.ts';
import type { PipelineConfig } from '../src/config.ts';
import { DocProcessor, type DocResult } from '../src/process.ts';
import type { RawRecord } from '../src/read.ts';
import { closeWorkerPool, DocThreads } from '../src/workers.ts';

afterAll(() => closeWorkerPool());

const pages = htmlBenchmarkFiles().slice(0, 6);
const items = (): RawRecord[] =>
  pages.map((f, i) => ({ id: `p#${i}`, url: `https://pages.example/${i}`, kind: 'html', body: fs.readFileSync(f) }));
const cfg: PipelineConfig = { inputs: [], output: '' };

/** Everything but the timings. */
const strip = (r: DocResult) => ({
  ...r,
  trace: r.trace.map((t) => ({ stage: t.stage, bytes: t.bytes })),
  sig: r.sig && { minhash: [...r.sig.minhash], exact: [...r.sig.exact] },
});

describe('DocThreads', () => {
  it('a worker thread returns what DocProcessor returns here, for every document, without touching the caller buffers',
    async () => {
    const local = new DocProcessor(cfg);
    const want = await Promise.all(items().map((it) => local.process(it)));
    const threads = await DocThreads.acquire(1, cfg);
    try {
      const got = new Map<number, DocResult>();
      const todo = items();
      let seq = 0;
      while (got.size < todo.length) {
        while (seq < todo.length && threads.trySubmit(seq, todo[seq])) seq++;
        for (const [s, r] of seq > got.size ? await threads.wait() : []) got.set(s, r);
      }
      expect(threads.sent).toBe(todo.length);
      todo.forEach((it, i) => expect(Buffer.compare(it.body as Buffer, fs.readFileSync(pages[i]))).toBe(0));
      expect(threads.inflight).toBe(0);
      for (let i = 0; i < todo.length; i++) expect(strip(got.get(i)!), `document ${i}`).toEqual(strip(want[i]));
      // The queue is bounded: with nothing taken back, trySubmit refuses after a few documents.
      let accepted = 0;
      while (accepted < 100 && threads.trySubmit(1000 + accepted, todo[0])) accepted++;
      expect(accepted).toBeGreaterThan(0);
      expect(accepted).toBeLessThan(10);
      let back = 0;
      while (back < accepted) back += (await threads.wait()).length;
      expect(threads.inflight).toBe(0);
    } finally {
      await threads.release();
    }
  });

  it('steal() takes back queued documents the thread has not started; the thread skips them and returns the rest',
    async () => {
    const local = new DocProcessor(cfg);
    const todo = items();
    const want = await Promise.all(todo.map((it) => local.process(it)));
    const threads = await DocThreads.acquire(1, cfg);
    try {
      let seq = 0;
      while (seq < todo.length && threads.trySubmit(seq, todo[seq])) seq++;
      expect(seq).toBe(todo.length);
      // The thread works from the front; taking from the back gets the last document first.
      const back = threads.steal();
      expect(back).not.toBeNull();
      expect(back![0]).toBe(todo.length - 1);
      expect(back![1]).toBe(todo[todo.length - 1]);
      const got = new Map<number, DocResult>([[back![0], await local.process(back![1])]]);
      for (let b = threads.steal(); b; b = threads.steal()) got.set(b[0], await local.process(b[1]));
      while (threads.inflight > 0) {
        for (const [s, r] of await threads.wait()) {
          expect(got.has(s), `document ${s} returned twice`).toBe(false);
          got.set(s, r);
        }
      }
      expect([...got.keys()].sort((a, b) => a - b)).toEqual(todo.map((_, i) => i));
      for (let i = 0; i < todo.length; i++) expect(strip(got.get(i)!), `document ${i}`).toEqual(strip(want[i]));
      expect(threads.stolen).toBeGreaterThan(0);
      expect(threads.stolen).toBeLessThan(todo.length + 1);
      // Nothing more arrives for the stolen documents.
      await new Promise((r) => setTimeout(r, 200));
      expect(threads.poll()).toEqual([]);
    } finally {
      await threads.release();
    }
  });

  it('documents taken back leave no trace: sequence numbers used again (as the next unit does) get their own documents',
    async () => {
    // The largest page keeps the thread busy while the others are taken back and their sequence numbers sent again
    // with other pages; the stale messages still queued in the thread must be skipped, not answered for the new ones.
    const all = htmlBenchmarkFiles();
    const bySize = [...all].sort((a, b) => fs.statSync(b).size - fs.statSync(a).size);
    const rec = (f: string, i: number): RawRecord =>
      ({ id: `q#${i}`, url: `https://pages.example/q${i}`, kind: 'html', body: fs.readFileSync(f) });
    // About 1.6 MB of real HTML: a few hundred ms of work here, far longer than the steps below take.
    const fourTimes = Buffer.concat(Array.from({ length: 4 }, () => fs.readFileSync(bySize[0])));
    const big: RawRecord = { ...rec(bySize[0], 0), body: fourTimes };
    const first = all.slice(0, 5).map((f, i) => rec(f, 100 + i));
    const second = all.slice(5, 10).map((f, i) => rec(f, 200 + i));
    const local = new DocProcessor(cfg);
    const threads = await DocThreads.acquire(1, cfg);
    try {
      // Send the big page until the thread has started on it (a cold thread may still be loading).
      for (;;) {
        expect(threads.trySubmit(0, big)).toBe(true);
        await new Promise((r) => setTimeout(r, 5));
        if (!threads.steal()) break;
      }
      first.forEach((it, i) => expect(threads.trySubmit(i + 1, it)).toBe(true));
      const back: number[] = [];
      for (let b = threads.steal(); b; b = threads.steal()) back.push(b[0]);
      expect(back).toEqual([5, 4, 3, 2, 1]); // the big page is still being processed
      second.forEach((it, i) => expect(threads.trySubmit(i + 1, it)).toBe(true));
      const got = new Map<number, DocResult>();
      while (threads.inflight > 0) {
        for (const [s, r] of await threads.wait()) {
          expect(got.has(s), `sequence ${s} answered twice`).toBe(false);
          got.set(s, r);
        }
      }
      expect([...got.keys()].sort()).toEqual([0, 1, 2, 3, 4, 5]);
      expect(strip(got.get(0)!)).toEqual(strip(await local.process(big)));
      for (let i = 0; i < second.length; i++) {
        expect(strip(got.get(i + 1)!), `sequence ${i + 1}`).toEqual(strip(await local.process(second[i])));
      }
    } finally {
      await threads.release();
    }
  });

  it('an error in the thread reaches the caller with the document it was processing', async () => {
    const bad: PipelineConfig = { ...cfg, dedup: { hashesPerBucket: 9 } };
    const threads = await DocThreads.acquire(1, bad);
    try {
      expect(threads.trySubmit(7, items()[0])).toBe(true);
      await expect(threads.wait()).rejects.toThrow(/document 7 \(p#0\): .*hashesPerBucket must be 1\.\.8/);
    } finally {
      await threads.release();
    }
  });
});
