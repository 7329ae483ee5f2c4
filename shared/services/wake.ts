import type { PriceE8 } from '../domain/units.ts';
import { eachInFlight } from '../in-flight.ts';
import {
  type AuctionRepository,
  type QueueTransport,
  type Sleeper,
  type SpentWakeCursor,
  unsentOf,
} from '../ports/index.ts';
import { encodeMessage, stepMessageOf } from '../schemas/messages.ts';

/**
 * Sleepers one call wakes per market side; the rest wake at the next call. The 2020 replay wakes more than
 * 10,000 at once after a bounce; 50,000 are about 5 MB of index reads and 5,000 SendMessageBatch calls, 25 in
 * flight: a few seconds of a function's time.
 */
export const MAX_WAKES_PER_CALL = 50_000;
/** SendMessageBatch calls in flight at once while waking. */
const SENDS_IN_FLIGHT = 25;

/**
 * How long the part after a part that met a failed send waits (its continuation's delay), so a partly failing SQS is
 * not sent each part at once (wakes43b). Fixed: that part sends a batch at a time (inOrder) and stops at its first
 * failure, so it makes as many calls as it goes on, plus one; a part that sends nothing fails its delivery and waits
 * out SQS's backoff instead (5, 30, 120, 300 s). Doubled at each failed part, a wake of 2,500 sleepers with one call
 * in 5 failing (some 60 parts) would take most of an hour, far past its sleepers' own planned steps (900 s at most).
 */
export const WAKE_RETRY_DELAY_SECONDS = 5;

/** Sends a wake's continuation: at once, or, after a part that met a failed send, WAKE_RETRY_DELAY_SECONDS later. */
export async function sendWakeContinuation(
  queue: QueueTransport,
  body: string,
  afterFailedSend: boolean,
): Promise<void> {
  if (afterFailedSend) await queue.send(body, WAKE_RETRY_DELAY_SECONDS);
  else await queue.send(body);
}

/**
 * How long a part sent a batch at a time (inOrder) begins calls, once one went. One call after another, a part of 100
 * calls on a slow SQS (each call throttled and retried by the SDK, or waiting out its 5 s request timeout) took 100
 * calls' time, where 25 in flight took a few: 20 s at 200 ms a call, inside the step delivery it runs in (the auction
 * function's 60 s, a step begun with 20 s left: functions/auction), so a function timeout killed the delivery and
 * its batch, the part unrecorded, its retry in order again (review43c-in-order-part-time). Stopped here with no
 * failure, the part went as a whole one does: SQS is sending, and the next part goes on at once, 25 at a time.
 */
export const IN_ORDER_PART_MS = 5_000;

export interface WakeDeps {
  readonly auctions: Pick<AuctionRepository, 'sleepers'>;
  readonly auctionQueue: QueueTransport;
}

/** What one wakeSleepers call did. */
export interface Woken {
  /** Step messages known sent (sendSettled's `sent`: past a failed send too). */
  readonly woken: number;
  /** Of them, those up to `last`, where a retry goes on from: all the messages before the first not known sent. */
  readonly passed: number;
  /** The wake mark of the first sleeper left, reached or not. */
  readonly next: PriceE8 | undefined;
  /** Sleepers read (woken, or the one excepted). */
  readonly read: number;
  /**
   * Where the next call goes on (`after`): the last sleeper read; after a failed send, the last of the longest
   * prefix, in wake order, whose messages all went (none: not one of the first batch went).
   */
  readonly last?: Sleeper;
  /** Why a send failed: the sleepers after `last` are not all woken. */
  readonly failure?: string;
  /** `stop` said so before every batch went: the sleepers after `last` are not all woken (no send failed). */
  readonly stopped?: true;
}

