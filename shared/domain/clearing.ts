import type { AuctionDirection } from './auction.ts';
import {
  type BaseE8,
  ceilToLot,
  div,
  floorToLot,
  maxBig,
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
 * the providers' terms standing in for the keepers' `max`). Each bid fills at its own price (bidPrice), as a
 * book's resting orders do when an ask crosses them: the auction's price only says which bids it has reached.
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
   * the auction price reaches it, at its bid (bidPrice).
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
  /**
   * The market's lot (MarketConfig.lotSize; absent: 1 unit). Every fill leaves whole lots of the lot behind, so what
   * the auction leaves the venue can sell: whole lots, and the first fill that can also takes the lot's part under a
   * lot (fillLeavingWholeLots).
   */
  readonly lot?: BaseE8;
}

export interface ProviderFill {
  readonly providerId: string;
  readonly size: BaseE8;
  /** The provider's own bid at the step's mark (bidPrice), not the auction's price. */
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
   * SELL: collected == debt, or lot is left but the debt stopped the sale: one more fill (a base unit; with a lot,
   * the least fillLeavingWholeLots makes) at the best bid still able to take one would collect more than debt (the
   * residual, debt - collected, is then below that fill's price; below the auction's price when no such bid was
   * reached). The rest of the lot goes back to its owner (Maker), so it may be below dust. Always false for BUY.
   */
  readonly debtCovered: boolean;
  /** maxFills stopped the step: a provider whose bid the price reached could have taken some of the lot left. */
  readonly fillsCapped: boolean;
}

/**
 * Fills, in order of best terms, min(remaining, maxLot, floor(capital / p), SELL: floor(debt left / p)) from each
 * provider whose bid the auction price has reached (see `accepts`), each at its own price p (bidPrice):
 *   SELL: price <= mark * (1 - maxDiscount)    BUY: price >= mark * (1 + maxDiscount)
 * Best terms = smallest discount (premium) first, the bid nearest the mark and so the first the auction
 * reaches, as a book would rank it (SELL: the highest bid, BUY: the lowest ask); then larger capital; then id,
 * so the result does not depend on the order of `providers`.
 *
 * The debt (SELL) stops the sale at the first bid it cuts: that bid's next unit would collect more than debt, and
 * a lower bid is not sold around it (at most one unit's price of debt, for a sliver below the best price left).
 *
 * Dust (Maker's chost): no fill is smaller than dust unless it takes the whole rest of the lot or pays off
 * the debt (a provider's crumbs of capital or room take nothing). If the greedy pass leaves
 * 0 < remaining < dust, the last fills are trimmed until at least dust remains (a lot below dust is only ever
 * taken whole, by one provider). So remainingLot ends 0, >= dust, unchanged (the input lot was already below
 * dust and no one provider could take it whole), or anything once the debt is covered (returned lot).
 *
 * With a market lot (`lot`) every size above is taken down to one that leaves whole lots (fillLeavingWholeLots), and
 * a trim gives back whole lots: a lot of whole lots is filled and left in whole lots.
 */
