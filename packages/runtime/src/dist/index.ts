// Data parallelism between processes (Node only: it needs sockets and files, so it is not in the runtime's
// browser-safe main entry).
export * from './collective.ts';
export * from './env.ts';
export * from './shm.ts';
export * from './torch.ts';
export * from './launch.ts';
export * from './device.ts';
export * from './gpu-select.ts';
export * from './sum.ts';
export * from './mmap.ts';
export * from './device-select.ts';
