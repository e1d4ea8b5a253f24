// The torch.distributed backend: ranks on any number of nodes. Each rank runs a sidecar process (torch_sidecar.py,
// torch's Gloo backend over TCP) and hands it the data through a per-rank file on /dev/shm that the sidecar maps:
// Node writes with pwrite and reads with pread, as the shared-memory backend does; commands and answers are JSON
// lines on the sidecar's stdin and stdout.
//
// The file holds two slot sets, each a send region and an output region of `chunk` floats: an operation runs in
// rounds that alternate between them, so Node writes round k+1's input while the sidecar reduces round k. Reductions
// are reduce-scatter + all-gather with the sum in rank order 0..W-1 in f32, each element on one rank: the same bits
// on every rank and the same bits as ShmCollective.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import {
  checkReduceOp,
  DistError,
  checkRoot,
  ownShard,
  shardRange,
  type Collective,
  type ReduceOp,
} from './collective.ts';

export interface TorchOptions {
  rank: number;
  worldSize: number;
  /** The job's rendezvous (rank 0's store, or torchrun's agent store when TORCHELASTIC_USE_AGENT_STORE=True). */
  masterAddr: string;
  masterPort: number;
  /** Names the job: the sidecars' keys in the store are under it. */
  jobId: string;
  /** Floats per region (default 2 Mi floats, 8 MiB): the file holds 4 of them. */
  chunkFloats?: number;
  /** How long a Gloo operation may wait for a rank before the job ends (default 600 s). */
  timeoutMs?: number;
  /** How long the ranks may take to start and join (default: timeoutMs). */
  joinTimeoutMs?: number;
  /** The Python with torch (default: WGPT_PYTHON, else /usr/bin/python3 where it exists, else python3). */
  python?: string;
  /** The sidecar's environment (default this process's: under torchrun it needs TORCHELASTIC_USE_AGENT_STORE). */
  env?: Record<string, string | undefined>;
  /** Where the shared file is made (default /dev/shm, else the temp folder). */
  shmDir?: string;
}

type Answer = { id?: number; event?: 'ready' | 'fail' | 'fatal'; msg?: string };

const DEFAULT_CHUNK = 2 << 20;
const DEFAULT_TIMEOUT_MS = 600_000;
const SIDECAR = new URL('./torch_sidecar.py', import.meta.url).pathname;

