import { accessSync, constants, existsSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, resolve } from 'node:path';
import { renderReport } from '../report/html.ts';
import { baseOf, DEFAULT_RISK_CONFIG, quoteOf, type RiskConfig } from '../shared/domain/config.ts';
import { readPriceFile } from '../shared/prices/file.ts';
import { MAX_POSITIONS } from '../shared/sim/book.ts';
import { MAX_PROVIDERS } from '../shared/sim/providers.ts';
import { type SimulationResult, STRATEGIES, type Strategy, summaryJson } from '../shared/sim/results.ts';
import { prepareSimulation, SIMULATION_DEFAULTS, simulate } from '../shared/sim/setup.ts';
import { choiceOption, intOption, parseOptions, quoteOption, UsageError } from './args.ts';
import { ProgressBar, type ProgressStream } from './progress.ts';
import { renderComparison, runProblems } from './table.ts';

export const SIMULATE_USAGE = `Usage: backstop simulate [options]

Replays a crash through the backstop on the embedded engine and compares the strategy with the others: the
waterfall without its auction (no-auction), and market-only.

  --prices FILE          price file (header with a time and a close/price/mark column, or Binance klines);
                         default: the built-in ETH crash of 12-13 March 2020
  --symbol S             market: ${DEFAULT_RISK_CONFIG.markets.map((m) => m.symbol).join(', ')} (default: from the file name, else ${SIMULATION_DEFAULTS.symbol})
  --positions N          positions in the synthetic book (default ${SIMULATION_DEFAULTS.positions})
  --seed N               seed of the book, providers and scenario noise (default ${SIMULATION_DEFAULTS.seed})
  --strategy S           waterfall | no-auction | market-only (default waterfall): the first column
  --fund AMOUNT          insurance fund at the start, in the market's quote currency (default 0.75 % of
                         the book's open interest)
  --providers N          backstop liquidity providers (default ${SIMULATION_DEFAULTS.providers})
  --json                 print one JSON object (the strategy's run) instead of the table
  --report FILE.html     write the HTML report (of every strategy)
  -h, --help             this help
`;

export interface CliIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: ProgressStream;
}

const OPTIONS = {
  prices: { type: 'string' },
  symbol: { type: 'string' },
  positions: { type: 'string' },
  seed: { type: 'string' },
  strategy: { type: 'string' },
  fund: { type: 'string' },
  providers: { type: 'string' },
  json: { type: 'boolean' },
  report: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Quote assets a price file's name may follow its base asset with (Binance's `BTCUSDT-1m-...`). */
const QUOTE_ASSETS = 'USDT|USDC|BUSD|USD';

/**
 * The market of a symbol argument ("BTC-USD", "btc") or of a file name that starts with its symbol ("btc-usdc-...",
 * "BTCUSDC-1m-...") or its base asset, alone or followed by a quote asset ("btc-...", "BTCUSDT-1m-..."). A whole
 * symbol wins over a base; a base that several markets share (BTC-USD and BTC-USDT) is refused with them named,
 * never taken as the first configured. Otherwise the simulation's default market, or, with `required` (prices
 * sent to a live stack), a usage error: a wrong market's marks would liquidate its book.
 */
export function resolveSymbol(
  config: RiskConfig,
  given: string | undefined,
  file: string | undefined,
  required = false,
): string {
  const symbols = config.markets.map((m) => m.symbol);
  /** One market, or a usage error naming the markets that share the base. */
  const one = (found: string[], what: string): string | undefined => {
    if (found.length > 1)
      throw new UsageError(
        `${what} could be any of ${found.join(', ')} (markets of one base asset): give --symbol as the whole symbol`,
      );
    return found[0];
  };
  if (given !== undefined) {
    const wanted = given.trim().toUpperCase();
    const found = symbols.includes(wanted)
      ? wanted
      : one(
          symbols.filter((s) => baseOf(s) === wanted),
          `--symbol: "${given}"`,
        );
    if (!found)
      throw new UsageError(`--symbol: "${given}" is not a configured market (${symbols.join(', ')})`);
    return found;
  }
  const name = file === undefined ? '' : basename(file).toUpperCase();
  const whole = symbols.filter((s) => new RegExp(`^${baseOf(s)}[-_]?${quoteOf(s)}(?![A-Z0-9])`).test(name));
  const found =
    one(whole, `the file name "${basename(file ?? '')}"`) ??
    one(
      symbols.filter((s) => new RegExp(`^${baseOf(s)}(?:${QUOTE_ASSETS})?(?![A-Z0-9])`).test(name)),
      `the file name "${basename(file ?? '')}"`,
    );
  if (found) return found;
  if (required)
    throw new UsageError(
      `--symbol is required: the file name "${file === undefined ? '' : basename(file)}" names no configured market (${symbols.join(', ')})`,
    );
  return SIMULATION_DEFAULTS.symbol;
}

