// Generate: a checkpoint from the server (or a file picked here), a prompt, and tokens streamed as they are sampled,
// with @wgpt/gpt2's model and generate() on this browser's WebGPU.
import { type Gpu } from '@wgpt/runtime';
import { decodeForDisplay, generate, type GPT2 } from '@wgpt/gpt2';
import type { Encoding } from '@wgpt/tokenizer/core';
import type { CheckpointInfo, ServerInfo } from './api.ts';
import { $, catchAll, el, loadEncoding, openGpu, option, serverInfo, setStatus, showError } from './common.ts';
import { allLogits, checkpointSelect, describeConfig, fetchModel, numberField, uploadCheckpoint } from './model.ts';

declare global {
  interface Window {
    /** For tests: the state of the page's generation, and a way to read logits. */
    wgptGenerate?: {
      state: 'loading' | 'ready' | 'running' | 'done' | 'error';
      ids: number[];
      text: string;
      error?: string;
      adapter?: string;
      logits?: (ids: number[]) => Promise<number[]>;
    };
  }
}

let info: ServerInfo;
let gpu: Gpu | null = null;
let loaded: { key: string; model: GPT2; info: CheckpointInfo } | null = null;
let stopRequested = false;
const state: NonNullable<Window['wgptGenerate']> = { state: 'loading', ids: [], text: '' };
window.wgptGenerate = state;

function fail(e: unknown): void {
  showError(e);
  state.state = 'error';
  state.error = e instanceof Error ? e.message : String(e);
}

function build(): void {
  const app = $('app');
  const ckpt = checkpointSelect(info);
  const file = el('input', { id: 'file', type: 'file', accept: '.bin,.safetensors', 'aria-label': 'checkpoint file' });
  const enc = el('select', { id: 'encoding', 'aria-label': 'encoding' });
  for (const e of info.encodings) enc.append(option(e.id, e.name));
  const prompt = el('textarea', { id: 'prompt', rows: '3', 'aria-label': 'prompt', spellcheck: 'false' });
  prompt.value = 'Once upon a time';
  const maxTokens = numberField('max-tokens', 'Tokens', '64', { min: '1', step: '1' });
  const temperature = numberField('temperature', 'Temperature', '0.8', { min: '0', step: '0.1' });
  const topK = numberField('top-k', 'Top-k', '0', { min: '0', step: '1', title: '0: all tokens' });
  const topP = numberField('top-p', 'Top-p', '1', { min: '0.01', max: '1', step: '0.05' });
  const seed = numberField('seed', 'Seed', '1337', { min: '0', step: '1' });
  const go = el('button', { id: 'generate', type: 'button', text: 'Generate' });
  const stop = el('button', { id: 'stop', type: 'button', text: 'Stop', disabled: '' });
  if (!info.checkpoints.length) ckpt.append(option('', 'none offered: pick a file, or run wgpt serve --checkpoint'));
  app.append(
    el('div', { class: 'controls' }, el('label', {}, 'Checkpoint ', ckpt), el('label', {}, 'or a file ', file)),
    el('div', { class: 'controls' }, el('label', {}, 'Encoding ', enc)),
    prompt,
    el('div', { class: 'controls' }, maxTokens.label, temperature.label, topK.label, topP.label, seed.label, go, stop),
    el('p', { id: 'stats', class: 'counts' }),
    el('pre', { id: 'output', class: 'output' }),
  );
  file.addEventListener('change', () => void onFile().catch(fail));
  ckpt.addEventListener(
    'change',
    () =>
      void ensureModel()
        .then(() => setStatus('Ready', 'ok'))
        .catch(fail),
  );
  go.addEventListener('click', () => void run().catch(fail));
  stop.addEventListener('click', () => (stopRequested = true));
}

async function onFile(): Promise<void> {
  const f = ($('file') as HTMLInputElement).files?.[0];
  if (!f) return;
  setStatus(`Uploading ${f.name}…`);
  const c = await uploadCheckpoint(f, info);
  info.checkpoints = [...info.checkpoints.filter((x) => x.id !== c.id), c];
  const select = $('checkpoint') as HTMLSelectElement;
  for (const o of Array.from(select.options)) if (o.value === c.id || o.value === '') o.remove();
  select.append(option(c.id, describeConfig(c), true));
  loaded?.model.dispose();
  loaded = null;
  await ensureModel();
  setStatus(`Loaded ${describeConfig(c)}`, 'ok');
}

