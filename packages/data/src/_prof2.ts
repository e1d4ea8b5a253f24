import fs from 'node:fs';
import { runPipeline } from './pipeline.ts';
import { ensureCorpus } from './corpus.ts';
import { getEncoding } from '@wgpt/tokenizer';
const warc = await ensureCorpus('htmlpages');
const gpt2 = getEncoding('r50k_base');
for (const workers of (process.env.W ?? '1,2,1,2,1,2').split(',').map(Number)) {
  const out = `/tmp/dprof/out-${workers}-${Date.now()}`;
  const c0 = process.cpuUsage();
  const t = performance.now();
  const r = await runPipeline({ inputs: [warc], output: out, ...(process.env.U ? { units: Number(process.env.U) } : {}) }, { workers, tokenizer: gpt2, log: (l) => { if (l.includes("busy")) console.log(l); } });
  const ms = performance.now() - t;
  const c = process.cpuUsage(c0);
  console.log(`workers=${workers} ${ms.toFixed(0)} ms cpu=${((c.user + c.system)/1e3).toFixed(0)} ms (${((c.user+c.system)/1e3/ms).toFixed(2)} cores) kept=${r.manifest!.totals.train.docs + r.manifest!.totals.val.docs}`);
  fs.rmSync(out, { recursive: true });
}
