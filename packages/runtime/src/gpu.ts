// The runtime's handle on one device: buffer pool, pipeline cache, and the pending command encoder that every
// dispatch of a step is recorded into (one encoder, many dispatches, one submit). Reading back is explicit.
//
// Errors: each pipeline creation and each dispatch that makes a bind group runs inside a validation error scope whose
// result is checked at the next sync point (read, sync, flush with check); the exception names the kernel, its file
// and the shapes.
// Device loss is recorded and turned into a DeviceLostError on every later call, never a silent hang.
//
// Recording costs: a training step records the same dispatches over the same pooled buffers every step, so bind
// groups are cached by pipeline and buffers (the uniforms sit at a dynamic offset of one arena buffer, so they do not
// enter the key); a cached bind group was validated when it was made, and a dispatch that reuses one needs no error
// scope of its own (what WebGPU checks when encoding a pass shows at submit either way). Dispatches share one
// compute pass until a copy, a clear or a submit, or while kernels are timed (one pass each for its timestamps).
import { BufferPool, BufferSlice, bufferRange } from './buffers.ts';
import { openDevice, type OpenOptions } from './device.ts';
import { DeviceLostError, GpuValidationError, KernelCompileError } from './errors.ts';
import {
  kernelId,
  packUniforms,
  pipelineKey,
  resolveOverrides,
  uniformBindingIndex,
  type KernelSpec,
} from './kernel.ts';
import { Profiler, WallProfiler, type KernelTime } from './profiler.ts';

export interface DispatchArgs {
  /**
   * Buffers by binding name (the spec's names). The uniform binding is filled from `uniforms`. A BufferSlice binds
   * its range only (its offset must be a multiple of minStorageBufferOffsetAlignment).
   */
  buffers: Readonly<Record<string, GPUBuffer>>;
  uniforms?: Readonly<Record<string, number>>;
  overrides?: Readonly<Record<string, number>>;
  workgroups: readonly [number, number?, number?];
  /** Shapes or other context for error messages, e.g. 'M=3 K=5 N=7'. */
  context?: string;
}

interface Pending {
  promise: Promise<GPUError | null>;
  what: () => string;
  /** Called when this check failed: a bad pipeline leaves the cache so its next use reports the error again. */
  onError?: () => void;
}

const UNIFORM_ALIGN = 256;
const ARENA_BYTES = 1 << 20;
/** Cached bind groups kept at most; past it the cache starts again (steps reuse a few hundred). */
const MAX_BIND_GROUPS = 4096;

export class Gpu {
  readonly pool: BufferPool;
  readonly limits: GPUSupportedLimits;
  /** Timestamp queries, where the adapter has them. */
  readonly profiler: Profiler | null;
  /** Wall time per dispatch: the fallback of profile() (see profiler.ts). */
  readonly wallProfiler = new WallProfiler();
  /** Check every dispatch with an error scope (default). Off only for benchmarks of proven kernels. */
  checkDispatches = true;
  /** Fill every new tensor with a NaN sentinel (tests): an element a kernel never writes then fails loudly. */
  poisonNew = false;
  dispatchCount = 0;
  submitCount = 0;
  /** Host reads (read(): flush, wait for the queue, map): what a step should need once, at its end. */
  readCount = 0;

  private pipelines = new Map<
    string,
    {
      pipeline: GPUComputePipeline;
      layout: GPUBindGroupLayout;
      spec: KernelSpec;
      module: GPUShaderModule;
      creation: Pending;
      /** Numbers the pipeline in bind-group keys. */
      id: number;
    }
  >();
  /** Bind groups by pipeline id and bound ranges; see the top of this file. */
  private bindGroups = new Map<string, GPUBindGroup>();
  private bufferIds = new WeakMap<GPUBuffer, number>();
  private nextId = 1;
  /** The compute pass that untimed dispatches share, open until the next copy, clear or submit. */
  private pass: GPUComputePassEncoder | null = null;
  private sourceById = new Map<string, KernelSpec>();
  private encoder: GPUCommandEncoder | null = null;
  /** With the wall profiler on: each dispatch's own command buffer, submitted one at a time at the next read. */
  private serial: { label: string; commands: GPUCommandBuffer }[] = [];
  private pending: Pending[] = [];
  private arena: GPUBuffer;
  private arenaData = new Uint8Array(ARENA_BYTES);
  private arenaUsed = 0;
  private lostReason: string | null = null;
  private lostRejection: Promise<never>;

