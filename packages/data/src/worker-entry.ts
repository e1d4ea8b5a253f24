// Worker thread body: receives unit numbers, runs the process step on each, reports progress and completion.
import { parentPort, workerData } from 'node:worker_threads';
import { loadLidModel } from './langid.ts';
import { processUnit, type Plan } from './pipeline.ts';

const { plan, out } = workerData as { plan: Plan; out: string };
let bytes = 0;
let docs = 0;
let last = Date.now();
// Units arrive one at a time; the first may arrive before the model is loaded and waits in the port's queue.
const ready = (plan.config as { language?: unknown }).language !== false ? loadLidModel() : Promise.resolve();
parentPort!.on('message', async (msg: { unit: number } | { stop: true }) => {
  await ready;
  if ('stop' in msg) { process.exit(0); }
  try {
    await processUnit(plan, out, msg.unit, (b) => {
      bytes += b; docs++;
      if (Date.now() - last > 250) { parentPort!.postMessage({ progress: { docs, bytes } }); docs = 0; bytes = 0; last = Date.now(); }
    });
    parentPort!.postMessage({ progress: { docs, bytes } });
    docs = 0; bytes = 0;
    parentPort!.postMessage({ done: msg.unit });
  } catch (e) {
    parentPort!.postMessage({ error: `unit ${msg.unit}: ${(e as Error).stack ?? e}` });
  }
});
await ready;
parentPort!.postMessage({ ready: true });
