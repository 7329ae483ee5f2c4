import { marketConfig, type RiskConfig } from '../domain/config.ts';
import { isLiquidatable, liquidationPrice } from '../domain/margin.ts';
import type { Side } from '../domain/model.ts';
import { wakes } from '../domain/sleep.ts';
import {
  evaluateTick,
  nextBandAnchor,
  ofLeftNumbering,
  type Tick,
  type TickSegment,
  toTickRecord,
} from '../domain/tick.ts';
import { formatPrice, type PriceE8 } from '../domain/units.ts';
import { errorText } from '../error-text.ts';
import { METRICS } from '../metrics.ts';
import {
  type AcceptedTick,
  type AuctionRepository,
  ConditionFailedError,
  type CrossedPage,
  currentRefusals,
  type DroppedRefusal,
  highestSequence,
  InjectedCrash,
  isTracedRefusal,
  type JudgedMarket,
  type LiquidationMessage,
  type LiquidationRecord,
  type LiquidationRepository,
  type MarketRepository,
  type MarketState,
  type PositionRecord,
  type PositionRepository,
  type QueueTransport,
  REFUSAL_NOTES_PER_SECOND,
  REFUSAL_TRACE_KEPT_MS,
  type RefusalNote,
  type Telemetry,
  TRACED_REFUSALS,
  type TracedRefusal,
} from '../ports/index.ts';
import { encodeMessage } from '../schemas/messages.ts';
import { sendSpread, wakeSleepers as wake } from './wake.ts';

export interface MarginCheckDeps {
  readonly positions: PositionRepository;
  readonly markets: MarketRepository;
  readonly liquidations: LiquidationRepository;
  readonly liquidationQueue: QueueTransport;
  /** Sleeping auctions a tick wakes, and the queue their step messages go to. */
  readonly auctions: Pick<AuctionRepository, 'sleepers'>;
  readonly auctionQueue: QueueTransport;
  readonly config: RiskConfig;
  readonly telemetry: Telemetry;
  /** Most positions started per invocation; the rest continue in a follow-up invocation, never dropped. */
  readonly maxPositionsPerInvocation: number;
  /** Most sleeping auctions woken per side and tick (default MAX_WAKES_PER_CALL). */
  readonly maxWakesPerTick?: number;
  /**
   * The markets as this container's last accepted tick wrote them (a Lambda container's, kept between
   * invocations): a tick judged on it costs no read of the market. acceptTick's conditions check what it was
   * judged on, and a rejection is judged again on a fresh read, so a stale entry costs a retry, never a verdict.
   */
  readonly marketStates?: Map<string, MarketState>;
}

export type TickOutcome =
  | { readonly status: 'rejected'; readonly reason: string; readonly detail: string }
  | {
      readonly status: 'accepted';
      /** Positions returned by the index query. */
      readonly checked: number;
      /** Liquidations started and enqueued by this invocation. */
      readonly enqueued: number;
      /** More crossed positions remain: invoke again for the same tick with the next segment. */
      readonly needsContinuation: boolean;
    };

export const liquidationIdOf = (position: PositionRecord): string => `${position.id}:${position.version}`;
export const tickKeyOf = (symbol: string, sequence: number): string => `${symbol}#${sequence}`;

/**
 * Handles one price tick: validate it against the market's state (domain tick rules), record it as the last
 * accepted tick with a conditional write, find the positions the mark crosses with index range queries, re-check
 * each exactly, start their liquidations (position OPEN -> LIQUIDATING and a QUEUED liquidation, atomically) and
 * enqueue them.
 *
 * Exactly-once enqueueing without losing anything across crashes:
 * - a tick that crosses positions is recorded with a `pending` mark before any liquidation starts, and the mark
 *   is cleared only after every message is sent;
 * - a duplicate tick fails the conditional write and enqueues nothing;
 * - a retry after a crash finds its own sequence pending, re-sends the messages of the liquidations this tick
 *   already started (the consumer is idempotent per liquidation id) and goes on;
 * - a continuation (segment n >= 1) follows an invocation that sent every message it started: its first
 *   attempt claims segment n and goes on without re-sending; a retry of it finds n claimed and re-sends. (Every
 *   continuation re-sending every still-queued liquidation read the whole tick each time: quadratic in a crash.)
 * - a newer tick, once accepted, takes over an earlier one still pending (its continuation lost or late): it
 *   re-sends what that one started, and what the lost segments held is started if still crossed at its own mark;
 * - a tick that is not pending (any more) never touches the pending mark, but its retry or continuation re-sends
 *   what it started (a newer tick may have taken over while an invocation of it died before sending);
 * - every accepted tick checks both sides: a position the index missed (eventual consistency) or that was made
 *   OPEN at a mark older than the last accepted one is started by the next tick, whichever way it moves.
 *
 * @param segment 0 for the tick's own event, n for its n-th continuation ('unknown': re-send, as a retry)
 */
