import type { MarketConfig } from './config.ts';
import { formatPrice, PPM_SCALE, type Ppm, type PriceE8 } from './units.ts';

/**
 * Tick rules: which price ticks may drive liquidations. A tick is checked, in order, for
 * unknown-symbol, non-positive, duplicate, out-of-order, future, too-old, index-band, then against the
 * circuit breaker (price-band, window-band / breaker-open, breaker-confirming). Duplicates come first so
 * that a redelivered event is recognised as such (and acknowledged) whatever its age.
 *
 * Circuit breaker: a tick further than priceBand from the last accepted mark trips the breaker instead of
 * liquidating on what may be a bad print. A bad print does not persist but a real move does, so while the
 * breaker is open a tick is accepted, closing the breaker, if it is within the band of
 *   - the last accepted mark ('tick/breaker-reverted': the print was bad), or
 *   - the tick that tripped the breaker ('tick/breaker-persisted': the move was real).
 * Otherwise it is rejected with 'tick/breaker-open' and re-arms the breaker with itself (tripBreaker: true),
 * so a market that keeps moving is followed after two consecutive agreeing prints (breakerConfirmSeconds apart)
 * instead of freezing.
 * A move persists in time, not only in prints: a print agreeing with the held one less than breakerConfirmSeconds
 * after it (by their stamps, and by this service's clock since the trip) is rejected with 'tick/breaker-confirming'
 * and leaves the breaker as it is, so a bad print repeated in a burst cannot confirm itself before a good print
 * reverts it.
 * A market's first print has no last mark to be judged against, so it is never trusted alone: it is rejected
 * with 'tick/unconfirmed' and trips the breaker, and the first later print within the band of it is accepted
 * ('tick/first-confirmed'). A bad first print (a feed's glitch at launch) cannot liquidate a book.
 * The tripping tick counts as seen: its sequence (not its timestamp, which may be as bad as its price) is
 * an ordering floor, so a redelivery of the bad print can never confirm itself. A floor for confirming only: a print
 * numbered between the last tick and the tripping one reverts the breaker or re-arms it with itself (never confirms
 * it), as a bad print numbered ahead of the feed would otherwise hold every print of the feed out of order until it
 * confirmed itself.
 *
 * Window band (priceWindowSeconds > 0): the band holds over a window of time as well as per print, so a walk of
 * prints each within the band of the last cannot move the mark further than the band within the window
 * ('tick/window-band' trips the breaker). The window's anchor is the mark that opened it (nextBandAnchor): a
 * tumbling window, so across its boundary the mark may move up to twice the band within one window's time.
 *
 * Sequence jumps: a tick numbered more than maxSequenceJump above the market's last (or the breaker's tick) is
 * rejected with 'tick/sequence-jump' and held (holdJump: true), not recorded, since recorded its number would make
 * every later tick of the feed out of order and blind the market. It is no ordering floor: the feed's next prints
 * are judged as usual, and one accepted drops it; a jump that does not continue from it replaces it. A print that
 * continues from it (numbered above it, within maxSequenceJump) is judged as usual once it comes
 * breakerConfirmSeconds after it (by both clocks, as the breaker's) and the market's mark is stale
 * (maxMarkAgeSeconds), so a feed restarted on a new numbering is followed; until then it is rejected with
 * 'tick/sequence-confirming' and the held tick stays (continueJump: true records when, and for that span no other
 * jump replaces it).
 *
 * Sequences behind: the market's numbering may run ahead of its feed (a print ahead by less than maxSequenceJump was
 * recorded, or two glitches confirmed a jump). The feed's prints are then numbered below the last yet stamped after
 * it by more than maxClockSkewSeconds, which no print of the recorded numbering can be (its stamps are at most the
 * skew ahead of what was recorded, feed stamps being in order). Such a print is held as a jump is
 * ('tick/sequence-behind'), and one that continues from it as a jump's does (breakerConfirmSeconds later, the mark
 * stale) moves the market onto the feed's numbering (rebase: the old numbering's prints are then refused by their
 * stamps) and is judged again. Without it the market stayed blind until the feed caught up with the print ahead, or
 * an operator ran `feed resume`.
 *
 * The incumbent wins: a market leaves its numbering, up or down, only once no print of it has been accepted for
 * maxMarkAgeSeconds (when nothing acts on its mark anyway), so a stray source, however often it prints, cannot take
 * over a market whose feed is alive; a feed whose prints the breaker keeps refusing is not, and is left.
 */

