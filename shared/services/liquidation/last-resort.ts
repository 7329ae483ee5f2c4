/**
 * The waterfall's last resort: a bounded market order when no layer closed any of a slice, and the waits for the book
 * while nothing is within the bound.
 */
import { randomUUID } from 'node:crypto';
import { marketConfig } from '../../domain/config.ts';
import type { Fill } from '../../domain/model.ts';
import { type BaseE8, div, PPM_SCALE, type PriceE8 } from '../../domain/units.ts';
import { METRICS } from '../../metrics.ts';
import type { LiquidationRecord, Write } from '../../ports/index.ts';
import { dueLiquidationMessage } from '../../schemas/messages.ts';
import { closeDirection, type LiquidationContext, type SettlementDeps } from '../context.ts';
import { LiquidationStuckError } from './errors.ts';
import { holdLease, outcomeRecorded } from './lease.ts';
import { type Carried, commitOrSkip, contextOf, type MarkAt, withHistory } from './step.ts';
import { keptFills, placeWithRetries, quoteOrNone } from './venue.ts';

/** Client order id of a liquidation's last-resort order, one per attempt. */
export const lastResortOrderId = (liquidationId: string, attempt: number): string =>
  `${liquidationId}:last-resort:${attempt}`;
export const isLastResortOrderId = (clientOrderId: string): boolean =>
  /:last-resort:\d+$/.test(clientOrderId);

/**
 * Last-resort attempts that may wait for the book before the liquidation fails instead: retried, then
 * dead-lettered with its reason and an alarm, for an operator (from a first wait of 60 s: about 4 hours).
 */
export const LAST_RESORT_WAITS = 20;

/**
 * Places the last-resort order and returns its fills. When it fills nothing, the attempt is recorded and the
 * liquidation waits for the book: its message comes back after lastResortWaitSeconds, at the mark of then
 * (undefined returned); after LAST_RESORT_WAITS waits it throws `waterfall/no-liquidity` instead (retried,
 * then dead-lettered). An order that filled nothing executed nothing, so the next attempt may place a new one
 * under its own id. A liquidation already waiting (an attempt filled nothing) asks the venue for a quote first:
 * while the best price is beyond the limit no order could fill, so it waits again with no order; a herd of waiting
 * slices so costs the venue a quote each, not an order, and the table one write each (the wait's message, named on the
 * record: any copy of it ends, LiquidationContext.lastResortWait).
 */
