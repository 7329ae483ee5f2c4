import { extname } from 'node:path';
import { indexJournal } from '../../shared/adapters/aws/ledger.ts';
import { MAX_POSITION_INDEX_SHARDS, PositionIndexLayout } from '../../shared/adapters/aws/position-layout.ts';
import { indexAdlLeverage } from '../../shared/adapters/aws/positions.ts';
import { DEFAULT_RISK_CONFIG, quoteCurrency, quoteOf, type RiskConfig } from '../../shared/domain/config.ts';
import {
  formatPrice,
  formatQuote,
  formatQuoteGrouped,
  groupThousands,
  type PriceE8,
  parsePrice,
  QUOTE_SCALE,
  type QuoteE6,
} from '../../shared/domain/units.ts';
import { eachInFlight } from '../../shared/in-flight.ts';
import { awsClockOf, type Deployment, shellWord, withTargetFlags } from '../../shared/local/deployment.ts';
import {
  applyAdmin,
  type OpenPosition,
  openPositionRequest,
  positionsFromFile,
  refuseUnopenable,
  registerProviderRequest,
  SeedFileError,
  type SeedOutcome,
} from '../../shared/local/seed.ts';
import { resetSentSequence, sentSequenceKey } from '../../shared/local/sent-sequences.ts';
import { stateDir } from '../../shared/local/state.ts';
import {
  type Adapters,
  type JournalEntry,
  MAX_DECLARED_OPERATOR,
  type MarketRepository,
} from '../../shared/ports/index.ts';
import {
  type AdminDeps,
  type AdminRequest,
  declaredOperatorSchema,
  handleAdmin,
  WITHDRAWAL_AUDIT_MAX_ENTRIES,
} from '../../shared/services/admin.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { DEFAULT_BOOK_PARAMS, generateBook, MAX_POSITIONS, openInterestUsd } from '../../shared/sim/book.ts';
import { DEFAULT_PROVIDER_PARAMS, generateProviders, MAX_PROVIDERS } from '../../shared/sim/providers.ts';
import { intOption, quoteOption, readInputFile, UsageError } from '../args.ts';
import type { ExitCode } from '../exit-codes.ts';
import { printable, printableJson } from '../printable.ts';
import { ProgressBar } from '../progress.ts';
import { CONFIG_FILE_HELP } from '../risk-config.ts';
import { type CliIo, resolveSymbol } from '../simulate.ts';
import { callerArn } from './caller.ts';
import {
  adaptersOf,
  type Command,
  cliTelemetry,
  deployedRiskConfig,
  noMorePositionals,
  OperatorInputError,
  operatorCommand,
  parseCommand,
  refuseOthersOptions,
  riskConfigFor,
  type SubcommandOptions,
  subcommand,
  TARGET_OPTIONS,
  TARGET_USAGE,
  withTarget,
} from './common.ts';
import { runFundStatement, STATEMENT_SYNOPSIS, STATEMENT_USAGE } from './fund-statement.ts';

/**
 * `seed positions|providers` and `fund deposit|withdraw`: every write goes through the admin service
 * (handleAdmin: the admin function's validation) on the target's tables. On AWS too: the admin function is
 * IAM-only and the Lambda SDK is not bundled, so the CLI applies the same requests with the AWS adapters
 * under the caller's credentials.
 */

export const SEED_USAGE = `Usage: backstop seed positions [options] | backstop seed providers [options]

positions: a synthetic book (Pareto notionals, log-normal leverage, 70 % long) per market, or a file
  --count N              positions per market (default 1000)
  --markets A,B          markets (default ETH-USD)
  --seed N               seed (default 1); position ids are s<seed>-<market>-p<n>, so a re-run adds nothing
  --price P | M=P,M=P    price the book is built around (default: the market's last accepted mark)
  --leverage-median X    median leverage (default ${DEFAULT_BOOK_PARAMS.leverageMedian})
  --leverage-sigma X     log-sd of leverage (default ${DEFAULT_BOOK_PARAMS.leverageSigma})
  --long-share X         share of longs, above 0, at most 1 (default ${DEFAULT_BOOK_PARAMS.longShare})
  --file F.csv|F.json    positions from a file instead (columns id,traderId,symbol,side,size,entryPrice,collateral)
providers: backstop liquidity providers with committed capital and standing bids
  --count N              providers per market (default 8)
  --capital AMOUNT       capital of all providers of a market together, in the configuration's quote
                         currency (default 5000000)
  --markets, --seed, --price as above; provider ids are lp-s<seed>-<market>-<n>: a re-run adds nothing (a
                         provider already there keeps its terms and what the auctions left of its capital)
Both:
  --config FILE.json     risk configuration of the deployment (local: what local up runs with; aws and
                         localstack: the deployed one, required):
${CONFIG_FILE_HELP}${TARGET_USAGE}`;

