// `wgpt gpus`: identical GPUs are told apart by the PCI bus Mesa's device-select layer lists; nothing changes where
// it lists none.
import { expect, it } from 'vitest';
import { adapterHeading } from './runtime-commands.ts';

it('adapterHeading adds vendor:device and PCI bus where known, and only then', () => {
  const h200 = { backend: 'vulkan', name: 'NVIDIA H200', software: false, vendor: 'nvidia', pciId: '10de:2335' };
  expect(adapterHeading({ ...h200, index: 0, pci: '0000:18:00.0' })).toBe(
    '[0] NVIDIA H200  (vulkan, nvidia, 10de:2335 at PCI 0000:18:00.0)',
  );
  expect(adapterHeading({ ...h200, index: 1, pci: '0000:2a:00.0' })).toBe(
    '[1] NVIDIA H200  (vulkan, nvidia, 10de:2335 at PCI 0000:2a:00.0)',
  );
  const ss = { index: 2, backend: 'vulkan', name: 'SwiftShader Device (Subzero)', software: true, vendor: 'google' };
  expect(adapterHeading(ss)).toBe('[2] SwiftShader Device (Subzero)  (vulkan, software, google)');
});