/**
 * Sends the step messages of the sleeping auctions of one market side whose wake mark `mark` reached (every
 * sleeper when `mark` is undefined), at most `limit`, in wake order. A woken auction's step number dedupes the
 * message against the one it sleeps on: whichever comes first runs the step, the other finds it taken.
 * `wokenAtMs`: now, when the woken steps are due. `except`: an auction not to wake (the caller's own, which planned
 * on what it just wrote). `after`: only the sleepers after this one in wake order. `inFlight`: SendMessageBatch calls
 * at once (sendSettled); `stop`: begin no more of them (sendSettled).
 * A read that fails throws (nothing was sent); a send that fails is returned (`failure`) with how far the sends went,
 * so a wake in parts keeps what went out instead of restarting its part (wake-part-restarts, session 42).
 */
export async function wakeSleepers(
  deps: WakeDeps,
  symbol: string,
  direction: 'BUY' | 'SELL',
  mark: PriceE8 | undefined,
  wokenAtMs: number,
  limit: number = MAX_WAKES_PER_CALL,
  except?: string,
  after?: Sleeper,
  inFlight: number = SENDS_IN_FLIGHT,
  stop?: () => boolean,
): Promise<Woken> {
  const found = await deps.auctions.sleepers(symbol, direction, mark, limit, after);
  const { next } = found;
  const due = except === undefined ? found.due : found.due.filter((s) => s.id !== except);
  const bodies = due.map((s) =>
    encodeMessage({ ...stepMessageOf({ ...s, symbol }, wokenAtMs), woken: true }),
  );
  const spread = await sendSettled(deps.auctionQueue, bodies, inFlight, stop);
  const read = found.due.length;
  if (spread.failure === undefined && !spread.stopped) {
    const last = found.due.at(-1);
    return { woken: spread.sent, passed: spread.sent, next, read, ...(last ? { last } : {}) };
  }
  // The sleeper before the first whose message may not have gone (the excepted one, if it comes just before).
  const unsent = due[spread.prefix];
  const at = unsent === undefined ? read : found.due.indexOf(unsent);
  const last = at > 0 ? found.due[at - 1] : undefined;
  return {
    woken: spread.sent,
    passed: spread.prefix,
    next,
    read,
    ...(last ? { last } : {}),
    ...(spread.failure ? { failure: messageOf(spread.failure.error) } : { stopped: true as const }),
  };
}

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** A market side, in the order a wake of every sleeper goes through them. */
export interface WakeSide {
  readonly symbol: string;
  readonly direction: 'BUY' | 'SELL';
}

/** Each market's two sides, SELL then BUY: the order of a wake of every sleeper of `symbols`. */
export const sidesOf = (symbols: readonly string[]): WakeSide[] =>
  symbols.flatMap((symbol) => (['SELL', 'BUY'] as const).map((direction) => ({ symbol, direction })));

/** What one part of a wake of every sleeper did (wakeInOrder). */
export interface WakePart {
  /** Sleepers woken (their messages known sent, a failed side's too), per market. */
  readonly wokenIn: ReadonlyMap<string, number>;
  /**
   * Of them, those from `from` to wokenTo, per market: what a part counts when the wake goes on from wokenTo (the
   * messages it sent past wokenTo go again with the part after, which counts them then).
   */
  readonly passedIn: ReadonlyMap<string, number>;
  /**
   * The last sleeper read (woken or excepted), where the next part goes on; undefined: none yet. After a failure,
   * the last of the prefix whose messages all went (wakeSleepers' `last`).
   */
  readonly wokenTo: SpentWakeCursor | undefined;
  /** Sleepers are left after wokenTo (the budget ran out, or a side failed: the next part retries it). */
  readonly more: boolean;
  /** Sleepers read, of the budget. */
  readonly read: number;
  /** The market side that failed, and why (the part stopped there, wokenTo kept as far as it went). */
  readonly failure?: { readonly symbol: string; readonly error: string };
  /** Markets passed over (`skip`). */
  readonly skipped: readonly string[];
  /** Sent in order, it ran out of its time (IN_ORDER_PART_MS) with sleepers left, no send failed. */
  readonly stopped?: true;
}

