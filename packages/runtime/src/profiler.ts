// GPU timing through timestamp queries: each compute pass gets a begin/end timestamp pair while the profiler is
// enabled; at each submit the pairs are resolved and copied to a readback buffer; collect() maps them and sums
// nanoseconds per kernel label. Off by default (it costs a copy per submit). The Gpu submits before the query set
// is full, so every pass recorded while enabled is timed.
// Without timestamp queries, WallProfiler stands in: the Gpu then submits each dispatch alone at the next read and
// waits for it, and the wall time of that includes the submit and the wait (an upper bound on the kernel's time).

/** Timestamp pairs per submit (WebGPU allows 4096 queries per set). */
export const PROFILER_CAPACITY = 2048;
const CAPACITY = PROFILER_CAPACITY;

interface Batch {
  staging: GPUBuffer;
  labels: string[];
}

export interface KernelTime {
  label: string;
  count: number;
  totalMs: number;
}

export class Profiler {
  enabled = false;
  private querySet: GPUQuerySet;
  private resolveBuf: GPUBuffer;
  private labels: string[] = [];
  private batches: Batch[] = [];
  private freeStaging: GPUBuffer[] = [];
  private totals = new Map<string, KernelTime>();

  constructor(private device: GPUDevice) {
    this.querySet = device.createQuerySet({ type: 'timestamp', count: CAPACITY * 2, label: 'wgpt profiler' });
    this.resolveBuf = device.createBuffer({
      size: CAPACITY * 16,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
      label: 'wgpt profiler resolve',
    });
  }

  /** No room for another pass in this submit: the Gpu flushes first. */
  get full(): boolean {
    return this.enabled && this.labels.length >= CAPACITY;
  }

  passWrites(label: string): GPUComputePassTimestampWrites | undefined {
    if (!this.enabled || this.labels.length >= CAPACITY) return undefined;
    const i = this.labels.length;
    this.labels.push(label);
    return { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  resolve(encoder: GPUCommandEncoder): void {
    const n = this.labels.length;
    if (!n) return;
    encoder.resolveQuerySet(this.querySet, 0, 2 * n, this.resolveBuf, 0);
    const staging =
      this.freeStaging.pop() ??
      this.device.createBuffer({
        size: CAPACITY * 16,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
        label: 'wgpt profiler readback',
      });
    encoder.copyBufferToBuffer(this.resolveBuf, 0, staging, 0, 16 * n);
    this.batches.push({ staging, labels: this.labels });
    this.labels = [];
  }

  /** Reads every resolved batch and returns the running totals per label, slowest first. */
  async collect(): Promise<KernelTime[]> {
    const batches = this.batches;
    this.batches = [];
    for (const b of batches) {
      await b.staging.mapAsync(GPUMapMode.READ, 0, 16 * b.labels.length);
      const t = new BigUint64Array(b.staging.getMappedRange(0, 16 * b.labels.length));
      b.labels.forEach((label, i) => {
        const ns = Number(t[2 * i + 1]! - t[2 * i]!);
        let e = this.totals.get(label);
        if (!e) this.totals.set(label, (e = { label, count: 0, totalMs: 0 }));
        e.count++;
        e.totalMs += ns > 0 ? ns / 1e6 : 0;
      });
      b.staging.unmap();
      this.freeStaging.push(b.staging);
    }
    return [...this.totals.values()].sort((a, b) => b.totalMs - a.totalMs);
  }

  reset(): void {
    this.totals.clear();
  }

  destroy(): void {
    this.querySet.destroy();
    this.resolveBuf.destroy();
    for (const b of [...this.freeStaging, ...this.batches.map((x) => x.staging)]) b.destroy();
  }
}

/** Per-kernel totals of wall times measured around each dispatch's own submit and wait (see the top). */
export class WallProfiler {
  enabled = false;
  private totals = new Map<string, KernelTime>();

  record(label: string, ms: number): void {
    let e = this.totals.get(label);
    if (!e) this.totals.set(label, (e = { label, count: 0, totalMs: 0 }));
    e.count++;
    e.totalMs += ms;
  }

  /** The running totals per label, slowest first. */
  collect(): KernelTime[] {
    return [...this.totals.values()].sort((a, b) => b.totalMs - a.totalMs);
  }

  reset(): void {
    this.totals.clear();
  }
}

/** Kernel totals over `steps` steps as table lines: calls and ms per step, share, and the total and matmul share. */
export function profileTable(times: KernelTime[], steps: number, how: string): string[] {
  const total = times.reduce((a, t) => a + t.totalMs, 0);
  const calls = times.reduce((a, t) => a + t.count, 0);
  const matmul = times.filter((t) => t.label.startsWith('matmul')).reduce((a, t) => a + t.totalMs, 0);
  const pct = (ms: number) => `${total > 0 ? ((100 * ms) / total).toFixed(1) : '0.0'}%`;
  const lines = [`GPU time per kernel over a step (${how}, mean of ${steps} step${steps === 1 ? '' : 's'}):`];
  lines.push(`  ${'kernel'.padEnd(34)} ${'calls'.padStart(6)} ${'ms'.padStart(10)} ${'share'.padStart(6)}  us/call`);
  for (const t of times)
    lines.push(
      `  ${t.label.padEnd(34)} ${(t.count / steps).toFixed(0).padStart(6)} ` +
        `${(t.totalMs / steps).toFixed(3).padStart(10)} ` +
        `${pct(t.totalMs).padStart(6)}  ${((1000 * t.totalMs) / Math.max(1, t.count)).toFixed(1)}`,
    );
  lines.push(
    `  ${'total'.padEnd(34)} ${(calls / steps).toFixed(0).padStart(6)} ${(total / steps).toFixed(3).padStart(10)} ` +
      `${'100%'.padStart(6)}  (matmuls ${pct(matmul)})`,
  );
  return lines;
}