export function clearAuctionStep(input: AuctionStepInput): ClearingResult {
  validate(input);
  const { direction, price, mark, debt, dust } = input;
  const lot = input.lot ?? 1n;
  // Most steps of an auction come before the price reaches any bid: nothing fills (no sort, no sizing).
  if (!input.providers.some((p) => accepts(p, direction, price, mark))) {
    const remainingLot = input.remainingLot;
    const debtCovered =
      direction === 'SELL' &&
      (debt === 0n || (remainingLot > 0n && sizeAt(debt, price) < leastFill(remainingLot, lot)));
    return { fills: [], filledSize: 0n, collected: 0n, remainingLot, debtCovered, fillsCapped: false };
  }
  const rounding: Rounding = direction === 'SELL' ? 'ceil' : 'floor';

  const taken: Taken[] = [];
  let remaining = input.remainingLot;
  let collected = 0n;
  let fillsCapped = false;
  // The debt cut a bid (SELL): the residual buys no unit at that bid.
  let debtStopped = false;
  const maxFills = input.maxFills ?? Number.POSITIVE_INFINITY;
  for (const provider of [...input.providers].sort(byBestTerms)) {
    if (remaining === 0n) break;
    if (!accepts(provider, direction, price, mark)) continue;
    const at = bidPrice(provider, direction, mark);
    // A crumb (below dust, not the whole rest) is no fill: a provider down to crumbs of capital or room would
    // otherwise take a sliver of every lot. The piece that pays off the debt is the exception.
    const room = fillLeavingWholeLots(
      minBig(remaining, minBig(provider.maxLot, sizeAt(provider.capital, at))),
      remaining,
      lot,
    );
    if (room === 0n || room < minBig(dust, remaining)) continue;
    const byDebt = direction === 'SELL' ? sizeAt(debt - collected, at) : room;
    const size = fillLeavingWholeLots(minBig(room, byDebt), remaining, lot);
    // Only a provider that fills counts towards the cap: crumbs (skipped above) and a paid debt (0) do not.
    if (size > 0n) {
      if (taken.length >= maxFills) {
        fillsCapped = true;
        break;
      }
      taken.push({ provider, price: at, size });
      remaining -= size;
      collected += notionalQuote(size, at, rounding);
    }
    // The debt cut this bid, after its last unit or before any: a lower bid is not sold around it.
    if (direction === 'SELL' && byDebt <= room) {
      debtStopped = true;
      break;
    }
  }

  // Covered: paid in full, or the debt (not the lot or the providers) stopped the sale: one more unit would
  // collect more than debt, at the bid it cut or, with none cut, at the lowest price this step pays (the auction's).
  // A lot sold out just short of the debt is not covered: that shortfall is real.
  const debtCovered =
    direction === 'SELL' &&
    (collected === debt ||
      (remaining > 0n && (debtStopped || sizeAt(debt - collected, price) < leastFill(remaining, lot))));
  if (!debtCovered && remaining > 0n && remaining < dust)
    trimForDust(taken, ceilToLot(dust - remaining, lot), dust);

  const fills: ProviderFill[] = [];
  for (const { provider, price: at, size } of taken) {
    if (size > 0n)
      fills.push({ providerId: provider.id, size, price: at, cost: notionalQuote(size, at, rounding) });
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

interface Taken {
  readonly provider: ProviderBid;
  readonly price: PriceE8;
  size: BaseE8;
}

/**
 * The largest fill of at most `size` (<= `remaining`) that leaves whole lots of `remaining`: its part under a lot and
 * whole lots on top, or 0 when `size` is below that part. The size itself when the lot is one unit.
 */
export function fillLeavingWholeLots(size: BaseE8, remaining: BaseE8, lot: BaseE8): BaseE8 {
  const under = remaining % lot;
  return size < under ? 0n : under + floorToLot(size - under, lot);
}

/** The least fill of `remaining` that leaves whole lots: its part under a lot, or one lot when it has none. */
const leastFill = (remaining: BaseE8, lot: BaseE8): BaseE8 => {
  const under = remaining % lot;
  return under > 0n ? under : lot;
};

/**
 * The smallest fill clearAuctionStep makes of `remaining` (a provider without the room and capital for it fills
 * nothing): dust, or the whole rest when less, up to a fill that leaves whole lots; one base unit at least.
 */
export function smallestFill(remaining: BaseE8, dust: BaseE8, lot: BaseE8 = 1n): BaseE8 {
  const least = minBig(dust, remaining);
  const under = remaining % lot;
  if (under > 0n && least <= under) return under;
  return under + ceilToLot(maxBig(1n, least - under), lot);
}

/** size <= floor(q * 1e10 / p) <=> ceil(size * p / 1e10) <= q: the largest size whose cost at p fits q. */
const sizeAt = (quote: QuoteE6, at: PriceE8): BaseE8 => div(quote * NOTIONAL_TO_QUOTE, at, 'floor');

/**
 * Gives back `excess` of the lot from the worst terms back, so at least dust remains; trimming only lowers costs,
 * so no cap can break. A fill the trim would leave below dust goes whole (more than dust then remains, allowed).
 * With a market lot `excess` is whole lots (the caller rounds it up): a fill keeps the lots it leaves whole.
 */
function trimForDust(taken: Taken[], excess: BaseE8, dust: BaseE8): void {
  for (let i = taken.length - 1; i >= 0 && excess > 0n; i--) {
    const fill = taken[i]!;
    const kept = fill.size - minBig(fill.size, excess);
    const left = kept < dust ? 0n : kept;
    excess -= minBig(excess, fill.size - left);
    fill.size = left;
  }
}

/**
 * A provider's bid at `mark`, rounded to a whole tick in the fund's favour (SELL up: the provider may pay less than
 * 1e-8 quote per base unit above its exact bid; BUY down): what it fills at, a resting order's price, once the
 * auction's price reaches it (`accepts`). Never beyond the auction's price: reached, the exact bid is at or above it
 * (SELL), at or below it (BUY), so the rounding cannot cross it either.
 */
export function bidPrice(
  provider: Pick<ProviderBid, 'maxDiscountPpm'>,
  direction: AuctionDirection,
  mark: PriceE8,
): PriceE8 {
  return direction === 'SELL'
    ? div(mark * (PPM_SCALE - provider.maxDiscountPpm), PPM_SCALE, 'ceil')
    : div(mark * (PPM_SCALE + provider.maxDiscountPpm), PPM_SCALE, 'floor');
}

/**
 * A provider's standing bid sits at mark * (1 - d) for a SELL lot (mark * (1 + d) for a BUY lot): as the Dutch
 * auction's price falls (rises) it takes the lot once the price reaches its bid, at its bid (bidPrice).
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
  if (input.lot !== undefined && input.lot <= 0n)
    throw new ClearingError('clearing/invalid-amount', `lot ${input.lot} must be > 0`);
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
