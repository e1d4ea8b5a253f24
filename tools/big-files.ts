// Model and training files over 2 GiB (Node cannot read such a file into one buffer), end to end, outside CI:
//   1. a Hugging Face safetensors file of GPT-2 774M's shapes (3.1 GB, sparse: zeros with a marker value at the
//      first, second-row and last element of every tensor) imported with importHfGpt2, every value checked;
//   2. that model written as llm.c's model.bin (3.1 GB) and read back, every value checked;
//   3. a d24 (350M) training checkpoint: model.bin 1.4 GB and state.bin 2.8 GB (AdamW moments), saved and
//      loaded back (loadCheckpoint verifies its SHA-256), values checked.
// Needs about 8 GB of free disk (safetensors is sparse) and 10 GB of memory.
//   node scripts/run-ts.mjs tools/big-files.ts [folder]   (default: a new folder in the OS temp folder, removed after)
import { closeSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  loadCheckpoint,
  makeConfig,
  paramCount,
  paramOffsets,
  paramShapes,
  PRESETS,
  readLlmcModel,
  saveCheckpoint,
  writeLlmcModel,
  HF_LAYER_MAP,
  importHfGpt2,
  type GPT2Config,
} from '@wgpt/gpt2';

const dir = process.argv[2] ?? mkdtempSync(join(tmpdir(), 'wgpt-big-'));
const t0 = performance.now();
const GiB = 2 ** 30;
const say = (s: string) => {
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  console.log(`[${secs} s, rss ${(process.memoryUsage().rss / GiB).toFixed(1)} GiB] ${s}`);
};
function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`FAIL: ${what}`);
}

/** HF tensors of a GPT-2 config in file order, with shapes and whether llm.c stores them transposed. */
interface HfTensor {
  name: string;
  ours: string;
  layer?: number;
  shape: number[];
  trans: boolean;
}

function hfLayout(c: GPT2Config): HfTensor[] {
  const offs = paramOffsets(c);
  const out: HfTensor[] = [
    { name: 'wte.weight', ours: 'wte', shape: [c.V, c.C], trans: false },
    { name: 'wpe.weight', ours: 'wpe', shape: [c.maxT, c.C], trans: false },
  ];
  for (let l = 0; l < c.L; l++) {
    for (const [suffix, ours, trans] of HF_LAYER_MAP) {
      const s = offs[ours]!.shape.slice(1);
      out.push({ name: `h.${l}.${suffix}`, ours, layer: l, shape: trans ? [s[1]!, s[0]!] : s, trans });
    }
  }
  out.push({ name: 'ln_f.weight', ours: 'lnfw', shape: [c.C], trans: false });
  out.push({ name: 'ln_f.bias', ours: 'lnfb', shape: [c.C], trans: false });
  return out;
}

function safetensorsPhase(): void {
  const c = PRESETS.d36!; // GPT-2 774M
  const layout = hfLayout(c);
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let off = 0;
  for (const t of layout) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [off, off + 4 * n] };
    off += 4 * n;
  }
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const base = 8 + json.length;
  const file = join(dir, 'gpt2-774M.safetensors');
  const fd = openSync(file, 'w');
  writeSync(fd, len, 0, 8, 0);
  writeSync(fd, json, 0, json.length, 8);
  // Markers: for tensor i, 1+i at its first element, 1e4+i at row 1 col 0 (2-D), -(1+i) at its last element.
  const offs = paramOffsets(c);
  const expected = new Map<number, number>(); // llm.c flat index -> value
  let at = 0;
  layout.forEach((t, i) => {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const o = offs[t.ours]!;
    const start = o.offset + (t.layer === undefined ? 0 : (t.layer * o.size) / c.L);
    const put = (hfIndex: number, ourIndex: number, v: number) => {
      const b = Buffer.alloc(4);
      b.writeFloatLE(v);
      writeSync(fd, b, 0, 4, base + at + 4 * hfIndex);
      expected.set(start + ourIndex, v);
    };
    put(0, 0, 1 + i);
    if (t.shape.length === 2) {
      const cols = t.shape[1]!;
      // HF (1, 0) is ours (0, 1) when transposed (ours is HF's transpose), else ours (1, 0).
      put(cols, t.trans ? 1 : cols, 1e4 + i);
    }
    put(n - 1, n - 1, -(1 + i));
    at += 4 * n;
  });
  closeSync(fd);
  // A sparse file: the zeros between the markers take no disk.
  const size = statSync(file).size;
  check(size === base + off, `safetensors size ${size}`);
  say(`wrote ${file}: ${(size / GiB).toFixed(2)} GiB (sparse), ${layout.length} tensors, ${expected.size} markers`);
  const m = importHfGpt2(file);
  say(`imported: ${m.params.length} parameters, config ${JSON.stringify(m.config)}`);
  check(JSON.stringify(m.config) === JSON.stringify(c), 'config');
  checkMarkers(m.params, expected, 'safetensors import');
  rmSync(file);
  const bin = join(dir, 'gpt2-774M.bin');
  writeLlmcModel(bin, m);
  say(`wrote ${bin}: ${(statSync(bin).size / GiB).toFixed(2)} GiB`);
  const back = readLlmcModel(bin);
  checkMarkers(back.params, expected, 'model.bin read back');
  rmSync(bin);
}

