import { checkSpec, kernelId, opRegistry } from '@wgpt/runtime';
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { allSpecs } from './index.ts';

const root = new URL('..', import.meta.url).pathname;

describe('kernel specs', () => {
  for (const spec of allSpecs) {
    it(`${kernelId(spec)} matches ${spec.file} by reflection`, () => {
      expect(checkSpec(spec)).toEqual([]);
      // The spec's file is the one its source came from.
      expect(readFileSync(join(root, spec.file), 'utf8')).toBe(spec.source);
    });
  }

  it('every .wgsl file under kernels/ belongs to a registered spec', () => {
    const files: string[] = [];
    const walk = (d: string) => {
      for (const f of readdirSync(d)) {
        const p = join(d, f);
        if (f === 'node_modules') continue;
        if (statSync(p).isDirectory()) walk(p);
        else if (p.endsWith('.wgsl')) files.push(p.slice(root.length));
      }
    };
    walk(join(root, 'kernels'));
    const known = new Set(allSpecs.map((s) => s.file));
    expect(files.filter((f) => !known.has(f))).toEqual([]);
  });

  it('each spec is one (name, version): pipeline keys and kernel ids are unique', () => {
    const pairs = allSpecs.map((s) => `${s.name}@${s.version}`);
    expect(new Set(pairs).size).toBe(pairs.length);
    const ids = allSpecs.map(kernelId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('every registered op is exercised by a gradient test file', () => {
    // Each op name must appear in some kernels/**/*.test.ts calling checkOp (the FD gradient check).
    const tests: string[] = [];
    const walk = (d: string) => {
      for (const f of readdirSync(d)) {
        const p = join(d, f);
        if (f === 'node_modules') continue;
        if (statSync(p).isDirectory()) walk(p);
        else if (p.endsWith('.test.ts')) tests.push(readFileSync(p, 'utf8'));
      }
    };
    walk(join(root, 'kernels'));
    const withFd = tests.filter((t) => t.includes('checkOp('));
    const ops = [...opRegistry.keys()];
    expect(ops.length).toBeGreaterThan(0);
    // Ops are registered in snake_case and exported in camelCase (linear_gelu → linearGelu).
    const exportName = (op: string) => op.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    for (const op of ops) expect(withFd.some((t) => t.includes(`${exportName(op)}(`)), `op ${op} has no checkOp test`).toBe(true);
  });
});
