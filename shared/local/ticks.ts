import type { EventBridgeClient, PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { sleep as realSleep } from '../backoff.ts';
import { formatPrice } from '../domain/units.ts';
import {
  PUT_EVENTS_BATCH,
  PutEntriesError,
  type PutOutcome,
  putEntries,
  type RefusedEntry,
  refusedForEveryCall,
  TickInputError,
  tickDetail,
  tickEntry,
  type UnknownEntry,
} from '../feed/publisher.ts';
import { currentRefusals, type MarketRepository, type MarketState, TRACED_REFUSALS } from '../ports/index.ts';
import type { PricePoint } from '../prices/parse.ts';

/**
 * Putting PriceTick events on the tick bus from outside (operator injection, file replays), through the feed's own
 * publisher (shared/feed/publisher.ts): the detail checked against the schema margin-check parses, entries 10 per
 * PutEvents, those the bus answered with a retryable code sent again, and every entry's outcome reported.
 */

export const TICK_SOURCE = 'backstop-cli';

/**
 * The sequence after everything the market has seen: max(last accepted, breaker tick, the print it refused last while
 * confirming, pending) + 1; a market with no tick yet starts at `nowMs` (epoch ms), above any sequence an earlier
 * clock-based feed used.
 */
export async function nextSequence(
  markets: MarketRepository,
  symbol: string,
  nowMs: number,
): Promise<number> {
  return sequenceAfter(await markets.get(symbol), nowMs);
}

/** nextSequence on a market already read. */
export function sequenceAfter(state: MarketState | undefined, nowMs: number): number {
  // The refused print's too: a replay counts it handled (handledOnRecord), and would count a tick numbered so at once.
  const seen = [
    state?.lastTick?.sequence,
    state?.breaker?.tick.sequence,
    state?.breaker?.confirming?.sequence,
    state?.pendingSequence,
  ].filter((s): s is number => s !== undefined);
  return seen.length === 0 ? nowMs : Math.max(...seen) + 1;
}

// --- Replays ---------------------------------------------------------------------------------------------

export type ReplaySpeed = { readonly kind: 'max' } | { readonly kind: 'factor'; readonly factor: number };

/** "max" or "<n>x" (60x: a minute of the file per second; 1x: real time); up to 1,000,000x. */
export function parseSpeed(text: string): ReplaySpeed {
  const value = text.trim().toLowerCase();
  if (value === 'max') return { kind: 'max' };
  const match = /^(\d{1,7}(?:\.\d{1,3})?)x$/.exec(value);
  const factor = match ? Number(match[1]) : Number.NaN;
  if (!(factor > 0) || factor > 1_000_000) {
    throw new TickInputError(`--speed: "${text}" is not "max" or a factor like 60x (0 < factor <= 1000000)`);
  }
  return { kind: 'factor', factor };
}

/** When each point is due, in ms after the replay starts: (t_i - t_0) / factor, or 0 at max speed. */
export function dueOffsets(points: readonly PricePoint[], speed: ReplaySpeed): number[] {
  const t0 = points[0]?.timestampMs ?? 0;
  return points.map((p) => (speed.kind === 'max' ? 0 : (p.timestampMs - t0) / speed.factor));
}

/**
 * Batches to send: consecutive points due at the same moment (`dueOffsets` equal within `windowMs`), at most
 * 10 each, so a paced replay sends each minute's tick when it is due and a max-speed one sends 10 at a time.
 */
export function replayBatches(
  offsets: readonly number[],
  windowMs = 0,
  /** At most this many a batch (a replay's backlog limit: a batch larger than it could never be sent). */
  maxBatch = PUT_EVENTS_BATCH,
): { start: number; end: number; dueMs: number }[] {
  const size = Math.max(1, Math.min(PUT_EVENTS_BATCH, maxBatch));
  const batches: { start: number; end: number; dueMs: number }[] = [];
  let start = 0;
  while (start < offsets.length) {
    const dueMs = offsets[start]!;
    let end = start + 1;
    while (end < offsets.length && end - start < size && offsets[end]! - dueMs <= windowMs) end++;
    batches.push({ start, end, dueMs });
    start = end;
  }
  return batches;
}

export interface ReplayOptions {
  readonly points: readonly PricePoint[];
  readonly symbol: string;
  readonly busName: string;
  readonly events: EventBridgeClient;
  readonly speed: ReplaySpeed;
  /** Sequence of the first point; each next point gets the next integer. */
  readonly firstSequence: number;
  readonly source?: string;
  /**
   * A test's clock, which paces the run and, moved by stampOffsetMs, stamps its ticks. Absent, the pacing and the
   * stall's deadline, durations, are timed by the monotonic clock (performance.now), the stamps by the machine's wall
   * clock (Date.now): a step of the wall clock held the next tick as long as it went back, and, forward past stallMs,
   * stopped the replay as stalled (final50b-replay-pace-clock, as review50-cli2-hold-clock for the hold's looks).
   */
  readonly now?: () => number;
  /**
   * AWS's time less the stamps' clock's (`now`, or Date.now), taken once as the run starts: each tick is stamped by
   * that clock moved by it, since margin-check judges stamps by AWS's clock (ops49b-tick-clock). Fixed, so stamps keep
   * that clock's order (one before the last tick's is
   * refused as out of order), where AWS's time re-read from each answer's Date header would jitter by a second. 0 when
   * absent.
   */
  readonly stampOffsetMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly onProgress?: (sent: number, total: number) => void;
  /** Stops early (Ctrl-C): the points not sent yet are reported as not sent. */
  readonly signal?: AbortSignal;
  /** Keeps the replay at most `limit` ticks ahead of what the stack has handled (see ReplayBacklog). */
  readonly backlog?: ReplayBacklog;
  /** After the last point, keeps sending its price while work is left (see ReplayHold). */
  readonly hold?: ReplayHold;
  /**
   * Before each batch (and held tick): the first sequence free for `count` ticks from `next`, the replay's own next
   * one. Another sender (an inject, a second replay) may have taken it: the replay numbers on after it.
   */
  readonly claim?: (next: number, count: number) => Promise<number>;
  /** Called when `claim` moved the numbering: sequences from..to were another sender's. */
  readonly onRenumber?: (from: number, to: number) => void;
}

/**
 * A live feed does not stop with the file: the work a crash leaves (auctions, slices waiting for the book) acts
 * only on a mark at most maxMarkAgeSeconds old, and waits for a tick past it. Holding sends the last price again,
 * each time as the next sequence stamped now, every `everyMs` for as long as `pending()`, asked before each, says
 * work is left.
 */
export interface ReplayHold {
  readonly everyMs: number;
  /** Whether the stack still has liquidations in flight (false ends the hold). */
  readonly pending: () => Promise<boolean>;
  /** Called with each held tick's sequence once it is on the bus. */
  readonly onSent?: (sequence: number) => void;
  /**
   * Called instead of onSent for a held tick the bus did not put, past which the hold goes on: refused (not on the bus:
   * a throttle through its attempts, a code for the entry itself) or of unknown fate (an answer with no result for it)
   * (feed49c-held-tick-line).
   */
  readonly onNotPut?: (sequence: number, notPut: HeldNotPut) => void;
  /**
   * Whether a held tick's PutEvents that failed without an answer may heal (PutOptions.callMayHeal): then it is sent
   * again, as the publisher retries (timeouts48-held-put), before the failure ends the replay; not once `signal` aborted.
   */
  readonly putMayHeal?: (error: unknown) => boolean;
}

/** A held tick the bus did not put: refused, not on the bus; or of unknown fate, on the bus or not. */
export type HeldNotPut =
  | { readonly fate: 'refused'; readonly refused: RefusedEntry }
  | { readonly fate: 'unknown'; readonly unknown: UnknownEntry };

/**
 * Flow control: a tick is stamped when it is sent, and margin-check refuses one older than the market's
 * maxTickAgeSeconds, so a replay far ahead of a slow stack would see most of its ticks refused as too old. The
 * replay waits while `limit` ticks are sent and not handled, and stops (ReplayOutcome.stalled) when the stack
 * has handled none for `stallMs`: it is not running, or refuses the ticks without recording them.
 */
export interface ReplayBacklog {
  /**
   * Ticks sent and not handled, at most. Above 1, ticks of the market are in flight together, which EventBridge may
   * deliver in either order (margin-check then refuses the older as out of order): `backstop replay` keeps 1.
   */
  readonly limit: number;
  /** What the market shows of the ticks it handled (handledTicks). */
  readonly handled: () => Promise<HandledTicks>;
  readonly stallMs: number;
  readonly pollMs: number;
}

/**
 * A tick the market shows it did not take: held by its breaker, refused while the breaker confirms a move, or refused
 * by a rule that records nothing else (its refusal trace: too old, out of order, a duplicate, ...).
 */
export interface TickNotTaken {
  readonly sequence: number;
  /** The refusal (tick/breaker-confirming, tick/too-old, ...), or the breaker's own reason for the tick it holds. */
  readonly reason: string;
}

/** A refusal trace on the market's record (MarketState.refusals): the latest tick refused of its kind. */
export interface RefusedOnRecord extends TickNotTaken {
  /** The tick's own stamp: a sender knows its tick by its sequence and stamp. */
  readonly timestampMs: number;
}

/** What a market's record shows of the ticks margin-check handled. */
export interface HandledTicks {
  /** The highest sequence it shows handled: accepted, held by its breaker, or refused while it confirms; undefined: none. */
  readonly upTo: number | undefined;
  /** Of those, the ones it shows it did not take (the record keeps the latest of each kind only). */
  readonly notTaken: readonly TickNotTaken[];
  /** The print its circuit breaker holds, a move beyond the band (not a market's first print); absent: none. */
  readonly breaker?: TickNotTaken;
  /**
   * The latest tick refused of each kind that records nothing else (too old, out of order, ...), noted since the
   * market's latest rebase. Not in `upTo`: only the sender of the tick (its sequence and stamp) knows it is its own.
   */
  readonly refused?: readonly RefusedOnRecord[];
}

export interface ReplayOutcome extends PutOutcome {
  /** Refused entries, with the sequence each carried (the numbering may skip another sender's). */
  readonly rejected: readonly (RefusedEntry & { readonly sequence: number })[];
  /** Entries of unknown fate (on the bus or not), with the sequence each carried. */
  readonly unknown: readonly (UnknownEntry & { readonly sequence: number })[];
  /**
   * Ticks whose PutEvents call left no request (the SDK could not resolve the caller's credentials: PutEntriesError's
   * notSent, the reason here): not on the bus, not counted in `sent` or `held` (feed49-put-not-sent).
   */
  readonly notSent?: readonly { readonly sequence: number; readonly reason: string }[];
  /**
   * Ticks on the bus that margin-check did not take, as the market showed them: held by its breaker (a move beyond
   * the band, liquidating nothing until it persists), refused while the breaker confirmed the move
   * (tick/breaker-confirming), or refused by a rule that records nothing else (tick/too-old, tick/out-of-order, ...:
   * the market's refusal traces, known by the tick's sequence and stamp). Seen while waiting on each tick (backlog):
   * none without one.
   */
  readonly notTaken: readonly TickNotTaken[];
  /** Sequences another sender took while the replay ran: it numbered on after them. */
  readonly renumbered: readonly { readonly from: number; readonly to: number }[];
  /** Why the replay stopped before the end while the stack handled nothing (ReplayBacklog). */
  readonly stalled?: string;
  /**
   * The tick whose PutEvents call EventBridge refused whole, or refused by policy in its entry result, for a reason
   * every next call would meet too (the caller's credentials, the bus's policy: refusedForEveryCall): the replay
   * stopped there, sending nothing after it. It is among `rejected` too, or among `unknown` when an earlier call of it
   * got no answer (a held tick sent again: feed49b-held-refused-unknown).
   */
  readonly refusedWhole?: RefusedEntry & { readonly sequence: number };
  /**
   * The error that ended the replay before its end (a PutEvents call that failed without an answer, whose tick is
   * among `unknown`; a read of the market that failed): the outcome is what was done before it.
   */
  readonly error?: unknown;
  readonly total: number;
  readonly sent: number;
  /** Ticks of the last price sent after the file (ReplayHold). */
  readonly held: number;
  readonly firstSequence: number;
  /** The last sequence the replay numbered, its call made a request or not (notSent). */
  readonly lastSequence: number;
  /**
   * The last sequence that may be on the bus: taken by it (an event id) or of unknown fate; not one it refused, nor one
   * whose call made no request (cli50b-replay-last-sent). Absent: none.
   */
  readonly lastMaybeOnBus?: number;
  /** The last sequence the bus took (an event id); absent: none. */
  readonly lastTaken?: number;
}

/**
 * Waits until `batch` more ticks leave at most `limit` unhandled; the reason when it stalled. `onBus`: the sequences
 * the bus took, ascending (those handled are dropped from it): a tick the bus refused never reaches the market, and
 * counted as waiting it held a replay whose batch ended with one for `stallMs`, then stopped it as stalled
 * (seq43-refused-backlog). `lastSent`: the replay's last sequence, for the reason. `seen` gets each look's ticks not
 * taken.
 */
async function awaitBacklog(
  backlog: ReplayBacklog,
  limit: number,
  onBus: number[],
  lastSent: number,
  batch: number,
  options: ReplayOptions,
  now: () => number,
  sleep: (ms: number) => Promise<void>,
  seen: (handled: HandledTicks) => number | undefined,
): Promise<string | undefined> {
  let last: HandledTicks | undefined;
  const look = async () => {
    last = await backlog.handled();
    return seen(last);
  };
  let handled = await look();
  let progressAt = now();
  const behind = () => {
    while (handled !== undefined && onBus.length > 0 && onBus[0]! <= handled) onBus.shift();
    return onBus.length + batch;
  };
  while (behind() > limit && !options.signal?.aborted) {
    if (now() - progressAt >= backlog.stallMs) {
      // A print refused while the breaker confirms its move is noted on it, best effort: a note that failed leaves
      // the replay waiting here (follow47-breaker-trace-best-effort).
      const breaker = last?.breaker;
      return (
        `replay/stalled: ${options.symbol} handled no tick for ${Math.round(backlog.stallMs / 1000)} s ` +
        `(last handled ${handled ?? 'none'}, sent up to ${lastSent})` +
        (breaker
          ? `, while its circuit breaker holds tick ${breaker.sequence} (${breaker.reason}): margin-check notes on the ` +
            'breaker each print it refuses while the move confirms (breaker.confirming), unless that note fails ' +
            '(margin-check\'s warning "breaker\'s confirming trace not written", metric BreakerTraceFailures) or the ' +
            'stack is older than session 47; else'
          : ':') +
        ' is the stack running, and its ticks accepted ' +
        '(a tick that failed to the end is in `backstop dlq list --queue tickDeadLetters`)? margin-check notes on the ' +
        'market each tick it refuses too old, out of order, ... (refusals), unless that note fails (its warning ' +
        '"refusal\'s trace not written", metric RefusalTraceFailures) or the stack is older than session 48'
      );
    }
    await sleep(backlog.pollMs);
    const next = await look();
    if (next !== handled) {
      handled = next;
      progressAt = now();
    }
  }
  return undefined;
}

/**
 * What the market's record shows of the ticks margin-check handled, for a replay's backlog: its last accepted tick,
 * the one its breaker holds, and the last print the breaker refused while confirming the move it holds
 * (breaker.confirming). Those two are ticks not taken. A refusal of another kind (too old, out of order, a duplicate,
 * ...) is the market's refusal trace of its kind, noted since its latest rebase (currentRefusals: one a version before
 * the traces rebased over is stale), which only the tick's sender can tell its own (`refused`).
 */
export function handledOnRecord(state: MarketState | undefined): HandledTicks {
  const breaker = state?.breaker;
  const notTaken: TickNotTaken[] = [];
  // A market's first print waits for a second: how every market starts, not a tick the replay lost.
  if (breaker && breaker.reason !== 'tick/unconfirmed')
    notTaken.push({ sequence: breaker.tick.sequence, reason: breaker.reason });
  if (breaker?.confirming)
    notTaken.push({ sequence: breaker.confirming.sequence, reason: 'tick/breaker-confirming' });
  const seen = [state?.lastTick?.sequence, breaker?.tick.sequence, breaker?.confirming?.sequence].filter(
    (s): s is number => s !== undefined,
  );
  const traces = currentRefusals(state);
  return {
    upTo: seen.length === 0 ? undefined : Math.max(...seen),
    notTaken,
    ...(breaker && breaker.reason !== 'tick/unconfirmed'
      ? { breaker: { sequence: breaker.tick.sequence, reason: breaker.reason } }
      : {}),
    refused: TRACED_REFUSALS.flatMap((reason) => {
      const t = traces[reason];
      return t ? [{ sequence: t.sequence, timestampMs: t.timestampMs, reason }] : [];
    }),
  };
}

/** handledOnRecord on the market as it is now. */
export async function handledTicks(markets: MarketRepository, symbol: string): Promise<HandledTicks> {
  return handledOnRecord(await markets.get(symbol));
}

/** Why a call left no request, with its error: `no request left: ... (CredentialsProviderError: ...)`. */
const notSentText = (error: PutEntriesError): string => {
  const cause =
    error.cause instanceof Error ? `${error.cause.name}: ${error.cause.message}` : String(error.cause);
  return `${error.notSent} (${cause.split('\n')[0]})`;
};

/**
 * Replays price points as ticks. Each tick's timestamp is the time it is sent (by AWS's clock: stampOffsetMs), so the market sees a live feed
 * (the file's own times only set the pacing; a 2020 timestamp would be refused as stale). Each tick goes in a
 * PutEvents of its own, once the one before was put (and, with a backlog, handled as far as its limit says).
 */
export async function replayPrices(options: ReplayOptions): Promise<ReplayOutcome> {
  const now = options.now ?? (() => performance.now());
  const wallNow = options.now ?? Date.now;
  const stampOffsetMs = options.stampOffsetMs ?? 0;
  const sleep = options.sleep ?? realSleep;
  const offsets = dueOffsets(options.points, options.speed);
  const started = now();
  let done = 0;
  let accepted = 0;
  const rejected: (RefusedEntry & { sequence: number })[] = [];
  const unknown: (UnknownEntry & { sequence: number })[] = [];
  // The index in the run (the file's points first, then the held ticks) of each tick whose call left no request.
  const notSent: { index: number; sequence: number; reason: string }[] = [];
  const eventIds: string[] = [];
  let stalled: string | undefined;
  let refusedWhole: (RefusedEntry & { sequence: number }) | undefined;
  let failure: { readonly error: unknown } | undefined;
  let held = 0;
  let lastMaybeOnBus: number | undefined;
  let lastTaken: number | undefined;
  // The replay's ticks, each sequence's stamp: a refusal trace on the market is one of them only with both.
  const sent = new Map<number, number>();
  // The replay's ticks the market showed it did not take (feed47-replay-breaker, feed48-refusal-trace), by sequence.
  const notTaken = new Map<number, TickNotTaken>();
  let lastLook: HandledTicks | undefined;
  // What a look shows handled: the record's, and the replay's own ticks it shows refused (their traces).
  const seen = (handled: HandledTicks): number | undefined => {
    lastLook = handled;
    for (const t of handled.notTaken)
      if (sent.has(t.sequence) && !notTaken.has(t.sequence)) notTaken.set(t.sequence, t);
    let upTo = handled.upTo;
    for (const { timestampMs, ...t } of handled.refused ?? []) {
      if (sent.get(t.sequence) !== timestampMs) continue;
      if (!notTaken.has(t.sequence)) notTaken.set(t.sequence, t);
      upTo = Math.max(upTo ?? t.sequence, t.sequence);
    }
    return upTo;
  };
  // The next sequence to send: it skips any another sender took (claim).
  let next = options.firstSequence;
  let firstSent: number | undefined;
  const renumbered: { from: number; to: number }[] = [];
  // The sequences the bus took and the market may not have handled yet (awaitBacklog).
  const onBus: number[] = [];
  const claim = async (count: number): Promise<number> => {
    const first = options.claim ? await options.claim(next, count) : next;
    if (first > next) {
      renumbered.push({ from: next, to: first - 1 });
      options.onRenumber?.(next, first - 1);
    }
    firstSent ??= first;
    next = first + count;
    return first;
  };
  /**
   * Puts ticks numbered from `first`, the `index`-th of the run on; what the bus answered is counted. A call that failed
   * without an answer (PutEntriesError) is counted as far as it went (its ticks of unknown fate), then thrown.
   */
  const put = async (
    entries: readonly PutEventsRequestEntry[],
    first: number,
    index: number,
    stamp: number,
    callMayHeal?: (error: unknown) => boolean,
  ) => {
    let outcome: PutOutcome;
    let failed: PutEntriesError | undefined;
    try {
      outcome = await putEntries(options.events, entries, {
        sleep,
        ...(callMayHeal ? { callMayHeal } : {}),
      });
    } catch (error) {
      if (!(error instanceof PutEntriesError)) throw error;
      failed = error;
      outcome = { ...error.outcome, unknown: [...error.outcome.unknown, ...error.unknown] };
    }
    accepted += outcome.accepted;
    const refused = outcome.rejected.map((r) => ({
      ...r,
      index: r.index + index,
      sequence: first + r.index,
    }));
    rejected.push(...refused);
    const fateUnknown = outcome.unknown.map((u) => ({
      ...u,
      index: u.index + index,
      sequence: first + u.index,
    }));
    unknown.push(...fateUnknown);
    // Never sent: said so, with why, not as sent (feed49-put-not-sent).
    const never = new Set(failed?.notSent === undefined ? [] : failed.unsent);
    for (const i of never)
      notSent.push({ index: index + i, sequence: first + i, reason: notSentText(failed!) });
    // Waited on: those the bus took (one of unknown fate may never come).
    const notPut = new Set([...outcome.rejected, ...outcome.unknown].map((r) => r.index));
    const refusedAt = new Set(outcome.rejected.map((r) => r.index));
    entries.forEach((_, i) => {
      if (never.has(i)) return;
      sent.set(first + i, stamp);
      if (!refusedAt.has(i)) lastMaybeOnBus = first + i;
      if (notPut.has(i)) return;
      onBus.push(first + i);
      lastTaken = first + i;
    });
    eventIds.push(...outcome.eventIds);
    // Every next call would be refused the same: stop, as the SDK's error once stopped it (follow47-replay-call-refused).
    // A refusal after an earlier call got no answer leaves the tick of unknown fate, and is met by every next call all
    // the same (feed49b-held-refused-unknown).
    refusedWhole = refusedForEveryCall([
      ...refused,
      ...fateUnknown.flatMap(({ refusedAfter, ...u }) => (refusedAfter ? [{ ...u, ...refusedAfter }] : [])),
    ]);
    if (failed) throw failed;
    return { refused, unknown: fateUnknown };
  };
  try {
    // One tick a PutEvents (review46-replay-order): EventBridge keeps no order between the entries of a call, and a
    // tick sent again after a partial failure would land after the ones put with it, refused as out of order.
    for (const batch of replayBatches(offsets, 5, 1)) {
      if (options.signal?.aborted) break;
      const wait = started + batch.dueMs - now();
      if (wait > 0) await sleep(wait);
      if (options.backlog && batch.start > 0)
        stalled = await awaitBacklog(
          options.backlog,
          options.backlog.limit,
          onBus,
          next - 1,
          batch.end - batch.start,
          options,
          now,
          sleep,
          seen,
        );
      if (stalled) break;
      if (options.signal?.aborted) break;
      const first = await claim(batch.end - batch.start);
      const sendMs = wallNow() + stampOffsetMs;
      const entries = options.points.slice(batch.start, batch.end).map((point, i) =>
        tickEntry(
          options.busName,
          tickDetail({
            symbol: options.symbol,
            markPrice: formatPrice(point.price),
            timestampMs: sendMs,
            sequence: first + i,
            source: options.source ?? TICK_SOURCE,
          }),
        ),
      );
      // A tick of unknown fate was sent, as far as the replay knows.
      done = batch.end;
      await put(entries, first, batch.start, sendMs);
      options.onProgress?.(done, options.points.length);
      if (refusedWhole) break;
    }
    // While the market's breaker holds a move, or refuses the replay's ticks, the file's last ticks are waited on
    // too: their refusal (the record's trace, replaced by the next) is reported, not left behind the end.
    if (
      options.backlog &&
      ((lastLook?.notTaken.length ?? 0) > 0 || notTaken.size > 0) &&
      !stalled &&
      !refusedWhole &&
      !options.signal?.aborted
    )
      stalled = await awaitBacklog(options.backlog, 0, onBus, next - 1, 0, options, now, sleep, seen);
    const last = options.points[done - 1];
    if (options.hold && last && !stalled && !refusedWhole && done === options.points.length) {
      const { everyMs, pending, onSent, onNotPut, putMayHeal } = options.hold;
      while (!options.signal?.aborted) {
        // In steps of a second, so Ctrl-C ends a hold at once.
        for (let waited = 0; waited < everyMs && !options.signal?.aborted; waited += 1000)
          await sleep(Math.min(1000, everyMs - waited));
        // Asked after the wait, right before a tick: the stack has handled the file's last ticks by then.
        if (options.signal?.aborted || !(await pending())) break;
        const sequence = await claim(1);
        const stamp = wallNow() + stampOffsetMs;
        const entry = tickEntry(
          options.busName,
          tickDetail({
            symbol: options.symbol,
            markPrice: formatPrice(last.price),
            timestampMs: stamp,
            sequence,
            source: options.source ?? TICK_SOURCE,
          }),
        );
        held += 1;
        // Not after Ctrl-C: a call on a dead connection takes the SDK's attempts (review48-timeouts-held-put-abort).
        const mayHeal = putMayHeal && ((e: unknown) => !options.signal?.aborted && putMayHeal(e));
        const answered = await put([entry], sequence, done + held - 1, stamp, mayHeal);
        if (refusedWhole) break;
        // Said as it went: "sent again" of a tick the bus refused or said nothing of was not true (feed49c-held-tick-line).
        const refused = answered.refused[0];
        const unknown = answered.unknown[0];
        if (refused) onNotPut?.(sequence, { fate: 'refused', refused });
        else if (unknown) onNotPut?.(sequence, { fate: 'unknown', unknown });
        else onSent?.(sequence);
      }
    }
  } catch (error) {
    // Whatever ended it, the outcome so far is the caller's to say (feed48-replay-outcome-on-error).
    failure = { error };
  }
  return {
    ...(stalled ? { stalled } : {}),
    ...(refusedWhole ? { refusedWhole } : {}),
    ...(failure ? { error: failure.error } : {}),
    total: options.points.length,
    sent: done - notSent.filter((n) => n.index < options.points.length).length,
    held: held - notSent.filter((n) => n.index >= options.points.length).length,
    ...(notSent.length > 0 ? { notSent: notSent.map(({ sequence, reason }) => ({ sequence, reason })) } : {}),
    accepted,
    rejected,
    unknown,
    notTaken: [...notTaken].sort(([a], [b]) => a - b).map(([, t]) => t),
    eventIds,
    renumbered,
    firstSequence: firstSent ?? options.firstSequence,
    lastSequence: Math.max(firstSent ?? options.firstSequence, next - 1),
    ...(lastMaybeOnBus === undefined ? {} : { lastMaybeOnBus }),
    ...(lastTaken === undefined ? {} : { lastTaken }),
  };
}