/** A price tick after parsing (see shared/schemas/tick.ts for the event detail). */
/**
 * Which invocation of a tick's margin check this is: 0, the tick's own event; n >= 1, its n-th continuation;
 * 'unknown', a continuation that carries no segment (put before segments existed).
 */
export type TickSegment = number | 'unknown';

export interface Tick {
  readonly symbol: string;
  readonly markPrice: PriceE8;
  readonly indexPrice?: PriceE8;
  /** Event time, epoch ms. */
  readonly timestampMs: number;
  /** Per-symbol feed sequence, strictly increasing. */
  readonly sequence: number;
  /** Feed id. */
  readonly source: string;
}

/** Structurally the ports' AcceptedTick (the domain does not import ports). */
export interface TickRecord {
  readonly sequence: number;
  readonly markPrice: PriceE8;
  readonly indexPrice?: PriceE8;
  readonly timestampMs: number;
}

/** An accepted mark and its time: where a market's window band is judged from. */
export interface BandAnchor {
  readonly markPrice: PriceE8;
  readonly timestampMs: number;
}

/** Structurally the ports' MarketState without its symbol. */
export interface TickState {
  readonly lastTick?: TickRecord;
  /** The window band's anchor (absent: none yet, or the market has no window). */
  readonly bandAnchor?: BandAnchor;
  readonly breaker?: { readonly reason: string; readonly trippedAtMs: number; readonly tick: TickRecord };
  /** Set when the feed was resumed below its sequence: the old feed's ticks are stamped at or before it. */
  readonly resumedAfterMs?: number;
  /** A tick that jumped the sequence, held until one continues from it (heldAtMs: this service's clock). */
  readonly heldJump?: {
    readonly tick: TickRecord;
    readonly heldAtMs: number;
    readonly continuedAtMs?: number;
  };
}

export type TickRejectReason =
  | 'tick/unknown-symbol'
  | 'tick/non-positive'
  | 'tick/duplicate'
  | 'tick/out-of-order'
  | 'tick/future'
  | 'tick/too-old'
  | 'tick/index-band'
  | 'tick/price-band'
  | 'tick/window-band'
  | 'tick/breaker-open'
  | 'tick/breaker-confirming'
  | 'tick/unconfirmed'
  | 'tick/sequence-jump'
  | 'tick/sequence-behind'
  | 'tick/sequence-confirming';

export type BreakerCloseReason = 'tick/breaker-reverted' | 'tick/breaker-persisted' | 'tick/first-confirmed';

export type TickVerdict =
  | { readonly verdict: 'accept'; readonly closeBreaker: false }
  | { readonly verdict: 'accept'; readonly closeBreaker: true; readonly reason: BreakerCloseReason }
  | {
      readonly verdict: 'reject';
      readonly reason: TickRejectReason;
      /** Trip (or re-arm) the breaker with this tick. */
      readonly tripBreaker: boolean;
      /** Hold this tick as the market's sequence jump (replacing the held one). */
      readonly holdJump?: boolean;
      /** Record that this tick continued from the held jump (continuedAtMs), which a glitch may then not replace. */
      readonly continueJump?: boolean;
      /**
       * Move the market onto the feed's numbering, then judge the tick again: its last tick (and breaker's) counts as
       * numbered `sequence` (the held print's), and prints stamped at or before `resumedAfterMs` are the old numbering's.
       */
      readonly rebase?: { readonly sequence: number; readonly resumedAfterMs: number };
      /**
       * Re-arm the breaker with this tick but keep its trippedAtMs: a print numbered below the held one that agrees
       * with it moves the breaker onto the feed's numbering without restarting the move's confirmation.
       */
      readonly keepTrippedAt?: boolean;
      /** Human-readable detail for logs. */
      readonly detail: string;
    };

/** |a - ref| <= band * ref, exact: |a - ref| * 1e6 <= band(ppm) * ref. */
export function withinBand(a: PriceE8, ref: PriceE8, band: Ppm): boolean {
  const diff = a > ref ? a - ref : ref - a;
  return diff * PPM_SCALE <= band * ref;
}

const reject = (
  reason: TickRejectReason,
  detail: string,
  tripBreaker = false,
  jump?: 'hold' | 'continue',
): TickVerdict => ({
  verdict: 'reject',
  reason,
  tripBreaker,
  detail,
  ...(jump === 'hold' ? { holdJump: true } : jump === 'continue' ? { continueJump: true } : {}),
});

