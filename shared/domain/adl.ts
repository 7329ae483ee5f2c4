import { pnlE16, settleClose } from './accounting.ts';
import { recordOrSetAside, withLatest } from './latest.ts';
import { marginE16, wholeMargin } from './margin.ts';
import type { AdlEvent, AdlEvents, Position, SetAside, Side } from './model.ts';
import {
  type BaseE8,
  div,
  floorToLot,
  maxBig,
  minBig,
  NOTIONAL_TO_QUOTE,
  type PriceE8,
  type QuoteE6,
} from './units.ts';

/**
 * Auto-deleveraging, CEX style: the profitable positions on the other side, ranked by PnL% x effective
 * leverage, take over the deleveraged position's remaining size, and the loss left after the fund is
 * socialized over them. All arithmetic is exact (E16 units, rationals compared by cross multiplication).
 */

export type AdlReason = 'adl/bad-candidate' | 'adl/duplicate-id' | 'adl/bad-input';

export class AdlError extends Error {
  override readonly name = 'AdlError';
  constructor(
    readonly reason: AdlReason,
    detail: string,
  ) {
    super(`${reason}: ${detail}`);
  }
}

export interface AdlCandidate {
  readonly id: string;
  readonly side: Side;
  readonly size: BaseE8;
  readonly entryPrice: PriceE8;
  readonly collateral: QuoteE6;
  /**
   * Profit ADL already took from this position while it stays open (a haircut comes out of collateral, the
   * profit stays unrealized): never taken twice, so a counterparty never gives more than its profit.
   */
  readonly adlProfitGiven?: QuoteE6;
  /**
   * The sub-unit of its exact margin above `collateral` (E16, 0 <= it < 1e10; absent: 0), what a slice's rounding
   * left on it: never given, but its close rounds it with its profit (closeRoundingE16).
   */
  readonly collateralUnderE16?: bigint;
}

/**
 * A position as ADL sees it: its collateral the exact margin floored, without the sub-unit a slice's rounding left
 * over on it (Position.collateralOverE16), so no ranking, haircut or room counts a sub-unit the position lacks; the
 * sub-unit of the exact margin above that is `collateralUnderE16`. The indexes' leverage key is taken on the same
 * collateral.
 */
export function asAdlCandidate<P extends Pick<Position, 'collateral' | 'collateralOverE16'>>(
  p: P,
): Omit<P, 'collateralOverE16'> & Pick<AdlCandidate, 'collateralUnderE16'> {
  if (!p.collateralOverE16) return p;
  const { collateralOverE16: _, ...rest } = p;
  const collateral = wholeMargin(p);
  const under = marginE16(p) - collateral * NOTIONAL_TO_QUOTE;
  return { ...rest, collateral, ...(under > 0n ? { collateralUnderE16: under } : {}) };
}

/** num / den with num > 0 and den >= 0; den = 0 is +infinity (a profitable position with no collateral). */
export interface Ratio {
  readonly num: bigint;
  readonly den: bigint;
  /**
   * num / den as a double (relative error below 1e-15): orders two scores without multiplying bigints unless
   * they are within APPROX_TIE of each other. The order is the exact one either way.
   */
  readonly approx?: number;
}

/** Scores closer than this (relative) are compared exactly; far above the doubles' error. */
const APPROX_TIE = 1e-9;

export interface RankedCandidate extends AdlCandidate {
  /** Unrealized profit at the mark less what ADL took before, floored: the most the candidate can give. */
  readonly unrealizedPnl: QuoteE6;
  readonly score: Ratio;
  /** Where this module ranked it (set only here): a later ranking at the same mark reuses the score. */
  readonly [RANKED_AT]?: RankMark;
}

/** Module-private key: a ranking cannot be forged from outside, and a copy (changed or not) is ranked again. */
const RANKED_AT: unique symbol = Symbol('adl.rankedAt');

interface RankMark {
  readonly mark: PriceE8;
  readonly deleveragedSide: Side;
  /** The ranked object itself: a spread copy carries the key but is not this object. */
  readonly ranked: RankedCandidate;
}

/** `c` is a ranking this module made at `mark` against `deleveragedSide` (the very object, not a copy). */
function rankedAt(c: AdlCandidate, mark: PriceE8, deleveragedSide: Side): c is RankedCandidate {
  const at = (c as RankedCandidate)[RANKED_AT];
  return at !== undefined && at.ranked === c && at.mark === mark && at.deleveragedSide === deleveragedSide;
}

