// Worker thread body: a long-lived pool thread. Gets {config} (builds its DocProcessor) and {seq, item} messages,
// processes documents one at a time in arrival order, and posts {seq, result} or {seq, error} on its result port,
// then bumps the shared signal so that a waiting main thread wakes up.
import { workerData, parentPort, type MessagePort } from 'node:worker_threads';
import { loadLidModel } from './langid.ts';
import type { PipelineConfig } from './config.ts';
import { DocProcessor } from './process.ts';
import type { RawRecord } from './read.ts';
import { claim, CLAIM_SLOTS, QUEUED, TAKEN, type DocMessage, type Reply } from './worker-protocol.ts';

const { port, signal, claims } = workerData as { port: MessagePort; signal: Int32Array; claims: Int32Array };
// Load the language model at start-up, while the first document may still be on its way: default configs need it.
// Then tell the pool that this thread is ready (prestartWorkers waits for that).
loadLidModel()
  .catch(() => { /* reported by the first document that needs it */ })
  .finally(() => parentPort!.postMessage({ ready: true }));
let proc: DocProcessor | null = null;
let configError: Error | null = null;
let chain: Promise<void> = Promise.resolve();

function reply(msg: Reply): void {
  port.postMessage(msg);
  Atomics.add(signal, 0, 1);
  Atomics.notify(signal, 0);
}

parentPort!.on('message', (msg: { config: PipelineConfig } | DocMessage<RawRecord>) => {
  chain = chain.then(async () => {
    if ('config' in msg) {
      try {
        proc = new DocProcessor(msg.config);
        configError = null;
      } catch (e) {
        proc = null;
        configError = e as Error;
      }
      return;
    }
    // Taken back by the main thread before we got to it: nothing to do, nothing to report.
    const queued = claim(msg.id, QUEUED);
    if (Atomics.compareExchange(claims, msg.id % CLAIM_SLOTS, queued, claim(msg.id, TAKEN)) !== queued) return;
    try {
      if (!proc) throw configError ?? new Error('no config received before the first document');
      reply({ id: msg.id, result: await proc.process(msg.item) });
    } catch (e) {
      reply({ id: msg.id, error: (e as Error).stack ?? String(e) });
    }
  });
});