const ACCEPT: TickVerdict = { verdict: 'accept', closeBreaker: false };

/**
 * The tick as the market state records it once accepted (or as the breaker's tripping tick), at no time later than
 * `nowMs`: a tick stamped ahead of this clock (within maxClockSkewSeconds) must not hold back the correctly stamped
 * prints that follow it, which are judged against the recorded time.
 */
export function toTickRecord(tick: Tick, nowMs: number): TickRecord {
  const { sequence, markPrice, indexPrice } = tick;
  const timestampMs = Math.min(tick.timestampMs, nowMs);
  return indexPrice === undefined
    ? { sequence, markPrice, timestampMs }
    : { sequence, markPrice, indexPrice, timestampMs };
}

function checkSequence(tick: Tick, seen: TickRecord | undefined): TickVerdict | undefined {
  if (!seen) return undefined;
  if (tick.sequence === seen.sequence) return reject('tick/duplicate', `sequence ${tick.sequence} seen`);
  if (tick.sequence < seen.sequence) {
    return reject('tick/out-of-order', `sequence ${tick.sequence} < ${seen.sequence}`);
  }
  return undefined;
}

const fmt = (p: PriceE8 | undefined): string => (p === undefined ? '-' : formatPrice(p));

/**
 * Decides whether `tick` may drive liquidations, given the market's state and the time now (epoch ms).
 * Boundaries are inclusive on the accepting side: a tick exactly maxTickAgeSeconds old, exactly
 * maxClockSkewSeconds ahead, or exactly at a band edge is accepted.
 */
export function evaluateTick(
  tick: Tick,
  state: TickState,
  market: MarketConfig | undefined,
  nowMs: number,
): TickVerdict {
  if (!market || market.symbol !== tick.symbol) {
    return reject('tick/unknown-symbol', `no market configured for ${tick.symbol}`);
  }
  if (tick.markPrice <= 0n || (tick.indexPrice !== undefined && tick.indexPrice <= 0n)) {
    return reject('tick/non-positive', `mark ${fmt(tick.markPrice)}, index ${fmt(tick.indexPrice)}`);
  }

  const last = state.lastTick;
  const tripped = state.breaker?.tick;
  const order = checkSequence(tick, last) ?? checkSequence(tick, tripped);
  const outOfOrder = order?.verdict === 'reject' && order.reason === 'tick/out-of-order';
  // Numbered behind yet stamped after anything the market's numbering can still send: judged by checkNumbering.
  const behind = outOfOrder && tick.timestampMs > oldNumberingEndsAt(state, market);
  // Numbered between the last tick and the breaker's (in order with the last): the feed's print after one numbered
  // ahead of it that tripped the breaker. It may revert the breaker, or re-arm it, not confirm it (below). Its stamp
  // is judged against the last tick's as any print's: the bad print's own stamp is as untrusted as its price.
  const belowTripped =
    outOfOrder && last !== undefined && tripped !== undefined && tick.sequence > last.sequence;
  if (order && !behind && !belowTripped) return order;
  // After a resume the old feed's sequences are no floor: its ticks still in flight (a redelivery, a retry) are
  // known by their time, and never count as the new feed's (nor confirm a bad print of theirs).
  if (ofLeftNumbering(tick, state)) {
    return reject(
      'tick/out-of-order',
      `timestamp ${tick.timestampMs} is not after the feed's resume (its old ticks end at ${state.resumedAfterMs})`,
    );
  }
  if (last && tick.timestampMs < last.timestampMs) {
    return reject('tick/out-of-order', `timestamp ${tick.timestampMs} < ${last.timestampMs}`);
  }

  if (tick.timestampMs - nowMs > market.maxClockSkewSeconds * 1000) {
    return reject('tick/future', `timestamp ${tick.timestampMs} is ${tick.timestampMs - nowMs} ms ahead`);
  }
  if (nowMs - tick.timestampMs > market.maxTickAgeSeconds * 1000) {
    return reject('tick/too-old', `timestamp ${tick.timestampMs} is ${nowMs - tick.timestampMs} ms old`);
  }
  if (tick.indexPrice !== undefined && !withinBand(tick.markPrice, tick.indexPrice, market.indexBand)) {
    return reject('tick/index-band', `mark ${fmt(tick.markPrice)} vs index ${fmt(tick.indexPrice)}`);
  }
  if (belowTripped) {
    // A bad print numbered ahead of the feed must not make the feed's prints out of order while it is held, or no
    // print could revert it or interrupt it, and the next bad one would confirm it (reviews, session 34). So it
    // reverts the breaker, or re-arms it with itself, whatever it agrees with: it never confirms the print above
    // it, and a feed moving where that print said is followed from its own prints (the next that agrees).
    const judged = judgeMark(tick, state, market, nowMs);
    if (judged.verdict === 'accept' && judged.closeBreaker && judged.reason === 'tick/breaker-reverted')
      return judged;
    // Agreeing with neither mark: a new price held from now, as any print of the kind.
    if (judged.verdict === 'reject' && judged.reason === 'tick/breaker-open') return judged;
    // Agreeing with the held print: it holds the same move, whose confirmation goes on from when it was tripped (a
    // feed's earlier print landing late must not restart it; review, session 34).
    return {
      verdict: 'reject',
      reason: 'tick/breaker-open',
      tripBreaker: true,
      keepTrippedAt: true,
      detail: `mark ${fmt(tick.markPrice)} numbered below the held ${fmt(tripped?.markPrice)} (sequence ${tripped?.sequence}) re-arms the breaker: it may not confirm it`,
    };
  }
  const numbering = checkNumbering(tick, state, market, nowMs);
  if (numbering) return numbering;
  return judgeMark(tick, state, market, nowMs);
}

