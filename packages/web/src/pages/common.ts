// What every page shares: the status line (where every error ends up, with what to do), talking to the server,
// loading an encoding from its rank file, and opening WebGPU.
import { Gpu } from '@wgpt/runtime';
import { BpeEncoding, type Encoding, parseRankBytes } from '@wgpt/tokenizer/core';
import type { EncodingInfo, ServerInfo } from './api.ts';

export function $(id: string): HTMLElement {
  const e = document.getElementById(id);
  if (!e) throw new Error(`page element #${id} is missing`);
  return e;
}

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

export type StatusKind = 'info' | 'ok' | 'error';

/** Sets the page's status line. Errors stay until the next status. */
export function setStatus(text: string, kind: StatusKind = 'info'): void {
  const s = $('status');
  s.textContent = text;
  s.className = `status ${kind}`;
  s.setAttribute('role', kind === 'error' ? 'alert' : 'status');
}

export function showError(e: unknown): void {
  const msg = e instanceof Error ? e.message : String(e);
  setStatus(msg, 'error');
}

/** Every error that escapes a handler ends up in the status line rather than only in the console. */
export function catchAll(): void {
  window.addEventListener('error', (ev) => showError(ev.error ?? ev.message));
  window.addEventListener('unhandledrejection', (ev) => showError(ev.reason));
}

export class ServerGoneError extends Error {
  constructor() {
    super(
      `cannot reach the wgpt server at ${location.origin}: it has stopped or the network is down. ` +
        'Start it again (wgpt serve) and reload this page.',
    );
  }
}

/** A request to the server; its refusals become errors with the server's message. */
export async function api(path: string, init?: RequestInit): Promise<Response> {
  let r: Response;
  try {
    r = await fetch(path, init);
  } catch {
    throw new ServerGoneError();
  }
  if (!r.ok) {
    let msg = `${r.status} ${r.statusText}`;
    try {
      msg = ((await r.json()) as { error?: string }).error ?? msg;
    } catch {
      // not JSON: keep the status line
    }
    throw new Error(msg);
  }
  return r;
}

export async function serverInfo(): Promise<ServerInfo> {
  return (await (await api('/api/info')).json()) as ServerInfo;
}

async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string | null> {
  // crypto.subtle exists only in secure contexts (localhost counts; plain http to another host does not).
  if (!globalThis.crypto?.subtle) return null;
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return [...d].map((b) => b.toString(16).padStart(2, '0')).join('');
}

const encodings = new Map<string, Promise<Encoding>>();

/** The encoding built from the server's rank file, as @wgpt/tokenizer builds it in Node (cached per page). */
export function loadEncoding(info: EncodingInfo): Promise<Encoding> {
  let p = encodings.get(info.id);
  if (!p) {
    p = (async () => {
      const bytes = new Uint8Array(await (await api(`/api/ranks/${info.id}`)).arrayBuffer());
      const got = await sha256Hex(bytes);
      if (got !== null && got !== info.sha256) {
        throw new Error(`${info.name}: the rank file's SHA-256 is ${got}, expected ${info.sha256}; reload the page`);
      }
      const tokens = parseRankBytes(bytes, info.name);
      return new BpeEncoding({
        name: info.name,
        pattern: info.pattern,
        tokens,
        specialTokens: info.specialTokens,
        eot: info.eot ?? undefined,
      });
    })();
    p.catch(() => encodings.delete(info.id));
    encodings.set(info.id, p);
  }
  return p;
}

export const NO_WEBGPU =
  'This browser has no WebGPU (navigator.gpu is missing), which this page needs to run the model. Use a recent ' +
  'Chrome or Edge; on Linux start Chromium with --enable-unsafe-webgpu. The tokenizer page works without it.';

/** Opens the page's WebGPU device through the same runtime as Node. */
export async function openGpu(): Promise<Gpu> {
  if (!('gpu' in navigator) || !navigator.gpu) throw new Error(NO_WEBGPU);
  return Gpu.open();
}

export function option(value: string, label: string, selected = false): HTMLOptionElement {
  const o = el('option', { value, text: label });
  o.selected = selected;
  return o;
}
