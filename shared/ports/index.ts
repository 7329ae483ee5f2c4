import type { AdlCandidate } from '../domain/adl.ts';
import type { AdlOrder } from '../domain/adl-threshold.ts';
import { FUND_KINDS, isCharted, signProblem } from '../domain/fund-statement.ts';
import type { InsuranceState } from '../domain/insurance.ts';
import type { JournalAudit } from '../domain/journal-audit.ts';
import type { Fill, LiquidationState, Position, SetAside, Side, Unreadable } from '../domain/model.ts';
import { isTerminal } from '../domain/model.ts';
import type { ProviderFills, UnreadableProviderFills } from '../domain/provider-fills.ts';
import type { TickRejectReason } from '../domain/tick.ts';
import { type BaseE8, formatQuoteGrouped, type PriceE8, type QuoteE6 } from '../domain/units.ts';
import type { SettlementAmounts } from '../domain/waterfall.ts';

/**
 * Ports: what the services need from the outside world. Two families of adapters implement them, the AWS
 * adapters (DynamoDB, SQS, EventBridge) and the embedded in-process adapters (crash replay, fast tests), and
 * both pass the same contract suite (test/contract), so their semantics cannot drift.
 *
 * Conventions:
 * - Every state change is conditional. A failed condition throws ConditionFailedError; the caller decides
 *   whether that means "someone else did it" (idempotent skip) or a real conflict.
 * - Transient faults (throttling, timeouts) throw anything else and end in a retry; so does a whole-item write
 *   the AWS adapters refuse over an item a newer Backstop wrote during a rolling deploy (NewerWriterError,
 *   adapters/aws/writer-schema.ts: never a failed condition, which a re-read would meet again).
 */

export class ConditionFailedError extends Error {
  override readonly name = 'ConditionFailedError';
}

/** A deliberate process death injected by tests between two side effects (see CrashHook). */
export class InjectedCrash extends Error {
  override readonly name = 'InjectedCrash';
}

/** Called by adapters right after each side effect; tests throw InjectedCrash from it at chosen points. */
export type CrashHook = (point: string) => void;

// --- Positions -------------------------------------------------------------------------------------------

export interface PositionRecord extends Position {
  /** Index key of an OPEN position: the price at or beyond which it is liquidatable. */
  readonly liquidationPrice: PriceE8;
}

export interface CrossedPage {
  readonly positions: readonly PositionRecord[];
  /** Present when more positions may cross: pass it back to continue. */
  readonly cursor?: string;
}

export interface PositionRepository {
  /**
   * How far ADL's orders (queryAdlOrder) may lag the writes, in ms: 0 when they show every write at once; a GSI's
   * propagation otherwise. A ranking on them that finds nobody left to give is confirmed this long after.
   */
  readonly adlOrdersLagMs: number;
  get(id: string): Promise<PositionRecord | undefined>;
  /** Creates an OPEN position (fails if the id exists). */
  create(position: PositionRecord): Promise<void>;
  /**
   * OPEN positions of a market side whose liquidation price the mark crosses: longs with
   * liquidationPrice >= mark, shorts with liquidationPrice <= mark. Ordered from the most endangered.
   */
  queryCrossed(
    symbol: string,
    side: Side,
    mark: PriceE8,
    limit: number,
    cursor?: string,
  ): Promise<CrossedPage>;
  /**
   * Every OPEN position of a market side in one of ADL's two orders, neither of which moves with the mark
   * (shared/domain/adl-threshold.ts): 'entry', the most profitable first at any mark (longs by ascending entry
   * price, shorts descending); 'leverage', by descending adlLeverageKey(size, collateral). Ties in the index's order.
   */
  queryAdlOrder(
    symbol: string,
    side: Side,
    order: AdlOrder,
    limit: number,
    cursor?: string,
  ): Promise<CrossedPage>;
  /** Replaces the position if its version is `expectedVersion` (the new record carries version + 1). */
  replace(next: PositionRecord, expectedVersion: number): Promise<void>;
  /**
   * Sets the liquidation price of an OPEN position at version `expectedVersion` (ConditionFailedError
   * otherwise, never for its own write retried), version + 1, and nothing else: the position stays in the index partition it is stored in,
   * whatever index shards the caller writes (an operator's repricing must not move it out of the functions'
   * reads).
   */
  reprice(id: string, liquidationPrice: PriceE8, expectedVersion: number): Promise<void>;
}

// --- Markets ---------------------------------------------------------------------------------------------

export interface AcceptedTick {
  readonly sequence: number;
  readonly markPrice: PriceE8;
  readonly indexPrice?: PriceE8;
  /** Event time, epoch ms. */
  readonly timestampMs: number;
}

export interface MarketState {
  readonly symbol: string;
  readonly lastTick?: AcceptedTick;
  /** Sequence of an accepted tick whose liquidations may not all be enqueued yet (crash recovery). */
  readonly pendingSequence?: number;
  /** Highest continuation of the pending tick claimed so far (claimSegment); absent before the first. */
  readonly pendingSegment?: number;
  readonly breaker?: {
    readonly reason: string;
    readonly trippedAtMs: number;
    readonly tick: AcceptedTick;
    /**
     * The latest print refused as confirming the held move too soon (tick/breaker-confirming): its sequence and
     * our clock. Only a trace, for a sender that waits on each tick (`backstop replay`, `inject`), which numbers past
     * it too (nextSequence): no rule of margin-check reads it.
     */
    readonly confirming?: BreakerConfirming;
  };
  /** The mark that opened the market's price window (domain/tick.ts, window band); absent without a window. */
  readonly bandAnchor?: { readonly markPrice: PriceE8; readonly timestampMs: number };
  /**
   * Per auction direction, a wake mark that covers every sleeping auction of the market: SELL, at most the lowest
   * of theirs; BUY, at least the highest. A tick whose mark reaches it wakes the auctions whose own mark it reached.
   */
  readonly wakeMarks?: { readonly SELL?: PriceE8; readonly BUY?: PriceE8 };
  /**
   * Per direction, how many covers (coverWakeMark) the side has had: a tick replaces the wake mark only if none
   * came since it read the market, as a sleeper that covered in between may not be among those it queried.
   */
  readonly wakeCovers?: { readonly SELL?: number; readonly BUY?: number };
  /**
   * Set when the feed was resumed below its sequence (rebaseSequence): the old feed's ticks are stamped at or
   * before it, so one delivered again is refused (evaluateTick).
   */
  readonly resumedAfterMs?: number;
  /**
   * Per refusal that records nothing else (TRACED_REFUSALS), the latest tick refused so (noteRefusal). Only a trace,
   * for a sender that waits on each tick (`backstop replay`) and for `backstop status`: no rule of margin-check reads
   * it. One noted before the market's latest rebase is stale (currentRefusals).
   */
  readonly refusals?: RefusalTraces;
  /**
   * Per kind, a refusal trace stored in a shape this version cannot read (a later version's, an edit by hand), kept
   * opaque (feed48c-trace-unreadable): the kind's next note replaces it only while it is still exactly as read, and
   * the next accepted tick removes it so. Never in `refusals`: status and replay show nothing of it.
   */
  readonly unreadableRefusals?: UnreadableRefusalTraces;
  /**
   * A refusal trace of a kind this version does not know (a later version's new reason, met during a mixed deploy or
   * after a rollback), by that kind, kept opaque (more48b-trace-unknown-kind): nothing here notes over it. An accepted
   * tick removes it as it does a known kind's, an hour after it was noted or once noted before the latest rebase, when
   * it says when (UnknownRefusalTrace.noted), and at once otherwise, only while still exactly as read; a rebase
   * removes it with the others. Never in `refusals`: status and replay show nothing of it.
   */
  readonly unknownRefusals?: UnknownRefusalTraces;
  /**
   * Counts the changes to the market's providers (bumpProvidersEpoch; absent: none yet). An auction that plans a
   * sleep on the providers it listed commits on the epoch it read before listing them (ProvidersEpochCheck): a
   * provider registered in between fails that commit, so the auction plans again with it instead of sleeping
   * through a wake the registration sent before the auction slept.
   */
  readonly providersEpoch?: number;
  /**
   * The providers epoch at which the latest wake of every sleeper of the market began (its bump): a spent provider's,
   * marked once its auction's record keeps that beginning, or a registration's, once it is done or its rest recorded
   * and sent on (markSpentWake; absent: none yet). Every such wake wakes all of the market's sleepers, so one begun
   * later than a spent provider's wake's bump covers the rest of that one, which stops (services/sleeping.ts
   * wakeSpent). A bump whose delivery lost its record write marks nothing: its wake went no further than that delivery.
   */
  readonly spentWakeEpoch?: number;
  /**
   * A registration's wake of the market's sleepers going on in continuations (services/registration-wake.ts):
   * absent when none went past the admin call.
   */
  readonly registrationWake?: RegistrationWake;
  /**
   * Per direction, how many last-resort orders of the market's liquidations filled anything (countLastResortFill;
   * absent: none yet). A hint, not money: a slice waiting for the book that sees it grow knows the book came back
   * within the bound in between and a sibling took it, so that wait does not count towards its dead letter.
   */
  readonly lastResortFills?: { readonly SELL?: number; readonly BUY?: number };
  /**
   * A tick numbered off the market's sequence (domain/tick.ts: far above it, or behind it with a later stamp), held
   * until a print continues from it; heldAtMs: our clock.
   */
  readonly heldJump?: {
    readonly tick: AcceptedTick;
    readonly heldAtMs: number;
    readonly continuedAtMs?: number;
  };
}

/**
 * How far a registration's wake of every sleeper of a market went (MarketState.registrationWake). Its continuation
 * messages name it by `epoch` and go on from `wokenTo`; `part` counts its writes, each conditional on the last.
 */
export interface RegistrationWake {
  /** The providers epoch the registration's bump left: the wake's name (a later registration's is higher). */
  readonly epoch: number;
  /** Parts recorded so far (the one that began it: 1). */
  readonly part: number;
  /** The last sleeper woken, of the market side `direction` (SELL, then BUY). Absent: from the first. */
  readonly wokenTo?: Sleeper & { readonly direction: 'BUY' | 'SELL' };
  /** Every sleeper woken: later deliveries of its continuation do nothing. */
  readonly done?: boolean;
  /** The last part met a failed send after some went: as AuctionRecord.spentWakeSendFailed (wakes43b). */
  readonly sendFailed?: true;
}