/**
 * `defaultReport`: the report written when --report is not given (`npm run demo`, which also takes --report
 * after `--`: passing it in the script too made that "--report given twice").
 */
export async function runSimulate(
  argv: readonly string[],
  io: CliIo,
  defaultReport?: string,
): Promise<number> {
  const { values } = parseOptions(argv, OPTIONS);
  if (values.help) {
    if (defaultReport !== undefined)
      io.stdout.write(
        `backstop demo (npm run demo): simulate, writing its report to ${defaultReport} unless --report names another.\n\n`,
      );
    io.stdout.write(SIMULATE_USAGE);
    return 0;
  }
  const config = DEFAULT_RISK_CONFIG;
  const strategy = choiceOption('strategy', values.strategy, STRATEGIES) ?? 'waterfall';
  const positions = intOption('positions', values.positions, 1, MAX_POSITIONS);
  const seed = intOption('seed', values.seed, 0, 2 ** 32 - 1);
  const providers = intOption('providers', values.providers, 0, MAX_PROVIDERS);
  const fund = quoteOption('fund', values.fund);
  const report = values.report ?? defaultReport;
  if (report !== undefined) checkReportPath(report);
  const symbol = resolveSymbol(config, values.symbol, values.prices);
  const prices =
    values.prices === undefined
      ? undefined
      : { name: basename(values.prices), points: readPriceFile(values.prices) };

  const prepared = prepareSimulation({
    symbol,
    config,
    ...(prices ? { prices } : {}),
    ...(positions === undefined ? {} : { positions }),
    ...(seed === undefined ? {} : { seed }),
    ...(providers === undefined ? {} : { providers }),
    ...(fund === undefined ? {} : { fund }),
  });

  // JSON needs only the strategy's run; the table and the report compare it with the others.
  const runs: Strategy[] =
    values.json && report === undefined
      ? [strategy]
      : [strategy, ...STRATEGIES.filter((s) => s !== strategy)];
  const progress = new ProgressBar(io.stderr);
  const results: SimulationResult[] = [];
  try {
    for (const run of runs) {
      results.push(await simulate(prepared, run, (done, total) => progress.update(run, done, total)));
    }
  } finally {
    progress.done();
  }

  const chosen = results[0]!;
  if (values.json) io.stdout.write(`${JSON.stringify(summaryJson(chosen))}\n`);
  else io.stdout.write(renderComparison(results));
  if (report !== undefined) {
    writeFileSync(report, renderReport(results));
    io.stderr.write(`report written to ${report}\n`);
  }
  // The numbers are printed either way; a script must not take a broken run for a result.
  const problems = runProblems(results);
  for (const problem of problems) io.stderr.write(`backstop simulate: ${problem}\n`);
  return problems.length > 0 ? 1 : 0;
}

/** Fails before a long run, not after it: an .html name in a writable directory. */
function checkReportPath(report: string): void {
  if (!['.html', '.htm'].includes(extname(report).toLowerCase())) {
    throw new UsageError(`--report: "${report}" must be an .html file`);
  }
  try {
    accessSync(dirname(resolve(report)), constants.W_OK);
  } catch {
    throw new UsageError(`--report: cannot write to the directory of "${report}"`);
  }
  if (existsSync(report) && statSync(report).isDirectory())
    throw new UsageError(`--report: "${report}" is a directory`);
}
