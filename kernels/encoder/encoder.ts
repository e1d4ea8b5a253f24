// GPT-2's embedding: out (B, T, C) = wte[tokens] + wpe[0..T), or with per-token positions (packed rows, where each
// conversation's positions restart at 0) wte[tokens] + wpe[positions]. Backward is deterministic (the same bits on
// every run, no float atomics): dwpe is a column sum over b; for dwte the positions are grouped by token on the GPU
// (count, scan, scatter, then each bucket ordered by position), and each used token row sums its positions' dout
// in increasing position order. With per-token positions dwpe is grouped the same way, by position id.
import { defineOp, empty, grid1d, WgptError, type Gpu, type KernelSpec, type Tensor } from '@wgpt/runtime';
import { expectDtype, expectSameGpu, expectShape, placeholder } from '../common.ts';
import countSource from './bucket_count.wgsl';
import scanSource from './bucket_scan.wgsl';
import scatterSource from './bucket_scatter.wgsl';
import sortSource from './bucket_sort.wgsl';
import wpeSource from './encoder_backward_wpe.wgsl';
import wteSource from './encoder_backward_wte.wgsl';
import forwardSource from './encoder_forward.wgsl';

const ro = (name: string) => ({ name, kind: 'read-only-storage' as const });
const rw = (name: string) => ({ name, kind: 'storage' as const });
const params = { name: 'params', kind: 'uniform' as const };
const u32 = (...names: string[]) => names.map((name) => ({ name, type: 'u32' as const }));

export const encoderForwardSpec: KernelSpec = {
  name: 'encoder_forward',
  version: 'v1',
  revision: 2,
  description:
    'one thread per output element; NaN row for an out-of-range token; positions start at posOffset (r1: at 0), ' +
    'or per token with POS',
  source: forwardSource,
  file: 'kernels/encoder/encoder_forward.wgsl',
  bindings: [ro('tokens'), ro('wte'), ro('wpe'), rw('out'), ro('positions'), params],
  uniforms: u32('N', 'T', 'C', 'V', 'posOffset', 'maxT'),
  overrides: { WG: 256, POS: 0 },
};

export const encoderBackwardWpeSpec: KernelSpec = {
  name: 'encoder_backward_wpe',
  version: 'v1',
  description: 'one thread per (t, c), sum over b in order',
  source: wpeSource,
  file: 'kernels/encoder/encoder_backward_wpe.wgsl',
  bindings: [ro('dout'), rw('dwpe'), params],
  uniforms: u32('B', 'T', 'C', 'maxT', 'accumulate'),
  overrides: { WG: 256 },
};

export const bucketCountSpec: KernelSpec = {
  name: 'encoder_bucket_count',
  version: 'v1',
  source: countSource,
  file: 'kernels/encoder/bucket_count.wgsl',
  bindings: [ro('tokens'), rw('counts'), params],
  uniforms: u32('N', 'V'),
  overrides: { WG: 256 },
};

export const bucketScanSpec: KernelSpec = {
  name: 'encoder_bucket_scan',
  version: 'v1',
  description: 'one workgroup, contiguous chunks, Hillis-Steele scan of chunk totals',
  source: scanSource,
  file: 'kernels/encoder/bucket_scan.wgsl',
  bindings: [ro('counts'), rw('offsets'), params],
  uniforms: u32('V'),
  overrides: { WG: 256 },
};

export const bucketScatterSpec: KernelSpec = {
  name: 'encoder_bucket_scatter',
  version: 'v1',
  source: scatterSource,
  file: 'kernels/encoder/bucket_scatter.wgsl',
  bindings: [ro('tokens'), ro('offsets'), rw('cursor'), rw('unsorted'), params],
  uniforms: u32('N', 'V'),
  overrides: { WG: 256 },
};

export const bucketSortSpec: KernelSpec = {
  name: 'encoder_bucket_sort',
  version: 'v1',
  description: 'rank within the bucket by a scan of the bucket',
  source: sortSource,
  file: 'kernels/encoder/bucket_sort.wgsl',
  bindings: [ro('tokens'), ro('offsets'), ro('unsorted'), rw('sorted'), params],
  uniforms: u32('N', 'V'),
  overrides: { WG: 256 },
};

export const encoderBackwardWteSpec: KernelSpec = {
  name: 'encoder_backward_wte',
  version: 'v1',
  description: 'one workgroup per bucket head, threads over channels, positions in increasing order',
  source: wteSource,
  file: 'kernels/encoder/encoder_backward_wte.wgsl',
  bindings: [ro('tokens'), ro('offsets'), ro('sorted'), ro('dout'), rw('dwte'), params],
  uniforms: u32('N', 'C', 'V'),
  overrides: { WG: 64 },
};

