// Entry bundled for GPU machines (tools/gpu/build.sh): runs the kernel bench suites at full size on the hardware
// adapter, then, given torch's timings from the same machine (tools/gpu/torch_baseline.py), prints ours beside
// torch's with the ratio.
import { readFileSync } from 'node:fs';
import { runSuites } from '@wgpt/bench';
import matmul from '@wgpt/kernels/matmul/matmul.bench.ts';
import elementwise from '@wgpt/kernels/elementwise/elementwise.bench.ts';
import layernorm from '@wgpt/kernels/layernorm/layernorm.bench.ts';
import classifier from '@wgpt/kernels/classifier/classifier.bench.ts';
import encoder from '@wgpt/kernels/encoder/encoder.bench.ts';
import attention from '@wgpt/kernels/attention/attention.bench.ts';

const args = process.argv.slice(2);
const arg = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const out = arg('--out') ?? 'bench-kernels.json';
const torchFile = arg('--torch');
const quick = args.includes('--quick');

const rows = await runSuites(
  [
    { file: 'kernels/matmul/matmul.bench.ts', suite: matmul },
    { file: 'kernels/elementwise/elementwise.bench.ts', suite: elementwise },
    { file: 'kernels/layernorm/layernorm.bench.ts', suite: layernorm },
    { file: 'kernels/classifier/classifier.bench.ts', suite: classifier },
    { file: 'kernels/encoder/encoder.bench.ts', suite: encoder },
    { file: 'kernels/attention/attention.bench.ts', suite: attention },
  ],
  { quick, out, adapter: arg('--adapter') },
);

if (torchFile) {
  const torch = JSON.parse(readFileSync(torchFile, 'utf8')) as {
    device: string;
    rows: { shape: string; ms: number; tflops: number }[];
  };
  console.log(`\nmatmul against torch fp32 (TF32 off) on ${torch.device}, same machine, same run:\n`);
  console.log('| shape | wgpt version | wgpt TFLOP/s | torch TFLOP/s | ratio |\n|---|---|---:|---:|---:|');
  for (const t of torch.rows) {
    const ours = rows.filter((r) => r.suite === 'matmul' && r.shape.endsWith(t.shape) && r.rate);
    const best = ours.sort((a, b) => b.rate!.value - a.rate!.value)[0];
    if (!best) continue;
    const tf = best.rate!.value / 1000;
    console.log(
      `| ${t.shape} | ${best.name} | ${tf.toFixed(2)} | ${t.tflops.toFixed(2)} | ${(tf / t.tflops).toFixed(2)}x |`,
    );
  }
}
