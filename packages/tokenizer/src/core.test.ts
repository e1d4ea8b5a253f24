import { readFileSync } from 'node:fs';
import { build } from 'esbuild';
import { expect, it } from 'vitest';
import { BpeEncoding, parseRankBytes } from './core.ts';
import { getEncoding, rankFilePath } from './index.ts';
import { proseText } from './testing/corpus.ts';

it('core.ts bundles for the browser (no Node APIs)', async () => {
  const r = await build({
    entryPoints: [new URL('./core.ts', import.meta.url).pathname],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    logLevel: 'silent',
  });
  expect(r.errors).toEqual([]);
  expect(r.outputFiles[0].text).not.toMatch(/from "node:|require\("(node:)?(fs|crypto|path|module)"\)/);
});

it('an encoding built from fetched rank bytes equals getEncoding', () => {
  const tokens = parseRankBytes(readFileSync(rankFilePath('cl100k_base')), 'cl100k_base.tiktoken');
  const enc = new BpeEncoding({
    name: 'cl100k (browser)',
    pattern: 'gpt4',
    tokens,
    specialTokens: getEncoding('cl100k_base').specialTokens,
  });
  const text = proseText(50_000);
  expect(enc.encode(text)).toEqual(getEncoding('cl100k_base').encode(text));
});
