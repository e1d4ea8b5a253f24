// The shared-host-memory backend: the ranks of one node, one process each, move data through a file on /dev/shm
// (tmpfs: page-cache memory, no disk) and agree on when through small messages to rank 0 over a Unix socket.
//
// Why processes and a file rather than threads and a SharedArrayBuffer: dawn.node crashes (SIGSEGV, or abort with
// "std::system_error: Invalid argument") as soon as two worker threads of one process each drive a device, so each
// rank needs its own process. Every rank maps the file (mmap.ts), so ranks copy with TypedArray.set and sum straight
// out of each other's slots: no system call per copy. (Copying through pread/pwrite instead cost about three times
// the CPU time per all-reduce.)
//
// Layout of the file: two sets of W input slots of `chunk` floats (slot r of a set is written only by rank r), then
// two output slots; rounds alternate between the sets. In a round every rank's piece is at most q = chunk / W floats
// per destination rank:
//   allReduce:     round k: rank r copies its pieces for every other owner d into its slot at d·q; barrier k;
//                  each rank copies round k-1's results of the others out of output slot (k-1) % 2, then sums its
//                  own piece of round k over the ranks in rank order (its own term straight from its data, the
//                  others' from their slots) and publishes it in output slot k % 2. One barrier per round, and a
//                  last one before the last copy-out.
//   reduceScatter: the sums alone, a barrier per round, and one at the end.
//   allGather / broadcast: each rank (the root) copies into its slot, barrier, all copy out; a last barrier.
// Each element is summed by one rank in one order, so every rank gets the same bits. Barriers are messages to
// rank 0, which also checks that all ranks called the same operation on the same length, and times out a rank
// that does not arrive, naming it; a rank whose process ends breaks its socket, which rank 0 reports.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  checkReduceOp,
  DistError,
  shardRange,
  type Collective,
  type PieceSummer,
  type ReduceOp,
} from './collective.ts';
import { mapShared, type SharedMapping } from './mmap.ts';
import { jsAdder, pickAdder, sumInOrder, type Adder } from './sum.ts';

export interface ShmOptions {
  rank: number;
  worldSize: number;
  /** The Unix socket where rank 0 listens; every rank of the job must be given the same path. */
  socketPath: string;
  /** Floats per rank slot and round (default 4 Mi floats, 16 MiB): the file holds 2W + 2 of them. */
  chunkFloats?: number;
  /** How long a rank may be missing at a barrier or at the start before the job is ended (default 600 s). */
  timeoutMs?: number;
  /** How long the ranks may take to start and join (default: timeoutMs). */
  joinTimeoutMs?: number;
  /** Where the shared file is made (default /dev/shm, else the temp folder). */
  shmDir?: string;
  /** How the host adds (default: pickAdder(), from WGPT_DIST_SUM). */
  adder?: Adder;
  /** Sums this rank's pieces instead of the host adder (e.g. on the GPU: gpuPieceSummer in @wgpt/kernels). */
  sum?: PieceSummer;
}

type Msg =
  | { t: 'hello'; rank: number }
  | { t: 'ready'; file: string; chunk: number }
  | { t: 'opened' }
  | { t: 'arrive'; seq: number; tag: string }
  | { t: 'go'; seq: number }
  | { t: 'fail'; msg: string }
  | { t: 'abort'; msg: string }
  | { t: 'bye' };

/** Newline-delimited JSON over a socket. */
class Channel {
  private buf = '';
  closed = false;
  constructor(
    readonly socket: net.Socket,
    onMessage: (m: Msg) => void,
    onClose: () => void,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buf += d;
      let i: number;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        if (line) onMessage(JSON.parse(line) as Msg);
      }
    });
    socket.on('error', () => {}); // 'close' follows and says what matters
    socket.on('close', () => {
      this.closed = true;
      onClose();
    });
  }
  send(m: Msg): void {
    if (!this.closed) this.socket.write(`${JSON.stringify(m)}\n`);
  }
}

const DEFAULT_CHUNK = 1 << 22;
const DEFAULT_TIMEOUT_MS = 600_000;

function defaultShmDir(): string {
  try {
    if (fs.statSync('/dev/shm').isDirectory()) return '/dev/shm';
  } catch {
    /* not Linux */
  }
  return os.tmpdir();
}

const seconds = (ms: number) => `${+(ms / 1000).toFixed(3)} s`;
const rankList = (rs: number[]) => `rank${rs.length > 1 ? 's' : ''} ${rs.join(', ')}`;