/** A print refused as confirming a held move too soon (MarketState.breaker.confirming). */
export interface BreakerConfirming {
  readonly sequence: number;
  readonly atMs: number;
}

/**
 * The refusals margin-check notes on the market (noteRefusal): those that leave no other record there. A trip or
 * re-arm leaves the breaker, tick/breaker-confirming its own trace (breaker.confirming), tick/unknown-symbol is no
 * market of ours, and tick/contended or tick/continuation-done refuse no fresh print.
 */
export const TRACED_REFUSALS = [
  'tick/non-positive',
  'tick/duplicate',
  'tick/out-of-order',
  'tick/future',
  'tick/too-old',
  'tick/index-band',
  'tick/sequence-jump',
  'tick/sequence-behind',
  'tick/sequence-confirming',
] as const satisfies readonly TickRejectReason[];

export type TracedRefusal = (typeof TRACED_REFUSALS)[number];

export const isTracedRefusal = (reason: string): reason is TracedRefusal =>
  (TRACED_REFUSALS as readonly string[]).includes(reason);

/** The latest tick refused of a kind (MarketState.refusals), and how many of the kind were noted. */
export interface RefusalTrace {
  readonly sequence: number;
  /** The tick's own stamp, as it came: a sender knows its tick by its sequence and stamp. */
  readonly timestampMs: number;
  /** When margin-check refused it (its clock). */
  readonly atMs: number;
  /**
   * Ticks of the kind noted since `sinceMs` (a note a sequence at most, so a flood of one tick's copies counts once;
   * two notes racing may count one).
   */
  readonly count: number;
  readonly sinceMs: number;
  /**
   * Notes of the kind in the second of `atMs` (this one included): at most REFUSAL_NOTES_PER_SECOND a kind, so a flood
   * of ticks each numbered higher writes the market's item no faster than that (review48-feed-note-flood).
   */
  readonly notesInSecond: number;
  /** The market's resumedAfterMs when noted (absent: none): a rebase since sets another, and the trace is stale. */
  readonly resumedAfterMs?: number;
}

/**
 * Notes of a refusal kind a market takes in a second at most (margin-check's noteRefusal): the item every accepted tick
 * writes shares its partition's write units with them. Above what a sender waiting on each tick can send (`backstop
 * replay` looks every 100 ms), so none of its ticks goes unnoted.
 */
export const REFUSAL_NOTES_PER_SECOND = 10;

/**
 * How long a refusal trace stays on the market (review48-feed-trace-expiry): an accepted tick later than this after
 * it removes it, as every trace makes the item that every accepted tick writes (a write unit a KB) about 90 bytes
 * larger, and the traces, once noted, stayed until a rebase.
 */
export const REFUSAL_TRACE_KEPT_MS = 60 * 60 * 1000;

export type RefusalTraces = { readonly [K in TracedRefusal]?: RefusalTrace };

/**
 * A refusal trace to note in another write of the market (holdSequenceJump, continueSequenceJump), as noteRefusal's
 * arguments: its trace carries the tick's own stamp, not the clamped one of a held print (toTickRecord), since a sender
 * knows its tick by its sequence and stamp.
 */
export interface RefusalNote {
  readonly reason: TracedRefusal;
  readonly trace: RefusalTrace;
  readonly replacing?: UnreadableRefusalTrace;
}

/**
 * What continueSequenceJump wrote: 'written', the continuation and the note given (if any) in one write; 'note-refused',
 * the note's condition having failed (written apart it would fail again: feed50-jump-note-failed), the continuation
 * alone, or nothing when a continuation as late or later stands (review50-feed-jump-continued-back) or the jump is no
 * longer held (feed51-jump-double-refusal); 'not-held', nothing, another jump or none being held; 'continued-later',
 * nothing, the jump having been continued later than `atMs` (feed51-jump-continued-back-alone). Its caller writes the
 * note given alone after 'not-held' and 'continued-later' only: the note's condition held on the item as it stood, or
 * could not be judged there (a trace or rebase that does not read: the AWS store's refusesNote).
 */
export type JumpContinued = 'written' | 'note-refused' | 'not-held' | 'continued-later';

/** A refusal trace stored in a shape this version cannot read (MarketState.unreadableRefusals). */
// Its `stored` is compared whole by the adapter that read it.
export type UnreadableRefusalTrace = Unreadable;

export type UnreadableRefusalTraces = { readonly [K in TracedRefusal]?: UnreadableRefusalTrace };

/**
 * A trace of a kind that is no TracedRefusal of this version (MarketState.unknownRefusals), opaque. `noted`: when it
 * was noted and under which rebase, where it carries them as this version's traces do (`at`, `resumed`): a later
 * version's new kind, met during a mixed deploy, is then kept as long as a known kind's trace (feed49-unknown-kind-kept).
 * Absent: it does not say its age, and the next accepted tick removes it at once.
 */
export interface UnknownRefusalTrace extends UnreadableRefusalTrace {
  readonly noted?: { readonly atMs: number; readonly resumedAfterMs?: number };
}

/** By a kind that is no TracedRefusal of this version (MarketState.unknownRefusals). */
export type UnknownRefusalTraces = { readonly [kind: string]: UnknownRefusalTrace };

/** A trace an accepted tick removes (dropRefusals): of a kind known, or, opaque, of a kind this version does not know. */
export type DroppedRefusal =
  | { readonly reason: TracedRefusal; readonly trace: RefusalTrace | UnreadableRefusalTrace }
  | { readonly reason: string; readonly trace: UnreadableRefusalTrace };

export const isUnreadableRefusal = (
  trace: RefusalTrace | UnreadableRefusalTrace,
): trace is UnreadableRefusalTrace => 'unreadable' in trace;

/**
 * The market's refusal traces noted since its latest rebase: one noted before it (numbered in the numbering left) is
 * left out, also when a version that did not know the traces rebased the market and left it there (they compare the
 * resumedAfterMs every rebase writes).
 */
export function currentRefusals(
  state: Pick<MarketState, 'refusals' | 'resumedAfterMs'> | undefined,
): RefusalTraces {
  const current: { [K in TracedRefusal]?: RefusalTrace } = {};
  for (const reason of TRACED_REFUSALS) {
    const trace = state?.refusals?.[reason];
    if (trace && trace.resumedAfterMs === state?.resumedAfterMs) current[reason] = trace;
  }
  return current;
}

/** A pending tick: the last tick, by its sequence and its recorded stamp. */
export type PendingTick = Pick<AcceptedTick, 'sequence' | 'timestampMs'>;

/** What a tick was judged on besides the last tick: the breaker's tick and the pending mark (undefined: none). */
export interface MarketReadGuard {
  /**
   * The breaker's print as read, whole: on a market with no last tick a feed resumed below its first print numbers
   * a new print as that one was, and re-arms the breaker with it (review52-feed-breaker-guard-whole-print).
   */
  readonly breakerTick: PrintAsRead | undefined;
  readonly pendingSequence: number | undefined;
  /**
   * The last tick's mark and time as read: a feed resumed below its last sequence (rebaseSequence) repeats
   * sequence numbers, so a state read before the resume can match on the sequence alone.
   */
  readonly lastTick?: Pick<AcceptedTick, 'markPrice' | 'timestampMs'>;
  /** The tick closes the breaker it was judged on: removed in the same write. */
  readonly closeBreaker?: boolean;
  /** The window band's anchor once the tick is recorded, written with it (absent: the stored one is kept). */
  readonly bandAnchor?: { readonly markPrice: PriceE8; readonly timestampMs: number };
}

