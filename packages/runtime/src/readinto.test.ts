// Gpu.readInto: a buffer's bytes from an offset straight into caller memory, exactly its view and nothing around it.
import { expect, it } from 'vitest';
import { testGpu } from './testing.ts';

it('reads the view length from the offset into the view only: odd lengths, offsets, guard bytes kept', async () => {
  const gpu = await testGpu();
  const src = new Uint8Array(64).map((_, i) => (i * 37 + 11) & 255);
  const buf = gpu.pool.acquire(64, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, 'src');
  try {
    gpu.write(buf, src);
    for (const [offset, len] of [
      [0, 64],
      [4, 7],
      [8, 1],
      [12, 40],
    ] as const) {
      const host = new Uint8Array(len + 6).fill(0xee); // 3 guard bytes either side of the view
      await gpu.readInto(buf, host.subarray(3, 3 + len), offset);
      expect([...host.subarray(3, 3 + len)], `offset ${offset}, ${len} bytes`).toEqual([
        ...src.subarray(offset, offset + len),
      ]);
      expect([...host.subarray(0, 3), ...host.subarray(3 + len)]).toEqual(Array(6).fill(0xee));
    }
    // And read() still returns the same bytes as a fresh array.
    expect([...new Uint8Array(await gpu.read(buf, 7, 4))]).toEqual([...src.subarray(4, 11)]);
  } finally {
    gpu.pool.release(buf);
  }
});
