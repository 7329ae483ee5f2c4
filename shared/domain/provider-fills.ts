import { recordOrSetAside, withLatest } from './latest.ts';
import type { Fill, SetAside, Unreadable } from './model.ts';
import { type BaseE8, div, NOTIONAL_TO_QUOTE, notionalQuote, type PriceE8, type QuoteE6 } from './units.ts';

/**
 * What a backstop liquidity provider won in the auctions, kept on its own record by the write that takes its capital
 * (providers48-fills-on-record): the latest few fills and its lifetime totals per market. Display only: no auction,
 * clearing or settlement reads it (the money is on the auction's fills and in the capital).
 */

/** One auction fill a provider took, as it stands on the provider. */
export interface ProviderFill {
  /** The liquidation whose auction it filled (the auction's id is auctionIdOf(liquidationId)). */
  readonly liquidationId: string;
  /** The auction's step that filled it: one fill per provider per step, so (liquidation, step) names it. */
  readonly step: number;
  readonly symbol: string;
  /** The auction's direction: SELL, the provider bought the lot's base; BUY, it sold base to close a short. */
  readonly direction: 'BUY' | 'SELL';
  readonly size: BaseE8;
  /** Its own bid at the step's mark, the price it filled at. */
  readonly price: PriceE8;
  /** What it paid (SELL) or was paid (BUY), in whole units: what its capital moved by (Fill.cost). */
  readonly cost: QuoteE6;
  /** The mark the step priced at. */
  readonly mark: PriceE8;
  /** fillEdge: what the fill was worth to it at that mark (> 0: it gained against the mark). */
  readonly edge: QuoteE6;
  readonly atMs: number;
}

/** A provider's lifetime fills in one market, exact. */
export interface ProviderMarketTotals {
  readonly fills: number;
  /** Base bought (SELL lots) and what it paid for it. */
  readonly bought: BaseE8;
  readonly paid: QuoteE6;
  /** Base sold (BUY lots) and what it was paid for it. */
  readonly sold: BaseE8;
  readonly received: QuoteE6;
  /** Sum of its fills' edges. */
  readonly edge: QuoteE6;
}

/** A provider's fills: the latest MAX_PROVIDER_FILLS_KEPT, oldest first, and its totals since `sinceMs`. */
export interface ProviderFills {
  /** Every fill counted: more than `recent` holds when older ones were let go. */
  readonly total: number;
  readonly recent: readonly ProviderFill[];
  readonly byMarket: Readonly<Record<string, ProviderMarketTotals>>;
  /**
   * When the totals began: the first fill this record counted. A provider's fills before session 48, or before a
   * previous version's write dropped the attribute during a deploy, or before an unreadable list was set aside, are
   * not in them: its registration may be older.
   */
  readonly sinceMs: number;
}

/** A provider's fills stored in a shape this version cannot read: kept and written back as they were, shown so. */
export type UnreadableProviderFills = Unreadable;

export const providerFillsRead = (
  fills: ProviderFills | UnreadableProviderFills | undefined,
): fills is ProviderFills => fills !== undefined && !('unreadable' in fills);

/**
 * Fills a provider keeps (the latest): bounded, so its item, read whole by every auction step's list of providers,
 * stays small (about 0.15 KB a fill; test/unit/provider-fills.test.ts measures the item).
 */
export const MAX_PROVIDER_FILLS_KEPT = 5;

/**
 * What a fill was worth to its provider at the mark, floored to the quote unit (never more than it gained): a SELL
 * lot's size at the mark less what it paid; a BUY lot's what it was paid less the size at the mark. Exact before the
 * one floor: cost is whole units, so floor(size x mark - cost) = floor(size x mark) - cost for a SELL lot, and
 * cost - ceil(size x mark) for a BUY lot.
 */