export interface MarketRepository {
  get(symbol: string): Promise<MarketState | undefined>;
  /**
   * Records `tick` as the last accepted tick if the stored last sequence is `expectedLastSequence`
   * (undefined: none yet) and, given `guard`, the breaker (its print, whole) and the pending mark are still as read
   * (else ConditionFailedError). `pending` marks that its liquidations are still being enqueued. Returns the state as
   * written (with what others wrote, such as wake marks).
   */
  acceptTick(
    symbol: string,
    tick: AcceptedTick,
    expectedLastSequence: number | undefined,
    pending: boolean,
    guard?: MarketReadGuard,
  ): Promise<MarketState>;
  /**
   * Clears the pending mark of `tick` (a no-op if another tick is pending). The pending tick is the last tick,
   * known by its sequence and its recorded stamp: after a resume or a rebase another numbering's tick may carry
   * the same sequence.
   */
  clearPending(symbol: string, tick: PendingTick): Promise<void>;
  /**
   * Claims continuation `segment` (>= 1) of the pending tick `tick`: true when it is pending and no segment >=
   * `segment` was claimed before (the first attempt of this continuation), false otherwise (a retry or duplicate of
   * it, or the tick is no longer pending).
   */
  claimSegment(symbol: string, tick: PendingTick, segment: number): Promise<boolean>;
  /**
   * Trips the breaker with `tick`, or re-arms it when it holds an older tick; given `judged`, only while the last
   * accepted tick and the breaker's tick (undefined: none) are still the prints the rejection was judged on, and then
   * whatever the held tick's number (a print below a bad one numbered ahead of the feed re-arms it). False when
   * nothing was written.
   */
  tripBreaker(
    symbol: string,
    reason: string,
    tick: AcceptedTick,
    atMs: number,
    judged?: JudgedMarket,
  ): Promise<boolean>;
  /**
   * Removes the breaker, whatever print it holds; a no-op when none. Called by tests alone, to set a market up: no
   * service or operator command resets a breaker, which closes in the closing tick's own write (acceptTick's
   * closeBreaker). Conditional on a breaker being there, not on the print it holds, so a retry after a lost answer
   * removes a breaker tripped in between: a caller on a real path would need it conditional on the breaker as read
   * (feed52-breaker-reset-checked).
   */
  resetBreaker(symbol: string): Promise<void>;
  /**
   * Records `confirming` as the print the breaker refused last while the move it holds persists (breaker.confirming),
   * only while the breaker holds `breakerTick` (its sequence, mark and stamp) and no print numbered as high or higher
   * is recorded there; a no-op otherwise. A trace for senders, written after the refusal stands.
   */
  noteBreakerConfirming(
    symbol: string,
    breakerTick: PrintAsRead,
    confirming: BreakerConfirming,
  ): Promise<void>;
  /**
   * Notes `trace` as the latest tick refused as `reason` (refusals), only while the market's resumedAfterMs is the
   * trace's (no rebase since it was judged) and the stored trace of the kind is numbered lower or stale (noted before
   * the latest rebase); a no-op otherwise. Given `replacing` (the kind's trace as read, unreadable), instead only while
   * the stored one is still exactly that, whatever a note since numbered. Creates the market's item if needed. A trace
   * for senders, written after the refusal stands.
   */
  noteRefusal(
    symbol: string,
    reason: TracedRefusal,
    trace: RefusalTrace,
    replacing?: UnreadableRefusalTrace,
  ): Promise<void>;
  /**
   * Removes the refusal traces given, each only while the market holds it as given (its sequence and atMs: a note
   * since replaces it and stays; an unreadable one, or one of a kind unknown, exactly as read); a no-op for those not
   * so. An accepted tick's clean-up (REFUSAL_TRACE_KEPT_MS).
   */
  dropRefusals(symbol: string, traces: readonly DroppedRefusal[]): Promise<void>;
  /**
   * Holds `tick` as the market's sequence jump, replacing any held one, only while the last accepted tick, the
   * breaker's tick and the held jump are the prints the rejection was judged on, the held one last continued when read
   * (JudgedJump.heldContinuedAtMs). Given `note`, notes it in the same
   * write, which then lands only while the note's own condition holds too (noteRefusal's): one write for the refused
   * jump, not two (feed49-jump-one-write). False when nothing was written. acceptTick and rebaseSequence remove it.
   */
  holdSequenceJump(
    symbol: string,
    tick: AcceptedTick,
    atMs: number,
    judged: JudgedJump,
    note?: RefusalNote,
  ): Promise<boolean>;
  /**
   * Records that a print continued from the held jump `heldTick` (its continuedAtMs, `atMs`); a no-op when another is
   * held, or none, or it was continued later than `atMs` (never set back: a lost answer's retry, or a print judged
   * before another and written after it). The held print is matched whole (sequence, mark and stamp, as read): after a
   * rebase, or a feed restarted on its old numbers, another print may be held under its number
   * (feed52-jump-continued-other-print). Given `note`, notes it in the same write while its condition holds too, else
   * records the continuation alone (JumpContinued).
   */
  continueSequenceJump(
    symbol: string,
    heldTick: PrintAsRead,
    atMs: number,
    note?: RefusalNote,
  ): Promise<JumpContinued>;
  /**
   * A feed that restarted counts its sequence again: lowers the last tick's sequence (and a tripped breaker's)
   * to `sequence`, keeping their marks and times, so the feed's next ticks (above it) are judged as usual. A
   * market with no last tick yet (its first print waits for a second) lowers the breaker's tick alone.
   * ConditionFailedError when there is no such tick above `sequence`, or the market changed since `expected` was
   * read (its last tick, breaker or pending tick). A pending tick read is taken over (removed, as acceptTick does:
   * the caller re-sends what it started first); a held jump, the breaker's confirming trace and the refusal traces, of
   * the numbering left, are removed: those of every kind `expected` holds, a kind this version does not know included
   * (feed49-resume-unknown-kinds), in the same write. `resumedAfterMs`: the old feed's ticks are stamped at or before it.
   */
  rebaseSequence(
    symbol: string,
    sequence: number,
    expected: MarketState,
    resumedAfterMs: number,
  ): Promise<MarketState>;
  /**
   * Lets the side's wake mark cover `wakeMark`: sets it when absent or not covering it (SELL: above it; BUY:
   * below it), and counts the cover (wakeCovers) either way. Creates the market's item if needed.
   * `likelyCovered`: what the caller last read (an adapter may try the matching write first).
   */
  coverWakeMark(
    symbol: string,
    direction: 'BUY' | 'SELL',
    wakeMark: PriceE8,
    likelyCovered?: boolean,
  ): Promise<void>;
  /**
   * Replaces the side's wake mark when it is still `expected` and the side has had `covers` covers (undefined:
   * none), as read before the sleepers were queried (undefined `next` removes it): true when it was replaced,
   * false when a sleeper covered its own mark in between (the mark then stays: a wake too early is harmless).
   */
  replaceWakeMark(
    symbol: string,
    direction: 'BUY' | 'SELL',
    expected: PriceE8,
    next: PriceE8 | undefined,
    covers: number | undefined,
  ): Promise<boolean>;
  /**
   * Counts a change to the market's providers (a provider registered, its terms changed, or it left): bumps
   * providersEpoch, creating the market's item if needed. Done after the provider's write, before its sleepers
   * are woken. Returns the epoch the bump left. One call bumps once, also when its write was retried (AWS: unless
   * another call's bump landed between the write and its retry).
   */
  bumpProvidersEpoch(symbol: string): Promise<number>;
  /**
   * Marks the market's latest wake of every sleeper (spentWakeEpoch): it takes `epoch` unless it is already that or
   * later, creating the market's item if needed.
   */
  markSpentWake(symbol: string, epoch: number): Promise<void>;
  /**
   * Records how far a registration's wake went: `wake` replaces the market's registrationWake when it is the wake's
   * part `expectedPart` as read (same epoch and part), or, `expectedPart` undefined (the wake's first record), when
   * there is none or one of a lower epoch (a wake begun earlier, which this one covers). False when it is not (another
   * delivery moved it on, or a later registration's wake began). Creates the market's item if needed.
   */
  recordRegistrationWake(
    symbol: string,
    wake: RegistrationWake,
    expectedPart: number | undefined,
  ): Promise<boolean>;
  /**
   * Counts a last-resort order on the side `direction` that filled anything: adds 1 to lastResortFills, creating
   * the market's item if needed. One call counts once, also when its write was retried (as bumpProvidersEpoch); a
   * delivery retried after it counts twice (a hint only needs to grow).
   */
  countLastResortFill(symbol: string, direction: 'BUY' | 'SELL'): Promise<void>;
}

/** The providers epoch of a market as read (0: never bumped). */
export const providersEpochOf = (market: MarketState | undefined): number => market?.providersEpoch ?? 0;

// --- Liquidations ----------------------------------------------------------------------------------------

export interface LiquidationEvent {
  readonly atMs: number;
  readonly state: LiquidationState;
  readonly note?: string;
}

/**
 * The last failed attempt at processing a record's message, recorded by the Lambda handler so that a
 * dead-lettered message's record says why (the error itself is otherwise only in the function's log).
 */
export interface ProcessingFailure {
  /** The error's name and message (handler-truncated). */
  readonly reason: string;
  /** SQS ApproximateReceiveCount of the failed delivery (0: unknown). */
  readonly attempt: number;
  readonly atMs: number;
}

/** Longest recorded failure reason: a reason is a line for an operator, not a dump (and items are bounded). */
export const MAX_FAILURE_REASON = 1000;

/**
 * What a liquidation remembers between steps, beyond the record's own fields. Owned by the services; adapters
 * store it whole (DynamoDB: one JSON attribute, schemas/context.ts) and return it exactly.
 */
