import fs from 'node:fs';
import { describe, expect, it, vi } from 'vitest';

// Simulate a page that makes the HTML parser throw: linkedom is wrapped so a marker in the page throws.
vi.mock('linkedom', async (orig) => {
  const real = (await orig()) as typeof import('linkedom');
  return {
    ...real,
    parseHTML: (html: string) => {
      if (html.includes('__THROW_IN_PARSER__')) throw new Error('parser exploded');
      return real.parseHTML(html);
    },
  };
});

const { extractRecord, decodeBody, extractMainText } = await import('../src/extract.ts');
const { htmlBenchmarkFiles } = await import('../src/corpus.ts');
const { articleHtml } = await import('./helpers.ts');

describe('extraction', () => {
  it('keeps the article body and drops navigation and footer', () => {
    const r = extractMainText(articleHtml(3));
    expect(r).not.toBeNull();
    expect(r!.text).toContain('The harbor number 3 was described in chapter 0');
    expect(r!.text).not.toContain('All rights reserved');
    expect(r!.text).not.toMatch(/^Home/m);
    expect(r!.text.split('\n').length).toBeGreaterThanOrEqual(6); // one line per paragraph
  });
  it('counts a parser exception as parse_error', () => {
    const body = new TextEncoder().encode('<html>__THROW_IN_PARSER__</html>');
    const v = extractRecord({ id: 'x', kind: 'html', body });
    expect(v).toEqual({ keep: false, reason: 'parse_error' });
  });
  it('non-UTF-8 bytes: decoded with a declared charset, dropped without one', () => {
    const latin1 = Buffer.from(articleHtml(1).replace('described', 'décrit'), 'latin1');
    expect(decodeBody(latin1)).toBeNull();
    expect(extractRecord({ id: 'x', kind: 'html', body: latin1 })).toEqual({ keep: false, reason: 'not_utf8' });
    const v = extractRecord({ id: 'x', kind: 'html', body: latin1, contentType: 'text/html; charset=ISO-8859-1' });
    expect(v.keep && v.doc.text).toContain('décrit');
  });
  it('a page without an article is no_main_content', () => {
    const body = '<html><body><script>var a = 1;</script>  </body></html>';
    expect(extractRecord({ id: 'x', kind: 'html', body })).toEqual({ keep: false, reason: 'no_main_content' });
  });
  it('extracts text from most real pages of htmlparser-benchmark', () => {
    const files = htmlBenchmarkFiles().slice(0, 40);
    let kept = 0;
    for (const f of files) if (extractRecord({ id: f, kind: 'html', body: fs.readFileSync(f) }).keep) kept++;
    expect(kept).toBeGreaterThanOrEqual(30);
  });
});

describe('linkedom as patched here (patches/linkedom@0.18.15.patch: listener maps made on first use)', () => {
  it('still adds, dispatches and removes event listeners, and nodes without listeners dispatch and remove safely',
    async () => {
    const { parseHTML } = await import('linkedom');
    const { document, Event } = parseHTML('<html><body><div id="a"><p id="b">x</p></div></body></html>') as
      unknown as { document: Document; Event: typeof globalThis.Event };
    const a = document.getElementById('a')!, b = document.getElementById('b')!;
    const seen: string[] = [];
    const onA = (e: Event) => seen.push(`a:${(e.target as Element).id}`);
    // nothing registered yet: no throw, default not prevented
    expect(() => b.removeEventListener('ping', onA)).not.toThrow();
    expect(b.dispatchEvent(new Event('ping', { bubbles: true }))).toBe(true);
    a.addEventListener('ping', onA);
    b.addEventListener('ping', () => seen.push('b'), { once: true });
    b.dispatchEvent(new Event('ping', { bubbles: true }));
    b.dispatchEvent(new Event('ping', { bubbles: true }));
    expect(seen).toEqual(['b', 'a:b', 'a:b']);
    a.removeEventListener('ping', onA);
    b.dispatchEvent(new Event('ping', { bubbles: true }));
    expect(seen.length).toBe(3);
  });
});
