// Stats reports: per-unit stats merged stage by stage, and the readable table.
import fs from 'node:fs';
import path from 'node:path';
import { pad } from './outputs.ts';
import { mergeStats, type StageStats } from './types.ts';

/** Merges per-unit stats into one list, stage by stage, in pipeline order. */
export function collectStats(out: string, units: number): StageStats[] {
  const merged = new Map<string, StageStats>();
  for (const step of ['process', 'tokenize']) {
    for (let u = 0; u < units; u++) {
      const f = path.join(out, 'stats', step, `${pad(u)}.json`);
      if (!fs.existsSync(f)) continue;
      const { stats } = JSON.parse(fs.readFileSync(f, 'utf8')) as { stats: (StageStats & Record<string, unknown>)[] };
      for (const s of stats) {
        const m = merged.get(s.name);
        if (!m) { merged.set(s.name, JSON.parse(JSON.stringify(s))); continue; }
        mergeStats(m, s);
        for (const extra of ['replaced', 'tokens'] as const) {
          const a = (m as unknown as Record<string, unknown>)[extra], b = s[extra];
          if (a && b && typeof a === 'object') sumInto(a as Record<string, unknown>, b as Record<string, unknown>);
        }
      }
    }
  }
  return [...merged.values()];
}

function sumInto(a: Record<string, unknown>, b: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(b)) {
    if (typeof v === 'number') a[k] = ((a[k] as number) ?? 0) + v;
    else if (v && typeof v === 'object') {
      a[k] ??= {};
      sumInto(a[k] as Record<string, unknown>, v as Record<string, unknown>);
    }
  }
}

/** The readable stats table: one row per stage, then removal reasons. */
export function formatStatsTable(stages: StageStats[]): string {
  const rows: string[][] = [['stage', 'in', 'kept', 'removed', 'docs/s', 'MB/s', 'removed by']];
  for (const s of stages) {
    const rem = Object.entries(s.removed).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ');
    const rate = s.seconds > 0 ? (s.in / s.seconds).toFixed(0) : '-';
    const mbs = s.seconds > 0 ? (s.bytes / 1e6 / s.seconds).toFixed(1) : '-';
    rows.push([s.name, String(s.in), String(s.kept), String(s.in - s.kept), rate, mbs, rem]);
  }
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r, ri) => {
    const cell = (c: string, i: number) => (i === 0 || i === r.length - 1 ? c.padEnd(w[i]) : c.padStart(w[i]));
    const line = r.map(cell).join('  ').trimEnd();
    return ri === 0 ? `${line}\n${'-'.repeat(Math.min(line.length, 100))}` : line;
  }).join('\n');
}
