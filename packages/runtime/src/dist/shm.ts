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
// Each element is summed by one rank in one order, so every rank gets the same bits. Barriers, the agreement check
// and the failure handling are shm-hub.ts's: messages to rank 0 over a Unix socket.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  checkReduceOp,
  DistError,
  checkRoot,
  ownShard,
  shardRange,
  type Collective,
  type PieceSummer,
  type ReduceOp,
} from './collective.ts';
import { mapShared, type SharedMapping } from './mmap.ts';
import { ShmHub, type HubOptions } from './shm-hub.ts';
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

export class ShmCollective implements Collective {
  readonly rank: number;
  readonly worldSize: number;
  private chunk = 0;
  private mapping: SharedMapping | null = null;
  /** The shared file's floats (empty until joined and after close). */
  private mem: Float32Array = new Float32Array(0);
  private adder: Adder = jsAdder;
  private summer: PieceSummer | null = null;
  private calls = 0;
  private busy = false;
  /** Arrays made by sharedArray: this rank's view → every rank's region of that file, and the mapping. */
  private shared = new Map<Float32Array, { regions: Float32Array[]; mapping: SharedMapping }>();
  private sharedFiles = 0;
  private scratch = new Float32Array(0);
  /** Where sharedArray's files go, and a name every rank of the job derives alike (from the socket path). */
  private shmDir = '';
  private jobKey = '';
  /** The barriers and failure handling (set by connect). */
  private hub!: ShmHub;

  private constructor(opts: ShmOptions) {
    this.rank = opts.rank;
    this.worldSize = opts.worldSize;
    this.summer = opts.sum ?? null;
  }

  /** How this rank adds: 'js' or 'blas (library)', or the attached summer's name. */
  get summation(): string {
    return this.summer?.name ?? this.adder.name;
  }

  get failed(): Promise<never> {
    return this.hub.failed;
  }

  /** Sums this rank's pieces with `summer` from the next operation on (not during one). */
  useSummer(summer: PieceSummer): void {
    if (this.busy) throw new DistError(`rank ${this.rank}: the summer cannot change while it is ${this.hub.doing}`);
    this.summer = summer;
  }

  /** Joins the job: rank 0 makes the shared file and listens, the others connect; resolves when all have. */
  static async connect(opts: ShmOptions): Promise<ShmCollective> {
    const W = opts.worldSize;
    if (!Number.isInteger(W) || W < 1) throw new DistError(`world size ${W} is not a positive integer`);
    if (!Number.isInteger(opts.rank) || opts.rank < 0 || opts.rank >= W) {
      throw new DistError(`rank ${opts.rank} is not in 0..${W - 1}`);
    }
    const c = new ShmCollective(opts);
    c.shmDir = opts.shmDir ?? defaultShmDir();
    c.jobKey = createHash('sha256').update(opts.socketPath).digest('hex').slice(0, 16);
    const chunk = opts.chunkFloats ?? DEFAULT_CHUNK;
    if (!Number.isInteger(chunk) || chunk < W) throw new DistError(`chunk of ${chunk} floats is below ${W} ranks`);
    if (W > 1) c.adder = opts.adder ?? (await pickAdder());
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const hubOpts: HubOptions = {
      rank: opts.rank,
      worldSize: W,
      socketPath: opts.socketPath,
      timeoutMs,
      joinTimeoutMs: opts.joinTimeoutMs ?? timeoutMs,
    };
    if (opts.rank > 0) {
      c.hub = await ShmHub.join(hubOpts, async (file, chunk) => {
        c.chunk = chunk;
        await c.map(fs.openSync(file, 'r+'), file);
      });
    } else if (W === 1) {
      c.hub = await ShmHub.host(hubOpts, '', chunk);
    } else {
      c.chunk = chunk;
      const file = path.join(c.shmDir, `wgpt-dist-${process.pid}-${Math.random().toString(36).slice(2)}`);
      try {
        const fd = fs.openSync(file, 'w+', 0o600);
        try {
          fs.ftruncateSync(fd, fileFloats(W, chunk) * 4);
        } catch (e) {
          fs.closeSync(fd);
          throw e;
        }
        await c.map(fd, file);
        c.hub = await ShmHub.host(hubOpts, file, chunk);
      } finally {
        // Every rank has mapped the file now (or the job failed): its name is no longer needed, and unlinking it
        // here means no later crash can leave it behind.
        fs.rmSync(file, { force: true });
      }
    }
    c.hub.doing = 'idle';
    return c;
  }