const opposite = (side: Side): Side => (side === 'LONG' ? 'SHORT' : 'LONG');

/** a > b: negative, a < b: positive (descending sort); cross multiplication, exact. */
export const compareScoresDesc = (a: Ratio, b: Ratio): number => {
  if (a.approx !== undefined && b.approx !== undefined) {
    const gap = a.approx - b.approx;
    // Infinite or tied approximations fail this test (NaN, or too close) and fall through to the exact order.
    if (Math.abs(gap) > APPROX_TIE * Math.max(Math.abs(a.approx), Math.abs(b.approx)))
      return gap > 0 ? -1 : 1;
  }
  const left = a.num * b.den;
  const right = b.num * a.den;
  return left > right ? -1 : left < right ? 1 : 0;
};

const byRank = (a: RankedCandidate, b: RankedCandidate): number =>
  compareScoresDesc(a.score, b.score) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

function assertCandidate(c: AdlCandidate): void {
  if (typeof c.id !== 'string' || c.id === '') throw new AdlError('adl/bad-candidate', 'empty id');
  if (c.side !== 'LONG' && c.side !== 'SHORT')
    throw new AdlError('adl/bad-candidate', `${c.id}: side ${String(c.side)}`);
  // Collateral may be negative: a deficit a slice of it left (accounting.ts settleSlice); never a counterparty then.
  if (c.size < 0n || c.entryPrice <= 0n || profitGivenOf(c) < 0n)
    throw new AdlError('adl/bad-candidate', `${c.id}: size >= 0, entry > 0 and profit given >= 0 required`);
  const under = c.collateralUnderE16 ?? 0n;
  if (under < 0n || under >= NOTIONAL_TO_QUOTE)
    throw new AdlError('adl/bad-candidate', `${c.id}: collateralUnderE16 ${under} is outside [0, 1e10)`);
}

const profitGivenOf = (c: Pick<AdlCandidate, 'adlProfitGiven'>): QuoteE6 => c.adlProfitGiven ?? 0n;

/** The profit ADL can still take from `c` at `mark` (E16): its profit there less what ADL took before. */
function profitLeftE16(c: AdlCandidate, mark: PriceE8): bigint {
  return pnlE16(c.side, c.size, c.entryPrice, mark) - profitGivenOf(c) * NOTIONAL_TO_QUOTE;
}

/**
 * Ranks the positions that can be deleveraged against a `deleveragedSide` position at `mark`:
 * only the opposite side, size > 0 and strictly in profit at the mark beyond what ADL took before
 * (left16 = pnl16 - adlProfitGiven > 0).
 *
 *   pnlRatio  = left / M
 *   effLev    = P / |P - bankruptcy| = qP / equity        (|P - bankruptcy| = equity / q, equity = M + pnl)
 *   score     = pnlRatio * effLev = left16 * qP / (M16 * (M16 + pnl16))          all in E16, exact
 *
 * (With nothing taken before, left = pnl. adl-threshold bounds a score from the position's size, collateral and
 * entry: left <= pnl keeps those bounds above it.)
 *
 * Highest score first; equal scores by ascending id, so the order is deterministic.
 */
export function rankForAdl(
  candidates: readonly AdlCandidate[],
  mark: PriceE8,
  deleveragedSide: Side,
): RankedCandidate[] {
  const scored = candidates.every((c) => rankedAt(c, mark, deleveragedSide))
    ? rankedAgain(candidates, mark)
    : scoreForAdl(candidates, mark, deleveragedSide);
  // Callers usually pass a ranked list (the ADL queue's order): checking it costs n - 1 comparisons, not a sort.
  for (let i = 1; i < scored.length; i++) {
    if (byRank(scored[i - 1]!, scored[i]!) > 0) return scored.sort(byRank);
  }
  return scored;
}

/**
 * The first `count` of rankForAdl's order, without ranking everything exactly (ADL touches only as many
 * counterparties as one transaction holds, out of a whole side of the book).
 */
export function topForAdl(
  candidates: readonly AdlCandidate[],
  mark: PriceE8,
  deleveragedSide: Side,
  count: number,
): RankedCandidate[] {
  return topEntriesForAdl(candidates, mark, deleveragedSide, count).map((e) => e.ranked);
}

