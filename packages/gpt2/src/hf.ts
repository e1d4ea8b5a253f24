// Hugging Face GPT-2 names and layouts ⇄ llm.c's flat parameters. HF's Conv1D stores weights as (in, out), the
// transpose of nn.Linear's (out, in) that llm.c uses; HF's wte has V rows, llm.c's Vp (padded rows are zeros).
import { WgptError } from '@wgpt/runtime';
import { makeConfig, paramOffsets, type GPT2Config } from './config.ts';
import { openSafetensors, writeSafetensors, type NamedTensor, type TensorToWrite } from './safetensors.ts';
import type { ModelFile } from './llmc.ts';

function transpose(x: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = x[r * cols + c]!;
  return out;
}

/** Per layer: HF name suffix, our tensor, and whether HF stores it transposed. */
export const HF_LAYER_MAP: readonly (readonly [string, string, boolean])[] = [
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

/** Writes HF GPT-2 safetensors; each tensor is sliced (or transposed) only when written, so memory stays small. */
export function exportHfGpt2(path: string, m: ModelFile): void {
  const c = m.config;
  const offs = paramOffsets(c);
  const slice = (name: string, layer?: number) => {
    const o = offs[name]!;
    const per = layer === undefined ? o.size : o.size / c.L;
    const start = o.offset + (layer ?? 0) * per;
    return m.params.subarray(start, start + per);
  };
  const out = new Map<string, TensorToWrite>();
  out.set('wte.weight', { shape: [c.V, c.C], data: slice('wte').subarray(0, c.V * c.C) });
  out.set('wpe.weight', { shape: [c.maxT, c.C], data: slice('wpe') });
  for (let l = 0; l < c.L; l++) {
    for (const [suffix, ours, trans] of HF_LAYER_MAP) {
      const shape = offs[ours]!.shape.slice(1);
      const [rows, cols] = shape as [number, number];
      if (trans)
        out.set(`h.${l}.${suffix}`, { shape: [cols, rows], data: () => transpose(slice(ours, l), rows, cols) });
      else out.set(`h.${l}.${suffix}`, { shape, data: slice(ours, l) });
    }
  }
  out.set('ln_f.weight', { shape: [c.C], data: slice('lnfw') });
  out.set('ln_f.bias', { shape: [c.C], data: slice('lnfb') });
  writeSafetensors(path, out, {
    format: 'pt',
    producer: 'wgpt',
    n_head: String(c.NH),
    n_positions: String(c.maxT),
    vocab_size: String(c.V),
  });
}

/**
 * Reads a Hugging Face GPT-2 safetensors file (names with or without the `transformer.` prefix). The head count is
 * not in the weights: it comes from `nHead`, the file's metadata (n_head, written by exportHfGpt2), or C / 64
 * (every GPT-2 size has head size 64).
 */
export function importHfGpt2(path: string, opts: { nHead?: number } = {}): ModelFile {
  const file = openSafetensors(path);
  try {
    return importOpen(file, path, opts);
  } finally {
    file.close();
  }
}

function importOpen(file: ReturnType<typeof openSafetensors>, path: string, opts: { nHead?: number }): ModelFile {
  const { entries, metadata } = file;
  const nameOf = (name: string): string => {
    if (entries.has(name)) return name;
    if (entries.has(`transformer.${name}`)) return `transformer.${name}`;
    throw new WgptError(`${path}: no tensor named ${name} (nor transformer.${name}); is this a GPT-2 checkpoint?`);
  };
  const shapeOf = (name: string) => entries.get(nameOf(name))!.shape;
  // Read one tensor at a time, only when it is placed: peak memory is the model plus one tensor.
  const get = (name: string): NamedTensor => file.read(nameOf(name));
  const wteShape = shapeOf('wte.weight');
  const wpeShape = shapeOf('wpe.weight');
  if (wteShape.length !== 2 || wpeShape.length !== 2 || wpeShape[1] !== wteShape[1]) {
    throw new WgptError(`${path}: wte.weight [${wteShape}] and wpe.weight [${wpeShape}] are not (V, C) and (maxT, C)`);
  }
  const [V, C] = wteShape as [number, number];
  const maxT = wpeShape[0]!;
  let L = 0;
  while (entries.has(`h.${L}.ln_1.weight`) || entries.has(`transformer.h.${L}.ln_1.weight`)) L++;
  if (!L) throw new WgptError(`${path}: no transformer blocks (h.0.ln_1.weight) found`);
  const NH = opts.nHead ?? (metadata.n_head ? Number(metadata.n_head) : C / 64);
  let config: GPT2Config;
  try {
    config = makeConfig({ maxT, V, L, NH, C });
  } catch (e) {
    throw new WgptError(`${path}: not a GPT-2 shape: ${(e as Error).message}`);
  }
  const offs = paramOffsets(config);
  // Every name and shape is checked from the header before any data is read.
  const plan: { hf: string; ours: string; layer?: number; trans: boolean }[] = [
    { hf: 'wte.weight', ours: 'wte', trans: false },
    { hf: 'wpe.weight', ours: 'wpe', trans: false },
  ];
  for (let l = 0; l < L; l++) {
    for (const [suffix, ours, trans] of HF_LAYER_MAP) plan.push({ hf: `h.${l}.${suffix}`, ours, layer: l, trans });
  }
  plan.push({ hf: 'ln_f.weight', ours: 'lnfw', trans: false }, { hf: 'ln_f.bias', ours: 'lnfb', trans: false });
  for (const p of plan) {
    const shape = p.ours === 'wte' ? [V, C] : offs[p.ours]!.shape.slice(p.layer === undefined ? 0 : 1);
    const want = p.trans ? [shape[1], shape[0]] : shape;
    const got = shapeOf(p.hf);
    if (got.join() !== want.join()) {
      throw new WgptError(`${path}: ${p.hf} has shape [${got}], expected [${want}] for C=${C}`);
    }
  }
  const params = new Float32Array(Object.values(offs).reduce((a, o) => a + o.size, 0));
  for (const p of plan) {
    const o = offs[p.ours]!;
    const per = p.layer === undefined ? o.size : o.size / config.L;
    const t = get(p.hf);
    if (p.trans) {
      const shape = o.shape.slice(1);
      params.set(transpose(t.data, shape[1]!, shape[0]!), o.offset + p.layer! * per);
    } else params.set(t.data, o.offset + (p.layer ?? 0) * per); // wte: rows V..Vp stay zero
  }
  return { config, params };
}
