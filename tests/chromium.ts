// Headless Chromium with WebGPU on SwiftShader for the browser tests: the flags that work on these machines (WebGPU
// needs --enable-unsafe-webgpu; the rest keep a fresh profile quiet and off the network).
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser } from 'puppeteer-core';

const CHROMIUM = process.env.WGPT_CHROMIUM ?? '/usr/bin/chromium';

export async function launchChromium(viewport?: { width: number; height: number }): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(`browser tests need Chromium at ${CHROMIUM}: sudo apt-get install chromium (or set WGPT_CHROMIUM)`);
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    ...(viewport ? { defaultViewport: viewport } : {}),
    args: [
      '--headless=new',
      '--no-sandbox',
      '--enable-unsafe-webgpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
      '--disable-dev-shm-usage',
      `--user-data-dir=${mkdtempSync(join(tmpdir(), 'wgpt-chromium-'))}`,
    ],
  });
}
