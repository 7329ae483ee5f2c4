import {
  type AdlCandidate,
  compareScoresDesc,
  estimateScore,
  givesWithoutClosing,
  type RankedCandidate,
  type Ratio,
  topEntriesForAdl,
} from './adl.ts';
import type { Side } from './model.ts';
import { NOTIONAL_TO_QUOTE, type PriceE8 } from './units.ts';

/**
 * The exact top of the ADL ranking without reading a whole side of the book (Fagin's threshold algorithm).
 *
 * With x = size / collateral (in E16 quote) and d the profit per unit at the mark (P - entry for a long,
 * entry - P for a short), rankForAdl's score is x^2 d P / (1 + x d): increasing in x and in d. Neither order
 * moves with the mark: the side read by entry price (the most profitable first) and by x (the most leveraged
 * first), in turn, bounds every position not yet seen by the score of (the x at the leverage order's frontier,
 * the d at the entry order's). Once `count` positions seen score above that bound, no unseen one can enter
 * their top, which is then rankForAdl's own top (topEntriesForAdl over the seen ones: same scores, same ties).
 */

/** Fixed point of the leverage key: ceil(size * LEVERAGE_KEY_SCALE / collateral), an upper bound of x. */
export const LEVERAGE_KEY_SCALE = 10n ** 12n;
/** The key of a position with no collateral (x infinite): above any finite key, within DynamoDB's 38 digits. */
export const UNBOUNDED_LEVERAGE_KEY = 10n ** 37n;

/** The leverage order's key: the larger, the earlier (an index reads it descending). */
export function adlLeverageKey(size: bigint, collateral: bigint): bigint {
  if (collateral <= 0n) return UNBOUNDED_LEVERAGE_KEY;
  const key = (size * LEVERAGE_KEY_SCALE + collateral - 1n) / collateral;
  return key < UNBOUNDED_LEVERAGE_KEY ? key : UNBOUNDED_LEVERAGE_KEY;
}

/** Relative gap between two estimates beyond which their order is the exact one (their error is below 1e-14). */
const ESTIMATE_MARGIN = 1e-9;

/** Which side's positions the two orders read, and how: the side ADL takes from (opposite of the deleveraged). */
export type AdlOrder = 'entry' | 'leverage';

/** The score no position beyond both frontiers can reach; undefined: unbounded (no finite frontier yet). */
function scoreBound(leverageKey: bigint, profitPerUnit: bigint, mark: PriceE8): Ratio | undefined {
  if (leverageKey >= UNBOUNDED_LEVERAGE_KEY) return undefined;
  const scale = LEVERAGE_KEY_SCALE * NOTIONAL_TO_QUOTE;
  const num = leverageKey * leverageKey * profitPerUnit * mark;
  const den = scale * (scale + leverageKey * profitPerUnit);
  return { num, den };
}

export interface AdlThresholdResult<T extends AdlCandidate> {
  readonly entries: readonly { readonly ranked: RankedCandidate; readonly candidate: T }[];
  /** Every position of the side that can be deleveraged at the mark is among `entries`. */
  readonly complete: boolean;
}

/**
 * One threshold search: feed it pages of the two orders (the caller reads them) until `done`. Pure: it holds
 * what was seen and the two frontiers.
 */
export class AdlThreshold<T extends AdlCandidate> {
  /** Each position seen, with its score in doubles (0: not in profit; NaN: beyond doubles' exact range). */
  readonly #seen = new Map<string, { readonly candidate: T; readonly estimate: number }>();
  readonly #side: Side;
  #entryFrontier: bigint | undefined;
  #leverageFrontier: bigint | undefined;
  #entryExhausted = false;
  #leverageExhausted = false;
  /** The best count + 1 of what was seen, until the next offer (done and result share it). */
  #best: ReturnType<typeof topEntriesForAdl<T>> | undefined;

