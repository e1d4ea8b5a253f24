// Getting a WebGPU device: in Node through Dawn (npm `webgpu`), in the browser through navigator.gpu.
//
// In Node, SwiftShader (shipped inside Debian's chromium package) is added to the Vulkan loader's driver list, so
// a machine without a GPU still has an adapter and a machine with one lists both. Hardware adapters are preferred.
import { NoAdapterError, WgptError } from './errors.ts';

export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

export interface AdapterEntry {
  index: number;
  backend: string;
  name: string;
  /** SwiftShader and other CPU implementations. */
  software: boolean;
}

export interface OpenOptions {
  /**
   * Adapter name (exact or a case-insensitive substring) or index into listAdapters(). Default: env WGPT_ADAPTER,
   * else the first hardware adapter, else SwiftShader.
   */
  adapter?: string | number;
  /** Extra Dawn toggles, e.g. ['disable_robustness']. Node only. */
  enableToggles?: string[];
  disableToggles?: string[];
  /** Request the 'timestamp-query' feature when the adapter has it (default true). */
  timestamps?: boolean;
}

export interface OpenedDevice {
  device: GPUDevice;
  adapter: GPUAdapter;
  adapterName: string;
  software: boolean;
  features: Set<string>;
}

// Kernels never rely on zero-initialised workgroup memory (they write before they read), so Dawn's zero-fill is
// switched off: it costs 1-6 s per pipeline on SwiftShader. Timestamps unquantized so kernel timings are usable.
const DEFAULT_ENABLE = ['disable_workgroup_init'];
const DEFAULT_DISABLE = ['timestamp_quantization'];

const isNode =
  typeof process !== 'undefined' &&
  !!process.versions?.node &&
  typeof (globalThis as { window?: unknown }).window === 'undefined';

type DawnCreate = (flags: string[]) => GPU;
let dawnCreate: DawnCreate | null = null;
const gpuByFlags = new Map<string, GPU>();

async function loadDawn(): Promise<DawnCreate> {
  if (dawnCreate) return dawnCreate;
  prepareVulkanEnv();
  // Kept out of browser bundles: esbuild marks 'webgpu' external, and this branch never runs there.
  const mod = (await import(/* @vite-ignore */ 'webgpu' as string)) as {
    create: DawnCreate;
    globals: Record<string, unknown>;
  };
  // WebGPU's constants (GPUBufferUsage, GPUMapMode, ...) as globals, as in a browser.
  for (const [k, v] of Object.entries(mod.globals))
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  dawnCreate = mod.create;
  return dawnCreate;
}

// Mesa's device-select layer reads these when Dawn creates its Vulkan instance, so an instance made under other
// values sees other devices (the data-parallel ranks set them: dist/device-select.ts).
const SELECTION_VARS = ['MESA_VK_DEVICE_SELECT', 'MESA_VK_DEVICE_SELECT_FORCE_DEFAULT_DEVICE', 'DRI_PRIME'];

function dawnInstance(flags: string[]): GPU {
  const key = [...flags, ...SELECTION_VARS.map((k) => `${k}=${process.env[k] ?? ''}`)].join('\n');
  let gpu = gpuByFlags.get(key);
  if (!gpu) {
    gpu = dawnCreate!(flags);
    gpuByFlags.set(key, gpu);
  }
  return gpu;
}

let vulkanEnvReady = false;

/**
 * Adds SwiftShader to the Vulkan loader's drivers (unless the user chose drivers), and hides Debian's lavapipe,
 * which Dawn rejects noisily. Once per process (child processes that enumerate devices inherit the result).
 */
export function prepareVulkanEnv(): void {
  if (vulkanEnvReady || !isNode) return;
  vulkanEnvReady = true;
  const env = process.env;
  // Dawn prints an error line for every instance when this is unset or not 0700.
  if (!env.XDG_RUNTIME_DIR) env.XDG_RUNTIME_DIR = ensurePrivateDir();
  if (env.VK_ICD_FILENAMES || env.VK_DRIVER_FILES) return;
  if (fileExists(SWIFTSHADER_ICD)) {
    env.VK_ADD_DRIVER_FILES = env.VK_ADD_DRIVER_FILES
      ? `${env.VK_ADD_DRIVER_FILES}:${SWIFTSHADER_ICD}`
      : SWIFTSHADER_ICD;
  }
  if (!env.VK_LOADER_DRIVERS_DISABLE && !env.WGPT_KEEP_LAVAPIPE) env.VK_LOADER_DRIVERS_DISABLE = '*lvp*';
}

function fileExists(path: string): boolean {
  try {
    // Synchronous require of fs keeps this function usable before any await.
    const fs = nodeRequire('fs') as typeof import('fs');
    return fs.existsSync(path);
  } catch {
    return false;
  }
}

function ensurePrivateDir(): string {
  const fs = nodeRequire('fs') as typeof import('fs');
  const os = nodeRequire('os') as typeof import('os');
  const dir = `${os.tmpdir()}/wgpt-runtime-${process.getuid?.() ?? 0}`;
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  return dir;
}

function nodeRequire(id: string): unknown {
  const p = process as unknown as { getBuiltinModule?: (id: string) => unknown };
  if (p.getBuiltinModule) return p.getBuiltinModule(id);
  throw new WgptError(`node:${id} unavailable (Node >= 20.16 needed)`);
}

const SOFTWARE = /swiftshader|llvmpipe|lavapipe|software|microsoft basic/i;