export async function handleTick(
  tick: Tick,
  deps: MarginCheckDeps,
  nowMs: number,
  segment: TickSegment = 0,
): Promise<TickOutcome> {
  // A tick that loses the race to record itself is judged again against what won: it may still be the newer.
  for (let attempt = 1; ; attempt++) {
    const outcome = await handleTickOnce(tick, deps, nowMs, segment);
    // Judged on a cached state another container had moved on, or on the numbering this call just left: not a lost
    // race (the next reads the market; a rebase happens once, as it drops the held print it continued).
    if (outcome === STALE || outcome === REBASED) {
      attempt -= 1;
      continue;
    }
    if (outcome !== LOST_RACE) return outcome;
    if (attempt >= 3) {
      const known = deps.config.markets.some((m) => m.symbol === tick.symbol);
      deps.telemetry.count(METRICS.TicksRejected.name, 1, {
        Reason: 'tick/contended',
        ...(known ? { Market: tick.symbol } : {}),
      });
      return {
        status: 'rejected',
        reason: 'tick/contended',
        detail: 'lost the race to record the tick 3 times',
      };
    }
  }
}

const LOST_RACE = Symbol('lost-race');
const STALE = Symbol('stale');
const REBASED = Symbol('rebased');

async function handleTickOnce(
  tick: Tick,
  deps: MarginCheckDeps,
  nowMs: number,
  segment: TickSegment,
): Promise<TickOutcome | typeof LOST_RACE | typeof STALE | typeof REBASED> {
  const { markets, telemetry } = deps;
  // Only the state the feed's previous tick left: after a gap (another container took ticks) read the market.
  const kept = segment === 0 ? deps.marketStates?.get(tick.symbol) : undefined;
  const cached = kept?.lastTick?.sequence === tick.sequence - 1 ? kept : undefined;
  const state = cached ?? (await markets.get(tick.symbol));
  // Any write below other than acceptTick's leaves the cached state behind: read the market next time.
  deps.marketStates?.delete(tick.symbol);

  const pending = state?.pendingSequence;
  // A tick of a numbering the market left (a resume or a rebase) may share its number with the new one's pending
  // tick: known by its stamp, it is not that tick's retry or continuation (review, session 34).
  if (pending === tick.sequence && state?.lastTick && !ofLeftNumbering(tick, state)) {
    // A later segment of the tick was claimed: this is a duplicate delivery (EventBridge is at-least-once) or the
    // retry of a twin that died. It re-sends what the tick started once (a twin may have begun liquidations and
    // died before sending them, while the other, finding them begun, continued), but does not continue: a second
    // chain re-sent the whole tick at every segment (an audit, session 36; its review found the twin's loss).
    if (segment !== 'unknown' && (state.pendingSegment ?? 0) > segment) {
      await resendStarted(tick.symbol, tick.sequence, deps);
      return {
        status: 'rejected',
        reason: 'tick/continuation-done',
        detail: `segment ${segment} of ${tick.sequence} was continued already`,
      };
    }
    // Our own retry or continuation: the tick was accepted already; finish what it started.
    const retry =
      segment === 0 ||
      segment === 'unknown' ||
      !(await markets.claimSegment(tick.symbol, state.lastTick, segment));
    const outcome = await resumeTick(tick.symbol, state.lastTick, deps, retry);
    // A retry of the tick's own invocation, which may have died before waking what its mark reached.
    if (segment === 0) await wakeSleepers(tick.symbol, state, state.lastTick.markPrice, deps, nowMs);
    return outcome;
  }
  if (segment !== 0) {
    // A newer tick took this one's work over (at its own mark); what this one started is re-sent in case an
    // invocation of it died between starting liquidations and sending their messages.
    await resendStarted(tick.symbol, tick.sequence, deps);
    return {
      status: 'rejected',
      reason: 'tick/continuation-done',
      detail: `no pending work for ${tick.sequence}`,
    };
  }

  const market = deps.config.markets.find((m) => m.symbol === tick.symbol);
  const verdict = evaluateTick(tick, state ?? {}, market, nowMs);
  // Rejected on what this container last wrote: judge it again on the market as it is (another may have moved it).
  if (verdict.verdict === 'reject' && cached) return STALE;
  if (verdict.verdict === 'reject') {
    // A redelivery or retry of a tick accepted before: re-send what it started (as for a continuation above).
    if (verdict.reason === 'tick/duplicate' || verdict.reason === 'tick/out-of-order') {
      await resendStarted(tick.symbol, tick.sequence, deps);
    }
    if (verdict.reason === 'tick/duplicate') {
      // A retry of the last accepted tick (its invocation may have died before waking what its mark reached; a
      // wake is idempotent), or of the tick that tripped the breaker (it may have died before the alarm's count).
      if (state?.lastTick?.sequence === tick.sequence)
        await wakeSleepers(tick.symbol, state, state.lastTick.markPrice, deps, nowMs);
      // Its mark too: after a rebase the breaker's tick is renumbered, and another print may carry that number.
      const breaker = state?.breaker;
      const retriedTrip =
        breaker?.tick.sequence === tick.sequence && breaker.tick.markPrice === tick.markPrice;
      if (retriedTrip && breaker.reason !== 'tick/unconfirmed')
        reportTrip(tick, breaker.reason, 'a retry of the tick that tripped it', deps);
    }
    if (verdict.tripBreaker) {
      // Only on the market it was judged against: a newer accepted tick makes this one out of order, and a newer
      // trip (a concurrent tick's) means it must be judged again on that breaker.
      const tripped = await markets.tripBreaker(
        tick.symbol,
        verdict.reason,
        toTickRecord(tick, nowMs),
        verdict.keepTrippedAt && state?.breaker ? state.breaker.trippedAtMs : nowMs,
        judgedOn(state),
      );
      if (!tripped) return LOST_RACE;
      // A market's first print waits for a second as a trip does, but it is how every market starts: no alarm.
      if (verdict.reason === 'tick/unconfirmed') {
        telemetry.info('first print of a market: waits for one that agrees', {
          symbol: tick.symbol,
          detail: verdict.detail,
        });
      } else {
        reportTrip(tick, verdict.reason, verdict.detail, deps);
      }
    }
    // Of a configured market (tick/unknown-symbol is not traced), read fresh: a rejection is never judged on a cache.
    const note =
      isTracedRefusal(verdict.reason) && !(state && redelivered(tick, state))
        ? refusalNote(tick, verdict.reason, state ?? { symbol: tick.symbol }, nowMs)
        : undefined;
    // Written with a hold or a continuation of the held jump, in its write: one write, not two (feed49-jump-one-write).
    let noted = false;
    if (verdict.holdJump) {
      // Only on the market it was judged against, as a trip: a newer accepted tick drops what this would hold. The
      // held print is clamped to our clock (toTickRecord), the note keeps the tick's own stamp (RefusalNote).
      const held = await markets.holdSequenceJump(
        tick.symbol,
        toTickRecord(tick, nowMs),
        nowMs,
        {
          ...judgedOn(state),
          heldTick: state?.heldJump?.tick,
          heldContinuedAtMs: state?.heldJump?.continuedAtMs,
        },
        note,
      );
      // Or the note's condition failed (another note of the kind since the read), or the held jump was continued
      // since (feed51-hold-over-continuation): judged again on a fresh read.
      if (!held) return LOST_RACE;
      noted = true;
      telemetry.warn('feed sequence jumped: held until a print continues from it', {
        symbol: tick.symbol,
        sequence: tick.sequence,
        detail: verdict.detail,
      });
    }
    if (verdict.rebase && state) {
      // The market's numbering ran ahead of its feed: move it onto the feed's, then judge this print again on it.
      try {
        await rebaseTakingOver(
          tick.symbol,
          verdict.rebase.sequence,
          state,
          verdict.rebase.resumedAfterMs,
          deps,
        );
      } catch (error) {
        // Moved on since it was read (another tick, a resume, a continuation that finished): judged again.
        if (error instanceof ConditionFailedError) return LOST_RACE;
        throw error;
      }
      telemetry.warn("market's sequence ran ahead of its feed: moved onto the feed's numbering", {
        symbol: tick.symbol,
        from: highestSequence(state),
        to: verdict.rebase.sequence,
        detail: verdict.detail,
      });
      return REBASED;
    }
    if (verdict.continueJump && state?.heldJump) {
      // A print of the numbering the feed may be moving to: no other jump replaces the held one meanwhile.
      // The held print as judged, not its number alone (feed52-jump-continued-other-print).
      const continued = await markets.continueSequenceJump(tick.symbol, state.heldJump.tick, nowMs, note);
      // Its note's condition failed: the continuation went alone (or nothing), and the note alone would fail too,
      // also when the jump is no longer held (feed51-jump-double-refusal). Another held since (or none), or continued
      // later: the note alone, its condition not failing for certain on the item as it stood (feed50-jump-note-failed).
      noted = continued === 'written' || continued === 'note-refused';
    }
    if (verdict.reason === 'tick/breaker-confirming' && state?.breaker) {
      // Else the refusal leaves nothing on the market, and a sender waiting on each tick (backstop replay) waited
      // for a trace that never came (feed47-replay-breaker). Best effort: only replay reads it, so its failure does
      // not fail the tick (retried, perhaps to the tick DLQ and a page, for a refusal that stands): a replay waiting
      // on the print stops as stalled, naming the breaker (follow47-breaker-trace-best-effort).
      try {
        await markets.noteBreakerConfirming(tick.symbol, state.breaker.tick, {
          sequence: tick.sequence,
          atMs: nowMs,
        });
      } catch (error) {
        if (error instanceof InjectedCrash) throw error;
        telemetry.count(METRICS.BreakerTraceFailures.name, 1, { Market: tick.symbol });
        telemetry.warn("breaker's confirming trace not written: the refusal stands without it", {
          symbol: tick.symbol,
          sequence: tick.sequence,
          breakerSequence: state.breaker.tick.sequence,
          error: errorText(error),
        });
      }
    }
    if (note && !noted) await noteRefusal(tick, note, deps);
    // Counted once it stands (a trip refused above judges the tick again).
    // Only a configured market's: the feed's symbols are not ours to bill a metric each.
    telemetry.count(METRICS.TicksRejected.name, 1, {
      Reason: verdict.reason,
      ...(market ? { Market: tick.symbol } : {}),
    });
    return { status: 'rejected', reason: verdict.reason, detail: verdict.detail };
  }

  const accepted = toTickRecord(tick, nowMs);
  // A newer tick takes the pending one over: what it started is re-sent (acceptTick replaces its mark).
  if (pending !== undefined) await resendStarted(tick.symbol, pending, deps);
  const firstPages = await Promise.all(
    BOTH_SIDES.map((side) =>
      deps.positions.queryCrossed(tick.symbol, side, accepted.markPrice, deps.maxPositionsPerInvocation),
    ),
  );
  // A page may come back empty yet say more follows (stale index entries filtered out, shards merged):
  // the tick is then still one that crosses.
  const crossed = firstPages.some((page) => page.positions.length > 0 || page.cursor !== undefined);
  let written: MarketState;
  try {
    const bandAnchor = market && nextBandAnchor(state ?? {}, accepted, verdict, market);
    written = await markets.acceptTick(tick.symbol, accepted, state?.lastTick?.sequence, crossed, {
      // The breaker's print whole, not its number (review52-feed-breaker-guard-whole-print).
      breakerTick: state?.breaker?.tick,
      pendingSequence: pending,
      ...(state?.lastTick ? { lastTick: state.lastTick } : {}),
      // In the same write: a breaker left by a failed second write would still judge later ticks.
      closeBreaker: verdict.closeBreaker,
      ...(bandAnchor ? { bandAnchor } : {}),
    });
    // Kept for the next tick unless this one writes the market again (liquidations to start, wakes).
    if (!crossed) deps.marketStates?.set(tick.symbol, written);
  } catch (error) {
    // Another invocation recorded a tick in between: evaluate again against it.
    if (error instanceof ConditionFailedError) return cached ? STALE : LOST_RACE;
    throw error;
  }
  if (verdict.closeBreaker) {
    // The move was confirmed (or the bad print reverted): later ticks are judged against this mark again.
    telemetry.info('circuit breaker closed', { symbol: tick.symbol, reason: verdict.reason });
  }
  telemetry.count(METRICS.TicksAccepted.name, 1, { Market: tick.symbol });
  // The pages read before recording the tick are still what the index holds: start from them.
  const outcome: TickOutcome = crossed
    ? await startLiquidations(tick.symbol, accepted, BOTH_SIDES, deps, firstPages)
    : { status: 'accepted', checked: 0, enqueued: 0, needsContinuation: false };
  // After the liquidations: waking auctions must not delay the positions this mark endangers.
  // The wake marks as this tick's write found them (a sleeper may have covered one since the market was read).
  await wakeSleepers(tick.symbol, written, accepted.markPrice, deps, nowMs);
  await dropExpiredRefusals(tick.symbol, written, deps, nowMs);
  return outcome;
}

