// Telling identical GPUs apart through Mesa's Vulkan device-select layer (an implicit layer of the Vulkan loader,
// shipped in Debian's and Ubuntu's mesa-vulkan-drivers). dawn.node can only pick an adapter by name, so on a node
// of one GPU model every name is the same; the layer sits between Dawn and the drivers and, per process,
// - MESA_VK_DEVICE_SELECT=list prints every device to stderr (with its PCI bus where a driver has
//   VK_EXT_pci_bus_info) and ends the process (exit status 0) when the Vulkan instance enumerates devices;
// - MESA_VK_DEVICE_SELECT=vid:did or DRI_PRIME=pci-DDDD_BB_DD_F chooses a device, and
//   MESA_VK_DEVICE_SELECT_FORCE_DEFAULT_DEVICE=1 hides all the others;
// - NODEVICE_SELECT=1 switches it off.
// A rank sets these before Dawn makes its Vulkan instance; Dawn then sees its GPU and nothing else.
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { WgptError } from '@wgpt/base/errors';
import { parseAdapterList, prepareVulkanEnv, type AdapterEntry } from '../device.ts';

/** One device as the layer lists it. */
export interface LayerDevice {
  /** Position in the layer's list (the loader's order). */
  index: number;
  vendorId: number;
  deviceId: number;
  /** The Vulkan device name, which is also dawn.node's adapter name. */
  name: string;
  /** 'discrete GPU', 'integrated GPU', 'virtual GPU', 'CPU' or 'other'. */
  type: string;
  /** PCI address, "0000:18:00.0", where the driver reports one. */
  pci?: string;
}

export type LayerListing = { devices: LayerDevice[] } | { devices?: undefined; why: string };

/** The variables a rank sets (undefined: removed) so that the layer exposes one device. */
export type SelectionEnv = Record<string, string | undefined>;

const hex = (n: number) => n.toString(16);
export const pciId = (d: LayerDevice) => `${hex(d.vendorId)}:${hex(d.deviceId)}`;
export const isCpu = (d: LayerDevice) => d.type === 'CPU';

/**
 * The devices in the layer's `MESA_VK_DEVICE_SELECT=list` output (its stderr), or undefined when it printed none
 * (no layer). Lines look like `  GPU 1: 10de:2335 "NVIDIA H200" discrete GPU 0000:18:00.0`.
 */
export function parseDeviceSelectList(text: string): LayerDevice[] | undefined {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.trim() === 'selectable devices:');
  if (start < 0) return undefined;
  const out: LayerDevice[] = [];
  const bus = /[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-9a-f]/.source;
  const re = new RegExp(`^\\s*GPU (\\d+): ([0-9a-f]+):([0-9a-f]+) "(.*)" (.+?)(?: (${bus}))?\\s*$`, 'i');
  for (const line of lines.slice(start + 1)) {
    const m = re.exec(line);
    if (!m) break;
    // Once any driver has VK_EXT_pci_bus_info the layer prints a bus for every device, zeros where a driver has
    // none (SwiftShader, lavapipe); 0000:00:00.0 is the host bridge, never a GPU.
    const pci = m[6] && m[6] !== '0000:00:00.0' ? m[6].toLowerCase() : undefined;
    out.push({
      index: Number(m[1]),
      vendorId: parseInt(m[2]!, 16),
      deviceId: parseInt(m[3]!, 16),
      name: m[4]!,
      type: m[5]!,
      ...(pci ? { pci } : {}),
    });
  }
  return out;
}

