// The `wgpt` program, for tests and embedding: main() runs a command line and returns its exit status.
export { buildProgram, main, VERSION } from './main.ts';
export { reportError, type ErrorReport } from './errors.ts';