/**
 * topForAdl, each ranking with the candidate it was made from (a caller's record, with all its fields).
 * Two passes: every candidate is checked and its score estimated in doubles; then only those whose estimate
 * comes near the count-th best estimate get an exact score and a place in the exact order. The estimates are
 * within 1e-14 of the scores, far inside APPROX_TIE, so no candidate of the exact top `count` is left out.
 */
export function topEntriesForAdl<T extends AdlCandidate>(
  candidates: readonly T[],
  mark: PriceE8,
  deleveragedSide: Side,
  count: number,
): { readonly ranked: RankedCandidate; readonly candidate: T }[] {
  if (!Number.isSafeInteger(count) || count < 0) throw new AdlError('adl/bad-input', `count ${count}`);
  if (mark <= 0n) throw new AdlError('adl/bad-input', `mark ${mark} must be > 0`);
  const side = opposite(deleveragedSide);
  const ids = new Set<string>();
  const inProfit: T[] = [];
  // NaN: no estimate (a field beyond 2^53); such a candidate is always scored exactly.
  const estimates = new Float64Array(candidates.length);
  let known = 0;
  for (const c of candidates) {
    assertCandidate(c);
    if (ids.has(c.id)) throw new AdlError('adl/duplicate-id', c.id);
    ids.add(c.id);
    if (c.side !== side || c.size === 0n) continue;
    const estimate = estimateScore(c, mark);
    // The estimate's sign is exact: 0 is a candidate not in profit.
    if (estimate === 0) continue;
    estimates[inProfit.length] = estimate ?? Number.NaN;
    inProfit.push(c);
    if (estimate !== undefined) known++;
  }
  const cut =
    count === 0 ? Number.POSITIVE_INFINITY : kthLargestKnown(estimates, inProfit.length, known, count);
  const entries: { readonly ranked: RankedCandidate; readonly candidate: T }[] = [];
  for (let i = 0; i < inProfit.length; i++) {
    const estimate = estimates[i]!;
    // Below the cut, count candidates with a known estimate rank above it.
    if (estimate < cut * (1 - APPROX_TIE)) continue;
    const s = scoreOf(inProfit[i]!, mark);
    if (s) entries.push({ ranked: rankedOf(s, mark, deleveragedSide), candidate: s.candidate as T });
  }
  entries.sort((a, b) => byRank(a.ranked, b.ranked));
  if (entries.length > count) entries.length = count;
  return entries;
}

/** The `count`-th largest of the known (non-NaN) estimates among the first `length`; -Infinity if fewer. */
function kthLargestKnown(estimates: Float64Array, length: number, known: number, count: number): number {
  if (known < count) return Number.NEGATIVE_INFINITY;
  // A typed array sorts numerically, NaN last.
  const sorted = estimates.slice(0, length).sort();
  return sorted[known - count]!;
}

/**
 * One candidate as rankForAdl ranks it against a `deleveragedSide` position at `mark`, or undefined when it
 * cannot be deleveraged (canDeleverage). Validates it as rankForAdl does.
 */
export function rankCandidate(
  c: AdlCandidate,
  mark: PriceE8,
  deleveragedSide: Side,
): RankedCandidate | undefined {
  let ranked: RankedCandidate | undefined;
  scored([c], mark, deleveragedSide, (s) => {
    ranked = rankedOf(s, mark, deleveragedSide);
  });
  return ranked;
}

/** Candidates this module ranked at `mark`: their scores stand; only the checks of a ranking are repeated. */
function rankedAgain(candidates: readonly RankedCandidate[], mark: PriceE8): RankedCandidate[] {
  if (mark <= 0n) throw new AdlError('adl/bad-input', `mark ${mark} must be > 0`);
  const ids = new Set<string>();
  for (const c of candidates) {
    if (ids.has(c.id)) throw new AdlError('adl/duplicate-id', c.id);
    ids.add(c.id);
  }
  return [...candidates];
}

/** rankForAdl's order: highest score first, equal scores by ascending id. */
export const compareRanked: (a: RankedCandidate, b: RankedCandidate) => number = byRank;