export const FUND_USAGE = `Usage: backstop fund deposit|withdraw --amount AMOUNT [--key K] [--operator WHO] [--json]
       backstop fund index-journal [--json]
${STATEMENT_SYNOPSIS}
  withdraw is refused, and moves nothing, while the fund's balance does not reconcile with its journal as
  ledger-reconcile judges it (from its last checkpoint: a withdrawal reads at most ${WITHDRAWAL_AUDIT_MAX_ENTRIES.toLocaleString('en-US')} entries past
  it, and is refused when the balance is further on): do not move money to cover a difference, escalate
  (docs/DEPLOY.md, "Ledger difference"). A deposit is never held for it.

  index-journal          once, on a stack deployed before session 27: gives the fund's journal entries written
                         before the index by sequence their place in it (ledger-reconcile and a withdrawal's
                         check read that index; a withdrawal refused as admin/fund-not-indexed needs it)
  --amount AMOUNT        amount in the configuration's quote currency, exact decimal (e.g. 250000 or
                         1234.56)
  --key K                idempotency key: the same key twice moves the money once (default: a new key, said
                         on stderr before the money moves: run again with it if the command does not finish)
  --operator WHO         who asks (1-${MAX_DECLARED_OPERATOR} printable characters, the first a letter or a digit),
                         journaled as the entry's declared operator, unverified (default: the caller's ARN, as
                         STS names the credentials).
                         The caller STS names is journaled as the entry's actor either way; a deposit whose
                         caller STS cannot name goes on with --operator alone, and is refused without it
  --config FILE.json     risk configuration (the withdrawal floor; required for a withdrawal on aws and localstack):
${CONFIG_FILE_HELP}  --json                 one JSON object: the movement (amounts exact decimal strings), its journal entry (with
                         who moved it: the caller's ARN, as STS names the credentials, actor; and who the
                         request declared asks, declaredOperator), whether the key was applied
                         before (nothing moved now) and the balance now

${STATEMENT_USAGE}${TARGET_USAGE}`;

export const FEED_USAGE = `Usage: backstop feed resume --symbol S --from-sequence N

  A price feed that restarted on a lower numbering has its ticks held as tick/sequence-behind (the
  FeedNumberingAlarm fires) until the market's mark is stale (maxMarkAgeSeconds) and the feed has gone on for
  breakerConfirmSeconds. resume moves the market onto it at once: it lowers the market's last sequence so that
  ticks from N on are judged as usual, still against the last accepted mark and time: a tick stamped up to
  maxClockSkewSeconds (5 s by default) after the old feed's last recorded print (its last accepted tick, or the
  print its breaker holds) is taken for the old feed's, and refused as out of order.

  --symbol S             market (e.g. ETH-USD)
  --from-sequence N      the restarted feed's next sequence (an integer >= 0)
  --config FILE.json     risk configuration of the deployment (its markets and clock skew bound; required on aws and localstack):
${CONFIG_FILE_HELP}${TARGET_USAGE}`;

export const POSITIONS_USAGE = `Usage: backstop positions reindex --symbol S
       backstop positions index

  A position's liquidation price, which margin-check finds it by, is computed when the position is written.
  After a deploy that changes a market's maintenance margin, reindex prices every open position of the market
  again with the new rules (both sides, a page at a time); positions now past the last mark are liquidated by
  the next tick. Run it once the previous code's invocations have ended (a minute after the deploy): until
  then, a raise leaves some positions unseen.

  index: once after upgrading a stack deployed before session 17 (ADL's two indexes): gives the open positions
  written before then their key in ADL's leverage order, which DynamoDB's new index leaves out (ADL's search
  would never rank them). Positions written since carry it; a re-run finds none.

  --symbol S             market (e.g. ETH-USD; reindex only)
  --config FILE.json     risk configuration: the deployed one, with its new maintenance margin (reindex only):
${CONFIG_FILE_HELP}${TARGET_USAGE}`;

export const POSITIONS_OPTIONS = {
  ...TARGET_OPTIONS,
  symbol: { type: 'string' },
  config: { type: 'string' },
} as const;

/** positions index takes none of reindex's options. */
export const POSITIONS_SUBCOMMANDS: SubcommandOptions = { reindex: ['symbol', 'config'], index: [] };