/**
 * A copy of a print the market recorded (EventBridge delivers at least once; a sender's retry): its number, its mark, and
 * a recorded stamp at most its own (toTickRecord clamps one stamped ahead). Taken already, so no refusal to trace.
 */
const redelivered = (tick: Tick, state: MarketState): boolean =>
  [state.lastTick, state.breaker?.tick].some(
    (p) =>
      p?.sequence === tick.sequence && p.markPrice === tick.markPrice && p.timestampMs <= tick.timestampMs,
  );

/**
 * The note of a refusal that records nothing else on the market (TRACED_REFUSALS), as the breaker notes the prints it
 * refuses while confirming: else a sender waiting on each tick (backstop replay) waited for a trace that never came, and
 * stopped as stalled after a minute (feed48-refusal-trace). Bounded: none when the market as read holds a trace of the
 * kind numbered as high, so a flood of one tick's copies, or of older ticks, writes nothing; nor past
 * REFUSAL_NOTES_PER_SECOND a kind.
 */
function refusalNote(
  tick: Tick,
  reason: TracedRefusal,
  state: MarketState,
  nowMs: number,
): RefusalNote | undefined {
  const stored = currentRefusals(state)[reason];
  if (stored && stored.sequence >= tick.sequence) return undefined;
  // A trace of the kind that did not read is replaced only while still as read (feed48c-trace-unreadable): met as
  // absent, every refusal of the kind wrote a note its condition failed, a write unit each.
  const unreadable = state.unreadableRefusals?.[reason];
  // A flood of ticks each numbered higher (a feed bug; all too old) wrote once a tick, on the item whose partition
  // acceptTick writes too: at most REFUSAL_NOTES_PER_SECOND a kind (review48-feed-note-flood).
  const inSecond = stored && sameSecond(stored.atMs, nowMs) ? stored.notesInSecond : 0;
  if (inSecond >= REFUSAL_NOTES_PER_SECOND) return undefined;
  return {
    reason,
    trace: {
      sequence: tick.sequence,
      // The tick's own, as it came (a held print's is clamped to our clock): a sender knows its tick by it.
      timestampMs: tick.timestampMs,
      atMs: nowMs,
      count: (stored?.count ?? 0) + 1,
      sinceMs: stored?.sinceMs ?? nowMs,
      notesInSecond: inSecond + 1,
      ...(state.resumedAfterMs === undefined ? {} : { resumedAfterMs: state.resumedAfterMs }),
    },
    ...(unreadable ? { replacing: unreadable } : {}),
  };
}

