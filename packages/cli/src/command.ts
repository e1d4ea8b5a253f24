import type { Command } from 'commander';

// Each package that adds `wgpt` subcommands exports `register(program)` from its src/cli.ts;
// packages/cli/src/main.ts calls them all. Long work prints progress to stderr, results to stdout. Errors a user
// can act on are WgptErrors from @wgpt/base (UsageError for a bad flag or value) and flags parse their values with
// its intArg/numArg; main.ts prints such errors in one line and exits with their code.
export type RegisterCommands = (program: Command) => void;