export const runPositions: Command = operatorCommand(async (argv, io) => {
  const { positionals, values } = parseCommand(argv, POSITIONS_OPTIONS);
  if (values.help) {
    io.stdout.write(POSITIONS_USAGE);
    return 0;
  }
  const action = subcommand('positions', positionals, ['reindex', 'index'] as const);
  noMorePositionals('positions', positionals, 1);
  refuseOthersOptions('positions', action, values, POSITIONS_OPTIONS, POSITIONS_SUBCOMMANDS);
  if (action === 'index') {
    return withTarget(values, async (deployment) => {
      const outcome = await indexAdlLeverage(deployment.clients.dynamo, deployment.names.tables.positions);
      io.stdout.write(
        `positions index: ${outcome.indexed} of ${outcome.missing} open positions without ADL's leverage key have it now\n`,
      );
      const { unreadable } = outcome;
      if (unreadable.length === 0) return 0;
      io.stderr.write(
        `positions index: ${unreadable.length} items could not be read as positions (not keyed): ${printable(unreadable.slice(0, 20).join(', '))}${unreadable.length > 20 ? ', ...' : ''}\n`,
      );
      return 1;
    });
  }
  if (values.symbol === undefined) throw new UsageError('positions reindex: --symbol is required');
  return withTarget(values, async (deployment) => {
    const config = deployedRiskConfig(
      deployment,
      values.config,
      'positions reindex',
      'its margins price the index',
      true,
    );
    const symbol = resolveSymbol(config, values.symbol, undefined, true);
    // Every index shard a market can have is read, whatever this shell knows of the deployed ones (a shard not
    // read would keep its positions at their old price); repricing keeps each position where it is stored.
    const everyShard = new PositionIndexLayout({
      [symbol]: { read: MAX_POSITION_INDEX_SHARDS, write: 1 },
    });
    const deps: AdminDeps = {
      ...adaptersOf(deployment, everyShard),
      config,
      telemetry: cliTelemetry(io),
      nowMs: awsNow(deployment),
    };
    for (const side of ['LONG', 'SHORT'] as const) {
      let checked = 0;
      let updated = 0;
      let cursor: string | undefined;
      do {
        const result = await handleAdmin(
          { action: 'reindexPositions', symbol, side, ...(cursor ? { cursor } : {}) },
          deps,
        );
        if (!result.ok) throw new OperatorInputError(`positions reindex refused: ${result.reason}`);
        checked += result.reindexed!.checked;
        updated += result.reindexed!.updated;
        cursor = result.reindexed!.cursor;
      } while (cursor !== undefined);
      io.stdout.write(`${symbol} ${side}: ${checked} open positions priced again, ${updated} rewritten\n`);
    }
    return 0;
  });
});

export const FEED_OPTIONS = {
  ...TARGET_OPTIONS,
  symbol: { type: 'string' },
  'from-sequence': { type: 'string' },
  config: { type: 'string' },
} as const;

export const SEED_OPTIONS = {
  ...TARGET_OPTIONS,
  count: { type: 'string' },
  markets: { type: 'string' },
  seed: { type: 'string' },
  price: { type: 'string' },
  file: { type: 'string' },
  capital: { type: 'string' },
  'leverage-median': { type: 'string' },
  'leverage-sigma': { type: 'string' },
  'long-share': { type: 'string' },
  config: { type: 'string' },
} as const;

export const FUND_OPTIONS = {
  ...TARGET_OPTIONS,
  amount: { type: 'string' },
  key: { type: 'string' },
  operator: { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean' },
  // statement's
  from: { type: 'string' },
  to: { type: 'string' },
  'from-sequence': { type: 'string' },
  'to-sequence': { type: 'string' },
  max: { type: 'string' },
  csv: { type: 'boolean' },
} as const;

/** seed's options of one of its subcommands. */
export const SEED_SUBCOMMANDS: SubcommandOptions = {
  positions: ['file', 'leverage-median', 'leverage-sigma', 'long-share'],
  providers: ['capital'],
};

/** The options only `fund statement` takes. */
const STATEMENT_ONLY = ['from', 'to', 'from-sequence', 'to-sequence', 'max', 'csv'] as const;

/** fund's options of some of its subcommands: index-journal takes none of them. */
export const FUND_SUBCOMMANDS: SubcommandOptions = {
  deposit: ['amount', 'key', 'operator', 'config'],
  withdraw: ['amount', 'key', 'operator', 'config'],
  'index-journal': [],
  statement: ['config', ...STATEMENT_ONLY],
};

const DEFAULT_POSITIONS = 1000;
const DEFAULT_PROVIDERS = 8;
const DEFAULT_PROVIDER_CAPITAL = 5_000_000;

/** Whole units of the quote grouped, as fund and status show amounts (250,000). */
const whole = (units: number): string => groupThousands(BigInt(units));

/** A positive decimal option within (0, max], for distribution parameters. */
function ratioOption(name: string, value: string | undefined, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = /^\d{1,6}(\.\d{1,6})?$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!(n > 0 && n <= max)) throw new UsageError(`--${name}: "${value}" is not a number in (0, ${max}]`);
  return n;
}