  abort(reason: string): void {
    this.hub.abort(reason);
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
    if (this.hub.dead) throw this.hub.dead;
    if (this.busy) throw new DistError(`rank ${this.rank}: ${tag} started while another operation is running`);
    if (this.hub.closing) throw new DistError(`rank ${this.rank}: ${tag} after close()`);
    this.busy = true;
    const full = `${tag} (call ${++this.calls})`;
    this.hub.doing = `in ${full}`;
    try {
      return await body(full);
    } finally {
      this.busy = false;
      this.hub.doing = 'idle';
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

  /**
   * n floats that every rank of the node maps: a collective call (every rank, the same n). This rank's array is
   * its own region of one shared file; an allReduce of it (or of a view into it) copies nothing in and publishes
   * nothing: each rank sums its shard straight out of the others' regions, then copies the others' shards out.
   * Per rank that is a third of the memory traffic of an allReduce of a private array. Valid until close().
   */
  async sharedArray(n: number): Promise<Float32Array> {
    return this.op(`sharedArray of ${n} floats`, async (tag) => {
      if (!Number.isInteger(n) || n < 1) throw new DistError(`sharedArray of ${n} floats: give a positive integer`);
      const W = this.worldSize;
      if (W === 1) return new Float32Array(n);
      const file = path.join(this.shmDir, `wgpt-dist-${this.jobKey}-array${++this.sharedFiles}`);
      try {
        if (this.rank === 0) {
          const fd = fs.openSync(file, 'w+', 0o600);
          try {
            fs.ftruncateSync(fd, W * n * 4);
          } finally {
            fs.closeSync(fd);
          }
        }
        await this.hub.sync(`${tag} made`);
        const fd = fs.openSync(file, 'r+');
        let mapping: SharedMapping;
        try {
          mapping = await mapShared(fd, W * n * 4, `the shared array file ${file}`);
        } finally {
          fs.closeSync(fd);
        }
        await this.hub.sync(`${tag} mapped`);
        if (this.rank === 0) fs.rmSync(file, { force: true });
        const regions = [...Array(W).keys()].map((r) => mapping.f32.subarray(r * n, (r + 1) * n));
        this.shared.set(regions[this.rank]!, { regions, mapping });
        return regions[this.rank]!;
      } catch (e) {
        if (this.rank === 0) fs.rmSync(file, { force: true });
        if (!(e instanceof DistError)) this.hub.abort(`rank ${this.rank}: sharedArray: ${(e as Error).message}`);
        throw e;
      }
    });
  }

  /** The sharedArray that `data` is a view of, and where in it: else null. */
  private sharedOf(data: Float32Array): { regions: Float32Array[]; at: number } | null {
    for (const [mine, reg] of this.shared) {
      if (data.buffer !== mine.buffer) continue;
      const at = (data.byteOffset - mine.byteOffset) / 4;
      if (at >= 0 && at + data.length <= mine.length) return { regions: reg.regions, at };
    }
    return null;
  }

  /**
   * allReduce of (a view into) a sharedArray: every rank's input already lies where the others can read it. One
   * barrier, each rank sums its shard over the ranks' regions in rank order, in place in its own region (ranks 0
   * and 1; the others through scratch memory, since their own term comes later in the order); a barrier; each rank
   * copies the others' shards out of their regions; a last barrier, so no rank writes its region (its next input)
   * while another still reads it.
   */
  private async allReduceShared(regions: Float32Array[], at: number, n: number, op: ReduceOp, tag: string) {
    const W = this.worldSize;
    await this.hub.sync(`${tag} at ${at} inputs`);
    const own = shardRange(n, W, this.rank);
    const term = (r: number) => regions[r]!.subarray(at + own.start, at + own.end);
    const mine = term(this.rank);
    if (this.rank < 2) {
      // x1 + x0 is x0 + x1 bit for bit (f32 addition commutes); the later terms follow in order.
      this.adder.add(mine, term(1 - this.rank));
      for (let r = 2; r < W; r++) this.adder.add(mine, term(r));
    } else {
      if (this.scratch.length < mine.length) this.scratch = new Float32Array(mine.length);
      const acc = this.scratch.subarray(0, mine.length);
      sumInOrder(this.adder, acc, term, W);
      mine.set(acc);
    }
    if (op === 'mean') for (let i = 0; i < mine.length; i++) mine[i] /= W;
    await this.hub.sync(`${tag} at ${at} sums`);
    for (let r = 0; r < W; r++) {
      if (r === this.rank) continue;
      const s = shardRange(n, W, r);
      regions[this.rank]!.set(regions[r]!.subarray(at + s.start, at + s.end), at + s.start);
    }
    await this.hub.sync(`${tag} at ${at} done`);
  }

  async allReduce(data: Float32Array, op: ReduceOp = 'sum'): Promise<void> {
    checkReduceOp(op);
    const n = data.length;
    await this.op(`allReduce(${op}) of ${n} floats`, async (tag) => {
      if (this.worldSize === 1) return; // a sum over one rank, and x / 1 == x
      const shared = this.summer ? null : this.sharedOf(data);
      if (shared) return this.allReduceShared(shared.regions, shared.at, n, op, tag);
      const W = this.worldSize;
      const q = Math.floor(this.chunk / W);
      const rounds = Math.ceil(Math.ceil(n / W) / q);
      // One barrier per round: round k's inputs and round k-1's sums are in place once every rank is past it.
      // Input set k % 2 was last read by the sums of round k-2, output set (k-1) % 2 is read only after barrier k
      // and rewritten after barrier k+1, which no rank passes before it has read it.
      for (let k = 0; k <= rounds; k++) {
        if (k < rounds) this.writePieces(data, k, q);
        await this.hub.sync(`${tag} round ${k}`);
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
        await this.hub.sync(`${tag} round ${k}`);
        const { a, e } = this.piece(n, this.rank, k, q);
        await this.reducePiece(input, k, q, op, out.subarray(a - own.start, e - own.start));
      }
      // The next operation writes slot set 0 before its first barrier: only once every rank has read this one's.
      await this.hub.sync(`${tag} done`);
      return out;
    });
  }

  async allGather(shard: Float32Array, n: number): Promise<Float32Array> {
    return this.op(`allGather of ${n} floats`, async (tag) => {
      const W = this.worldSize;
      const own = ownShard(shard, n, W, this.rank);
      const out = new Float32Array(n);
      out.set(shard, own.start);
      if (W === 1) return out;
      const q = this.chunk;
      const rounds = Math.ceil(Math.ceil(n / W) / q);
      for (let k = 0; k < rounds; k++) {
        const a = Math.min(shard.length, k * q);
        // Slot set k % 2 was last read in round k-2, which every rank finished before the last barrier.
        this.mem.set(shard.subarray(a, Math.min(shard.length, a + q)), this.inSlot(k, this.rank));
        await this.hub.sync(`${tag} round ${k}`);
        for (let d = 0; d < W; d++) {
          const s = shardRange(n, W, d);
          const b = Math.min(s.end, s.start + k * q);
          const e = Math.min(s.end, b + q);
          if (d !== this.rank && e > b) out.set(this.mem.subarray(this.inSlot(k, d), this.inSlot(k, d) + e - b), b);
        }
      }
      await this.hub.sync(`${tag} done`);
      return out;
    });
  }

  async broadcast(data: Float32Array, root = 0): Promise<void> {
    const n = data.length;
    await this.op(`broadcast of ${n} floats from rank ${root}`, async (tag) => {
      const W = this.worldSize;
      checkRoot(root, W);
      if (W === 1) return;
      const q = this.chunk;
      for (let k = 0; k * q < n; k++) {
        const a = k * q;
        const b = Math.min(n, a + q);
        if (this.rank === root) this.mem.set(data.subarray(a, b), this.inSlot(k, root));
        await this.hub.sync(`${tag} round ${k}`);
        if (this.rank !== root) data.set(this.mem.subarray(this.inSlot(k, root), this.inSlot(k, root) + b - a), a);
      }
      await this.hub.sync(`${tag} done`);
    });
  }

  async barrier(): Promise<void> {
    await this.op('barrier', (tag) => this.hub.sync(tag));
  }

  async close(): Promise<void> {
    if (this.hub.dead) throw this.hub.dead;
    await this.op('close', (tag) => this.hub.sync(tag));
    await this.hub.leave();
    for (const { mapping } of this.shared.values()) mapping.unmap();
    this.shared.clear();
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