export const encoderSpecs = [
  encoderForwardSpec,
  encoderBackwardWpeSpec,
  bucketCountSpec,
  bucketScanSpec,
  bucketScatterSpec,
  bucketSortSpec,
  encoderBackwardWteSpec,
];

/**
 * Records dwte[tok] += Σ dout[n] over the positions n holding tok (tokens outside [0, V) are skipped). Also dwpe
 * by per-token position ids (tokens: the positions, V: maxT).
 */
export function encoderBackwardWte(
  gpu: Gpu,
  a: { tokens: GPUBuffer; dout: GPUBuffer; dwte: GPUBuffer; N: number; C: number; V: number },
): void {
  const { N, C, V } = a;
  const context = `N=${N} C=${C} V=${V}`;
  const tmp = (n: number, name: string) => empty(gpu, [Math.max(n, 1)], 'u32', { track: false, name });
  const counts = tmp(V, 'encoder counts');
  const cursor = tmp(V, 'encoder cursor');
  const offsets = tmp(V + 1, 'encoder offsets');
  const unsorted = tmp(N, 'encoder unsorted');
  const sorted = tmp(N, 'encoder sorted');
  gpu.clear(counts.buffer, 0, counts.bytes);
  gpu.clear(cursor.buffer, 0, cursor.bytes);
  const perPosition = grid1d(gpu, N, 256);
  gpu.dispatch(bucketCountSpec, {
    buffers: { tokens: a.tokens, counts: counts.buffer },
    uniforms: { N, V },
    workgroups: perPosition,
    context,
  });
  gpu.dispatch(bucketScanSpec, {
    buffers: { counts: counts.buffer, offsets: offsets.buffer },
    uniforms: { V },
    workgroups: [1],
    context,
  });
  gpu.dispatch(bucketScatterSpec, {
    buffers: { tokens: a.tokens, offsets: offsets.buffer, cursor: cursor.buffer, unsorted: unsorted.buffer },
    uniforms: { N, V },
    workgroups: perPosition,
    context,
  });
  gpu.dispatch(bucketSortSpec, {
    buffers: { tokens: a.tokens, offsets: offsets.buffer, unsorted: unsorted.buffer, sorted: sorted.buffer },
    uniforms: { N, V },
    workgroups: perPosition,
    context,
  });
  gpu.dispatch(encoderBackwardWteSpec, {
    buffers: { tokens: a.tokens, offsets: offsets.buffer, sorted: sorted.buffer, dout: a.dout, dwte: a.dwte },
    uniforms: { N, C, V },
    workgroups: grid1d(gpu, N, 1),
    context,
  });
  // Released after recording: any later user of these buffers is recorded after these dispatches.
  for (const t of [counts, cursor, offsets, unsorted, sorted]) t.dispose();
}

export interface EncoderOptions {
  /**
   * Per-token positions, i32, B·T of them (shape (B, T) or (B·T)), each in [0, maxT): token (b, t) gets
   * wpe[positions[b, t]] instead of wpe[t] (packed rows restart positions per conversation). A position outside
   * [0, maxT) makes the token's row NaN and is skipped by the backward: check them on the CPU (checkPositions).
   * T may then exceed maxT.
   */
  positions?: Tensor;
}

/**
 * Throws a WgptError unless every position is an integer in [0, maxT) (what a model of maxT positions can embed),
 * naming the row and column (rows of T) of the first bad one. For positions made on the CPU, before the upload.
 */
export function checkPositions(positions: ArrayLike<number>, maxT: number, T = positions.length, what = 'positions') {
  for (let i = 0; i < positions.length; i++) {
    const p = positions[i]!;
    if (!(Number.isInteger(p) && p >= 0 && p < maxT))
      throw new WgptError(
        `${what}: row ${Math.floor(i / T)} token ${i % T} has position ${p}, outside [0, ${maxT}) (the model's ` +
          `maxT); shorten the sequence (pack fewer tokens per conversation) or use a model with more positions`,
      );
  }
}

/**
 * out (B, T, C) = wte[tokens[b, t], :] + wpe[t, :] for tokens (B, T) i32, wte (V, C), wpe (maxT, C), T ≤ maxT; or
 * wpe[positions[b, t], :] with opts.positions.
 */
