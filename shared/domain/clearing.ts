import type { AuctionDirection } from './auction.ts';
import {
  type BaseE8,
  div,
  minBig,
  NOTIONAL_TO_QUOTE,
  notionalQuote,
  PPM_SCALE,
  type PriceE8,
  type QuoteE6,
  type Rounding,
} from './units.ts';

/**
 * Clears one auction step against the standing bids of backstop liquidity providers (Maker's take, with
 * the providers' terms standing in for the keepers' `max`). Everyone fills at the one auction price.
 */

export type ClearingReason =
  | 'clearing/non-positive-price'
  | 'clearing/non-positive-mark'
  | 'clearing/invalid-amount'
  | 'clearing/invalid-provider'
  | 'clearing/duplicate-provider';

export class ClearingError extends Error {
  override readonly name = 'ClearingError';
  constructor(
    readonly reason: ClearingReason,
    detail?: string,
  ) {
    super(detail ? `${reason}: ${detail}` : reason);
  }
}

/** A provider's standing bid (a ProviderRecord fits). */
export interface ProviderBid {
  readonly id: string;
  /** Unused committed capital. */
  readonly capital: QuoteE6;
  /**
   * d: the bid stands at mark * (1 - d) on a SELL lot, mark * (1 + d) on a BUY lot; the provider takes once
   * the auction price reaches it, at the auction price.
   */
  readonly maxDiscountPpm: bigint;
  readonly maxLot: BaseE8;
}

export interface AuctionStepInput {
  readonly direction: AuctionDirection;
  readonly remainingLot: BaseE8;
  readonly price: PriceE8;
  readonly mark: PriceE8;
  /** SELL only: the most the auction may collect, debt plus penalty (Maker's tab). Ignored for BUY. */
  readonly debt: QuoteE6;
  readonly dust: BaseE8;
  readonly providers: readonly ProviderBid[];
  /**
   * Most providers filled in this step (a positive integer; absent: no limit). Each fill is a write of the
   * provider in the step's transaction, which holds only so many: the rest wait for the next step.
   */
  readonly maxFills?: number;
}

export interface ProviderFill {
  readonly providerId: string;
  readonly size: BaseE8;
  readonly price: PriceE8;
  /** SELL: ceil(size * price), what the provider pays. BUY: floor(size * price), what the backstop pays. */
  readonly cost: QuoteE6;
}

export interface ClearingResult {
  /** In the order they were filled: best terms first. */
  readonly fills: readonly ProviderFill[];
  readonly filledSize: BaseE8;
  /** Sum of the fills' costs: SELL, quote collected from providers; BUY, quote the backstop pays them. */
  readonly collected: QuoteE6;
  readonly remainingLot: BaseE8;
  /**
   * SELL: collected == debt, or lot is left but one more base unit would collect more than debt (the
   * residual, debt - collected, is then below one unit's price). The rest of the lot goes back to its
   * owner (Maker), so it may be below dust. Always false for BUY.
   */
  readonly debtCovered: boolean;
  /** maxFills stopped the step: a provider whose bid the price reached could have taken some of the lot left. */
  readonly fillsCapped: boolean;
}

/**
 * Fills, in order of best terms, min(remaining, maxLot, floor(capital / price), SELL: floor(debt left / price))
 * from each provider whose bid the auction price has reached (see `accepts`):
 *   SELL: price <= mark * (1 - maxDiscount)    BUY: price >= mark * (1 + maxDiscount)
 * Best terms = smallest discount (premium) first, the bid nearest the mark and so the first the auction
 * reaches, as a book would rank it; then larger capital; then id, so the result does not depend on the
 * order of `providers`.
 *
 * Dust (Maker's chost): no fill is smaller than dust unless it takes the whole rest of the lot or pays off
 * the debt (a provider's crumbs of capital or room take nothing). If the greedy pass leaves
 * 0 < remaining < dust, the last fills are trimmed until at least dust remains (a lot below dust is only ever
 * taken whole, by one provider). So remainingLot ends 0, >= dust, unchanged (the input lot was already below
 * dust and no one provider could take it whole), or anything once the debt is covered (returned lot).
 */