  static async open(opts: OpenOptions = {}): Promise<Gpu> {
    const o = await openDevice(opts);
    return new Gpu(o.device, o.adapterName, o.software, o.features, o.adapter.info);
  }

  /**
   * Opens n independent devices for multi-adapter work. With `adapters`, device i is on adapters[i % length];
   * otherwise all on the default adapter (one adapter gives one device, so each is requested afresh).
   */
  static async openMany(n: number, opts: OpenOptions & { adapters?: (string | number)[] } = {}): Promise<Gpu[]> {
    const out: Gpu[] = [];
    for (let i = 0; i < n; i++)
      out.push(
        await Gpu.open({ ...opts, adapter: opts.adapters ? opts.adapters[i % opts.adapters.length] : opts.adapter }),
      );
    return out;
  }

  constructor(
    readonly device: GPUDevice,
    readonly adapterName: string,
    readonly software: boolean,
    readonly features: Set<string>,
    readonly adapterInfo?: GPUAdapterInfo,
  ) {
    this.limits = device.limits;
    this.pool = new BufferPool(device, device.limits, (promise, what) => this.pending.push({ promise, what }));
    this.arena = device.createBuffer({
      size: ARENA_BYTES,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      label: 'uniform arena',
    });
    this.profiler = features.has('timestamp-query') ? new Profiler(device) : null;
    this.lostRejection = device.lost.then((info) => {
      if (!(info.reason === 'destroyed' && this.destroyed)) {
        this.lostReason = `${info.reason}: ${info.message}`;
        console.error(`[wgpt] WebGPU device on ${this.adapterName} lost (${this.lostReason})`);
      }
      throw new DeviceLostError(`WebGPU device on ${this.adapterName} lost (${info.reason}: ${info.message})`);
    });
    this.lostRejection.catch(() => {}); // observed where it matters: in read()
    device.addEventListener?.('uncapturederror', (ev) => {
      const err = (ev as GPUUncapturedErrorEvent).error;
      this.uncaptured.push(err.message);
    });
  }

  private destroyed = false;
  private uncaptured: string[] = [];

  get lost(): boolean {
    return this.lostReason !== null;
  }

  private assertAlive(): void {
    if (this.lostReason)
      throw new DeviceLostError(
        `WebGPU device on ${this.adapterName} was lost (${this.lostReason}); restart the process`,
      );
    if (this.destroyed) throw new DeviceLostError('This Gpu was destroyed');
  }