/** The layer's DRI_PRIME spelling of a PCI address: 0000:18:00.0 → pci-0000_18_00_0. */
export function pciTag(pci: string): string {
  const m = /^([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/i.exec(pci);
  if (!m) throw new WgptError(`PCI address "${pci}" is not of the form 0000:18:00.0`);
  return `pci-${m[1]}_${m[2]}_${m[3]}_${m[4]}`.toLowerCase();
}

/**
 * The environment that makes the layer expose `dev` alone: by vendor:device id where no other listed device has
 * it (MESA_VK_DEVICE_SELECT, which beats DRI_PRIME), else by PCI bus (DRI_PRIME=pci-...).
 */
export function selectionEnv(list: readonly LayerDevice[], dev: LayerDevice): SelectionEnv {
  const force = { MESA_VK_DEVICE_SELECT_FORCE_DEFAULT_DEVICE: '1' };
  if (list.filter((d) => pciId(d) === pciId(dev)).length === 1) {
    return { MESA_VK_DEVICE_SELECT: pciId(dev), DRI_PRIME: undefined, ...force };
  }
  if (dev.pci) return { MESA_VK_DEVICE_SELECT: undefined, DRI_PRIME: pciTag(dev.pci), ...force };
  throw new WgptError(
    `Vulkan device ${dev.index} "${dev.name}" (${pciId(dev)}) has the id of another device and no PCI bus in the ` +
      "device-select layer's list (its driver lacks VK_EXT_pci_bus_info), so nothing can choose it alone",
  );
}

/** `selectionEnv` as shell assignments, for messages. */
export function describeEnv(env: SelectionEnv): string {
  return Object.entries(env)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

/** Sets (or removes) the variables in this process's environment, where the Vulkan loader's layers read them. */
export function applyEnv(env: SelectionEnv, to: NodeJS.ProcessEnv = process.env): void {
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete to[k];
    else to[k] = v;
  }
}

/**
 * For each of dawn.node's adapters, the layer's device it is: the k-th adapter of a name is the k-th listed device
 * of that name (Dawn enumerates in the loader's order and only leaves out devices it rejects).
 */
export function matchLayerDevices(
  adapters: readonly AdapterEntry[],
  devices: readonly LayerDevice[],
): (LayerDevice | undefined)[] {
  const seen = new Map<string, number>();
  return adapters.map((a) => {
    const k = seen.get(a.name) ?? 0;
    seen.set(a.name, k + 1);
    return devices.filter((d) => d.name === a.name)[k];
  });
}

// The child: Dawn makes a Vulkan instance and lists its adapters (its documented way: ask for one that does not
// exist); the listing goes to stdout. Under MESA_VK_DEVICE_SELECT=list the layer ends it before that.
const CHILD = `const { create } = await import(process.argv[1]);
let text = '';
try { await create(['adapter=\\u0000wgpt-list', 'backend=vulkan']).requestAdapter(); }
catch (e) { text = String(e && e.message); }
process.stdout.write(text);
process.exit(0);`;

let webgpuUrl: string | undefined;

/** Runs the child with `env` changes on top of this process's (prepared) environment. */
export function runVulkanChild(env: SelectionEnv): Promise<{ stdout: string; stderr: string; code: number | null }> {
  prepareVulkanEnv();
  webgpuUrl ??= pathToFileURL(createRequire(import.meta.url).resolve('webgpu')).href;
  const childEnv = { ...process.env };
  applyEnv(env, childEnv);
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', CHILD, webgpuUrl!],
      { env: childEnv, timeout: 120_000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolve({ stdout: String(stdout), stderr: String(stderr), code });
      },
    );
  });
}

let listing: Promise<LayerListing> | undefined;

/** The layer's list of this machine's Vulkan devices (a short child process, once per process). */
export function vulkanDeviceListing(): Promise<LayerListing> {
  listing ??= (async (): Promise<LayerListing> => {
    if (process.env.NODEVICE_SELECT === '1') {
      return { why: 'switched off by NODEVICE_SELECT=1: unset it' };
    }
    const r = await runVulkanChild({ MESA_VK_DEVICE_SELECT: 'list' });
    const devices = parseDeviceSelectList(r.stderr);
    if (devices) return { devices };
    if (r.code !== 0) {
      const tail = r.stderr.trim().split('\n').slice(-1)[0] ?? '';
      return { why: `not usable: listing the Vulkan devices failed (exit status ${r.code}${tail ? `: ${tail}` : ''})` };
    }
    return { why: 'not installed: install mesa-vulkan-drivers (Debian, Ubuntu)' };
  })();
  return listing;
}

/** Dawn's adapters in a child process whose environment has these changes. */
export async function dawnAdaptersUnder(env: SelectionEnv): Promise<AdapterEntry[]> {
  return parseAdapterList((await runVulkanChild(env)).stdout);
}

// DRI_PRIME naming no GPU's bus: the bus-less CPU devices all print as 0000:00:00.0, so this names them.
export const PROBE_TAG = 'pci-0000_00_00_0';

/**
 * Whether the layer exposes the device DRI_PRIME names. Debian 12's (Mesa 22.3) takes the last device whose bus
 * differs instead (a reversed string comparison; later Mesa compares correctly), which would put every rank on the
 * wrong GPU. Checked by naming the bus-less CPU devices: a correct layer exposes one of them, a reversed one a GPU.
 * 'unknown' where no CPU device (SwiftShader) is listed to check with.
 */
export async function checkDriPrime(devices: readonly LayerDevice[]): Promise<'ok' | 'reversed' | 'unknown'> {
  if (!devices.some(isCpu) || !devices.some((d) => !isCpu(d) && d.pci)) return 'unknown';
  const seen = await dawnAdaptersUnder({
    MESA_VK_DEVICE_SELECT: undefined,
    DRI_PRIME: PROBE_TAG,
    MESA_VK_DEVICE_SELECT_FORCE_DEFAULT_DEVICE: '1',
  });
  return seen.some((a) => !a.software) ? 'reversed' : 'ok';
}
