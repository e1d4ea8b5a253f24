// Worker threads for the process step. The worker's TypeScript entry is bundled once with esbuild (packages kept
// external) into packages/data/.cache/, next to node_modules, so plain Node can run it in a thread.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Plan } from './pipeline.ts';

let bundled: Promise<string> | null = null;

/** worker-entry.ts next to this file, or (when this code was bundled elsewhere) in the resolved @wgpt/data. */
function findEntry(): string {
  const tried: string[] = [];
  const candidates = [() => path.dirname(fileURLToPath(import.meta.url))];
  for (const base of [import.meta.url, path.join(process.cwd(), 'noop.js')]) {
    candidates.push(() => path.dirname(createRequire(base).resolve('@wgpt/data')));
  }
  for (const c of candidates) {
    try {
      const f = path.join(c(), 'worker-entry.ts');
      tried.push(f);
      if (fs.existsSync(f)) return f;
    } catch { /* not resolvable from there */ }
  }
  throw new Error(`worker entry not found (tried ${tried.join(', ')}); run with --workers 1`);
}

async function workerScript(): Promise<string> {
  bundled ??= (async () => {
    const entry = findEntry();
    const outDir = path.join(path.dirname(entry), '..', '.cache');
    // Cached by the content of the sources, so only the first run after an edit pays for the bundle.
    const srcDir = path.dirname(entry);
    const h = crypto.createHash('sha256');
    const walk = (d: string): void => {
      for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) h.update(p).update(fs.readFileSync(p));
      }
    };
    walk(srcDir);
    const outfile = path.join(outDir, `worker-${h.digest('hex').slice(0, 16)}.mjs`);
    if (fs.existsSync(outfile)) return outfile;
    const esbuild = await import('esbuild');
    const tmp = `${outfile}.tmp-${process.pid}.mjs`;
    await esbuild.build({ entryPoints: [entry], bundle: true, platform: 'node', format: 'esm', packages: 'external', outfile: tmp, logLevel: 'warning' });
    fs.renameSync(tmp, outfile);
    return outfile;
  })();
  return bundled;
}

/**
 * Runs the process step for `units` with `n` workers: the calling thread is one of them and n - 1 worker threads are
 * the others (saving one thread's start-up); each pulls the next unit when it finishes one.
 */
export async function runUnitsInWorkers(plan: Plan, out: string, units: number[], n: number, onProgress: (bytes: number) => void): Promise<void> {
  const queue = [...units];
  const nThreads = Math.min(n - 1, units.length - 1);
  const script = nThreads > 0 ? await workerScript() : '';
  const threads = Array.from({ length: Math.max(0, nThreads) }, () => new Worker(script, { workerData: { plan, out } }));
  const inThreads = threads.map((w) => new Promise<void>((resolve, reject) => {
    const next = () => { const u = queue.shift(); if (u === undefined) { w.postMessage({ stop: true }); } else w.postMessage({ unit: u }); };
    // The first unit is queued at once (the thread picks it up when it is ready), so a busy main thread never
    // keeps a thread waiting for work.
    next();
    w.on('message', (m: { ready?: true; done?: number; error?: string; progress?: { docs: number; bytes: number } }) => {
      if (m.progress) { for (let i = 1; i < m.progress.docs; i++) onProgress(0); if (m.progress.docs) onProgress(m.progress.bytes); }
      if (m.done !== undefined) next();
      if (m.error) reject(new Error(m.error));
    });
    w.on('error', reject);
    w.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker exited with code ${code}`))));
  }));
  const inMain = (async () => {
    const { processUnit } = await import('./pipeline.ts');
    for (let u = queue.shift(); u !== undefined; u = queue.shift()) await processUnit(plan, out, u, onProgress);
  })();
  try {
    await Promise.all([inMain, ...inThreads]);
  } finally {
    await Promise.all(threads.map((w) => w.terminate()));
  }
}
