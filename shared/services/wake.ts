import type { PriceE8 } from '../domain/units.ts';
import type { AuctionRepository, QueueTransport, Sleeper } from '../ports/index.ts';
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
