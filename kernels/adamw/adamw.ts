// Multi-tensor AdamW. Parameters packed into one buffer (runtime's parameters(): GPT-2's 148 tensors), with their
// gradients packed alike, form one span, and a step over any number of them is three dispatches: Σ g² per
// workgroup (adamw_norm), the global norm, clip scale and the decision to apply the step (adamw_status), and the
// fused update of every element (adamw). The moments are packed the same way. Parameters in separate buffers each
// form a span of their own (one norm and one update dispatch each). Nothing is read back: the trainer reads the
// status (norm², applied, the losses) once, after the step.
// Two versions of the norm pass and the update (the status is shared), chosen when the optimizer is made:
//   v1  norm: one workgroup per partial, a tree in workgroup memory; update: one invocation per element. For GPUs.
//   v2  norm: one subgroup of 4 per partial, vec4 sums and a subgroup sum, no barriers; update: 16 elements per
//       invocation, one search of the runs per invocation. For CPU adapters (SwiftShader); needs subgroups of 4.
//       The update is per element the same arithmetic as v1; the norm adds its terms in another order.
import {
  BufferSlice,
  bufferRange,
  empty,
  grid1d,
  Tensor,
  tensor,
  WgptError,
  zeros,
  type Gpu,
  type KernelSpec,
} from '@wgpt/runtime';
import { placeholder, subgroupsOf4 } from '../common.ts';
import adamwSource from './adamw.wgsl';
import adamwV2Source from './adamw_v2.wgsl';
import normSource from './adamw_norm.wgsl';
import normV2Source from './adamw_norm_v2.wgsl';
import statusSource from './adamw_status.wgsl';

