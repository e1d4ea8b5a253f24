// Which GPU each rank of a node opens. dawn.node (webgpu 0.6.2) chooses an adapter only through its `adapter=`
// flag, taking the first adapter of the backend whose name contains the given text (src/dawn/node/binding/GPU.cpp
// in Dawn), and the name is the Vulkan device name, the same for every GPU of one model; NVIDIA's Vulkan driver
// ignores CUDA_VISIBLE_DEVICES. So on a node of identical GPUs every rank would silently open GPU 0: that is
// refused here with what to do, rather than run N ranks on one GPU.
import { WgptError } from '@wgpt/base/errors';
import { Gpu } from '../gpu.ts';
import { listAdapters, type AdapterEntry } from '../device.ts';
import type { DistEnv } from './env.ts';

/**
 * The adapter (an index into `list`) for local rank `localRank` of `localWorldSize`, or undefined for the default
 * (a machine with only software adapters, where ranks share the CPU). With `share`, ranks may share a GPU.
 */
export function adapterForRank(
  list: readonly AdapterEntry[],
  localRank: number,
  localWorldSize: number,
  share = false,
): number | undefined {
  const hw = list.filter((a) => !a.software);
  if (!hw.length) return undefined;
  const fix = 'run one rank per GPU that dawn.node can tell apart, or set WGPT_DIST_SHARE_GPU=1 to share knowingly';
  if (localWorldSize > hw.length && !share) {
    throw new WgptError(`${localWorldSize} ranks on this node but ${hw.length} GPU(s): ranks would share one; ${fix}`);
  }
  const want = hw[localRank % hw.length]!;
  const opened = list.find((a) => a.backend === want.backend && a.name.includes(want.name))!;
  if (opened.index !== want.index && !share) {
    throw new WgptError(
      `rank ${localRank} should open adapter [${want.index}] "${want.name}", but dawn.node opens the first adapter ` +
        `whose name contains that, [${opened.index}]: GPUs of one model cannot be told apart through it; ${fix}`,
    );
  }
  return want.index;
}

/** Opens this rank's device: its own GPU where it can have one (see adapterForRank). */
export async function openRankGpu(env: DistEnv, vars: Record<string, string | undefined> = process.env): Promise<Gpu> {
  if (vars.WGPT_ADAPTER) return Gpu.open(); // chosen by hand
  const adapter = adapterForRank(await listAdapters(), env.localRank, env.localWorldSize, !!vars.WGPT_DIST_SHARE_GPU);
  return Gpu.open({ adapter });
}
