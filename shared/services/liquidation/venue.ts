/**
 * The venue's answers: orders placed with bounded retries, quotes, and the checks that refuse an answer the venue
 * cannot have given. Separate: the market order, the last resort and the venue check all go through them.
 */

import { boundedFills } from '../../domain/fills.ts';
import type { Fill } from '../../domain/model.ts';
import { formatBase, formatPrice, type PriceE8 } from '../../domain/units.ts';
import { METRICS } from '../../metrics.ts';
import {
  type LiquidationRecord,
  type OrderRequest,
  type OrderResult,
  VENUE_ERROR_KINDS,
  VenueError,
} from '../../ports/index.ts';
import type { SettlementDeps } from '../context.ts';
import type { MarkAt } from './step.ts';

/**
 * IOC with bounded retries of the same client order id. A rejection or an unavailable venue means the order did
 * not execute: after the attempts the whole size goes to the auction. A timeout means it may have: handing over
 * then could sell the size twice, so it throws and the redelivered message asks the venue again (same id).
 * `placedBefore`: an earlier delivery may have placed this order (it claimed it, then timed out or died); a
 * venue that is unavailable then says nothing about that order, so only an answer (fills, none, or a rejection of
 * the order itself) counts, and the message comes back until the venue gives one (order-in-doubt).
 */
export async function placeWithRetries(
  deps: SettlementDeps,
  placedBefore: boolean,
  order: Parameters<SettlementDeps['venue']['placeIoc']>[0],
): Promise<readonly Fill[]> {
  let inDoubt: VenueError | undefined;
  for (let attempt = 1; attempt <= deps.venueAttempts; attempt++) {
    let result: OrderResult;
    try {
      result = await deps.venue.placeIoc(order);
    } catch (thrown) {
      if (!(thrown instanceof VenueError)) throw thrown;
      const error = knownKind(thrown);
      if (error.kind === 'timeout' || (placedBefore && error.kind === 'unavailable')) inDoubt = error;
      deps.telemetry.count(METRICS.VenueOrderFailures.name, 1, { Reason: error.kind, Market: order.symbol });
      deps.telemetry.warn('venue attempt failed', {
        clientOrderId: order.clientOrderId,
        attempt,
        kind: error.kind,
        ...(error === thrown ? {} : { reportedKind: String(thrown.kind) }),
      });
      continue;
    }
    checkAnswer(order, result);
    return result.fills;
  }
  if (inDoubt) throw inDoubt;
  deps.telemetry.warn('venue refused the order; handing over to the auction', {
    clientOrderId: order.clientOrderId,
  });
  return [];
}

/**
 * A venue failure as the consumer acts on it: of its own kind, or, of a kind outside VENUE_ERROR_KINDS (an adapter's
 * mistake), a timeout: the kind that assumes least (the order may have executed: it is asked again, never handed
 * on), counted under a Reason VenueFailuresAlarm sums. Taken as "nothing executed", a lost answer was sold twice.
 */
function knownKind(error: VenueError): VenueError {
  if ((VENUE_ERROR_KINDS as readonly unknown[]).includes(error.kind)) return error;
  return new VenueError(
    `venue/timeout: a failure of kind ${String(error.kind)}: ${error.message}`,
    'timeout',
  );
}

/**
 * An exchange's answer must be this order's and within it: its client order id, fills of positive size within the
 * order's size and at or within its limit (an IOC never fills beyond it), and no cost of their own. Another answer
 * may mean anything, an execution included: it is neither recorded nor taken as "nothing filled" (which would hand
 * the slice on), but fails the delivery, retried then dead-lettered with its alarm, for an operator. Sizes and prices
 * are bigints: the operators below take a number or a string too, and let them through to fail later, or add up.
 */
function checkAnswer(order: OrderRequest, result: OrderResult): void {
  const fault = (why: string): never => {
    throw new VenueAnswerError(`venue/bad-answer: ${order.clientOrderId}: ${why}`);
  };
  if (typeof result !== 'object' || result === null || !Array.isArray(result.fills))
    fault('an answer with no list of fills');
  if (result.clientOrderId !== order.clientOrderId) fault(`answered as ${result.clientOrderId}`);
  let size = 0n;
  for (const f of result.fills) {
    if (typeof f?.size !== 'bigint' || typeof f.price !== 'bigint')
      fault(
        `a fill whose size and price are not both bigints (size: ${typeof f?.size}, price: ${typeof f?.price})`,
      );
    if (f.size <= 0n || f.price <= 0n) fault(`a fill of ${formatBase(f.size)} at ${formatPrice(f.price)}`);
    const beyond = order.direction === 'SELL' ? f.price < order.limitPrice : f.price > order.limitPrice;
    if (beyond) fault(`a fill at ${formatPrice(f.price)} beyond the limit ${formatPrice(order.limitPrice)}`);
    // A market fill settles at its price x size exactly; a cost (an auction provider's) would settle instead
    // (an audit in session 36: a venue's cost of 0 on a fill within the limit had the fund pay the whole notional).
    if (f.cost !== undefined)
      fault(`a fill carrying a cost of ${f.cost} (a market fill settles price x size)`);
    size += f.size;
  }
  if (size > order.size) fault(`fills of ${formatBase(size)} for an order of ${formatBase(order.size)}`);
}

