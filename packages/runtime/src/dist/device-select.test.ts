// Mesa's device-select layer: parsing its device list, rank i → GPU i by PCI bus, the environment each rank sets,
// the refusals; and two real rank processes whose Dawn instances each see only the device chosen for them.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { AdapterEntry } from '../device.ts';
import {
  applyEnv,
  checkSelected,
  driPrimeProblem,
  launchLocal,
  matchLayerDevices,
  needsLayer,
  parseDeviceSelectList,
  pciTag,
  planRankGpu,
  selectionEnv,
  type LayerDevice,
} from './index.ts';

const ROOT = new URL('../../../../', import.meta.url).pathname;
const fixture = (name: string) => readFileSync(new URL(`../../test/device-select/${name}`, import.meta.url), 'utf8');
const SWIFTSHADER = 'SwiftShader Device (Subzero)';
const LLVMPIPE = 'llvmpipe (LLVM 15.0.6, 256 bits)';
const H200 = 'NVIDIA H200';
const adapter = (index: number, name: string, software = false): AdapterEntry => ({
  index,
  backend: 'vulkan',
  name,
  software,
});

describe('parseDeviceSelectList', () => {
  it("the layer's real output here: SwiftShader and lavapipe, no PCI bus (neither driver reports one)", () => {
    expect(parseDeviceSelectList(fixture('swiftshader-lavapipe.txt'))).toEqual([
      { index: 0, vendorId: 0x1ae0, deviceId: 0xc0de, name: SWIFTSHADER, type: 'CPU' },
      { index: 1, vendorId: 0x10005, deviceId: 0, name: LLVMPIPE, type: 'CPU' },
    ]);
    expect(parseDeviceSelectList(fixture('swiftshader.txt'))).toHaveLength(1);
  });
  it('two identical GPUs on different buses; the zeros printed for SwiftShader are no bus', () => {
    expect(parseDeviceSelectList(fixture('nvidia-2gpu.txt'))).toEqual([
      { index: 0, vendorId: 0x10de, deviceId: 0x2335, name: H200, type: 'discrete GPU', pci: '0000:18:00.0' },
      { index: 1, vendorId: 0x10de, deviceId: 0x2335, name: H200, type: 'discrete GPU', pci: '0000:2a:00.0' },
      { index: 2, vendorId: 0x1ae0, deviceId: 0xc0de, name: SWIFTSHADER, type: 'CPU' },
    ]);
  });
  it('no list (no layer): undefined; the list ends at the first other line', () => {
    expect(parseDeviceSelectList('Warning: Vulkan shaderUniform*ArrayDynamicIndexing required.\n')).toBeUndefined();
    const text = `noise\n${fixture('swiftshader-lavapipe.txt')}Warning: something else\n  GPU 7: 1:2 "x" CPU\n`;
    expect(parseDeviceSelectList(text)!.map((d) => d.index)).toEqual([0, 1]);
  });
});

describe('selection environment', () => {
  const nv = parseDeviceSelectList(fixture('nvidia-2gpu.txt'))!;
  const soft = parseDeviceSelectList(fixture('swiftshader-lavapipe.txt'))!;
  it("PCI tags in the layer's DRI_PRIME spelling", () => {
    expect(pciTag('0000:2a:00.0')).toBe('pci-0000_2a_00_0');
    expect(pciTag('0001:C1:1F.7')).toBe('pci-0001_c1_1f_7');
    expect(() => pciTag('2a:00.0')).toThrow(/"2a:00.0" is not of the form 0000:18:00.0/);
  });
  it('a unique vendor:device id selects by id; identical ones by bus, with MESA_VK_DEVICE_SELECT removed', () => {
    const force = { MESA_VK_DEVICE_SELECT_FORCE_DEFAULT_DEVICE: '1' };
    expect(selectionEnv(soft, soft[1]!)).toStrictEqual({
      MESA_VK_DEVICE_SELECT: '10005:0',
      DRI_PRIME: undefined,
      ...force,
    });
    expect(selectionEnv(nv, nv[2]!)).toStrictEqual({
      MESA_VK_DEVICE_SELECT: '1ae0:c0de',
      DRI_PRIME: undefined,
      ...force,
    });
    expect(selectionEnv(nv, nv[1]!)).toStrictEqual({
      MESA_VK_DEVICE_SELECT: undefined,
      DRI_PRIME: 'pci-0000_2a_00_0',
      ...force,
    });
    const nobus = nv.map(({ pci: _, ...d }) => d as LayerDevice);
    expect(() => selectionEnv(nobus, nobus[1]!)).toThrow(/device 1 "NVIDIA H200" \(10de:2335\) .* no PCI bus/);
  });
  it('applyEnv sets and removes', () => {
    const to: NodeJS.ProcessEnv = { MESA_VK_DEVICE_SELECT: 'list', KEEP: 'x' };
    applyEnv({ MESA_VK_DEVICE_SELECT: undefined, DRI_PRIME: 'pci-0000_18_00_0' }, to);
    expect(to).toStrictEqual({ DRI_PRIME: 'pci-0000_18_00_0', KEEP: 'x' });
  });
  it("Dawn's adapters matched to the layer's devices by name and occurrence (Dawn leaves out lavapipe)", () => {
    const dawn = [adapter(0, H200), adapter(1, H200), adapter(2, SWIFTSHADER, true)];
    expect(matchLayerDevices(dawn, nv).map((d) => d?.pci)).toEqual(['0000:18:00.0', '0000:2a:00.0', undefined]);
    expect(matchLayerDevices([adapter(0, SWIFTSHADER, true)], soft)).toEqual([soft[0]]);
  });
});