/** Every adapter Dawn can open in this process (Node), or the browser's one adapter. */
export async function listAdapters(): Promise<AdapterEntry[]> {
  if (!isNode) {
    const a = await navigator.gpu?.requestAdapter();
    if (!a) return [];
    return [
      {
        index: 0,
        backend: 'browser',
        name: a.info.description || a.info.device || a.info.vendor || 'browser adapter',
        software: a.info.architecture === 'swiftshader',
      },
    ];
  }
  await loadDawn();
  // Dawn's documented way to enumerate: ask for an adapter that does not exist; the error lists the others.
  try {
    const gpu = dawnInstance(['adapter=\u0000wgpt-list-adapters', 'backend=vulkan']);
    await gpu.requestAdapter();
  } catch (e) {
    return parseAdapterList(String((e as Error).message));
  }
  return [];
}

export function parseAdapterList(message: string): AdapterEntry[] {
  const out: AdapterEntry[] = [];
  for (const m of message.matchAll(/\* backend: '([^']*)', name: '([^']*)'/g)) {
    out.push({ index: out.length, backend: m[1]!, name: m[2]!, software: SOFTWARE.test(m[2]!) });
  }
  return out;
}

export function pickAdapter(list: AdapterEntry[], want: string | number | undefined): AdapterEntry {
  const describe = () =>
    list.length
      ? list.map((a) => `  [${a.index}] ${a.name} (${a.backend}${a.software ? ', software' : ''})`).join('\n')
      : '  (none)';
  if (want === undefined || want === '') {
    const hw = list.find((a) => !a.software);
    const chosen = hw ?? list[0];
    if (!chosen) {
      throw new NoAdapterError(
        fileExists(SWIFTSHADER_ICD)
          ? `No WebGPU adapter found, not even SwiftShader at ${SWIFTSHADER_ICD}. ` +
              'Is the Vulkan loader installed? Run: sudo apt-get install libvulkan1'
          : 'No WebGPU adapter found. For a machine without a GPU install SwiftShader and the Vulkan loader: ' +
              'sudo apt-get install chromium libvulkan1',
      );
    }
    return chosen;
  }
  const asIndex = typeof want === 'number' ? want : /^\d+$/.test(want) ? Number(want) : NaN;
  if (!Number.isNaN(asIndex)) {
    const a = list[asIndex];
    if (!a) throw new NoAdapterError(`No adapter with index ${asIndex}. Adapters:\n${describe()}`);
    return a;
  }
  const s = String(want).toLowerCase();
  const a = list.find((x) => x.name.toLowerCase() === s) ?? list.find((x) => x.name.toLowerCase().includes(s));
  if (!a) throw new NoAdapterError(`No adapter named "${want}". Adapters:\n${describe()}`);
  return a;
}

/** Opens one device on the chosen adapter with the adapter's own limits. Call it N times for N independent devices. */
export async function openDevice(opts: OpenOptions = {}): Promise<OpenedDevice> {
  let adapter: GPUAdapter | null;
  let adapterName: string;
  let software: boolean;
  if (isNode) {
    await loadDawn();
    const list = await listAdapters();
    const want = opts.adapter ?? (process.env.WGPT_ADAPTER || undefined);
    const entry = pickAdapter(list, want);
    const enable = [...DEFAULT_ENABLE, ...(opts.enableToggles ?? [])];
    const disable = [...DEFAULT_DISABLE, ...(opts.disableToggles ?? [])];
    const flags = [
      `adapter=${entry.name}`,
      `backend=${entry.backend}`,
      `enable-dawn-features=${enable.join(',')}`,
      `disable-dawn-features=${disable.join(',')}`,
    ];
    adapter = await dawnInstance(flags).requestAdapter({ powerPreference: 'high-performance' });
    adapterName = entry.name;
    software = entry.software;
  } else {
    if (!navigator.gpu)
      throw new NoAdapterError(
        'This browser has no WebGPU (navigator.gpu is undefined). Chromium needs --enable-unsafe-webgpu on Linux.',
      );
    adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
    adapterName = adapter
      ? adapter.info.description || adapter.info.device || adapter.info.vendor || 'browser adapter'
      : '';
    software = adapter?.info.architecture === 'swiftshader';
  }
  if (!adapter) throw new NoAdapterError(`The adapter "${adapterName}" was listed but could not be opened.`);

  const features: GPUFeatureName[] = [];
  const want: GPUFeatureName[] = ['subgroups', 'shader-f16'];
  if (opts.timestamps !== false) want.push('timestamp-query');
  for (const f of want) if (adapter.features.has(f)) features.push(f);

  // The adapter's own limits: WebGPU's defaults (128 MiB per binding) are too small for GPT-2.
  const requiredLimits: Record<string, number> = {};
  for (const key of LIMIT_KEYS) {
    const v = (adapter.limits as unknown as Record<string, number>)[key];
    if (typeof v === 'number') requiredLimits[key] = v;
  }
  const device = await adapter.requestDevice({
    requiredFeatures: features,
    requiredLimits,
    label: `wgpt on ${adapterName}`,
  });
  return { device, adapter, adapterName, software, features: new Set(features) };
}

const LIMIT_KEYS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxUniformBufferBindingSize',
  'maxStorageBuffersPerShaderStage',
  'maxUniformBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'maxBindGroups',
  'maxBindingsPerBindGroup',
];