const rankedOf = ({ candidate: c, left16, score }: Scored, mark: PriceE8, deleveragedSide: Side) => {
  const ranked: { -readonly [K in keyof RankedCandidate]: RankedCandidate[K] } = {
    id: c.id,
    side: c.side,
    size: c.size,
    entryPrice: c.entryPrice,
    collateral: c.collateral,
    ...(c.adlProfitGiven ? { adlProfitGiven: c.adlProfitGiven } : {}),
    ...(c.collateralUnderE16 ? { collateralUnderE16: c.collateralUnderE16 } : {}),
    unrealizedPnl: div(left16, NOTIONAL_TO_QUOTE, 'floor'),
    score,
  };
  ranked[RANKED_AT] = { mark, deleveragedSide, ranked };
  return ranked as RankedCandidate;
};

function scoreForAdl(candidates: readonly AdlCandidate[], mark: PriceE8, deleveragedSide: Side) {
  const ranked: RankedCandidate[] = [];
  scored(candidates, mark, deleveragedSide, (s) => ranked.push(rankedOf(s, mark, deleveragedSide)));
  return ranked;
}

interface Scored {
  readonly candidate: AdlCandidate;
  /** Profit ADL can take at the mark (E16). */
  readonly left16: bigint;
  readonly score: Ratio;
}

/**
 * Validates every candidate (shape, unique id) and passes the rankable ones to `take` with their profit and
 * score. A plain loop, not a generator: a whole side of the book can go through it.
 */
function scored(
  candidates: readonly AdlCandidate[],
  mark: PriceE8,
  deleveragedSide: Side,
  take: (s: Scored) => void,
): void {
  if (mark <= 0n) throw new AdlError('adl/bad-input', `mark ${mark} must be > 0`);
  const side = opposite(deleveragedSide);
  const ids = new Set<string>();
  for (const c of candidates) {
    assertCandidate(c);
    if (ids.has(c.id)) throw new AdlError('adl/duplicate-id', c.id);
    ids.add(c.id);
    if (c.side !== side || c.size === 0n) continue;
    const s = scoreOf(c, mark);
    if (s) take(s);
  }
}

/**
 * A checked candidate's profit and score at `mark`; undefined when it is not in profit there, or carries a deficit
 * (negative collateral: its profit owes that first, and closing it would realize less than its score promises).
 */
function scoreOf(c: AdlCandidate, mark: PriceE8): Scored | undefined {
  if (c.collateral < 0n) return undefined;
  const pnl16 = pnlE16(c.side, c.size, c.entryPrice, mark);
  const left16 = pnl16 - profitGivenOf(c) * NOTIONAL_TO_QUOTE;
  if (left16 <= 0n) return undefined;
  const m16 = c.collateral * NOTIONAL_TO_QUOTE;
  const num = left16 * c.size * mark;
  const den = m16 * (m16 + pnl16);
  return { candidate: c, left16, score: { num, den, approx: Number(num) / Number(den) } };
}

/**
 * The score in doubles from the candidate's fields, within a relative 1e-14 of the exact one, or undefined when
 * an input is beyond 2^53 (its conversion would not be exact). Profit's sign is exact: mark - entry is.
 */
export function estimateScore(c: AdlCandidate, mark: PriceE8): number | undefined {
  if (c.size > MAX_EXACT || c.entryPrice > MAX_EXACT || mark > MAX_EXACT || c.collateral > MAX_EXACT)
    return undefined;
  // Carrying a deficit: no candidate (scoreOf).
  if (c.collateral < 0n) return 0;
  const size = Number(c.size);
  const move = c.side === 'LONG' ? Number(mark) - Number(c.entryPrice) : Number(c.entryPrice) - Number(mark);
  const pnl16 = size * move;
  if (pnl16 <= 0) return 0;
  // Profit left after what ADL took: a difference, computed exactly (in doubles it could cancel to noise).
  const left16 = c.adlProfitGiven ? Number(profitLeftE16(c, mark)) : pnl16;
  if (left16 <= 0) return 0;
  const m16 = Number(c.collateral) * 1e10;
  return (left16 * size * Number(mark)) / (m16 * (m16 + pnl16));
}

const MAX_EXACT = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Whether `c` can give anything when ADL has no size to close (a haircut only): a haircut takes profit it still
 * holds, at least a unit of it, and out of collateral, never below 0 (allocateAdl). A position without collateral
 * ranks first (infinite leverage) yet gives nothing then.
 */
export function givesWithoutClosing(c: AdlCandidate, mark: PriceE8): boolean {
  return c.collateral > 0n && profitLeftE16(c, mark) >= NOTIONAL_TO_QUOTE;
}

