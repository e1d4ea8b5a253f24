// A minimal tape autograd (micrograd's shape on llm.c's kernels).
//
// An op is defined once with defineOp({ name, forward, backward }). Calling it runs forward; when grad is on and
// an input requires grad, a TapeNode is attached to the output. backward(loss) sorts the nodes topologically and
// runs each node's backward in reverse order.
//
// Gradient writes: a backward kernel asks ctx.grad(input) for where to write and whether to accumulate.
// The first contribution to an activation's gradient is written (=), later ones add (+=); parameters' grads are
// zeroed by zeroGrad() and always accumulate, so gradient accumulation across micro-batches is plain +=.
import { WgptError } from './errors.ts';
import { fill } from './builtin/fill.ts';
import { Tensor } from './tensor.ts';

export interface GradTarget {
  /** The gradient tensor to write into (same shape as the input). */
  tensor: Tensor;
  /** 1: add into the existing contents; 0: overwrite. Pass it to the kernel's `accumulate` uniform. */
  accumulate: 0 | 1;
}

export interface BackwardCtx {
  /**
   * Where to write the gradient of `input`, or null if it needs none. With { zeroed: true } the target is
   * zero-filled first when it holds nothing yet (for scatter-style kernels that touch only some elements); the
   * result then always accumulates.
   */
  grad(input: Tensor, opts?: { zeroed?: boolean }): GradTarget | null;
  /**
   * Like grad(), but when this is the first contribution to `input`'s gradient, the target is `input` itself: the
   * kernel writes the gradient over the values (inPlace: true), which are gone from then on (reading `input` or
   * passing it to an op throws). Only for an input that no other backward still needs, e.g. logits whose one
   * consumer is the loss and whose producer (a matmul) needs only its output's gradient. Otherwise (a gradient is
   * there already, or `input` is a parameter) it is grad().
   */
  gradInPlace(input: Tensor, op: string): (GradTarget & { inPlace: boolean }) | null;
}

export interface TapeNode {
  name: string;
  inputs: Tensor[];
  output: Tensor;
  backward: (ctx: BackwardCtx, gradOut: Tensor) => void;
}

let gradEnabled = true;

/** Runs fn without recording anything for backward. */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** What a backward gets besides ctx and the output's gradient: the forward's own arguments, typed. */
export interface BackwardArgs<A extends unknown[], S> {
  /** The arguments the forward was called with, as given (an omitted optional tensor stays undefined in place). */
  args: A;
  /** What the forward returned as `saved`. */
  saved: S;
  /** The forward's output. */
  out: Tensor;
}

export interface OpDef<A extends unknown[], S> {
  /** snake_case of the exported function's name (linearGelu → linear_gelu): the tape and error messages use it. */
  name: string;
  /** Computes the output; returns what backward needs as `saved`. Must not read tensors back to the host. */
  forward(...args: A): { out: Tensor; saved: S };
  /** Writes the inputs' gradients through ctx.grad(input). */
  backward(ctx: BackwardCtx, gradOut: Tensor, node: BackwardArgs<A, S>): void;
}

/** An op as defineOp returns it: call it like its forward; `opName` is the name it records on the tape. */
export type Op<A extends unknown[]> = ((...args: A) => Tensor) & { readonly opName: string };

/** Registry of every op defined, by name: tests iterate it to make sure each op has a gradient test. */
export const opRegistry = new Map<string, OpDef<never[], unknown>>();

/**
 * Defines an op. Tensor arguments passed directly (not inside an options object) are the node's inputs: the
 * edges backward() follows. A tensor that needs a gradient must be passed that way.
 */
export function defineOp<A extends unknown[], S>(def: OpDef<A, S>): Op<A> {
  if (opRegistry.has(def.name)) throw new WgptError(`Op "${def.name}" defined twice`);
  opRegistry.set(def.name, def as unknown as OpDef<never[], unknown>);
  const op = (...args: A): Tensor => {
    for (const a of args) if (a instanceof Tensor) a.assertIntact(def.name);
    const { out, saved } = def.forward(...args);
    const inputs = args.filter((a): a is Tensor => a instanceof Tensor);
    if (gradEnabled && inputs.some((t) => t.requiresGrad)) {
      out.requiresGrad = true;
      out.node = {
        name: def.name,
        inputs,
        output: out,
        backward: (ctx, g) => def.backward(ctx, g, { args, saved, out }),
      };
    }
    return out;
  };
  return Object.assign(op, { opName: def.name });
}

