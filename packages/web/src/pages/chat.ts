// Chat: a conversation with a checkpoint fine-tuned for ChatML (`wgpt sft`), through @wgpt/chat's ChatSession (the
// same as `wgpt chat`): replies stream, the conversation and its KV cache are kept until "New conversation".
import { type Gpu } from '@wgpt/runtime';
import { type ChatFormat, chatFormat, ChatSession } from '@wgpt/chat';
import type { GPT2 } from '@wgpt/gpt2';
import type { CheckpointInfo, ServerInfo } from './api.ts';
import { $, catchAll, el, loadEncoding, openGpu, option, serverInfo, setStatus, showError } from './common.ts';
import { checkpointSelect, fetchModel, numberField } from './model.ts';

declare global {
  interface Window {
    /** For tests: the replies so far and the page's state. */
    wgptChat?: { state: 'loading' | 'ready' | 'running' | 'error'; replies: string[]; error?: string };
  }
}

let info: ServerInfo;
let gpu: Gpu | null = null;
let current: { key: string; model: GPT2; cf: ChatFormat; session: ChatSession } | null = null;
const state: NonNullable<Window['wgptChat']> = { state: 'loading', replies: [] };
window.wgptChat = state;

function fail(e: unknown): void {
  showError(e);
  state.state = 'error';
  state.error = e instanceof Error ? e.message : String(e);
}

/** The encoding a chat checkpoint was fine-tuned with: the one its chat_format.json names, else the picked one. */
function encodingFor(c: CheckpointInfo): string {
  const named = c.chat?.encoding;
  const byName = info.encodings.find((e) => e.id === named);
  if (byName) return byName.id;
  return info.encodings.find((e) => e.id === 'trained')?.id ?? ($('encoding') as HTMLSelectElement).value;
}

function build(): void {
  const app = $('app');
  const ckpt = checkpointSelect(info);
  if (!info.checkpoints.length) ckpt.append(option('', 'none offered: start wgpt serve --checkpoint <sft run>'));
  const enc = el('select', { id: 'encoding', 'aria-label': 'encoding' });
  for (const e of info.encodings) enc.append(option(e.id, e.name));
  const system = el('textarea', {
    id: 'system',
    rows: '2',
    'aria-label': 'system message',
    placeholder: 'System message (optional)',
  });
  const temperature = numberField('temperature', 'Temperature', '0', { min: '0', step: '0.1' });
  const maxTokens = numberField('max-tokens', 'Reply tokens', '32', { min: '1', step: '1' });
  const seed = numberField('seed', 'Seed', '1337', { min: '0', step: '1' });
  const reset = el('button', { id: 'reset', type: 'button', text: 'New conversation' });
  const question = el('textarea', { id: 'question', rows: '2', 'aria-label': 'message', placeholder: 'Your message' });
  const send = el('button', { id: 'send', type: 'button', text: 'Send' });
  app.append(
    el('div', { class: 'controls' }, el('label', {}, 'Checkpoint ', ckpt), el('label', {}, 'Encoding ', enc)),
    system,
    el('div', { class: 'controls' }, temperature.label, maxTokens.label, seed.label, reset),
    el('div', { id: 'log', class: 'chatlog' }),
    question,
    el('div', { class: 'controls' }, send),
  );
  const restart = () =>
    void newSession()
      .then(() => setStatus('New conversation', 'ok'))
      .catch(fail);
  for (const x of [ckpt, enc, temperature.input, maxTokens.input, seed.input, system])
    x.addEventListener('change', restart);
  reset.addEventListener('click', restart);
  send.addEventListener('click', () => void ask().catch(fail));
  question.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey) {
      ev.preventDefault();
      void ask().catch(fail);
    }
  });
}

async function newSession(): Promise<void> {
  const id = ($('checkpoint') as HTMLSelectElement).value;
  const c = info.checkpoints.find((x) => x.id === id);
  if (!c) throw new Error('no checkpoint: start wgpt serve with --checkpoint <a run of wgpt sft>');
  const encSelect = $('encoding') as HTMLSelectElement;
  if (!current || current.key !== c.id) encSelect.value = encodingFor(c);
  const e = info.encodings.find((x) => x.id === encSelect.value)!;
  gpu ??= await openGpu();
  setStatus(`Loading ${c.name}…`);
  const cf = chatFormat(await loadEncoding(e));
  if (c.chat && (c.chat.imStart !== cf.imStart || c.chat.imEnd !== cf.imEnd || c.chat.vocabSize !== cf.vocabSize)) {
    throw new Error(
      `${c.name} was fine-tuned with the chat format of ${c.chat.encoding} (markers ${c.chat.imStart}-` +
        `${c.chat.imSep}), not ${e.name}'s: pick that encoding (wgpt serve --tokenizer for a trained one)`,
    );
  }
  const model = current?.key === c.id ? current.model : await fetchModel(gpu, c);
  if (current && current.model !== model) current.model.dispose();
  current?.session.dispose();
  current = null;
  const read = (id: string) => Number(($(id) as HTMLInputElement).value);
  const system = ($('system') as HTMLTextAreaElement).value;
  const session = new ChatSession(
    model,
    cf,
    { temperature: read('temperature'), maxTokens: read('max-tokens'), seed: read('seed') },
    system === '' ? null : system,
  );
  current = { key: c.id, model, cf, session };
  $('log').replaceChildren(...(system ? [el('div', { class: 'bubble system', text: system })] : []));
  state.replies = [];
}

async function ask(): Promise<void> {
  const q = $('question') as HTMLTextAreaElement;
  const text = q.value;
  if (!text.trim()) return;
  if (!current) await newSession();
  const log = $('log');
  log.append(el('div', { class: 'bubble user', text }));
  const bubble = el('div', { class: 'bubble assistant' });
  log.append(bubble);
  q.value = '';
  const send = $('send') as HTMLButtonElement;
  send.disabled = true;
  state.state = 'running';
  setStatus('Replying…');
  const t0 = performance.now();
  try {
    const r = await current!.session.ask(text, { onText: (piece) => bubble.append(piece) });
    const s = (performance.now() - t0) / 1000;
    state.replies.push(r.text);
    state.state = 'ready';
    const dropped = r.dropped ? `; ${r.dropped} earlier turn(s) dropped to fit the context` : '';
    setStatus(
      `${r.ids.length} tokens in ${s.toFixed(2)} s (${(r.ids.length / s).toFixed(1)} tokens/s) on ` +
        `${current!.model.gpu.describe()}${dropped}`,
      'ok',
    );
  } finally {
    send.disabled = false;
  }
}

async function main(): Promise<void> {
  catchAll();
  info = await serverInfo();
  build();
  if (info.checkpoints.length) {
    const chatOnes = info.checkpoints.filter((c) => c.chat);
    if (chatOnes.length) ($('checkpoint') as HTMLSelectElement).value = chatOnes[0]!.id;
    await newSession();
    state.state = 'ready';
    setStatus(`Ready on ${gpu!.describe()}`, 'ok');
  } else {
    gpu ??= await openGpu();
    throw new Error('no checkpoint offered: start wgpt serve with --checkpoint <a run of wgpt sft>');
  }
}

main().catch(fail);
