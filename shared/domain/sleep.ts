import {
  type AuctionState,
  type AuctionStatus,
  auctionStatusOn,
  curveFromConfig,
  MAX_STEP_DELAY_SECONDS,
  nextStepDelaySeconds,
  stepSeconds,
} from './auction.ts';
import { accepts } from './clearing.ts';
import type { AuctionConfig } from './config.ts';
import { div, PPM_SCALE, type Ppm, type PriceE8 } from './units.ts';

/**
 * Sleeping auctions. Most steps of an auction in a falling market fill nothing: the price has not reached the
 * best standing bid yet (93 % of the steps of the 2020 replay). An auction therefore sleeps until the step at
 * which, at the current mark, the best bid takes it or it must reset, and records the mark at which that
 * would happen sooner; a tick whose mark gets there wakes it (margin-check), so a rising (SELL) or falling
 * (BUY) mark is never answered later than by stepping every boundary.
 */
export interface AuctionSleep {
  /** Delay of the next step message: the wake step (or the first second past tail), clamped to [1, 900]. */
  readonly delaySeconds: number;
  /**
   * SELL: a mark at or above it, BUY: at or below it, lets the best bid take the auction at a step it sleeps
   * through: a tick with such a mark wakes it. Undefined when it sleeps through no step boundary.
   */
  readonly wakeMark: PriceE8 | undefined;
}

/**
 * Plans the next step after `nowMs`. Boundary k (k steps after the start) is due when the auction needs a reset
 * there or, at `mark`, its price reaches the best bid (`bestDiscountPpm`); with no provider left to bid
 * (undefined) the next step is: it resets the auction (a bid only a reset's curve reaches) or ends it.
 * Both are monotone in k (the curve never turns back and tail only comes closer), so the first due boundary is
 * found by bisection over the boundaries within the 900 s a delayed message can wait.
 *
 * The wake mark is the mark at which the last boundary slept through would be taken by the best bid: the
 * bid's threshold moves towards the mark as the curve moves, so that boundary has the loosest threshold of all
 * the skipped ones. It leaves the floor out, which can only make a wake spurious (the step fills nothing and
 * sleeps again), never late.
 */
export function planSleep(
  auction: AuctionState,
  mark: PriceE8,
  nowMs: number,
  config: AuctionConfig,
  bestDiscountPpm: Ppm | undefined,
): AuctionSleep {
  const everyStep = nextStepDelaySeconds(auction, nowMs, config);
  // No bid on this curve: the next step resets the auction, or ends it (its lot to the fund and ADL then).
  if (bestDiscountPpm === undefined) return { delaySeconds: everyStep, wakeMark: undefined };
  const elapsed = Math.max(0, nowMs - auction.startedAtMs);
  const stepMs = stepSeconds(config) * 1000;
  const pastTailMs = (config.tailSeconds + 1) * 1000;
  let limitMs = elapsed + MAX_STEP_DELAY_SECONDS * 1000;
  if (elapsed < pastTailMs) limitMs = Math.min(limitMs, pastTailMs);

  const bid = { maxDiscountPpm: bestDiscountPpm };
  const curve = curveFromConfig(config, auction.direction);
  const statuses = new Map<number, AuctionStatus>();
  const statusAt = (k: number): AuctionStatus => {
    let status = statuses.get(k);
    if (!status) {
      status = auctionStatusOn(curve, auction, mark, auction.startedAtMs + k * stepMs, config);
      statuses.set(k, status);
    }
    return status;
  };
  const due = (k: number): boolean => {
    const status = statusAt(k);
    return status.needsReset || accepts(bid, auction.direction, status.price, mark);
  };
  const first = Math.floor(elapsed / stepMs) + 1;
  const none = Math.floor(limitMs / stepMs) + 1;
  // A guess from the curve in doubles narrows the search (due is checked, never assumed); without one, the
  // next step (due as often as not: a bid near, a reset).
  const guess = firstDueGuess(config, auction, mark, bestDiscountPpm, stepMs) ?? first;
  const wake = firstTrue(first, none, due, guess);
  const wakeMs = wake < none ? wake * stepMs : limitMs;
  const delaySeconds = Math.min(
    MAX_STEP_DELAY_SECONDS,
    Math.max(everyStep, Math.ceil((wakeMs - elapsed) / 1000)),
  );
  // The message lands in step floor(arrival / step): every boundary before that one is slept through.
  const lastSkipped = Math.floor((elapsed + delaySeconds * 1000) / stepMs) - 1;
  if (lastSkipped < first) return { delaySeconds, wakeMark: undefined };
  const { curvePrice } = statusAt(lastSkipped);
  return { delaySeconds, wakeMark: wakeMarkFor(auction.direction, curvePrice, bestDiscountPpm) };
}