export function defaultPython(env: Record<string, string | undefined> = process.env): string {
  if (env.WGPT_PYTHON) return env.WGPT_PYTHON;
  return fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

const seconds = (ms: number) => `${+(ms / 1000).toFixed(3)} s`;
const INSTALL = 'set WGPT_PYTHON to a Python that has torch with Gloo, or install it (apt-get install python3-torch)';

export class TorchCollective implements Collective {
  readonly rank: number;
  readonly worldSize: number;
  readonly failed: Promise<never>;
  private onFailed: (e: DistError) => void = () => {};
  private dead: DistError | null = null;
  private child!: ChildProcess;
  private stderrTail = '';
  private fd = -1;
  private readonly chunk: number;
  private readonly timeoutMs: number;
  private readonly joinTimeoutMs: number;
  private readonly python: string;
  private nextId = 0;
  private calls = 0;
  private busy = false;
  private closing = false;
  private doing = 'joining the job';
  private waiting = new Map<number, { resolve: () => void; reject: (e: DistError) => void; timer: NodeJS.Timeout }>();
  private ready: { resolve: () => void; reject: (e: DistError) => void } | null = null;

  private constructor(opts: TorchOptions) {
    this.failed = new Promise<never>((_, reject) => (this.onFailed = reject));
    this.failed.catch(() => {}); // a job that nobody races still ends cleanly
    this.rank = opts.rank;
    this.worldSize = opts.worldSize;
    this.chunk = opts.chunkFloats ?? DEFAULT_CHUNK;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.joinTimeoutMs = opts.joinTimeoutMs ?? this.timeoutMs;
    this.python = opts.python ?? defaultPython(opts.env ?? process.env);
  }

  /** The sidecar's process id (for diagnostics and tests). */
  get sidecarPid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts this rank's sidecar and joins the job through it; resolves when every rank has joined. */
  static async connect(opts: TorchOptions): Promise<TorchCollective> {
    const W = opts.worldSize;
    if (!Number.isInteger(W) || W < 1) throw new DistError(`world size ${W} is not a positive integer`);
    if (!Number.isInteger(opts.rank) || opts.rank < 0 || opts.rank >= W) {
      throw new DistError(`rank ${opts.rank} is not in 0..${W - 1}`);
    }
    const c = new TorchCollective(opts);
    if (!Number.isInteger(c.chunk) || c.chunk < W)
      throw new DistError(`chunk of ${c.chunk} floats is below ${W} ranks`);
    const dir = opts.shmDir ?? (fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir());
    const file = path.join(dir, `wgpt-torch-${process.pid}-${Math.random().toString(36).slice(2)}`);
    c.fd = fs.openSync(file, 'w+', 0o600);
    try {
      fs.ftruncateSync(c.fd, 4 * c.chunk * 4);
      const cfg = {
        rank: opts.rank,
        worldSize: W,
        addr: opts.masterAddr,
        port: opts.masterPort,
        timeoutMs: c.timeoutMs,
        joinTimeoutMs: c.joinTimeoutMs,
        chunk: c.chunk,
        file,
        prefix: `wgpt/${opts.jobId}/`,
      };
      await c.start(cfg, opts.env ?? process.env);
    } catch (e) {
      if (c.fd >= 0) fs.closeSync(c.fd);
      c.fd = -1;
      throw e;
    } finally {
      fs.rmSync(file, { force: true }); // both sides hold it open now (or the job failed)
    }
    c.doing = 'idle';
    return c;
  }

  private start(cfg: object, env: Record<string, string | undefined>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      // The store's own join timeout answers first; this one is for a sidecar that hangs before it.
      const late = this.joinTimeoutMs + 30_000;
      const timer = setTimeout(() => {
        this.die(
          new DistError(`rank ${this.rank}'s torch sidecar (${this.python}) did not join within ${seconds(late)}`),
        );
      }, late);
      this.ready = {
        resolve: () => (clearTimeout(timer), resolve()),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
      const child = spawn(this.python, [SIDECAR, JSON.stringify(cfg)], { stdio: ['pipe', 'pipe', 'pipe'], env });
      this.child = child;
      child.on('error', (e: NodeJS.ErrnoException) => {
        this.die(
          new DistError(
            `rank ${this.rank} cannot start the torch sidecar with ${this.python} (${e.code ?? e.message}): ${INSTALL}`,
          ),
        );
      });
      child.stdin!.on('error', () => {}); // a sidecar that is gone: its 'exit' says why
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (d: string) => (this.stderrTail = (this.stderrTail + d).slice(-2000)));
      createInterface({ input: child.stdout! }).on('line', (line) => {
        let m: Answer;
        try {
          m = JSON.parse(line) as Answer;
        } catch {
          return; // not ours (a library printing to stdout)
        }
        this.onAnswer(m);
      });
      // 'close', not 'exit': the sidecar's last lines (a fatal error) are read first.
      child.on('close', (code, signal) => {
        if (this.closing && !this.dead) return;
        const how = signal ? `was killed by ${signal}` : `exited with status ${code}`;
        const tail = this.stderrTail.trim().split('\n').slice(-3).join(' | ');
        const hint = this.ready ? `; ${INSTALL}` : '';
        this.die(
          new DistError(
            `rank ${this.rank}'s torch sidecar (${this.python}, pid ${child.pid}) ${how} while ${this.doing}` +
              (tail ? `: ${tail}` : '') +
              hint,
          ),
        );
      });
    });
  }

  private onAnswer(m: Answer): void {
    if (m.event === 'ready') {
      this.ready?.resolve();
      this.ready = null;
    } else if (m.event === 'fatal') {
      const hint = /cannot import torch|without torch.distributed/.test(m.msg ?? '') ? `: ${INSTALL}` : '';
      this.die(new DistError(`rank ${this.rank}'s torch sidecar (${this.python}): ${m.msg}${hint}`));
    } else if (m.event === 'fail') {
      this.die(new DistError(m.msg ?? 'the job failed'));
    } else if (m.id !== undefined) {
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      clearTimeout(w.timer);
      w.resolve();
    }
  }

  private die(e: DistError): void {
    if (this.dead) return;
    this.dead = e;
    this.onFailed(e);
    this.ready?.reject(e);
    this.ready = null;
    for (const w of this.waiting.values()) {
      clearTimeout(w.timer);
      w.reject(e);
    }
    this.waiting.clear();
    // The sidecar ends when its stdin closes; a sidecar that cannot read it (stopped) is killed a little later.
    this.child?.stdin?.end();
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      setTimeout(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'), 30_000).unref();
    }
  }

  abort(reason: string): void {
    if (this.dead) return;
    this.command({ op: 'abort', msg: reason });
    this.die(new DistError(reason));
  }

  private command(m: Record<string, unknown>): void {
    this.child.stdin!.write(`${JSON.stringify(m)}\n`);
  }

  /** Sends a command to the sidecar; resolves when it has done it. */
  private ask(m: Record<string, unknown>, tag: string): Promise<void> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      // The sidecar's Gloo timeout answers a missing rank; this is for a sidecar that cannot answer at all.
      const wait = 2 * this.timeoutMs + 30_000;
      const timer = setTimeout(() => {
        this.die(new DistError(`rank ${this.rank}'s torch sidecar did not answer ${tag} within ${seconds(wait)}`));
      }, wait);
      this.waiting.set(id, { resolve, reject, timer });
      this.command({ ...m, id, call: this.calls, tag });
    });
  }

  // ---- data ----

  private write(src: Float32Array, start: number, end: number, at: number): void {
    if (end <= start) return;
    const b = Buffer.from(src.buffer, src.byteOffset + start * 4, (end - start) * 4);
    let done = 0;
    while (done < b.length) done += fs.writeSync(this.fd, b, done, b.length - done, at * 4 + done);
  }

  private read(dst: Float32Array, start: number, end: number, at: number): void {
    if (end <= start) return;
    const b = Buffer.from(dst.buffer, dst.byteOffset + start * 4, (end - start) * 4);
    let done = 0;
    while (done < b.length) {
      const got = fs.readSync(this.fd, b, done, b.length - done, at * 4 + done);
      if (got === 0) throw new DistError(`the shared file ended early (read at byte ${at * 4 + done})`);
      done += got;
    }
  }

  private sendRegion(k: number): number {
    return 2 * (k % 2) * this.chunk;
  }

  private outRegion(k: number): number {
    return (2 * (k % 2) + 1) * this.chunk;
  }

  private async op<T>(tag: string, body: (tag: string) => Promise<T>): Promise<T> {
    if (this.dead) throw this.dead;
    if (this.busy) throw new DistError(`rank ${this.rank}: ${tag} started while another operation is running`);
    this.busy = true;
    const full = `${tag} (call ${++this.calls})`;
    this.doing = `in ${full}`;
    try {
      return await body(full);
    } finally {
      this.busy = false;
      this.doing = 'idle';
    }
  }

  /** Round k of a reduction: every owner's piece (at most q floats) and the longest of them, L. */
  private pieces(n: number, k: number, q: number) {
    const W = this.worldSize;
    const ps = [...Array(W).keys()].map((d) => {
      const s = shardRange(n, W, d);
      const a = Math.min(s.end, s.start + k * q);
      return { a, b: Math.min(s.end, a + q) };
    });
    return { ps, L: Math.max(...ps.map((p) => p.b - p.a)) };
  }

  /**
   * Reduce-scatter (and with `gather`, all-gather) of `input` in rounds of at most chunk / W floats per rank; each
   * round's result goes to `take(k, L)` while the sidecar runs the next one.
   */
  private async reduce(
    input: Float32Array,
    op: ReduceOp,
    gather: boolean,
    tag: string,
    take: (k: number, L: number) => void,
  ) {
    const W = this.worldSize;
    const n = input.length;
    const q = Math.floor(this.chunk / W);
    const rounds = Math.ceil(Math.ceil(n / W) / q);
    const put = (k: number) => {
      const { ps, L } = this.pieces(n, k, q);
      ps.forEach((p, d) => this.write(input, p.a, p.b, this.sendRegion(k) + d * L));
      const mine = ps[this.rank]!;
      return this.ask({ op: 'rs', p: k % 2, L, len: mine.b - mine.a, mean: op === 'mean', gather }, tag);
    };
    if (rounds === 0) return;
    let pending = put(0);
    for (let k = 0; k < rounds; k++) {
      // Round k+1 goes to the other slot set, whose round k-1 result has been read: this rank writes it while the
      // sidecar reduces round k, which then goes straight on to round k+1 while this rank reads round k's result.
      const next = k + 1 < rounds ? put(k + 1) : null;
      next?.catch(() => {}); // awaited next round; a failure rejects `pending` first
      await pending;
      take(k, this.pieces(n, k, q).L);
      if (next) pending = next;
    }
  }

  async allReduce(data: Float32Array, op: ReduceOp = 'sum'): Promise<void> {
    checkReduceOp(op);
    const n = data.length;
    await this.op(`allReduce(${op}) of ${n} floats`, (tag) =>
      this.reduce(data, op, true, tag, (k, L) => {
        const q = Math.floor(this.chunk / this.worldSize);
        this.pieces(n, k, q).ps.forEach((p, d) => this.read(data, p.a, p.b, this.outRegion(k) + d * L));
      }),
    );
  }

  async reduceScatter(input: Float32Array, op: ReduceOp = 'sum'): Promise<Float32Array> {
    checkReduceOp(op);
    const n = input.length;
    return this.op(`reduceScatter(${op}) of ${n} floats`, async (tag) => {
      const own = shardRange(n, this.worldSize, this.rank);
      const out = new Float32Array(own.end - own.start);
      const q = Math.floor(this.chunk / this.worldSize);
      await this.reduce(input, op, false, tag, (k) => {
        const p = this.pieces(n, k, q).ps[this.rank]!;
        this.read(out, p.a - own.start, p.b - own.start, this.outRegion(k));
      });
      return out;
    });
  }

  async allGather(shard: Float32Array, n: number): Promise<Float32Array> {
    return this.op(`allGather of ${n} floats`, async (tag) => {
      const W = this.worldSize;
      const own = ownShard(shard, n, W, this.rank);
      const out = new Float32Array(n);
      const q = Math.floor(this.chunk / W);
      const rounds = Math.ceil(Math.ceil(n / W) / q);
      for (let k = 0; k < rounds; k++) {
        const { ps, L } = this.pieces(n, k, q);
        const mine = ps[this.rank]!;
        this.write(shard, mine.a - own.start, mine.b - own.start, this.sendRegion(k));
        await this.ask({ op: 'ag', p: k % 2, L }, tag);
        ps.forEach((p, d) => this.read(out, p.a, p.b, this.outRegion(k) + d * L));
      }
      return out;
    });
  }

  async broadcast(data: Float32Array, root = 0): Promise<void> {
    const n = data.length;
    await this.op(`broadcast of ${n} floats from rank ${root}`, async (tag) => {
      const W = this.worldSize;
      checkRoot(root, W);
      const q = this.chunk;
      for (let k = 0; k * q < n; k++) {
        const a = k * q;
        const b = Math.min(n, a + q);
        if (this.rank === root) this.write(data, a, b, this.sendRegion(k));
        await this.ask({ op: 'bc', p: k % 2, len: b - a, root }, tag);
        if (this.rank !== root) this.read(data, a, b, this.sendRegion(k));
      }
    });
  }

  async barrier(): Promise<void> {
    await this.op('barrier', (tag) => this.ask({ op: 'barrier' }, tag));
  }

  async close(): Promise<void> {
    if (this.dead) throw this.dead;
    await this.op('close', (tag) => this.ask({ op: 'close' }, tag));
    this.closing = true;
    const child = this.child;
    const exited =
      child.exitCode !== null || child.signalCode !== null ? null : new Promise((r) => child.once('exit', r));
    child.stdin!.end();
    await exited;
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}