/** --markets as a list of symbols (upper-cased, no repeats); checked against the configuration later. */
export function marketsOption(value: string | undefined): string[] {
  const symbols = (value ?? 'ETH-USD').split(',').map((s) => s.trim().toUpperCase());
  if (symbols.some((s) => s === '')) throw new UsageError('--markets: an empty market name');
  if (new Set(symbols).size !== symbols.length) throw new UsageError('--markets: a market is listed twice');
  return symbols;
}

function checkMarkets(config: RiskConfig, symbols: readonly string[]): void {
  for (const s of symbols) {
    if (!config.markets.some((m) => m.symbol === s)) {
      throw new OperatorInputError(
        `--markets: "${s}" is not a configured market (${config.markets.map((m) => m.symbol).join(', ')})`,
      );
    }
  }
}

/** --price: one price for a single market, or SYMBOL=PRICE pairs. */
export function pricesOption(value: string | undefined, markets: readonly string[]): Map<string, PriceE8> {
  const prices = new Map<string, PriceE8>();
  if (value === undefined) return prices;
  const parse = (text: string): PriceE8 => {
    try {
      return parsePrice(text, '--price');
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  };
  if (!value.includes('=')) {
    if (markets.length !== 1)
      throw new UsageError('--price: give one price per market, as ETH-USD=1500,BTC-USD=60000');
    prices.set(markets[0]!, parse(value));
    return prices;
  }
  for (const pair of value.split(',')) {
    const cells = pair.split('=').map((s) => s.trim());
    if (cells.length !== 2) throw new UsageError(`--price: "${pair}" is not SYMBOL=PRICE`);
    const [symbol = '', price = ''] = cells;
    if (!markets.includes(symbol.toUpperCase())) {
      throw new UsageError(`--price: "${symbol}" is not one of the markets (${markets.join(', ')})`);
    }
    if (prices.has(symbol.toUpperCase()))
      throw new UsageError(`--price: ${symbol.toUpperCase()} is given twice`);
    prices.set(symbol.toUpperCase(), parse(price));
  }
  return prices;
}

/** The price a market's book or lots are built around: --price, else its last accepted mark. */
async function startPrice(
  markets: MarketRepository,
  symbol: string,
  given: Map<string, PriceE8>,
): Promise<PriceE8> {
  const price = given.get(symbol) ?? (await markets.get(symbol))?.lastTick?.markPrice;
  if (price === undefined) {
    throw new OperatorInputError(`no price for ${symbol} yet: pass --price, or inject a tick first`);
  }
  return price;
}

/**
 * A book drawn around a price must be healthy at the market's mark, or the seed would write part of it: refused
 * whole, before any write (as a file's rows are).
 */
async function refuseUnhealthyBook(
  requests: readonly OpenPosition[],
  symbol: string,
  price: PriceE8,
  priceGiven: boolean,
  config: RiskConfig,
  deps: AdminDeps,
): Promise<void> {
  try {
    await refuseUnopenable(requests, config, deps.markets);
  } catch (error) {
    if (!(error instanceof SeedFileError)) throw error;
    const mark = (await deps.markets.get(symbol))?.lastTick?.markPrice;
    throw new OperatorInputError(
      `${symbol}: the book drawn around ${formatPrice(price)} is not healthy at the market's mark${mark === undefined ? '' : ` ${formatPrice(mark)}`} (${error.message})${priceGiven ? ': seed around the mark (leave out --price)' : ''}; nothing was written`,
    );
  }
}

/**
 * Provider records a seed reads at once (timeouts48-seed-reads), as `dlq list` its dead letters' (DESCRIBE_IN_FLIGHT):
 * the CLI's request timeout counts the wait for one of the client's 50 connections (review47-timeout-socket-queue), and
 * a seed's thousands read at once on a slow link queued past it and failed as TimeoutErrors.
 */
export const PROVIDER_READS_IN_FLIGHT = 16;

/**
 * Providers a seed has not registered yet: one already there keeps its terms and the capital auctions left it
 * (registerProvider would overwrite both), so a re-run adds nothing, as for positions.
 */
export async function registerNewProviders(
  requests: readonly AdminRequest[],
  deps: AdminDeps,
  onProgress: (done: number, total: number) => void,
): Promise<SeedOutcome & { readonly existingIds: ReadonlySet<string> }> {
  const ids = requests.map((r) => ('id' in r ? r.id : ''));
  const found: unknown[] = Array.from({ length: ids.length });
  await eachInFlight(ids, PROVIDER_READS_IN_FLIGHT, async (id, at) => {
    found[at] = await deps.providers.get(id);
  });
  const fresh = requests.filter((_, i) => found[i] === undefined);
  const outcome = await applyAdmin(fresh, deps, { onProgress });
  const existingIds = new Set(ids.filter((_, i) => found[i] !== undefined));
  return { ...outcome, existing: outcome.existing + existingIds.size, existingIds };
}

const adminDeps = (
  deployment: Deployment,
  config: RiskConfig,
  io: Pick<CliIo, 'stderr'>,
): AdminDeps & Pick<Adapters, 'reader'> => {
  const adapters = adaptersOf(deployment);
  return { ...adapters, config, telemetry: cliTelemetry(io), nowMs: awsNow(deployment) };
};

/**
 * The admin's clock in the operator's process: AWS's, not the machine's (cli49-aws-clock). It stamps a deposit or
 * withdrawal, and a statement closes a period by time on how soon after its stamp an entry commits (SETTLED_AFTER_MS):
 * a machine minutes slow stamped one into a period already said closed. A stamp, not a verdict: AWS's best estimate
 * (agreedNowMs, the machine's clock to the millisecond while the answers say it agrees), not the lower bound a second
 * behind, which booked a deposit made just after a period's end in that period (review50-audit-stamp-cutoff).
 */
const awsNow = (deployment: Deployment): (() => number) => {
  const clock = awsClockOf(deployment);
  return () => clock.agreedNowMs();
};

/** A seed's outcome: its counts, then the first refusals, whose ids and reasons (AWS's errors) are escaped. */
export function report(io: Pick<CliIo, 'stdout' | 'stderr'>, what: string, outcome: SeedOutcome): ExitCode {
  io.stdout.write(
    `${what}: ${outcome.created} written, ${outcome.existing} already there, ${outcome.failed.length} refused\n`,
  );
  for (const f of outcome.failed.slice(0, 10))
    io.stderr.write(`  ${printable(f.id)}: ${printable(f.reason)}\n`);
  if (outcome.failed.length > 10) io.stderr.write(`  ... and ${outcome.failed.length - 10} more\n`);
  return outcome.failed.length > 0 ? 1 : 0;
}

/**
 * Largest --file of positions (security48b-input-size): MAX_POSITIONS rows of about 100 bytes fill about 100 MB, with
 * room for long ids; read whole into memory, as price files are (the same bound).
 */
export const MAX_SEED_FILE_BYTES = 256 * 1024 * 1024;

export const runSeed: Command = operatorCommand(async (argv, io) => {
  const { positionals, values } = parseCommand(argv, SEED_OPTIONS);
  if (values.help) {
    io.stdout.write(SEED_USAGE);
    return 0;
  }
  const what = subcommand('seed', positionals, ['positions', 'providers'] as const);
  noMorePositionals('seed', positionals, 1);
  refuseOthersOptions('seed', what, values, SEED_OPTIONS, SEED_SUBCOMMANDS);
  if (values.file !== undefined) {
    for (const name of [
      'count',
      'markets',
      'seed',
      'price',
      'leverage-median',
      'leverage-sigma',
      'long-share',
    ] as const) {
      if (values[name] !== undefined)
        throw new UsageError(`--${name}: not with --file (the file lists the positions)`);
    }
  }
  const seed = intOption('seed', values.seed, 0, 2 ** 32 - 1) ?? 1;
  const count = intOption('count', values.count, 1, what === 'positions' ? MAX_POSITIONS : MAX_PROVIDERS);
  const book = {
    leverageMedian:
      ratioOption('leverage-median', values['leverage-median'], 100) ?? DEFAULT_BOOK_PARAMS.leverageMedian,
    leverageSigma:
      ratioOption('leverage-sigma', values['leverage-sigma'], 10) ?? DEFAULT_BOOK_PARAMS.leverageSigma,
    longShare: ratioOption('long-share', values['long-share'], 1) ?? DEFAULT_BOOK_PARAMS.longShare,
  };
  const capital = quoteOption('capital', values.capital);
  // The generator splits whole units; a fraction would be rounded away silently.
  if (capital !== undefined && capital % QUOTE_SCALE !== 0n)
    throw new UsageError('--capital: whole units of the quote currency only');
  // Refused here with its reason, not per provider by the admin service (as a maxLot of 0 the operator never gave).
  const providers = count ?? DEFAULT_PROVIDERS;
  if (what === 'providers' && capital !== undefined && capital < BigInt(providers) * QUOTE_SCALE)
    throw new UsageError(
      `--capital: ${formatQuote(capital)} for ${providers} providers is less than 1 unit of the quote currency each`,
    );
  const fileText =
    values.file === undefined ? undefined : readInputFile(values.file, '--file', MAX_SEED_FILE_BYTES);
  const format = values.file !== undefined && extname(values.file).toLowerCase() === '.json' ? 'json' : 'csv';
  const markets = marketsOption(values.markets);
  const given = pricesOption(values.price, markets);

  return withTarget(values, async (deployment) => {
    // Positions are priced (their liquidation price, refused when liquidatable) and lots checked by these rules.
    const config = deployedRiskConfig(deployment, values.config, `seed ${what}`, 'its margins and markets');
    const deps = adminDeps(deployment, config, io);
    const progress = new ProgressBar(io.stderr);
    const onProgress = (done: number, total: number) => progress.update(what, done, total);
    try {
      if (fileText !== undefined) {
        const requests = positionsFromFile(fileText, format, values.file!);
        await refuseUnopenable(requests, config, deps.markets, deps.reader);
        return report(io, `positions from ${values.file}`, await applyAdmin(requests, deps, { onProgress }));
      }
      checkMarkets(config, markets);
      // Every market's price and batch before the first write: a market that cannot be seeded changes nothing.
      const batches: {
        readonly label:
          | string
          | ((outcome: SeedOutcome & { readonly existingIds?: ReadonlySet<string> }) => string);
        readonly requests: AdminRequest[];
      }[] = [];
      for (const symbol of markets) {
        const price = await startPrice(deps.markets, symbol, given);
        if (what === 'positions') {
          const positions = generateBook(
            {
              ...DEFAULT_BOOK_PARAMS,
              ...book,
              symbol,
              positions: count ?? DEFAULT_POSITIONS,
              startPrice: price,
              seed,
            },
            config,
          ).map((p) => ({ ...p, id: `s${seed}-${p.id}`, traderId: `s${seed}-${p.traderId}` }));
          const requests = positions.map(openPositionRequest);
          await refuseUnhealthyBook(requests, symbol, price, given.has(symbol), config, deps);
          const oi = openInterestUsd(positions, price);
          batches.push({
            label: `${symbol} positions around ${formatPrice(price)} (open interest long ${whole(oi.long)} / short ${whole(oi.short)} ${quoteOf(symbol)})`,
            requests,
          });
        } else {
          const totalUsd = capital === undefined ? DEFAULT_PROVIDER_CAPITAL : Number(capital / QUOTE_SCALE);
          const providers = generateProviders({
            ...DEFAULT_PROVIDER_PARAMS,
            symbol,
            count: count ?? DEFAULT_PROVIDERS,
            totalCapitalUsd: totalUsd,
            startPrice: price,
            seed,
          }).map((p) => ({ ...p, id: `lp-s${seed}-${symbol}-${p.id.replace(/^provider-/, '')}` }));
          batches.push({
            // What the providers written commit, not what the seed asked: a re-run writes none (walk43b-seed-committed).
            label: (outcome) => {
              const written = providers.filter(
                (p) => !outcome.existingIds?.has(p.id) && !outcome.failed.some((f) => f.id === p.id),
              );
              const committed = written.reduce((sum, p) => sum + p.capital, 0n);
              const what =
                written.length === 0
                  ? 'nothing new committed'
                  : written.length === providers.length
                    ? `${whole(totalUsd)} ${quoteOf(symbol)} committed`
                    : `${formatQuoteGrouped(committed)} ${quoteOf(symbol)} committed by the ${written.length} written`;
              return `${symbol} providers (${what}, lots at ${formatPrice(price)})`;
            },
            requests: providers.map(registerProviderRequest),
          });
        }
      }
      let failed = 0;
      for (const { label, requests } of batches) {
        const outcome =
          what === 'positions'
            ? await applyAdmin(requests, deps, { onProgress })
            : await registerNewProviders(requests, deps, onProgress);
        progress.done();
        failed += report(io, typeof label === 'string' ? label : label(outcome), outcome);
      }
      return failed > 0 ? 1 : 0;
    } finally {
      progress.done();
    }
  });
});

export const runFund: Command<'fund statement'> = operatorCommand(async (argv, io) => {
  const { positionals, values } = parseCommand(argv, FUND_OPTIONS);
  if (values.help) {
    io.stdout.write(FUND_USAGE);
    return 0;
  }
  const action = subcommand('fund', positionals, [
    'deposit',
    'withdraw',
    'index-journal',
    'statement',
  ] as const);
  noMorePositionals('fund', positionals, 1);
  refuseOthersOptions('fund', action, values, FUND_OPTIONS, FUND_SUBCOMMANDS);
  if (action === 'statement') return runFundStatement(values, io);
  if (action === 'index-journal') {
    return withTarget(values, async (deployment) => {
      const { entries, indexed } = await indexJournal(
        deployment.clients.dynamo,
        deployment.names.tables.ledger,
        INSURANCE_ACCOUNT,
      );
      io.stdout.write(
        values.json
          ? `${JSON.stringify({ action, entries, indexed })}\n`
          : `fund index-journal: ${indexed} of ${entries} journal entries indexed by sequence\n`,
      );
      return 0;
    });
  }
  if (values.amount === undefined) throw new UsageError(`fund ${action}: --amount is required`);
  const amount = quoteOption('amount', values.amount)!;
  if (amount <= 0n) throw new UsageError('--amount: must be greater than zero');
  const key = values.key ?? `cli-${Date.now()}-${process.pid}`;
  if (!/^[A-Za-z0-9._:-]{1,100}$/.test(key))
    throw new UsageError(`--key: letters, digits and . _ : - only (1-100)`);
  const declared = operatorOption(values.operator);
  return withTarget(values, async (deployment) => {
    // A deposit needs no rule (a credit is never refused: the floor binds debits only), so it asks for none: a stack
    // of other rules refuses to have them assumed (riskConfigFor), and a fund topped up in a crash must not wait for
    // the deployed file. A withdrawal is judged against the deployed fund floor. The one local up recorded names the
    // quote currency (a USDT stage's deposit was said in USD).
    const config =
      action === 'withdraw'
        ? deployedRiskConfig(deployment, values.config, 'fund withdraw', 'its fund floor', true)
        : values.config === undefined && deployment.recordedRiskConfig === undefined
          ? DEFAULT_RISK_CONFIG
          : riskConfigFor(deployment, values.config);
    const actor = await callerOf(deployment, action, io, declared);
    const operator = declared ?? declaredCaller(actor, action);
    // Said before the money moves: a run that fails or times out after the write is run again with this key,
    // and the money moves once (a run without --key would make a new key and move it twice).
    if (values.key === undefined)
      io.stderr.write(
        `backstop: fund ${action} under idempotency key ${key}; if it does not finish, run it again with --key ${key}\n`,
      );
    const deps = { ...adminDeps(deployment, config, io), ...(actor === undefined ? {} : { actor }) };
    // Its stamp by AWS's clock (awsNow), set at the target's opening as a rule.
    await awsClockOf(deployment).sync(() => deps.ledger.balance(INSURANCE_ACCOUNT));
    const result = await handleAdmin(
      { action, amount: formatQuote(amount), idempotencyKey: key, operator },
      deps,
    );
    if (!result.ok)
      throw new OperatorInputError(`fund ${action} refused: ${withTargetFlags(result.reason, deployment)}`);
    const entry = result.entry!;
    // A key applied before answers with its first entry: its balance then is not the balance now.
    const balance = result.alreadyApplied
      ? (await deps.ledger.balance(INSURANCE_ACCOUNT)).balance
      : entry.balanceAfter;
    if (values.json) {
      io.stdout.write(
        `${printableJson({
          action,
          amount: formatQuote(amount),
          key,
          alreadyApplied: result.alreadyApplied === true,
          balance: formatQuote(balance),
          entry: {
            sequence: entry.sequence,
            amount: formatQuote(entry.amount),
            balanceAfter: formatQuote(entry.balanceAfter),
            at: new Date(entry.atMs).toISOString(),
            ...(entry.actor === undefined ? {} : { actor: entry.actor }),
            ...(entry.declaredOperator === undefined ? {} : { declaredOperator: entry.declaredOperator }),
          },
        })}\n`,
      );
      return 0;
    }
    io.stdout.write(
      renderFund(action, amount, key, quoteCurrency(config), result.alreadyApplied === true, entry, balance),
    );
    return 0;
  });
});

/** A fund movement's line: amounts as `status` shows them (grouped, cents), never rounded (formatQuoteGrouped). */
export function renderFund(
  action: 'deposit' | 'withdraw',
  amount: QuoteE6,
  key: string,
  quote: string,
  alreadyApplied: boolean,
  entry: Pick<JournalEntry, 'sequence' | 'atMs' | 'actor' | 'declaredOperator'>,
  balance: QuoteE6,
): string {
  const q = (v: QuoteE6) => `${formatQuoteGrouped(v)} ${quote}`;
  const by = entry.actor === undefined ? '' : `, by ${printable(entry.actor)}`;
  // Said apart only when it differs from the caller STS named: the request's word, not a verified name.
  const declared =
    entry.declaredOperator === undefined || entry.declaredOperator === entry.actor
      ? ''
      : `, declared operator ${printable(entry.declaredOperator)} (unverified)`;
  if (alreadyApplied)
    return (
      `fund ${action} ${q(amount)} under key ${key} was already applied ` +
      `(journal entry ${entry.sequence}, ${new Date(entry.atMs).toISOString()}): nothing moved now; balance ${q(balance)}\n`
    );
  return (
    `fund ${action} ${q(amount)}: balance ${q(balance)} ` +
    `(journal entry ${entry.sequence}, key ${key}${by}${declared})\n`
  );
}

/** --operator: who asks, as the admin request takes it (trimmed); a UsageError saying why when it would be refused. */
export function operatorOption(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const parsed = declaredOperatorSchema.safeParse(value);
  if (!parsed.success) throw new UsageError(`--operator: ${parsed.error.issues[0]!.message}`);
  return parsed.data;
}

/**
 * Who asks, by default: the caller STS named, as the request declares it. Every ARN STS answers fits (a declared
 * operator may be as long as an actor); one that did not would be refused before anything moves, with what to do.
 */
function declaredCaller(actor: string | undefined, action: 'deposit' | 'withdraw'): string {
  // Named here: without --operator, callerOf refuses a movement whose caller STS cannot name.
  const parsed = declaredOperatorSchema.safeParse(actor);
  if (parsed.success) return parsed.data;
  throw new OperatorInputError(
    `fund ${action} refused: the caller's ARN (${actor?.length ?? 0} characters) cannot be the declared operator (${parsed.error.issues[0]!.message}): say who asks with --operator; nothing moved`,
  );
}

/**
 * Who moves the fund, journaled with the movement as its actor (the admin function's requests name nobody: CloudTrail
 * does, by the invocation id it journals). A withdrawal nobody can be named for is refused before anything moves; a
 * deposit goes on unnamed, with a warning, when `--operator` declares who asks (a fund topped up in a crash must not
 * wait for STS), and is refused without it (a movement declares who asks).
 */
export async function callerOf(
  deployment: Deployment,
  action: 'deposit' | 'withdraw',
  io: CliIo,
  declared?: string,
): Promise<string | undefined> {
  try {
    return await callerArn(deployment.clients);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    if (action === 'withdraw')
      throw new OperatorInputError(
        `fund withdraw refused: the caller could not be identified for the journal (${why}); nothing moved`,
      );
    if (declared === undefined)
      throw new OperatorInputError(
        `fund deposit refused: the caller could not be identified (${why}) and no --operator says who asks: run it again with --operator <who>; nothing moved`,
      );
    io.stderr.write(
      `backstop: the caller could not be identified (${printable(why)}); the deposit is journaled without it, its operator as --operator declares\n`,
    );
    return undefined;
  }
}

export const runFeed: Command = operatorCommand(async (argv, io) => {
  const { positionals, values } = parseCommand(argv, FEED_OPTIONS);
  if (values.help) {
    io.stdout.write(FEED_USAGE);
    return 0;
  }
  subcommand('feed', positionals, ['resume'] as const);
  noMorePositionals('feed', positionals, 1);
  if (values.symbol === undefined) throw new UsageError('feed resume: --symbol is required');
  const fromSequence = intOption('from-sequence', values['from-sequence'], 0, Number.MAX_SAFE_INTEGER);
  if (fromSequence === undefined) throw new UsageError('feed resume: --from-sequence is required');
  return withTarget(values, async (deployment) => {
    // The old numbering's cut-off is the deployed clock skew bound's.
    const config = deployedRiskConfig(deployment, values.config, 'feed resume', 'its maxClockSkewSeconds');
    // As inject and replay read it: any case, a configured market only (the others listed).
    const symbol = resolveSymbol(config, values.symbol, undefined);
    const result = await handleAdmin(
      { action: 'resumeFeed', symbol, fromSequence },
      adminDeps(deployment, config, io),
    );
    if (!result.ok) {
      // The resume it names acts on this target, with the --config this one was given (ux46-advice-target).
      const config = values.config === undefined ? '' : ` --config ${shellWord(values.config)}`;
      throw new OperatorInputError(
        `feed resume refused: ${withTargetFlags(result.reason, deployment, config)}`,
      );
    }
    resetSentSequence(stateDir(), sentSequenceKey(deployment, result.id!), result.sequence!.after);
    io.stdout.write(
      `feed ${printable(result.id!)} resumed: last sequence ${result.sequence!.before} -> ${result.sequence!.after}, next ticks from ${fromSequence}\n`,
    );
    if (result.tookOver) {
      io.stdout.write(
        `  tick ${result.tookOver.sequence} of the old numbering was still starting liquidations: taken over, ${result.tookOver.resent} of them sent again (the restarted feed's ticks find the positions it had not reached)\n`,
      );
    }
    return 0;
  });
});