export interface LiquidationContext {
  /** Size this liquidation closes (a slice, or the whole position). */
  readonly plannedSize: BaseE8;
  /**
   * Size of its market order, fixed at the claim: plannedSize's whole lots of the market's lot (the venue fills no
   * other), 0 for no order. Absent: plannedSize (a claim of a slice of whole lots, or before session 51).
   */
  readonly marketOrderSize?: BaseE8;
  /** Mark at execution (the re-check and the slippage reference) and its time. */
  readonly executionMark: PriceE8;
  readonly executionMarkAtMs?: number;
  /** Worst acceptable price of the market order (fixed at the claim, so a retry places the same order). */
  readonly limitPrice?: PriceE8;
  /** Version of the LIQUIDATING position this liquidation works on; any other version means a stale reader. */
  readonly positionVersion?: number;
  /**
   * What the claim read and the rules it applied, for `liquidations show` to answer the trader (why then, why this
   * much, the slippage and the fee), as encodeClaimedFacts writes it (domain/claimed-facts.ts: a short text, kept
   * within the item's write unit): no decision reads it. Absent: claimed before session 51.
   */
  readonly claimed?: string;
  /**
   * Its auction's id, always auctionIdOf(its id): written by the auction's start until session 52, which derives it
   * instead (cost52-auction-id-derived). No decision reads it; `liquidations show` prefers it when present.
   */
  readonly auctionId?: string;
  /**
   * The mark the settlement valued a slice's rest at, recorded with it (absent before session 39: executionMark):
   * the rest counts at the worse of it and executionMark for the slice's fee. A frozen plan's mark, or, settled
   * without a freeze, the ended auction's (else executionMark): never a mark only one delivery saw.
   */
  readonly settledMark?: PriceE8;
  /** Set once the settlement inputs are frozen: a retry recomputes the very same plan from them. */
  readonly settle?: {
    readonly insurance: InsuranceState;
    readonly nowMs: number;
    readonly mark: PriceE8;
    /** The liquidated position as the plan saw it. */
    readonly position: {
      readonly size: BaseE8;
      readonly collateral: bigint;
      /** Position.collateralOverE16 as the plan saw it (absent: 0). */
      readonly collateralOverE16?: bigint;
      readonly entryPrice: PriceE8;
      readonly version: number;
    };
    /** Only the counterparties the plan uses, in rank order (bounded by one transaction). */
    readonly candidates?: readonly (AdlCandidate & { readonly version: number })[];
    readonly auctionFills: readonly Fill[];
    /** Fills of the last-resort market order, once placed. */
    readonly lastResortFills?: readonly Fill[];
    /**
     * Ledger movements (by idempotency key, signed) that earlier plans of this settlement applied before their
     * commit failed (an ADL counterparty changed): this plan applies only the differences.
     */
    readonly applied?: Readonly<Record<string, QuoteE6>>;
    /** Plans made after money moved: numbers the keys of their differences. */
    readonly replans?: number;
    /** When the shortfall payout in `applied` was last drawn (its journal time): a give-back frees that window only. */
    readonly appliedDrawAtMs?: number;
    /**
     * `insurance` was read after `applied` moved, so it holds it (WaterfallInput.applied). A record with
     * `applied` and without this was frozen by an older version, on the fund before: it is planned again.
     */
    readonly insuranceHoldsApplied?: boolean;
    /**
     * These inputs no longer hold and a plan is being made again (it may wait for the book first): the next
     * delivery plans again from `insurance` and `applied` instead of applying this plan.
     */
    readonly superseded?: boolean;
    /** ADL's plan saw every position of the side that could give, and took them all: no round can follow. */
    readonly adlExhausted?: boolean;
    /**
     * Written by the versions of adl-close-rounding and review42-adl-older-plan: their plans credit the fund what
     * the counterparties' closes round away, not the trader's close's. No longer written: the latter, finding it
     * absent, plans this version's plans again rather than apply them without the trader's sub-unit.
     */
    readonly adlCloseRounding?: boolean;
    /**
     * The plan credits the fund what its counterparties' closes and the trader's close round away, its candidates
     * carrying their sub-units (adl-close-rounding, adl-trader-rounding). A record with candidates and without it
     * was frozen by an older version: its movements may hold other amounts under the same keys: it is planned again.
     */
    readonly adlTraderRounding?: boolean;
  };
  /** Last-resort orders that filled nothing so far: the next one's client order id ends with this number. */
  readonly lastResortAttempt?: number;
  /**
   * Of the last resort's waits, those a sibling outraced, as counted at its last order that filled nothing: a
   * delivery without its message's counts (the auction's end delivered again) still knows them.
   */
  readonly lastResortOutraced?: number;
  /**
   * The last resort's wait for the book: the one message that carries it on (its lastResortWaitId) and the waits so
   * far. Written after that message is sent, on the record's version: a copy of an earlier wait message (a
   * redelivery, a duplicate delivery) names another id, or one never recorded, and ends without a wait of its own
   * (unless the record still names the wait it followed: LiquidationMessage.lastResortWaitAfter).
   */
  readonly lastResortWait?: { readonly id: string; readonly waits: number };
  /** The next slice of the same position, started atomically with this one's settlement. */
  readonly nextLiquidationId?: string;
  /**
   * ADL owes another round (on a settled record): one round takes at most one transaction of counterparties,
   * so a deficit larger than they give is carried to further rounds, each taking settlement.badDebt (what is
   * uncovered so far) from the next counterparties. Absent once no round is left. `round`: rounds run so far.
   * `confirm`: a ranking at `mark` found nobody left to give; the next round, not before `atMs`, ranks again at
   * that mark to confirm it (ADL's orders are read from an index that may lag the writes of the last moments, a
   * close that funded a counterparty).
   */
  readonly adlRound?: {
    readonly round: number;
    readonly confirm?: { readonly atMs: number; readonly mark: PriceE8 };
  };
  /** ADL rounds run after the settlement, once they ended (absent: none). */
  readonly adlRounds?: number;
  /**
   * The delivery that may place this liquidation's venue orders, until `untilMs` (longer than any function's
   * timeout, so a holder that died has ended by then). Taken with the claim or before a last-resort order, and
   * dropped by the commit that records the order's outcome.
   */
  readonly lease?: OrderLease;
  /**
   * A last-resort order that may have been placed and whose outcome is not recorded yet: written before the order,
   * dropped by the commit that records its outcome. A delivery that finds it places exactly this order again (the
   * venue answers a repeated client order id with its first execution) before it decides anything else.
   */
  readonly lastResortOrder?: {
    readonly attempt: number;
    readonly size: BaseE8;
    readonly limitPrice: PriceE8;
    readonly reference: { readonly mark: PriceE8; readonly atMs: number };
  };
}

/** Who places a liquidation's venue orders: one delivery at a time (a token of its own), until a time. */
export interface OrderLease {
  readonly owner: string;
  readonly untilMs: number;
}

/** What is wrong with a failure to record (both adapter families refuse it with this), or undefined. */
export function processingFailureProblem(f: ProcessingFailure): string | undefined {
  if (typeof f?.reason !== 'string' || f.reason.length === 0 || f.reason.length > MAX_FAILURE_REASON) {
    return `reason must be 1-${MAX_FAILURE_REASON} characters`;
  }
  if (!Number.isSafeInteger(f.attempt) || f.attempt < 0 || !Number.isSafeInteger(f.atMs) || f.atMs < 0) {
    return 'attempt and atMs must be non-negative integers';
  }
  return undefined;
}

export interface LiquidationRecord {
  /** Deterministic: `${positionId}:${positionVersion}`, so a duplicate can never start a second one. */
  readonly id: string;
  readonly positionId: string;
  readonly symbol: string;
  readonly side: Side;
  readonly state: LiquidationState;
  /** Tick that triggered it: `${symbol}#${sequence}`. */
  readonly tickKey: string;
  readonly triggerMark: PriceE8;
  /** Size still to be closed by the later layers. */
  readonly remainingSize: BaseE8;
  readonly marketFills: readonly Fill[];
  /** Amounts settled per layer (positive: paid into the fund / by the layer; see the waterfall). */
  readonly settlement?: SettlementAmounts;
  readonly history: readonly LiquidationEvent[];
  /** Service-owned state between steps, stored and returned exactly (see LiquidationContext). */
  readonly context?: LiquidationContext;
  /** Set only by recordFailure; carried along by replaces (records are spread), dropped when a record is created. */
  readonly lastFailure?: ProcessingFailure;
  /**
   * When the venue first disputed the mark this liquidation would start on (venue-check.ts): the hold is judged from
   * it, not from a message (which a redelivery, a re-send or a forger may carry with any time). Set only by
   * recordMarkDispute; carried along by replaces, dropped when a record is created.
   */
  readonly markDisputedSinceMs?: number;
  readonly version: number;
}

export interface LiquidationRepository {
  get(id: string): Promise<LiquidationRecord | undefined>;
  /**
   * Atomically moves the position OPEN -> LIQUIDATING (conditional on its version) and creates the
   * liquidation in state QUEUED (conditional on its absence). Throws ConditionFailedError if either fails.
   */
  begin(position: PositionRecord, liquidation: LiquidationRecord): Promise<void>;
  /** Replaces the liquidation if its version is `expectedVersion` (the new record carries version + 1). */
  replace(next: LiquidationRecord, expectedVersion: number): Promise<void>;
  /** Atomically replaces the liquidation and its position (both conditional on their versions). */
  replaceWithPosition(
    next: LiquidationRecord,
    expectedVersion: number,
    position: PositionRecord,
    expectedPositionVersion: number,
  ): Promise<void>;
  /** Liquidations started by one tick (crash recovery of the enqueue step). */
  listByTick(tickKey: string): Promise<readonly LiquidationRecord[]>;
  /**
   * Sets lastFailure of an existing liquidation (ConditionFailedError if absent) and nothing else: neither the
   * state nor the version moves, so it never conflicts with a transition. A transition made concurrently from
   * an earlier read may overwrite it, which is fine: the record has moved on.
   */
  recordFailure(id: string, failure: ProcessingFailure): Promise<void>;
  /**
   * Sets markDisputedSinceMs of a QUEUED liquidation that has none, and nothing else (its version does not move, so
   * no transition is fought). The first time wins: `recorded` says whether this call wrote it (also when its write was
   * retried), `sinceMs` is the time stored. ConditionFailedError when the liquidation is absent or no longer QUEUED.
   */
  recordMarkDispute(
    id: string,
    sinceMs: number,
  ): Promise<{ readonly sinceMs: number; readonly recorded: boolean }>;
  /**
   * The open liquidations (isOpenLiquidation) whose first event is before `startedBeforeMs`, a page at a time
   * (liquidation-watch), in the index's order: shard by shard (0 to OPEN_INDEX_SHARDS - 1), each by start time, then
   * id. Records are read consistently; on AWS the index that lists them may lag, so a page may hold one that ended a
   * moment ago: callers judge the records, not the listing. `from`: after that position (a page's `next`), even if
   * its liquidation has ended since; a caller that stops early resumes there (liquidation-watch's cursor). Neither
   * key moves while a liquidation is open, so a resumed listing reads every one still open after the position.
   * `startedFromMs`: only those started at or after it too (a range of the index, not a filter of what it read).
   */
  openStartedBefore(
    startedBeforeMs: number,
    from?: OpenListingPosition,
    startedFromMs?: number,
  ): AsyncIterable<OpenListingPage>;
  /** liquidation-watch's cursor as its last run stored it (read consistently); undefined: none stored. */
  watchCursor(): Promise<WatchCursor | undefined>;
  /**
   * Stores liquidation-watch's cursor at `expectedVersion` + 1 only if the stored one is still at `expectedVersion`
   * (undefined: none stored): a run that read an older cursor than another's stored one loses. `owner` names the
   * run in the stored cursor. True: this call stored it (also when its write was retried after a lost answer: the
   * adapter's own write, putOwned); false: another call's cursor is stored, even one of the same owner.
   */
  saveWatchCursor(
    cursor: WatchCursorState,
    expectedVersion: number | undefined,
    owner: string,
  ): Promise<boolean>;
}

/** A position in openStartedBefore's listing: after `after` in shard `shard` (no `after`: the shard's start). */
export interface OpenListingPosition {
  readonly shard: number;
  readonly after?: { readonly startedAtMs: number; readonly id: string };
}

/** A page of openStartedBefore: its open records and the position after the last key it listed. */
export interface OpenListingPage {
  readonly records: readonly LiquidationRecord[];
  readonly next: OpenListingPosition;
}

/**
 * Where liquidation-watch's cycle stands: its runs read the open listing from its start to its end, each resuming
 * where the last stored run stopped. `from` undefined: the next run begins a cycle at the listing's start.
 */
export interface WatchCursorState {
  readonly from?: OpenListingPosition;
  /** When the cycle's first run began. */
  readonly cycleStartedAtMs: number;
  /** Judged and found overdue by the cycle's stored runs so far (each liquidation once a cycle). */
  readonly judged: number;
  readonly overdue: number;
  /** Found overdue by the last cycle that ended within its time (undefined: none yet): mid-cycle reports. */
  readonly lastCycleOverdue?: number;
}

