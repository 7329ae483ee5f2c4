import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../shared/domain/config.ts';
import { UnitError } from '../shared/domain/units.ts';
import { PriceFileError } from '../shared/prices/parse.ts';
import { BookError } from '../shared/sim/book.ts';
import { ProviderParamsError } from '../shared/sim/providers.ts';
import { UsageError } from './args.ts';
import { type CliIo, runSimulate } from './simulate.ts';

/**
 * The `backstop` command line. Exit codes: 0 done, 2 bad arguments or input (one line on stderr, no stack
 * trace), 1 an internal failure (one line; BACKSTOP_DEBUG=1 adds the stack).
 */

export const USAGE = `Usage: backstop <command> [options]

Commands:
  simulate   replay a crash through the backstop and compare it with market-only liquidation

Run "backstop <command> --help" for the options of a command.
`;

const COMMANDS: Readonly<Record<string, (argv: readonly string[], io: CliIo) => Promise<number>>> = {
  simulate: runSimulate,
};

/** Errors that mean "the input is wrong", reported as one line with exit code 2. */
const INPUT_ERRORS = [UsageError, PriceFileError, UnitError, ConfigError, BookError, ProviderParamsError];

export async function main(argv: readonly string[], io: CliIo = process): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
      (command === undefined ? io.stderr : io.stdout).write(USAGE);
      return command === undefined ? 2 : 0;
    }
    const run = COMMANDS[command];
    if (!run)
      throw new UsageError(`unknown command "${command}" (commands: ${Object.keys(COMMANDS).join(', ')})`);
    return await run(rest, io);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (INPUT_ERRORS.some((kind) => error instanceof kind)) {
      io.stderr.write(`backstop: ${message}\n`);
      return 2;
    }
    io.stderr.write(`backstop: internal error: ${message}\n`);
    if (process.env.BACKSTOP_DEBUG === '1' && error instanceof Error) io.stderr.write(`${error.stack}\n`);
    return 1;
  }
}

/** True when this file is the program (node cli/main.ts), not imported by bin/backstop.mjs or a test. */
function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  process.exitCode = await main(process.argv.slice(2));
}
