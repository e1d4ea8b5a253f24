// What the main thread and the worker threads of the process step share (workers.ts, worker-entry.ts).
import type { DocResult } from './process.ts';

/**
 * Claim slots shared with each thread, one per queued document (slot seq mod CLAIM_SLOTS): the main thread marks a
 * document QUEUED when it sends it; the thread moves it to TAKEN just before it starts on it, and skips it if the
 * main thread moved it to STOLEN first. This lets the main thread take back queued documents once the input has run
 * out instead of waiting for them. CLAIM_SLOTS must exceed the queue depth, so that a slot is never reused while its
 * document is queued.
 */
export const CLAIM_SLOTS = 64;
export const QUEUED = 1, TAKEN = 2, STOLEN = 3;

/** A thread's answer for one document, on its result port. */
export type Reply = { seq: number; result?: DocResult; error?: string };
