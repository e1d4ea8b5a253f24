export * from './errors.ts';
export * from './options.ts';
