// Loading a checkpoint the server offers (or one uploaded from the page's file picker) into a GPT2 on the page's
// WebGPU device, and the pieces the generate and chat pages share.
import { type Gpu, noGrad, tensor, tidyAsync } from '@wgpt/runtime';
import { GPT2, type GPT2Config } from '@wgpt/gpt2';
import type { CheckpointInfo, ServerInfo } from './api.ts';
import { api, el, option } from './common.ts';

/**
 * A model this adapter cannot hold fails before any buffer is made, saying what is too large: the largest buffers
 * are the token embedding (Vp·C) and the logits of `rows` positions (rows·Vp).
 */
export function checkModelFits(gpu: Gpu, c: GPT2Config, rows: number, what: string): void {
  const max = gpu.limits.maxStorageBufferBindingSize;
  const need = [
    [c.Vp * c.C * 4, `its token embedding (Vp=${c.Vp} × C=${c.C})`],
    [rows * c.Vp * 4, `the logits of ${rows} positions over Vp=${c.Vp}`],
  ] as const;
  for (const [bytes, part] of need) {
    if (bytes > max) {
      throw new Error(
        `${what} is too large for this adapter: ${part} needs ${bytes} bytes, and its largest buffer is ${max} ` +
          'bytes (maxStorageBufferBindingSize); use a smaller model, batch or context, or a browser on a GPU',
      );
    }
  }
}

export async function fetchModel(gpu: Gpu, c: CheckpointInfo): Promise<GPT2> {
  checkModelFits(gpu, c.config, c.config.maxT, c.name);
  const bytes = await (await api(`/api/checkpoints/${c.id}`)).arrayBuffer();
  return new GPT2(gpu, c.config, new Float32Array(bytes));
}

/** Sends a checkpoint file to the server, which parses it as `wgpt sample` does and offers it as `upload`. */
export async function uploadCheckpoint(file: File, info: ServerInfo): Promise<CheckpointInfo> {
  if (file.size > info.maxUploadBytes) {
    throw new Error(
      `${file.name}: ${file.size} bytes is more than the server accepts (${info.maxUploadBytes}); ` +
        'start it with a larger --max-upload-mb, or give the file to wgpt serve --checkpoint',
    );
  }
  const r = await api('/api/upload', {
    method: 'POST',
    headers: { 'x-wgpt-file-name': encodeURIComponent(file.name) },
    body: file,
  });
  return (await r.json()) as CheckpointInfo;
}

export const describeConfig = (c: CheckpointInfo): string => {
  const k = c.config;
  return `${c.name}: L=${k.L} C=${k.C} NH=${k.NH} V=${k.V} context ${k.maxT}`;
};

/** Every position's logits (T rows of Vp) for one sequence: what tests compare with Node's. */
export async function allLogits(model: GPT2, ids: number[]): Promise<number[]> {
  return tidyAsync(async () => {
    const { logits } = noGrad(() => model.forward(tensor(model.gpu, ids, [1, ids.length], 'i32')));
    return Array.from((await logits.read()) as Float32Array);
  });
}

/** A numeric input with a label. */
export function numberField(id: string, label: string, value: string, attrs: Record<string, string> = {}) {
  const input = el('input', { id, type: 'number', value, ...attrs });
  return { input, label: el('label', {}, `${label} `, input) };
}

export function checkpointSelect(info: ServerInfo, filter: (c: CheckpointInfo) => boolean = () => true) {
  const select = el('select', { id: 'checkpoint', 'aria-label': 'checkpoint' });
  for (const c of info.checkpoints.filter(filter)) select.append(option(c.id, describeConfig(c)));
  return select;
}
