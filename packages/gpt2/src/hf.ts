// Hugging Face GPT-2 names and layouts ⇄ llm.c's flat parameters. HF's Conv1D stores weights as (in, out), the
// transpose of nn.Linear's (out, in) that llm.c uses; HF's wte has V rows, llm.c's Vp (padded rows are zeros).
import { WgptError } from '@wgpt/runtime';
import { makeConfig, paramOffsets, type GPT2Config } from './config.ts';
import { readSafetensors, writeSafetensors, type NamedTensor } from './safetensors.ts';
import type { ModelFile } from './llmc.ts';

function transpose(x: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = x[r * cols + c]!;
  return out;
}

/** Per layer: HF name suffix, our tensor, and whether HF stores it transposed. */
const LAYER_MAP: [string, string, boolean][] = [
  ['ln_1.weight', 'ln1w', false],
  ['ln_1.bias', 'ln1b', false],
  ['attn.c_attn.weight', 'qkvw', true],
  ['attn.c_attn.bias', 'qkvb', false],
  ['attn.c_proj.weight', 'attprojw', true],
  ['attn.c_proj.bias', 'attprojb', false],
  ['ln_2.weight', 'ln2w', false],
  ['ln_2.bias', 'ln2b', false],
  ['mlp.c_fc.weight', 'fcw', true],
  ['mlp.c_fc.bias', 'fcb', false],
  ['mlp.c_proj.weight', 'fcprojw', true],
  ['mlp.c_proj.bias', 'fcprojb', false],
];

export function exportHfGpt2(path: string, m: ModelFile): void {
  const c = m.config;
  const offs = paramOffsets(c);
  const slice = (name: string, layer?: number) => {
    const o = offs[name]!;
    const per = layer === undefined ? o.size : o.size / c.L;
    const start = o.offset + (layer ?? 0) * per;
    return m.params.subarray(start, start + per);
  };
  const out = new Map<string, NamedTensor>();
  out.set('wte.weight', { shape: [c.V, c.C], data: slice('wte').slice(0, c.V * c.C) });
  out.set('wpe.weight', { shape: [c.maxT, c.C], data: slice('wpe').slice() });
  for (let l = 0; l < c.L; l++) {
    for (const [suffix, ours, trans] of LAYER_MAP) {
      const shape = offs[ours]!.shape.slice(1);
      const data = slice(ours, l);
      if (trans) out.set(`h.${l}.${suffix}`, { shape: [shape[1]!, shape[0]!], data: transpose(data, shape[0]!, shape[1]!) });
      else out.set(`h.${l}.${suffix}`, { shape, data: data.slice() });
    }
  }
  out.set('ln_f.weight', { shape: [c.C], data: slice('lnfw').slice() });
  out.set('ln_f.bias', { shape: [c.C], data: slice('lnfb').slice() });
  writeSafetensors(path, out, { format: 'pt', producer: 'wgpt', n_head: String(c.NH), n_positions: String(c.maxT), vocab_size: String(c.V) });
}

/**
 * Reads a Hugging Face GPT-2 safetensors file (names with or without the `transformer.` prefix). The head count is
 * not in the weights: it comes from `nHead`, the file's metadata (n_head, written by exportHfGpt2), or C / 64
 * (every GPT-2 size has head size 64).
 */
export function importHfGpt2(path: string, opts: { nHead?: number } = {}): ModelFile {
  const { tensors, metadata } = readSafetensors(path);
  const get = (name: string): NamedTensor => {
    const t = tensors.get(name) ?? tensors.get(`transformer.${name}`);
    if (!t) throw new WgptError(`${path}: no tensor named ${name} (nor transformer.${name}); is this a GPT-2 checkpoint?`);
    return t;
  };
  const wte = get('wte.weight');
  const wpe = get('wpe.weight');
  const [V, C] = wte.shape as [number, number];
  const maxT = wpe.shape[0]!;
  let L = 0;
  while (tensors.has(`h.${L}.ln_1.weight`) || tensors.has(`transformer.h.${L}.ln_1.weight`)) L++;
  if (!L) throw new WgptError(`${path}: no transformer blocks (h.0.ln_1.weight) found`);
  const NH = opts.nHead ?? (metadata.n_head ? Number(metadata.n_head) : C / 64);
  const config: GPT2Config = makeConfig({ maxT, V, L, NH, C });
  const offs = paramOffsets(config);
  const params = new Float32Array(Object.values(offs).reduce((a, o) => a + o.size, 0));
  const put = (name: string, data: Float32Array, layer?: number) => {
    const o = offs[name]!;
    const per = layer === undefined ? o.size : o.size / config.L;
    if (data.length > per) throw new WgptError(`${path}: ${name}${layer === undefined ? '' : ` of layer ${layer}`} has ${data.length} values, expected ${per}`);
    params.set(data, o.offset + (layer ?? 0) * per);
  };
  put('wte', wte.data); // rows V..Vp stay zero
  put('wpe', wpe.data);
  for (let l = 0; l < L; l++) {
    for (const [suffix, ours, trans] of LAYER_MAP) {
      const t = get(`h.${l}.${suffix}`);
      const shape = offs[ours]!.shape.slice(1);
      const want = trans ? [shape[1], shape[0]] : shape;
      if (t.shape.join() !== want.join()) throw new WgptError(`${path}: h.${l}.${suffix} has shape [${t.shape}], expected [${want}] for C=${C}`);
      put(ours, trans ? transpose(t.data, shape[1]!, shape[0]!) : t.data, l);
    }
  }
  put('lnfw', get('ln_f.weight').data);
  put('lnfb', get('ln_f.bias').data);
  return { config, params };
}