/** Writes a refusal's note alone. Best effort, as the breaker's: a failed write leaves the refusal standing. */
async function noteRefusal(tick: Tick, note: RefusalNote, deps: MarginCheckDeps): Promise<void> {
  try {
    await deps.markets.noteRefusal(tick.symbol, note.reason, note.trace, note.replacing);
  } catch (error) {
    if (error instanceof InjectedCrash) throw error;
    deps.telemetry.count(METRICS.RefusalTraceFailures.name, 1);
    deps.telemetry.warn("refusal's trace not written: the refusal stands without it", {
      symbol: tick.symbol,
      sequence: tick.sequence,
      reason: note.reason,
      error: errorText(error),
    });
  }
}

const sameSecond = (aMs: number, bMs: number): boolean => Math.floor(aMs / 1000) === Math.floor(bMs / 1000);

/**
 * Removes the refusal traces an accepted tick finds older than REFUSAL_TRACE_KEPT_MS, or noted before the market's
 * latest rebase (review48-feed-trace-expiry): each is about 90 bytes of the item every accepted tick writes, and a busy
 * market's item passed 1 KB with two, doubling the write units of every accepted tick for good. After the tick's work,
 * off its outcome; best effort (a trace left is removed by a later tick).
 */
async function dropExpiredRefusals(
  symbol: string,
  written: MarketState,
  deps: MarginCheckDeps,
  nowMs: number,
): Promise<void> {
  const expired: DroppedRefusal[] = TRACED_REFUSALS.flatMap((reason): DroppedRefusal[] => {
    const trace = written.refusals?.[reason];
    // One that does not read, at once (its age does not read either): only while still as read
    // (feed48c-trace-unreadable).
    const unreadable = written.unreadableRefusals?.[reason];
    if (unreadable) return [{ reason, trace: unreadable }];
    // Noted before the market's latest rebase (currentRefusals ignores it), or kept its hour.
    return trace &&
      (trace.resumedAfterMs !== written.resumedAfterMs || nowMs - trace.atMs > REFUSAL_TRACE_KEPT_MS)
      ? [{ reason, trace }]
      : [];
  });
  // A kind this version does not know (a later version's, during a mixed deploy or after a rollback): nothing here
  // notes over it, and it kept the item larger for good (more48b-trace-unknown-kind). Kept as a known kind's while it
  // says its age, so a later version's new kind outlives this version's ticks (feed49-unknown-kind-kept); at once
  // otherwise. Only while still as read.
  for (const [reason, trace] of Object.entries(written.unknownRefusals ?? {})) {
    const noted = trace.noted;
    if (
      !noted ||
      noted.resumedAfterMs !== written.resumedAfterMs ||
      nowMs - noted.atMs > REFUSAL_TRACE_KEPT_MS
    )
      expired.push({ reason, trace });
  }
  if (expired.length === 0) return;
  try {
    await deps.markets.dropRefusals(symbol, expired);
  } catch (error) {
    if (error instanceof InjectedCrash) throw error;
    deps.telemetry.count(METRICS.RefusalTraceFailures.name, 1);
    deps.telemetry.warn('expired refusal traces not removed: a later accepted tick removes them', {
      symbol,
      reasons: expired.map((e) => e.reason).join(', '),
      error: errorText(error),
    });
  }
}

