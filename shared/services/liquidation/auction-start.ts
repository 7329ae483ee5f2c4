/**
 * Auction hand-over: what the market left goes to an auction (opened with its first step planned), or a running
 * auction's step message is made sure of.
 */

import { startPrice } from '../../domain/auction.ts';
import type { PriceE8 } from '../../domain/units.ts';
import type { AuctionRecord, LiquidationRecord, PositionRecord } from '../../ports/index.ts';
import { closeDirection, type LiquidationContext, type SettlementDeps } from '../context.ts';
import { type AuctionOpening, coverWake, dueIn, providersUnchangedSince, sendStep } from '../sleeping.ts';
import { outcomeRecorded } from './lease.ts';
import { type Carried, commitOrSkip, type Step, sumSize, withHistory } from './step.ts';

export const auctionIdOf = (liquidationId: string): string => `${liquidationId}:auction`;

/** The auction of what the market left, as it opens. */
export function openingAuction(
  liquidation: LiquidationRecord,
  context: LiquidationContext,
  position: PositionRecord,
  mark: PriceE8,
  deps: SettlementDeps,
): AuctionRecord {
  const direction = closeDirection(position.side);
  const lot = context.plannedSize - sumSize(liquidation.marketFills);
  return {
    id: auctionIdOf(liquidation.id),
    liquidationId: liquidation.id,
    symbol: liquidation.symbol,
    direction,
    lot,
    remainingLot: lot,
    top: startPrice(mark, direction, deps.config.auction.buf),
    startedAtMs: deps.clock.nowMs(),
    resets: 0,
    step: 0,
    state: 'RUNNING',
    fills: [],
    version: 0,
  };
}

/**
 * Starts the auction of what the market left. Its first step is planned here (planOpening): a new auction
 * opens beyond the mark, where no bid stands, so the step message goes out for the step its best bid makes
 * due and the auction sleeps until then, woken sooner by a tick that reaches its wake mark.
 */
export async function startAuction(
  liquidation: LiquidationRecord,
  context: LiquidationContext,
  opening: AuctionRecord,
  plan: Exclude<AuctionOpening, { kind: 'no-bidder' }>,
  deps: SettlementDeps,
  carried: Carried,
): Promise<Step> {
  const { market } = carried;
  const sleep = plan.kind === 'sleep' ? plan.sleep : undefined;
  const auction: AuctionRecord = {
    ...opening,
    ...(sleep?.wakeMark === undefined ? {} : { wakeMark: sleep.wakeMark }),
    stepDueAtMs: dueIn(sleep?.delaySeconds ?? 0, deps),
  };
  const inAuction: LiquidationRecord = {
    ...withHistory(liquidation, 'AUCTION', opening.startedAtMs, `lot ${opening.lot}`),
    remainingSize: opening.lot,
    context: { ...outcomeRecorded(context), auctionId: auction.id },
  };
  // A first sleep, planned on the providers listed, checks none changed since.
  const committed = await commitOrSkip(
    deps,
    [
      { kind: 'liquidation', record: inAuction, expectedVersion: liquidation.version },
      { kind: 'auction', record: auction, expectedVersion: undefined },
    ],
    sleep ? providersUnchangedSince(liquidation.symbol, market) : undefined,
  );
  if (!committed) {
    carried.market = undefined; // read again: its providers epoch may be what moved
    return { done: false };
  }
  // Lost with a crash here, the message is sent again by the redelivered liquidation (its AUCTION case).
  await sendStep(auction, sleep?.delaySeconds ?? 0, deps);
  await coverWake(auction, market, deps);
  return { done: true, record: inAuction };
}

export async function ensureAuctionScheduled(
  liquidation: LiquidationRecord,
  deps: SettlementDeps,
): Promise<void> {
  const auction = await deps.auctions.get(auctionIdOf(liquidation.id));
  if (auction?.state === 'RUNNING') {
    await sendStep(auction, 0, deps);
  }
}