/** The mark of a fresh print on the market's numbering, judged by the bands and the breaker (see above). */
function judgeMark(tick: Tick, state: TickState, market: MarketConfig, nowMs: number): TickVerdict {
  const last = state.lastTick;
  const tripped = state.breaker?.tick;
  // A market's first print has no mark to be judged against: it waits, as a tripped breaker, for one that agrees.
  if (!last && !tripped) {
    return reject(
      'tick/unconfirmed',
      `first mark ${fmt(tick.markPrice)} of ${tick.symbol} waits for a print within the band`,
      true,
    );
  }
  // Times the feed chooses count only up to now: a print stamped ahead (within the skew) gains nothing by it.
  const atMs = Math.min(tick.timestampMs, nowMs);
  const anchor = activeAnchor(state, atMs, market);
  const withinWindow = !anchor || withinBand(tick.markPrice, anchor.markPrice, market.priceBand);
  if (tripped) {
    if (last && withinWindow && withinBand(tick.markPrice, last.markPrice, market.priceBand)) {
      return { verdict: 'accept', closeBreaker: true, reason: 'tick/breaker-reverted' };
    }
    if (withinBand(tick.markPrice, tripped.markPrice, market.priceBand)) {
      // A market's first print has no mark to revert to: the first that agrees opens it, as before. The move has
      // persisted only if both the prints' times and this service's clock say so: a feed stamps its prints as it
      // likes (a held print stamped in the past, a confirming one ahead), and a burst arrives at one instant.
      const heldMs = Math.min(atMs - tripped.timestampMs, nowMs - (state.breaker?.trippedAtMs ?? nowMs));
      if (last && heldMs < market.breakerConfirmSeconds * 1000) {
        return reject(
          'tick/breaker-confirming',
          `mark ${fmt(tick.markPrice)} agrees with the held ${fmt(tripped.markPrice)}, held ${heldMs} ms: the move is followed once it persists ${market.breakerConfirmSeconds} s`,
        );
      }
      const reason = last ? 'tick/breaker-persisted' : 'tick/first-confirmed';
      return { verdict: 'accept', closeBreaker: true, reason };
    }
    return reject(
      'tick/breaker-open',
      `mark ${fmt(tick.markPrice)} agrees with neither ${fmt(last?.markPrice)} nor ${fmt(tripped.markPrice)}`,
      true,
    );
  }
  if (last && !withinBand(tick.markPrice, last.markPrice, market.priceBand)) {
    return reject('tick/price-band', `mark ${fmt(tick.markPrice)} vs last ${fmt(last.markPrice)}`, true);
  }
  if (anchor && !withinWindow) {
    return reject(
      'tick/window-band',
      `mark ${fmt(tick.markPrice)} vs ${fmt(anchor.markPrice)} ${atMs - anchor.timestampMs} ms before, within the ${market.priceWindowSeconds} s window`,
      true,
    );
  }
  return ACCEPT;
}

