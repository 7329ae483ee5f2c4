import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../shared/domain/config.ts';
import { UnitError } from '../shared/domain/units.ts';
import { TickInputError } from '../shared/feed/publisher.ts';
import { EnvironmentValueError } from '../shared/local/deployment.ts';
import { SeedFileError } from '../shared/local/seed.ts';
import { PriceFileError } from '../shared/prices/parse.ts';
import { BookError } from '../shared/sim/book.ts';
import { ProviderParamsError } from '../shared/sim/providers.ts';
import { UsageError } from './args.ts';
import { runConfig } from './config.ts';
import { type AnyExitCode, ownExitCodesText } from './exit-codes.ts';
import { OperatorInputError } from './ops/common.ts';
import { runDlq } from './ops/dlq.ts';
import { runInject, runReplay } from './ops/events.ts';
import { runLiquidations } from './ops/liquidations.ts';
import { runProviders } from './ops/providers.ts';
import { runFeed, runFund, runPositions, runSeed } from './ops/seed.ts';
import { runStatus } from './ops/status.ts';
import { printable } from './printable.ts';
import { type CliIo, runSimulate } from './simulate.ts';

/**
 * The `backstop` command line. Exit codes: 0 done, 2 bad arguments or input, a bad BACKSTOP_AWS_* variable included
 * (one line on stderr, no stack trace), 1 an internal failure (one line; BACKSTOP_DEBUG=1 adds the stack).
 */

export const USAGE = `Usage: backstop <command> [options]

Commands:
  simulate   replay a crash through the backstop and compare it with market-only liquidation
  demo       simulate, writing its report to report.html unless --report names another (npm run demo)
  config     config digest [--config FILE]: a risk configuration's digest, as a stack's RiskConfigDigest output
             shows it and a liquidation's claim records its start, without replaying anything
  local      local up | local down: the whole stack on the local AWS emulator (moto)
  seed       seed positions | seed providers: a synthetic book or a file, liquidity providers
  fund       fund deposit | withdraw | index-journal: move money in or out of the insurance fund, index its journal;
             fund statement: the fund's statement for a period (balances, movements by kind, double-entry postings)
  feed       feed resume: let a price feed that restarted its sequence drive its market again
  positions  positions reindex: price a market's open positions again after a change of its margin;
             positions index: key positions older than ADL's indexes into them (once, after that upgrade)
  inject     inject tick: put one price tick on the bus
  replay     replay a price file as ticks (paced or at max speed)
  status     positions, liquidations, auctions, queues, insurance fund, circuit breakers
  dlq        dlq list | redrive | discard: dead-lettered messages, why they failed, send them back
  liquidations  liquidations overdue [--resend] | index: open liquidations no message is moving, resume them;
             liquidations show <id> | --position <id>: one liquidation's story (fills, auction, settlement, ledger),
             or a position's liquidations and those whose ADL reduced or closed it
  providers  providers show <id> | list [--market SYMBOL]: a liquidity provider's terms, capital left, what it
             won in the auctions (totals per market, its latest fills with their edge at the mark)

The operator commands but local take --target local|localstack|aws, --endpoint, --stage and --region (local up:
--stage and --region).

Exit codes: 0 done; 2 a bad argument or input; 1 a failure (the target, the emulator, what a command found wrong,
an internal error); 130 interrupted (Ctrl-C); ${ownExitCodesText()} say what their
others mean in their help.

Run "backstop <command> --help" for the options of a command.
`;

const COMMANDS: Readonly<Record<string, (argv: readonly string[], io: CliIo) => Promise<AnyExitCode>>> = {
  simulate: runSimulate,
  // `npm run demo`: simulate, writing report.html unless --report names another file.
  demo: (argv, io) => runSimulate(argv, io, 'report.html'),
  config: runConfig,
  // Loaded on demand: the local runner brings the Lambda handlers, whose tracer turns on async hooks for the
  // whole process (every promise then costs about 10x: the crash replay would pay it for nothing).
  local: async (argv, io) => (await import('./ops/local.ts')).runLocal(argv, io),
  seed: runSeed,
  fund: runFund,
  feed: runFeed,
  positions: runPositions,
  inject: runInject,
  replay: runReplay,
  status: runStatus,
  dlq: runDlq,
  liquidations: runLiquidations,
  providers: runProviders,
};

/** Errors that mean "the input is wrong", reported as one line with exit code 2. */
const INPUT_ERRORS = [
  UsageError,
  PriceFileError,
  UnitError,
  ConfigError,
  BookError,
  ProviderParamsError,
  OperatorInputError,
  SeedFileError,
  TickInputError,
  EnvironmentValueError,
];

export async function main(argv: readonly string[], io: CliIo = process): Promise<AnyExitCode> {
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
    // An AWS error's message is the service's (or the endpoint's) text: escaped (security48b-terminal-text), its line
    // feeds too, so that it is one line whose start reads as before, never one that forges another (terminal49-error-lines).
    const message = printable(error instanceof Error ? error.message : String(error));
    if (INPUT_ERRORS.some((kind) => error instanceof kind)) {
      // A mistyped flag, or a value without its flag (`fund deposit 250000`, `npm run demo -- 50000`, as node's parser
      // says it for simulate: onboard49-word-hint): say where the right one is listed, still on one line.
      const hint =
        error instanceof UsageError &&
        /^Unknown option|^Unexpected argument|: unexpected argument "/.test(message) &&
        command
          ? ` (backstop ${command} --help lists its options)`
          : '';
      io.stderr.write(`backstop: ${message}${hint}\n`);
      return 2;
    }
    io.stderr.write(`backstop: internal error: ${message}\n`);
    if (process.env.BACKSTOP_DEBUG === '1' && error instanceof Error)
      io.stderr.write(`${debugStack(error)}\n`);
    return 1;
  }
}

/**
 * The stack BACKSTOP_DEBUG=1 adds: its frames a line each, the message in it on one line as the error line says it
 * (terminal49-error-lines).
 */
export function debugStack(error: Error): string {
  const stack = error.stack ?? '';
  const at = error.message === '' ? -1 : stack.indexOf(error.message);
  if (at < 0) return printable(stack, true);
  const end = at + error.message.length;
  return `${printable(stack.slice(0, at), true)}${printable(error.message)}${printable(stack.slice(end), true)}`;
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