/**
 * One bounded part of a wake of every sleeper of `sides`, in order, going on after `from` (the last sleeper an
 * earlier part read; undefined or of no side here: from the first): at most `budget` sleepers read. A spent
 * provider's wake (sleeping.ts wakeSpent) and a registration's (registration-wake.ts) go on in parts this way, each
 * part in its own delivery (an unbounded one outlasted a function's time: spent-wake-unbounded, session 40).
 * `except`: an auction not to wake; `skip`: a market whose wake another covers (asked once, on reaching it);
 * `inOrder`: a batch at a time, the part after one that met a failed send (WAKE_RETRY_DELAY_SECONDS): with 25 in
 * flight, the batches past the first that failed still went, past the cursor, and went again with the next part
 * (wakes43b: 21,128 messages for 2,500 sleepers with one call in 5 failing); one at a time, nothing past it goes.
 * Such a part begins no call IN_ORDER_PART_MS after it began, once one went: it ends there, its sleepers left to the
 * next part (`stopped`, with no failure, as a part that went whole).
 */
export async function wakeInOrder(
  deps: WakeDeps,
  sides: readonly WakeSide[],
  from: SpentWakeCursor | undefined,
  budget: number,
  nowMs: () => number,
  options: {
    readonly except?: string;
    readonly skip?: (symbol: string) => Promise<boolean>;
    readonly inOrder?: boolean;
  } = {},
): Promise<WakePart> {
  const wokenIn = new Map<string, number>();
  const passedIn = new Map<string, number>();
  const skipped = new Map<string, boolean>();
  const at = from ? sides.findIndex((s) => s.symbol === from.symbol && s.direction === from.direction) : 0;
  let wokenTo = at < 0 ? undefined : from;
  let left = budget;
  let more = false;
  // A part in order begins no call past its time, once one went (review43c-in-order-part-time).
  const startedAt = wokenTo;
  const deadline = options.inOrder ? nowMs() + IN_ORDER_PART_MS : undefined;
  const timeOut = deadline === undefined ? undefined : () => nowMs() >= deadline;
  // A part that ends before its sides do (a failed send, its time up): the rest goes on from wokenTo.
  const cutShort = (why: Pick<WakePart, 'failure' | 'stopped'>): WakePart => ({
    wokenIn,
    passedIn,
    wokenTo,
    more: true,
    read: budget - left,
    skipped: skippedOf(skipped),
    ...why,
  });
  for (const { symbol, direction } of sides.slice(Math.max(0, at))) {
    if (left === 0) {
      more = true;
      break;
    }
    if (timeOut?.() && wokenTo !== startedAt) return cutShort({ stopped: true });
    if (options.skip && !skipped.has(symbol)) skipped.set(symbol, await options.skip(symbol));
    if (skipped.get(symbol)) continue;
    const after = wokenTo?.symbol === symbol && wokenTo.direction === direction ? wokenTo : undefined;
    let out: Woken;
    try {
      out = await wakeSleepers(
        deps,
        symbol,
        direction,
        undefined,
        nowMs(),
        left,
        options.except,
        after,
        options.inOrder ? 1 : SENDS_IN_FLIGHT,
        timeOut,
      );
    } catch (error) {
      out = { woken: 0, passed: 0, next: undefined, read: 0, failure: messageOf(error) };
    }
    wokenIn.set(symbol, (wokenIn.get(symbol) ?? 0) + out.woken);
    passedIn.set(symbol, (passedIn.get(symbol) ?? 0) + out.passed);
    left -= out.read;
    if (out.last) wokenTo = { symbol, direction, ...out.last };
    if (out.failure !== undefined)
      // Kept up to the prefix sent: the retry goes on from there. Messages sent past it (batches in flight when
      // one failed) go again then, harmless: a woken step is deduped by its step number.
      return cutShort({ failure: { symbol, error: `${symbol} ${direction} sleepers: ${out.failure}` } });
    if (out.stopped) return cutShort({ stopped: true });
    more = out.next !== undefined;
    if (more) break;
  }
  return { wokenIn, passedIn, wokenTo, more, read: budget - left, skipped: skippedOf(skipped) };
}

