// GPU timing through timestamp queries: each compute pass gets a begin/end timestamp pair while the profiler is
// enabled; at each submit the pairs are resolved and copied to a readback buffer; collect() maps them and sums
// nanoseconds per kernel label. Off by default (it costs a copy per submit).

const CAPACITY = 2048; // timestamp pairs per submit (WebGPU allows 4096 queries per set); later passes are not timed

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