/** The prints a rejection was judged on: its trip or hold lands only while they stand (not their numbers alone). */
const judgedOn = (state: MarketState | undefined): JudgedMarket => ({
  lastTick: state?.lastTick,
  breakerTick: state?.breaker?.tick,
});

/** The breaker's alarm and warning. A retry of the tripping tick reports it again: an alarm counts at least once. */
function reportTrip(tick: Tick, reason: string, detail: string, deps: MarginCheckDeps): void {
  deps.telemetry.count(METRICS.CircuitBreakerTripped.name, 1, { Market: tick.symbol });
  deps.telemetry.warn('circuit breaker tripped', {
    symbol: tick.symbol,
    sequence: tick.sequence,
    timestampMs: tick.timestampMs,
    reason,
    detail,
  });
}

/**
 * Wakes the sleeping auctions whose wake mark the accepted mark reached (domain/sleep.ts): their step messages
 * go out now instead of when planned (services/wake.ts). Costs calls only when the mark reaches a side's wake
 * mark: one or two queries of the sleepers, their messages (batches of 10, several in flight), one conditional
 * update. A failure costs only
 * the early wake: the auctions still step when their own messages come, so it is reported and the tick goes on.
 */
async function wakeSleepers(
  symbol: string,
  state: MarketState | undefined,
  mark: PriceE8,
  deps: MarginCheckDeps,
  nowMs: number,
): Promise<void> {
  for (const direction of ['SELL', 'BUY'] as const) {
    const wakeMark = state?.wakeMarks?.[direction];
    if (wakeMark === undefined || !wakes(direction, wakeMark, mark)) continue;
    let failure: string | undefined;
    try {
      const out = await wake(deps, symbol, direction, mark, nowMs, deps.maxWakesPerTick);
      // Those sent are woken, of a side whose sends partly failed too (wake-part-restarts, session 42).
      deps.telemetry.count(METRICS.AuctionsWoken.name, out.woken, { Market: symbol });
      failure = out.failure;
      // Conditional on the mark and its covers as read before the query: a sleeper that covered its own mark
      // since (found by the query or not) keeps it. Kept after a failed send: the next tick reaching it wakes the
      // side again (those already woken are deduped by their step numbers).
      if (failure === undefined) {
        await deps.markets.replaceWakeMark(
          symbol,
          direction,
          wakeMark,
          out.next,
          state?.wakeCovers?.[direction],
        );
        deps.marketStates?.delete(symbol);
      }
    } catch (error) {
      failure = error instanceof Error ? error.message : String(error);
    }
    if (failure !== undefined) {
      deps.telemetry.count(METRICS.AuctionWakeFailures.name, 1, { Market: symbol });
      deps.telemetry.warn('sleeping auctions not woken; they step when their messages come', {
        symbol,
        direction,
        error: failure,
      });
    }
  }
}

