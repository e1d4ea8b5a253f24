// Tensor = pooled GPU buffer + shape + dtype (+ grad). Memory is managed explicitly: dispose(), or tidy(fn),
// which disposes every tensor created inside fn except what fn returns or keep()s. Parameters live outside tidy.
import type { Gpu } from './gpu.ts';
import { WgptError } from './errors.ts';
import type { TapeNode } from './autograd.ts';
import { fillBuffer, POISON_BITS } from './builtin/fill.ts';
import { scopes, type Scope } from './scope.ts';

export type DType = 'f32' | 'i32' | 'u32';
export type TypedArrayOf<D extends DType> = D extends 'f32' ? Float32Array : D extends 'i32' ? Int32Array : Uint32Array;

// GPUBufferUsage is a global only once the device layer has loaded, so it is read lazily.
const storageUsage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

let nextId = 1;

export class Tensor {
  readonly id = nextId++;
  readonly size: number;
  requiresGrad = false;
  /** Leaf tensors that the optimizer updates: their grads persist across steps and accumulate (+=). */
  isParam = false;
  grad: Tensor | null = null;
  private hasGradValue = false;
  /** The op that produced this tensor, when it was recorded for backward. */
  node: TapeNode | null = null;
  name?: string;
  /** For a view: the tensor whose buffer this one shares. Disposing a view never releases the buffer. */
  base: Tensor | null = null;
  /**
   * For a tensor packed with others into shared buffers (packed.ts): its pack, which allocates the gradients of
   * all its tensors at once (each a slice of one gradient buffer) when the first is needed, and frees them all.
   */
  pack: { ensureGrads(): void; dispose(): void } | null = null;
  /**
   * Set (to the op's name) when a backward wrote this tensor's gradient over its values, to save memory (the fused
   * classifier's in-place option): its values are gone, and reading it or passing it to an op throws.
   */
  overwrittenBy: string | null = null;
  private disposed = false;
  /** The tidy() scope that will dispose this tensor, if any. */
  private scope: Scope | undefined;

  constructor(
    readonly gpu: Gpu,
    readonly shape: readonly number[],
    readonly dtype: DType,
    readonly buffer: GPUBuffer,
    opts: { track?: boolean; name?: string } = {},
  ) {
    this.size = shape.reduce((a, b) => a * b, 1);
    this.name = opts.name;
    if (opts.track !== false) this.moveToScope(scopes.current());
  }