/**
 * The first k in [lo, hi) at which the monotone `pred` holds (hi if none), by bisection. A guess narrows it
 * exactly, right or wrong: a right one and the k before it settle it in two looks.
 */
export function firstTrue(lo: number, hi: number, pred: (k: number) => boolean, guess?: number): number {
  if (guess !== undefined && lo < hi) {
    const g = Math.min(Math.max(guess, lo), hi - 1);
    if (pred(g)) {
      hi = g;
      if (g > lo && !pred(g - 1)) lo = g;
    } else {
      lo = g + 1;
      if (lo < hi && pred(lo)) hi = lo;
    }
  }
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (pred(mid)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * The stairstep curve's first due boundary, in doubles: the first k at which top * cut^k has fallen (SELL) or
 * top / cut^k risen (BUY) to the bid at `mark`, passed the cusp, or passed tail. Only a guess for planSleep's
 * search; undefined for other curves or inputs beyond doubles' reach.
 */
function firstDueGuess(
  config: AuctionConfig,
  auction: AuctionState,
  mark: PriceE8,
  discountPpm: Ppm,
  stepMs: number,
): number | undefined {
  if (config.curve.kind !== 'stairstep') return undefined;
  const logCut = Math.log(Number(config.curve.cut) / 1e6);
  if (!(logCut < 0)) return undefined;
  const top = Number(auction.top);
  const bid = auction.direction === 'SELL' ? 1 - Number(discountPpm) / 1e6 : 1 + Number(discountPpm) / 1e6;
  // cut^k <= bid * mark / top (SELL) or top / (bid * mark) (BUY).
  const ratio = auction.direction === 'SELL' ? (bid * Number(mark)) / top : top / (bid * Number(mark));
  const accept = ratio >= 1 ? 0 : ratio > 0 ? Math.ceil(Math.log(ratio) / logCut) : Number.POSITIVE_INFINITY;
  const cusp =
    Number(config.cusp) > 0
      ? Math.floor(Math.log(Number(config.cusp) / 1e6) / logCut) + 1
      : Number.POSITIVE_INFINITY;
  const tail = Math.floor((config.tailSeconds * 1000) / stepMs) + 1;
  const k = Math.min(accept, cusp, tail);
  return Number.isFinite(k) ? k : undefined;
}

/** SELL: the lowest mark whose bid (mark * (1 - d)) the price reaches; BUY: the highest (mark * (1 + d)). */
function wakeMarkFor(
  direction: AuctionState['direction'],
  price: PriceE8,
  discountPpm: Ppm,
): PriceE8 | undefined {
  if (direction === 'SELL') {
    const keep = PPM_SCALE - discountPpm;
    return keep > 0n ? div(price * PPM_SCALE, keep, 'ceil') : undefined;
  }
  const mark = div(price * PPM_SCALE, PPM_SCALE + discountPpm, 'floor');
  return mark > 0n ? mark : undefined;
}

/** The mark has reached an auction's (or a market side's) wake mark. */
export const wakes = (direction: AuctionState['direction'], wakeMark: PriceE8, mark: PriceE8): boolean =>
  direction === 'SELL' ? mark >= wakeMark : mark <= wakeMark;

/** The wake mark that covers both: the lower for SELL, the higher for BUY. */
export const earlierWake = (direction: AuctionState['direction'], a: PriceE8, b: PriceE8): PriceE8 =>
  direction === 'SELL' ? (a < b ? a : b) : a > b ? a : b;