export class ShmCollective implements Collective {
  readonly rank: number;
  readonly worldSize: number;
  private chunk = 0;
  private mapping: SharedMapping | null = null;
  /** The shared file's floats (empty until joined and after close). */
  private mem: Float32Array = new Float32Array(0);
  private adder: Adder = jsAdder;
  private summer: PieceSummer | null = null;
  private seq = 0;
  private calls = 0;
  private busy = false;
  private closing = false;
  private dead: DistError | null = null;
  private pending: { seq: number; resolve: () => void; reject: (e: DistError) => void; timer?: NodeJS.Timeout } | null =
    null;
  // rank 0 only
  private server: net.Server | null = null;
  private clients: (Channel | null)[] = [];
  /** Ranks that said goodbye after the last barrier: their sockets close next, which is not a crash. */
  private left = new Set<number>();
  private arrivals = new Map<number, { tags: (string | undefined)[]; count: number; timer: NodeJS.Timeout }>();
  // other ranks
  private hub: Channel | null = null;
  private readonly timeoutMs: number;
  private readonly joinTimeoutMs: number;
  /** What the job is doing, for messages. */
  private doing = 'joining the job';

  /** How this rank adds: 'js' or 'blas (library)'. */
  get summation(): string {
    return this.summer?.name ?? this.adder.name;
  }

  readonly failed: Promise<never>;
  private onFailed: (e: DistError) => void = () => {};

  private constructor(opts: ShmOptions) {
    this.failed = new Promise<never>((_, reject) => (this.onFailed = reject));
    this.failed.catch(() => {}); // a job that nobody races still ends cleanly
    this.rank = opts.rank;
    this.worldSize = opts.worldSize;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.joinTimeoutMs = opts.joinTimeoutMs ?? this.timeoutMs;
    this.summer = opts.sum ?? null;
  }

  /** Sums this rank's pieces with `summer` from the next operation on (not during one). */
  useSummer(summer: PieceSummer): void {
    if (this.busy) throw new DistError(`rank ${this.rank}: the summer cannot change while it is ${this.doing}`);
    this.summer = summer;
  }

  /** Joins the job: rank 0 listens and makes the shared file, the others connect; resolves when all have. */
  static async connect(opts: ShmOptions): Promise<ShmCollective> {
    const W = opts.worldSize;
    if (!Number.isInteger(W) || W < 1) throw new DistError(`world size ${W} is not a positive integer`);
    if (!Number.isInteger(opts.rank) || opts.rank < 0 || opts.rank >= W) {
      throw new DistError(`rank ${opts.rank} is not in 0..${W - 1}`);
    }
    const c = new ShmCollective(opts);
    const chunk = opts.chunkFloats ?? DEFAULT_CHUNK;
    if (!Number.isInteger(chunk) || chunk < W) throw new DistError(`chunk of ${chunk} floats is below ${W} ranks`);
    if (W > 1) c.adder = opts.adder ?? (await pickAdder());
    if (opts.rank === 0) await c.host(opts.socketPath, chunk, opts.shmDir ?? defaultShmDir());
    else await c.join(opts.socketPath);
    c.doing = 'idle';
    return c;
  }

  // ---- joining ----