export interface WatchCursor extends WatchCursorState {
  readonly version: number;
  /** The run that stored it. */
  readonly owner: string;
}

/** Work remains: a state not terminal, or a settlement whose deficit ADL still owes rounds on. */
export const isOpenLiquidation = (l: LiquidationRecord): boolean =>
  !isTerminal(l.state) || l.context?.adlRound !== undefined;

/** When a liquidation began: its first event (its tick's time, or its slice's start). */
export const liquidationStartedAtMs = (l: LiquidationRecord): number => l.history[0]?.atMs ?? 0;

// --- Messages --------------------------------------------------------------------------------------------

export interface LiquidationMessage {
  readonly liquidationId: string;
  /**
   * The liquidation's position and market, as margin-check starts it: its first delivery reads the liquidation, the
   * position and the market in one call (absent: the liquidation first, then the other two).
   */
  readonly positionId?: string;
  readonly symbol?: string;
  /** Waits of a last resort for the book so far (also on the record: LiquidationContext.lastResortWait). */
  readonly lastResortWaits?: number;
  /**
   * The wait this message carries on (LiquidationContext.lastResortWait): while the record names another, it is a
   * copy and ends. Absent (a start, an operator's re-send, a message of an earlier version): it takes the wait over.
   */
  readonly lastResortWaitId?: string;
  /**
   * The wait the record named when this one was sent (absent: none). While the record still names it, this one's
   * sender has not named it yet (its write is slow, it died, or it lost a race and looks again): it takes the wait
   * over rather than end, as one due before its name is written would leave none (review43b-wait-before-named).
   */
  readonly lastResortWaitAfter?: string;
  /** Of lastResortWaits, those after which another slice's last resort on the same side had filled (absent: 0). */
  readonly lastResortWaitsOutraced?: number;
  /** The market's lastResortFills on the slice's side when it last looked at the book (absent: not yet). */
  readonly lastResortFillsSeen?: number;
  /**
   * When the venue first disputed the mark this liquidation would start on, as recorded (LiquidationRecord): for a
   * consumer of a version before the record held it (a deploy). Read only when the record holds none.
   */
  readonly markDisputedSinceMs?: number;
  /**
   * A waiting last resort's: the mark (PriceE8, integer string) at which ADL last found nobody to take the slice. A
   * mark since moved the other side's way may have put counterparties in profit: the slice is planned again first.
   */
  readonly adlJudgedAtE8?: string;
  /** When it was due (sent plus its delay; a start: its tick's time): its lateness is measured from then. */
  readonly dueAtMs?: number;
  /** Deliveries before this one that spent their transitions on conflicts and sent it back (absent: none). */
  readonly contendedDeliveries?: number;
}

export interface AuctionStepMessage {
  readonly auctionId: string;
  readonly step: number;
  /** The auction's market: the step reads the auction and the market in one call (absent: one after the other). */
  readonly symbol?: string;
  /** Sent by a tick that woke the auction (its planned message for the same step is still on its way). */
  readonly woken?: boolean;
  /**
   * When the step was due (sent plus its delay): a step delivered later than that (a redelivery, a redrive) does
   * not let the curve walk on meanwhile (processAuctionStep). Absent in messages of earlier versions.
   */
  readonly dueAtMs?: number;
  /**
   * When a wait for a fresh mark sent it back (the same step, still due at dueAtMs for the curve): its lateness
   * counts from then, as the outage is the feed's (StaleMarkWaits), not the consumer's. Also when it came before its
   * step's commit and was sent back to wait for it (earlyWaits), less how late that delivery came: the step's one
   * report counts the consumer's lateness of each of its deliveries, none of the commit's wait (early44-lateness).
   */
  readonly backAtMs?: number;
  /**
   * Times it came before its step's commit (its auction a step behind it) and was sent back to wait for it (absent:
   * none): past MAX_EARLY_STEP_WAITS it ends (services/auction.ts).
   */
  readonly earlyWaits?: number;
  /**
   * Sent again by liquidation-watch, the step stalled (services/liquidation-watch.ts): counted in AuctionStepsResent
   * only if it takes its step, its own message lost, and within RESEND_COUNTED_WITHIN_MS of its own due time (later, its
   * own may be alive behind it); a twin of one still alive (waiting for a fresh mark, a queue behind) finds its step
   * taken and counts nothing, as does one that finishes an ended auction's settlement.
   */
  readonly resent?: boolean;
}

/**
 * The continuation of a registration's wake of a market's sleepers (services/registration-wake.ts), on the auction
 * queue: it names the wake (the market and the epoch its bump left); how far it went is on the market's record.
 */
export interface RegistrationWakeMessage {
  readonly registrationWake: { readonly symbol: string; readonly epoch: number };
}

/** What the auction function is sent: an auction's step, or the rest of a registration's wake. */
export type AuctionQueueMessage = AuctionStepMessage | RegistrationWakeMessage;

export const isRegistrationWakeMessage = (message: AuctionQueueMessage): message is RegistrationWakeMessage =>
  'registrationWake' in message;

export interface LiquidationQueue {
  /** Sends messages; throws if any entry could not be sent after the adapter's retries. */
  sendLiquidations(messages: readonly LiquidationMessage[]): Promise<void>;
}

export interface AuctionScheduler {
  /** Delivers the step message after `delaySeconds` (at most 900). */
  scheduleStep(message: AuctionStepMessage, delaySeconds: number): Promise<void>;
}

// --- Venue -----------------------------------------------------------------------------------------------

export interface OrderRequest {
  /** Client order id: the venue must not execute the same id twice (idempotent placement). */
  readonly clientOrderId: string;
  readonly symbol: string;
  /** SELL closes a long, BUY closes a short. */
  readonly direction: 'BUY' | 'SELL';
  readonly size: BaseE8;
  /** Worst acceptable price: IOC, fills stop at this level. */
  readonly limitPrice: PriceE8;
  /** The mark the caller priced the order against, with its time: a simulated venue follows it; a real one ignores it. */
  readonly reference?: { readonly mark: PriceE8; readonly atMs: number };
}

export interface OrderResult {
  readonly clientOrderId: string;
  readonly fills: readonly Fill[];
  readonly status: 'FILLED' | 'PARTIAL' | 'NONE';
}

/** How a venue call fails (the Reason of the VenueOrderFailures metric, each alarmed; another kind is taken as a timeout). */
export const VENUE_ERROR_KINDS = ['timeout', 'rejected', 'unavailable'] as const;
export type VenueErrorKind = (typeof VENUE_ERROR_KINDS)[number];

/** Raised for a rejection or timeout; the consumer retries within a bound, then hands over to the auction. */
export class VenueError extends Error {
  override readonly name = 'VenueError';
  constructor(
    message: string,
    readonly kind: VenueErrorKind,
  ) {
    super(message);
  }
}

export interface Venue {
  /** Immediate-or-cancel order. Repeating a clientOrderId returns the first result, never a second execution. */
  placeIoc(order: OrderRequest): Promise<OrderResult>;
  /**
   * Best bid and ask now, if there is a book: the first prices an IOC order would take (a waiting last resort
   * places no order while they are beyond its bound). `reference`: the caller's latest mark, as an order's (a
   * venue that follows the marks needs no read of its own).
   */
  quote(symbol: string, reference?: OrderRequest['reference']): Promise<{ bid?: PriceE8; ask?: PriceE8 }>;
}

// --- Ledger ----------------------------------------------------------------------------------------------

export interface JournalEntry {
  readonly account: string;
  /** Unique per account: applying the same key twice is a no-op that returns the first entry. */
  readonly idempotencyKey: string;
  /** Signed change of the account's balance. */
  readonly amount: QuoteE6;
  readonly balanceBefore: QuoteE6;
  readonly balanceAfter: QuoteE6;
  readonly kind: string;
  readonly reference: string;
  readonly atMs: number;
  readonly sequence: number;
  /** Who moved it, when a person did: LedgerMovement.actor (absent: a service, or an entry of before session 41). */
  readonly actor?: string;
  /**
   * The admin function's Lambda request id that moved it: LedgerMovement.invocationId (absent: not moved through the
   * admin function, or an entry of before session 51).
   */
  readonly invocationId?: string;
  /** Who the request said asks, unverified: LedgerMovement.declaredOperator (absent: before session 51). */
  readonly declaredOperator?: string;
}

/** The kind of the fund's shortfall payouts: a credit of it with a drawWindow gives a draw back to its window. */
export const SHORTFALL_PAYOUT_KIND = 'shortfall-payout';

export interface LedgerMovement {
  readonly account: string;
  readonly idempotencyKey: string;
  readonly amount: QuoteE6;
  readonly kind: string;
  readonly reference: string;
  readonly atMs: number;
  /** A debit that would take the balance below this is refused (ConditionFailedError). */
  readonly floor: QuoteE6;
  /**
   * Who moves it, journaled with the entry: the operator's IAM ARN for the CLI's `fund deposit|withdraw` (what STS
   * GetCallerIdentity answers its credentials). At most MAX_ACTOR characters. A key applied before keeps its first.
   */
  readonly actor?: string;
  /**
   * The admin function's invocation that moves it (its Lambda request id, `context.awsRequestId`), journaled with the
   * entry: CloudTrail's Lambda `Invoke` data event of that request names the IAM principal that invoked the function,
   * which the function itself is never told. Never in `actor`, which holds only a name verified here. At most
   * MAX_INVOCATION_ID characters. A key applied before keeps its first.
   */
  readonly invocationId?: string;
  /**
   * Who the request says asks (the admin request's `operator`), journaled as declared: UNVERIFIED, anyone who may
   * invoke the function writes it. At most MAX_DECLARED_OPERATOR characters. A key applied before keeps its first.
   */
  readonly declaredOperator?: string;
  /**
   * Draw-window accounting for debits: window start and the cap on the window's total draws. On a shortfall payout
   * given back (a credit of kind SHORTFALL_PAYOUT_KIND), the window of the draws it gives back: while that is the
   * stored window, windowDrawn' = windowDrawn - min(amount, windowDrawn); another window's draws stay as they are.
   */
  readonly drawWindow?: { readonly windowStartMs: number; readonly cap: QuoteE6 };
  /**
   * Applies only while this liquidation is still at this version (the plan's own); else MovementFencedError (or
   * ConditionFailedError when the debit is refused as well: either way nothing moved).
   */
  readonly fence?: MovementFence;
  /**
   * Applies only while the account's balance item is still exactly this (its sequence and balance, as the caller
   * read and checked them): else ConditionFailedError ('ledger/moved-since-read', nothing moved). An operator's
   * withdrawal is checked against the journal first (withdraw46-unreconciled): a balance changed since, by a
   * movement or by hand, was not checked.
   */
  readonly expected?: { readonly sequence: number; readonly balance: QuoteE6 };
}

