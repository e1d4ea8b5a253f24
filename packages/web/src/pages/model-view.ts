// Model view: the architecture of a checkpoint (its parameter tensors, shapes and counts) and, for a prompt, the
// attention pattern of a chosen layer and head as a heat map and the most probable next tokens, with @wgpt/gpt2's
// model on this browser's WebGPU (inspect.ts).
import type { Gpu } from '@wgpt/runtime';
import type { GPT2 } from '@wgpt/gpt2';
import type { Encoding } from '@wgpt/tokenizer/core';
import type { CheckpointInfo, ServerInfo } from './api.ts';
import { $, catchAll, el, loadEncoding, openGpu, option, serverInfo, setStatus, showError } from './common.ts';
import { architecture, inspect, topK } from './inspect.ts';
import { checkpointSelect, describeConfig, fetchModel } from './model.ts';
import { tokenPieces } from './tokens.ts';

interface Shown {
  ids: number[];
  /** Each token's text (or its bytes as \xNN). */
  tokens: string[];
  layer: number;
  head: number;
  /** The head's T×T probabilities. */
  attention: number[][];
  top: { id: number; p: number; text: string }[];
}

declare global {
  interface Window {
    /** For tests: what the page shows, and the inspection of any ids. */
    wgptModel?: {
      state: 'loading' | 'ready' | 'running' | 'error';
      shown?: Shown;
      error?: string;
      inspect?: (ids: number[], layer: number) => Promise<{ attention: number[][][]; lastLogits: number[] }>;
    };
  }
}

const TOP = 10;
let info: ServerInfo;
let gpu: Gpu | null = null;
let loaded: { id: string; model: GPT2 } | null = null;
const state: NonNullable<Window['wgptModel']> = { state: 'loading' };
window.wgptModel = state;

function fail(e: unknown): void {
  showError(e);
  state.state = 'error';
  state.error = e instanceof Error ? e.message : String(e);
}

function build(): void {
  const ckpt = checkpointSelect(info);
  if (!info.checkpoints.length) ckpt.append(option('', 'none offered: start wgpt serve --checkpoint <file>'));
  const enc = el('select', { id: 'encoding', 'aria-label': 'encoding' });
  for (const e of info.encodings) enc.append(option(e.id, e.name));
  const prompt = el('textarea', { id: 'prompt', rows: '2', 'aria-label': 'prompt', spellcheck: 'false' });
  prompt.value = 'Once upon a time there was a model';
  const layer = el('select', { id: 'layer', 'aria-label': 'layer' });
  const head = el('select', { id: 'head', 'aria-label': 'head' });
  const go = el('button', { id: 'inspect', type: 'button', text: 'Show' });
  $('app').append(
    el('div', { class: 'controls' }, el('label', {}, 'Checkpoint ', ckpt), el('label', {}, 'Encoding ', enc)),
    el('h2', { text: 'Architecture' }),
    el('p', { id: 'summary', class: 'counts' }),
    el('table', { id: 'arch', class: 'arch' }),
    el('h2', { text: 'Attention and next token' }),
    prompt,
    el('div', { class: 'controls' }, el('label', {}, 'Layer ', layer), el('label', {}, 'Head ', head), go),
    el(
      'div',
      { class: 'inspect' },
      el(
        'figure',
        {},
        el('canvas', { id: 'heatmap', 'aria-label': 'attention heat map' }),
        el('figcaption', { id: 'caption' }),
      ),
      el('table', { id: 'top', class: 'top' }),
    ),
  );
  ckpt.addEventListener('change', () => void load().catch(fail));
  go.addEventListener('click', () => void show().catch(fail));
  for (const s of [layer, head]) s.addEventListener('change', () => void show().catch(fail));
}

function showArchitecture(c: CheckpointInfo): void {
  const k = c.config;
  const { rows, total } = architecture(k);
  $('summary').textContent =
    `${describeConfig(c)}: ${k.L} blocks of LayerNorm → attention (${k.NH} heads of ${k.C / k.NH}) → ` +
    `LayerNorm → MLP (${k.C} → ${4 * k.C} → ${k.C}), vocabulary padded to ${k.Vp}; ` +
    `${total.toLocaleString('en')} parameters`;
  const table = $('arch');
  table.replaceChildren(
    el('tr', {}, el('th', { text: 'tensor' }), el('th', { text: 'shape' }), el('th', { text: 'parameters' })),
    ...rows.map((r) =>
      el(
        'tr',
        {},
        el('td', { text: r.name }),
        el('td', { text: r.shape.join(' × ') }),
        el('td', { class: 'num', text: r.count.toLocaleString('en') }),
      ),
    ),
    el(
      'tr',
      { class: 'total' },
      el('td', { text: 'total' }),
      el('td'),
      el('td', { class: 'num', text: total.toLocaleString('en') }),
    ),
  );
  const fill = (id: string, n: number, name: string) => {
    const s = $(id) as HTMLSelectElement;
    const was = Number(s.value) || 0;
    s.replaceChildren(
      ...Array.from({ length: n }, (_, i) => option(String(i), `${name} ${i}`, i === Math.min(was, n - 1))),
    );
  };
  fill('layer', k.L, 'layer');
  fill('head', k.NH, 'head');
}

async function load(): Promise<GPT2> {
  const id = ($('checkpoint') as HTMLSelectElement).value;
  const c = info.checkpoints.find((x) => x.id === id);
  if (!c) throw new Error('no checkpoint: start wgpt serve with --checkpoint <model.bin | .safetensors | folder>');
  if (loaded?.id === id) return loaded.model;
  gpu ??= await openGpu();
  setStatus(`Loading ${c.name}…`);
  loaded?.model.dispose();
  loaded = null;
  showArchitecture(c);
  loaded = { id, model: await fetchModel(gpu, c) };
  setStatus(`Ready on ${gpu.describe()}`, 'ok');
  return loaded.model;
}

