// What the main thread and the worker threads of the process step share (workers.ts, worker-entry.ts).
import type { DocResult } from './process.ts';

/**
 * Claim slots shared with each thread. Every document sent to a thread gets an id that is never reused in the
 * process, and slot `id mod CLAIM_SLOTS` holds claim(id, state): the main thread writes claim(id, QUEUED) when it
 * sends the document; the thread swaps it for claim(id, TAKEN) just before it starts on it, and skips the document
 * when the swap fails, i.e. when the main thread swapped it for claim(id, STOLEN) first. This lets the main thread
 * take back queued documents once the input has run out instead of waiting for them. A skipped message can sit in
 * the thread's queue while its slot is reused by a later document; the id in the slot keeps the two apart.
 * CLAIM_SLOTS must exceed the queue depth, so that a slot is never reused while its document is queued.
 */
export const CLAIM_SLOTS = 64;
export const QUEUED = 1, TAKEN = 2, STOLEN = 3;
/** Slot value for a document id and a state (ids taken mod 2^28, so the value fits an Int32). */
export const claim = (id: number, state: number): number => (id % 0x10000000) * 4 + state;

/** The main thread's message for one document. */
export type DocMessage<Item> = { id: number; item: Item };
/** A thread's answer for one document, on its result port. */
export type Reply = { id: number; result?: DocResult; error?: string };