/** The reason a movement's `expected` refuses it on `current`, or undefined (both adapters judge it alike). */
export function movedSinceRead(m: LedgerMovement, current: AccountBalance): string | undefined {
  const { expected } = m;
  if (!expected || (expected.sequence === current.sequence && expected.balance === current.balance))
    return undefined;
  return `ledger/moved-since-read: ${m.account} is at entry ${current.sequence}, balance ${formatQuoteGrouped(current.balance)}, not as read (entry ${expected.sequence}, balance ${formatQuoteGrouped(expected.balance)})`;
}

/** Why a journalAfter range is refused, or undefined: both adapters judge it alike. */
export const journalRangeProblem = (afterSequence: number, limit: number): string | undefined =>
  Number.isSafeInteger(afterSequence) && Number.isSafeInteger(limit) && limit >= 1
    ? undefined
    : 'ledger/bad-journal-range: an integer sequence and a limit of at least 1';

/** Why a latestEntries limit is refused, or undefined: both adapters judge it alike. */
export const journalLimitProblem = (limit: number): string | undefined =>
  Number.isSafeInteger(limit) && limit >= 1 ? undefined : 'ledger/bad-journal-limit: a limit of at least 1';

/**
 * The highest sequence a market holds, its last tick's or its breaker's (a market whose only print is its first,
 * waiting for a second, has only the breaker's; one print far ahead may hold the breaker above the last tick);
 * -1 when it holds none. What a feed resume (rebaseSequence) must be below.
 */
export const highestSequence = (state: Pick<MarketState, 'lastTick' | 'breaker'> | undefined): number =>
  Math.max(state?.lastTick?.sequence ?? -1, state?.breaker?.tick.sequence ?? -1);

/** An IAM ARN's longest (2048). */
export const MAX_ACTOR = 2048;
/** A Lambda request id is a UUID (36 characters): room to spare, bounded. */
export const MAX_INVOCATION_ID = 128;
/**
 * The admin request's `operator`, as declared: an IAM ARN's longest, as `actor`, since the CLI declares its caller's
 * ARN by default (an assumed role's reaches 175 characters, a user's with a path 2048: review51-admin-operator-arn).
 */
export const MAX_DECLARED_OPERATOR = MAX_ACTOR;

/** Whether an optional text field of a movement is malformed: given, and not a string of 1 to `max` characters. */
const textProblem = (value: unknown, max: number): boolean =>
  value !== undefined && (typeof value !== 'string' || value.length === 0 || value.length > max);

/**
 * What is wrong with a movement's amounts, time, draw window, kind (one the fund's chart of accounts names), or sign for
 * its kind (a caller's bug), or undefined. Both ledgers check it before a movement is applied (on AWS, before it joins a
 * group commit it would otherwise fail whole); a give-back is judged further once its plan is read (givenBackProblem).
 */
export function movementProblem(m: LedgerMovement): string | undefined {
  const amounts: [string, unknown][] = [
    ['amount', m.amount],
    ['floor', m.floor],
  ];
  if (m.drawWindow) amounts.push(['drawWindow.cap', m.drawWindow.cap]);
  if (m.expected) amounts.push(['expected.balance', m.expected.balance]);
  for (const [what, v] of amounts)
    if (typeof v !== 'bigint') return `ledger/bad-${what}: must be a bigint QuoteE6`;
  if (!Number.isSafeInteger(m.atMs)) return 'ledger/bad-time: atMs must be an integer epoch ms';
  if (textProblem(m.actor, MAX_ACTOR)) return `ledger/bad-actor: 1-${MAX_ACTOR} characters`;
  if (textProblem(m.invocationId, MAX_INVOCATION_ID))
    return `ledger/bad-invocation-id: 1-${MAX_INVOCATION_ID} characters`;
  if (textProblem(m.declaredOperator, MAX_DECLARED_OPERATOR))
    return `ledger/bad-declared-operator: 1-${MAX_DECLARED_OPERATOR} characters`;
  if (m.expected && !(Number.isSafeInteger(m.expected.sequence) && m.expected.sequence >= 0))
    return 'ledger/bad-expected: expected.sequence must be an integer >= 0';
  if (m.drawWindow && !Number.isSafeInteger(m.drawWindow.windowStartMs))
    return 'ledger/bad-window: windowStartMs must be an integer epoch ms';
  // A kind the chart does not name would be booked to no account: `fund statement` refuses the period it lands in.
  if (typeof m.kind !== 'string' || !isCharted(m.kind))
    return `ledger/uncharted-kind: kind ${JSON.stringify(m.kind)} under key ${m.idempotencyKey} is not in the fund's chart of accounts (${FUND_KINDS.join(', ')})`;
  // A sign its kind never moves is a caller's bug: booked, it would be filed against the wrong side of the books. A
  // give-back (`:r<n>`) passes here: the ledger judges it on what its plan moved (givenBackProblem), once read.
  const sign = signProblem(m);
  if (sign) return `ledger/sign-against-kind: ${sign}`;
  return undefined;
}

/**
 * What a movement says of who moved it, as its journal entry keeps it (both adapters alike): the verified actor, the
 * admin function's invocation, the operator the request declared; each only when given.
 */
export const whoMoved = (
  m: Pick<LedgerMovement, 'actor' | 'invocationId' | 'declaredOperator'>,
): Pick<JournalEntry, 'actor' | 'invocationId' | 'declaredOperator'> => ({
  ...(m.actor === undefined ? {} : { actor: m.actor }),
  ...(m.invocationId === undefined ? {} : { invocationId: m.invocationId }),
  ...(m.declaredOperator === undefined ? {} : { declaredOperator: m.declaredOperator }),
});

/** A shortfall payout given back to the stored draw window: it lowers that window's drawn amount. */
export const givesDrawBack = (m: LedgerMovement, storedWindowStartMs: number): boolean =>
  m.amount > 0n && m.kind === SHORTFALL_PAYOUT_KIND && m.drawWindow?.windowStartMs === storedWindowStartMs;

/**
 * A settlement plan's movements are fenced by the liquidation record they were planned on: once another delivery
 * has moved the record on (to plan again from what the ledger holds), a movement of the old plan still in flight
 * cannot land after that read and be paid twice.
 */
export interface MovementFence {
  readonly liquidationId: string;
  readonly version: number;
}

/** The movement's fence no longer holds: its plan was replaced, nothing was applied. */
export class MovementFencedError extends Error {
  override readonly name = 'MovementFencedError';
}

export interface AccountBalance {
  readonly account: string;
  readonly balance: QuoteE6;
  readonly sequence: number;
  readonly windowStartMs: number;
  readonly windowDrawn: QuoteE6;
}

/** The idempotency key was applied before with another amount: a bug or a replayed plan that changed. */
export class LedgerIdempotencyConflictError extends Error {
  override readonly name = 'LedgerIdempotencyConflictError';
  /** `applied`: the amount the key moved; `asked`: the other one asked with it now (signed, as movements are). */
  constructor(
    message: string,
    readonly applied?: QuoteE6,
    readonly asked?: QuoteE6,
  ) {
    super(message);
  }
}

/**
 * What apply answers: the entry of the key. `replayed`: this call found the key applied before, so the entry (its
 * balanceAfter and atMs included) is the first application's, not the balance now.
 */
export type AppliedEntry = JournalEntry & { readonly replayed?: true };

/**
 * An audited prefix as a reconcile stored it. `epoch` names the audit it belongs to: each restart from the first
 * entry begins a new one ('' for a checkpoint stored before epochs).
 */
export interface AuditCheckpoint extends JournalAudit {
  readonly epoch: string;
  /** What the reconciles that audited it found the chart of accounts refuse (absent: stored before session 52). */
  readonly chart?: ChartFindings;
}

/**
 * Entries of an audited prefix the fund's chart of accounts refuses (chartProblem), as the reconciles that audited it
 * found them: kept with the checkpoint, so `backstop status` says them without reading the journal.
 */
export interface ChartFindings {
  readonly count: number;
  /** The first and the last found, by sequence (when count > 0). */
  readonly first?: number;
  readonly last?: number;
  /** Entries after this one were counted: 0 from the first; a checkpoint stored before session 52's, from it on. */
  readonly countedAfter: number;
}

/** What a reconcile stores: its audited prefix and what it found of the chart in it. */
export type AuditToSave = JournalAudit & { readonly chart?: ChartFindings };

/** What a look for journal entries that journalAfter does not list found (Ledger.unindexedEntries). */
export interface UnindexedEntries {
  /** Entries of the account's journal the look read. */
  readonly read: number;
  /** Of those, the ones journalAfter does not list. */
  readonly found: number;
  /** The lowest sequence among those found. */
  readonly lowest?: number;
  /** The whole journal was read: none found is none there. */
  readonly complete: boolean;
}

/**
 * Entries one read of Ledger.unindexedEntries takes at most (the AWS ledger's Query, well under its 1 MB a page); the
 * look stops after the first read that finds one, in both ledgers.
 */
export const UNINDEXED_LOOK_PAGE = 1_000;

/** A look's bound must be a whole number of entries, at least 1. */
export const unindexedLookProblem = (maxRead: number): string | undefined =>
  Number.isSafeInteger(maxRead) && maxRead >= 1
    ? undefined
    : 'ledger/bad-look: maxRead must be an integer of at least 1';