describe('planRankGpu', () => {
  const nv = { devices: parseDeviceSelectList(fixture('nvidia-2gpu.txt'))! };
  const dawn = [adapter(0, H200), adapter(1, H200), adapter(2, SWIFTSHADER, true)];
  it('identical GPUs: rank i selects the bus of GPU i', () => {
    expect(needsLayer(dawn)).toBe(true);
    const plans = [0, 1].map((r) => planRankGpu(dawn, r, 2, { layer: nv }));
    expect(plans.map((p) => p.env?.DRI_PRIME)).toEqual(['pci-0000_18_00_0', 'pci-0000_2a_00_0']);
    expect(plans.map((p) => p.env && p.device.index)).toEqual([0, 1]);
  });
  it('GPUs with names of their own are opened by index, without the layer', () => {
    const list = [adapter(0, SWIFTSHADER, true), adapter(1, H200), adapter(2, 'NVIDIA H100 80GB HBM3')];
    expect(needsLayer(list)).toBe(false);
    expect([0, 1].map((r) => planRankGpu(list, r, 2))).toEqual([{ adapter: 1 }, { adapter: 2 }]);
  });
  it('software only: the default adapter, ranks share the CPU', () => {
    expect(planRankGpu([adapter(0, SWIFTSHADER, true)], 3, 4)).toEqual({});
  });
  it('refusals say why and what to do', () => {
    const why = 'not installed: install mesa-vulkan-drivers (Debian, Ubuntu)';
    const noLayer = () => planRankGpu(dawn, 1, 2, { layer: { why } });
    expect(noLayer).toThrow(/^rank 1 should open adapter \[1\] "NVIDIA H200", but dawn.node opens .* is \[0\]; /);
    expect(noLayer).toThrow(/device-select layer, which is not installed: install mesa-vulkan-drivers \(Debian/);
    expect(noLayer).toThrow(/; or let the launcher give each rank one GPU .*, or set WGPT_DIST_SHARE_GPU=1 /);
    const nobus = { devices: nv.devices.map(({ pci: _, ...d }) => d as LayerDevice) };
    expect(() => planRankGpu(dawn, 1, 2, { layer: nobus })).toThrow(/lists no PCI bus for it .*VK_EXT_pci_bus_info/);
    expect(() => planRankGpu(dawn, 1, 2, { layer: { devices: [] } })).toThrow(/does not list it \(its list: none\)/);
    expect(() => planRankGpu(dawn, 0, 3, { layer: nv })).toThrow(/3 ranks on this node but 2 GPU\(s\): .*at most 2/);
    expect(() => planRankGpu(dawn, 0, 2, { isolated: true })).toThrow(
      /WGPT_DIST_GPU_ISOLATED=1 says the launcher gave rank 0 one GPU, but this process sees 2: \[0\] "NVIDIA H200"/,
    );
  });
  it('sharing and launcher isolation need no layer', () => {
    expect(planRankGpu(dawn, 1, 2, { share: true })).toEqual({ adapter: 1 });
    expect(planRankGpu([adapter(0, H200), adapter(1, SWIFTSHADER, true)], 5, 8, { isolated: true })).toEqual({
      adapter: 0,
    });
  });
  it('DRI_PRIME is refused where the layer reverses it or cannot be checked; the selection is checked in Dawn', () => {
    const how = 'DRI_PRIME=pci-0000_2a_00_0 MESA_VK_DEVICE_SELECT_FORCE_DEFAULT_DEVICE=1';
    expect(driPrimeProblem('ok', 1, how)).toBeUndefined();
    expect(driPrimeProblem('reversed', 1, how)).toMatch(
      /^rank 1 would select its GPU with DRI_PRIME=pci-0000_2a_00_0 .*reversed/,
    );
    expect(driPrimeProblem('unknown', 1, how)).toMatch(/without a CPU Vulkan device \(SwiftShader/);
    const dev = nv.devices[1]!;
    expect(() => checkSelected([adapter(0, H200)], dev, 1, how)).not.toThrow();
    expect(() => checkSelected(dawn, dev, 1, how)).toThrow(
      /device 1 "NVIDIA H200" at 0000:2a:00.0 .* sees "NVIDIA H200", "NVIDIA H200", "SwiftShader/,
    );
    expect(() => checkSelected([adapter(0, SWIFTSHADER, true)], dev, 1, how)).toThrow(
      /sees "SwiftShader .*" \(software\)/,
    );
    expect(() => checkSelected([], dev, 1, how)).toThrow(/sees none/);
  });
});

const LVP = '/usr/share/vulkan/icd.d/lvp_icd.x86_64.json';
const SS = '/usr/lib/chromium/vk_swiftshader_icd.json';
const LAYER = '/usr/share/vulkan/implicit_layer.d/VkLayer_MESA_device_select.json';
const missing = [LVP, SS, LAYER].filter((f) => !existsSync(f));
const out = mkdtempSync(join(tmpdir(), 'wgpt-devsel-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

// Needs lavapipe and the layer (Debian: mesa-vulkan-drivers) besides SwiftShader (chromium).
it.skipIf(missing.length)(
  `2 ranks: each Dawn instance sees only the device its selection names${
    missing.length ? ` (skipped: no ${missing.join(', ')})` : ''
  }`,
  async () => {
    const stderr = ['', ''];
    const res = await launchLocal({
      nproc: 2,
      command: process.execPath,
      args: ['scripts/run-ts.mjs', 'packages/runtime/test/device-select-rank.ts', out],
      cwd: ROOT,
      env: { VK_ICD_FILENAMES: `${SS}:${LVP}` },
      stdio: ['ignore', 'ignore', 'pipe'],
      graceMs: 1500,
      onSpawn: (r, child) => child.stderr!.on('data', (d: Buffer) => (stderr[r] += d.toString())),
    });
    expect(
      res.exits.map((e) => e.code),
      stderr.join('\n'),
    ).toEqual([0, 0]);
    const rank = [0, 1].map((r) => JSON.parse(readFileSync(join(out, `select-rank${r}.json`), 'utf8')));
    // Both ranks: the layer lists both drivers, and Dawn, without a selection, opens SwiftShader (it rejects lavapipe).
    for (const r of rank) expect(r.before.map((a: AdapterEntry) => a.name)).toEqual([SWIFTSHADER]);
    expect(rank.map((r) => r.device.name)).toEqual([SWIFTSHADER, LLVMPIPE]);
    expect(rank.map((r) => r.env.MESA_VK_DEVICE_SELECT)).toEqual(['1ae0:c0de', '10005:0']);
    // Rank 0's Dawn instance is given SwiftShader alone: it never sees lavapipe (no rejection printed).
    expect(rank[0].after.map((a: AdapterEntry) => a.name)).toEqual([SWIFTSHADER]);
    const after = stderr.map((s) => s.slice(s.indexOf('--- selected')));
    expect(after[0]).not.toMatch(/While initializing adapter/);
    // Rank 1's is given lavapipe alone: Dawn tries it, rejects it, and has no adapter; SwiftShader is hidden.
    expect(rank[1].after).toEqual([]);
    expect(after[1]).toMatch(/While initializing adapter/);
    expect(stderr[0]).toContain('--- selected');
  },
  120_000,
);