/**
 * Every tick checks both sides, whichever way the mark moved: a falling mark could only cross longs if every OPEN
 * position were healthy at the last accepted mark, but nothing makes that atomic (the index is eventually
 * consistent; a position is made OPEN at the mark its writer read, which a tick may have passed meanwhile). One
 * more index Query per tick (the two run together) buys that such a position waits one tick, not a reversal.
 */
const BOTH_SIDES: readonly Side[] = ['LONG', 'SHORT'];

async function resumeTick(
  symbol: string,
  tick: AcceptedTick,
  deps: MarginCheckDeps,
  resend: boolean,
): Promise<TickOutcome> {
  if (resend) await resendStarted(symbol, tick.sequence, deps);
  return startLiquidations(symbol, tick, ['LONG', 'SHORT'], deps);
}

/**
 * How a next slice's record begins its history (it is listed under its first slice's tick). Its message is its
 * previous slice's to send, after the last resort's cooldown when that slice needed it: a tick never sends it.
 */
export const NEXT_SLICE_NOTE = 'next slice of';

export const isNextSlice = (l: LiquidationRecord): boolean =>
  l.history[0]?.note?.startsWith(NEXT_SLICE_NOTE) === true;

/**
 * A started liquidation's message: with its position and market, its first delivery reads all three at once. Due
 * when its tick was stamped (its record's first entry), so its lateness counts the tick's whole way to the consumer.
 */