const ctx: BackwardCtx = {
  grad(input: Tensor, opts?: { zeroed?: boolean }): GradTarget | null {
    if (!input.requiresGrad) return null;
    const g = input.ensureGrad();
    if (input.gradReady) return { tensor: g, accumulate: 1 };
    if (opts?.zeroed) {
      input.zeroGrad();
      return { tensor: g, accumulate: 1 };
    }
    // The caller's kernel overwrites every element now; later contributions accumulate.
    input.markGradReady();
    return { tensor: g, accumulate: 0 };
  },
  gradInPlace(input: Tensor, op: string) {
    if (!input.requiresGrad) return null;
    if (input.grad || input.isParam || input.pack) return { ...ctx.grad(input)!, inPlace: false };
    input.adoptGrad(input.view(input.shape));
    input.markGradReady();
    input.overwrittenBy = op;
    if (input.base) input.base.overwrittenBy = op;
    return { tensor: input.grad!, accumulate: 0, inPlace: true };
  },
};

/**
 * Topological order of the nodes that `root` depends on, inputs before outputs: micrograd's recursive build. The
 * recursion is as deep as the longest chain of ops. A d48 GPT-2 tape is one chain of 534 nodes (11 per layer and
 * 6 around them); on Node 20's default stack this function handled chains of about 5,800 (measured), and the
 * runtime tests sort one of 2,000.
 */
export function topoSort(root: Tensor): TapeNode[] {
  const order: TapeNode[] = [];
  const seen = new Set<TapeNode>();
  const visit = (node: TapeNode): void => {
    if (seen.has(node)) return;
    seen.add(node);
    for (const input of node.inputs) if (input.node) visit(input.node);
    order.push(node);
  };
  if (root.node) visit(root.node);
  return order;
}

export interface BackwardOptions {
  /**
   * Called for each tensor without a node (a parameter, an input) that requires grad, once the backward of its
   * last consumer on the tape has been recorded: nothing recorded later adds to its gradient (data-parallel
   * training starts reducing it then).
   */
  onGradFinal?: (leaf: Tensor) => void;
}

/**
 * Backpropagates from `root`. With no `gradient`, root must have one element and its gradient is 1.
 * Nodes are kept (not freed): dispose the graph's tensors with tidy() around forward + backward.
 */
export function backward(root: Tensor, gradient?: Tensor, opts: BackwardOptions = {}): void {
  if (!root.requiresGrad || !root.node) {
    throw new WgptError(`backward(): ${root} does not depend on any tensor that requires grad`);
  }
  const g = root.ensureGrad();
  if (gradient) {
    if (gradient.size !== root.size) throw new WgptError(`backward(): gradient ${gradient} does not match ${root}`);
    root.gpu.copy(gradient.buffer, 0, g.buffer, 0, root.bytes);
  } else {
    if (root.size !== 1) throw new WgptError(`backward() without a gradient needs a one-element root, got ${root}`);
    fill(g, 1); // a kernel, not an upload: an upload would submit everything recorded so far
  }
  root.markGradReady();
  const order = topoSort(root);
  // Per node index, the leaves whose last consumer (in the order backward runs) it is.
  const finals = new Map<number, Tensor[]>();
  if (opts.onGradFinal) {
    const last = new Map<Tensor, number>();
    order.forEach((node, i) => {
      for (const t of node.inputs) if (!t.node && t.requiresGrad && !last.has(t)) last.set(t, i);
    });
    for (const [t, i] of last) finals.set(i, [...(finals.get(i) ?? []), t]);
  }
  for (let i = order.length - 1; i >= 0; i--) {
    const node = order[i]!;
    const out = node.output;
    // An output nobody used for the loss has no gradient: nothing flows back through it.
    if (out.grad && out.gradReady) node.backward(ctx, out.grad);
    for (const t of finals.get(i) ?? []) opts.onGradFinal!(t);
  }
}
