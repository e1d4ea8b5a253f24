// `wgpt serve`: an HTTP server for the browser pages. It serves its own pages and scripts (bundled from ./pages/
// on first request), the tokenizers' rank files and the checkpoints it was given, and nothing else: no URL is ever
// turned into a file path (files are looked up by name or index in tables built at startup), so no request can
// reach another file. Uploaded checkpoints (the page's file picker) are parsed by the same Node code as
// `wgpt sample` and kept in memory, one at a time.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WgptError } from '@wgpt/base/errors';
import { chatFormatPath, readChatFormatInfo, type ChatFormatInfo } from '@wgpt/chat';
import { type GPT2Config, loadModelFile } from '@wgpt/gpt2';
import {
  CONFIG_FILE,
  loadTokenizer,
  OPENAI_ENCODING_NAMES,
  OPENAI_ENCODINGS,
  RANK_FILE,
  rankFilePath,
  type TokenizerConfig,
} from '@wgpt/tokenizer';
import { bundlePage } from './bundle.ts';
import type { CheckpointInfo, EncodingInfo, ServerInfo } from './pages/api.ts';

export interface ServeOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0: any free port. */
  port: number;
  /** Checkpoints offered to the pages: llm.c .bin or .safetensors files, or checkpoint folders. */
  checkpoints?: string[];
  /** A tokenizer folder written by `wgpt tokenizer train`. */
  tokenizer?: string;
  /** The largest checkpoint upload accepted, in bytes (default 1 GiB). */
  maxUploadBytes?: number;
}

export interface WgptServer {
  /** http://host:port/ */
  url: string;
  server: Server;
  close(): Promise<void>;
}

export const PAGES = ['tokenizer', 'generate', 'chat', 'train', 'model'] as const;
export type PageName = (typeof PAGES)[number];

/** The id under which the last uploaded checkpoint is offered. */
const UPLOAD_ID = 'upload';
const DEFAULT_MAX_UPLOAD = 1 << 30;

interface Checkpoint {
  info: CheckpointInfo;
  params: Float32Array;
}

interface EncodingFile {
  info: EncodingInfo;
  file: string;
}

const PAGES_DIR = fileURLToPath(new URL('./pages/', import.meta.url));
// The pages' stylesheet, and uPlot's (the train page's chart) after it.
const STYLE =
  readFileSync(join(PAGES_DIR, 'style.css'), 'utf8') +
  '\n' +
  readFileSync(createRequire(import.meta.url).resolve('uplot/dist/uPlot.min.css'), 'utf8');

const TITLES: Record<PageName, string> = {
  tokenizer: 'Tokenizer playground',
  generate: 'Generate',
  chat: 'Chat',
  train: 'Train live',
  model: 'Model view',
};

/** A page's script where it is not <page>.ts (pages/model.ts is the pages' checkpoint loading). */
const ENTRIES: Partial<Record<PageName, string>> = { model: 'model-view.ts' };

function pageHtml(page: PageName | 'index'): string {
  const title = page === 'index' ? 'wgpt' : `wgpt: ${TITLES[page]}`;
  const nav = PAGES.map((p) => `<a href="/${p}"${p === page ? ' aria-current="page"' : ''}>${TITLES[p]}</a>`).join('');
  const body =
    page === 'index'
      ? '<main><h1>wgpt in the browser</h1><p>The same tokenizer, model and sampling code as the command line, ' +
        "on this browser's WebGPU.</p><ul>" +
        PAGES.map((p) => `<li><a href="/${p}">${TITLES[p]}</a></li>`).join('') +
        '</ul></main>'
      : `<main id="app"><h1>${TITLES[page]}</h1><p id="status" class="status">Loading…</p></main>` +
        `<script type="module" src="/assets/${page}.js"></script>`;
  return (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width, initial-scale=1">' +
    `<title>${title}</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/assets/style.css"></head>` +
    `<body><nav><a href="/" class="home">wgpt</a>${nav}</nav>${body}</body></html>`
  );
}

/** The chat format saved beside a checkpoint, or null when it has none (a model that was not fine-tuned for chat). */
function chatInfoOf(path: string): ChatFormatInfo | null {
  const saved = chatFormatPath(path);
  return existsSync(saved) ? readChatFormatInfo(saved) : null;
}