/** Whether ADL may take size from `c` against a `deleveragedSide` position at `mark` (rankForAdl's filter). */
export function canDeleverage(c: AdlCandidate, mark: PriceE8, deleveragedSide: Side): boolean {
  return (
    c.side === opposite(deleveragedSide) && c.size > 0n && c.collateral >= 0n && profitLeftE16(c, mark) > 0n
  );
}

export interface AdlInput {
  /** Loss to socialize (the part of the shortfall the fund refused). */
  readonly deficit: QuoteE6;
  /** The position being deleveraged: its side and the size still open (0 when only money is left). */
  readonly bankruptPosition: { readonly side: Side; readonly size: BaseE8 };
  /**
   * Candidates; ranked at `mark` here, so the order is the rule's whatever the caller passes (the scores of
   * candidates this module ranked at `mark`, unchanged since, are reused).
   */
  readonly ranked: readonly AdlCandidate[];
  readonly mark: PriceE8;
  /**
   * The market's lot (absent: one unit). Each counterparty closes whole lots of it, so none is left off the lot (an
   * exchange fills whole lots only); what is under a lot of the size stays unmatched.
   */
  readonly lot?: BaseE8;
}

export interface AdlFill {
  readonly id: string;
  /** Size of the counterparty closed against the deleveraged position (0: profit haircut only). */
  readonly size: BaseE8;
  /**
   * Effective close price: mark -/+ (closing part of pnlGiven) / size, rounded toward the mark. With no fund
   * contribution the deficit is size * |bankruptcy - mark|, so this is the bankruptcy price. Informational:
   * the money that moves is pnlGiven.
   */
  readonly price: PriceE8;
  /** Reduction of the counterparty's realized profit versus closing `size` at the mark. */
  readonly pnlGiven: QuoteE6;
  /** Part of pnlGiven beyond the profit of the closed size (taken from the rest of its profit). */
  readonly haircut: QuoteE6;
}

export interface AdlAllocation {
  readonly fills: readonly AdlFill[];
  /**
   * sum of pnlGiven, exactly: at most the deficit and the candidates' unrealized profit, each candidate's share also
   * capped by its collateral and the profit its close realizes.
   */
  readonly covered: QuoteE6;
  /** deficit - covered: bad debt nobody could absorb. */
  readonly uncovered: QuoteE6;
  readonly closedSize: BaseE8;
  /** Deleveraged size the opposite side could not take (its open size was too small). */
  readonly unmatchedSize: BaseE8;
  /**
   * What the counterparties' closes round away in all (E16, the sum of closeRoundingE16 over the closes): each is
   * rounded on its own, so the deleveraged position's close credits it to the fund (waterfall.ts).
   */
  readonly closeRoundingE16: bigint;
}

/** What closing part of a position needs of it (a candidate's, or a record's). */
type Closable = Pick<AdlCandidate, 'side' | 'size' | 'entryPrice' | 'adlProfitGiven'>;

/**
 * 1. Closes: counterparties take the deleveraged size in rank order, c_j = min(size_j, left) rounded down to whole
 *    lots (a counterparty's close of a part under a lot would leave it off the lot; unmatched, that part is carried).
 * 2. Deficit over the closes, as one uniform price would spread it: T = min(D, sum cap_j) with
 *    cap_j = floor(profit of c_j at the mark) less its share of what ADL took before (closedProfitLeft);
 *    g_j = min(cap_j, floor(T c_j / sum c)); the rounding remainder goes to the top-ranked with room left, so
 *    sum g_j = T exactly and nobody realizes a loss.
 * 3. If D > T (caps bound, or no size was left), the rest is a haircut on the remaining profit
 *    (U_j - g_j, U_j net of what ADL took before) in rank order, at most the candidate's collateral + cap_j - g_j
 *    so its collateral after the close stays >= 0. uncovered = D - everything given. A haircut leaves the
 *    profit unrealized: the position keeps it as adlProfitGiven (profitGivenAfter), so no later ADL takes it
 *    again.
 */
/** The profit of closing `take` of `c` at `mark`, floored (the close realizes it in whole units), at least 0. */
const closedProfit = (c: Closable, take: BaseE8, mark: PriceE8): QuoteE6 =>
  maxBig(0n, div(pnlE16(c.side, take, c.entryPrice, mark), NOTIONAL_TO_QUOTE, 'floor'));

