// The same runtime and kernels in headless Chromium (WebGPU on SwiftShader there too), checked against the f64
// references: a page runs linear → GELU → cross-entropy forward and backward and reports its numbers.
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from './chromium.ts';
import { bundlePage } from '@wgpt/web';
import { EPS32, finiteDiff, randomF32, relErr } from '@wgpt/runtime/testing';
import { linearRef } from '@wgpt/kernels/matmul/matmul.ref.ts';
import { geluRef } from '@wgpt/kernels/elementwise/elementwise.ref.ts';
import { crossEntropyRef } from '@wgpt/kernels/crossentropy/crossentropy.ref.ts';

const ROOT = new URL('..', import.meta.url).pathname;

let server: Server;
let browser: Browser;
let url = '';

const M = 5, C = 7, OC = 3;
const x = randomF32(M * C, 1);
const w = randomF32(OC * C, 2);
const b = randomF32(OC, 3);
const t = [0, 2, 1, 1, 0];

beforeAll(async () => {
  const js = await bundlePage({ entry: join(ROOT, 'packages/web/src/selfcheck-page.ts') });
  const input = JSON.stringify({ x: Array.from(x), w: Array.from(w), b: Array.from(b), t, M, C, OC });
  const html =
    '<!doctype html><meta charset="utf-8"><title>wgpt selfcheck</title>' +
    `<script>window.wgptInput = ${input};</script><script type="module" src="/page.js"></script>`;
  server = createServer((req, res) => {
    if (req.url === '/page.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(js);
    else res.writeHead(200, { 'content-type': 'text/html' }).end(html);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const addr = server.address() as { port: number };
  url = `http://127.0.0.1:${addr.port}/`;
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  server?.close();
});

describe('runtime in Chromium', () => {
  it('linear → GELU → cross-entropy forward and backward match the f64 references', async () => {
    const page = await browser.newPage();
    const logs: string[] = [];
    page.on('console', (m) => logs.push(m.text()));
    await page.goto(url);
    await page.waitForFunction('window.wgptResult !== undefined', { timeout: 60_000 });
    const r = (await page.evaluate('window.wgptResult')) as {
      adapter: string;
      out: number[];
      loss: number;
      dw: number[];
      error?: string;
    };
    expect(r.error, logs.join('\n')).toBeUndefined();
    expect(r.adapter.length).toBeGreaterThan(0);

    const x64 = Float64Array.from(x);
    const forward = (w64: Float64Array) => geluRef(linearRef(x64, w64, b, M, C, OC));
    const lossOf = (w64: Float64Array) => {
      const ce = crossEntropyRef(forward(w64), t, M, OC);
      return ce.reduce((a, v) => a + v, 0) / M;
    };
    const w64 = Float64Array.from(w);
    // Chained f32 ops (a length-7 dot, GELU, a 3-way softmax): 64·ε covers each stage's rounding with margin.
    expect(relErr(r.out, forward(w64))).toBeLessThanOrEqual(64 * EPS32);
    expect(Math.abs(r.loss - lossOf(w64))).toBeLessThanOrEqual(64 * EPS32 * Math.abs(lossOf(w64)));
    expect(relErr(r.dw, finiteDiff(lossOf, w64))).toBeLessThanOrEqual(64 * EPS32 * Math.sqrt(M));
    await page.close();
  });
});
