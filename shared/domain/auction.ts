import type { AuctionConfig } from './config.ts';
import {
  type BaseE8,
  div,
  maxBig,
  minBig,
  notionalQuote,
  PPM_SCALE,
  type Ppm,
  type PriceE8,
  type QuoteE6,
} from './units.ts';

/**
 * Dutch auction price curves and status, after MakerDAO dss (src/abaci.sol, src/clip.sol).
 *
 * Rounding favours the insurance fund:
 * - SELL lot (closing a long: providers buy base from the backstop): prices round UP, providers pay more.
 * - BUY lot (closing a short: the backstop buys base from providers): prices round DOWN, the backstop pays less.
 */

export type AuctionDirection = 'BUY' | 'SELL';

export type AuctionReason =
  | 'auction/needs-reset'
  | 'auction/max-resets'
  | 'auction/invalid-top'
  | 'auction/invalid-mark'
  | 'auction/invalid-elapsed'
  | 'auction/invalid-time'
  | 'auction/invalid-buf'
  | 'auction/invalid-curve';

export class AuctionError extends Error {
  override readonly name = 'AuctionError';
  constructor(
    readonly reason: AuctionReason,
    detail?: string,
  ) {
    super(detail ? `${reason}: ${detail}` : reason);
  }
}

/** Largest top or mark accepted (1e22 quote per base): keeps the stairstep error bound below one unit. */
export const MAX_AUCTION_PRICE: PriceE8 = 10n ** 30n;

/** Price of a lot `elapsedSeconds` after the auction started at `top` (Maker's Abacus). */
export interface PriceCurve {
  price(top: PriceE8, elapsedSeconds: number): PriceE8;
}

function checkTop(top: PriceE8): void {
  if (top <= 0n || top > MAX_AUCTION_PRICE) throw new AuctionError('auction/invalid-top', `top ${top}`);
}

function checkElapsed(elapsedSeconds: number): void {
  if (!Number.isSafeInteger(elapsedSeconds) || elapsedSeconds < 0) {
    throw new AuctionError('auction/invalid-elapsed', `elapsed ${elapsedSeconds} s`);
  }
}

function checkSeconds(what: string, value: number): void {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new AuctionError('auction/invalid-curve', `${what} must be a positive integer, got ${value}`);
  }
}

/**
 * price(t) = ceil(top * (tau - t) / tau) for t < tau, 0 from tau on (sell side, rounded up).
 */
export class LinearDecrease implements PriceCurve {
  constructor(readonly tauSeconds: number) {
    checkSeconds('tauSeconds', tauSeconds);
  }

  price(top: PriceE8, elapsedSeconds: number): PriceE8 {
    checkTop(top);
    checkElapsed(elapsedSeconds);
    if (elapsedSeconds >= this.tauSeconds) return 0n;
    const tau = BigInt(this.tauSeconds);
    return div(top * (tau - BigInt(elapsedSeconds)), tau, 'ceil');
  }
}

/** Fixed-point scale of the stairstep decay factor: 60 digits, far finer than any price unit. */
const FACTOR_SCALE = 10n ** 60n;
const mulUp = (a: bigint, b: bigint): bigint => div(a * b, FACTOR_SCALE, 'ceil');

/**
 * price(t) = ceil(top * cut^floor(t / step)) (sell side, rounded up).
 *
 * cut^k is computed by squaring in 60-digit fixed point with every product rounded up, so it is an upper
 * bound of the exact power: O(log k) for any t. Its error stays below 2^55 units of 1e-60, so for
 * top <= MAX_AUCTION_PRICE the price lies within [exact, exact + 1] (never below the exact price) and is
 * monotone non-increasing in t: while top * cut^k * (1 - cut) exceeds the error the step dominates it,
 * and once it does not, the price is already 1.
 */
export class StairstepExponentialDecrease implements PriceCurve {
  private readonly cutFixed: bigint;

  constructor(
    readonly cut: Ppm,
    readonly stepSeconds: number,
  ) {
    if (cut < 0n || cut > PPM_SCALE) throw new AuctionError('auction/invalid-curve', `cut ${cut} ppm`);
    checkSeconds('stepSeconds', stepSeconds);
    this.cutFixed = cut * (FACTOR_SCALE / PPM_SCALE);
  }

  price(top: PriceE8, elapsedSeconds: number): PriceE8 {
    checkTop(top);
    checkElapsed(elapsedSeconds);
    const steps = BigInt(Math.floor(elapsedSeconds / this.stepSeconds));
    return div(top * powUp(this.cutFixed, steps), FACTOR_SCALE, 'ceil');
  }
}

