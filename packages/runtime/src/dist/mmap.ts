// Memory shared between the rank processes of one node: a file on /dev/shm mapped into each of them (mmap with
// MAP_SHARED) and seen as one Float32Array, so ranks copy with TypedArray.set and sum straight out of each
// other's slots. Node has no mmap of its own; koffi (a maintained FFI that ships prebuilt binaries, nothing to
// compile) calls libc's and wraps the address in an ArrayBuffer without a copy. Loaded on first use only: a
// single-rank run, the browser and the GPU bundles never need it.
import { DistError } from './collective.ts';

export interface SharedMapping {
  /** The whole file, as floats. Unusable after unmap(): touching it then would fault. */
  readonly f32: Float32Array;
  unmap(): void;
}

interface Libc {
  view: (ptr: bigint, bytes: number) => ArrayBuffer;
  mmap: (addr: null, len: number, prot: number, flags: number, fd: number, off: number) => bigint;
  munmap: (addr: bigint, len: number) => number;
}

let libc: Promise<Libc> | null = null;

async function loadLibc(): Promise<Libc> {
  let koffi: typeof import('koffi');
  try {
    koffi = (await import('koffi')).default as unknown as typeof import('koffi');
  } catch (e) {
    throw new DistError(
      `the shared-memory backend needs the koffi package to map memory (${(e as Error).message}): run pnpm install`,
    );
  }
  const lib = koffi.load(process.platform === 'darwin' ? 'libSystem.B.dylib' : 'libc.so.6');
  return {
    view: (ptr, bytes) => koffi.view(ptr, bytes),
    mmap: lib.func('void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)'),
    munmap: lib.func('int munmap(void *addr, size_t length)'),
  };
}

const PROT_READ_WRITE = 0x1 | 0x2;
const MAP_SHARED = 0x1; // the same on Linux and macOS
const MAP_FAILED = 2n ** 64n - 1n;

/** Maps `bytes` of the open file `fd` (read and write, shared with every process that maps it). */
export async function mapShared(fd: number, bytes: number, what: string): Promise<SharedMapping> {
  if (bytes % 4 !== 0 || bytes <= 0) throw new DistError(`cannot map ${bytes} bytes of ${what} as floats`);
  libc ??= loadLibc();
  const c = await libc;
  const ptr = c.mmap(null, bytes, PROT_READ_WRITE, MAP_SHARED, fd, 0);
  if (ptr === MAP_FAILED || ptr === 0n) {
    throw new DistError(`mmap of ${bytes} bytes of ${what} failed: is its file system full (df /dev/shm)?`);
  }
  let f32: Float32Array | null = new Float32Array(c.view(ptr, bytes));
  return {
    get f32() {
      if (!f32) throw new DistError(`${what} is no longer mapped`);
      return f32;
    },
    unmap() {
      if (!f32) return;
      f32 = null;
      c.munmap(ptr, bytes);
    },
  };
}
