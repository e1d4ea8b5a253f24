import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WARCRecord } from 'warcio';
import { WARCSerializer } from 'warcio/node';

export function tmpDir(prefix = 'wgpt-data-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** One gzip member holding one WARC response record. */
export async function warcMember(url: string, body: Uint8Array | string, contentType = 'text/html; charset=utf-8'):
  Promise<Uint8Array> {
  const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body;
  const rec = WARCRecord.create(
    {
      url, date: '2024-01-01T00:00:00Z', type: 'response', warcVersion: 'WARC/1.1', statusline: 'HTTP/1.1 200 OK',
      httpHeaders: { 'Content-Type': contentType },
    },
    [bytes],
  );
  return WARCSerializer.serialize(rec, { gzip: true });
}

/** A readable English article as HTML, distinct per seed. */
export function articleHtml(seed: number, paragraphs = 6): string {
  const topics = [
    'river', 'mountain', 'library', 'harbor', 'garden', 'railway', 'orchard', 'bridge', 'market', 'forest',
  ];
  const t = topics[seed % topics.length];
  const ps: string[] = [];
  for (let i = 0; i < paragraphs; i++) {
    ps.push(
      `<p>The ${t} number ${seed} was described in chapter ${i} of the old survey, and the writers noted that ` +
        `the people who lived near it had always depended on it for work, food and travel. In the year ` +
        `${1800 + seed + i} a new road was built to the ${t}, and with it came merchants, teachers and doctors ` +
        `who changed the life of the town in ways that the older families found hard to accept. ` +
        `Paragraph ${i} of page ${seed} ends here with a remark about weather pattern ${seed * 31 + i * 7}.</p>`,
    );
  }
  return `<!doctype html><html><head><title>The ${t} ${seed}</title></head><body>` +
    '<nav><a href="/">Home</a> <a href="/about">About</a></nav>' +
    `<article><h1>The ${t} ${seed}</h1>${ps.join('\n')}</article>` +
    '<footer>Copyright 2024. All rights reserved.</footer></body></html>';
}