/** Memo of powUp by base, then k: a curve asks for the same few (base, step) pairs at every step of every auction. */
const POW_MEMO = new Map<bigint, Map<bigint, bigint>>();
const POW_MEMO_MAX = 4_096;

/** base^k in FACTOR_SCALE fixed point, every product rounded up (exponentiation by squaring). */
function powUp(baseFixed: bigint, k: bigint): bigint {
  let powers = POW_MEMO.get(baseFixed);
  if (!powers) {
    if (POW_MEMO.size >= POW_MEMO_MAX) POW_MEMO.clear();
    powers = new Map();
    POW_MEMO.set(baseFixed, powers);
  }
  const known = powers.get(k);
  if (known !== undefined) return known;
  const result = powUpUncached(baseFixed, k);
  if (powers.size >= POW_MEMO_MAX) powers.clear();
  powers.set(k, result);
  return result;
}

function powUpUncached(baseFixed: bigint, k: bigint): bigint {
  let result = FACTOR_SCALE;
  let square = baseFixed;
  let e = k;
  while (e > 0n) {
    if (e & 1n) result = mulUp(result, square);
    e >>= 1n;
    if (e > 0n) square = mulUp(square, square);
  }
  return result;
}

/**
 * Buy-side mirror of a sell-side curve: price(t) = floor(top^2 / max(1, sell(top, t))), i.e. top divided by
 * the sell curve's decay factor. Monotone non-decreasing because the sell curve is non-increasing; equal to
 * top at t = 0. Rounded down (the backstop pays less), and the rounded-up sell price only lowers it further.
 * A sell price of 0 (linear past tau) gives the finite top^2; auctionStatus caps it at mark / floor (the risk
 * config refuses a floor of 0).
 */
export class MirroredIncrease implements PriceCurve {
  constructor(readonly decrease: PriceCurve) {}

  price(top: PriceE8, elapsedSeconds: number): PriceE8 {
    return div(top * top, maxBig(1n, this.decrease.price(top, elapsedSeconds)), 'floor');
  }
}

/** The configured sell-side curve, or its buy-side mirror. */
export function curveFromConfig(config: AuctionConfig, direction: AuctionDirection = 'SELL'): PriceCurve {
  const curve =
    config.curve.kind === 'linear'
      ? new LinearDecrease(config.curve.tauSeconds)
      : new StairstepExponentialDecrease(config.curve.cut, config.curve.stepSeconds);
  return direction === 'SELL' ? curve : new MirroredIncrease(curve);
}

function checkMark(mark: PriceE8): void {
  if (mark <= 0n || mark > MAX_AUCTION_PRICE) throw new AuctionError('auction/invalid-mark', `mark ${mark}`);
}

/**
 * top = ceil(mark * buf) for SELL, floor(mark / buf) for BUY (at least 1): the auction opens above (SELL)
 * or below (BUY) the mark, the side that favours the fund. buf < 1 is refused: it would open on the wrong side.
 */
export function startPrice(mark: PriceE8, direction: AuctionDirection, buf: Ppm): PriceE8 {
  checkMark(mark);
  if (buf < PPM_SCALE) throw new AuctionError('auction/invalid-buf', `buf ${buf} ppm is below 1`);
  const top =
    direction === 'SELL'
      ? div(mark * buf, PPM_SCALE, 'ceil')
      : maxBig(1n, div(mark * PPM_SCALE, buf, 'floor'));
  if (top > MAX_AUCTION_PRICE)
    throw new AuctionError('auction/invalid-mark', `mark * buf ${top} is too large`);
  return top;
}

/**
 * The most a SELL step may collect (Maker's tab): `lot` at the top plus the penalty, rounded up (the fund's way). The
 * top is the curve's or, if higher, the one a restart at `mark` opens at: each bid fills at its own price, never above
 * the mark, so the tab cuts no bid. On the start's top alone it cut every bid a mark risen since by more than the
 * penalty put above it, and the rest of the lot went to ADL (review44c-tab-follows-mark).
 */
export function sellTab(
  top: PriceE8,
  lot: BaseE8,
  mark: PriceE8,
  config: Pick<AuctionConfig, 'buf' | 'penalty'>,
): QuoteE6 {
  const followed = maxBig(top, startPrice(mark, 'SELL', config.buf));
  return notionalQuote(lot, div(followed * (PPM_SCALE + config.penalty), PPM_SCALE, 'ceil'), 'ceil');
}

export interface AuctionState {
  readonly direction: AuctionDirection;
  readonly top: PriceE8;
  readonly startedAtMs: number;
}