/**
 * Whether `tick` belongs to a numbering the market left (a feed resume or a rebase): stamped at or before where that
 * numbering ended. Such a tick is never the new numbering's, whatever its sequence.
 */
export const ofLeftNumbering = (tick: Pick<Tick, 'timestampMs'>, state: TickState): boolean =>
  state.resumedAfterMs !== undefined && tick.timestampMs <= state.resumedAfterMs;

/**
 * The latest stamp a print of the numbering the market recorded can carry: its recorded ticks' stamps (at most now
 * when recorded) plus the skew a stamp may run ahead, and a resume's end. What `feed resume` and a rebase set as the
 * old numbering's end (resumedAfterMs).
 */
export function oldNumberingEndsAt(
  state: TickState,
  market: Pick<MarketConfig, 'maxClockSkewSeconds'>,
): number {
  const recorded = Math.max(state.lastTick?.timestampMs ?? 0, state.breaker?.tick.timestampMs ?? 0);
  return Math.max(state.resumedAfterMs ?? 0, recorded + market.maxClockSkewSeconds * 1000);
}

/**
 * Whether a tick numbered `sequence` is no jump above `last`, the market's last sequence (its last accepted tick or
 * the breaker's): one further above is held as tick/sequence-jump. The operator commands number by it too.
 */
export function withinSequenceJump(sequence: number, last: number, maxSequenceJump: number): boolean {
  return sequence - last <= maxSequenceJump;
}

/**
 * A tick numbered off the market's sequence: far above it (a jump), or behind it with a later stamp (evaluateTick
 * lets only those through). Held, or refused while it continues from a held one too soon; a jump's continuation
 * is then judged as usual, a continuation behind moves the market onto its numbering (see above).
 */
function checkNumbering(
  tick: Tick,
  state: TickState,
  market: MarketConfig,
  nowMs: number,
): TickVerdict | undefined {
  // From what the market has seen (a feed resumed from 0 leaves a last tick numbered -1): a first print has none.
  const seen = [state.lastTick?.sequence, state.breaker?.tick.sequence].filter((n) => n !== undefined);
  if (seen.length === 0) return undefined;
  const floor = Math.max(...seen);
  const behind = tick.sequence < floor;
  if (!behind && withinSequenceJump(tick.sequence, floor, market.maxSequenceJump)) return undefined;
  const held = state.heldJump;
  const reason = behind ? 'tick/sequence-behind' : 'tick/sequence-jump';
  const off = behind
    ? `sequence ${tick.sequence} is below ${floor} but stamped after every print of that numbering`
    : `sequence ${tick.sequence} is ${tick.sequence - floor} above ${floor} (at most ${market.maxSequenceJump})`;
  if (held && tick.sequence === held.tick.sequence) {
    // A copy of the held print (its stamp clamped when held, as a recorded one's); another print under its number
    // is refused as a number reused, as one under the last tick's: not held, nor judged
    // (review52-feed-held-number-reused).
    if (tick.markPrice === held.tick.markPrice && held.tick.timestampMs <= tick.timestampMs)
      return reject(reason, `${off}: held already`);
    return reject(
      'tick/duplicate',
      `sequence ${tick.sequence} is the held print's (mark ${fmt(held.tick.markPrice)} at ${held.tick.timestampMs}), not this one's (mark ${fmt(tick.markPrice)} at ${tick.timestampMs}): its price is lost`,
    );
  }
  const span = market.breakerConfirmSeconds * 1000;
  if (
    !held ||
    tick.sequence < held.tick.sequence ||
    !withinSequenceJump(tick.sequence, held.tick.sequence, market.maxSequenceJump)
  ) {
    // A print that does not continue from the held one replaces it (a glitch held above a feed restarted on a new
    // numbering must not keep that feed out), unless a print continued from the held one within the span: a
    // glitch repeated more often than that would otherwise restart the restarted feed's span for ever.
    if (held?.continuedAtMs !== undefined && nowMs - held.continuedAtMs < span) {
      return reject(reason, `${off}: the held ${held.tick.sequence} is being continued`);
    }
    return reject(reason, `${off}: held until a print continues from it`, false, 'hold');
  }
  const atMs = Math.min(tick.timestampMs, nowMs);
  const heldMs = Math.min(atMs - held.tick.timestampMs, nowMs - held.heldAtMs);
  if (heldMs < span) {
    return reject(
      'tick/sequence-confirming',
      `${off}: continues from the held ${held.tick.sequence}, held ${heldMs} ms: followed once it persists ${market.breakerConfirmSeconds} s`,
      false,
      'continue',
    );
  }
  // The market leaves its numbering only once its mark is stale (maxMarkAgeSeconds): while its feed's prints are
  // accepted, a stray source (above or below it) must not take it over, however often it prints.
  const markAtMs = state.lastTick?.timestampMs;
  if (markAtMs !== undefined && !markIsStale(markAtMs, nowMs, market)) {
    return reject(
      'tick/sequence-confirming',
      `${off}: continues from the held ${held.tick.sequence}: followed once the market's mark is stale (${market.maxMarkAgeSeconds} s)`,
      false,
      'continue',
    );
  }
  if (!behind) return undefined;
  return {
    verdict: 'reject',
    reason,
    tripBreaker: false,
    rebase: { sequence: held.tick.sequence, resumedAfterMs: oldNumberingEndsAt(state, market) },
    detail: `${off}: continues from the held ${held.tick.sequence}, held ${heldMs} ms: the market moves onto the feed's numbering`,
  };
}