export const encoder = defineOp({
  name: 'encoder',
  forward(tokens: Tensor, wte: Tensor, wpe: Tensor, opts: EncoderOptions = {}) {
    expectSameGpu('encoder', tokens, wte, wpe);
    expectShape('encoder', tokens, 2);
    expectDtype('encoder', tokens, 'i32');
    const [B, T] = tokens.shape as [number, number];
    expectShape('encoder', wte, 2);
    const [V, C] = wte.shape as [number, number];
    expectShape('encoder', wpe, 2, [undefined, C]);
    const maxT = wpe.shape[0]!;
    const { positions } = opts;
    if (positions) {
      expectSameGpu('encoder', tokens, positions);
      expectDtype('encoder', positions, 'i32');
      if (positions.size !== B * T)
        throw new WgptError(`encoder: positions ${positions} must have B·T = ${B}·${T} = ${B * T} elements`);
    } else if (T > maxT) throw new WgptError(`encoder: sequence length T=${T} exceeds ${wpe}'s ${maxT} positions`);
    const gpu = wte.gpu;
    const N = B * T;
    const out = empty(gpu, [B, T, C]);
    gpu.dispatch(encoderForwardSpec, {
      buffers: {
        tokens: tokens.buffer,
        wte: wte.buffer,
        wpe: wpe.buffer,
        out: out.buffer,
        positions: positions?.buffer ?? placeholder(gpu),
      },
      uniforms: { N, T, C, V, posOffset: 0, maxT },
      overrides: { POS: positions ? 1 : 0 },
      workgroups: grid1d(gpu, N * C, 256),
      context: `B=${B} T=${T} C=${C} V=${V}`,
    });
    return { out, saved: null };
  },
  backward(ctx, g, { args: [tokens, wte, wpe, opts] }) {
    const [B, T] = tokens.shape as [number, number];
    const [V, C] = wte.shape as [number, number];
    const maxT = wpe.shape[0]!;
    const gpu = wte.gpu;
    const positions = opts?.positions;
    // With per-token positions dwpe is the same grouped sum as dwte, by position id instead of token id (rows of
    // positions the batch does not use get nothing, so the target is zeroed first when it holds nothing).
    const dwpe = ctx.grad(wpe, positions ? { zeroed: true } : undefined);
    if (dwpe && positions) {
      const dwpeRows = { tokens: positions.buffer, dout: g.buffer, dwte: dwpe.tensor.buffer };
      encoderBackwardWte(gpu, { ...dwpeRows, N: B * T, C, V: maxT });
    } else if (dwpe) {
      gpu.dispatch(encoderBackwardWpeSpec, {
        buffers: { dout: g.buffer, dwpe: dwpe.tensor.buffer },
        uniforms: { B, T, C, maxT, accumulate: dwpe.accumulate },
        workgroups: grid1d(gpu, maxT * C, 256),
        context: `B=${B} T=${T} C=${C} maxT=${maxT}`,
      });
    }
    // Only the rows of tokens in the batch get a contribution: the others must hold zeros (or their old value).
    const dwte = ctx.grad(wte, { zeroed: true });
    if (dwte)
      encoderBackwardWte(gpu, { tokens: tokens.buffer, dout: g.buffer, dwte: dwte.tensor.buffer, N: B * T, C, V });
  },
});

/**
 * Inference only (no autograd): out (B, T, C) = wte[tokens[b, t], :] + wpe[posOffset + t, :], for new tokens that
 * follow posOffset cached ones. posOffset + T ≤ maxT.
 */
export function encoderAt(tokens: Tensor, wte: Tensor, wpe: Tensor, posOffset: number): Tensor {
  expectSameGpu('encoderAt', tokens, wte, wpe);
  expectShape('encoderAt', tokens, 2);
  expectDtype('encoderAt', tokens, 'i32');
  const [B, T] = tokens.shape as [number, number];
  expectShape('encoderAt', wte, 2);
  const [V, C] = wte.shape as [number, number];
  expectShape('encoderAt', wpe, 2, [undefined, C]);
  const maxT = wpe.shape[0]!;
  if (!Number.isInteger(posOffset) || posOffset < 0 || posOffset + T > maxT)
    throw new WgptError(`encoderAt: positions [${posOffset}, ${posOffset + T}) exceed ${wpe}'s ${maxT} positions`);
  const gpu = wte.gpu;
  const N = B * T;
  const out = empty(gpu, [B, T, C]);
  gpu.dispatch(encoderForwardSpec, {
    buffers: { tokens: tokens.buffer, wte: wte.buffer, wpe: wpe.buffer, out: out.buffer, positions: placeholder(gpu) },
    uniforms: { N, T, C, V, posOffset, maxT },
    workgroups: grid1d(gpu, N * C, 256),
    context: `B=${B} T=${T} C=${C} V=${V} posOffset=${posOffset}`,
  });
  return out;
}
