// `wgpt serve` over HTTP, without a browser: it serves its pages and the files it was given and nothing else (no
// path reaches another file), refuses other hosts when bound to loopback, limits uploads, and parses an uploaded
// checkpoint with the CLI's code, refusing one that is not a checkpoint with a message naming it.
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServerInfo, startServer, type WgptServer } from '@wgpt/web';
import { makeWebFixtures, type WebFixtures } from './web-fixtures.ts';

let fx: WebFixtures;
let srv: WgptServer;

beforeAll(async () => {
  fx = makeWebFixtures();
  srv = await startServer({ port: 0, checkpoints: [fx.model, fx.chat], tokenizer: fx.tokenizer, maxUploadBytes: 4096 });
});
afterAll(async () => {
  await srv?.close();
});

interface Reply {
  status: number;
  type: string;
  body: Buffer;
}

/** A raw request: the path goes out exactly as written (fetch would normalise ../ away). */
function raw(path: string, o: { method?: string; host?: string; body?: Buffer; headers?: object } = {}) {
  const u = new URL(srv.url);
  return new Promise<Reply>((resolve, reject) => {
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path,
        method: o.method ?? 'GET',
        headers: { host: o.host ?? u.host, ...o.headers },
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode!, type: String(res.headers['content-type']), body: Buffer.concat(parts) }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

const errorOf = (r: Reply) => (JSON.parse(r.body.toString()) as { error: string }).error;

describe('wgpt serve', () => {
  it('listens on loopback by default and serves the pages', async () => {
    expect(srv.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    for (const p of ['/', '/tokenizer', '/generate', '/chat']) {
      const r = await raw(p);
      expect(r.status, p).toBe(200);
      expect(r.type).toMatch(/^text\/html/);
    }
    const css = await raw('/assets/style.css');
    expect(css.status).toBe(200);
  });

  it('offers the checkpoints and tokenizer it was given, their bytes exactly', async () => {
    const info = JSON.parse((await raw('/api/info')).body.toString()) as ServerInfo;
    expect(info.checkpoints.map((c) => [c.id, c.name, c.config])).toEqual([
      ['0', 'tiny.bin', fx.modelConfig],
      ['1', 'sft', fx.chatConfig],
    ]);
    expect(info.checkpoints[0]!.chat).toBeNull();
    expect(info.checkpoints[1]!.chat?.vocabSize).toBe(fx.chatConfig.V);
    expect(info.encodings.map((e) => e.id)).toEqual(['trained', 'r50k_base', 'cl100k_base', 'o200k_base']);
    const params = (await raw('/api/checkpoints/0')).body;
    expect(new Float32Array(params.buffer, params.byteOffset, params.length / 4)).toEqual(fx.modelParams);
    const ranks = await raw('/api/ranks/trained');
    expect(ranks.body.equals(readFileSync(`${fx.tokenizer}/tokenizer.tiktoken`))).toBe(true);
  });

  it('serves nothing else: no path reaches another file', async () => {
    const paths = [
      '/../package.json',
      '/assets/../../package.json',
      '/assets/%2e%2e/%2e%2e/package.json',
      '/assets/..%2f..%2fpackage.json',
      '/api/ranks/../../../etc/passwd',
      '/api/ranks/..%2F..%2F..%2Fetc%2Fpasswd',
      '/api/ranks/trained/../../tokenizer.json',
      '/api/checkpoints/0/../../tiny.bin',
      '/api/checkpoints/%2e%2e',
      `/${fx.model}`,
      `/api/checkpoints/${encodeURIComponent(fx.model)}`,
      '/assets/serve.js',
      '/assets/bundle.ts',
      '/assets/tokenizer.ts',
      '/pages/tokenizer.ts',
      '/api/ranks/',
      '//etc/passwd',
    ];
    for (const p of paths) {
      const r = await raw(p);
      expect(r.status, p).toBe(404);
      expect(errorOf(r), p).toMatch(/no such page or file$/);
    }
  });

  it('refuses requests addressed to another host while bound to loopback (DNS rebinding)', async () => {
    const r = await raw('/api/info', { host: 'attacker.example:80' });
    expect(r.status).toBe(403);
    expect(errorOf(r)).toBe('host attacker.example:80 is not served');
    expect((await raw('/api/info', { host: `localhost:${new URL(srv.url).port}` })).status).toBe(200);
  });

  it('refuses other methods', async () => {
    const r = await raw('/api/info', { method: 'DELETE' });
    expect(r.status).toBe(405);
  });

  it('limits uploads, by the declared length and by the bytes that come', async () => {
    const big = Buffer.alloc(5000);
    const r = await raw('/api/upload', { method: 'POST', body: big });
    expect(r.status).toBe(413);
    expect(errorOf(r)).toBe('the file is 5000 bytes; the largest upload is 4096 bytes (wgpt serve --max-upload-mb)');
    // Chunked: no length is declared, the count stops it.
    const chunked = await raw('/api/upload', {
      method: 'POST',
      body: big,
      headers: { 'transfer-encoding': 'chunked' },
    });
    expect(chunked.status).toBe(413);
    expect(errorOf(chunked)).toMatch(/^the file is over 4096 bytes/);
  });

  it('parses an uploaded checkpoint as the CLI does, and names a file that is not one', async () => {
    const bad = await raw('/api/upload', {
      method: 'POST',
      body: readFileSync(fx.notACheckpoint).subarray(0, 2048),
      headers: { 'x-wgpt-file-name': 'notes.bin' },
    });
    expect(bad.status).toBe(400);
    // The message names the uploaded file, never the server's temporary path.
    expect(errorOf(bad)).toMatch(/^notes\.bin: bad magic \d+ \(an llm\.c model file starts with 20240326/);
    const st = await raw('/api/upload', {
      method: 'POST',
      body: Buffer.from('not json'),
      headers: { 'x-wgpt-file-name': 'w.safetensors' },
    });
    expect(st.status).toBe(400);
    expect(errorOf(st)).toMatch(/^w\.safetensors: /);
  });

  it('names the flag when the port is taken', async () => {
    const port = Number(new URL(srv.url).port);
    await expect(startServer({ port })).rejects.toThrow(
      `--port ${port}: the port is in use; pick another, or --port 0 for any free port`,
    );
  });

  it('runs as `wgpt serve`: prints the URL and pages, warns for a non-loopback host, stops on SIGINT', async () => {
    const root = new URL('..', import.meta.url).pathname;
    const child = spawn(
      process.execPath,
      ['scripts/wgpt.mjs', 'serve', '--port', '0', '--host', '0.0.0.0', '--checkpoint', fx.model],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        const m = /listening on (http:\/\/\S+\/) .*\n(.*\n){5}/.exec(stdout);
        if (m) resolve(m[1]!);
      });
      child.on('exit', (code) => reject(new Error(`wgpt serve exited with ${code}: ${stderr}`)));
    });
    expect(url).toMatch(/^http:\/\/0\.0\.0\.0:\d+\/$/);
    expect(stdout.split('\n').slice(1, 6)).toEqual(
      ['tokenizer', 'generate', 'chat', 'train', 'model'].map((p) => `  ${url}${p}`),
    );
    expect(stderr).toMatch(/^wgpt serve: warning: --host 0\.0\.0\.0 lets other machines reach this server/);
    const port = new URL(url).port;
    const info = await fetch(`http://127.0.0.1:${port}/api/info`);
    expect(((await info.json()) as ServerInfo).checkpoints).toHaveLength(1);
    const code = await new Promise<number | null>((resolve) => {
      child.on('exit', resolve);
      child.kill('SIGINT');
    });
    expect(code).toBe(0);
  });
});