async function encoding(): Promise<Encoding> {
  const id = ($('encoding') as HTMLSelectElement).value;
  return loadEncoding(info.encodings.find((e) => e.id === id)!);
}

async function show(): Promise<void> {
  const model = await load();
  const enc = await encoding();
  const text = ($('prompt') as HTMLTextAreaElement).value;
  const { V, maxT } = model.config;
  if (text === '') throw new Error('type a prompt to see its attention');
  const ids = enc.encode(text, { allowedSpecial: 'all' });
  const outside = ids.find((t) => t >= V);
  if (outside !== undefined) {
    throw new Error(
      `the prompt has token ${outside}, outside the model's vocabulary (V=${V}): pick the encoding the model was ` +
        'trained with',
    );
  }
  if (ids.length > maxT) throw new Error(`the prompt is ${ids.length} tokens, more than the model's context (${maxT})`);
  const layer = Number(($('layer') as HTMLSelectElement).value);
  const head = Number(($('head') as HTMLSelectElement).value);
  state.state = 'running';
  setStatus(`Running layer ${layer}…`);
  const r = await inspect(model, ids, layer);
  // A token's text, or its bytes as \xNN where they are not whole characters (as the tokenizer page shows them).
  const tokens = tokenPieces(enc, ids).map((p) => p.text);
  const best = topK(r.lastLogits, TOP);
  const top = tokenPieces(
    enc,
    best.map((t) => t.id),
  ).map((p, i) => ({ ...best[i]!, text: p.text }));
  state.shown = { ids, tokens, layer, head, attention: r.attention[head]!, top };
  drawHeatmap(tokens, r.attention[head]!);
  $('caption').textContent =
    `Layer ${layer}, head ${head}: row i is how token i attends over tokens 0..i (white 0, dark 1); ` +
    `${ids.length} tokens`;
  $('top').replaceChildren(
    el('tr', {}, el('th', { text: 'next token' }), el('th', { text: 'id' }), el('th', { text: 'probability' })),
    ...top.map((t) => {
      // Bars relative to the most probable token.
      const bar = el('meter', { min: '0', max: String(top[0]!.p), value: String(t.p) });
      return el(
        'tr',
        {},
        el('td', { class: 'tok-text', text: shown(t.text) }),
        el('td', { class: 'num', text: String(t.id) }),
        el('td', { class: 'num' }, bar, ` ${(100 * t.p).toFixed(2)}%`),
      );
    }),
  );
  state.state = 'ready';
  setStatus(`Layer ${layer}, head ${head} of ${ids.length} tokens on ${model.gpu.describe()}`, 'ok');
}

/** A token's text with its whitespace and control characters made visible. */
const shown = (s: string): string =>
  s
    .replace(/ /g, '␣')
    .replace(/\n/g, '↵')
    .replace(/\t/g, '⇥')
    .replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

/** Rows are queries, columns keys; each cell's darkness is its probability. Tokens label both axes. */
function drawHeatmap(tokens: string[], p: number[][]): void {
  const canvas = $('heatmap') as HTMLCanvasElement;
  const T = tokens.length;
  const cell = Math.max(6, Math.min(28, Math.floor(480 / T)));
  const left = 120;
  const topPad = 90;
  const dpr = window.devicePixelRatio || 1;
  const w = left + T * cell + 4;
  const h = topPad + T * cell + 4;
  canvas.width = w * dpr;
  canvas.height = h * dpr;
  canvas.style.width = `${w}px`;
  canvas.style.height = `${h}px`;
  const g = canvas.getContext('2d')!;
  g.scale(dpr, dpr);
  g.fillStyle = '#fff';
  g.fillRect(0, 0, w, h);
  const label = (s: string) => (s.length > 14 ? `${shown(s).slice(0, 13)}…` : shown(s));
  g.font = `${Math.min(12, cell)}px ui-monospace, monospace`;
  g.fillStyle = '#222';
  g.textBaseline = 'middle';
  g.textAlign = 'right';
  tokens.forEach((t, i) => g.fillText(label(t), left - 6, topPad + i * cell + cell / 2));
  tokens.forEach((t, j) => {
    g.save();
    g.translate(left + j * cell + cell / 2, topPad - 6);
    g.rotate(-Math.PI / 2);
    g.textAlign = 'left';
    g.fillText(label(t), 0, 0);
    g.restore();
  });
  for (let i = 0; i < T; i++)
    for (let j = 0; j < T; j++) {
      const v = j <= i ? p[i]![j]! : 0;
      // White to dark blue, linear in the probability.
      const c = (a: number, b: number) => Math.round(a + (b - a) * v);
      g.fillStyle = j <= i ? `rgb(${c(255, 8)},${c(255, 48)},${c(255, 107)})` : '#f3f3f3';
      g.fillRect(left + j * cell, topPad + i * cell, cell - 1, cell - 1);
    }
}

async function main(): Promise<void> {
  catchAll();
  info = await serverInfo();
  build();
  const trained = info.encodings.find((e) => e.id === 'trained');
  if (trained) ($('encoding') as HTMLSelectElement).value = trained.id;
  gpu = await openGpu();
  if (!info.checkpoints.length) {
    state.state = 'ready';
    setStatus('No checkpoint offered: start wgpt serve with --checkpoint <file>', 'error');
    return;
  }
  await show();
  state.inspect = async (ids, layer) => {
    const r = await inspect(await load(), ids, layer);
    return { attention: r.attention, lastLogits: Array.from(r.lastLogits) };
  };
}

main().catch(fail);