function checkMarkers(params: Float32Array, expected: Map<number, number>, what: string): void {
  let nonzero = 0;
  for (let i = 0; i < params.length; i++) if (params[i] !== 0) nonzero++;
  for (const [i, v] of expected) check(params[i] === v, `${what}: params[${i}] = ${params[i]}, expected ${v}`);
  check(nonzero === expected.size, `${what}: ${nonzero} nonzero values, expected ${expected.size}`);
  say(`${what}: all ${params.length} values as expected (${expected.size} markers, zeros elsewhere)`);
}

async function checkpointPhase(): Promise<void> {
  const c = makeConfig({ ...PRESETS.d24! }); // 350M
  const n = paramCount(c);
  const value = (k: number, i: number) => Math.fround(((i * 2654435761 + k * 97) % 1000003) / 1000003 - 0.5);
  const params = new Float32Array(n);
  for (let i = 0; i < n; i++) params[i] = value(0, i);
  const sizes = paramShapes(c).map((p) => p.shape.reduce((a, b) => a * b, 1));
  const moments = (k: number) => {
    let off = 0;
    return sizes.map((s) => {
      const a = new Float32Array(s);
      for (let i = 0; i < s; i++) a[i] = value(k, off + i);
      off += s;
      return a;
    });
  };
  const ck = join(dir, 'checkpoint');
  const optimizer = { step: 123, m: moments(1), v: moments(2) };
  const loader = { epoch: 1, shard: 2, window: 3 };
  await saveCheckpoint(ck, { config: c, params }, { step: 123, loader, optimizer, seed: 7 });
  const sm = statSync(join(ck, 'model.bin')).size;
  const ss = statSync(join(ck, 'state.bin')).size;
  say(`saved ${ck}: model.bin ${(sm / GiB).toFixed(2)} GiB, state.bin ${(ss / GiB).toFixed(2)} GiB`);
  check(ss > 2 * GiB, 'state.bin over 2 GiB');
  const got = loadCheckpoint(ck); // verifies the SHA-256 over parameters and moments
  say(`loaded ${got.dir} (SHA-256 verified): step ${got.state.step}`);
  check(got.state.step === 123 && got.state.optimizer.step === 123, 'steps');
  for (let i = 0; i < n; i++) if (got.model.params[i] !== params[i]) check(false, `params[${i}]`);
  for (const [k, list] of [[1, got.state.optimizer.m], [2, got.state.optimizer.v]] as const) {
    let off = 0;
    for (const a of list) {
      for (let i = 0; i < a.length; i++) if (a[i] !== value(k, off + i)) check(false, `moment ${k} at ${off + i}`);
      off += a.length;
    }
  }
  say(`checkpoint: all ${n} parameters and ${2 * n} moments as written`);
  rmSync(ck, { recursive: true });
}

try {
  safetensorsPhase();
  await checkpointPhase();
  say(`PASS (peak rss ${(process.resourceUsage().maxRSS / 2 ** 20).toFixed(1)} GiB)`);
} finally {
  if (!process.argv[2]) rmSync(dir, { recursive: true, force: true });
}
