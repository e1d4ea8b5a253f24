// Runs in a browser page: opens the page's WebGPU adapter with the same runtime as Node, runs linear + GELU +
// cross-entropy forward and backward, and publishes the results on window for the test to compare.
import { backward, Gpu, tensor, tidyAsync } from '@wgpt/runtime';
import { crossEntropy, gelu, linear, mean } from '@wgpt/kernels';

declare global {
  interface Window {
    wgptResult?: { adapter: string; out: number[]; loss: number; dw: number[] } | { error: string };
  }
}

async function main() {
  const gpu = await Gpu.open();
  const input = (
    window as unknown as {
      wgptInput: { x: number[]; w: number[]; b: number[]; t: number[]; M: number; C: number; OC: number };
    }
  ).wgptInput;
  const { M, C, OC } = input;
  const result = await tidyAsync(async () => {
    const x = tensor(gpu, input.x, [M, C]);
    const w = tensor(gpu, input.w, [OC, C], 'f32', { requiresGrad: true });
    const b = tensor(gpu, input.b, [OC]);
    const t = tensor(gpu, input.t, [M], 'i32');
    const h = gelu(linear(x, w, b));
    const loss = mean(crossEntropy(h, t));
    backward(loss);
    return {
      adapter: gpu.describe(),
      out: Array.from(await h.read()),
      loss: await loss.item(),
      dw: Array.from(await w.grad!.read()),
    };
  });
  gpu.destroy();
  window.wgptResult = result;
}

main().catch((e: Error) => {
  window.wgptResult = { error: `${e.name}: ${e.message}` };
});