export interface AuctionStatus {
  /** Price to fill at now: the curve held at the floor, never <= 0. */
  readonly price: PriceE8;
  /** The curve's own price (before the floor); the cusp test uses it, as Maker's status() does. */
  readonly curvePrice: PriceE8;
  /** SELL: lowest allowed price, max(1, ceil(mark * floor)). BUY: highest, floor(mark / floor); none if floor is 0. */
  readonly floorPrice: PriceE8 | undefined;
  /** The curve has reached or passed the floor. */
  readonly atFloor: boolean;
  /** Whole seconds since the start (a start in the future, from clock skew, counts as 0). */
  readonly elapsedSeconds: number;
  readonly needsReset: boolean;
  readonly reason: 'auction/needs-reset' | undefined;
  readonly resetCause: 'tail' | 'cusp' | undefined;
}

function elapsedMs(startedAtMs: number, nowMs: number): number {
  if (!Number.isSafeInteger(startedAtMs) || !Number.isSafeInteger(nowMs)) {
    throw new AuctionError('auction/invalid-time', `startedAtMs ${startedAtMs}, nowMs ${nowMs}`);
  }
  // A small skew between the clocks of two functions must not make the auction unreadable; price(0) = top.
  return Math.max(0, nowMs - startedAtMs);
}

/**
 * Current price and reset check (Maker's Clipper.status):
 *   needsReset = elapsed > tail || (SELL: curvePrice / top < cusp; BUY: top / curvePrice < cusp)
 *   price = SELL: max(curvePrice, ceil(mark * floor), 1); BUY: min(curvePrice, floor(mark / floor))
 * `mark` is the current mark: the floor follows the market, the curve follows the start.
 */
export function auctionStatus(
  auction: AuctionState,
  mark: PriceE8,
  nowMs: number,
  config: AuctionConfig,
): AuctionStatus {
  return auctionStatusOn(curveFromConfig(config, auction.direction), auction, mark, nowMs, config);
}

/** auctionStatus on a curve built once from `config` (a planner reads many instants of one auction). */
export function auctionStatusOn(
  curve: PriceCurve,
  auction: AuctionState,
  mark: PriceE8,
  nowMs: number,
  config: AuctionConfig,
): AuctionStatus {
  checkMark(mark);
  const elapsedSeconds = Math.floor(elapsedMs(auction.startedAtMs, nowMs) / 1000);
  const curvePrice = curve.price(auction.top, elapsedSeconds);
  // Exact cross-multiplied comparisons: no rounding in the reset test.
  const pastCusp =
    auction.direction === 'SELL'
      ? curvePrice * PPM_SCALE < config.cusp * auction.top
      : auction.top * PPM_SCALE < config.cusp * curvePrice;
  const resetCause = elapsedSeconds > config.tailSeconds ? 'tail' : pastCusp ? 'cusp' : undefined;

  let price: PriceE8;
  let floorPrice: PriceE8 | undefined;
  let atFloor: boolean;
  if (auction.direction === 'SELL') {
    floorPrice = maxBig(1n, div(mark * config.floor, PPM_SCALE, 'ceil'));
    atFloor = curvePrice <= floorPrice;
    price = maxBig(curvePrice, floorPrice);
  } else {
    floorPrice = config.floor === 0n ? undefined : div(mark * PPM_SCALE, config.floor, 'floor');
    atFloor = floorPrice !== undefined && curvePrice >= floorPrice;
    price = floorPrice === undefined ? curvePrice : minBig(curvePrice, floorPrice);
  }
  return {
    price,
    curvePrice,
    floorPrice,
    atFloor,
    elapsedSeconds,
    needsReset: resetCause !== undefined,
    reason: resetCause ? 'auction/needs-reset' : undefined,
    resetCause,
  };
}

/**
 * The price the auction offers last before it must reset, at `mark` (SELL: its lowest; BUY: its highest): its
 * price, floor included, at the last step boundary (the instants its steps run at, sleep.ts) before tail or the
 * cusp. Exact, as a bid is judged reachable on it: the cusp's threshold or the curve at tail, which no step may
 * price at, counted bids the auction never reaches (review, session 36: a lot held 230 minutes).
 */
export function lastPriceBeforeReset(auction: AuctionState, mark: PriceE8, config: AuctionConfig): PriceE8 {
  checkMark(mark);
  // A function of the side, top and mark alone (the boundaries count from the start): a step asks it several
  // times for one auction at one mark.
  let memo = lastPrices.get(config);
  if (!memo || memo.size >= LAST_PRICES_MAX) {
    memo = new Map();
    lastPrices.set(config, memo);
  }
  const key = `${auction.direction}:${auction.top}:${mark}`;
  let last = memo.get(key);
  if (last === undefined) {
    last = searchLastPrice(auction, mark, config);
    memo.set(key, last);
  }
  return last;
}