/**
 * The part of what ADL took from `c` before that goes with closing `take` of it at `mark`: its share, rounded up
 * (the closed part never gives it again) unless the closed part's profit cannot carry the extra sub-unit, then
 * rounded down (so closed and open part together never give more than the whole profit: floor(a) + floor(b) <=
 * floor(a + b)). The open part keeps the rest: the two shares are exactly what was given.
 */
function closedShareOfGiven(c: Closable, take: BaseE8, mark: PriceE8): QuoteE6 {
  const given = profitGivenOf(c);
  if (given === 0n || take === 0n) return 0n;
  if (take >= c.size) return given;
  const up = div(given * take, c.size, 'ceil');
  return up <= closedProfit(c, take, mark) ? up : div(given * take, c.size, 'floor');
}

/**
 * What closing `take` of `c` at `mark` rounds away (E16, 0 <= it < 1e10): its exact margin and the closed part's
 * exact profit, less the whole units its collateral keeps (settleClose floors a solvent close, and a counterparty
 * is solvent: margin >= 0, profit > 0). deleverageCounterparty's close on the record keeps exactly those units.
 */
export function closeRoundingE16(c: AdlCandidate, take: BaseE8, mark: PriceE8): bigint {
  if (take === 0n) return 0n;
  const exact16 = (c.collateralUnderE16 ?? 0n) + pnlE16(c.side, take, c.entryPrice, mark);
  return exact16 - div(exact16, NOTIONAL_TO_QUOTE, 'floor') * NOTIONAL_TO_QUOTE;
}

/** The profit ADL can take from closing `take` of `c` at `mark`: the closed part's profit less its share given. */
function closedProfitLeft(c: AdlCandidate, take: BaseE8, mark: PriceE8): QuoteE6 {
  return maxBig(0n, closedProfit(c, take, mark) - closedShareOfGiven(c, take, mark));
}

/**
 * What ADL has taken from the part of `c` left open after closing `take` of it at `mark` and taking `haircut` from
 * the rest of its profit: the haircut, and what the closed part did not take of earlier ones (closedShareOfGiven):
 * the counterparty never gives twice, and keeps no unit of profit that no later round could take.
 */
export function profitGivenAfter(c: Closable, take: BaseE8, haircut: QuoteE6, mark: PriceE8): QuoteE6 {
  if (take >= c.size) return 0n;
  return haircut + profitGivenOf(c) - closedShareOfGiven(c, take, mark);
}

/** A counterparty as ADL writes it: the record's money fields (its collateral with the sub-unit a slice left on it). */
export type DeleveragedPosition = Pick<
  Position,
  'side' | 'size' | 'entryPrice' | 'collateral' | 'collateralOverE16' | 'adlProfitGiven'
>;

/** A counterparty after an ADL fill (deleverageCounterparty). */
export interface CounterpartyAfter {
  readonly size: BaseE8;
  /** Its collateral after the fill, or, closed in full (size 0), what it is paid. */
  readonly collateral: QuoteE6;
  /** Profit ADL took from what stays open (profitGivenAfter; 0: none). */
  readonly adlProfitGiven: QuoteE6;
  /** Whether the sub-unit over it held stays (a haircut alone closes nothing); a close rounds it away. */
  readonly keepsOver: boolean;
}

/**
 * A counterparty closes `fill.size` of `p` at `mark` (rounded once on its exact margin, as any close: settleClose)
 * and gives up `fill.pnlGiven` of its profit to cover the deficit.
 */
export function deleverageCounterparty(
  p: DeleveragedPosition,
  fill: AdlFill,
  mark: PriceE8,
): CounterpartyAfter {
  const closed =
    fill.size > 0n
      ? settleClose(p, [{ price: mark, size: fill.size }], 0n)
      : { remaining: { size: p.size, collateral: p.collateral }, traderPayout: 0n };
  const kept = fill.size === p.size ? closed.traderPayout : closed.remaining.collateral;
  return {
    size: p.size - fill.size,
    collateral: kept - fill.pnlGiven,
    adlProfitGiven: profitGivenAfter(p, fill.size, fill.haircut, mark),
    keepsOver: fill.size === 0n,
  };
}

/**
 * ADL events a position keeps (the latest): bounded, so a counterparty deleveraged again and again keeps an item of
 * bounded size (about 0.1 KB an event; under 1 KB in all with short ids, 4 KB with the longest:
 * test/unit/adl-events.test.ts), and `total` says how many there were.
 */
export const MAX_ADL_EVENTS_KEPT = 5;