function loadCheckpoint(path: string, id: string, name: string): Checkpoint {
  const m = loadModelFile(path);
  return { info: { id, name, config: m.config, chat: id === UPLOAD_ID ? null : chatInfoOf(path) }, params: m.params };
}

function encodingTable(tokenizer: string | undefined): Map<string, EncodingFile> {
  const table = new Map<string, EncodingFile>();
  if (tokenizer !== undefined) {
    // Loading checks the folder (config, rank file and its hash) before the server starts.
    const enc = loadTokenizer(tokenizer);
    const cfg = JSON.parse(readFileSync(join(tokenizer, CONFIG_FILE), 'utf8')) as TokenizerConfig;
    table.set('trained', {
      info: {
        id: 'trained',
        name: `${cfg.name ?? 'trained'} (${basename(tokenizer)})`,
        pattern: cfg.pattern,
        specialTokens: cfg.specialTokens,
        eot: cfg.eot ?? null,
        sha256: cfg.rankFileSha256,
        nVocab: enc.nVocab,
      },
      file: join(tokenizer, cfg.rankFile ?? RANK_FILE),
    });
  }
  for (const name of OPENAI_ENCODING_NAMES) {
    const k = OPENAI_ENCODINGS[name];
    table.set(name, {
      info: {
        id: name,
        name,
        pattern: k.pattern,
        specialTokens: k.specials,
        eot: '<|endoftext|>',
        sha256: k.sha256,
        nVocab: Math.max(k.nMergeable - 1, ...Object.values(k.specials)) + 1,
      },
      file: rankFilePath(name),
    });
  }
  return table;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|::1|\[::1\])$/;
export const isLoopback = (host: string): boolean => LOOPBACK.test(host);