/** The market's tick state once a rebase verdict is applied, as MarketRepository.rebaseSequence writes it. */
export function rebasedTickState<S extends TickState>(
  state: S,
  rebase: { readonly sequence: number; readonly resumedAfterMs: number },
): S {
  // The refusal traces a MarketState keeps (read or not, of any kind) were of the numbering left too.
  const {
    heldJump: _dropped,
    refusals: _traces,
    unreadableRefusals: _unread,
    unknownRefusals: _unknown,
    ...rest
  } = state as S & { refusals?: unknown; unreadableRefusals?: unknown; unknownRefusals?: unknown };
  const { lastTick, breaker } = state;
  // A print the breaker refused while confirming (a trace MarketState keeps) was of the numbering left: dropped.
  const { confirming: _refused, ...held } = (breaker ?? {}) as NonNullable<TickState['breaker']> & {
    confirming?: unknown;
  };
  return {
    ...rest,
    ...(breaker ? { breaker: { ...held, tick: { ...held.tick, sequence: rebase.sequence } } } : {}),
    ...(lastTick ? { lastTick: { ...lastTick, sequence: rebase.sequence } } : {}),
    resumedAfterMs: rebase.resumedAfterMs,
  } as S;
}

/** The anchor a print at `atMs` is judged against: the market's, while `atMs` falls in its window. */
function activeAnchor(state: TickState, atMs: number, market: MarketConfig): BandAnchor | undefined {
  const anchor = state.bandAnchor;
  if (market.priceWindowSeconds === 0 || !anchor) return undefined;
  return atMs - anchor.timestampMs < market.priceWindowSeconds * 1000 ? anchor : undefined;
}

/**
 * The window band's anchor once `accepted` is recorded: the mark that opened the window, until the window has
 * passed or a confirmed move (the breaker closed by a print that persisted, or a market's first) opens a new one
 * at `accepted`'s time. A window that passed opens the next at the mark it ended on, not at `accepted`'s (judged
 * against the last mark alone): else prints timed at the boundary would walk a band each. Undefined for a
 * market without a window.
 */
export function nextBandAnchor(
  state: TickState,
  accepted: TickRecord,
  verdict: TickVerdict,
  market: MarketConfig,
): BandAnchor | undefined {
  if (market.priceWindowSeconds === 0) return undefined;
  const anchor = state.bandAnchor;
  const movedOn =
    verdict.verdict === 'accept' && verdict.closeBreaker && verdict.reason !== 'tick/breaker-reverted';
  if (anchor && !movedOn && accepted.timestampMs - anchor.timestampMs < market.priceWindowSeconds * 1000) {
    return anchor;
  }
  const opening = anchor && !movedOn && state.lastTick ? state.lastTick.markPrice : accepted.markPrice;
  return { markPrice: opening, timestampMs: accepted.timestampMs };
}

/**
 * Whether a mark stamped `markAtMs` is too old at `nowMs` to liquidate, auction or deleverage on: its feed stopped,
 * or the breaker holds every print since. A mark exactly maxMarkAgeSeconds old is still fresh.
 */
export const markIsStale = (
  markAtMs: number,
  nowMs: number,
  market: Pick<MarketConfig, 'maxMarkAgeSeconds'>,
): boolean => nowMs - markAtMs > market.maxMarkAgeSeconds * 1000;