/**
 * The position's ADL events with `event` recorded: the latest MAX_ADL_EVENTS_KEPT kept. An event of the same
 * liquidation and round already kept is not recorded again (the write that carries an event is conditional on the
 * version it was planned on, so only a record built twice from the same read could hold it).
 */
export const withAdlEvent = (events: AdlEvents | undefined, event: AdlEvent): AdlEvents =>
  withLatest(
    events,
    event,
    MAX_ADL_EVENTS_KEPT,
    (e) => e.liquidationId === event.liquidationId && e.round === event.round,
  );

/**
 * A position's ADL events with `event` recorded (withAdlEvent). A list this version cannot read is not refused (that
 * would block ADL for a display) nor dropped: it is set aside as it was, and a new list starts with the event
 * (follow47-adl-events-unreadable).
 */
export function recordAdlEvent(
  position: Pick<Position, 'adlEvents' | 'adlEventsSetAside'>,
  event: AdlEvent,
): { adlEvents: AdlEvents; adlEventsSetAside?: SetAside } {
  const { list, aside } = recordOrSetAside(position.adlEvents, position.adlEventsSetAside, (events) =>
    withAdlEvent(events, event),
  );
  return { adlEvents: list, ...(aside ? { adlEventsSetAside: aside } : {}) };
}

export function allocateAdl(input: AdlInput): AdlAllocation {
  const { deficit, bankruptPosition, mark } = input;
  if (deficit < 0n) throw new AdlError('adl/bad-input', `deficit ${deficit} must be >= 0`);
  if (bankruptPosition.size < 0n)
    throw new AdlError('adl/bad-input', `size ${bankruptPosition.size} must be >= 0`);
  const ranked = rankForAdl(input.ranked, mark, bankruptPosition.side);

  let sizeLeft = bankruptPosition.size;
  const close: bigint[] = [];
  const cap: bigint[] = [];
  const lot = input.lot ?? 1n;
  for (const c of ranked) {
    const take = floorToLot(minBig(c.size, sizeLeft), lot);
    sizeLeft -= take;
    close.push(take);
    cap.push(take === 0n ? 0n : closedProfitLeft(c, take, mark));
  }
  const closedSize = bankruptPosition.size - sizeLeft;
  const capTotal = cap.reduce((a, b) => a + b, 0n);
  const closeRounding = ranked.reduce((t, c, j) => t + closeRoundingE16(c, close[j]!, mark), 0n);

  const fromClose = close.map(() => 0n);
  const target = minBig(deficit, capTotal);
  if (target > 0n) {
    let rest = target;
    close.forEach((c, j) => {
      // floor: shares never exceed the target; the remainder is placed below.
      const share = minBig(cap[j]!, div(target * c, closedSize, 'floor'));
      fromClose[j] = share;
      rest -= share;
    });
    for (let j = 0; j < ranked.length && rest > 0n; j++) {
      const extra = minBig(rest, cap[j]! - fromClose[j]!);
      fromClose[j] = fromClose[j]! + extra;
      rest -= extra;
    }
  }

  let haircutLeft = deficit - target;
  const haircut = ranked.map((c, j) => {
    // Never more than the rest of its profit, nor more than its collateral plus the profit it realizes now:
    // the counterparty's collateral after ADL stays >= 0 (a negative collateral would corrupt its margin).
    const room = minBig(c.unrealizedPnl - fromClose[j]!, c.collateral + cap[j]! - fromClose[j]!);
    const h = minBig(haircutLeft, maxBig(0n, room));
    haircutLeft -= h;
    return h;
  });

  const fills: AdlFill[] = [];
  ranked.forEach((c, j) => {
    const size = close[j]!;
    const given = fromClose[j]! + haircut[j]!;
    if (size === 0n && given === 0n) return;
    // The counterparty of a bankrupt long is short and buys above the mark; of a bankrupt short, sells below.
    const delta = size === 0n ? 0n : div(fromClose[j]! * NOTIONAL_TO_QUOTE, size, 'floor');
    const price = bankruptPosition.side === 'LONG' ? mark + delta : mark - delta;
    fills.push({ id: c.id, size, price, pnlGiven: given, haircut: haircut[j]! });
  });

  const covered = deficit - haircutLeft;
  return {
    fills,
    covered,
    uncovered: haircutLeft,
    closedSize,
    unmatchedSize: sizeLeft,
    closeRoundingE16: closeRounding,
  };
}
