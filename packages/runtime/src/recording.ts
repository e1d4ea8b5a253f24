// A Gpu over a stand-in device that allocates nothing and executes nothing: every buffer is a size, every command a
// no-op. Running a step on it goes through the real code path (ops, pool, autograd, optimizer) and leaves the
// numbers a real run would: dispatches recorded (gpu.dispatchCount) and the pool's bytes (gpu.pool.stats), for
// shapes too large or too slow to execute here (GPT-2 124M at B=8, T=1024 on a CPU). Every value read back is f32 1.0
// (a finite loss and norm, a step applied), so a trainer runs on as if all went well.
import { Gpu } from './gpu.ts';

/** WebGPU's constants, when no WebGPU implementation has defined them yet (values from the specification). */
function ensureConstants(): void {
  const g = globalThis as Record<string, unknown>;
  g.GPUBufferUsage ??= {
    MAP_READ: 0x1,
    MAP_WRITE: 0x2,
    COPY_SRC: 0x4,
    COPY_DST: 0x8,
    INDEX: 0x10,
    VERTEX: 0x20,
    UNIFORM: 0x40,
    STORAGE: 0x80,
    INDIRECT: 0x100,
    QUERY_RESOLVE: 0x200,
  };
  g.GPUMapMode ??= { READ: 0x1, WRITE: 0x2 };
  g.GPUShaderStage ??= { VERTEX: 0x1, FRAGMENT: 0x2, COMPUTE: 0x4 };
}

/** The limits the stand-in reports: an H100/H200 under Dawn (Vulkan) unless overridden. */
export const RECORDING_LIMITS: Record<string, number> = {
  maxBufferSize: 2 ** 32,
  maxStorageBufferBindingSize: 2 ** 32 - 4,
  maxUniformBufferBindingSize: 65536,
  maxStorageBuffersPerShaderStage: 10,
  maxUniformBuffersPerShaderStage: 12,
  maxComputeWorkgroupStorageSize: 32768,
  maxComputeInvocationsPerWorkgroup: 1024,
  maxComputeWorkgroupSizeX: 1024,
  maxComputeWorkgroupSizeY: 1024,
  maxComputeWorkgroupSizeZ: 64,
  maxComputeWorkgroupsPerDimension: 65535,
  maxBindGroups: 4,
  maxBindingsPerBindGroup: 1000,
  minStorageBufferOffsetAlignment: 256,
  minUniformBufferOffsetAlignment: 256,
};

/**
 * A Gpu that records nothing: for counting dispatches and pool bytes of a step by running it (reads give 1.0 in
 * every f32). `software` chooses the kernels a software adapter would get (tile sizes, workgroup sizes).
 */
export function recordingGpu(opts: { limits?: Record<string, number>; software?: boolean } = {}): Gpu {
  ensureConstants();
  const limits = { ...RECORDING_LIMITS, ...opts.limits };
  const noop = () => {};
  const pass = { setPipeline: noop, setBindGroup: noop, dispatchWorkgroups: noop, end: noop };
  const device = {
    limits,
    label: 'recording',
    lost: new Promise(noop),
    queue: { writeBuffer: noop, submit: noop, onSubmittedWorkDone: async () => undefined },
    createBuffer: (d: GPUBufferDescriptor) => ({
      size: d.size,
      usage: d.usage,
      label: d.label ?? '',
      mapState: 'unmapped',
      mapAsync: async () => undefined,
      getMappedRange: (_offset = 0, size = d.size) =>
        new Float32Array(Math.ceil(size / 4)).fill(1).buffer.slice(0, size),
      unmap: noop,
      destroy: noop,
    }),
    createShaderModule: () => ({ getCompilationInfo: async () => ({ messages: [] }) }),
    createBindGroupLayout: () => ({}),
    createPipelineLayout: () => ({}),
    createComputePipeline: () => ({}),
    createBindGroup: () => ({}),
    createCommandEncoder: () => ({
      beginComputePass: () => pass,
      copyBufferToBuffer: noop,
      clearBuffer: noop,
      resolveQuerySet: noop,
      finish: () => ({}),
    }),
    pushErrorScope: noop,
    popErrorScope: async () => null,
    addEventListener: noop,
    destroy: noop,
  };
  return new Gpu(device as unknown as GPUDevice, 'recording (executes nothing)', opts.software ?? false, new Set());
}