/** A part went past `from` (the cursor it began after): it has progress to keep, even if it failed. */
export const movedOn = (part: WakePart, from: SpentWakeCursor | undefined): boolean => {
  const to = part.wokenTo;
  if (to === undefined) return false;
  if (from === undefined) return true;
  return (
    to.symbol !== from.symbol ||
    to.direction !== from.direction ||
    to.id !== from.id ||
    to.step !== from.step ||
    to.wakeMark !== from.wakeMark
  );
};

const skippedOf = (skipped: ReadonlyMap<string, boolean>): string[] =>
  [...skipped].filter(([, yes]) => yes).map(([symbol]) => symbol);

/** Entries of one SendMessageBatch (SQS's limit): one sendBatch call each, so a failure is that batch's alone. */
const PER_BATCH = 10;

/** How far sendSettled went. */
export interface Spread {
  /**
   * Messages known to have gone: those of the batches that went, and of a failed batch those its error does not name
   * unsent (ports' unsentOf; an error that names none, a lost answer say, counts none of its batch).
   */
  readonly sent: number;
  /** The first `prefix` messages all went (all of them without a failure). */
  readonly prefix: number;
  /** The first error met (none: every message went, or `stopped`); no batch is begun after it. */
  readonly failure?: { readonly error: unknown };
  /** `stop` said so before every batch began (no failure): those not begun did not go. */
  readonly stopped?: true;
}

/**
 * Sends many messages as SendMessageBatch calls several at a time (`inFlight`, SENDS_IN_FLIGHT): 100,000 messages
 * take seconds, not the minutes of one call after another. Order is not kept (standard queues keep none). A failure
 * stops it beginning more batches (the rest would fail alike, or go again with the caller's retry) and is returned
 * with how far it went, once the batches in flight are done (with one in flight, none past the failed one went).
 * `stop`: asked before each batch but the first; true, no more begin (`stopped`).
 */
export async function sendSettled(
  queue: QueueTransport,
  bodies: readonly string[],
  inFlight: number = SENDS_IN_FLIGHT,
  stop?: () => boolean,
): Promise<Spread> {
  const batches = Array.from({ length: Math.ceil(bodies.length / PER_BATCH) }, (_, at) =>
    bodies.slice(at * PER_BATCH, (at + 1) * PER_BATCH),
  );
  // Each message known sent: all of a batch that went, none of one not begun.
  const went = new Array<boolean>(bodies.length).fill(false);
  let failed: { readonly error: unknown } | undefined;
  let stopped = false;
  await eachInFlight(
    batches,
    inFlight,
    async (batch, at) => {
      const from = at * PER_BATCH;
      try {
        await queue.sendBatch(batch);
        went.fill(true, from, from + batch.length);
      } catch (error) {
        const unsent = unsentOf(error);
        if (unsent) for (let i = 0; i < batch.length; i++) went[from + i] = !unsent.includes(i);
        failed ??= { error };
      }
    },
    // No more after a failure, nor once `stop` says so.
    () => {
      if (failed === undefined && !stopped && stop?.()) stopped = true;
      return failed !== undefined || stopped;
    },
  );
  const sent = went.filter((yes) => yes).length;
  const gap = went.indexOf(false);
  const prefix = gap < 0 ? bodies.length : gap;
  if (failed !== undefined) return { sent, prefix, failure: failed };
  return stopped && prefix < bodies.length ? { sent, prefix, stopped: true } : { sent, prefix };
}

/** sendSettled, throwing its failure: for a caller that sends everything again on a retry. */
export async function sendSpread(queue: QueueTransport, bodies: readonly string[]): Promise<void> {
  const { failure } = await sendSettled(queue, bodies);
  if (failure !== undefined) throw failure.error;
}