  get bytes(): number {
    return this.size * 4;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Human-readable description for error messages: name, shape, dtype. */
  toString(): string {
    return `${this.name ?? `t${this.id}`}[${this.shape.join('x')}] ${this.dtype}`;
  }

  async read(): Promise<TypedArrayOf<this['dtype']>> {
    if (this.disposed) throw new WgptError(`read() of disposed tensor ${this}`);
    this.assertIntact('read()');
    const ab = await this.gpu.read(this.buffer, this.bytes);
    return (
      this.dtype === 'f32' ? new Float32Array(ab) : this.dtype === 'i32' ? new Int32Array(ab) : new Uint32Array(ab)
    ) as TypedArrayOf<this['dtype']>;
  }

  /** Reads a one-element tensor as a number. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new WgptError(`item() needs a one-element tensor, got ${this}`);
    return (await this.read())[0]!;
  }

  /** Overwrites the contents from the host. */
  write(data: ArrayLike<number>): this {
    if (data.length !== this.size)
      throw new WgptError(`write of ${data.length} values into ${this} (${this.size} elements)`);
    this.gpu.write(this.buffer, toTyped(data, this.dtype));
    return this;
  }

  /** A tensor of another shape over the same buffer (no copy, no gradient link: see the reshape op for that). */
  view(shape: readonly number[]): Tensor {
    checkShape(shape);
    const size = shape.reduce((a, b) => a * b, 1);
    if (size !== this.size)
      throw new WgptError(`view of ${this} as [${shape.join(', ')}]: ${size} elements, not ${this.size}`);
    const root = this.base ?? this;
    const v = new Tensor(this.gpu, shape, this.dtype, this.buffer, { name: this.name });
    v.base = root;
    return v;
  }

  /** Throws if a backward wrote this tensor's gradient over its values (see overwrittenBy). */
  assertIntact(what: string): void {
    if (this.overwrittenBy)
      throw new WgptError(
        `${what} of ${this}: its buffer holds its gradient now (${this.overwrittenBy} wrote it over the values in ` +
          'backward to save memory); use the values before backward, or run that op without its in-place option',
      );
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (!this.base) this.gpu.pool.release(this.buffer);
    if (this.grad && !this.isParam) this.grad.dispose();
    this.node = null;
    this.moveToScope(undefined);
  }

  /** Leaves its scope for `to` (undefined: untracked). For tidy() and keep(). */
  moveToScope(to: Scope | undefined): void {
    this.scope?.delete(this);
    this.scope = to;
    to?.add(this);
  }

  /**
   * True once grad holds a value (a first contribution was written, or it was zeroed): backward then adds to it.
   * While false, the first contribution overwrites whatever the buffer holds.
   */
  get gradReady(): boolean {
    return this.hasGradValue;
  }

  /**
   * Declares that grad now holds a value, for code that wrote it directly (autograd's first contribution, a
   * test or loader writing gradients from the host). Later backward passes add to it.
   */
  markGradReady(): void {
    if (!this.grad)
      throw new WgptError(`markGradReady() on ${this}, which has no gradient buffer: call ensureGrad() first`);
    this.hasGradValue = true;
  }

  /**
   * Makes `g` (same shape) this tensor's gradient, holding no value yet (the next contribution overwrites it). For
   * packs, which hand out slices of one gradient buffer, and for ops that compute a gradient in place.
   */
  adoptGrad(g: Tensor): void {
    if (g.size !== this.size) throw new WgptError(`adoptGrad: ${g} as the gradient of ${this}`);
    if (this.grad) throw new WgptError(`adoptGrad: ${this} has a gradient buffer already`);
    this.grad = g;
    this.hasGradValue = false;
  }

  /** Allocates this tensor's gradient buffer if missing. Param grads are untracked so tidy() never frees them. */
  ensureGrad(): Tensor {
    if (!this.grad && this.pack) this.pack.ensureGrads();
    if (!this.grad) {
      const name = `grad(${this.name ?? `t${this.id}`})`;
      this.grad = empty(this.gpu, this.shape, 'f32', { track: !this.isParam, name });
      this.hasGradValue = false;
    }
    return this.grad;
  }

  /** Zeroes the gradient (recorded in the pending encoder); subsequent backward passes accumulate into it. */
  zeroGrad(): void {
    const g = this.ensureGrad();
    this.gpu.clear(g.buffer, 0, g.bytes);
    this.hasGradValue = true;
  }
}

function toTyped(data: ArrayLike<number>, dtype: DType): Float32Array | Int32Array | Uint32Array {
  if (dtype === 'f32') return data instanceof Float32Array ? data : Float32Array.from(data);
  if (dtype === 'i32') return data instanceof Int32Array ? data : Int32Array.from(data);
  return data instanceof Uint32Array ? data : Uint32Array.from(data);
}

export function checkShape(shape: readonly number[]): void {
  for (const d of shape)
    if (!Number.isInteger(d) || d < 0)
      throw new WgptError(`Bad shape [${shape.join(', ')}]: dimensions must be non-negative integers`);
}

/**
 * A tensor with undefined contents. With `exact`, its buffer is not rounded up to a size class (for large tensors
 * that live the whole run, such as optimizer moments).
 */
export function empty(
  gpu: Gpu,
  shape: readonly number[],
  dtype: DType = 'f32',
  opts: { track?: boolean; name?: string; exact?: boolean } = {},
): Tensor {
  checkShape(shape);
  const size = shape.reduce((a, b) => a * b, 1);
  const buffer = gpu.pool.acquire(size * 4, storageUsage(), opts.name, { exact: opts.exact });
  // Tests turn poisoning on so that an element a kernel forgets to write is NaN and fails the comparison.
  if (gpu.poisonNew) fillBuffer(gpu, buffer, size, POISON_BITS);
  return new Tensor(gpu, shape, dtype, buffer, opts);
}

export function zeros(
  gpu: Gpu,
  shape: readonly number[],
  dtype: DType = 'f32',
  opts: { track?: boolean; name?: string; exact?: boolean } = {},
): Tensor {
  const t = empty(gpu, shape, dtype, opts);
  gpu.clear(t.buffer, 0, Math.max(4, t.bytes));
  return t;
}

export function tensor(
  gpu: Gpu,
  data: ArrayLike<number>,
  shape: readonly number[] = [data.length],
  dtype: DType = 'f32',
  opts: { track?: boolean; name?: string; requiresGrad?: boolean } = {},
): Tensor {
  const t = empty(gpu, shape, dtype, opts);
  if (data.length !== t.size) {
    t.dispose();
    throw new WgptError(`tensor(): ${data.length} values do not fill shape [${shape.join(', ')}] (${t.size} elements)`);
  }
  if (t.size) t.write(data);
  t.requiresGrad = !!opts.requiresGrad;
  return t;
}

/** A trainable parameter: untracked by tidy(), requires grad, grads accumulate across backward passes. */
export function parameter(gpu: Gpu, data: ArrayLike<number>, shape: readonly number[], name?: string): Tensor {
  const t = tensor(gpu, data, shape, 'f32', { track: false, name, requiresGrad: true });
  t.isParam = true;
  return t;
}

/** Runs fn and disposes every tensor created inside it, except the ones in its result or passed to keep(). */
export function tidy<T>(fn: () => T): T {
  const scope: Scope = new Set();
  const result = scopes.run(scope, fn);
  close(scope, result);
  return result;
}

/**
 * The async twin of tidy(): for code that awaits reads inside the scope. In Node each async task has its own scopes,
 * so concurrent tasks do not collect each other's tensors; in a browser only one tidyAsync() may be pending at a
 * time (see scope.ts).
 */
export async function tidyAsync<T>(fn: () => Promise<T>): Promise<T> {
  const scope: Scope = new Set();
  const result = await scopes.runAsync(scope, fn);
  close(scope, result);
  return result;
}

/** Disposes the scope's tensors except those in `result`, which move to the enclosing scope (of the caller). */
function close(scope: Scope, result: unknown): void {
  const kept = new Set<Tensor>();
  collectTensors(result, kept);
  const outer = scopes.current();
  for (const t of [...scope]) {
    if (kept.has(t)) t.moveToScope(outer);
    else t.dispose();
  }
}

/** Moves a tensor out of its tidy() scope: no scope disposes it any more. */
export function keep<T extends Tensor>(t: T): T {
  t.moveToScope(undefined);
  return t;
}

function collectTensors(x: unknown, out: Set<Tensor>, depth = 0): void {
  if (x instanceof Tensor) {
    out.add(x);
    if (x.base) out.add(x.base); // a kept view keeps its buffer's owner alive
  } else if (depth < 3 && Array.isArray(x)) for (const v of x) collectTensors(v, out, depth + 1);
  else if (depth < 3 && x && typeof x === 'object' && Object.getPrototypeOf(x) === Object.prototype)
    for (const v of Object.values(x)) collectTensors(v, out, depth + 1);
}