/** Starts the server; resolves once it listens. Bad checkpoints or tokenizers fail here, before it listens. */
export async function startServer(o: ServeOptions): Promise<WgptServer> {
  const host = o.host ?? '127.0.0.1';
  const maxUpload = o.maxUploadBytes ?? DEFAULT_MAX_UPLOAD;
  const encodings = encodingTable(o.tokenizer);
  const checkpoints = new Map<string, Checkpoint>();
  (o.checkpoints ?? []).forEach((path, i) => {
    checkpoints.set(String(i), loadCheckpoint(path, String(i), basename(path.replace(/\/+$/, '')) || path));
  });
  const scripts = new Map<string, Promise<string>>();
  const script = (page: PageName) => {
    let s = scripts.get(page);
    if (!s) {
      s = bundlePage({ entry: join(PAGES_DIR, ENTRIES[page] ?? `${page}.ts`), minify: true });
      scripts.set(page, s);
    }
    return s;
  };
  const ranks = new Map<string, Buffer>();
  const uploadDir = mkdtempSync(join(tmpdir(), 'wgpt-serve-'));
  let port = o.port;

  const info = (): ServerInfo => ({
    encodings: [...encodings.values()].map((e) => e.info),
    checkpoints: [...checkpoints.values()].map((c) => c.info),
    maxUploadBytes: maxUpload,
  });

  const send = (res: ServerResponse, status: number, type: string, body: string | Uint8Array) => {
    res.writeHead(status, {
      'content-type': type,
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'content-security-policy': "default-src 'self'; style-src 'self'; img-src 'self' data:",
    });
    res.end(body);
  };
  const json = (res: ServerResponse, status: number, v: unknown) =>
    send(res, status, 'application/json; charset=utf-8', JSON.stringify(v));

  async function readBody(req: IncomingMessage): Promise<Buffer> {
    const declared = Number(req.headers['content-length'] ?? NaN);
    const limit = `the largest upload is ${maxUpload} bytes (wgpt serve --max-upload-mb)`;
    if (declared > maxUpload) throw new HttpError(413, `the file is ${declared} bytes; ${limit}`);
    const parts: Buffer[] = [];
    let n = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      n += chunk.length;
      if (n > maxUpload) throw new HttpError(413, `the file is over ${maxUpload} bytes; ${limit}`);
      parts.push(chunk);
    }
    return Buffer.concat(parts);
  }

  async function upload(req: IncomingMessage): Promise<CheckpointInfo> {
    const raw = String(req.headers['x-wgpt-file-name'] ?? 'upload.bin');
    let name = 'upload.bin';
    try {
      name = basename(decodeURIComponent(raw)) || name;
    } catch {
      // a malformed name keeps the default
    }
    const body = await readBody(req);
    // loadModelFile tells the formats apart by the name's ending; the file lives only while it is parsed.
    const path = join(uploadDir, name.endsWith('.safetensors') ? 'upload.safetensors' : 'upload.bin');
    writeFileSync(path, body);
    try {
      checkpoints.delete(UPLOAD_ID);
      const c = loadCheckpoint(path, UPLOAD_ID, name);
      checkpoints.set(UPLOAD_ID, c);
      return c.info;
    } catch (e) {
      if (e instanceof WgptError) throw new HttpError(400, e.message.split(path).join(name));
      throw e;
    } finally {
      rmSync(path, { force: true });
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Bound to loopback, only requests addressed to loopback are served: a web page elsewhere cannot reach this
    // server through a DNS name that resolves to 127.0.0.1.
    const hostHeader = String(req.headers.host ?? '');
    const hostName = hostHeader.replace(/:\d+$/, '');
    if (isLoopback(host) && !isLoopback(hostName)) throw new HttpError(403, `host ${hostHeader} is not served`);
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (method === 'POST' && path === '/api/upload') return json(res, 200, await upload(req));
    if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, `${method} is not served`);
    if (path === '/') return send(res, 200, 'text/html; charset=utf-8', pageHtml('index'));
    const page = PAGES.find((p) => path === `/${p}`);
    if (page) return send(res, 200, 'text/html; charset=utf-8', pageHtml(page));
    if (path === '/assets/style.css') return send(res, 200, 'text/css; charset=utf-8', STYLE);
    const asset = /^\/assets\/([a-z]+)\.js$/.exec(path);
    if (asset && (PAGES as readonly string[]).includes(asset[1]!)) {
      return send(res, 200, 'text/javascript; charset=utf-8', await script(asset[1] as PageName));
    }
    if (path === '/api/info') return json(res, 200, info());
    const rank = /^\/api\/ranks\/([a-z0-9_]+)$/.exec(path);
    if (rank && encodings.has(rank[1]!)) {
      const e = encodings.get(rank[1]!)!;
      let bytes = ranks.get(e.info.id);
      if (!bytes) ranks.set(e.info.id, (bytes = readFileSync(e.file)));
      return send(res, 200, 'text/plain; charset=us-ascii', bytes);
    }
    const model = /^\/api\/checkpoints\/([a-z0-9]+)$/.exec(path);
    if (model && checkpoints.has(model[1]!)) {
      const p = checkpoints.get(model[1]!)!.params;
      return send(res, 200, 'application/octet-stream', new Uint8Array(p.buffer, p.byteOffset, p.byteLength));
    }
    throw new HttpError(404, `${path}: no such page or file`);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      const status = e instanceof HttpError ? e.status : 500;
      const message = e instanceof HttpError ? e.message : `server error: ${(e as Error).message}`;
      if (status === 500) process.stderr.write(`wgpt serve: ${req.method} ${req.url}: ${(e as Error).stack}\n`);
      // An upload refused before its end: the rest is read and dropped (no memory kept) so that the client sees the
      // answer rather than a reset connection, which then closes.
      if (status === 413) {
        res.setHeader('connection', 'close');
        req.resume();
      }
      if (!res.headersSent) json(res, status, { error: message });
    });
  });
  // Slow or endless requests are cut: headers within 10 s, a whole request (uploads included) within 10 minutes.
  server.headersTimeout = 10_000;
  server.requestTimeout = 600_000;
  server.maxHeadersCount = 64;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      rmSync(uploadDir, { recursive: true, force: true });
      if (e.code === 'EADDRINUSE') {
        reject(new WgptError(`--port ${port}: the port is in use; pick another, or --port 0 for any free port`));
      } else if (e.code === 'EACCES') {
        reject(new WgptError(`--port ${port}: not allowed to listen there; use a port above 1023`));
      } else if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND') {
        reject(new WgptError(`--host ${host}: not an address of this machine (${e.code})`));
      } else reject(e);
    });
    server.listen(o.port, host, () => resolve());
  });
  port = (server.address() as { port: number }).port;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${port}/`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          rmSync(uploadDir, { recursive: true, force: true });
          resolve();
        });
      }),
  };
}

export type { GPT2Config };