  private async host(socketPath: string, chunk: number, shmDir: string): Promise<void> {
    const W = this.worldSize;
    this.clients = new Array<Channel | null>(W).fill(null);
    this.chunk = chunk;
    if (W === 1) return;
    const file = path.join(shmDir, `wgpt-dist-${process.pid}-${Math.random().toString(36).slice(2)}`);
    const fd = fs.openSync(file, 'w+', 0o600);
    try {
      fs.ftruncateSync(fd, fileFloats(W, chunk) * 4);
      await this.map(fd, file);
      try {
        if (fs.statSync(socketPath).isSocket()) fs.unlinkSync(socketPath); // left by a job that crashed
      } catch {
        /* none */
      }
      const joined = { hello: 0, opened: 0 };
      let wake: (() => void) | null = null;
      const server = net.createServer((socket) => {
        let r = -1;
        const ch: Channel = new Channel(
          socket,
          (m) => {
            if (m.t === 'hello') {
              if (m.rank <= 0 || m.rank >= W || this.clients[m.rank]) {
                this.failAll(`a second rank ${m.rank} joined (or one outside 0..${W - 1}): check the launcher`);
                return;
              }
              r = m.rank;
              this.clients[r] = ch;
              joined.hello++;
              ch.send({ t: 'ready', file, chunk });
            } else if (m.t === 'opened') {
              joined.opened++;
              if (joined.opened === W - 1) wake?.();
            } else this.onHubMessage(r, m);
          },
          () => {
            if (r > 0) this.onClientClosed(r);
          },
        );
      });
      this.server = server;
      await new Promise<void>((resolve, reject) => {
        server.once('error', (e) => reject(new DistError(`rank 0 cannot listen on ${socketPath}: ${e.message}`)));
        server.listen(socketPath, () => resolve());
      });
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          const missing = [...Array(W).keys()].filter((r) => r > 0 && !this.clients[r]);
          const why = missing.length
            ? `${rankList(missing)} did not join within ${seconds(this.joinTimeoutMs)}`
            : `not every rank opened the shared file within ${seconds(this.joinTimeoutMs)}`;
          this.failAll(why);
          reject(this.dead);
        }, this.joinTimeoutMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
        if (joined.opened === W - 1) wake();
        this.pending = { seq: -1, resolve: () => {}, reject: (e) => (clearTimeout(timer), reject(e)) };
      });
      this.pending = null;
    } finally {
      // Every rank holds the file open and is connected now (or the job failed): their names are no longer
      // needed, and unlinking them here means no later crash can leave them behind.
      fs.rmSync(file, { force: true });
      if (this.server) fs.rmSync(socketPath, { force: true });
    }
  }

  private async join(socketPath: string): Promise<void> {
    const deadline = Date.now() + this.joinTimeoutMs;
    let socket: net.Socket;
    for (;;) {
      try {
        socket = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect(socketPath, () => resolve(s));
          s.once('error', reject);
        });
        break;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if ((code !== 'ENOENT' && code !== 'ECONNREFUSED') || Date.now() > deadline) {
          throw new DistError(
            `rank ${this.rank} could not reach rank 0 at ${socketPath} within ${seconds(this.joinTimeoutMs)} ` +
              `(${code ?? (e as Error).message}): did rank 0 start?`,
          );
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    await new Promise<void>((resolve, reject) => {
      const late = `rank 0 did not admit rank ${this.rank} within ${seconds(this.joinTimeoutMs)}`;
      const timer = setTimeout(() => reject(new DistError(late)), this.joinTimeoutMs);
      this.pending = { seq: -1, resolve: () => {}, reject: (e) => (clearTimeout(timer), reject(e)) };
      this.hub = new Channel(
        socket,
        (m) => {
          if (m.t === 'ready') {
            this.chunk = m.chunk;
            const opened = (async () => this.map(fs.openSync(m.file, 'r+'), m.file))();
            opened.then(
              () => {
                this.hub!.send({ t: 'opened' });
                clearTimeout(timer);
                this.pending = null;
                resolve();
              },
              (e: Error) => {
                clearTimeout(timer);
                this.abort(`rank ${this.rank} cannot map the shared file ${m.file}: ${e.message}`);
                reject(this.dead);
              },
            );
          } else this.onClientMessage(m);
        },
        () => this.onHubClosed(),
      );
      this.hub.send({ t: 'hello', rank: this.rank });
    });
  }

  // ---- control messages ----

  /** rank 0: a message from rank r. */
  private onHubMessage(r: number, m: Msg): void {
    if (m.t === 'arrive') this.arrive(r, m.seq, m.tag);
    else if (m.t === 'fail') this.failAll(m.msg);
    else if (m.t === 'bye') this.left.add(r);
  }

  /** rank 0: rank r (or rank 0 itself) reached barrier `seq` of operation `tag`. */
  private arrive(r: number, seq: number, tag: string): void {
    if (this.dead) return;
    const W = this.worldSize;
    let a = this.arrivals.get(seq);
    if (!a) {
      const timer = setTimeout(() => {
        const missing = [...Array(W).keys()].filter((x) => a!.tags[x] === undefined);
        const waiting = [...Array(W).keys()].filter((x) => a!.tags[x] !== undefined);
        this.failAll(
          `${rankList(missing)} did not reach ${tag} within ${seconds(this.timeoutMs)} of ${rankList(waiting)} ` +
            '(hung, or far slower than the others)',
        );
      }, this.timeoutMs);
      a = { tags: new Array<string | undefined>(W).fill(undefined), count: 0, timer };
      this.arrivals.set(seq, a);
    }
    const first = a.tags.findIndex((t) => t !== undefined);
    if (first >= 0 && a.tags[first] !== tag) {
      this.failAll(`ranks disagree: rank ${first} called ${a.tags[first]}, rank ${r} called ${tag}`);
      return;
    }
    a.tags[r] = tag;
    if (++a.count < W) return;
    clearTimeout(a.timer);
    this.arrivals.delete(seq);
    for (const ch of this.clients) ch?.send({ t: 'go', seq });
    this.release(seq);
  }

  /** Other ranks: a message from rank 0. */
  private onClientMessage(m: Msg): void {
    if (m.t === 'go') this.release(m.seq);
    else if (m.t === 'abort') this.die(new DistError(m.msg));
  }

  private release(seq: number): void {
    const p = this.pending;
    if (!p || p.seq !== seq) return;
    clearTimeout(p.timer);
    this.pending = null;
    p.resolve();
  }

  private onClientClosed(r: number): void {
    if (this.closing || this.left.has(r) || this.dead) {
      this.clients[r] = null;
      return;
    }
    this.failAll(`rank ${r} exited or crashed (its connection to rank 0 closed) while ${this.doing}`);
  }

  private onHubClosed(): void {
    if (this.closing || this.dead) return;
    const what = `rank 0 exited or crashed (its connection closed) while rank ${this.rank} was ${this.doing}`;
    this.die(new DistError(what));
  }

  /** rank 0: ends the job on every rank with this message. */
  private failAll(msg: string): void {
    if (this.dead) return;
    for (const ch of this.clients) ch?.send({ t: 'abort', msg });
    for (const a of this.arrivals.values()) clearTimeout(a.timer);
    this.arrivals.clear();
    this.die(new DistError(msg));
  }

  private die(e: DistError): void {
    if (this.dead) return;
    this.dead = e;
    this.onFailed(e);
    const p = this.pending;
    this.pending = null;
    if (p) {
      clearTimeout(p.timer);
      p.reject(e);
    }
    this.server?.close();
    for (const ch of this.clients) ch?.socket.end();
    this.hub?.socket.end();
  }

  abort(reason: string): void {
    if (this.dead) return;
    if (this.rank === 0) this.failAll(reason);
    else {
      this.hub?.send({ t: 'fail', msg: reason });
      this.die(new DistError(reason));
    }
  }

  /** Waits until every rank has reached this point of operation `tag`. */
  private sync(tag: string): Promise<void> {
    if (this.dead) return Promise.reject(this.dead);
    if (this.worldSize === 1) return Promise.resolve();
    const seq = ++this.seq;
    return new Promise<void>((resolve, reject) => {
      this.pending = { seq, resolve, reject };
      if (this.rank === 0) {
        this.arrive(0, seq, tag);
      } else {
        // Rank 0 times out missing ranks; this timer only fires when rank 0 itself cannot answer.
        const wait = this.timeoutMs + Math.max(1000, this.timeoutMs / 2);
        this.pending.timer = setTimeout(() => {
          this.die(
            new DistError(
              `no answer from rank 0 within ${seconds(wait)} at ${tag}: rank 0 is hung or far slower than rank ` +
                `${this.rank}`,
            ),
          );
        }, wait);
        this.hub!.send({ t: 'arrive', seq, tag });
      }
    });
  }

  // ---- data ----

  /** Elements [a, e) of an n-element array: round k's piece (at most q floats) of rank d's shard. */
  private piece(n: number, d: number, k: number, q: number): { a: number; e: number } {
    const s = shardRange(n, this.worldSize, d);
    const a = Math.min(s.end, s.start + k * q);
    return { a, e: Math.min(s.end, a + q) };
  }

  /** Input slot of rank r in the set of round k (rounds alternate between two sets). */
  private inSlot(k: number, r: number): number {
    return ((k % 2) * this.worldSize + r) * this.chunk;
  }

  /** Output slot of round k (two, alternating too). */
  private outSlot(k: number): number {
    return (2 * this.worldSize + (k % 2)) * this.chunk;
  }

  /** Runs one operation: checks the state, names it for messages and for the cross-rank agreement check. */
  private async op<T>(tag: string, body: (tag: string) => Promise<T>): Promise<T> {
    if (this.dead) throw this.dead;
    if (this.busy) throw new DistError(`rank ${this.rank}: ${tag} started while another operation is running`);
    if (this.closing) throw new DistError(`rank ${this.rank}: ${tag} after close()`);
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

  /** Round k's pieces of `input` for every other owner d into this rank's input slot (its own stays put). */
  private writePieces(input: Float32Array, k: number, q: number): void {
    const slot = this.inSlot(k, this.rank);
    for (let d = 0; d < this.worldSize; d++) {
      if (d === this.rank) continue;
      const { a, e } = this.piece(input.length, d, k, q);
      if (e > a) this.mem.set(input.subarray(a, e), slot + d * q);
    }
  }

  /**
   * This rank's piece of round k summed over the ranks in rank order into `acc` (its length): rank r's term
   * is read from r's input slot, this rank's own from `input`. `acc` must not overlap `input`, except that it may
   * be this rank's own term itself where that is rank 0's or rank 1's: x0 + x1 accumulated onto x1 is x1 + x0, the
   * same bits (f32 addition commutes), and later terms are added after both.
   */
  private async reducePiece(input: Float32Array, k: number, q: number, op: ReduceOp, acc: Float32Array) {
    const { a } = this.piece(input.length, this.rank, k, q);
    const len = acc.length;
    const term = (r: number) =>
      r === this.rank
        ? input.subarray(a, a + len)
        : this.mem.subarray(this.inSlot(k, r) + this.rank * q, this.inSlot(k, r) + this.rank * q + len);
    if (!this.summer && this.rank < 2 && acc.buffer === input.buffer && acc.byteOffset === input.byteOffset + 4 * a) {
      this.adder.add(acc, term(1 - this.rank));
      for (let r = 2; r < this.worldSize; r++) this.adder.add(acc, term(r));
      if (op === 'mean') for (let i = 0; i < len; i++) acc[i] /= this.worldSize;
      return;
    }
    if (this.summer) {
      const piece = await this.summer.sum([...Array(this.worldSize).keys()].map(term), op);
      if (piece.length !== len) {
        throw new DistError(`the ${this.summer.name} summer returned ${piece.length} floats for a piece of ${len}`);
      }
      acc.set(piece);
      return;
    }
    sumInOrder(this.adder, acc, term, this.worldSize);
    if (op === 'mean') for (let i = 0; i < len; i++) acc[i] /= this.worldSize;
  }

  async allReduce(data: Float32Array, op: ReduceOp = 'sum'): Promise<void> {
    checkReduceOp(op);
    const n = data.length;
    await this.op(`allReduce(${op}) of ${n} floats`, async (tag) => {
      if (this.worldSize === 1) return; // a sum over one rank, and x / 1 == x
      const W = this.worldSize;
      const q = Math.floor(this.chunk / W);
      const rounds = Math.ceil(Math.ceil(n / W) / q);
      // One barrier per round: round k's inputs and round k-1's sums are in place once every rank is past it.
      // Input set k % 2 was last read by the sums of round k-2, output set (k-1) % 2 is read only after barrier k
      // and rewritten after barrier k+1, which no rank passes before it has read it.
      for (let k = 0; k <= rounds; k++) {
        if (k < rounds) this.writePieces(data, k, q);
        await this.sync(`${tag} round ${k}`);
        if (k > 0) {
          for (let d = 0; d < W; d++) {
            const { a, e } = this.piece(n, d, k - 1, q);
            if (d !== this.rank && e > a)
              data.set(this.mem.subarray(this.outSlot(k - 1) + d * q, this.outSlot(k - 1) + d * q + e - a), a);
          }
        }
        if (k < rounds) {
          const { a, e } = this.piece(n, this.rank, k, q);
          const out = this.mem.subarray(this.outSlot(k) + this.rank * q, this.outSlot(k) + this.rank * q + e - a);
          if (!this.summer && this.rank < 2) {
            // Summed where this rank's own term already lies (one copy fewer), then published.
            await this.reducePiece(data, k, q, op, data.subarray(a, e));
            out.set(data.subarray(a, e));
          } else {
            await this.reducePiece(data, k, q, op, out);
            data.set(out, a);
          }
        }
      }
    });
  }

  async reduceScatter(input: Float32Array, op: ReduceOp = 'sum'): Promise<Float32Array> {
    checkReduceOp(op);
    const n = input.length;
    return this.op(`reduceScatter(${op}) of ${n} floats`, async (tag) => {
      const W = this.worldSize;
      const own = shardRange(n, W, this.rank);
      const out = new Float32Array(own.end - own.start);
      if (W === 1) {
        out.set(input);
        return out;
      }
      const q = Math.floor(this.chunk / W);
      const rounds = Math.ceil(Math.ceil(n / W) / q);
      for (let k = 0; k < rounds; k++) {
        this.writePieces(input, k, q); // set k % 2, last read in round k-2, before this rank's last barrier
        await this.sync(`${tag} round ${k}`);
        const { a, e } = this.piece(n, this.rank, k, q);
        await this.reducePiece(input, k, q, op, out.subarray(a - own.start, e - own.start));
      }
      // The next operation writes slot set 0 before its first barrier: only once every rank has read this one's.
      await this.sync(`${tag} done`);
      return out;
    });
  }

  async allGather(shard: Float32Array, n: number): Promise<Float32Array> {
    return this.op(`allGather of ${n} floats`, async (tag) => {
      const W = this.worldSize;
      const own = shardRange(n, W, this.rank);
      if (shard.length !== own.end - own.start) {
        throw new DistError(
          `allGather of ${n} floats: rank ${this.rank} gave ${shard.length} floats, its shard is ` +
            `${own.end - own.start} (elements ${own.start}..${own.end - 1}; see shardRange)`,
        );
      }
      const out = new Float32Array(n);
      out.set(shard, own.start);
      if (W === 1) return out;
      const q = this.chunk;
      const rounds = Math.ceil(Math.ceil(n / W) / q);
      for (let k = 0; k < rounds; k++) {
        const a = Math.min(shard.length, k * q);
        // Slot set k % 2 was last read in round k-2, which every rank finished before the last barrier.
        this.mem.set(shard.subarray(a, Math.min(shard.length, a + q)), this.inSlot(k, this.rank));
        await this.sync(`${tag} round ${k}`);
        for (let d = 0; d < W; d++) {
          const s = shardRange(n, W, d);
          const b = Math.min(s.end, s.start + k * q);
          const e = Math.min(s.end, b + q);
          if (d !== this.rank && e > b) out.set(this.mem.subarray(this.inSlot(k, d), this.inSlot(k, d) + e - b), b);
        }
      }
      await this.sync(`${tag} done`);
      return out;
    });
  }

  async broadcast(data: Float32Array, root = 0): Promise<void> {
    const n = data.length;
    await this.op(`broadcast of ${n} floats from rank ${root}`, async (tag) => {
      const W = this.worldSize;
      if (!Number.isInteger(root) || root < 0 || root >= W) {
        throw new DistError(`broadcast from rank ${root}: there are ranks 0..${W - 1}`);
      }
      if (W === 1) return;
      const q = this.chunk;
      for (let k = 0; k * q < n; k++) {
        const a = k * q;
        const b = Math.min(n, a + q);
        if (this.rank === root) this.mem.set(data.subarray(a, b), this.inSlot(k, root));
        await this.sync(`${tag} round ${k}`);
        if (this.rank !== root) data.set(this.mem.subarray(this.inSlot(k, root), this.inSlot(k, root) + b - a), a);
      }
      await this.sync(`${tag} done`);
    });
  }

  async barrier(): Promise<void> {
    await this.op('barrier', (tag) => this.sync(tag));
  }

  async close(): Promise<void> {
    if (this.dead) throw this.dead;
    await this.op('close', (tag) => this.sync(tag));
    this.closing = true;
    if (this.rank === 0) {
      // Clients leave after the last barrier; wait for their sockets so the server closes cleanly.
      await Promise.all(
        this.clients.map((ch) => (ch && !ch.closed ? new Promise((r) => ch.socket.once('close', r)) : null)),
      );
      await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    } else if (this.hub) {
      this.hub.send({ t: 'bye' });
      this.hub.socket.end();
    }
    this.mem = new Float32Array(0);
    this.mapping?.unmap();
    this.mapping = null;
  }

  /** Maps the shared file (then its descriptor is no longer needed). */
  private async map(fd: number, file: string): Promise<void> {
    try {
      this.mapping = await mapShared(fd, fileFloats(this.worldSize, this.chunk) * 4, `the shared file ${file}`);
      this.mem = this.mapping.f32;
    } finally {
      fs.closeSync(fd);
    }
  }
}

/** Two sets of W input slots and two output slots of `chunk` floats each. */
function fileFloats(W: number, chunk: number): number {
  return (2 * W + 2) * chunk;
}
