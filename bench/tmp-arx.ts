import { runRank } from '@wgpt/runtime/dist';
const chunk = Number(process.env.CH ?? 1 << 20);
const n = Number(process.env.NF ?? 16 << 20);
await runRank(async (c) => {
  const data = new Float32Array(n).fill(2 ** -40);
  await c.allReduce(data);
  const ts: number[] = [];
  const cs: number[] = [];
  for (let i = 0; i < 9; i++) {
    await c.barrier();
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    await c.allReduce(data);
    const c1 = process.cpuUsage(c0);
    ts.push(performance.now() - t0);
    cs.push((c1.user + c1.system) / 1000);
  }
  ts.sort((a, b) => a - b);
  cs.sort((a, b) => a - b);
  const a = new Float32Array(n).fill(1);
  const b = new Float32Array(n);
  b.set(a);
  const t0 = performance.now();
  for (let i = 0; i < 5; i++) b.set(a);
  const mc = (performance.now() - t0) / 5;
  const msg = `${c.summation} W${c.worldSize} chunk ${chunk} n ${n}: wall min ${ts[0]!.toFixed(1)} ` +
    `med ${ts[4]!.toFixed(1)} ms; cpu med ${cs[4]!.toFixed(1)} ms; memcpy ${mc.toFixed(1)} ms`;
  if (c.rank === 0) console.log(msg);
}, { chunkFloats: chunk });