  /** Creates (or returns the cached) pipeline for a spec and override values. */
  pipeline(spec: KernelSpec, overrides?: Readonly<Record<string, number>>) {
    this.assertAlive();
    const ov = resolveOverrides(spec, overrides);
    const key = pipelineKey(spec, ov);
    const hit = this.pipelines.get(key);
    if (hit) return hit;
    const id = kernelId(spec);
    const seen = this.sourceById.get(id);
    if (seen !== undefined && seen.source !== spec.source) {
      throw new KernelCompileError(
        `Two different WGSL sources claim kernel ${id} (${seen.file} and ${spec.file}): ` +
          'give them different names or versions',
      );
    }
    this.sourceById.set(id, spec);

    const entries: GPUBindGroupLayoutEntry[] = spec.bindings.map((b, i) => ({
      binding: i,
      visibility: GPUShaderStage.COMPUTE,
      // The uniforms: a range of the arena at a dynamic offset, so that one bind group serves every dispatch.
      buffer: { type: b.kind, hasDynamicOffset: b.kind === 'uniform' },
    }));
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code: spec.source, label: `${spec.file} (${id})` });
    const layout = this.device.createBindGroupLayout({ entries, label: id });
    const pipeline = this.device.createComputePipeline({
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: spec.entryPoint ?? 'main', constants: ov },
      label: key,
    });
    const creation: Pending = {
      promise: this.device.popErrorScope(),
      what: () => `compiling ${key} from ${spec.file}`,
      onError: () => this.pipelines.delete(key),
    };
    this.pending.push(creation);
    const entry = { pipeline, layout, spec, module, creation, id: this.nextId++ };
    this.pipelines.set(key, entry);
    return entry;
  }

  /** Compiles now and throws a KernelCompileError naming the file, line and message if the WGSL is bad. */
  async compile(spec: KernelSpec, overrides?: Readonly<Record<string, number>>): Promise<void> {
    const { module, creation } = this.pipeline(spec, overrides);
    const info = await module.getCompilationInfo();
    const errors = info.messages.filter((m) => m.type === 'error');
    if (errors.length) {
      this.pipelines.delete(pipelineKey(spec, resolveOverrides(spec, overrides)));
      // Reported here with file and line; the creation's own error scope need not report it again.
      this.pending = this.pending.filter((p) => p !== creation);
      throw new KernelCompileError(
        `WGSL of kernel ${kernelId(spec)} does not compile:\n` +
          errors.map((m) => `  ${spec.file}:${m.lineNum}:${m.linePos}: ${m.message}`).join('\n'),
      );
    }
    await this.check();
  }

  private getEncoder(): GPUCommandEncoder {
    if (!this.encoder) this.encoder = this.device.createCommandEncoder({ label: 'wgpt step' });
    return this.encoder;
  }

  /** The encoder for a command outside compute passes (copy, clear, query resolve, finish): ends the open pass. */
  private commandEncoder(): GPUCommandEncoder {
    this.endPass();
    return this.getEncoder();
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = null;
  }

  private bufferId(b: GPUBuffer): number {
    let id = this.bufferIds.get(b);
    if (id === undefined) this.bufferIds.set(b, (id = this.nextId++));
    return id;
  }

  /** Records one compute dispatch into the pending encoder. */
  dispatch(spec: KernelSpec, args: DispatchArgs): void {
    this.assertAlive();
    const { pipeline, layout, id } = this.pipeline(spec, args.overrides);
    const [x, y = 1, z = 1] = args.workgroups;
    const maxWg = this.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxWg || y > maxWg || z > maxWg) {
      throw new GpuValidationError(
        `Kernel ${kernelId(spec)}: dispatch (${x}, ${y}, ${z}) exceeds maxComputeWorkgroupsPerDimension ${maxWg}` +
          (args.context ? ` [${args.context}]` : ''),
      );
    }
    // Empty problem: nothing to do (a zero dispatch is legal but pointless).
    if (x === 0 || y === 0 || z === 0) return;
    const uIndex = uniformBindingIndex(spec);
    if ((uIndex >= 0 && this.arenaUsed + UNIFORM_ALIGN > ARENA_BYTES) || this.profiler?.full) this.flush();
    // The bound ranges, checked, and the bind group's key: the pipeline, then each binding's buffer id and range.
    const ranges: { buffer: GPUBuffer; offset?: number; size?: number }[] = [];
    let key = `${id}`;
    let uniformOffset = 0;
    spec.bindings.forEach((b, i) => {
      if (i === uIndex) {
        const data = new Uint8Array(packUniforms(spec, args.uniforms ?? {}));
        uniformOffset = this.arenaUsed;
        this.arenaData.set(data, uniformOffset);
        this.arenaUsed += Math.ceil(data.byteLength / UNIFORM_ALIGN) * UNIFORM_ALIGN;
        ranges.push({ buffer: this.arena, offset: 0, size: data.byteLength });
        key += `|u${data.byteLength}`;
        return;
      }
      const buffer = args.buffers[b.name];
      if (!buffer)
        throw new GpuValidationError(
          `Kernel ${kernelId(spec)}: no buffer given for binding "${b.name}"` +
            (args.context ? ` [${args.context}]` : ''),
        );
      if (!(buffer instanceof BufferSlice)) {
        ranges.push({ buffer });
        key += `|${this.bufferId(buffer)}`;
        return;
      }
      const align = this.limits.minStorageBufferOffsetAlignment;
      if (buffer.offset % align)
        throw new GpuValidationError(
          `Kernel ${kernelId(spec)}: binding "${b.name}" starts at byte ${buffer.offset} of its buffer, not a ` +
            `multiple of minStorageBufferOffsetAlignment ${align}` +
            (args.context ? ` [${args.context}]` : ''),
        );
      ranges.push({ buffer: buffer.root, offset: buffer.offset, size: buffer.size });
      key += `|${this.bufferId(buffer.root)}@${buffer.offset}+${buffer.size}`;
    });
    const what = () =>
      `dispatching ${kernelId(spec)} (${spec.file}) workgroups (${x}, ${y}, ${z})` +
      (args.context ? ` [${args.context}]` : '');
    let bindGroup = this.bindGroups.get(key);
    if (!bindGroup) {
      if (this.bindGroups.size >= MAX_BIND_GROUPS) this.bindGroups.clear();
      const check = this.checkDispatches;
      if (check) this.device.pushErrorScope('validation');
      bindGroup = this.device.createBindGroup({
        layout,
        entries: ranges.map((r, i) => ({ binding: i, resource: r })),
      });
      this.bindGroups.set(key, bindGroup);
      // A rejected bind group leaves the cache, so its next use reports the error again.
      if (check)
        this.pending.push({ promise: this.device.popErrorScope(), what, onError: () => this.bindGroups.delete(key) });
    }
    // Timed kernels get a pass each (its timestamps); the others share the open one.
    const timestampWrites = this.profiler?.passWrites(kernelId(spec));
    const own = !!timestampWrites || this.wallProfiler.enabled;
    if (own) this.endPass();
    const pass = own
      ? this.getEncoder().beginComputePass({ timestampWrites })
      : (this.pass ??= this.getEncoder().beginComputePass());
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup, uIndex >= 0 ? [uniformOffset] : []);
    pass.dispatchWorkgroups(x, y, z);
    if (own) pass.end();
    if (this.wallProfiler.enabled) {
      this.serial.push({ label: kernelId(spec), commands: this.encoder!.finish() });
      this.encoder = null;
    }
    this.dispatchCount++;
  }

  /** Records a buffer-to-buffer copy into the pending encoder. */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.assertAlive();
    const s = within(src, srcOffset, bytes, 'copy from');
    const d = within(dst, dstOffset, bytes, 'copy to');
    if (s.buffer === d.buffer)
      throw new GpuValidationError(
        `copy from "${src.label}" to "${dst.label}": both lie in one buffer, and WebGPU copies only between two`,
      );
    this.commandEncoder().copyBufferToBuffer(s.buffer, s.offset, d.buffer, d.offset, bytes);
  }

  /** Records a zero fill into the pending encoder (to the end of `buf` without `bytes`). */
  clear(buf: GPUBuffer, offset = 0, bytes?: number): void {
    this.assertAlive();
    const r = within(buf, offset, bytes ?? buf.size - offset, 'clear of');
    this.commandEncoder().clearBuffer(r.buffer, r.offset, bytes ?? buf.size - offset);
  }

  /** Submits the pending encoder (if any). Uniforms for its dispatches are uploaded just before, in queue order. */
  flush(): void {
    this.assertAlive();
    if (!this.encoder && !this.serial.length) return;
    this.endPass();
    if (this.arenaUsed) this.device.queue.writeBuffer(this.arena, 0, this.arenaData, 0, this.arenaUsed);
    const commands = this.serial.splice(0).map((s) => s.commands);
    if (this.encoder) {
      this.profiler?.resolve(this.encoder);
      commands.push(this.encoder.finish());
    }
    this.device.queue.submit(commands);
    this.submitCount++;
    this.encoder = null;
    this.arenaUsed = 0;
  }

  /** Submits the dispatches held for the wall profiler one at a time, timing each from submit to done. */
  private async flushTimed(): Promise<void> {
    if (!this.serial.length) return;
    if (this.arenaUsed) this.device.queue.writeBuffer(this.arena, 0, this.arenaData, 0, this.arenaUsed);
    this.arenaUsed = 0;
    await this.device.queue.onSubmittedWorkDone();
    for (const s of this.serial.splice(0)) {
      const t0 = performance.now();
      this.device.queue.submit([s.commands]);
      this.submitCount++;
      await this.device.queue.onSubmittedWorkDone();
      this.wallProfiler.record(s.label, performance.now() - t0);
    }
  }

  /**
   * Turns kernel timing on or off: timestamp queries where the adapter has them, else wall time per dispatch
   * (`wall` forces that; dispatches are then timed at the next read or sync, and an upload in between submits
   * them untimed). Returns the method in use. Totals add up over every period it was on; read them with
   * profileTimes().
   */
  setProfiling(on: boolean, opts: { wall?: boolean } = {}): 'timestamps' | 'wall' {
    const wall = opts.wall || !this.profiler;
    if (this.profiler) this.profiler.enabled = on && !wall;
    if (this.wallProfiler.enabled && !on) this.flush();
    this.wallProfiler.enabled = on && wall;
    return wall ? 'wall' : 'timestamps';
  }

  /** Kernel totals timed so far (both methods), slowest first; waits for the work recorded so far. */
  async profileTimes(): Promise<KernelTime[]> {
    await this.sync();
    const all = [...(this.profiler ? await this.profiler.collect() : []), ...this.wallProfiler.collect()];
    return all.sort((a, b) => b.totalMs - a.totalMs);
  }

  resetProfile(): void {
    this.profiler?.reset();
    this.wallProfiler.reset();
  }

  /**
   * Uploads host data. Flushes first: queue.writeBuffer runs before any not-yet-submitted commands, so a pooled
   * buffer written now could otherwise change under a dispatch recorded earlier.
   */
  write(buf: GPUBuffer, data: ArrayBufferView, offset = 0): void {
    const r = within(buf, offset, data.byteLength, 'write to');
    this.flush();
    this.device.queue.writeBuffer(r.buffer, r.offset, data.buffer, data.byteOffset, data.byteLength);
  }

  /** Flushes, waits for the queue, and throws the first validation error of anything recorded since the last check. */
  async check(): Promise<void> {
    await this.flushTimed();
    this.flush();
    const pending = this.pending;
    this.pending = [];
    const results = await Promise.all(pending.map((p) => p.promise));
    let first: GpuValidationError | null = null;
    for (let i = 0; i < results.length; i++) {
      const err = results[i];
      if (!err) continue;
      pending[i]!.onError?.();
      first ??= new GpuValidationError(`WebGPU rejected ${pending[i]!.what()}: ${err.message}`);
    }
    if (first) {
      this.uncaptured.length = 0; // follow-on errors of the same cause
      throw first;
    }
    if (this.uncaptured.length) {
      const msgs = this.uncaptured.splice(0);
      throw new GpuValidationError(`WebGPU reported errors outside any kernel: ${msgs.join('; ')}`);
    }
    this.assertAlive();
  }

  /** Waits until the GPU has finished everything submitted, then checks errors. */
  async sync(): Promise<void> {
    await this.check();
    await this.device.queue.onSubmittedWorkDone();
    this.assertAlive();
  }

  /** Copies `bytes` from a buffer back to the host. */
  async read(buf: GPUBuffer, bytes: number, offset = 0): Promise<ArrayBuffer> {
    return this.readback(buf, bytes, offset, (mapped) => mapped.slice(0, bytes));
  }

  /**
   * Copies a buffer's bytes from `offset` back into `dst` (its byteLength of them), straight from the mapped staging
   * buffer: no intermediate array (read() makes one). For host memory the caller already has, e.g. shared memory.
   */
  async readInto(buf: GPUBuffer, dst: ArrayBufferView, offset = 0): Promise<void> {
    const bytes = dst.byteLength;
    if (!bytes) return;
    await this.readback(buf, bytes, offset, (mapped) => {
      new Uint8Array(dst.buffer, dst.byteOffset, bytes).set(new Uint8Array(mapped, 0, bytes));
    });
  }

  private async readback<T>(buf: GPUBuffer, bytes: number, offset: number, take: (mapped: ArrayBuffer) => T) {
    this.assertAlive();
    const padded = Math.ceil(bytes / 4) * 4;
    const r = within(buf, offset, padded, 'read of');
    this.readCount++;
    const staging = this.pool.acquire(bytes, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, 'readback');
    try {
      this.commandEncoder().copyBufferToBuffer(r.buffer, r.offset, staging, 0, padded);
      await this.check();
      await Promise.race([staging.mapAsync(GPUMapMode.READ, 0, padded), this.lostRejection]);
      const out = take(staging.getMappedRange(0, padded));
      staging.unmap();
      return out;
    } finally {
      this.pool.release(staging);
    }
  }

  describe(): string {
    const i = this.adapterInfo;
    const parts = [this.adapterName];
    if (i?.vendor) parts.push(`vendor ${i.vendor}`);
    if (i?.architecture) parts.push(`arch ${i.architecture}`);
    if (this.software) parts.push('software');
    return parts.join(', ');
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.pool.destroy();
    this.arena.destroy();
    this.profiler?.destroy();
    this.device.destroy();
  }
}

/** The real buffer and offset for `bytes` at `offset` of `buf` (a slice adds its own offset), checked to fit. */
function within(buf: GPUBuffer, offset: number, bytes: number, what: string): { buffer: GPUBuffer; offset: number } {
  const r = bufferRange(buf);
  if (offset < 0 || bytes < 0 || offset + bytes > r.size)
    throw new GpuValidationError(
      `${what} "${buf.label}": bytes [${offset}, ${offset + bytes}) do not lie in its ${r.size} bytes`,
    );
  return { buffer: r.buffer, offset: r.offset + offset };
}