export interface Ledger {
  balance(account: string): Promise<AccountBalance>;
  /**
   * One atomic movement: balance update (conditional on floor and draw cap) plus the journal entry keyed by
   * the idempotency key. Re-applying a key returns the original entry and changes nothing (fenced or not).
   * `known`: the account as the caller just read it (balance()); a ledger that must read the balance before
   * writing may write on it instead, once: a stale one only fails the write's condition and is read again.
   * A malformed movement (movementProblem: an uncharted kind, a sign against its kind) is refused before anything is
   * read or written; so is a fee or a draw given back (`<key>:r<n>`, givesBack) beyond what the entries of its
   * reference under its plan's key and kind moved (givenBackProblem), judged on them as they are when it commits.
   */
  apply(movement: LedgerMovement, known?: AccountBalance): Promise<AppliedEntry>;
  journal(account: string): Promise<readonly JournalEntry[]>;
  /**
   * At most `limit` of the account's entries with a sequence above `afterSequence`, in sequence order. On AWS a
   * read of an index, which may lag the balance by a moment: the newest entries may be missing, not in order.
   */
  journalAfter(account: string, afterSequence: number, limit: number): Promise<readonly JournalEntry[]>;
  /**
   * At most `limit` of the account's entries with the highest sequences, newest first: one bounded read, whatever the
   * journal's length (`backstop status` shows the last few on every refresh: status46-journal-bounded). On AWS a
   * read of the same index as journalAfter, which may lag by a moment; entries it does not list are left out.
   */
  latestEntries(account: string, limit: number): Promise<readonly JournalEntry[]>;
  /**
   * Entries of the account's journal that journalAfter does not list, read from the journal itself: on AWS those
   * written before the index by sequence existed (session 27) and not indexed since (`backstop fund index-journal`),
   * which the index's readers take for missing. Reads the journal as the table holds it (by idempotency key, not by
   * sequence), UNINDEXED_LOOK_PAGE entries a read, `maxRead` at most, and stops after the first read that finds one:
   * `found` and `lowest` are of the entries read. A withdrawal's check asks only once an entry is missing
   * (withdraw46-not-indexed).
   */
  unindexedEntries(account: string, maxRead: number): Promise<UnindexedEntries>;
  /** The audited prefix of the account's journal that the last reconcile stored, if any. */
  auditCheckpoint(account: string): Promise<AuditCheckpoint | undefined>;
  /**
   * Stores the audited prefix `audit`, carried on from `from`, the checkpoint its run read (undefined: none was):
   * only while the stored one is still of from's epoch and not further along (a concurrent run's is kept), so a
   * run begun before a restart never overwrites the restart's. 'restart': an audit begun again from the first
   * entry, stored whatever is stored, in a new epoch.
   */
  saveAuditCheckpoint(
    account: string,
    audit: AuditToSave,
    from: AuditCheckpoint | undefined | 'restart',
  ): Promise<void>;
  /**
   * The account's entries of one reference whose keys begin with `<reference>:` (a liquidation's movements,
   * every plan's), read strongly: what was applied, whoever applied it.
   */
  entriesOf(account: string, reference: string): Promise<readonly JournalEntry[]>;
}

// --- Providers and auctions ------------------------------------------------------------------------------

export interface ProviderRecord {
  readonly id: string;
  /** Capital still committed and unused. */
  readonly capital: QuoteE6;
  /** Its standing bid's discount to the mark, in ppm: it fills at mark x (1 - d) on a SELL lot, x (1 + d) on BUY. */
  readonly maxDiscountPpm: bigint;
  /** Largest lot per auction, in base units of the auction's market, unless maxLotBySymbol says otherwise. */
  readonly maxLot: BaseE8;
  /** Largest lot per auction in the markets where it differs from maxLot (base units differ: 10 ETH, 0.5 BTC). */
  readonly maxLotBySymbol?: Readonly<Record<string, BaseE8>>;
  readonly symbols: readonly string[];
  /**
   * What it won in the auctions: the latest few fills and its totals per market, written by the auction step's write
   * that takes its capital (domain/provider-fills.ts; display only). Absent: none since session 48. Stored in a shape
   * this version cannot read: kept as it is (UnreadableProviderFills).
   */
  readonly fills?: ProviderFills | UnreadableProviderFills;
  /**
   * Fills this version could not read, set aside when a fill started new totals (recordProviderFill); stored as
   * something other than a list, kept whole (SetAside).
   */
  readonly fillsSetAside?: SetAside;
  readonly version: number;
}

/** The largest lot `provider` takes of one auction in `symbol`, in that market's base units. */
export const maxLotIn = (provider: ProviderRecord, symbol: string): BaseE8 =>
  provider.maxLotBySymbol?.[symbol] ?? provider.maxLot;

export interface ProviderRepository {
  list(symbol: string): Promise<readonly ProviderRecord[]>;
  get(id: string): Promise<ProviderRecord | undefined>;
  put(provider: ProviderRecord, expectedVersion: number | undefined): Promise<void>;
}

/** What a tick was judged on: the market's last accepted tick and its breaker's tick, as read (undefined: none). */
export interface JudgedMarket {
  readonly lastTick: PrintAsRead | undefined;
  readonly breakerTick: PrintAsRead | undefined;
}

/**
 * A print as a judgment read it: its number, mark and stamp. A feed resumed below its sequence (rebaseSequence)
 * numbers new prints as old ones were, so a judgment made before the resume matches on the number alone.
 */
export type PrintAsRead = Pick<AcceptedTick, 'sequence' | 'markPrice' | 'timestampMs'>;

/** What a sequence jump was judged on: the market, and the jump it held then (undefined: none). */
export interface JudgedJump extends JudgedMarket {
  readonly heldTick: PrintAsRead | undefined;
  /**
   * When the held jump was last continued, as read (undefined: never, or none held): a hold judged before a
   * continuation landed would replace a jump the rule keeps for its span (feed51-hold-over-continuation). Not optional:
   * a caller leaving it out would have every hold over a continued jump refused (review51-feed-held-continued-said).
   */
  readonly heldContinuedAtMs: number | undefined;
}

/**
 * An auction's fill. `step`, `atMs` and `mark` say when it was made (review52-support-fill-times-on-auction): the step that
 * filled it, that step's clock and the mark it priced at, the same as its provider's record keeps (ProviderFill).
 * Absent on fills made before session 52, or put back by a function of an earlier version during a deploy (it reads
 * and writes a fill's price, size, cost and provider alone): display only, no step, clearing or settlement reads them.
 */
export interface AuctionFill extends Fill {
  readonly providerId: string;
  readonly step?: number;
  readonly atMs?: number;
  readonly mark?: PriceE8;
}

export interface AuctionRecord {
  readonly id: string;
  readonly liquidationId: string;
  readonly symbol: string;
  /** SELL: the auction sells base (closing a long); BUY: it buys base (closing a short). */
  readonly direction: 'BUY' | 'SELL';
  readonly lot: BaseE8;
  readonly remainingLot: BaseE8;
  readonly top: PriceE8;
  readonly startedAtMs: number;
  readonly resets: number;
  readonly step: number;
  readonly state: 'RUNNING' | 'CLEARED' | 'EXHAUSTED';
  /** Each at its provider's own bid at the step's mark (domain/clearing.ts bidPrice): prices differ within a step. */
  readonly fills: readonly AuctionFill[];
  /** As on LiquidationRecord: the last failed step, set only by recordFailure. */
  readonly lastFailure?: ProcessingFailure;
  /** RUNNING and asleep past a step: a tick whose mark reaches this wakes it (see domain/sleep.ts). */
  readonly wakeMark?: PriceE8;
  /**
   * Ended: which of its step's two messages ended it, the one a tick sent ('wake') or the planned one ('plan').
   * The other finds the auction ended and has nothing to finish (absent in records of earlier versions).
   */
  readonly endedBy?: 'wake' | 'plan';
  /**
   * Ended: the mark of the step that ended it (absent in records of earlier versions). A settlement that needs no
   * fund values the slice's rest at it (with executionMark): stored, so every delivery plans the same fee.
   */
  readonly endedAtMark?: PriceE8;
  /**
   * When the current step's planned message is due (absent in records of earlier versions). A step run later,
   * whichever message runs it (the planned one, a tick's wake after an outage, a redrive), is priced as when due.
   */
  readonly stepDueAtMs?: number;
  /**
   * The last step liquidation-watch sent again, stalled, and when (claimStepResend): it sends that step no twin each
   * run while its resend waits in a queue behind, and the delivery its resend takes the step with tells from it how
   * long that resend waited (services/liquidation-watch.ts). A later step's leaves it behind (absent: none sent).
   * `claimer`: the claiming call's token (absent in claims of earlier versions), by which a retry of a claim whose
   * answer was lost knows its own write; a replace carries it with the claim (claim45-own-token).
   */
  readonly stepResent?: { readonly step: number; readonly atMs: number; readonly claimer?: string };
  /**
   * Markets whose sleepers this auction owes a wake: a step's fills left a provider of theirs without a bid they may
   * have planned on (services/sleeping.ts spentMarkets). Written with the fills, removed once they are woken; any
   * later delivery of the auction that finds it wakes them (its own died or failed after the commit).
   */
  readonly spentIn?: readonly string[];
  /**
   * How far the wake spentIn owes went (services/sleeping.ts wakeSpent): the last sleeper woken, of that market side.
   * Its markets are woken in order, each side SELL then BUY, a bounded number per delivery; the next payer goes on
   * after it. Absent: from the first.
   */
  readonly spentWokenTo?: SpentWakeCursor;
  /**
   * Per market of spentIn, the providers epoch its wake's bump left (the market's spentWakeEpoch then): a market
   * whose spentWakeEpoch has gone past it has a wake begun since, which wakes its sleepers, and this one stops
   * there. Absent: the wake has not begun (its first delivery bumps).
   */
  readonly spentWakeBegan?: Readonly<Record<string, number>>;
  /**
   * The wake's last part met a failed send after some went: the next part sends a batch at a time and stops at its
   * first failure (services/wake.ts), and comes WAKE_RETRY_DELAY_SECONDS later (wakes43b). Absent: it went whole.
   */
  readonly spentWakeSendFailed?: true;
  /**
   * Written by a capped run's later steps (services/auction.ts processAuctionStep): the step of the message whose
   * delivery took them, which owns a wake the record owes (its retry pays it); the messages of the steps it took end
   * quietly (capped44-stale-run-quiet). Also by the wake's write of a delivery that found its step taken and did not
   * own the debt: its message owns it from then on, its retry failing for it (review44-debt-owner-lost). Absent: the
   * record's last step was taken by its own message (step - 1).
   */
  readonly runFrom?: number;
  readonly version: number;
}