/** An exchange answered an order with something it cannot have done (see checkAnswer). */
export class VenueAnswerError extends Error {
  override readonly name = 'VenueAnswerError';
}

/**
 * Most fills of one order a liquidation keeps: they are stored on its item, which DynamoDB refuses over 400 KB,
 * and a venue may split one IOC into thousands of trades. Beyond it the rest are kept as their exact totals
 * (boundedFills), which settle to the unit as the venue's trades do.
 */
export const MAX_FILLS_PER_ORDER = 100;

/** An order's fills as the liquidation keeps them (at most MAX_FILLS_PER_ORDER), with a warning when folded. */
export function keptFills(
  fills: readonly Fill[],
  clientOrderId: string,
  deps: SettlementDeps,
): readonly Fill[] {
  const kept = boundedFills(fills, MAX_FILLS_PER_ORDER);
  if (kept !== fills)
    deps.telemetry.warn('venue answered with more fills than a liquidation keeps; kept as their totals', {
      clientOrderId,
      fills: fills.length,
      kept: kept.length,
    });
  return kept;
}

/**
 * The venue's quote, or none when it fails (counted as a venue failure, and logged with `message`); an answer that is
 * no quote a book can show is refused (checkQuote).
 */
export async function quoteOrNone(
  liquidation: LiquidationRecord,
  reference: MarkAt,
  deps: SettlementDeps,
  message: string,
): Promise<{ readonly bid?: PriceE8; readonly ask?: PriceE8 } | undefined> {
  let quote: { readonly bid?: PriceE8; readonly ask?: PriceE8 };
  try {
    quote = await deps.venue.quote(liquidation.symbol, reference);
  } catch (thrown) {
    if (!(thrown instanceof VenueError)) throw thrown;
    const error = knownKind(thrown);
    deps.telemetry.count(METRICS.VenueOrderFailures.name, 1, {
      Reason: error.kind,
      Market: liquidation.symbol,
    });
    deps.telemetry.warn(message, {
      liquidationId: liquidation.id,
      kind: error.kind,
      ...(error === thrown ? {} : { reportedKind: String(thrown.kind) }),
    });
    return undefined;
  }
  checkQuote(liquidation, quote);
  return quote;
}

/**
 * A quote must be a price the book can hold: each side present a positive bigint, the bid not above the ask. Another
 * answer is refused as a fill's is (checkAnswer), failing the delivery for an operator: the bigint operators that read
 * it take a number or a string too, and a side of 0, a negative one or sides swapped would start, hold or spend a
 * liquidation on a price no book shows (venue47-quote-not-bigint).
 */
function checkQuote(liquidation: LiquidationRecord, quote: unknown): void {
  // Typed so that TypeScript narrows on it: a side after its check is a bigint.
  const fault: (why: string) => never = (why) => {
    throw new VenueAnswerError(
      `venue/bad-answer: the quote of ${liquidation.symbol} (liquidation ${liquidation.id}): ${why}`,
    );
  };
  if (typeof quote !== 'object' || quote === null) fault(`an answer that is not a quote (${String(quote)})`);
  const { bid, ask } = quote as { readonly bid?: unknown; readonly ask?: unknown };
  for (const [name, side] of [
    ['bid', bid],
    ['ask', ask],
  ] as const) {
    if (side === undefined) continue;
    const a = name === 'ask' ? 'an' : 'a';
    if (typeof side !== 'bigint') fault(`${a} ${name} that is not a bigint (${typeof side})`);
    if (side <= 0n) fault(`${a} ${name} of ${formatPrice(side)}`);
  }
  if (typeof bid === 'bigint' && typeof ask === 'bigint' && bid > ask)
    fault(`a bid of ${formatPrice(bid)} above the ask of ${formatPrice(ask)}`);
}