export const adamwSpec: KernelSpec = {
  name: 'adamw',
  version: 'v1',
  revision: 2,
  description: 'one thread per element of a span of packed parameters, decay and padding from a table of runs',
  source: adamwSource,
  file: 'kernels/adamw/adamw.wgsl',
  bindings: [
    { name: 'param', kind: 'storage' },
    { name: 'grad', kind: 'read-only-storage' },
    { name: 'm', kind: 'storage' },
    { name: 'v', kind: 'storage' },
    { name: 'runs', kind: 'read-only-storage' },
    { name: 'status', kind: 'read-only-storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [
    { name: 'n', type: 'u32' },
    { name: 'n_runs', type: 'u32' },
    { name: 'lr', type: 'f32' },
    { name: 'beta1', type: 'f32' },
    { name: 'beta2', type: 'f32' },
    { name: 'eps', type: 'f32' },
    { name: 'weight_decay', type: 'f32' },
    { name: 'bias_correction1', type: 'f32' },
    { name: 'bias_correction2', type: 'f32' },
  ],
  overrides: { WG: 256 },
};

export const adamwNormSpec: KernelSpec = {
  name: 'adamw_norm',
  version: 'v1',
  description: 'Σ g² per workgroup over a grid-strided share of a span',
  source: normSource,
  file: 'kernels/adamw/adamw_norm.wgsl',
  bindings: [
    { name: 'grad', kind: 'read-only-storage' },
    { name: 'partials', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [
    { name: 'n', type: 'u32' },
    { name: 'base', type: 'u32' },
  ],
  overrides: { WG: 256 },
};

export const adamwStatusSpec: KernelSpec = {
  name: 'adamw_status',
  version: 'v1',
  description: 'one workgroup: norm² from the partials, clip scale, apply or skip (finite norm and losses)',
  source: statusSource,
  file: 'kernels/adamw/adamw_status.wgsl',
  bindings: [
    { name: 'partials', kind: 'read-only-storage' },
    { name: 'losses', kind: 'read-only-storage' },
    { name: 'status', kind: 'storage' },
    { name: 'params', kind: 'uniform' },
  ],
  uniforms: [
    { name: 'n_partials', type: 'u32' },
    { name: 'n_losses', type: 'u32' },
    { name: 'max_norm', type: 'f32' },
    { name: 'guard', type: 'u32' },
  ],
  overrides: { WG: 256 },
};

export const adamwV2Spec: KernelSpec = {
  ...adamwSpec,
  version: 'v2',
  revision: 1,
  description: '16 elements per invocation (4 consecutive invocations per 64), one search of the runs each',
  source: adamwV2Source,
  file: 'kernels/adamw/adamw_v2.wgsl',
  overrides: { WG: 64 },
};

export const adamwNormV2Spec: KernelSpec = {
  ...adamwNormSpec,
  version: 'v2',
  description: 'Σ g² per subgroup of 4 over blocks of 16 elements, vec4 sums and a subgroup sum, no barriers',
  source: normV2Source,
  file: 'kernels/adamw/adamw_norm_v2.wgsl',
  uniforms: [
    { name: 'n', type: 'u32' },
    { name: 'base', type: 'u32' },
    { name: 'partials', type: 'u32' },
  ],
  overrides: { WG: 64 },
};

export type AdamWVersion = 'v1' | 'v2';

/** The version for this device: v2 on software adapters with subgroups of 4, else v1. */
export function adamwVersion(gpu: Gpu): AdamWVersion {
  return gpu.software && subgroupsOf4(gpu) ? 'v2' : 'v1';
}

export interface AdamWConfig {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Clip gradients to this global L2 norm; 0 disables clipping. */
  maxNorm: number;
}

export const ADAMW_DEFAULTS: AdamWConfig = {
  lr: 3e-4,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.1,
  maxNorm: 1.0,
};

/** What a step did, read back from the GPU by lastStep(). */
export interface AdamWStep {
  /** Σ g² over every parameter's gradient (f32, before clipping). */
  normSq: number;
  gradNorm: number;
  /** False when the step was guarded and skipped: parameters, moments and the step count are as they were. */
  applied: boolean;
  /** The losses given to update(), as the GPU saw them. */
  losses: Float32Array;
}

/**
 * Partials of the first norm pass per span. v1: workgroups, enough threads to fill a large GPU, few partials to add
 * up. v2: subgroups of 4, each over 256 elements (16 per lane and component) up to 1024 partials, so that a sum
 * has about as few terms in sequence as v1's.
 */
const MAX_PARTIALS = 1024;
const partialsFor = (n: number, version: AdamWVersion) =>
  Math.max(1, Math.min(MAX_PARTIALS, Math.ceil(n / (version === 'v1' ? 256 * 16 : 256))));

/** Parameters whose values and gradients lie in one buffer each, at the same relative offsets. */
interface Span {
  /** Indices into params, in order. */
  members: number[];
  /** The span's range of the gradients' buffer. */
  grad: GPUBuffer;
  /** Elements in the span (padding included). */
  n: number;
  partials: number;
  partialBase: number;
  /** The runs of consecutive owned members that this optimizer updates: the whole span unless `owned` says else. */
  pieces: Piece[];
}

/** Consecutive members of a span updated by one dispatch, with their moments. */
interface Piece {
  members: number[];
  /** The piece's range of the parameters' and the gradients' buffers. */
  param: GPUBuffer;
  grad: GPUBuffer;
  /** Moments: buffers of the piece's size, owned by the optimizer. */
  m: Tensor;
  v: Tensor;
  /** (first element, flags) pairs for the update kernel. */
  runs: Tensor;
  nRuns: number;
  /** Elements in the piece (padding between members included). */
  n: number;
  /** Element offset of each member in the piece. */
  at: number[];
}

export class AdamW {
  readonly config: AdamWConfig;
  /** Steps applied: the t of the bias correction. */
  step = 0;
  /**
   * Per owned parameter (every one unless `opts.owned`), in parameter order: views of the packed moments (the
   * checkpoint's order).
   */
  readonly m: Tensor[];
  readonly v: Tensor[];
  /** Per parameter: whether this optimizer updates it and keeps its moments. */
  readonly owned: boolean[];
  private readonly spans: Span[] = [];
  private readonly grads: Tensor[];
  private readonly partials: Tensor;
  private status: Tensor;
  private statusLosses = 0;
  /** A guarded step was recorded and its outcome (applied or skipped) has not been read yet. */
  private pending = false;
  /** The kernels' version: default adamwVersion(gpu). */
  readonly version: AdamWVersion;

  /**
   * @param params the parameters to update, in a fixed order (the order of m and v in checkpoints); their
   *   gradients are allocated now if they have none
   * @param decay per parameter: whether weight decay applies (GPT-2: 2-D weights yes, biases and norms no);
   *   default: parameters of rank ≥ 2.
   * @param opts.version force a version of the kernels (tests, benches); default adamwVersion(gpu)
   * @param opts.owned per parameter: whether this optimizer updates it (default all). The norm still covers every
   *   gradient; moments exist only for owned parameters, which get per element the same arithmetic as with all
   *   owned (ZeRO-1: each rank of a data-parallel job owns some tensors and sends them to the others after).
   */
  constructor(
    readonly gpu: Gpu,
    readonly params: Tensor[],
    config: Partial<AdamWConfig> = {},
    readonly decay: boolean[] = params.map((p) => p.shape.length >= 2),
    opts: { version?: AdamWVersion; owned?: boolean[] } = {},
  ) {
    this.config = { ...ADAMW_DEFAULTS, ...config };
    this.version = opts.version ?? adamwVersion(gpu);
    if (this.version === 'v2' && !subgroupsOf4(gpu))
      throw new Error(`AdamW v2 needs subgroups of 4 (${gpu.describe()})`);
    if (decay.length !== params.length)
      throw new WgptError(`AdamW: ${decay.length} decay flags for ${params.length} parameters`);
    this.owned = opts.owned ?? params.map(() => true);
    if (this.owned.length !== params.length)
      throw new WgptError(`AdamW: ${this.owned.length} ownership flags for ${params.length} parameters`);
    this.grads = params.map((p) => p.ensureGrad());
    const align = gpu.limits.minStorageBufferOffsetAlignment;
    // Group consecutive parameters that lie in one buffer, with gradients in one buffer at the same offsets.
    type Draft = { members: number[]; p: GPUBuffer; g: GPUBuffer; p0: number; g0: number; end: number };
    const drafts: Draft[] = [];
    params.forEach((p, i) => {
      const pr = bufferRange(p.buffer);
      const gr = bufferRange(this.grads[i]!.buffer);
      const d = drafts.at(-1);
      const joins =
        d &&
        d.p === pr.buffer &&
        d.g === gr.buffer &&
        pr.offset >= d.end &&
        pr.offset - d.end < align &&
        pr.offset - d.p0 === gr.offset - d.g0;
      if (joins) d.members.push(i);
      else drafts.push({ members: [i], p: pr.buffer, g: gr.buffer, p0: pr.offset, g0: gr.offset, end: 0 });
      drafts.at(-1)!.end = pr.offset + p.bytes;
    });
    let partialBase = 0;
    for (const d of drafts) {
      const bytes = d.end - d.p0;
      const n = bytes / 4;
      const at = d.members.map((i) => (bufferRange(params[i]!.buffer).offset - d.p0) / 4);
      // Pieces: runs of consecutive owned members (all of the span when every member is owned).
      const groups: number[][] = [];
      let open = false;
      d.members.forEach((i, k) => {
        if (!this.owned[i]) open = false;
        else if (open) groups.at(-1)!.push(k);
        else (groups.push([k]), (open = true));
      });
      const pieces = groups.map((ks): Piece => {
        const first = at[ks[0]!]!;
        const last = ks.at(-1)!;
        const pn = at[last]! + params[d.members[last]!]!.size - first;
        const pat = ks.map((k) => at[k]! - first);
        // Runs: each member with its decay flag, the gaps between members marked as padding; equal neighbours merge.
        const runs: [number, number][] = [];
        const push = (start: number, flags: number) => {
          if (runs.length && runs.at(-1)![1] === flags) return;
          runs.push([start, flags]);
        };
        ks.forEach((k, j) => {
          const i = d.members[k]!;
          push(pat[j]!, decay[i] ? 1 : 0);
          const end = pat[j]! + params[i]!.size;
          const next = j + 1 < ks.length ? pat[j + 1]! : pn;
          if (next > end) push(end, 2);
        });
        const moment = (name: string) => zeros(gpu, [pn], 'f32', { track: false, name, exact: true });
        const [p0, g0] = [d.p0 + 4 * first, d.g0 + 4 * first];
        return {
          members: ks.map((k) => d.members[k]!),
          param: new BufferSlice(d.p, p0, 4 * pn, `parameters [${p0}, ${p0 + 4 * pn})`),
          grad: new BufferSlice(d.g, g0, 4 * pn, `gradients [${g0}, ${g0 + 4 * pn})`),
          m: moment('AdamW m'),
          v: moment('AdamW v'),
          runs: tensor(gpu, runs.flat(), [runs.length, 2], 'u32', { track: false, name: 'AdamW runs' }),
          nRuns: runs.length,
          n: pn,
          at: pat,
        };
      });
      const partials = partialsFor(n, this.version);
      this.spans.push({
        members: d.members,
        grad: new BufferSlice(d.g, d.g0, bytes, `gradients [${d.g0}, ${d.g0 + bytes})`),
        n,
        partials,
        partialBase,
        pieces,
      });
      partialBase += partials;
    }
    const view = (s: Piece, k: number, which: 'm' | 'v') => {
      const p = params[s.members[k]!]!;
      const root = s[which];
      const slice = new BufferSlice(root.buffer, 4 * s.at[k]!, p.bytes, `${which}(${p.name ?? `t${p.id}`})`);
      const t = new Tensor(gpu, p.shape, 'f32', slice, { track: false, name: slice.label });
      t.base = root;
      return t;
    };
    this.m = [];
    this.v = [];
    for (const s of this.pieces)
      s.members.forEach((_, k) => {
        this.m.push(view(s, k, 'm'));
        this.v.push(view(s, k, 'v'));
      });
    // Zeroed: with no parameters at all the status still adds one partial.
    this.partials = zeros(gpu, [Math.max(1, partialBase)], 'f32', { track: false, name: 'AdamW norm partials' });
    this.status = empty(gpu, [3], 'f32', { track: false, name: 'AdamW status' });
  }

  private get pieces(): Piece[] {
    return this.spans.flatMap((s) => s.pieces);
  }

  /** Dispatches per update(): a norm pass per span, the status, and an update per piece (per span unless owned). */
  get dispatchesPerStep(): number {
    return this.spans.length + 1 + this.pieces.length;
  }

  /**
   * Records one step with the current gradients: the global norm, clipping, the update. `lr` overrides the
   * configured rate (schedules). With `skipNonFinite`, the GPU applies the step only if the norm and every value
   * of `losses` are finite; the step count (bias correction) then advances only once lastStep() has read that it
   * was applied, so call lastStep() before the next update. `losses` (e.g. one per micro-batch) come back from
   * lastStep() with the norm: one read for the whole step.
   */
  update(lr = this.config.lr, opts: { skipNonFinite?: boolean; losses?: Tensor } = {}): void {
    const { gpu, config: c } = this;
    if (this.pending)
      throw new WgptError(
        'AdamW: the previous step was guarded and whether it was applied is not known yet: ' +
          'await lastStep() before the next update (the bias correction counts applied steps)',
      );
    this.params.forEach((p, i) => {
      if (!p.grad || !p.gradReady)
        throw new WgptError(`AdamW: parameter ${p} has no gradient; call zeroGrad() before backward`);
      if (p.grad !== this.grads[i])
        throw new WgptError(`AdamW: the gradient of ${p} is not the buffer it had when the optimizer was made`);
    });
    const nLosses = opts.losses?.size ?? 0;
    if (nLosses !== this.statusLosses) {
      this.status.dispose();
      this.status = empty(gpu, [3 + nLosses], 'f32', { track: false, name: 'AdamW status' });
      this.statusLosses = nLosses;
    }
    const v2 = this.version === 'v2';
    for (const s of this.spans)
      if (v2)
        gpu.dispatch(adamwNormV2Spec, {
          buffers: { grad: s.grad, partials: this.partials.buffer },
          uniforms: { n: s.n, base: s.partialBase, partials: s.partials },
          workgroups: [Math.ceil(s.partials / 16)],
          context: `n=${s.n}`,
        });
      else
        gpu.dispatch(adamwNormSpec, {
          buffers: { grad: s.grad, partials: this.partials.buffer },
          uniforms: { n: s.n, base: s.partialBase },
          workgroups: [s.partials],
          context: `n=${s.n}`,
        });
    gpu.dispatch(adamwStatusSpec, {
      buffers: {
        partials: this.partials.buffer,
        losses: opts.losses?.buffer ?? placeholder(gpu),
        status: this.status.buffer,
      },
      uniforms: {
        n_partials: this.partials.size,
        n_losses: nLosses,
        max_norm: c.maxNorm,
        guard: opts.skipNonFinite ? 1 : 0,
      },
      workgroups: [1],
      context: `${this.spans.length} span(s), ${nLosses} losses`,
    });
    const t = this.step + 1;
    for (const s of this.pieces)
      gpu.dispatch(v2 ? adamwV2Spec : adamwSpec, {
        buffers: {
          ...{ param: s.param, grad: s.grad, m: s.m.buffer, v: s.v.buffer },
          ...{ runs: s.runs.buffer, status: this.status.buffer },
        },
        uniforms: {
          n: s.n,
          n_runs: s.nRuns,
          lr,
          beta1: c.beta1,
          beta2: c.beta2,
          eps: c.eps,
          weight_decay: c.weightDecay,
          bias_correction1: 1 - c.beta1 ** t,
          bias_correction2: 1 - c.beta2 ** t,
        },
        // v2: 16 elements per invocation, 64 invocations per workgroup.
        workgroups: grid1d(gpu, s.n, v2 ? 1024 : 256),
        context: `n=${s.n}, ${s.members.length} tensors`,
      });
    if (opts.skipNonFinite) this.pending = true;
    else this.step = t;
  }

  /** Reads what the last update() did (one read); after a guarded step, advances the step count if applied. */
  async lastStep(): Promise<AdamWStep> {
    const s = (await this.status.read()) as Float32Array;
    const applied = s[2] !== 0;
    if (this.pending) {
      this.pending = false;
      if (applied) this.step++;
    }
    return { normSq: s[0]!, gradNorm: Math.sqrt(s[0]!), applied, losses: s.slice(3) };
  }

  /** Zeroes every gradient: one clear per span. */
  zeroGrad(): void {
    for (const s of this.spans) this.gpu.clear(s.grad, 0, 4 * s.n);
    for (const p of this.params) p.markGradReady();
  }

  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
    for (const s of this.pieces) for (const t of [s.m, s.v, s.runs]) t.dispose();
    this.partials.dispose();
    this.status.dispose();
  }

  /**
   * Moments per parameter, read piece by piece (one read each); empty arrays for parameters not owned. Waits for a
   * guarded step's outcome.
   */
  async state(): Promise<AdamWState> {
    if (this.pending) await this.lastStep();
    const m: Float32Array[] = this.params.map(() => new Float32Array(0));
    const v: Float32Array[] = this.params.map(() => new Float32Array(0));
    for (const s of this.pieces) {
      const [ms, vs] = [(await s.m.read()) as Float32Array, (await s.v.read()) as Float32Array];
      s.members.forEach((i, k) => {
        const size = this.params[i]!.size;
        m[i] = ms.slice(s.at[k]!, s.at[k]! + size);
        v[i] = vs.slice(s.at[k]!, s.at[k]! + size);
      });
    }
    return { step: this.step, m, v };
  }

  /** Sets moments and step count (a checkpoint's, of every parameter), one write per piece: the owned ones. */
  load(st: AdamWState): void {
    if (st.m.length !== this.params.length || st.v.length !== this.params.length)
      throw new WgptError(`AdamW state has ${st.m.length} moments, the optimizer ${this.params.length} parameters`);
    for (const [i, p] of this.params.entries())
      if (st.m[i]!.length !== p.size || st.v[i]!.length !== p.size)
        throw new WgptError(
          `AdamW state: parameter ${i} has ${st.m[i]!.length} and ${st.v[i]!.length} moment values, ` +
            `${p} needs ${p.size}`,
        );
    for (const s of this.pieces) {
      const ms = new Float32Array(s.n);
      const vs = new Float32Array(s.n);
      s.members.forEach((i, k) => {
        ms.set(st.m[i]!, s.at[k]!);
        vs.set(st.v[i]!, s.at[k]!);
      });
      s.m.write(ms);
      s.v.write(vs);
    }
    this.step = st.step;
    this.pending = false;
  }
}

/** Moments and step of an AdamW, in the optimizer's parameter order: what a training checkpoint stores. */
export interface AdamWState {
  step: number;
  m: Float32Array[];
  v: Float32Array[];
}

export function saveAdamW(opt: AdamW): Promise<AdamWState> {
  return opt.state();
}

export function loadAdamW(opt: AdamW, s: AdamWState): void {
  opt.load(s);
}
