import { earlierWake } from '../../domain/sleep.ts';
import { rebasedTickState } from '../../domain/tick.ts';
import type { PriceE8 } from '../../domain/units.ts';
import {
  type AcceptedTick,
  type BreakerConfirming,
  ConditionFailedError,
  type DroppedRefusal,
  highestSequence,
  isUnreadableRefusal,
  type JudgedJump,
  type JudgedMarket,
  type JumpContinued,
  type MarketReadGuard,
  type MarketRepository,
  type MarketState,
  type PendingTick,
  type PrintAsRead,
  type ProvidersEpochCheck,
  providersEpochOf,
  type RefusalNote,
  type RefusalTrace,
  type RegistrationWake,
  type TracedRefusal,
  type UnreadableRefusalTrace,
} from '../../ports/index.ts';
import { EmbeddedInputError, fire, frozenCopy, type HookRef, requireId } from './internal.ts';

/**
 * Market state per symbol. Semantics pinned here (the AWS adapter must match):
 * - acceptTick: condition "stored lastTick.sequence === expectedLastSequence" (undefined: no tick yet) and,
 *   given a guard, the breaker's tick (sequence, mark and stamp), pendingSequence and the last tick's mark and stamp
 *   as guarded; sets lastTick, sets pendingSequence to the tick's sequence when `pending` (removes it otherwise),
 *   removes the breaker when the guard closes it, removes a held sequence jump, and returns the state written.
 * - clearPending: removes pendingSequence (and pendingSegment) only when it is the tick's sequence and the last
 *   tick's stamp is the tick's; otherwise a no-op (no hook).
 * - claimSegment: sets pendingSegment when the tick is pending (as clearPending) and pendingSegment (absent: 0) <
 *   segment; otherwise returns false and changes nothing (no hook).
 * - tripBreaker: trips, or re-arms with a later tick (an equal or older one is a no-op: redeliveries); given
 *   `judged`, only while lastTick and the breaker's tick are the judged prints (sequence, mark and stamp), and
 *   then with any tick (the caller judged it on that breaker). Returns whether it wrote.
 * - resetBreaker: removes the breaker; a no-op when none.
 * - noteBreakerConfirming: sets the breaker's confirming only while its tick is the given print (sequence, mark and
 *   stamp) and the stored confirming (if any) is numbered lower; otherwise a no-op (no hook). Any trip replaces the
 *   breaker (and with it the trace); rebaseSequence removes the trace (it was of the numbering left).
 * - noteRefusal: sets the kind's refusal trace only while resumedAfterMs is the trace's and the stored one of the kind
 *   (if any) is numbered lower or has another resumedAfterMs; otherwise a no-op (no hook). Creates the market's state
 *   if needed. rebaseSequence removes the traces.
 * - dropRefusals: removes the traces given only when every one is stored as given (sequence and atMs); otherwise a
 *   no-op (no hook). No trace stored here is unreadable (unreadableRefusals): a note or drop given one is a no-op.
 * - holdSequenceJump: holds the tick, replacing any held one, only while lastTick, the breaker's tick and the
 *   held jump's tick are the judged prints and the held jump's continuedAtMs is the judged one (undefined: none), and,
 *   given a note, notes it too only while noteRefusal would. Returns whether it wrote. rebaseSequence removes it too.
 * - continueSequenceJump: sets the held jump's continuedAtMs when it holds `heldTick` (sequence, mark and stamp)
 *   and the stored continuedAtMs (if any) is not later, and a note given as holdSequenceJump does, or that alone when
 *   noteRefusal would not note it, unless the stored continuedAtMs is as late (then nothing). Returns what it wrote
 *   (JumpContinued): 'note-refused' whenever noteRefusal would not note it, whatever else held.
 * - coverWakeMark: sets the side's wake mark to the earlier of it and the given one (SELL: lower, BUY: higher)
 *   and counts the cover, also when the mark already covers it. replaceWakeMark: only when it equals `expected`
 *   and the side's covers are still `covers`.
 * - bumpProvidersEpoch: adds 1 to providersEpoch (absent: 0), creating the market's state if needed. Returns the
 *   new epoch.
 * - markSpentWake: spentWakeEpoch takes the epoch unless it is that or later (then no write, no hook).
 *   checkProvidersEpoch (the transactor's check) throws ConditionFailedError unless it is still the given epoch.
 * - recordRegistrationWake: replaces registrationWake when the stored one has the wake's epoch and the part
 *   `expectedPart`, or (expectedPart undefined) when there is none or its epoch is lower; otherwise returns false and
 *   changes nothing (no hook). Creates the market's state if needed.
 * - countLastResortFill: adds 1 to the side's lastResortFills (absent: 0), creating the market's state if needed.
 */
