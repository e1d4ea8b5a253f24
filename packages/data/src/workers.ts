// Worker threads for the process step: a pool of threads that each run a DocProcessor on the documents the main
// thread sends them. The main thread reads the input once, hands each document to a thread with room in its queue
// or else processes it itself, and puts the results back in input order, so the output is the same for any number
// of threads and the work is shared document by document (no thread waits while another has a long unit left).
// The worker's TypeScript entry is bundled once with esbuild (registry packages kept external, workspace packages
// bundled) into packages/data/.cache/, next to node_modules, so plain Node can run it in a thread.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { WgptError } from '@wgpt/base';
import type { PipelineConfig } from './config.ts';
import type { DocResult } from './process.ts';
import type { RawRecord } from './read.ts';
import { claim, CLAIM_SLOTS, QUEUED, STOLEN, type Reply } from './worker-protocol.ts';

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
  throw new WgptError(`worker entry not found (tried ${tried.join(', ')}); run with --workers 1`);
}

/**
 * The source folders the worker bundle is made from: this package's and those of the workspace packages it
 * depends on (TypeScript sources, which plain Node cannot load, so they are bundled in).
 */
function bundleSources(entry: string): string[] {
  const pkgDir = path.join(path.dirname(entry), '..');
  const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as
    { dependencies?: Record<string, string> };
  const workspace = Object.keys(pkg.dependencies ?? {}).filter((d) => d.startsWith('@wgpt/'));
  const srcOf = (d: string) => path.join(fs.realpathSync(path.join(pkgDir, 'node_modules', d)), 'src');
  return [path.dirname(entry), ...workspace.map(srcOf)];
}

async function workerScript(): Promise<string> {
  bundled ??= (async () => {
    const entry = findEntry();
    const outDir = path.join(path.dirname(entry), '..', '.cache');
    // Cached by the content of the sources, so only the first run after an edit pays for the bundle.
    const h = crypto.createHash('sha256');
    const walk = (d: string): void => {
      for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) h.update(p).update(fs.readFileSync(p));
      }
    };
    for (const d of bundleSources(entry)) if (fs.existsSync(d)) walk(d);
    const outfile = path.join(outDir, `worker-${h.digest('hex').slice(0, 16)}.mjs`);
    if (fs.existsSync(outfile)) return outfile;
    const esbuild = await import('esbuild');
    const tmp = `${outfile}.tmp-${process.pid}.mjs`;
    // Packages from the registry stay imports (resolved from this package's node_modules at run time); the
    // workspace's @wgpt/* packages are bundled.
    const registryExternal = {
      name: 'registry-packages-external',
      setup(b: import('esbuild').PluginBuild) {
        b.onResolve({ filter: /^[^./]/ }, (a) => (a.path.startsWith('@wgpt/') ? undefined : { external: true }));
      },
    };
    await esbuild.build({
      entryPoints: [entry], bundle: true, platform: 'node', format: 'esm', outfile: tmp, logLevel: 'warning',
      plugins: [registryExternal],
    });
    fs.renameSync(tmp, outfile);
    return outfile;
  })();
  return bundled;
}

/**
 * Documents queued per thread: enough that a thread still has work while the main thread processes a long page
 * (measured on the embedded pages, 2 threads: the worker thread was busy 95% of the step with 3, 98-99% with 8).
 */
const QUEUE_DEPTH = 8;
if (QUEUE_DEPTH >= CLAIM_SLOTS) throw new Error('QUEUE_DEPTH must be below CLAIM_SLOTS');

interface Thread {
  worker: Worker;
  /** Results come back on this port; the main thread reads it synchronously (receiveMessageOnPort). */
  port: MessagePort;
  /** See CLAIM_SLOTS. */
  claims: Int32Array;
  /** The documents sent and neither returned nor taken back, by id, with the caller's sequence number. */
  queued: Map<number, { seq: number; item: RawRecord }>;
  /** The config this thread's processor was built with (JSON), so it is sent once per run. */
  config: string;
  /** Set when the thread died or reported an error outside a document. */
  failed: Error | null;
  /** Settles when the thread has loaded its modules and the language model (or died trying). */
  ready: Promise<void>;
}

/** Bumped by every thread after it posts a result; the main thread sleeps on it (Atomics.wait) when it has to wait. */
const signal = new Int32Array(new SharedArrayBuffer(4));
const idle: Thread[] = [];
/** Ids of documents sent to threads: unique in this process (see worker-protocol.ts). */
let nextId = 0;

function startThread(script: string): Thread {
  const { port1, port2 } = new MessageChannel();
  const claims = new Int32Array(new SharedArrayBuffer(4 * CLAIM_SLOTS));
  const worker = new Worker(script, { workerData: { port: port2, signal, claims }, transferList: [port2] });
  let ready!: () => void;
  const t: Thread = {
    worker, port: port1, claims, queued: new Map(), config: '', failed: null, ready: new Promise((r) => { ready = r; }),
  };
  worker.once('message', ready); // worker-entry.ts says { ready: true } once it has loaded
  worker.on('error', (e) => { t.failed = e; ready(); });
  worker.on('exit', (code) => { t.failed ??= new Error(`worker thread exited with code ${code}`); ready(); });
  worker.unref();
  port1.unref();
  return t;
}

