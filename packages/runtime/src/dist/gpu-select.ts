// Which GPU each rank of a node opens. dawn.node (webgpu 0.6.2) chooses an adapter only through its `adapter=`
// flag, taking the first adapter of the backend whose name contains the given text (src/dawn/node/binding/GPU.cpp
// in Dawn), and the name is the Vulkan device name, the same for every GPU of one model; NVIDIA's Vulkan driver
// ignores CUDA_VISIBLE_DEVICES. GPUs with names of their own are opened by name. Identical ones are told apart by
// Mesa's device-select layer (device-select.ts): the rank sets the layer's variables so that Dawn's Vulkan
// instance sees its GPU alone. Where that is not possible the rank refuses, with what to do, rather than run N
// ranks on GPU 0.
import { WgptError } from '@wgpt/base/errors';
import { Gpu } from '../gpu.ts';
import { listAdapters, type AdapterEntry } from '../device.ts';
import type { DistEnv } from './env.ts';
import {
  applyEnv,
  checkDriPrime,
  describeEnv,
  matchLayerDevices,
  pciId,
  selectionEnv,
  vulkanDeviceListing,
  type LayerDevice,
  type LayerListing,
  type SelectionEnv,
} from './device-select.ts';

const FIX =
  'let the launcher give each rank one GPU (Slurm --gpus-per-task=1 with ConstrainDevices=yes, then ' +
  'WGPT_DIST_GPU_ISOLATED=1), or set WGPT_DIST_SHARE_GPU=1 to share knowingly ' +
  '(see "GPU selection" in packages/runtime/src/dist/README.md)';

export interface RankGpuOptions {
  /** Ranks may share a GPU (WGPT_DIST_SHARE_GPU=1). */
  share?: boolean;
  /** The launcher gave this process one GPU of its own (WGPT_DIST_GPU_ISOLATED=1): open the one it sees. */
  isolated?: boolean;
  /** The device-select layer's list; needed only where names do not tell the GPUs apart. */
  layer?: LayerListing;
}

/** How a rank opens its GPU: an index into dawn.node's adapters, or the layer's variables for one device. */
export type RankGpuPlan =
  { adapter?: number; env?: undefined } | { adapter?: undefined; env: SelectionEnv; device: LayerDevice };

/** Whether dawn.node, choosing by name, would open another adapter than `a` (an earlier name contains a's). */
function shadowed(list: readonly AdapterEntry[], a: AdapterEntry): AdapterEntry | undefined {
  const opened = list.find((x) => x.backend === a.backend && x.name.includes(a.name))!;
  return opened.index === a.index ? undefined : opened;
}

/** Whether some hardware adapter cannot be opened by its name (then the layer's list is needed). */
export function needsLayer(list: readonly AdapterEntry[]): boolean {
  return list.some((a) => !a.software && shadowed(list, a));
}

/**
 * How local rank `localRank` of `localWorldSize` opens its GPU: by adapter index where names tell the GPUs apart,
 * else by the layer's variables. `{}` (the default adapter) on a machine with only software adapters, where ranks
 * share the CPU.
 */
export function planRankGpu(
  list: readonly AdapterEntry[],
  localRank: number,
  localWorldSize: number,
  opts: RankGpuOptions = {},
): RankGpuPlan {
  const { share = false, layer } = opts;
  const hw = list.filter((a) => !a.software);
  if (!hw.length) return {};
  if (opts.isolated) {
    if (hw.length === 1) return { adapter: hw[0]!.index };
    throw new WgptError(
      `WGPT_DIST_GPU_ISOLATED=1 says the launcher gave rank ${localRank} one GPU, but this process sees ` +
        `${hw.length}: ${hw.map((a) => `[${a.index}] "${a.name}"`).join(', ')}; check the launcher's GPU binding`,
    );
  }
  if (localWorldSize > hw.length && !share) {
    throw new WgptError(
      `${localWorldSize} ranks on this node but ${hw.length} GPU(s): ranks would share one; run at most ` +
        `${hw.length} ranks here, or ${FIX}`,
    );
  }
  const want = hw[localRank % hw.length]!;
  // Where any two GPUs clash by name every rank selects through the layer, so each sees its GPU alone.
  const b = hw.find((a) => shadowed(list, a));
  if (!b || share) return { adapter: want.index };
  const clash =
    `rank ${localRank} should open adapter [${want.index}] "${want.name}", but dawn.node opens the first adapter ` +
    `whose name contains the one given, and for [${b.index}] "${b.name}" that is [${shadowed(list, b)!.index}]`;
  if (!layer?.devices) {
    throw new WgptError(
      `${clash}; GPUs of one model are told apart only through Mesa's Vulkan device-select layer, which is ` +
        `${layer?.why ?? 'not checked'}; or ${FIX}`,
    );
  }
  const device = matchLayerDevices(list, layer.devices)[want.index];
  if (!device) {
    throw new WgptError(
      `${clash}; the device-select layer does not list it (its list: ${describe(layer.devices)}); ${FIX}`,
    );
  }
  const same = layer.devices.filter((d) => pciId(d) === pciId(device));
  if (same.length > 1 && !device.pci) {
    throw new WgptError(
      `${clash}; the device-select layer lists no PCI bus for it (its Vulkan driver lacks VK_EXT_pci_bus_info), so ` +
        `it cannot be chosen alone; ${FIX}`,
    );
  }
  return { env: selectionEnv(layer.devices, device), device };
}

