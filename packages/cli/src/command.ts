import type { Command } from 'commander';

// Each package that adds `wgpt` subcommands exports `register(program)` from its src/cli.ts;
// packages/cli/src/main.ts calls them all. Long work prints progress to stderr, results to stdout.
export type RegisterCommands = (program: Command) => void;