/** `state` with the note's trace, or undefined when noteRefusal's condition refuses it (see the semantics above). */
function withNote(state: MarketState, { reason, trace, replacing }: RefusalNote): MarketState | undefined {
  if (state.resumedAfterMs !== trace.resumedAfterMs) return undefined;
  // Never stored here (a state is kept as written): one as read is no longer stored.
  if (replacing !== undefined) return undefined;
  const stored = state.refusals?.[reason];
  if (stored && stored.resumedAfterMs === trace.resumedAfterMs && stored.sequence >= trace.sequence)
    return undefined;
  return { ...state, refusals: { ...state.refusals, [reason]: trace } };
}

export class EmbeddedMarketRepository implements MarketRepository {
  readonly #states = new Map<string, MarketState>();
  readonly #hook: HookRef;

  constructor(hook: HookRef = {}) {
    this.#hook = hook;
  }

  async get(symbol: string): Promise<MarketState | undefined> {
    return this.#states.get(symbol);
  }

  async acceptTick(
    symbol: string,
    tick: AcceptedTick,
    expectedLastSequence: number | undefined,
    pending: boolean,
    guard?: MarketReadGuard,
  ): Promise<MarketState> {
    requireId(symbol, 'markets');
    const current = this.#states.get(symbol);
    const stored = current?.lastTick?.sequence;
    if (stored !== expectedLastSequence) {
      throw new ConditionFailedError(
        `markets/sequence-mismatch: ${symbol} last sequence is ${stored ?? 'none'}, not ${expectedLastSequence ?? 'none'}`,
      );
    }
    if (
      guard &&
      (!samePrint(current?.breaker?.tick, guard.breakerTick) ||
        current?.pendingSequence !== guard.pendingSequence ||
        (guard.lastTick !== undefined &&
          (current?.lastTick?.markPrice !== guard.lastTick.markPrice ||
            current.lastTick.timestampMs !== guard.lastTick.timestampMs)))
    ) {
      throw new ConditionFailedError(
        `markets/changed: ${symbol}'s breaker, pending mark or last tick moved since it was read`,
      );
    }
    const { pendingSequence: _p, pendingSegment: _s, heldJump: _j, breaker, ...rest } = current ?? { symbol };
    this.#set({
      ...rest,
      symbol,
      lastTick: tick,
      ...(pending ? { pendingSequence: tick.sequence } : {}),
      ...(breaker && !guard?.closeBreaker ? { breaker } : {}),
      ...(guard?.bandAnchor ? { bandAnchor: guard.bandAnchor } : {}),
    });
    fire(this.#hook, 'markets.acceptTick');
    return this.#states.get(symbol)!;
  }

  async clearPending(symbol: string, tick: PendingTick): Promise<void> {
    const current = this.#states.get(symbol);
    if (!current || !isPending(current, tick)) return;
    this.#set({ ...current, pendingSequence: undefined, pendingSegment: undefined });
    fire(this.#hook, 'markets.clearPending');
  }

  async claimSegment(symbol: string, tick: PendingTick, segment: number): Promise<boolean> {
    requireSegment(segment);
    const current = this.#states.get(symbol);
    if (!current || !isPending(current, tick) || (current.pendingSegment ?? 0) >= segment) return false;
    this.#set({ ...current, pendingSegment: segment });
    fire(this.#hook, 'markets.claimSegment');
    return true;
  }

  async tripBreaker(
    symbol: string,
    reason: string,
    tick: AcceptedTick,
    atMs: number,
    judged?: JudgedMarket,
  ): Promise<boolean> {
    requireId(symbol, 'markets');
    const current = this.#states.get(symbol);
    // Re-armed only by a later tick (a redelivered or older one never moves it back), unless judged on this very
    // breaker (a print of the feed numbered below a bad one ahead of it: evaluateTick), and only on the last tick
    // the rejection was judged on.
    if (!judged && current?.breaker && current.breaker.tick.sequence >= tick.sequence) return false;
    // A trip judged before another trip landed was judged against the wrong breaker (a concurrent tick).
    if (judged && !isJudgedOn(current, judged)) return false;
    this.#set({ ...current, symbol, breaker: { reason, trippedAtMs: atMs, tick } });
    fire(this.#hook, 'markets.tripBreaker');
    return true;
  }

  async holdSequenceJump(
    symbol: string,
    tick: AcceptedTick,
    atMs: number,
    judged: JudgedJump,
    note?: RefusalNote,
  ): Promise<boolean> {
    requireId(symbol, 'markets');
    const current = this.#states.get(symbol);
    if (!samePrint(current?.heldJump?.tick, judged.heldTick) || !isJudgedOn(current, judged)) return false;
    // A continuation since keeps the held jump for its span (feed51-hold-over-continuation).
    if (current?.heldJump && current.heldJump.continuedAtMs !== judged.heldContinuedAtMs) return false;
    const held: MarketState = { ...current, symbol, heldJump: { tick, heldAtMs: atMs } };
    const written = note ? withNote(held, note) : held;
    if (!written) return false;
    this.#set(written);
    fire(this.#hook, 'markets.holdSequenceJump');
    return true;
  }

  async continueSequenceJump(
    symbol: string,
    heldTick: PrintAsRead,
    atMs: number,
    note?: RefusalNote,
  ): Promise<JumpContinued> {
    const current = this.#states.get(symbol);
    // The note refused, none after it: written alone it would fail too (feed51-jump-double-refusal).
    const refused = note !== undefined && withNote(current ?? { symbol }, note) === undefined;
    // The print as read, not its number alone (feed52-jump-continued-other-print).
    if (!current?.heldJump || !samePrint(current.heldJump.tick, heldTick))
      return refused ? 'note-refused' : 'not-held';
    // Never set back (review50-feed-jump-continued-back, feed51-jump-continued-back-alone).
    const stored = current.heldJump.continuedAtMs;
    if (stored !== undefined && stored > atMs) return refused ? 'note-refused' : 'continued-later';
    const continued: MarketState = { ...current, heldJump: { ...current.heldJump, continuedAtMs: atMs } };
    const written = note ? withNote(continued, note) : continued;
    // The note refused, a continuation as late stands (a twin's): nothing to write.
    if (!written && stored === atMs) return 'note-refused';
    this.#set(written ?? continued);
    fire(this.#hook, 'markets.continueSequenceJump');
    return written ? 'written' : 'note-refused';
  }

  async rebaseSequence(
    symbol: string,
    sequence: number,
    expected: MarketState,
    resumedAfterMs: number,
  ): Promise<MarketState> {
    const current = this.#states.get(symbol);
    const last = current?.lastTick;
    const top = highestSequence(current);
    if (
      !current ||
      top < 0 ||
      top <= sequence ||
      current.pendingSequence !== expected.pendingSequence ||
      !samePrint(last, expected.lastTick) ||
      !samePrint(current.breaker?.tick, expected.breaker?.tick)
    ) {
      throw new ConditionFailedError(
        `markets/not-rebased: ${symbol} has no last tick above ${sequence}, or changed since it was read`,
      );
    }
    // A pending tick read with the state is taken over (its caller re-sent what it started), as acceptTick does.
    const { pendingSequence: _pending, pendingSegment: _segment, ...settled } = current;
    this.#set(rebasedTickState(settled, { sequence, resumedAfterMs }));
    fire(this.#hook, 'markets.rebaseSequence');
    return this.#states.get(symbol)!;
  }

  async noteBreakerConfirming(
    symbol: string,
    breakerTick: PrintAsRead,
    confirming: BreakerConfirming,
  ): Promise<void> {
    const current = this.#states.get(symbol);
    const breaker = current?.breaker;
    if (!breaker || !samePrint(breaker.tick, breakerTick)) return;
    if (breaker.confirming && breaker.confirming.sequence >= confirming.sequence) return;
    this.#set({ ...current, breaker: { ...breaker, confirming } });
    fire(this.#hook, 'markets.noteBreakerConfirming');
  }

  async noteRefusal(
    symbol: string,
    reason: TracedRefusal,
    trace: RefusalTrace,
    replacing?: UnreadableRefusalTrace,
  ): Promise<void> {
    const current = this.#states.get(symbol);
    const written = withNote(current ?? { symbol }, { reason, trace, ...(replacing ? { replacing } : {}) });
    if (!written) return;
    this.#set(written);
    fire(this.#hook, 'markets.noteRefusal');
  }

  async dropRefusals(symbol: string, traces: readonly DroppedRefusal[]): Promise<void> {
    const current = this.#states.get(symbol);
    const stored = current?.refusals;
    // All or none, as the AWS adapter's one conditional write. An unreadable one (or of a kind unknown) is never
    // stored here.
    if (!current || !stored || traces.length === 0) return;
    if (
      traces.some(
        ({ reason, trace }) =>
          isUnreadableRefusal(trace) ||
          stored[reason as TracedRefusal]?.sequence !== trace.sequence ||
          stored[reason as TracedRefusal]?.atMs !== trace.atMs,
      )
    )
      return;
    const kept = Object.fromEntries(
      Object.entries(stored).filter(([reason]) => !traces.some((t) => t.reason === reason)),
    );
    const { refusals: _all, ...rest } = current;
    this.#set(Object.keys(kept).length === 0 ? rest : { ...rest, refusals: kept });
    fire(this.#hook, 'markets.dropRefusals');
  }

  async resetBreaker(symbol: string): Promise<void> {
    const current = this.#states.get(symbol);
    if (!current?.breaker) return;
    this.#set({ ...current, breaker: undefined });
    fire(this.#hook, 'markets.resetBreaker');
  }

  async coverWakeMark(symbol: string, direction: 'BUY' | 'SELL', wakeMark: PriceE8): Promise<void> {
    requireId(symbol, 'markets');
    requireMark(wakeMark);
    const current = this.#states.get(symbol);
    const stored = current?.wakeMarks?.[direction];
    const covered = stored !== undefined && earlierWake(direction, stored, wakeMark) === stored;
    const wakeCovers = { ...current?.wakeCovers, [direction]: (current?.wakeCovers?.[direction] ?? 0) + 1 };
    this.#set({
      ...current,
      symbol,
      ...(covered ? {} : { wakeMarks: { ...current?.wakeMarks, [direction]: wakeMark } }),
      wakeCovers,
    });
    fire(this.#hook, 'markets.coverWakeMark');
  }

  async replaceWakeMark(
    symbol: string,
    direction: 'BUY' | 'SELL',
    expected: PriceE8,
    next: PriceE8 | undefined,
    covers: number | undefined,
  ): Promise<boolean> {
    if (next !== undefined) requireMark(next);
    const current = this.#states.get(symbol);
    if (!current || current.wakeMarks?.[direction] !== expected) return false;
    if (current.wakeCovers?.[direction] !== covers) return false;
    const { [direction]: _replaced, ...others } = current.wakeMarks;
    const wakeMarks = next === undefined ? others : { ...others, [direction]: next };
    this.#set({ ...current, wakeMarks: Object.keys(wakeMarks).length > 0 ? wakeMarks : undefined });
    fire(this.#hook, 'markets.replaceWakeMark');
    return true;
  }

  async bumpProvidersEpoch(symbol: string): Promise<number> {
    requireId(symbol, 'markets');
    const current = this.#states.get(symbol);
    const providersEpoch = providersEpochOf(current) + 1;
    this.#set({ ...current, symbol, providersEpoch });
    fire(this.#hook, 'markets.bumpProvidersEpoch');
    return providersEpoch;
  }

  async markSpentWake(symbol: string, epoch: number): Promise<void> {
    requireId(symbol, 'markets');
    const current = this.#states.get(symbol);
    if ((current?.spentWakeEpoch ?? 0) >= epoch) return;
    this.#set({ ...current, symbol, spentWakeEpoch: epoch });
    fire(this.#hook, 'markets.markSpentWake');
  }

  async recordRegistrationWake(
    symbol: string,
    wake: RegistrationWake,
    expectedPart: number | undefined,
  ): Promise<boolean> {
    requireId(symbol, 'markets');
    const current = this.#states.get(symbol);
    const stored = current?.registrationWake;
    const matches =
      expectedPart === undefined
        ? stored === undefined || stored.epoch < wake.epoch
        : stored?.epoch === wake.epoch && stored.part === expectedPart;
    if (!matches) return false;
    this.#set({ ...current, symbol, registrationWake: wake });
    fire(this.#hook, 'markets.recordRegistrationWake');
    return true;
  }

  async countLastResortFill(symbol: string, direction: 'BUY' | 'SELL'): Promise<void> {
    requireId(symbol, 'markets');
    const current = this.#states.get(symbol);
    const lastResortFills = {
      ...current?.lastResortFills,
      [direction]: (current?.lastResortFills?.[direction] ?? 0) + 1,
    };
    this.#set({ ...current, symbol, lastResortFills });
    fire(this.#hook, 'markets.countLastResortFill');
  }

  /** The transactor's ProvidersEpochCheck: synchronous, inside its commit. */
  checkProvidersEpoch({ symbol, epoch }: ProvidersEpochCheck): void {
    const stored = providersEpochOf(this.#states.get(symbol));
    if (stored !== epoch)
      throw new ConditionFailedError(
        `markets/providers-changed: ${symbol} providers epoch is ${stored}, not ${epoch}`,
      );
  }

  #set(state: MarketState): void {
    this.#states.set(state.symbol, frozenCopy(state));
  }
}

/** The pending tick is the last tick: the same sequence and recorded stamp (another numbering may reuse the number). */
const isPending = (state: MarketState, tick: PendingTick): boolean =>
  state.pendingSequence === tick.sequence && state.lastTick?.timestampMs === tick.timestampMs;

/** The same print: after a resume or a rebase another print may carry its sequence, never its stamp too. */
const samePrint = (a: PrintAsRead | undefined, b: PrintAsRead | undefined): boolean =>
  a?.sequence === b?.sequence && a?.timestampMs === b?.timestampMs && a?.markPrice === b?.markPrice;

/** The last tick and the breaker's tick are still the prints a judgment read. */
const isJudgedOn = (state: MarketState | undefined, judged: JudgedMarket): boolean =>
  samePrint(state?.lastTick, judged.lastTick) && samePrint(state?.breaker?.tick, judged.breakerTick);

function requireMark(mark: PriceE8): void {
  if (typeof mark !== 'bigint' || mark <= 0n)
    throw new EmbeddedInputError(`markets/bad-wake-mark: a wake mark is a positive price, got ${mark}`);
}

function requireSegment(segment: number): void {
  if (!Number.isSafeInteger(segment) || segment < 1)
    throw new EmbeddedInputError(
      `markets/bad-segment: a continuation segment is an integer >= 1, got ${segment}`,
    );
}