/** lastPriceBeforeReset's answers per config, by side, top and mark (bounded: cleared when full). */
const lastPrices = new WeakMap<AuctionConfig, Map<string, PriceE8>>();
const LAST_PRICES_MAX = 4_096;

function searchLastPrice(auction: AuctionState, mark: PriceE8, config: AuctionConfig): PriceE8 {
  const curve = curveFromConfig(config, auction.direction);
  const stepMs = stepSeconds(config) * 1000;
  const statusAt = (k: number) =>
    auctionStatusOn(curve, auction, mark, auction.startedAtMs + k * stepMs, config);
  // The boundary is nearly always the one found last for this config and side (the tail's, or the cusp's, which
  // depends on the top only through rounding): checked exactly, it saves the search.
  const found = lastBoundaries.get(config)?.[auction.direction];
  if (found !== undefined) {
    const atFound = statusAt(found);
    if (!atFound.needsReset && statusAt(found + 1).needsReset) return atFound.price;
  }
  // The first boundary that needs a reset, by bisection (monotone: tail only comes closer, the curve never turns
  // back); the one past tail always does.
  let lo = 1;
  let hi = Math.floor((config.tailSeconds * 1000) / stepMs) + 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (statusAt(mid).needsReset) hi = mid;
    else lo = mid + 1;
  }
  lastBoundaries.set(config, { ...lastBoundaries.get(config), [auction.direction]: lo - 1 });
  return statusAt(lo - 1).price;
}

/** The last boundary before the reset lastPriceBeforeReset found per config and side: its next search's guess. */
const lastBoundaries = new WeakMap<AuctionConfig, Partial<Record<AuctionDirection, number>>>();

/** Throws 'auction/needs-reset' unless the auction can be taken at its current price (Maker's take guard). */
export function assertTakeable(status: AuctionStatus): void {
  if (status.needsReset) throw new AuctionError('auction/needs-reset', `cause: ${status.resetCause}`);
}

/** A reset (Maker's redo) restarts the curve from the current mark; at most config.maxResets times. */
export function resetAuction(
  auction: { readonly direction: AuctionDirection; readonly resets: number },
  mark: PriceE8,
  nowMs: number,
  config: AuctionConfig,
): { top: PriceE8; startedAtMs: number; resets: number } {
  if (auction.resets >= config.maxResets) {
    throw new AuctionError('auction/max-resets', `${auction.resets} of ${config.maxResets} used`);
  }
  if (!Number.isSafeInteger(nowMs)) throw new AuctionError('auction/invalid-time', `nowMs ${nowMs}`);
  return {
    top: startPrice(mark, auction.direction, config.buf),
    startedAtMs: nowMs,
    resets: auction.resets + 1,
  };
}

/** SQS caps DelaySeconds at 15 minutes. */
export const MAX_STEP_DELAY_SECONDS = 900;
/** A linear curve is re-read every tau / 100 (1 % of top per step, like a 0.99 stairstep cut). */
export const LINEAR_STEPS_PER_TAU = 100;

/** Seconds between price changes worth a new step: the stairstep, or tau / 100 (at least 1) for linear. */
export function stepSeconds(config: AuctionConfig): number {
  return config.curve.kind === 'stairstep'
    ? config.curve.stepSeconds
    : Math.max(1, Math.ceil(config.curve.tauSeconds / LINEAR_STEPS_PER_TAU));
}

/**
 * delay = ceil((min(next step boundary, first instant past tail) - elapsed) / 1 s), clamped to [1, 900].
 * Rounded up so the step message arrives after the price has changed, not just before.
 */
export function nextStepDelaySeconds(
  auction: { readonly startedAtMs: number },
  nowMs: number,
  config: AuctionConfig,
): number {
  const elapsed = elapsedMs(auction.startedAtMs, nowMs);
  const stepMs = stepSeconds(config) * 1000;
  let nextMs = (Math.floor(elapsed / stepMs) + 1) * stepMs;
  // elapsed (whole seconds) > tail first holds at (tail + 1) s: wake then to reset.
  const pastTailMs = (config.tailSeconds + 1) * 1000;
  if (elapsed < pastTailMs) nextMs = Math.min(nextMs, pastTailMs);
  const delay = Math.ceil((nextMs - elapsed) / 1000);
  return Math.min(MAX_STEP_DELAY_SECONDS, Math.max(1, delay));
}
