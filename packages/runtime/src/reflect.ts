// Checks a kernel spec against its WGSL by reflection: every binding's index, name and kind, the uniform
// struct's fields (names, types, offsets), the overrides and the entry point. Used by the spec tests.
import { WgslParser, WgslReflect, type Override } from 'wgsl_reflect/wgsl_reflect.module.js';
import { kernelId, type KernelSpec } from './kernel.ts';

/** Returns a list of mismatches (empty when the spec matches the WGSL). */
export function checkSpec(spec: KernelSpec): string[] {
  const problems: string[] = [];
  const where = `${kernelId(spec)} (${spec.file})`;
  let r: WgslReflect;
  try {
    r = new WgslReflect(spec.source);
  } catch (e) {
    return [`${where}: WGSL does not parse: ${(e as Error).message}`];
  }
  const groups = r.getBindGroups();
  if (groups.length > 1) problems.push(`${where}: uses bind groups beyond group(0)`);
  const wgsl = groups[0] ?? [];
  const byIndex = new Map<number, (typeof wgsl)[number]>();
  for (const b of wgsl) if (b) byIndex.set(b.binding, b);
  spec.bindings.forEach((b, i) => {
    const w = byIndex.get(i);
    if (!w) return void problems.push(`${where}: spec binding ${i} "${b.name}" is not declared in the WGSL`);
    if (w.name !== b.name) problems.push(`${where}: binding ${i} is "${w.name}" in WGSL, "${b.name}" in the spec`);
    const kind =
      w.resourceType === 0
        ? 'uniform'
        : w.resourceType === 1
          ? w.access === 'read'
            ? 'read-only-storage'
            : 'storage'
          : `resourceType ${w.resourceType}`;
    if (kind !== b.kind) problems.push(`${where}: binding ${i} "${b.name}" is ${kind} in WGSL, ${b.kind} in the spec`);
    if (b.kind === 'uniform') {
      const members =
        (w.type as { members?: { name: string; type: { name: string }; offset: number }[] }).members ?? [];
      const fields = spec.uniforms ?? [];
      if (members.length !== fields.length)
        problems.push(`${where}: uniform struct has ${members.length} fields in WGSL, ${fields.length} in the spec`);
      fields.forEach((f, j) => {
        const m = members[j];
        if (!m) return;
        if (m.name !== f.name || m.type.name !== f.type || m.offset !== j * 4)
          problems.push(
            `${where}: uniform field ${j} is ${m.name}: ${m.type.name} @${m.offset} in WGSL, ` +
              `${f.name}: ${f.type} @${j * 4} in the spec`,
          );
      });
    }
  });
  for (const w of byIndex.values())
    if (w.binding >= spec.bindings.length)
      problems.push(`${where}: WGSL binding ${w.binding} "${w.name}" is missing from the spec`);
  if (spec.uniforms?.length && !spec.bindings.some((b) => b.kind === 'uniform'))
    problems.push(`${where}: spec lists uniforms but no uniform binding`);
  const wOverrides = new Set(r.overrides.map((o) => o.name));
  const given = spec.overrides ?? {};
  // An override initialised from others (NY = BR / R) is derived: the host neither sets nor lists it.
  const derived = new Set(
    new WgslParser()
      .parse(spec.source)
      .filter((n): n is Override => n.astNodeType === 'override')
      .filter((o) => o.value && o.value.astNodeType !== 'literalExpr')
      .map((o) => o.name),
  );
  for (const k of Object.keys(given)) {
    if (!wOverrides.has(k)) problems.push(`${where}: override "${k}" is not declared in the WGSL`);
    else if (derived.has(k))
      problems.push(`${where}: override "${k}" is derived from others in the WGSL; the spec must not set it`);
  }
  for (const k of wOverrides) {
    if (!(k in given) && !derived.has(k)) problems.push(`${where}: WGSL override "${k}" has no default in the spec`);
  }
  const entry = spec.entryPoint ?? 'main';
  if (!r.entry.compute.some((e) => e.name === entry)) problems.push(`${where}: no @compute entry point "${entry}"`);
  return problems;
}