export async function lastResort(
  liquidation: LiquidationRecord,
  context: LiquidationContext,
  size: BaseE8,
  mark: PriceE8,
  deps: SettlementDeps,
  carried: Carried,
): Promise<LastResortOutcome> {
  // An order a delivery placed and did not record the outcome of (it died or failed): exactly that order again.
  const pending = context.lastResortOrder;
  const attempt = pending?.attempt ?? context.lastResortAttempt ?? 0;
  const direction = closeDirection(liquidation.side);
  const limitPrice = pending?.limitPrice ?? lastResortLimit(liquidation, direction, mark, deps);
  // The mark with its tick's time: a venue following the marks takes it as that tick, not as a new one.
  const reference =
    pending?.reference ?? (carried.mark?.mark === mark ? carried.mark : { mark, atMs: deps.clock.nowMs() });
  const waiting = attempt > 0 && !pending;
  // The record the wait is recorded on: as read, or with the attempt that filled nothing.
  let waitingOn = liquidation;
  let outraced: Outraced | undefined;
  const outracedSoFar = async () => (outraced ??= await judgeOutraced(liquidation, direction, deps, carried));
  if (!waiting || (await bookReaches(liquidation, direction, limitPrice, reference, deps))) {
    const order = pending ? undefined : { attempt, size, limitPrice, reference };
    const held = await holdLease(liquidation, deps, carried, order);
    if (!held) return 'moved';
    const fills = await placeLastResort(
      held,
      pending?.size ?? size,
      limitPrice,
      reference,
      attempt,
      deps,
      !!pending,
    );
    if (fills.length > 0) {
      // Tells the slices waiting on this side that the book came back within the bound (a hint; see below).
      await deps.markets.countLastResortFill(liquidation.symbol, direction);
      return { fills, record: held };
    }
    const { count } = await outracedSoFar();
    const next: LiquidationRecord = {
      ...withHistory(held, held.state, deps.clock.nowMs(), `last resort ${attempt} filled nothing`),
      // The stored context, not the caller's: a plan made again (refreeze) keeps its frozen inputs while it waits.
      context: {
        ...outcomeRecorded(contextOf(held)),
        lastResortAttempt: attempt + 1,
        ...(count > 0 ? { lastResortOutraced: count } : {}),
      },
    };
    if (!(await commitOrSkip(deps, [{ kind: 'liquidation', record: next, expectedVersion: held.version }])))
      return 'moved';
    waitingOn = next;
  }
  // Every empty order was a wait; the message and the record count the waits that placed none (the record's count
  // for a message without it: an operator's re-send).
  const waits = Math.max(
    carried.lastResortWaits ?? 0,
    attempt,
    contextOf(waitingOn).lastResortWait?.waits ?? 0,
  );
  const { fillsSeen, now: outracedNow, count: outracedWaits } = await outracedSoFar();
  const since = lastResortWaitingSince(liquidation);
  const waitedMs = since === undefined ? 0 : deps.clock.nowMs() - since;
  if (waits - outracedWaits + 1 >= LAST_RESORT_WAITS || waitedMs >= LAST_RESORT_MAX_WAIT_MS) {
    throw new LiquidationStuckError(
      `waterfall/no-liquidity: ${liquidation.id} (nothing within the bound after ${waits} waits, ${outracedWaits} of them outraced, ${Math.floor(waitedMs / 60_000)} min)`,
    );
  }
  deps.telemetry.count(METRICS.LastResortWaits.name, 1, { Market: liquidation.symbol });
  if (outracedNow)
    deps.telemetry.count(METRICS.LastResortWaitsOutraced.name, 1, { Market: liquidation.symbol });
  const firstWait = marketConfig(deps.config, liquidation.symbol).lastResortWaitSeconds;
  const delaySeconds = lastResortWaitSeconds(firstWait, waits);
  // Its own id: twin deliveries of one message each send a wait, and only the one recorded below goes on.
  const id = randomUUID();
  // The wait it follows (the one the record below replaces): while the record names it, this one is not a copy.
  const after = contextOf(waitingOn).lastResortWait?.id;
  await deps.liquidationQueue.send(
    dueLiquidationMessage(
      {
        liquidationId: liquidation.id,
        lastResortWaits: waits + 1,
        lastResortWaitId: id,
        ...(after === undefined ? {} : { lastResortWaitAfter: after }),
        ...(outracedWaits > 0 ? { lastResortWaitsOutraced: outracedWaits } : {}),
        lastResortFillsSeen: fillsSeen,
        ...(carried.adlJudgedAt === undefined ? {} : { adlJudgedAtE8: carried.adlJudgedAt.toString() }),
      },
      deps.clock.nowMs(),
      delaySeconds,
    ),
    delaySeconds,
  );
  // Recorded once sent, on the version this delivery read: a delivery dying between the two leaves its message a
  // copy, and its own message (still the one named) comes back to wait again; recorded first, the wait was lost.
  const recorded: LiquidationRecord = {
    ...waitingOn,
    context: {
      ...contextOf(waitingOn),
      lastResortWait: { id, waits: waits + 1 },
      ...(outracedWaits > 0 ? { lastResortOutraced: outracedWaits } : {}),
    },
    version: waitingOn.version + 1,
  };
  // Lost to another writer, the look still ends here: the wait just sent names the one this read, so it carries on
  // if the winner named none, and ends as a copy if the winner sent its own. Read again, a message naming no wait
  // looked at once a second time: a quote, a count, and a wait that ended as a copy (wait44-lost-write-ends). But a
  // take-over that lost to its own sender naming it looks again: ended, no message went on.
  const write: Write = { kind: 'liquidation', record: recorded, expectedVersion: waitingOn.version };
  if (await commitOrSkip(deps, [write], undefined, 'quiet')) return 'waiting';
  const again = await namedSinceRead(waitingOn, deps, carried);
  deps.telemetry.info(
    again
      ? "last resort's wait record lost to its sender naming this delivery's wait; re-reading"
      : "last resort's wait record lost to another writer; the look ends, the wait sent follows the one read",
    { liquidationId: waitingOn.id, waitId: id },
  );
  return again ? 'moved' : 'waiting';
}

/**
 * A take-over (its message's wait not yet named when read) whose write lost to its own sender's, naming the wait
 * this delivery carries: ended, its message is consumed and the wait it sent, following the one before, ends as a
 * copy, leaving no message (review44-takeover-named-after). Read again, its wait is the one named and goes on.
 */
async function namedSinceRead(
  read: LiquidationRecord,
  deps: SettlementDeps,
  carried: Carried,
): Promise<boolean> {
  const own = carried.lastResortWaitId;
  if (own === undefined || contextOf(read).lastResortWait?.id === own) return false;
  return (await deps.liquidations.get(read.id))?.context?.lastResortWait?.id === own;
}

/** A waiting slice's outraced waits (lastResort): the market's fill count now, whether this wait was, and all so far. */
interface Outraced {
  readonly fillsSeen: number;
  readonly now: boolean;
  readonly count: number;
}

/**
 * A last resort on this side filled since this slice last looked: the book came back within the bound and a
 * sibling took it first. Such waits do not count towards the dead letter: a slice that has waited long looks least
 * often and so loses each such race, and would page while the book refills. They still lengthen the next wait, as
 * any other (a herd of waiters polls the book no more often for it).
 */
