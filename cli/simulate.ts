import { accessSync, constants, existsSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, resolve } from 'node:path';
import { renderReport } from '../report/html.ts';
import { baseOf, DEFAULT_RISK_CONFIG, quoteOf, type RiskConfig } from '../shared/domain/config.ts';
import { formatQuote, formatQuoteGrouped, QUOTE_SCALE, type QuoteE6 } from '../shared/domain/units.ts';
import { readPriceFile } from '../shared/prices/file.ts';
import { MAX_POSITIONS } from '../shared/sim/book.ts';
import { FUND_TARGETS, type FundNeeded, findFundNeeded, MAX_FUND_RUNS } from '../shared/sim/fund-needed.ts';
import { MAX_PROVIDERS } from '../shared/sim/providers.ts';
import { type SimulationResult, STRATEGIES, type Strategy, summaryJson } from '../shared/sim/results.ts';
import {
  type PreparedSimulation,
  prepareSimulation,
  SIMULATION_DEFAULTS,
  simulate,
} from '../shared/sim/setup.ts';
import { choiceOption, intOption, parseOptions, quoteOption, UsageError } from './args.ts';
import type { ExitCode } from './exit-codes.ts';
import { ProgressBar, type ProgressStream } from './progress.ts';
import { RISK_CONFIG_KEY, type RiskConfigSource, readRiskConfig } from './risk-config.ts';
import { renderComparison, renderFundNeeded, runProblems } from './table.ts';

export const SIMULATE_USAGE = `Usage: backstop simulate [options]

Replays a crash through the backstop on the embedded engine and compares the strategy with the others: the
waterfall without its auction (no-auction), and market-only.

  --prices FILE          price file (header with a time and a close/price/mark column, or Binance klines);
                         default: the built-in ETH crash of 12-13 March 2020
  --config FILE.json     the risk configuration to replay with (markets, margins, fees, slippage bounds, auction,
                         the fund's floor and draw cap): a file in the shape of backstop:riskConfig, or a cdk.json
                         (or cdk.context.json) whose context holds backstop:riskConfig, read as synth reads it: the
                         cdk.context.json (or cdk.json) beside it merged in, not -c values nor ~/.cdk.json (none
                         there: the defaults). Default: the built-in configuration
  --symbol S             a market of the risk configuration (default ones: ${DEFAULT_RISK_CONFIG.markets.map((m) => m.symbol).join(', ')}); default: from
                         the file name, else ${SIMULATION_DEFAULTS.symbol}
  --positions N          positions in the synthetic book (default ${SIMULATION_DEFAULTS.positions})
  --seed N               seed of the book, providers and scenario noise (default ${SIMULATION_DEFAULTS.seed})
  --strategy S           waterfall | no-auction | market-only (default waterfall): the first column
  --fund AMOUNT          insurance fund at the start, in the market's quote currency (default 0.75 % of
                         the book's open interest)
  --providers N          backstop liquidity providers (default ${SIMULATION_DEFAULTS.providers})
  --json                 print one JSON object (the strategy's run; with --fund-needed, the figures and every
                         run) instead of the table
  --report FILE.html     write the HTML report (of every strategy)
  --fund-needed          size the fund instead: the smallest starting fund (to --resolution) for which the
                         strategy leaves no bad debt uncovered, and the smallest for which it leaves none at all
                         (the fund pays every shortfall, ADL covers no deficit), each found by full simulations at
                         chosen funds (a search, at most ${MAX_FUND_RUNS} runs; each run's line on stderr)
  --resolution AMOUNT    --fund-needed's step, in the quote currency (default 1)
  -h, --help             this help

Without --config the table does not name the risk configuration (the built-in one); with it, a header line gives
the file and the first 12 characters of its digest (the stack's RiskConfigDigest output is the whole digest,
which --json gives as riskConfig.digest): a deploy with a -c backstop:riskConfig runs another one.
`;

