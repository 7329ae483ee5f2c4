import type { PriceE8 } from '../domain/units.ts';
import type { AuctionRepository, QueueTransport, Sleeper, SpentWakeCursor } from '../ports/index.ts';
import { encodeMessage, stepMessageOf } from '../schemas/messages.ts';

/**
 * Sleepers one call wakes per market side; the rest wake at the next call. The 2020 replay wakes more than
 * 10,000 at once after a bounce; 50,000 are about 5 MB of index reads and 5,000 SendMessageBatch calls, 25 in
 * flight: a few seconds of a function's time.
 */
export const MAX_WAKES_PER_CALL = 50_000;
/** SendMessageBatch calls in flight at once while waking. */
const SENDS_IN_FLIGHT = 25;

export interface WakeDeps {
  readonly auctions: Pick<AuctionRepository, 'sleepers'>;
  readonly auctionQueue: QueueTransport;
}

/**
 * Sends the step messages of the sleeping auctions of one market side whose wake mark `mark` reached (every
 * sleeper when `mark` is undefined), at most `limit`, in wake order. A woken auction's step number dedupes the
 * message against the one it sleeps on: whichever comes first runs the step, the other finds it taken.
 * `wokenAtMs`: now, when the woken steps are due. Returns how many were woken and the wake mark of the first one left (reached or not).
 * `except`: an auction not to wake (the caller's own, which planned on what it just wrote). `after`: only the
 * sleepers after this one in wake order; `read`, `last`: how many were read and the last of them (woken, or the one excepted).
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
): Promise<{
  readonly woken: number;
  readonly next: PriceE8 | undefined;
  readonly read: number;
  readonly last?: Sleeper;
}> {
  const found = await deps.auctions.sleepers(symbol, direction, mark, limit, after);
  const { next } = found;
  const due = except === undefined ? found.due : found.due.filter((s) => s.id !== except);
  const bodies = due.map((s) =>
    encodeMessage({ ...stepMessageOf({ ...s, symbol }, wokenAtMs), woken: true }),
  );
  await sendSpread(deps.auctionQueue, bodies);
  const last = found.due.at(-1);
  return { woken: due.length, next, read: found.due.length, ...(last ? { last } : {}) };
}

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
  /** Sleepers woken, per market. */
  readonly wokenIn: ReadonlyMap<string, number>;
  /** The last sleeper read (woken or excepted), where the next part goes on; undefined: none yet. */
  readonly wokenTo: SpentWakeCursor | undefined;
  /** Sleepers are left after wokenTo (the budget ran out, or a side failed: the next part retries it). */
  readonly more: boolean;
  /** Sleepers read, of the budget. */
  readonly read: number;
  /** The market side that failed, and why (the part stopped there). */
  readonly failure?: { readonly symbol: string; readonly error: string };
  /** Markets passed over (`skip`). */
  readonly skipped: readonly string[];
}

/**
 * One bounded part of a wake of every sleeper of `sides`, in order, going on after `from` (the last sleeper an
 * earlier part read; undefined or of no side here: from the first): at most `budget` sleepers read. A spent
 * provider's wake (sleeping.ts wakeSpent) and a registration's (registration-wake.ts) go on in parts this way, each
 * part in its own delivery (an unbounded one outlasted a function's time: spent-wake-unbounded, session 40).
 * `except`: an auction not to wake; `skip`: a market whose wake another covers (asked once, on reaching it).
 */
export async function wakeInOrder(
  deps: WakeDeps,
  sides: readonly WakeSide[],
  from: SpentWakeCursor | undefined,
  budget: number,
  nowMs: () => number,
  options: { readonly except?: string; readonly skip?: (symbol: string) => Promise<boolean> } = {},
): Promise<WakePart> {
  const wokenIn = new Map<string, number>();
  const skipped = new Map<string, boolean>();
  const at = from ? sides.findIndex((s) => s.symbol === from.symbol && s.direction === from.direction) : 0;
  let wokenTo = at < 0 ? undefined : from;
  let left = budget;
  let more = false;
  for (const { symbol, direction } of sides.slice(Math.max(0, at))) {
    if (left === 0) {
      more = true;
      break;
    }
    if (options.skip && !skipped.has(symbol)) skipped.set(symbol, await options.skip(symbol));
    if (skipped.get(symbol)) continue;
    const after = wokenTo?.symbol === symbol && wokenTo.direction === direction ? wokenTo : undefined;
    try {
      const out = await wakeSleepers(
        deps,
        symbol,
        direction,
        undefined,
        nowMs(),
        left,
        options.except,
        after,
      );
      wokenIn.set(symbol, (wokenIn.get(symbol) ?? 0) + out.woken);
      left -= out.read;
      if (out.last) wokenTo = { symbol, direction, ...out.last };
      more = out.next !== undefined;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return {
        wokenIn,
        wokenTo,
        more: true,
        read: budget - left,
        failure: { symbol, error: `${symbol} ${direction} sleepers: ${message}` },
        skipped: skippedOf(skipped),
      };
    }
    if (more) break;
  }
  return { wokenIn, wokenTo, more, read: budget - left, skipped: skippedOf(skipped) };
}

const skippedOf = (skipped: ReadonlyMap<string, boolean>): string[] =>
  [...skipped].filter(([, yes]) => yes).map(([symbol]) => symbol);

/**
 * Sends many messages as SendMessageBatch calls several at a time (SENDS_IN_FLIGHT): 100,000 messages take
 * seconds, not the minutes of one call after another. Order is not kept (standard queues keep none).
 */
export async function sendSpread(queue: QueueTransport, bodies: readonly string[]): Promise<void> {
  const perSend = 10 * Math.ceil(bodies.length / 10 / SENDS_IN_FLIGHT);
  const sends: Promise<void>[] = [];
  for (let at = 0; at < bodies.length; at += perSend)
    sends.push(queue.sendBatch(bodies.slice(at, at + perSend)));
  await Promise.all(sends);
}
