// A kernel = one WGSL file + a spec that says what it binds, which uniforms it reads and which overrides it has.
// The spec is the single source of the bind-group layout and the uniform packing; a test checks every spec
// against its WGSL by reflection (packages/runtime/src/reflect.ts), so the two cannot drift apart.

export type BindingKind = 'storage' | 'read-only-storage' | 'uniform';
export type ScalarType = 'u32' | 'i32' | 'f32';

export interface BindingSpec {
  /** The WGSL variable name at @group(0) @binding(i), i = position in the list. */
  name: string;
  kind: BindingKind;
}

export interface UniformField {
  name: string;
  type: ScalarType;
}

export interface KernelSpec {
  /** snake_case, starting with the op (or family) it serves, e.g. 'layernorm_forward', 'cross_entropy_backward'. */
  name: string;
  /**
   * Which alternative implementation of `name` this is, e.g. 'v1' | 'v2' | 'v3' for matmul (naive, tiled, vec4),
   * all computing the same thing; callers choose between them. 'v1' where there is only one.
   */
  version: string;
  /**
   * Counts changes of meaning to this version's WGSL (1 when absent): bump it so that profiles and bench results
   * recorded before and after name the kernel differently. Not an alternative: the old revision is gone.
   */
  revision?: number;
  /** One line on what this version does differently. */
  description?: string;
  /** The WGSL text (imported from the .wgsl file). */
  source: string;
  /** Path of the WGSL file from the repository root, for error messages. */
  file: string;
  /** group(0) bindings in binding order. At most one binding of kind 'uniform'; its struct is `uniforms`. */
  bindings: readonly BindingSpec[];
  /** Fields of the uniform struct in declaration order: all 4-byte scalars, so packing is position * 4. */
  uniforms?: readonly UniformField[];
  /** Pipeline-overridable constants and their defaults (tile sizes, workgroup size). */
  overrides?: Readonly<Record<string, number>>;
  entryPoint?: string;
}

/** How errors, profiles and pipeline keys name a kernel: name@version, and -rN past the first revision. */
export function kernelId(spec: KernelSpec): string {
  return `${spec.name}@${spec.version}${(spec.revision ?? 1) > 1 ? `-r${spec.revision}` : ''}`;
}

/** Cache key derived mechanically from the spec and the override values, never written by hand. */
export function pipelineKey(spec: KernelSpec, overrides: Readonly<Record<string, number>>): string {
  const keys = Object.keys(overrides).sort();
  return `${kernelId(spec)}(${keys.map((k) => `${k}=${overrides[k]}`).join(',')})`;
}

/** Override values for a dispatch: spec defaults, then the caller's, with unknown names rejected. */
export function resolveOverrides(spec: KernelSpec, given?: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = { ...(spec.overrides ?? {}) };
  if (given) {
    for (const [k, v] of Object.entries(given)) {
      if (!(k in out))
        throw new Error(
          `Kernel ${kernelId(spec)} has no override "${k}" (it has: ${Object.keys(out).join(', ') || 'none'})`,
        );
      out[k] = v;
    }
  }
  return out;
}

/** Packs uniform values in the spec's field order. Missing or extra names are errors. Size rounded to 16 bytes. */
export function packUniforms(spec: KernelSpec, values: Readonly<Record<string, number>>): ArrayBuffer {
  const fields = spec.uniforms ?? [];
  const bytes = Math.max(16, Math.ceil((fields.length * 4) / 16) * 16);
  const buf = new ArrayBuffer(bytes);
  const dv = new DataView(buf);
  fields.forEach((f, i) => {
    const v = values[f.name];
    if (v === undefined || Number.isNaN(v)) throw new Error(`Kernel ${kernelId(spec)}: uniform "${f.name}" not given`);
    if (f.type === 'f32') dv.setFloat32(i * 4, v, true);
    else if (f.type === 'u32') {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff)
        throw new Error(`Kernel ${kernelId(spec)}: uniform ${f.name}=${v} is not a u32`);
      dv.setUint32(i * 4, v, true);
    } else {
      if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff)
        throw new Error(`Kernel ${kernelId(spec)}: uniform ${f.name}=${v} is not an i32`);
      dv.setInt32(i * 4, v, true);
    }
  });
  for (const k of Object.keys(values)) {
    if (!fields.some((f) => f.name === k)) throw new Error(`Kernel ${kernelId(spec)} has no uniform "${k}"`);
  }
  return buf;
}

export function uniformBindingIndex(spec: KernelSpec): number {
  return spec.bindings.findIndex((b) => b.kind === 'uniform');
}