function describe(devices: readonly LayerDevice[]): string {
  return devices.map((d) => `${d.index}: ${pciId(d)} "${d.name}"${d.pci ? ` at ${d.pci}` : ''}`).join(', ') || 'none';
}

/** The adapter index a rank opens where names suffice (identical GPUs throw, as no layer list is given). */
export function adapterForRank(
  list: readonly AdapterEntry[],
  localRank: number,
  localWorldSize: number,
  share = false,
): number | undefined {
  return planRankGpu(list, localRank, localWorldSize, { share }).adapter;
}

/** Opens this rank's device: its own GPU where it can have one (see planRankGpu). */
export async function openRankGpu(env: DistEnv, vars: Record<string, string | undefined> = process.env): Promise<Gpu> {
  if (vars.WGPT_ADAPTER) return Gpu.open(); // chosen by hand
  const list = await listAdapters();
  const share = !!vars.WGPT_DIST_SHARE_GPU;
  const isolated = !!vars.WGPT_DIST_GPU_ISOLATED;
  const layer = !share && !isolated && needsLayer(list) ? await vulkanDeviceListing() : undefined;
  const plan = planRankGpu(list, env.localRank, env.localWorldSize, { share, isolated, layer });
  if (!plan.env) return Gpu.open({ adapter: plan.adapter });
  const how = describeEnv(plan.env);
  if (plan.env.DRI_PRIME) {
    const problem = driPrimeProblem(await checkDriPrime(layer!.devices!), env.localRank, how);
    if (problem) throw new WgptError(problem);
  }
  // Dawn's Vulkan instances are made per set of these variables, so the next listing sees the selection.
  applyEnv(plan.env);
  checkSelected(await listAdapters(), plan.device, env.localRank, how);
  return Gpu.open({ adapter: 0 });
}

/** Why DRI_PRIME cannot be trusted here (checkDriPrime's answer), or undefined where it can. */
export function driPrimeProblem(
  check: 'ok' | 'reversed' | 'unknown',
  localRank: number,
  how: string,
): string | undefined {
  if (check === 'ok') return undefined;
  const start = `rank ${localRank} would select its GPU with ${how}, but `;
  return check === 'reversed'
    ? `${start}this Mesa device-select layer exposes another device than DRI_PRIME names (Mesa 22.3, as in ` +
        `Debian 12, compares the bus reversed): install a later Mesa's mesa-vulkan-drivers, or ${FIX}`
    : `${start}without a CPU Vulkan device (SwiftShader: apt-get install chromium) it cannot check that this ` +
        `Mesa device-select layer honours DRI_PRIME (Debian 12's does not); install one, or ${FIX}`;
}

/** Throws unless dawn.node, under the selection, sees exactly the chosen GPU. */
export function checkSelected(
  seen: readonly AdapterEntry[],
  device: LayerDevice,
  localRank: number,
  how: string,
): void {
  if (seen.length === 1 && !seen[0]!.software && seen[0]!.name === device.name) return;
  const got = seen.map((a) => `"${a.name}"${a.software ? ' (software)' : ''}`).join(', ') || 'none';
  throw new WgptError(
    `rank ${localRank} selected Vulkan device ${device.index} "${device.name}"` +
      `${device.pci ? ` at ${device.pci}` : ''} with ${how}, but dawn.node then sees ${got}: ${FIX}`,
  );
}
