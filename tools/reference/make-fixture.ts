// Writes the GPT-2 cross-check fixture: a tiny model in llm.c's format (GPT-2 init), a batch of tokens, and the
// PyTorch reference's debug state for it (tools/reference/gpt2_reference.py, Debian's python3-torch).
//   node scripts/run-ts.mjs tools/reference/make-fixture.ts [outDir]
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initParams, makeConfig, writeLlmcModel } from '@wgpt/gpt2';

export const FIXTURE = {
  config: makeConfig({ maxT: 16, V: 61, L: 2, NH: 2, C: 16 }),
  B: 2,
  T: 8,
  seed: 7,
  steps: 10,
  lr: 1e-3,
  /** B·(T+1) ids: row b's inputs are its first T, its targets its last T. */
  tokens: Array.from({ length: 2 * 9 }, (_, i) => (i * 7 + 3) % 61),
};

export function referenceState(modelPath: string, out: string): string {
  const f = FIXTURE;
  return execFileSync(
    '/usr/bin/python3',
    [
      'tools/reference/gpt2_reference.py',
      '--model',
      modelPath,
      '--tokens',
      f.tokens.join(','),
      '--B',
      String(f.B),
      '--T',
      String(f.T),
      '--steps',
      String(f.steps),
      '--lr',
      String(f.lr),
      '--out',
      out,
    ],
    { encoding: 'utf8' },
  );
}

if (process.argv[1]?.endsWith('make-fixture.ts')) {
  const dir = process.argv[2] ?? 'tests/fixtures/gpt2-tiny';
  mkdirSync(dir, { recursive: true });
  writeLlmcModel(join(dir, 'model.bin'), { config: FIXTURE.config, params: initParams(FIXTURE.config, FIXTURE.seed) });
  writeFileSync(join(dir, 'tokens.json'), JSON.stringify(FIXTURE.tokens) + '\n');
  process.stdout.write(referenceState(join(dir, 'model.bin'), join(dir, 'state.safetensors')));
}