export function clearAuctionStep(input: AuctionStepInput): ClearingResult {
  validate(input);
  const { direction, price, mark, debt, dust } = input;
  // size <= floor(q * 1e10 / price) <=> ceil(size * price / 1e10) <= q: the largest size whose cost fits q.
  const sizeFor = (quote: QuoteE6): BaseE8 => div(quote * NOTIONAL_TO_QUOTE, price, 'floor');
  // Most steps of an auction come before the price reaches any bid: nothing fills (no sort, no sizing).
  if (!input.providers.some((p) => accepts(p, direction, price, mark))) {
    const remainingLot = input.remainingLot;
    const debtCovered = direction === 'SELL' && (debt === 0n || (remainingLot > 0n && sizeFor(debt) === 0n));
    return { fills: [], filledSize: 0n, collected: 0n, remainingLot, debtCovered, fillsCapped: false };
  }
  const rounding: Rounding = direction === 'SELL' ? 'ceil' : 'floor';
  // What a provider would fill of `remaining` (0: nothing). A crumb (below dust, not the whole rest) is no fill:
  // a provider down to crumbs of capital or room would otherwise take a sliver of every lot. The piece that pays
  // off the debt is the exception.
  const fillSize = (provider: ProviderBid, remaining: BaseE8, collected: QuoteE6): BaseE8 => {
    const size = minBig(remaining, minBig(provider.maxLot, sizeFor(provider.capital)));
    if (size === 0n || size < minBig(dust, remaining)) return 0n;
    return direction === 'SELL' ? minBig(size, sizeFor(debt - collected)) : size;
  };

  const sizes = new Map<string, BaseE8>();
  const order: ProviderBid[] = [];
  let remaining = input.remainingLot;
  let collected = 0n;
  let fillsCapped = false;
  const maxFills = input.maxFills ?? Number.POSITIVE_INFINITY;
  for (const provider of [...input.providers].sort(byBestTerms)) {
    if (remaining === 0n) break;
    if (!accepts(provider, direction, price, mark)) continue;
    const size = fillSize(provider, remaining, collected);
    if (size === 0n) continue;
    // Only a provider that would fill counts towards the cap: crumbs and a paid debt do not.
    if (order.length >= maxFills) {
      fillsCapped = true;
      break;
    }
    sizes.set(provider.id, size);
    order.push(provider);
    remaining -= size;
    collected += notionalQuote(size, price, rounding);
  }

  // Covered: paid in full, or the debt (not the lot or the providers) stopped the sale: one more unit would
  // collect more than debt. A lot sold out just short of the debt is not covered: that shortfall is real.
  const debtCovered =
    direction === 'SELL' && (collected === debt || (remaining > 0n && sizeFor(debt - collected) === 0n));
  if (!debtCovered && remaining > 0n && remaining < dust) {
    // Trim from the worst terms back; trimming only lowers costs, so no cap can break. A fill the trim
    // would leave below dust goes whole (more than dust then remains, which is allowed).
    let excess = dust - remaining;
    for (let i = order.length - 1; i >= 0 && excess > 0n; i--) {
      const id = order[i]!.id;
      const size = sizes.get(id)!;
      const kept = size - minBig(size, excess);
      const left = kept < dust ? 0n : kept;
      sizes.set(id, left);
      excess -= minBig(excess, size - left);
    }
  }

  const fills: ProviderFill[] = [];
  for (const provider of order) {
    const size = sizes.get(provider.id)!;
    if (size > 0n)
      fills.push({ providerId: provider.id, size, price, cost: notionalQuote(size, price, rounding) });
  }
  const filledSize = fills.reduce((sum, f) => sum + f.size, 0n);
  return {
    fills,
    filledSize,
    collected: fills.reduce((sum, f) => sum + f.cost, 0n),
    remainingLot: input.remainingLot - filledSize,
    debtCovered,
    fillsCapped,
  };
}

/**
 * A provider's standing bid sits at mark * (1 - d) for a SELL lot (mark * (1 + d) for a BUY lot): as the Dutch
 * auction's price falls (rises) it takes the lot once the price reaches its bid, at the auction's price.
 * Exact, cross-multiplied: price * 1e6 <= mark * (1e6 - d) for SELL, >= mark * (1e6 + d) for BUY.
 */
export function accepts(
  provider: Pick<ProviderBid, 'maxDiscountPpm'>,
  direction: AuctionDirection,
  price: PriceE8,
  mark: PriceE8,
): boolean {
  return direction === 'SELL'
    ? price * PPM_SCALE <= mark * (PPM_SCALE - provider.maxDiscountPpm)
    : price * PPM_SCALE >= mark * (PPM_SCALE + provider.maxDiscountPpm);
}

function byBestTerms(a: ProviderBid, b: ProviderBid): number {
  if (a.maxDiscountPpm !== b.maxDiscountPpm) return a.maxDiscountPpm < b.maxDiscountPpm ? -1 : 1;
  if (a.capital !== b.capital) return a.capital > b.capital ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function requireNonNegative(what: string, value: bigint): void {
  if (value < 0n) throw new ClearingError('clearing/invalid-amount', `${what} ${value} is negative`);
}

function validate(input: AuctionStepInput): void {
  if (input.price <= 0n) throw new ClearingError('clearing/non-positive-price', `price ${input.price}`);
  if (input.maxFills !== undefined && !(Number.isSafeInteger(input.maxFills) && input.maxFills > 0))
    throw new ClearingError(
      'clearing/invalid-amount',
      `maxFills ${input.maxFills} must be a positive integer`,
    );
  if (input.mark <= 0n) throw new ClearingError('clearing/non-positive-mark', `mark ${input.mark}`);
  requireNonNegative('remainingLot', input.remainingLot);
  requireNonNegative('debt', input.debt);
  requireNonNegative('dust', input.dust);
  const ids = new Set<string>();
  for (const p of input.providers) {
    if (typeof p.id !== 'string' || p.id.length === 0) {
      throw new ClearingError('clearing/invalid-provider', 'provider without an id');
    }
    if (p.capital < 0n || p.maxLot < 0n || p.maxDiscountPpm < 0n) {
      throw new ClearingError(
        'clearing/invalid-provider',
        `${p.id}: negative capital, maxLot or maxDiscountPpm`,
      );
    }
    if (ids.has(p.id)) throw new ClearingError('clearing/duplicate-provider', p.id);
    ids.add(p.id);
  }
}