/**
 * Starts worker threads now so that they load their modules and the language model while the caller does other
 * work; a later run in this process takes them from the pool instead of starting cold threads. Resolves when the
 * first n pool threads have loaded (a thread that failed to is reported when a run uses it).
 */
export async function prestartWorkers(n: number): Promise<void> {
  if (n > idle.length) {
    const script = await workerScript();
    while (idle.length < n) idle.push(startThread(script));
  }
  await Promise.all(idle.slice(0, n).map((t) => t.ready));
}

/** Terminates the idle worker threads. */
export async function closeWorkerPool(): Promise<void> {
  const ts = idle.splice(0);
  await Promise.all(ts.map((t) => { t.port.close(); return t.worker.terminate(); }));
}

/** Worker threads lent to one run of the process step; give them back with release(). */
export class DocThreads {
  private released = false;
  /** Documents handed to the threads so far (taken back ones included). */
  sent = 0;
  /** Documents taken back by steal(). */
  stolen = 0;
  /** Seconds the threads spent in the stages of the documents they returned (their busy time). */
  busySeconds = 0;
  private constructor(private readonly threads: Thread[], private readonly config: string) {
    for (const t of threads) {
      t.worker.ref();
      if (t.config !== config) { t.worker.postMessage({ config: JSON.parse(config) }); t.config = config; }
    }
  }

  /** Takes n threads from the pool (starting the missing ones) for documents processed with `config`. */
  static async acquire(n: number, config: PipelineConfig): Promise<DocThreads> {
    const script = await workerScript();
    const threads = idle.splice(0, n).filter((t) => !t.failed);
    while (threads.length < n) threads.push(startThread(script));
    return new DocThreads(threads, JSON.stringify(config));
  }

  get size(): number { return this.threads.length; }
  get inflight(): number { return this.threads.reduce((a, t) => a + t.queued.size, 0); }

  /** Sends the document to a thread with room in its queue; false when every queue is full. */
  trySubmit(seq: number, item: RawRecord): boolean {
    let best: Thread | null = null;
    for (const t of this.threads) {
      if (t.queued.size < QUEUE_DEPTH && (!best || t.queued.size < best.queued.size)) best = t;
    }
    if (!best) return false;
    this.check(best);
    const id = nextId++;
    Atomics.store(best.claims, id % CLAIM_SLOTS, claim(id, QUEUED));
    best.queued.set(id, { seq, item });
    // A copy of the body in its own buffer is moved to the thread, not cloned.
    if (typeof item.body === 'string') best.worker.postMessage({ id, item });
    else {
      const body = new Uint8Array(item.body);
      best.worker.postMessage({ id, item: { ...item, body } }, [body.buffer]);
    }
    this.sent++;
    return true;
  }

  /** The results that have arrived, without waiting. Throws a thread's error. */
  poll(): Array<[number, DocResult]> {
    const out: Array<[number, DocResult]> = [];
    for (const t of this.threads) {
      for (let m = receiveMessageOnPort(t.port); m; m = receiveMessageOnPort(t.port)) {
        const r = m.message as Reply;
        const sent = t.queued.get(r.id);
        if (!sent) throw new Error(`worker thread answered for document id ${r.id}, which it does not hold`);
        t.queued.delete(r.id);
        if (r.error !== undefined) throw new Error(`worker thread, document ${sent.seq} (${sent.item.id}): ${r.error}`);
        for (const st of r.result!.trace) this.busySeconds += st.seconds;
        if (r.result!.sig) this.busySeconds += r.result!.sig.seconds;
        out.push([sent.seq, r.result!]);
      }
      if (t.queued.size > 0) this.check(t);
    }
    return out;
  }

  /**
   * Takes back the most recently queued document that no thread has started yet (for the caller to process itself),
   * or returns null when every queued document has been started. Threads work from the front of their queues, so
   * taking from the back keeps both sides busy until the end.
   */
  steal(): [number, RawRecord] | null {
    let bestId = -1;
    let best: Thread | null = null;
    for (const t of this.threads) for (const id of t.queued.keys()) if (id > bestId) { bestId = id; best = t; }
    if (!best) return null;
    const q = claim(bestId, QUEUED);
    // A thread has started on it already.
    if (Atomics.compareExchange(best.claims, bestId % CLAIM_SLOTS, q, claim(bestId, STOLEN)) !== q) return null;
    const { seq, item } = best.queued.get(bestId)!;
    best.queued.delete(bestId);
    this.stolen++;
    return [seq, item];
  }

  /**
   * Waits for results (call only with documents in flight). Sleeps on the shared signal for at most 50 ms at a time,
   * then lets the event loop run, so that a thread's death is noticed.
   */
  async wait(): Promise<Array<[number, DocResult]>> {
    for (;;) {
      const seen = Atomics.load(signal, 0);
      const got = this.poll();
      if (got.length) return got;
      if (Atomics.wait(signal, 0, seen, 50) === 'timed-out') await new Promise((r) => setImmediate(r));
    }
  }

  private check(t: Thread): void {
    if (t.failed) throw new Error(`worker thread failed: ${t.failed.message}`);
  }

  /** Gives the threads back to the pool; threads with work still queued or that failed are ended instead. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    for (const t of this.threads) {
      if (t.failed || t.queued.size > 0) { t.port.close(); await t.worker.terminate(); continue; }
      t.worker.unref();
      idle.push(t);
    }
  }
}