async function judgeOutraced(
  liquidation: LiquidationRecord,
  direction: 'BUY' | 'SELL',
  deps: SettlementDeps,
  carried: Carried,
): Promise<Outraced> {
  carried.market ??= await deps.markets.get(liquidation.symbol);
  const fillsSeen = carried.market?.lastResortFills?.[direction] ?? 0;
  const now = carried.lastResortFillsSeen !== undefined && fillsSeen > carried.lastResortFillsSeen;
  const before = Math.max(
    carried.lastResortWaitsOutraced ?? 0,
    contextOf(liquidation).lastResortOutraced ?? 0,
  );
  return { fillsSeen, now, count: before + (now ? 1 : 0) };
}

/**
 * The longest a slice waits for the book, counted from its first last-resort order that filled nothing: waits
 * that siblings outraced do not count towards LAST_RESORT_WAITS, so a book that keeps refilling for others could
 * otherwise hold a slice for ever.
 */
export const LAST_RESORT_MAX_WAIT_MS = 24 * 3_600_000;

/** When the liquidation's first last-resort order filled nothing (undefined: none has yet). */
export const lastResortWaitingSince = (liquidation: LiquidationRecord): number | undefined =>
  liquidation.history.find((e) => e.note?.startsWith('last resort ') && e.note.endsWith(' filled nothing'))
    ?.atMs;

/**
 * A last-resort order's fills with the record as stored under its lease (the next commit expects its version),
 * or: the liquidation waits for the book (its message comes back), or another writer moved it first (re-read).
 */
type LastResortOutcome =
  | { readonly fills: readonly Fill[]; readonly record: LiquidationRecord }
  | 'waiting'
  | 'moved';

/**
 * Whether the venue's best price on the side the order takes reaches `limitPrice` now. A quote that fails says it
 * does not: the liquidation waits for the book again, counted as a venue failure (an audit in session 36 found a
 * quote outage failing the delivery, so every waiting slice was dead-lettered after its receives).
 */
async function bookReaches(
  liquidation: LiquidationRecord,
  direction: 'BUY' | 'SELL',
  limitPrice: PriceE8,
  reference: MarkAt,
  deps: SettlementDeps,
): Promise<boolean> {
  const quote = await quoteOrNone(
    liquidation,
    reference,
    deps,
    'venue quote failed; the last resort waits for the book',
  );
  if (!quote) return false;
  const { bid, ask } = quote;
  return direction === 'SELL'
    ? bid !== undefined && bid >= limitPrice
    : ask !== undefined && ask <= limitPrice;
}

/** The last resort's limit at `mark`: the market's lastResortSlippageBound, rounded toward the mark. */
function lastResortLimit(
  liquidation: LiquidationRecord,
  direction: 'BUY' | 'SELL',
  mark: PriceE8,
  deps: SettlementDeps,
): PriceE8 {
  // The market-only baseline sells at any price, as naive engines do.
  if (deps.strategy === 'market-only') return direction === 'SELL' ? 1n : mark * 1000n;
  const bound = marketConfig(deps.config, liquidation.symbol).lastResortSlippageBound;
  return direction === 'SELL'
    ? div(mark * (PPM_SCALE - bound), PPM_SCALE, 'ceil')
    : div(mark * (PPM_SCALE + bound), PPM_SCALE, 'floor');
}

/**
 * How long a last resort that found nothing within its bound waits before attempt `attempt + 1`: the market's
 * lastResortWaitSeconds, doubled after each attempt, up to SQS's longest delay (a book emptied by a crash
 * refills over minutes, and selling into it as it does only walks the price down).
 */
export const lastResortWaitSeconds = (firstWaitSeconds: number, attempt: number): number =>
  Math.min(900, firstWaitSeconds * 2 ** Math.min(attempt, 10));

/**
 * The waterfall's last resort: no layer could close any of the slice, so a market order within the market's
 * lastResortSlippageBound of the latest mark (its own client order id per attempt: placed once whatever the
 * retries; a new attempt only after one that filled nothing). Its shortfall goes to the fund and ADL, what it
 * leaves to the position's next slice. The market-only baseline sells at any price, as naive engines do.
 */
async function placeLastResort(
  liquidation: LiquidationRecord,
  size: BaseE8,
  limitPrice: PriceE8,
  reference: MarkAt,
  attempt: number,
  deps: SettlementDeps,
  /** The order was recorded pending by an earlier delivery, which may have placed it. */
  placedBefore: boolean,
): Promise<readonly Fill[]> {
  const direction = closeDirection(liquidation.side);
  deps.telemetry.warn('no layer closed any of the slice; last-resort market order', {
    liquidationId: liquidation.id,
    size: size.toString(),
    limitPrice: limitPrice.toString(),
  });
  const clientOrderId = lastResortOrderId(liquidation.id, attempt);
  const fills = await placeWithRetries(deps, placedBefore, {
    clientOrderId,
    symbol: liquidation.symbol,
    direction,
    size,
    limitPrice,
    reference,
  });
  deps.telemetry.count(METRICS.LastResortOrders.name, 1, { Market: liquidation.symbol });
  return keptFills(fills, clientOrderId, deps);
}