export interface CliIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: ProgressStream;
  /**
   * How the CLI waits between reads (`fund statement`'s re-reads of a gap and waits for the index): real time unless a
   * test gives its own, which drives them without waiting (cli49-statement-pause).
   */
  readonly pause?: (ms: number) => Promise<void>;
}

export const SIMULATE_OPTIONS = {
  prices: { type: 'string' },
  symbol: { type: 'string' },
  positions: { type: 'string' },
  seed: { type: 'string' },
  strategy: { type: 'string' },
  fund: { type: 'string' },
  providers: { type: 'string' },
  json: { type: 'boolean' },
  report: { type: 'string' },
  config: { type: 'string' },
  'fund-needed': { type: 'boolean' },
  resolution: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The table's and the report's line for a --config (none for the built-in configuration: the demo's table). */
export function riskConfigLine(source: RiskConfigSource): string | undefined {
  if (source.file === undefined) return undefined;
  const digest = `digest ${source.digest.slice(0, 12)}`;
  if (source.read === 'risk config') return `risk config ${source.file}, ${digest}`;
  const besideName = source.beside === undefined ? undefined : basename(source.beside);
  const what =
    source.read === 'defaults'
      ? besideName === undefined
        ? `no ${RISK_CONFIG_KEY} in it: the defaults`
        : `no ${RISK_CONFIG_KEY} in either: the defaults`
      : besideName === undefined
        ? `its ${RISK_CONFIG_KEY}`
        : source.from?.length === 2
          ? `${RISK_CONFIG_KEY} of both, merged`
          : `${RISK_CONFIG_KEY} of ${basename(source.from?.[0] ?? source.file)}`;
  const files = besideName === undefined ? source.file : `${source.file} with ${besideName} beside it`;
  // What synth would also read: the digest is the stack's only if the deploy gives no -c value of it.
  return `risk config ${files} (${what}), ${digest}, as synth reads it without -c values`;
}

/** `riskConfig` of simulate's --json, and `config digest --json`. */
export const riskConfigJson = (source: RiskConfigSource) => ({
  file: source.file ?? null,
  read: source.read,
  beside: source.beside ?? null,
  digest: source.digest,
});

/** Quote assets a price file's name may follow its base asset with (Binance's `BTCUSDT-1m-...`). */
const QUOTE_ASSETS = 'USDT|USDC|BUSD|USD';

/**
 * The market of a symbol argument ("BTC-USD", "btc") or of a file name that starts with its symbol ("btc-usdc-...",
 * "BTCUSDC-1m-...") or its base asset, alone or followed by a quote asset ("btc-...", "BTCUSDT-1m-..."). A whole
 * symbol wins over a base; a base that several markets share (BTC-USD and BTC-USDT) is refused with them named,
 * never taken as the first configured. Otherwise the simulation's default market, or, with `required` (prices
 * sent to a live stack), a usage error: a wrong market's marks would liquidate its book. `option`: the option
 * `given` came as, named in the errors.
 */
export function resolveSymbol(
  config: RiskConfig,
  given: string | undefined,
  file: string | undefined,
  required = false,
  option = '--symbol',
): string {
  const symbols = config.markets.map((m) => m.symbol);
  /** One market, or a usage error naming the markets that share the base. */
  const one = (found: string[], what: string): string | undefined => {
    if (found.length > 1)
      throw new UsageError(
        `${what} could be any of ${found.join(', ')} (markets of one base asset): give ${option} as the whole symbol`,
      );
    return found[0];
  };
  if (given !== undefined) {
    const wanted = given.trim().toUpperCase();
    const found = symbols.includes(wanted)
      ? wanted
      : one(
          symbols.filter((s) => baseOf(s) === wanted),
          `${option}: "${given}"`,
        );
    if (!found)
      throw new UsageError(`${option}: "${given}" is not a configured market (${symbols.join(', ')})`);
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
): Promise<ExitCode> {
  const { values } = parseOptions(argv, SIMULATE_OPTIONS);
  if (values.help) {
    if (defaultReport !== undefined)
      io.stdout.write(
        `backstop demo (npm run demo): simulate, writing its report to ${defaultReport} unless --report names another.\n\n`,
      );
    io.stdout.write(SIMULATE_USAGE);
    return 0;
  }
  const strategy = choiceOption('strategy', values.strategy, STRATEGIES) ?? 'waterfall';
  const positions = intOption('positions', values.positions, 1, MAX_POSITIONS);
  const seed = intOption('seed', values.seed, 0, 2 ** 32 - 1);
  const providers = intOption('providers', values.providers, 0, MAX_PROVIDERS);
  const fund = quoteOption('fund', values.fund);
  const fundNeeded = values['fund-needed'] === true;
  const resolution = quoteOption('resolution', values.resolution);
  if (fundNeeded) {
    // The search sets the fund; the report would be of one run among many.
    if (fund !== undefined) throw new UsageError('--fund: not with --fund-needed, which searches the fund');
    if (values.report !== undefined)
      throw new UsageError(
        '--report: not with --fund-needed (run simulate --fund at the figure for its report)',
      );
    if (resolution === 0n) throw new UsageError('--resolution: must be more than 0');
  } else if (resolution !== undefined) throw new UsageError('--resolution: only with --fund-needed');
  const report = fundNeeded ? undefined : (values.report ?? defaultReport);
  if (report !== undefined) checkReportPath(report);
  const source = readRiskConfig(values.config);
  const { config } = source;
  const markets = config.markets.map((m) => m.symbol);
  // The built-in crash is ETH-USD prices: another market's book on them would be reported under a wrong name.
  const hasDefault = markets.includes(SIMULATION_DEFAULTS.symbol);
  if (!hasDefault && values.prices === undefined)
    throw new UsageError(
      `--config: the built-in scenario is ${SIMULATION_DEFAULTS.symbol} prices, and ${values.config} has no ${SIMULATION_DEFAULTS.symbol} market (${markets.join(', ')}): give --prices FILE of one of its markets`,
    );
  const symbol = resolveSymbol(config, values.symbol, values.prices, !hasDefault);
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

  if (fundNeeded)
    return runFundNeeded(prepared, strategy, resolution ?? QUOTE_SCALE, source, values.json === true, io);

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
  const line = riskConfigLine(source);
  if (values.json)
    io.stdout.write(`${JSON.stringify({ ...summaryJson(chosen), riskConfig: riskConfigJson(source) })}\n`);
  else io.stdout.write(renderComparison(results, line));
  if (report !== undefined) {
    writeFileSync(report, renderReport(results, line));
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

/**
 * --fund-needed: simulations of the strategy at chosen starting funds (findFundNeeded), each one's line on stderr,
 * the figures on stdout. Exit 1 when a run could not be trusted (runProblems) or a figure is not an answer
 * (fundSearchProblems: not exact to the resolution, its bracket printed, or none reached before the search stopped).
 */
async function runFundNeeded(
  prepared: PreparedSimulation,
  strategy: Strategy,
  resolution: QuoteE6,
  source: RiskConfigSource,
  json: boolean,
  io: CliIo,
): Promise<ExitCode> {
  const quote = quoteOf(prepared.symbol);
  const progress = new ProgressBar(io.stderr);
  const problems: string[] = [];
  const started = performance.now();
  let runs = 0;
  let last: SimulationResult | undefined;
  let found: FundNeeded;
  try {
    found = await findFundNeeded(
      async (fund) => {
        runs += 1;
        const label = `run ${runs} fund ${formatQuoteGrouped(fund)}`;
        const r = await simulate({ ...prepared, fundStart: fund }, strategy, (done, total) =>
          progress.update(label, done, total),
        );
        progress.done();
        last = r;
        for (const problem of runProblems([r]))
          problems.push(`fund ${formatQuote(fund)} ${quote}: ${problem}`);
        io.stderr.write(
          `fund-needed: run ${runs}: fund ${formatQuoteGrouped(fund)} ${quote}: bad debt ${formatQuoteGrouped(r.badDebt)} ` +
            `(uncovered ${formatQuoteGrouped(r.badDebtUncovered)}), fund min ${formatQuoteGrouped(r.insuranceFund.min)}\n`,
        );
        return {
          fund,
          badDebt: r.badDebt,
          badDebtUncovered: r.badDebtUncovered,
          fundMin: r.insuranceFund.min,
        };
      },
      { resolution, floor: source.config.insurance.floor, start: prepared.fundStart },
    );
  } finally {
    progress.done();
  }
  const seconds = (performance.now() - started) / 1000;
  const run = last!;
  const head = {
    scenario: run.scenario,
    symbol: run.symbol,
    strategy,
    seed: run.seed,
    ticks: run.ticks,
    positions: run.positions,
  };
  if (json) io.stdout.write(`${JSON.stringify(fundNeededJson(head, found, source))}\n`);
  else io.stdout.write(renderFundNeeded({ ...head, quote }, found, riskConfigLine(source), seconds));
  problems.push(...fundSearchProblems(found, quote));
  for (const problem of problems) io.stderr.write(`backstop simulate: ${problem}\n`);
  return problems.length > 0 ? 1 : 0;
}

/**
 * The figures a script must not take for answers (exit 1): one not exact to the resolution, and one no run reached
 * before the search stopped (its runs or its growth ran out: unknown, not none). A draw cap's `none` is an answer.
 */
export function fundSearchProblems(found: FundNeeded, quote: string): string[] {
  const problems: string[] = [];
  for (const target of FUND_TARGETS) {
    const f = found.figures[target];
    if (f.fund !== null && !f.resolved)
      problems.push(
        `fund-needed: ${target}: not exact to ${formatQuote(found.resolution)} ${quote} within ${MAX_FUND_RUNS} runs: between ${formatQuote(f.below?.fund ?? 0n)} and ${formatQuote(f.fund)}`,
      );
    else if (f.unreachable === 'runs')
      problems.push(
        `fund-needed: ${target}: no fund found before the search stopped (${found.runs.length} runs): the largest tried, ${formatQuote(f.below?.fund ?? 0n)} ${quote}, left some`,
      );
  }
  return problems;
}

const probeJson = (p: FundNeeded['runs'][number]) => ({
  fund: formatQuote(p.fund),
  badDebt: formatQuote(p.badDebt),
  badDebtUncovered: formatQuote(p.badDebtUncovered),
  fundMin: formatQuote(p.fundMin),
});

function fundNeededJson(
  head: Record<string, unknown>,
  found: FundNeeded,
  source: RiskConfigSource,
): Record<string, unknown> {
  const figures = Object.fromEntries(
    Object.entries(found.figures).map(([target, f]) => [
      target,
      {
        fund: f.fund === null ? null : formatQuote(f.fund),
        resolved: f.resolved,
        at: f.at ? probeJson(f.at) : null,
        below: f.below ? probeJson(f.below) : null,
        ...(f.unreachable ? { unreachable: f.unreachable } : {}),
      },
    ]),
  );
  return {
    ...head,
    riskConfig: riskConfigJson(source),
    resolution: formatQuote(found.resolution),
    fundNeeded: Object.fromEntries(
      Object.entries(found.figures).map(([target, f]) => [
        target,
        f.fund === null ? null : formatQuote(f.fund),
      ]),
    ),
    figures,
    monotone: found.notMonotone.length === 0,
    notMonotone: found.notMonotone.map((n) => ({
      target: n.target,
      lower: probeJson(n.lower),
      higher: probeJson(n.higher),
    })),
    runs: found.runs.map(probeJson),
  };
}
