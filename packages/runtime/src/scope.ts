// Which tidy() scope a new tensor joins. tidy() runs synchronously, so a stack of scopes is exact for it; tidyAsync()
// spans awaits, during which other async tasks run and create tensors of their own. In Node the innermost scope is
// carried by AsyncLocalStorage: each task sees the scope it entered, whatever runs in between. A browser has no
// such context (AsyncContext is still a proposal), so there one stack is shared by all tasks, and the rule is: one
// tidyAsync() at a time, no nesting. Starting a second while one is pending throws; tensors that other tasks create
// while one is pending (outside any tidy of their own) join its scope and are disposed with it.
import { WgptError } from './errors.ts';
import type { Tensor } from './tensor.ts';

export type Scope = Set<Tensor>;

export interface ScopeTracker {
  /** 'async-context': per-task scopes (Node); 'stack': one shared stack with the one-tidyAsync rule. */
  readonly kind: 'async-context' | 'stack';
  /** The innermost scope of the running task, if any. */
  current(): Scope | undefined;
  /** Runs fn with `scope` innermost. */
  run<R>(scope: Scope, fn: () => R): R;
  /** Runs the async fn with `scope` innermost until its promise settles. */
  runAsync<R>(scope: Scope, fn: () => Promise<R>): Promise<R>;
}

/** The part of node:async_hooks' AsyncLocalStorage used here. */
export interface ContextStorage<T> {
  getStore(): T | undefined;
  run<R>(store: T, fn: () => R): R;
}

export function contextScopeTracker(storage: ContextStorage<Scope>): ScopeTracker {
  return {
    kind: 'async-context',
    current: () => storage.getStore(),
    run: (scope, fn) => storage.run(scope, fn),
    runAsync: (scope, fn) => storage.run(scope, fn),
  };
}

export function stackScopeTracker(): ScopeTracker {
  const stack: Scope[] = [];
  let pendingAsync = false;
  return {
    kind: 'stack',
    current: () => stack[stack.length - 1],
    run(scope, fn) {
      stack.push(scope);
      try {
        return fn();
      } finally {
        stack.pop();
      }
    },
    async runAsync(scope, fn) {
      if (pendingAsync) {
        throw new WgptError(
          'tidyAsync() started while another tidyAsync() is pending: without AsyncLocalStorage (in a browser) ' +
            'async scopes share one stack, so await each tidyAsync() before starting the next and do not nest them',
        );
      }
      pendingAsync = true;
      stack.push(scope);
      try {
        return await fn();
      } finally {
        pendingAsync = false;
        stack.splice(stack.lastIndexOf(scope), 1);
      }
    },
  };
}

/** AsyncLocalStorage where the platform has it (Node >= 20.16), else the shared stack. */
function defaultTracker(): ScopeTracker {
  const p = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const hooks = p?.getBuiltinModule?.('node:async_hooks') as
    | { AsyncLocalStorage: new () => ContextStorage<Scope> }
    | undefined;
  return hooks ? contextScopeTracker(new hooks.AsyncLocalStorage()) : stackScopeTracker();
}

export const scopes: ScopeTracker = defaultTracker();
