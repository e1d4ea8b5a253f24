// Errors a user can act on: what failed, with which input, and what to do.

import { WgptError } from '@wgpt/base/errors';

// The user-error base class lives in @wgpt/base so that packages without a GPU (tokenizer, data) share it;
// the errors entry point keeps commander out of browser bundles.
export { WgptError, UsageError } from '@wgpt/base/errors';

/** No adapter could be opened: the message says what to install or which adapters exist. */
export class NoAdapterError extends WgptError {
  override name = 'NoAdapterError';
}

/** A WGSL module failed to compile or a pipeline failed to build: names the kernel, file, line and message. */
export class KernelCompileError extends WgptError {
  override name = 'KernelCompileError';
}

/** A dispatch, copy or allocation was rejected by WebGPU validation or ran out of memory. */
export class GpuValidationError extends WgptError {
  override name = 'GpuValidationError';
}

/** The device was lost (driver reset, destroyed, out of memory on some drivers). Every later call throws this. */
export class DeviceLostError extends WgptError {
  override name = 'DeviceLostError';
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}
