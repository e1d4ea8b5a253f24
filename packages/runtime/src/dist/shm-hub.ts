// The control side of the shared-memory backend: rank 0 listens on a Unix socket and the other ranks connect; they
// agree on the shared file at the start and on every barrier through small newline-delimited JSON messages. Rank 0
// checks that all ranks called the same operation, times out a rank that does not arrive (naming it) and sees a
// rank whose process ended (its socket closes); every other rank times out a rank 0 that cannot answer at all.
// Either way every rank's pending and later operations fail with the same DistError.
import fs from 'node:fs';
import net from 'node:net';
import { DistError } from './collective.ts';

export interface HubOptions {
  rank: number;
  worldSize: number;
  /** The Unix socket where rank 0 listens; every rank of the job must be given the same path. */
  socketPath: string;
  /** How long a rank may be missing at a barrier before the job is ended. */
  timeoutMs: number;
  /** How long the ranks may take to start and join. */
  joinTimeoutMs: number;
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

const seconds = (ms: number) => `${+(ms / 1000).toFixed(3)} s`;
const rankList = (rs: number[]) => `rank${rs.length > 1 ? 's' : ''} ${rs.join(', ')}`;

export class ShmHub {
  readonly rank: number;
  readonly worldSize: number;
  private readonly timeoutMs: number;
  private readonly joinTimeoutMs: number;
  private seq = 0;
  /** Set once the job has closed cleanly: sockets closing after that are no crash. */
  closing = false;
  /** Why the job ended, once it has failed. */
  dead: DistError | null = null;
  /** What this rank is doing, for messages (set by the collective). */
  doing = 'joining the job';
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

  /** Rejects when the job ends by failure. */
  readonly failed: Promise<never>;
  private onFailed: (e: DistError) => void = () => {};

  private constructor(opts: HubOptions) {
    this.failed = new Promise<never>((_, reject) => (this.onFailed = reject));
    this.failed.catch(() => {}); // a job that nobody races still ends cleanly
    this.rank = opts.rank;
    this.worldSize = opts.worldSize;
    this.timeoutMs = opts.timeoutMs;
    this.joinTimeoutMs = opts.joinTimeoutMs;
    this.clients = new Array<Channel | null>(opts.worldSize).fill(null);
  }

  /**
   * Rank 0: listens at the socket, tells every rank that joins where the shared file is (`file`, `chunk`), and
   * resolves once all have opened it. The socket's name is removed then (or when the join fails).
   */
  static async host(opts: HubOptions, file: string, chunk: number): Promise<ShmHub> {
    const h = new ShmHub(opts);
    if (opts.worldSize > 1) {
      try {
        await h.listen(opts.socketPath, file, chunk);
      } finally {
        // Every rank is connected now (or the job failed): no later crash can leave the name behind.
        if (h.server) fs.rmSync(opts.socketPath, { force: true });
      }
    }
    return h;
  }

  private async listen(socketPath: string, file: string, chunk: number): Promise<void> {
    const W = this.worldSize;
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
  }

  /** Other ranks: connects to rank 0, runs `open` on the shared file it names, and resolves once admitted. */
  static async join(opts: HubOptions, open: (file: string, chunk: number) => Promise<void>): Promise<ShmHub> {
    const h = new ShmHub(opts);
    await h.connect(opts.socketPath, open);
    return h;
  }

  private async connect(socketPath: string, open: (file: string, chunk: number) => Promise<void>): Promise<void> {
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
            open(m.file, m.chunk).then(
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
  sync(tag: string): Promise<void> {
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

  /** After the last barrier: rank 0 waits for the others' sockets to close, the others say goodbye and leave. */
  async leave(): Promise<void> {
    this.closing = true;
    if (this.rank === 0) {
      await Promise.all(
        this.clients.map((ch) => (ch && !ch.closed ? new Promise((r) => ch.socket.once('close', r)) : null)),
      );
      await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    } else if (this.hub) {
      this.hub.send({ t: 'bye' });
      this.hub.socket.end();
    }
  }
}
