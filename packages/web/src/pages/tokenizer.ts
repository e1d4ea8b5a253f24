// The tokenizer playground: text (or a ChatML conversation) → the tokens of the chosen encoding as coloured spans
// with their ids, and the counts of characters, bytes and tokens. The encodings are @wgpt/tokenizer's, built from
// the server's rank files; conversations render with @wgpt/chat's ChatML.
import { CHAT_ROLES, type ChatMessage, type ChatRole, chatFormat, renderConversation } from '@wgpt/chat';
import type { Encoding } from '@wgpt/tokenizer/core';
import type { ServerInfo } from './api.ts';
import { $, catchAll, el, loadEncoding, option, serverInfo, setStatus, showError } from './common.ts';
import { textCounts, tokenPieces } from './tokens.ts';

declare global {
  interface Window {
    /** For tests: the last rendering (ids, counts), or its error. */
    wgptTokens?: { ids: number[]; characters: number; bytes: number; encoding: string } | { error: string };
  }
}

const SAMPLE = 'Hello, world! Tokenizers split text into pieces: "tokenization" → token ids.\n\n  Indented 你好 🙂';

let info: ServerInfo;
const messages: ChatMessage[] = [
  { role: 'system', content: 'You are a helpful assistant.' },
  { role: 'user', content: 'What is 2+2?' },
  { role: 'assistant', content: '2 + 2 = 4.' },
];

function build(): void {
  const app = $('app');
  const encSelect = el('select', { id: 'encoding', 'aria-label': 'encoding' });
  for (const e of info.encodings) encSelect.append(option(e.id, e.name, e.id === 'cl100k_base'));
  const mode = el(
    'select',
    { id: 'mode', 'aria-label': 'mode' },
    option('text', 'Text'),
    option('chat', 'Chat (ChatML)'),
  );
  const special = el('input', { type: 'checkbox', id: 'special' });
  const controls = el(
    'div',
    { class: 'controls' },
    el('label', {}, 'Encoding ', encSelect),
    el('label', {}, 'Mode ', mode),
    el('label', { id: 'special-label' }, special, ' special tokens in the text'),
  );
  const text = el('textarea', { id: 'text', rows: '6', spellcheck: 'false', 'aria-label': 'text' });
  text.value = SAMPLE;
  const chat = el('div', { id: 'messages', hidden: '' });
  const counts = el('p', { id: 'counts', class: 'counts' });
  const tokens = el('div', { id: 'tokens', class: 'tokens', 'aria-label': 'tokens' });
  const ids = el('pre', { id: 'ids', class: 'ids' });
  app.append(controls, text, chat, counts, tokens, ids);

  const update = () => void render().catch(showError);
  encSelect.addEventListener('change', update);
  text.addEventListener('input', update);
  special.addEventListener('change', update);
  mode.addEventListener('change', () => {
    const isChat = mode.value === 'chat';
    text.hidden = isChat;
    chat.hidden = !isChat;
    $('special-label').hidden = isChat;
    if (isChat) drawMessages();
    update();
  });
}

function drawMessages(): void {
  const box = $('messages');
  box.replaceChildren();
  messages.forEach((m, i) => {
    const role = el('select', { 'aria-label': `role of message ${i + 1}`, class: 'role' });
    for (const r of CHAT_ROLES) role.append(option(r, r, r === m.role));
    const content = el('textarea', { rows: '2', 'aria-label': `message ${i + 1}`, class: 'content' });
    content.value = m.content;
    const remove = el('button', { type: 'button', text: 'Remove', class: 'small' });
    role.addEventListener('change', () => ((m.role = role.value as ChatRole), void render().catch(showError)));
    content.addEventListener('input', () => ((m.content = content.value), void render().catch(showError)));
    remove.addEventListener('click', () => {
      messages.splice(i, 1);
      drawMessages();
      void render().catch(showError);
    });
    box.append(el('div', { class: 'message' }, role, content, remove));
  });
  const add = el('button', { type: 'button', id: 'add-message', text: 'Add message' });
  add.addEventListener('click', () => {
    messages.push({ role: messages.at(-1)?.role === 'user' ? 'assistant' : 'user', content: '' });
    drawMessages();
    void render().catch(showError);
  });
  box.append(add);
}

let generation = 0;

async function render(): Promise<void> {
  const id = ($('encoding') as HTMLSelectElement).value;
  const e = info.encodings.find((x) => x.id === id)!;
  const mine = ++generation;
  setStatus(`Loading ${e.name}…`);
  let enc: Encoding = await loadEncoding(e);
  if (mine !== generation) return; // a newer rendering started while this one waited
  const isChat = ($('mode') as HTMLSelectElement).value === 'chat';
  let ids: number[];
  let shown: string;
  if (isChat) {
    const cf = chatFormat(enc);
    enc = cf.encoding;
    ids = Array.from(renderConversation(cf, messages).ids);
    shown = enc.decode(ids);
  } else {
    shown = ($('text') as HTMLTextAreaElement).value;
    const special = ($('special') as HTMLInputElement).checked;
    ids = special ? enc.encode(shown, { allowedSpecial: 'all' }) : enc.encodeOrdinary(shown);
  }
  const { characters, bytes } = textCounts(shown);
  $('counts').replaceChildren(
    el('span', { id: 'count-chars', text: String(characters) }),
    ' characters · ',
    el('span', { id: 'count-bytes', text: String(bytes) }),
    ' UTF-8 bytes · ',
    el('span', { id: 'count-tokens', text: String(ids.length) }),
    ' tokens',
  );
  const spans = tokenPieces(enc, ids).map((p, i) => {
    const cls = `tok c${i % 8}${p.special ? ' special' : ''}${p.partial ? ' partial' : ''}`;
    const s = el('span', { class: cls, 'data-id': String(p.id), title: `id ${p.id}` });
    // Whitespace stays visible: a newline is drawn as ↵ followed by the break itself.
    s.textContent = p.text.replace(/\n/g, '↵\n');
    return s;
  });
  $('tokens').replaceChildren(...spans);
  $('ids').textContent = `[${ids.join(', ')}]`;
  setStatus(`${e.name}: ${ids.length} tokens`, 'ok');
  window.wgptTokens = { ids, characters, bytes, encoding: e.id };
}

async function main(): Promise<void> {
  catchAll();
  info = await serverInfo();
  build();
  await render();
}

main().catch((e: unknown) => {
  showError(e);
  window.wgptTokens = { error: e instanceof Error ? e.message : String(e) };
});