const startMessage = (l: LiquidationRecord): LiquidationMessage => ({
  liquidationId: l.id,
  positionId: l.positionId,
  symbol: l.symbol,
  ...(l.history[0] ? { dueAtMs: l.history[0].atMs } : {}),
});

/** What re-sending a tick's started liquidations needs (margin-check, and admin's resumeFeed taking a tick over). */
export type ResendDeps = Pick<MarginCheckDeps, 'liquidations' | 'liquidationQueue'> & {
  readonly telemetry?: Telemetry;
};

/**
 * Re-sends the messages of liquidations a tick started that are still QUEUED (a crash may have lost them).
 * Returns how many were sent.
 */
export async function resendStarted(symbol: string, sequence: number, deps: ResendDeps): Promise<number> {
  const started = await deps.liquidations.listByTick(tickKeyOf(symbol, sequence));
  const queued = started.filter((l) => l.state === 'QUEUED' && !isNextSlice(l));
  if (queued.length > 0) {
    // A tick that crossed a whole book may have started 100,000: several calls in flight at a time.
    await sendSpread(
      deps.liquidationQueue,
      queued.map((l) => encodeMessage(startMessage(l))),
    );
    deps.telemetry?.info('re-sent liquidations of an interrupted tick', {
      symbol,
      sequence,
      count: queued.length,
    });
  }
  return queued.length;
}

/**
 * Moves the market onto a numbering restarted below it (margin-check's rebase, admin's resumeFeed). A tick of the
 * old numbering still starting liquidations (its continuation lost or late) is taken over, as a newer accepted
 * tick takes it: what it started is re-sent first, and the rebase, conditional on the state read, removes its
 * pending mark only as read (ConditionFailedError otherwise). Returns how many liquidations were re-sent.
 */
export async function rebaseTakingOver(
  symbol: string,
  sequence: number,
  state: MarketState,
  resumedAfterMs: number,
  deps: ResendDeps & { readonly markets: Pick<MarketRepository, 'rebaseSequence'> },
): Promise<number> {
  const pending = state.pendingSequence;
  const resent = pending === undefined ? 0 : await resendStarted(symbol, pending, deps);
  await deps.markets.rebaseSequence(symbol, sequence, state, resumedAfterMs);
  return resent;
}

/** Liquidations begun together, then enqueued with one SendMessageBatch (its limit: 10 entries). */
const BEGIN_BATCH = 10;

async function startLiquidations(
  symbol: string,
  tick: AcceptedTick,
  sides: readonly Side[],
  deps: MarginCheckDeps,
  firstPages?: readonly CrossedPage[],
): Promise<TickOutcome> {
  const { positions, telemetry } = deps;
  const m = marketConfig(deps.config, symbol).maintenanceMargin;
  const started: LiquidationRecord[] = [];
  let checked = 0;
  let needsContinuation = false;

  for (const [index, side] of sides.entries()) {
    const budget = deps.maxPositionsPerInvocation - checked;
    if (budget <= 0) {
      needsContinuation = true;
      break;
    }
    const page = firstPages?.[index] ?? (await positions.queryCrossed(symbol, side, tick.markPrice, budget));
    // Both sides' first pages were read with the whole budget: the second side gets what the first left.
    const read = page.positions.length > budget ? page.positions.slice(0, budget) : page.positions;
    checked += read.length;
    if (page.cursor !== undefined || read !== page.positions) needsContinuation = true;
    // The index says crossed; the exact re-check guards against a stale index entry.
    const crossed = read.filter((p) => p.state === 'OPEN' && isLiquidatable(p, tick.markPrice, m));
    // A batch at a time: its transactions run together and its messages leave before the next batch starts, so
    // the first liquidations are enqueued after one round trip, not after all of them.
    for (let at = 0; at < crossed.length; at += BEGIN_BATCH) {
      const positionsOfBatch = crossed.slice(at, at + BEGIN_BATCH);
      const results = await Promise.allSettled(positionsOfBatch.map((p) => beginOrRetry(p, tick, m, deps)));
      const begun: LiquidationRecord[] = [];
      for (const result of results) {
        // Anything but a failed condition fails the tick, which stays pending: its retry re-sends what was
        // begun, in order, and goes on.
        if (result.status === 'rejected') throw result.reason;
        if (result.value) begun.push(result.value);
      }
      if (begun.length > 0) {
        await deps.liquidationQueue.sendBatch(begun.map((l) => encodeMessage(startMessage(l))));
        started.push(...begun);
      }
    }
    // After the starts: they come first.
    if (crossed.length < read.length) await repriceHealthy(read, tick.markPrice, m, deps);
  }

  if (!needsContinuation) await deps.markets.clearPending(symbol, tick);
  telemetry.count(METRICS.PositionsChecked.name, checked, { Market: symbol });
  telemetry.count(METRICS.LiquidationsEnqueued.name, started.length, { Market: symbol });
  return { status: 'accepted', checked, enqueued: started.length, needsContinuation };
}

