import { scanProviders } from '../../shared/adapters/aws/providers.ts';
import type { RiskConfig } from '../../shared/domain/config.ts';
import { baseOf, quoteOf } from '../../shared/domain/config.ts';
import { setAsideList } from '../../shared/domain/model.ts';
import {
  MAX_PROVIDER_FILLS_KEPT,
  type ProviderFill,
  type ProviderMarketTotals,
  providerFillsRead,
} from '../../shared/domain/provider-fills.ts';
import {
  formatBase,
  formatPpm,
  formatPrice,
  formatQuote,
  formatQuoteGrouped,
  parsePpm,
  parseQuote,
} from '../../shared/domain/units.ts';
import { counted, iso } from '../../shared/domain/words.ts';
import { shellWord } from '../../shared/local/deployment.ts';
import { formattedLotsBySymbol } from '../../shared/local/seed.ts';
import type { ProviderRecord } from '../../shared/ports/index.ts';
import { auctionIdOf } from '../../shared/services/liquidation.ts';
import { UsageError } from '../args.ts';
import { printable, printableFields, printableJson } from '../printable.ts';
import { CONFIG_FILE_HELP } from '../risk-config.ts';
import { resolveSymbol } from '../simulate.ts';
import {
  adaptersOf,
  type Command,
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

/**
 * `backstop providers show | list`: a backstop liquidity provider's terms, capital left and what it won in the
 * auctions (its record's fills: providers48-fills-on-record), read-only. Amounts are decimal strings in their units.
 */

export const PROVIDERS_USAGE = `Usage: backstop providers show <providerId> [--json]
       backstop providers list [--market SYMBOL [--config FILE.json]] [--json]

  show      one provider: its terms (markets, discount, lots), its capital left unused, and what it won in the
            auctions: its totals per market (fills, base bought and what it paid, base sold and what it was
            paid, its edge at the marks) and its latest ${MAX_PROVIDER_FILLS_KEPT} fills, each with its auction and liquidation, the
            step, the size, its price, what it paid or was paid, the mark of the step and its edge. The edge is
            what a fill was worth to it at the mark: a SELL lot's size at the mark less what it paid, a BUY lot's
            what it was paid less the size at the mark, floored to the quote's unit. Totals count the fills since
            \`since\`: fills before session 48 are not recorded on providers (they are on the auctions).
            Exit 2 when there is no such provider
  list      every provider (or those quoting --market), ordered by id: markets, capital, discount, lot, and
            its lifetime totals (a consistent Scan of the providers table: tens of items). A provider whose
            record does not read is named with why on stderr, the others listed: exit 1
  --market SYMBOL        list: only the providers quoting this market, or holding fills won in it (those that
                         no longer quote it said so), and only its totals: a market of the risk configuration
                         (eth-usd is ETH-USD), or one it no longer has that a provider still quotes or holds
                         fills in (said so); exit 2 for another, unless a record did not read (it may quote it:
                         named, exit 1, the market said a typo or that record's)
  --config FILE.json     list --market: the risk configuration deployed, for its markets (local: what local up runs
                         with; aws: the deployed one, default the built-in defaults):
${CONFIG_FILE_HELP}  --json                 JSON instead of text: show prints ProviderShow, list ProvidersList (cli/ops/providers.ts);
                         amounts are decimal strings in their units, times ISO-8601 UTC, a key absent when the
                         record does not have it
${TARGET_USAGE}`;

export const PROVIDERS_OPTIONS = {
  ...TARGET_OPTIONS,
  market: { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** --market and --config are list's. */
export const PROVIDERS_SUBCOMMANDS: SubcommandOptions = { show: [], list: ['market', 'config'] };

/** A provider's terms and capital, as `show` and `list` print them. */
export interface ShownProvider {
  readonly id: string;
  /** The markets it quotes. */
  readonly symbols: readonly string[];
  /** Capital committed and not used yet, in the quote currency. */
  readonly capital: string;
  readonly quote: string;
  /** Its bid's discount to the mark (SELL lots; a premium on BUY lots), a share: 0.02 is 2 %. */
  readonly maxDiscount: string;
  /** Largest lot per auction, in each market's base unit, unless maxLotBySymbol says otherwise. */
  readonly maxLot: string;
  readonly maxLotBySymbol?: Readonly<Record<string, string>>;
  readonly version: number;
}

/** A provider's lifetime fills in one market (exact sums of what its fills recorded). */
export interface ShownProviderTotals {
  readonly symbol: string;
  readonly base: string;
  readonly fills: number;
  /** Base bought on SELL lots (longs closed), and what it paid for it. */
  readonly bought: string;
  readonly paid: string;
  /** Base sold on BUY lots (shorts closed), and what it was paid for it. */
  readonly sold: string;
  readonly received: string;
  /** The sum of its fills' edges at the marks (> 0: it gained against the marks). */
  readonly edge: string;
}

/** One fill it won. */
export interface ShownProviderFill {
  readonly at: string;
  readonly auctionId: string;
  readonly liquidationId: string;
  readonly step: number;
  readonly symbol: string;
  /** The auction's lot: SELL (a long closed: the provider bought) or BUY (a short closed: it sold). */
  readonly direction: 'BUY' | 'SELL';
  readonly size: string;
  /** Its own bid at the step's mark. */
  readonly price: string;
  /** What it paid (SELL) or was paid (BUY). */
  readonly cost: string;
  readonly mark: string;
  readonly edge: string;
}

/** `providers show --json`. */
export interface ProviderShow {
  readonly provider: ShownProvider;
  /** What it won; absent when its record counts no fill (none since session 48). */
  readonly fills?: {
    /** Fills counted: more than `recent` when older ones were let go. */
    readonly total: number;
    /** When the totals began (its first fill counted). */
    readonly since: string;
    /** By market, ordered by symbol. */
    readonly byMarket: readonly ShownProviderTotals[];
    /** The latest (MAX_PROVIDER_FILLS_KEPT), the oldest first. */
    readonly recent: readonly ShownProviderFill[];
  };
  /**
   * Fills on the record in a shape this version cannot read, each with why, kept on the record as they are.
   * `current`: the record's own (no `fills` then); else set aside when a fill started new totals.
   */
  readonly unreadableFills?: readonly { readonly reason: string; readonly current: boolean }[];
}

/** `providers list --json`. */
export interface ProvidersList {
  /** --market, when given. */
  readonly market?: string;
  /** --market is not a market of the risk configuration (no longer): providers still quote it. */
  readonly marketNotConfigured?: true;
  /**
   * --market taken as given, with marketNotConfigured: no provider whose record reads quotes it or holds fills in it,
   * while a record does not read: a typo, or that record's market, which cannot tell; the markets configured
   * (review50-feed-providers-typo).
   */
  readonly marketUnconfirmed?: { readonly configured: readonly string[] };
  readonly providers: readonly (ShownProvider & {
    /** --market's: it holds fills won there, but quotes it no more (providers50-list-dropped-market). */
    readonly noLongerQuotes?: true;
    /** Fills counted (0: none recorded), in every market or --market's. */
    readonly fills: number;
    readonly since?: string;
    readonly totals: readonly ShownProviderTotals[];
    /** The record holds fills this version cannot read (providers show says why). */
    readonly unreadableFills?: true;
  })[];
  /** Providers whose record does not read (its terms or capital: every auction step of its markets fails on it). */
  readonly unreadable?: readonly { readonly id: string; readonly reason: string }[];
}

const shownProvider = (p: ProviderRecord): ShownProvider => ({
  id: p.id,
  symbols: [...p.symbols],
  capital: formatQuote(p.capital),
  quote: p.symbols[0] === undefined ? '' : quoteOf(p.symbols[0]),
  maxDiscount: formatPpm(p.maxDiscountPpm),
  maxLot: formatBase(p.maxLot),
  ...formattedLotsBySymbol(p),
  version: p.version,
});

const shownTotals = (symbol: string, t: ProviderMarketTotals): ShownProviderTotals => ({
  symbol,
  base: baseOf(symbol),
  fills: t.fills,
  bought: formatBase(t.bought),
  paid: formatQuote(t.paid),
  sold: formatBase(t.sold),
  received: formatQuote(t.received),
  edge: formatQuote(t.edge),
});

const shownFill = (f: ProviderFill): ShownProviderFill => ({
  at: iso(f.atMs),
  auctionId: auctionIdOf(f.liquidationId),
  liquidationId: f.liquidationId,
  step: f.step,
  symbol: f.symbol,
  direction: f.direction,
  size: formatBase(f.size),
  price: formatPrice(f.price),
  cost: formatQuote(f.cost),
  mark: formatPrice(f.mark),
  edge: formatQuote(f.edge),
});

const bySymbol = (totals: Readonly<Record<string, ProviderMarketTotals>>, only?: string) =>
  Object.keys(totals)
    .filter((symbol) => only === undefined || symbol === only)
    .sort()
    .map((symbol) => shownTotals(symbol, totals[symbol]!));

export function providerShow(p: ProviderRecord): ProviderShow {
  const unreadable = [
    ...setAsideList(p.fillsSetAside).map((f) => ({ reason: f.unreadable, current: false })),
    ...(p.fills && !providerFillsRead(p.fills) ? [{ reason: p.fills.unreadable, current: true }] : []),
  ];
  return {
    provider: shownProvider(p),
    ...(providerFillsRead(p.fills)
      ? {
          fills: {
            // A count below the fills kept (an edit by hand) is not shown as fewer than listed.
            total: Math.max(p.fills.total, p.fills.recent.length),
            since: iso(p.fills.sinceMs),
            byMarket: bySymbol(p.fills.byMarket),
            recent: p.fills.recent.map(shownFill),
          },
        }
      : {}),
    ...(unreadable.length > 0 ? { unreadableFills: unreadable } : {}),
  };
}

/** Its fills' totals in `symbol`, when its record counts any there (one it no longer quotes included). */
const totalsIn = (p: ProviderRecord, symbol: string): ProviderMarketTotals | undefined =>
  providerFillsRead(p.fills) && Object.hasOwn(p.fills.byMarket, symbol)
    ? p.fills.byMarket[symbol]
    : undefined;

/** The markets a provider quotes, and those it holds fills won in (its totals by market). */
const marketsOf = (p: ProviderRecord): readonly string[] => [
  ...p.symbols,
  ...(providerFillsRead(p.fills) ? Object.keys(p.fills.byMarket) : []),
];

/**
 * `--market`'s symbol: a market of the risk configuration, as replay and inject take one (a typo or lower case listed
 * "no provider quotes" it); or one it no longer has that a provider still quotes or holds fills won in, by symbol or
 * its base alone (providers49-list-unconfigured; providers50-list-dropped-market: one that dropped it too). Otherwise
 * resolveSymbol's usage error, the configured markets named; but while some records did not read (`unread`), one of
 * them may quote it: taken as given, a market not configured, for those records to be named as any unreadable record
 * is (providers50-list-unreadable-market), and `unconfirmed`: a typo too, for all that can tell (exit 1 for the record
 * all the same, not 2: review50-feed-providers-typo).
 */
export function listedMarket(
  config: RiskConfig,
  given: string,
  providers: readonly ProviderRecord[],
  unread = 0,
): { readonly symbol: string; readonly configured: boolean; readonly unconfirmed?: true } {
  try {
    return { symbol: resolveSymbol(config, given, undefined, false, '--market'), configured: true };
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    const wanted = given.trim().toUpperCase();
    const configured = config.markets.map((m) => m.symbol);
    // A base several configured markets share stays the usage error it is.
    if (configured.some((s) => s === wanted || baseOf(s) === wanted)) throw error;
    const quoted = [...new Set(providers.flatMap(marketsOf))].filter((s) => !configured.includes(s));
    const found = quoted.includes(wanted) ? [wanted] : quoted.filter((s) => baseOf(s) === wanted);
    if (found.length === 1) return { symbol: found[0]!, configured: false };
    if (found.length === 0 && unread > 0) return { symbol: wanted, configured: false, unconfirmed: true };
    throw error;
  }
}

export function providersList(
  providers: readonly ProviderRecord[],
  market?: string,
  unreadable: readonly { readonly id: string; readonly reason: string }[] = [],
  marketNotConfigured = false,
  /** The markets configured, when --market was taken as given (ProvidersList.marketUnconfirmed). */
  unconfirmed?: readonly string[],
): ProvidersList {
  return {
    ...(market === undefined ? {} : { market }),
    ...(market !== undefined && marketNotConfigured ? { marketNotConfigured: true as const } : {}),
    ...(market !== undefined && marketNotConfigured && unconfirmed
      ? { marketUnconfirmed: { configured: unconfirmed } }
      : {}),
    providers: providers
      .filter((p) => market === undefined || p.symbols.includes(market) || totalsIn(p, market) !== undefined)
      .map((p) => {
        const fills = providerFillsRead(p.fills) ? p.fills : undefined;
        const totals = fills ? bySymbol(fills.byMarket, market) : [];
        const unreadable = (p.fills !== undefined && !fills) || setAsideList(p.fillsSetAside).length > 0;
        return {
          ...shownProvider(p),
          ...(market !== undefined && !p.symbols.includes(market) ? { noLongerQuotes: true as const } : {}),
          fills: totals.reduce((n, t) => n + t.fills, 0),
          ...(fills ? { since: iso(fills.sinceMs) } : {}),
          totals,
          ...(unreadable ? { unreadableFills: true as const } : {}),
        };
      }),
    ...(unreadable.length > 0 ? { unreadable } : {}),
  };
}

// --- Text --------------------------------------------------------------------------------------------------

const money = (decimal: string, quote: string): string =>
  `${formatQuoteGrouped(parseQuote(decimal, 'amount', { allowNegative: true }))} ${quote}`;

/** 0.02 -> "2 %": the discount as an operator states it. */
const percent = (share: string): string => `${formatPpm(parsePpm(share) * 100n)} %`;

const termsLine = (p: ShownProvider): string => {
  const unit = p.symbols.length === 1 ? baseOf(p.symbols[0]!) : "of its market's base";
  const lots = Object.entries(p.maxLotBySymbol ?? {}).map(
    ([symbol, lot]) => `${symbol} ${lot} ${baseOf(symbol)}`,
  );
  return `bids ${percent(p.maxDiscount)} from the mark, takes up to ${p.maxLot} ${unit} of an auction${lots.length > 0 ? ` (${lots.join(', ')})` : ''}`;
};

const totalsLine = (t: ShownProviderTotals, quote: string): string => {
  const parts = [
    ...(t.bought !== '0' || t.paid !== '0'
      ? [`bought ${t.bought} ${t.base} for ${money(t.paid, quote)}`]
      : []),
    ...(t.sold !== '0' || t.received !== '0'
      ? [`sold ${t.sold} ${t.base} for ${money(t.received, quote)}`]
      : []),
  ];
  return `${counted(t.fills, 'fill', 'fills')}: ${parts.join(', ')}; edge ${money(t.edge, quote)} at the marks`;
};

function renderProvider(r: ProviderShow): string {
  const p = r.provider;
  const q = p.quote;
  const out = [
    `provider ${p.id} (version ${p.version}): quotes ${p.symbols.join(', ')}`,
    `  capital      ${money(p.capital, q)} unused`,
    `  terms        ${termsLine(p)}`,
  ];
  const f = r.fills;
  if (!f) out.push('  won          nothing recorded (fills before session 48 are on the auctions only)');
  else {
    out.push(`  won          ${counted(f.total, 'fill', 'fills')} since ${f.since}:`);
    for (const t of f.byMarket) out.push(`    ${t.symbol}  ${totalsLine(t, q)}`);
    const kept = f.recent.length;
    out.push(
      `  ${kept === f.total ? (kept === 1 ? 'the fill' : `the ${kept} fills`) : `the latest ${kept}`}${kept > 1 ? ', the oldest first' : ''}:`,
    );
    for (const e of f.recent)
      out.push(
        `    ${e.at} ${e.auctionId} step ${e.step}: ${e.direction === 'SELL' ? 'bought' : 'sold'} ${e.size} ${baseOf(e.symbol)} at ${e.price} ${q}, ${e.direction === 'SELL' ? 'paid' : 'paid to it'} ${money(e.cost, q)}; mark ${e.mark} ${q}, edge ${money(e.edge, q)}`,
      );
  }
  for (const u of r.unreadableFills ?? [])
    out.push(
      u.current
        ? `  fills recorded in a shape this version cannot read (${u.reason}): kept on the record as they are`
        : `  earlier fills this version cannot read (${u.reason}): set aside on the record as they were when a fill started new totals`,
    );
  return `${out.join('\n')}\n`;
}

function renderProviders(r: ProvidersList): string {
  // Taken as given: said a typo as much as a market of the record that does not read (review50-feed-providers-typo).
  const unconfirmed = r.marketUnconfirmed
    ? `, ${r.marketUnconfirmed.configured.join(', ')}: a typo, or a market of a record that does not read`
    : '';
  const notConfigured = r.marketNotConfigured
    ? ` (${r.market} is not a market of the risk configuration${unconfirmed})`
    : '';
  if (r.providers.length === 0)
    return r.market === undefined
      ? 'no provider\n'
      : `no provider${r.unreadable ? ' whose record reads' : ''} quotes ${r.market}${notConfigured}\n`;
  const dropped = r.providers.filter((p) => p.noLongerQuotes).length;
  const out = [
    `${counted(r.providers.length, 'provider', 'providers')}${r.market === undefined ? '' : ` quoting ${r.market}`}${dropped > 0 ? ` or holding fills won in it (${dropped} no longer quoting it)` : ''}${notConfigured}:`,
  ];
  for (const p of r.providers) {
    out.push(
      `  ${p.id} (${p.symbols.join(', ')}): capital ${money(p.capital, p.quote)} unused; ${termsLine(p)}`,
    );
    if (p.noLongerQuotes) out.push(`    no longer quotes ${r.market}`);
    for (const t of p.totals) out.push(`    ${t.symbol}  ${totalsLine(t, p.quote)}`);
    if (p.totals.length === 0) out.push('    no fill recorded');
    if (p.unreadableFills)
      out.push(`    holds fills this version cannot read: backstop providers show ${shellWord(p.id)}`);
  }
  return `${out.join('\n')}\n`;
}

export const runProviders: Command = operatorCommand(async (argv, io) => {
  const { positionals, values } = parseCommand(argv, PROVIDERS_OPTIONS);
  if (values.help) {
    io.stdout.write(PROVIDERS_USAGE);
    return 0;
  }
  const action = subcommand('providers', positionals, ['show', 'list'] as const);
  refuseOthersOptions('providers', action, values, PROVIDERS_OPTIONS, PROVIDERS_SUBCOMMANDS);
  if (action === 'show') {
    const id = positionals[1];
    if (id === undefined || id.trim() === '') throw new UsageError('providers show: a provider id');
    noMorePositionals('providers show', positionals, 2);
    return withTarget(values, async (deployment) => {
      const p = await adaptersOf(deployment).providers.get(id);
      if (!p)
        throw new OperatorInputError(
          `providers show: no provider "${id}" in stage ${deployment.stage} (${deployment.kind}) (backstop providers list lists them)`,
        );
      const shown = providerShow(p);
      io.stdout.write(
        values.json ? `${printableJson(shown)}\n` : printable(renderProvider(printableFields(shown)), true),
      );
      return 0;
    });
  }
  noMorePositionals('providers list', positionals, 1);
  const given = values.market;
  if (given !== undefined && given.trim() === '')
    throw new UsageError('providers list: --market needs a symbol');
  if (given === undefined && values.config !== undefined)
    throw new UsageError('providers list: --config only with --market (its markets)');
  return withTarget(values, async (deployment) => {
    const config = given === undefined ? undefined : riskConfigFor(deployment, values.config);
    // One record that does not read is named, not the whole list refused (review48-providers-list-unreadable).
    const unreadable: { id: string; reason: string }[] = [];
    const all = await scanProviders(
      deployment.clients.dynamo,
      deployment.names.tables.providers,
      (id, reason) => unreadable.push({ id, reason }),
    );
    const market = given === undefined ? undefined : listedMarket(config!, given, all, unreadable.length);
    const listed = providersList(
      all,
      market?.symbol,
      unreadable,
      market?.configured === false,
      market?.unconfirmed ? config!.markets.map((m) => m.symbol) : undefined,
    );
    io.stdout.write(
      values.json ? `${printableJson(listed)}\n` : printable(renderProviders(printableFields(listed)), true),
    );
    for (const u of unreadable)
      io.stderr.write(
        `providers list: provider ${printable(u.id)} cannot be read (${printable(u.reason)}), not listed: every auction step of its markets fails on it\n`,
      );
    return unreadable.length > 0 ? 1 : 0;
  });
});