async function ensureModel(): Promise<GPT2> {
  const id = ($('checkpoint') as HTMLSelectElement).value;
  const c = info.checkpoints.find((x) => x.id === id);
  if (!c) throw new Error('no checkpoint: pick a .bin or .safetensors file, or start wgpt serve with --checkpoint');
  const key = `${c.id}:${c.name}`;
  if (loaded?.key === key) return loaded.model;
  gpu ??= await openGpu();
  setStatus(`Loading ${c.name}…`);
  loaded?.model.dispose();
  loaded = null;
  const model = await fetchModel(gpu, c);
  loaded = { key, model, info: c };
  return model;
}

function readNumber(id: string, lo: number, hi: number, integer: boolean): number {
  const input = $(id) as HTMLInputElement;
  const v = Number(input.value);
  if (input.value.trim() === '' || !Number.isFinite(v) || v < lo || v > hi || (integer && !Number.isInteger(v))) {
    const what = integer ? 'an integer' : 'a number';
    throw new Error(`${input.labels?.[0]?.textContent?.trim() ?? id}: ${input.value} is not ${what} in [${lo}, ${hi}]`);
  }
  return v;
}

async function encoding(): Promise<Encoding> {
  const id = ($('encoding') as HTMLSelectElement).value;
  return loadEncoding(info.encodings.find((e) => e.id === id)!);
}

async function run(): Promise<void> {
  const model = await ensureModel();
  const enc = await encoding();
  const { V, maxT } = model.config;
  const o = {
    maxNewTokens: readNumber('max-tokens', 1, 100_000, true),
    temperature: readNumber('temperature', 0, 100, false),
    topK: readNumber('top-k', 0, V, true),
    topP: readNumber('top-p', 0.01, 1, false),
    seed: readNumber('seed', 0, 2 ** 32 - 1, true),
  };
  const text = ($('prompt') as HTMLTextAreaElement).value;
  const prompt = text === '' ? [enc.eotToken] : enc.encode(text, { allowedSpecial: 'all' });
  if (prompt[0]! < 0) throw new Error(`${enc.name} has no <|endoftext|> to start from: type a prompt`);
  const outside = prompt.find((t) => t >= V);
  if (outside !== undefined) {
    throw new Error(
      `the prompt has token ${outside}, outside the model's vocabulary (V=${V}): pick the encoding the model was ` +
        'trained with',
    );
  }
  const go = $('generate') as HTMLButtonElement;
  const stop = $('stop') as HTMLButtonElement;
  go.disabled = true;
  stop.disabled = false;
  stopRequested = false;
  state.state = 'running';
  state.ids = [];
  state.text = '';
  const out = $('output');
  const head = el('span', { class: 'prompt', text: text });
  const body = el('span', { class: 'generated' });
  out.replaceChildren(head, body);
  const stats = $('stats');
  const adapter = model.gpu.describe();
  setStatus(`Generating on ${adapter}…`);
  const t0 = performance.now();
  try {
    for await (const id of generate(model, prompt.slice(-maxT), o)) {
      state.ids.push(id);
      state.text = decodeForDisplay(enc, state.ids);
      body.textContent = state.text;
      const s = (performance.now() - t0) / 1000;
      const rate = (state.ids.length / s).toFixed(1);
      stats.textContent = `${state.ids.length} tokens in ${s.toFixed(2)} s (${rate} tokens/s) on ${adapter}`;
      if (stopRequested) break;
    }
    state.state = 'done';
    setStatus(stopRequested ? 'Stopped' : 'Done', 'ok');
  } finally {
    go.disabled = false;
    stop.disabled = true;
  }
}

async function main(): Promise<void> {
  catchAll();
  info = await serverInfo();
  build();
  const trained = info.encodings.find((e) => e.id === 'trained');
  if (trained) ($('encoding') as HTMLSelectElement).value = trained.id;
  if (info.checkpoints.length) await ensureModel();
  else gpu ??= await openGpu();
  state.adapter = gpu!.describe();
  state.logits = async (ids) => allLogits(await ensureModel(), ids);
  state.state = 'ready';
  setStatus(info.checkpoints.length ? `Ready on ${state.adapter}` : `No checkpoint offered: pick a file`, 'ok');
}

main().catch(fail);