  /**
   * @param withoutClosing rank only the positions that give when ADL closes no size (givesWithoutClosing): the
   *   others are passed over, so they cannot fill the top (the bounds, made over every position, still hold)
   */
  constructor(
    readonly mark: PriceE8,
    readonly deleveragedSide: Side,
    readonly count: number,
    readonly withoutClosing = false,
  ) {
    this.#side = deleveragedSide === 'LONG' ? 'SHORT' : 'LONG';
  }

  /** A page of `order`, in that order, continuing the previous one; `last`: the order has nothing after it. */
  offer(order: AdlOrder, page: readonly T[], last: boolean): void {
    this.#best = undefined;
    for (const c of page) {
      if (c.side !== this.#side) continue;
      if (this.withoutClosing && !givesWithoutClosing(c, this.mark)) {
        // Passed over, but its place in the order still moves the frontier.
        if (order === 'entry') this.#entryFrontier = c.entryPrice;
        else this.#leverageFrontier = adlLeverageKey(c.size, c.collateral);
        continue;
      }
      this.#seen.set(c.id, { candidate: c, estimate: estimateScore(c, this.mark) ?? Number.NaN });
      if (order === 'entry') this.#entryFrontier = c.entryPrice;
      else this.#leverageFrontier = adlLeverageKey(c.size, c.collateral);
    }
    if (last) {
      if (order === 'entry') this.#entryExhausted = true;
      else this.#leverageExhausted = true;
    }
  }

  /** Profit per unit at the entry order's frontier: no unseen position makes more. */
  #frontierProfit(): bigint | undefined {
    if (this.#entryFrontier === undefined) return undefined;
    return this.#side === 'LONG' ? this.mark - this.#entryFrontier : this.#entryFrontier - this.mark;
  }

  /** Every position not seen yet is out of profit at the mark, or none is left. */
  #allRankableSeen(): boolean {
    if (this.#entryExhausted || this.#leverageExhausted) return true;
    const profit = this.#frontierProfit();
    return profit !== undefined && profit <= 0n;
  }

  /** The top `count` is known, and whether the side holds more than `count` that ADL can take. */
  done(): boolean {
    if (this.#allRankableSeen()) return true;
    const profit = this.#frontierProfit();
    if (profit === undefined || this.#leverageFrontier === undefined) return false;
    const bound = scoreBound(this.#leverageFrontier, profit, this.mark);
    if (!bound) return false;
    // In doubles first (every estimate is within 1e-14 of its score): exact only when the two come close.
    const estimate = this.#estimatedBeyond();
    if (estimate !== undefined) {
      const boundEstimate = Number(bound.num) / Number(bound.den);
      if (estimate > boundEstimate * (1 + ESTIMATE_MARGIN)) return true;
      if (estimate < boundEstimate * (1 - ESTIMATE_MARGIN)) return false;
    }
    // One more than the top: once it is known too, a side holding no more than `count` is known to (complete).
    const beyond = this.#ranked()[this.count];
    // Strictly above: an unseen position scoring the same could still come first by its id.
    return beyond !== undefined && compareScoresDesc(beyond.ranked.score, bound) < 0;
  }

  /** The (count + 1)-th best estimate seen (0 when fewer are in profit); undefined when one has none. */
  #estimatedBeyond(): number | undefined {
    const inProfit = new Float64Array(this.#seen.size);
    let n = 0;
    for (const { estimate } of this.#seen.values()) {
      if (Number.isNaN(estimate)) return undefined;
      if (estimate > 0) inProfit[n++] = estimate;
    }
    if (n <= this.count) return 0;
    return inProfit.subarray(0, n).sort()[n - this.count - 1];
  }

  result(): AdlThresholdResult<T> {
    const ranked = this.#ranked();
    const complete = this.#allRankableSeen() && ranked.length <= this.count;
    return { entries: ranked.slice(0, this.count), complete };
  }

  #ranked() {
    this.#best ??= topEntriesForAdl(
      [...this.#seen.values()].map((s) => s.candidate),
      this.mark,
      this.deleveragedSide,
      this.count + 1,
    );
    return this.#best;
  }
}