export function fillEdge(direction: 'BUY' | 'SELL', size: BaseE8, mark: PriceE8, cost: QuoteE6): QuoteE6 {
  const atMark16 = size * mark;
  const cost16 = cost * NOTIONAL_TO_QUOTE;
  return div(direction === 'SELL' ? atMark16 - cost16 : cost16 - atMark16, NOTIONAL_TO_QUOTE, 'floor');
}

/**
 * What an auction fill moved its provider's capital by: its `cost`; for a fill recorded without one (none is written
 * today: clearing sets it), size x price rounded against the provider as clearing rounds it, up on a SELL lot (it
 * pays) and down on a BUY lot (it is paid). The one rule every check counts a fill's cost by
 * (providers49-cost-one-rule).
 */
export const auctionFillCost = (direction: 'BUY' | 'SELL', fill: Fill): QuoteE6 =>
  fill.cost ?? notionalQuote(fill.size, fill.price, direction === 'SELL' ? 'ceil' : 'floor');

const NO_TOTALS: ProviderMarketTotals = { fills: 0, bought: 0n, paid: 0n, sold: 0n, received: 0n, edge: 0n };

/** `totals` with `fill` counted. */
export function addFill(totals: ProviderMarketTotals | undefined, fill: ProviderFill): ProviderMarketTotals {
  const t = totals ?? NO_TOTALS;
  const sell = fill.direction === 'SELL';
  return {
    fills: t.fills + 1,
    bought: sell ? t.bought + fill.size : t.bought,
    paid: sell ? t.paid + fill.cost : t.paid,
    sold: sell ? t.sold : t.sold + fill.size,
    received: sell ? t.received : t.received + fill.cost,
    edge: t.edge + fill.edge,
  };
}

/**
 * The provider's fills with `fill` recorded: the latest MAX_PROVIDER_FILLS_KEPT kept, its market's totals added to.
 * A fill of the same liquidation and step already kept is not counted again (the write that carries it is
 * conditional on the version it was planned on, so only a record built twice from one read could hold it).
 */
export function withProviderFill(fills: ProviderFills | undefined, fill: ProviderFill): ProviderFills {
  const latest = withLatest(
    fills,
    fill,
    MAX_PROVIDER_FILLS_KEPT,
    (f) => f.liquidationId === fill.liquidationId && f.step === fill.step,
  );
  if (latest === fills) return fills;
  return {
    total: latest.total,
    recent: latest.recent,
    byMarket: { ...fills?.byMarket, [fill.symbol]: addFill(fills?.byMarket[fill.symbol], fill) },
    sinceMs: fills?.sinceMs ?? fill.atMs,
  };
}

/** The fill-record attributes of a provider (ProviderRecord's). */
export interface ProviderFillsOnRecord {
  readonly fills?: ProviderFills | UnreadableProviderFills;
  readonly fillsSetAside?: SetAside;
}

/**
 * A provider's fills with `fill` recorded (withProviderFill). Fills this version cannot read are neither a refusal
 * (that would stop the provider bidding for a display) nor dropped: they are set aside as they were, and new
 * totals start with the fill (their `sinceMs` says so), as ADL's events do (follow47-adl-events-unreadable).
 */
export function recordProviderFill(
  provider: ProviderFillsOnRecord,
  fill: ProviderFill,
): { fills: ProviderFills; fillsSetAside?: SetAside } {
  const { list, aside } = recordOrSetAside(provider.fills, provider.fillsSetAside, (fills) =>
    withProviderFill(fills, fill),
  );
  return { fills: list, ...(aside ? { fillsSetAside: aside } : {}) };
}

/** The fill attributes of `from`, for a write that replaces the provider's terms (a registration): kept as they are. */
export const fillsKeptOnReregister = (from: ProviderFillsOnRecord | undefined): ProviderFillsOnRecord => ({
  ...(from?.fills !== undefined ? { fills: from.fills } : {}),
  ...(from?.fillsSetAside !== undefined ? { fillsSetAside: from.fillsSetAside } : {}),
});
