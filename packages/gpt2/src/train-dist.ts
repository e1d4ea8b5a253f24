// The data-parallel parts of the training step: ZeRO-1's assignment of tensors to ranks and its gathering of the
// moments for a checkpoint, and the gradients' all-reduce in buckets overlapped with backward.
import type { Gpu, Tensor } from '@wgpt/runtime';
import { readSpans, uploadSpans, type BufferSpan, type Collective } from '@wgpt/runtime/dist';
import type { AdamWState } from '@wgpt/kernels';

/**
 * ZeRO-1's owner of each tensor (by its size, in parameter order): the largest first, each to the rank with the
 * fewest elements so far (the lowest rank on a tie), so every rank computes the same assignment.
 */
export function zeroOwners(sizes: readonly number[], worldSize: number): number[] {
  const load = new Array<number>(worldSize).fill(0);
  const owners = new Array<number>(sizes.length).fill(0);
  const order = sizes.map((n, i) => [n, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [n, i] of order) {
    const r = load.indexOf(Math.min(...load));
    owners[i] = r;
    load[r]! += n;
  }
  return owners;
}

/**
 * Fills the moments of the tensors other ranks own (empty in `st`): each owner broadcasts its m and v, packed, in
 * one message. `sizes` are the tensors' element counts.
 */
export async function gatherMoments(
  c: Collective,
  owners: readonly number[],
  sizes: readonly number[],
  st: AdamWState,
): Promise<void> {
  for (let r = 0; r < c.worldSize; r++) {
    const its = owners.flatMap((o, i) => (o === r ? [i] : []));
    const n = its.reduce((a, i) => a + sizes[i]!, 0);
    const packed = new Float32Array(2 * n);
    let at = 0;
    for (const i of its) {
      if (r === c.rank) (packed.set(st.m[i]!, at), packed.set(st.v[i]!, n + at));
      at += sizes[i]!;
    }
    await c.broadcast(packed, r);
    if (r === c.rank) continue;
    at = 0;
    for (const i of its) {
      st.m[i] = packed.slice(at, at + sizes[i]!);
      st.v[i] = packed.slice(n + at, n + at + sizes[i]!);
      at += sizes[i]!;
    }
  }
}

/**
 * The gradients' all-reduce overlapped with backward: parameters join the open bucket as backward finishes their
 * gradients (the same order on every rank: the same graph), and a full bucket is read back at once (copies submitted
 * behind the backward recorded so far) and reduced on the host in bucket order while the GPU runs the rest.
 * With `shared` (kept across steps) and a collective that has sharedArray, bucket k is read back straight into
 * shared[k] and reduced there without copies in or out; the first step makes those arrays (a collective call, in
 * the chain, in bucket order on every rank) and copies into them once.
 */
export class Buckets {
  private open: BufferSpan[] = [];
  private floats = 0;
  private chain: Promise<void> = Promise.resolve();
  private readonly left: Set<Tensor>;
  private closed = 0;

  constructor(
    private readonly gpu: Gpu,
    private readonly c: Collective,
    private readonly spans: Map<Tensor, BufferSpan>,
    private readonly bytes: number,
    private readonly shared?: Float32Array[],
  ) {
    this.left = new Set(spans.keys());
  }

  /** A tensor's gradient is final: a parameter's joins the open bucket, which closes when full. */
  ready(t: Tensor): void {
    const s = this.spans.get(t);
    if (!s || !this.left.delete(t)) return;
    this.open.push(s);
    this.floats += s.count;
    if (4 * this.floats >= this.bytes) this.close();
  }

  private close(extra: BufferSpan[] = []): void {
    const spans = [...this.open, ...extra];
    this.open = [];
    this.floats = 0;
    if (!spans.length) return;
    const k = this.closed++;
    const total = spans.reduce((a, s) => a + s.count, 0);
    const cached = this.shared?.[k];
    const into = cached && cached.length >= total ? cached : undefined;
    const data = readSpans(this.gpu, spans, into);
    data.catch(() => {}); // surfaced by the chain, which awaits it
    this.chain = this.chain.then(async () => {
      let d = await data;
      if (!into && this.shared && this.c.sharedArray) {
        const arr = await this.c.sharedArray(total);
        arr.set(d);
        this.shared[k] = arr;
        d = arr;
      }
      await this.c.allReduce(d, 'mean');
      await uploadSpans(this.gpu, spans, d);
    });
  }

  /** After backward: the rest (parameters backward did not reach, then `extra`) in a last bucket; waits for all. */
  async finish(extra: BufferSpan[]): Promise<void> {
    for (const t of [...this.left]) this.ready(t);
    this.close(extra);
    await this.chain;
  }
}