/** Where a wake of every sleeper of some markets stopped: the last sleeper it woke, and its market side. */
export interface SpentWakeCursor extends Sleeper {
  readonly symbol: string;
  readonly direction: 'BUY' | 'SELL';
}

/** A sleeping auction a tick wakes: its id, the step its next message carries, and its wake mark. */
export interface Sleeper {
  readonly id: string;
  readonly step: number;
  readonly wakeMark: PriceE8;
}

export interface AuctionRepository {
  get(id: string): Promise<AuctionRecord | undefined>;
  create(auction: AuctionRecord): Promise<void>;
  replace(next: AuctionRecord, expectedVersion: number): Promise<void>;
  /** As LiquidationRepository.recordFailure. */
  recordFailure(id: string, failure: ProcessingFailure): Promise<void>;
  /**
   * liquidation-watch's claim to send step `step` of a RUNNING auction again at `atMs`: sets stepResent to them, with a
   * token of the call (`claimer`), unless that step was claimed after `lastBeforeMs` (none claimed, another step's, or
   * one at or before it, pass). No version condition, no version bump: no step is fought. The token if this call wrote
   * it (also when its write was retried, the auction still running at that step); undefined if the auction is absent,
   * ended, at another step, or its step was claimed since.
   */
  claimStepResend(id: string, step: number, atMs: number, lastBeforeMs: number): Promise<string | undefined>;
  /**
   * Gives back the claim whose token is `claimer` (its send failed): its time set to 0, so the next run claims the step
   * again. Only that claim: true if it was stored (also when this write was retried); false, writing nothing, if
   * another is (another run's, one a previous version's put left without its token) or none, or the auction is absent.
   */
  giveBackStepResend(id: string, claimer: string): Promise<boolean>;
  /**
   * The sleeping auctions of one market side in wake order (SELL: lowest wake mark first; BUY: highest): `due`,
   * the first of them whose wake mark `mark` reached (every one when `mark` is undefined), at most `limit`;
   * `next`, the wake mark of the one after them, reached or not (undefined: none). On DynamoDB one query of a sparse index, eventually consistent: a
   * sleeper written a moment ago may be missing and then wakes on its own timer. `after`: only those after this
   * one in wake order (it need not sleep any more): a wake that goes on where an earlier one stopped.
   */
  sleepers(
    symbol: string,
    direction: 'BUY' | 'SELL',
    mark: PriceE8 | undefined,
    limit: number,
    after?: Sleeper,
  ): Promise<{ readonly due: readonly Sleeper[]; readonly next: PriceE8 | undefined }>;
}

// --- Clock -----------------------------------------------------------------------------------------------

export interface Clock {
  nowMs(): number;
}

// --- Queue transport -------------------------------------------------------------------------------------

export interface ReceivedMessage {
  readonly messageId: string;
  readonly body: string;
  readonly receiptHandle: string;
  /** How many times this message has been received, this time included (SQS ApproximateReceiveCount). */
  readonly receiveCount: number;
  readonly sentAtMs: number;
}

/**
 * Most bytes of a message body, as UTF-8: SQS's long-standing 256 KiB. SQS takes up to 1 MiB since 2025 on a queue
 * whose MaximumMessageSize allows it (new queues' default), but a queue made before may keep 256 KiB, and the
 * messages here are a few hundred bytes. Both families refuse more, on send and sendBatch alike (found by the
 * adapter parity review, session 27: only the AWS sendBatch did).
 */
export const MAX_MESSAGE_BYTES = 256 * 1024;

/**
 * The entries a sendBatch that threw did not send (indices into its bodies), when its error says (both adapters'
 * QueueSendError: SQS's Failed entries, and every entry of a later SendMessageBatch call not begun); undefined: it
 * does not say, and any of them may have gone.
 */
export const unsentOf = (error: unknown): readonly number[] | undefined => {
  const unsent = (error as { readonly unsent?: unknown } | undefined)?.unsent;
  return Array.isArray(unsent) && unsent.every((i) => Number.isSafeInteger(i)) ? unsent : undefined;
};

/** Most messages one receive asks for (SQS's MaxNumberOfMessages). */
export const MAX_RECEIVE_MESSAGES = 10;

/**
 * SQS semantics, which the embedded queue reproduces: at-least-once delivery, a received message is invisible
 * for the visibility timeout and comes back unless deleted, per-message delay, and after maxReceiveCount
 * receives the message moves to the dead-letter queue instead of being delivered again.
 */
export interface QueueTransport {
  readonly name: string;
  /** Refuses a body over MAX_MESSAGE_BYTES ('queue/message-too-large'), sending nothing. */
  send(body: string, delaySeconds?: number): Promise<void>;
  /**
   * Up to 10 bodies per call on SQS; adapters split larger lists. Throws if an entry still fails after retries:
   * an error with `unsent` (unsentOf) names the entries not sent, every other one went; any other error says
   * nothing of which went (a call whose answer was lost may have sent them all).
   * Refuses a list with a body over MAX_MESSAGE_BYTES ('queue/message-too-large'), sending none of it.
   */
  sendBatch(bodies: readonly string[]): Promise<void>;
  /** 1 to MAX_RECEIVE_MESSAGES messages asked for ('queue/bad-max-messages' otherwise), as SQS takes. */
  receive(maxMessages: number, visibilityTimeoutSeconds: number): Promise<readonly ReceivedMessage[]>;
  delete(receiptHandle: string): Promise<void>;
  changeVisibility(receiptHandle: string, visibilityTimeoutSeconds: number): Promise<void>;
  /** Visible and in-flight message counts (approximate on SQS). */
  depth(): Promise<{ readonly visible: number; readonly inFlight: number; readonly delayed: number }>;
}

// --- Reads served together ----------------------------------------------------------------------------

/** Records that one round trip reads together (on DynamoDB one BatchGetItem), each strongly consistent. */
export interface BatchReader {
  /** A liquidation, its position and the state of its market, as a new liquidation's first delivery needs them. */
  liquidationPositionAndMarket(
    liquidationId: string,
    positionId: string,
    symbol: string,
  ): Promise<{
    readonly liquidation: LiquidationRecord | undefined;
    readonly position: PositionRecord | undefined;
    readonly market: MarketState | undefined;
  }>;
  /** A position and the state of its market, as the consumer's re-check needs them. */
  positionAndMarket(
    positionId: string,
    symbol: string,
  ): Promise<{ readonly position: PositionRecord | undefined; readonly market: MarketState | undefined }>;
  /** The positions of `ids` that exist, in no particular order (DynamoDB: BatchGetItem, 100 keys a call). */
  positions(ids: readonly string[]): Promise<readonly PositionRecord[]>;
  /** The liquidations of `ids` that exist, in no particular order (BatchGetItem, 100 keys a call). */
  liquidations(ids: readonly string[]): Promise<readonly LiquidationRecord[]>;
  /** The states of the markets of `symbols` that have one, in no particular order (BatchGetItem, 100 keys a call). */
  markets(symbols: readonly string[]): Promise<readonly MarketState[]>;
  /** An auction and the state of a market, as an auction step needs them. */
  auctionAndMarket(
    auctionId: string,
    symbol: string,
  ): Promise<{ readonly auction: AuctionRecord | undefined; readonly market: MarketState | undefined }>;
}

/** Everything the services use, as one bundle; both adapter families build one. */
export interface Adapters {
  readonly reader: BatchReader;
  readonly positions: PositionRepository;
  readonly markets: MarketRepository;
  readonly liquidations: LiquidationRepository;
  readonly auctions: AuctionRepository;
  readonly providers: ProviderRepository;
  readonly ledger: Ledger;
  readonly transactor: Transactor;
  readonly liquidationQueue: QueueTransport;
  readonly auctionQueue: QueueTransport;
  readonly clock: Clock;
}

// --- Atomic multi-record writes --------------------------------------------------------------------------

/** One conditional put inside a transaction; expectedVersion undefined means "must not exist yet". */
export type Write =
  | {
      readonly kind: 'position';
      readonly record: PositionRecord;
      readonly expectedVersion: number | undefined;
    }
  | {
      readonly kind: 'liquidation';
      readonly record: LiquidationRecord;
      readonly expectedVersion: number | undefined;
    }
  | { readonly kind: 'auction'; readonly record: AuctionRecord; readonly expectedVersion: number | undefined }
  | {
      readonly kind: 'provider';
      readonly record: ProviderRecord;
      readonly expectedVersion: number | undefined;
    };

/**
 * A condition the commit checks without writing: the market's providers are still those of `epoch`
 * (MarketState.providersEpoch as read, 0 when absent). One item of the transaction (a ConditionCheck on AWS).
 */
export interface ProvidersEpochCheck {
  readonly symbol: string;
  readonly epoch: number;
}

/** At most this many writes per commit (DynamoDB TransactWriteItems limit), checks included. */
export const MAX_WRITES_PER_COMMIT = 100;

export interface Transactor {
  /**
   * All writes or none: throws ConditionFailedError (nothing written) if any version condition fails, or the
   * market of `providersUnchanged` has had its providers changed since the epoch given.
   */
  commit(writes: readonly Write[], providersUnchanged?: ProvidersEpochCheck): Promise<void>;
}

// --- Telemetry -------------------------------------------------------------------------------------------

/**
 * Metrics and structured events, bound to Powertools in Lambda and to in-memory counters in the replay. A data
 * point's `dimensions` are its spec's (metrics.ts) and, for a metric `byMarket`, `Market`: the symbol of the market
 * it concerns (a configured one: each value is a custom metric billed), which Powertools emits as a second dimension
 * set beside the total's.
 */
export interface Telemetry {
  count(metric: string, value?: number, dimensions?: Readonly<Record<string, string>>): void;
  observe(metric: string, value: number, dimensions?: Readonly<Record<string, string>>): void;
  info(message: string, fields?: Readonly<Record<string, unknown>>): void;
  warn(message: string, fields?: Readonly<Record<string, unknown>>): void;
}

export const silentTelemetry: Telemetry = {
  count: () => {},
  observe: () => {},
  info: () => {},
  warn: () => {},
};