/**
 * OPEN positions the index holds as crossed that the exact check finds healthy: priced by other rules (a lowered
 * maintenance margin before `positions reindex` reached them). Priced again by this deployment's rules, they leave
 * the crossed range: else they would head every page of this tick's continuations and of every later tick, and
 * the positions crossed behind them would never be read (stale-index-head). A position written since is left to
 * its writer, which priced it.
 */
async function repriceHealthy(
  read: readonly PositionRecord[],
  mark: PriceE8,
  maintenanceMargin: bigint,
  deps: MarginCheckDeps,
): Promise<void> {
  const healthy = read.filter((p) => p.state === 'OPEN' && !isLiquidatable(p, mark, maintenanceMargin));
  await Promise.all(
    healthy.map(async (position) => {
      const priced = withLiquidationPrice(position, deps.config);
      if (priced.liquidationPrice === position.liquidationPrice) return;
      try {
        await deps.positions.reprice(position.id, priced.liquidationPrice, position.version);
        deps.telemetry.count(METRICS.PositionsRepriced.name, 1, { Market: position.symbol });
      } catch (error) {
        if (!(error instanceof ConditionFailedError)) throw error;
      }
    }),
  );
}

/**
 * Starts the liquidation of a crossed position; undefined when it is not to be started here. A failed condition
 * means the position changed since the index read: taken by a concurrent invocation of a tick (which enqueues
 * it), or written by anyone else (a settlement, a reindex), which would leave it crossed and unstarted until the
 * next tick. So it is read again and, still OPEN and crossed, begun once more on the fresh record.
 */
async function beginOrRetry(
  position: PositionRecord,
  tick: AcceptedTick,
  maintenanceMargin: bigint,
  deps: MarginCheckDeps,
): Promise<LiquidationRecord | undefined> {
  let current = position;
  for (let attempt = 1; ; attempt++) {
    const liquidation = newLiquidation(current, tick);
    try {
      await deps.liquidations.begin(current, liquidation);
      return liquidation;
    } catch (error) {
      if (!(error instanceof ConditionFailedError)) throw error;
      if (attempt >= 2) return undefined;
    }
    const fresh = await deps.positions.get(position.id);
    if (fresh?.state !== 'OPEN' || !isLiquidatable(fresh, tick.markPrice, maintenanceMargin))
      return undefined;
    current = fresh;
  }
}

function newLiquidation(position: PositionRecord, tick: AcceptedTick): LiquidationRecord {
  return {
    id: liquidationIdOf(position),
    positionId: position.id,
    symbol: position.symbol,
    side: position.side,
    state: 'QUEUED',
    tickKey: tickKeyOf(position.symbol, tick.sequence),
    triggerMark: tick.markPrice,
    remainingSize: position.size,
    marketFills: [],
    history: [{ atMs: tick.timestampMs, state: 'QUEUED', note: `crossed at ${formatPrice(tick.markPrice)}` }],
    version: 0,
  };
}

/** The index key of an OPEN position (recomputed whenever its size or collateral changes). */
export function withLiquidationPrice(
  position: Omit<PositionRecord, 'liquidationPrice'>,
  config: RiskConfig,
): PositionRecord {
  const m = marketConfig(config, position.symbol).maintenanceMargin;
  return { ...position, liquidationPrice: liquidationPrice(position, m) };
}
