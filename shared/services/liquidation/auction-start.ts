/**
 * Auction hand-over: what the market left goes to an auction (opened with its first step planned), or a running
 * auction's step message is made sure of.
 */

import { startPrice } from '../../domain/auction.ts';
import { lotSizeOf, marketConfig } from '../../domain/config.ts';
import type { PriceE8 } from '../../domain/units.ts';
import type { AuctionRecord, LiquidationRecord, PositionRecord } from '../../ports/index.ts';
import { closeDirection, type LiquidationContext, type SettlementDeps } from '../context.ts';
import {
  type AuctionOpening,
  coverWake,
  dueIn,
  planOpening,
  providersUnchangedSince,
  sendStep,
} from '../sleeping.ts';
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
 * due and the auction sleeps until then, woken sooner by a tick that reaches its wake mark. `replacing`: the
 * slice's auction that ended with no fill, opened again (auctionAgain).
 */
export async function startAuction(
  liquidation: LiquidationRecord,
  context: LiquidationContext,
  opening: AuctionRecord,
  plan: Exclude<AuctionOpening, { kind: 'no-bidder' }>,
  deps: SettlementDeps,
  carried: Carried,
  replacing?: AuctionRecord,
): Promise<Step> {
  const { market } = carried;
  const sleep = plan.kind === 'sleep' ? plan.sleep : undefined;
  const auction: AuctionRecord = {
    ...opening,
    ...(sleep?.wakeMark === undefined ? {} : { wakeMark: sleep.wakeMark }),
    stepDueAtMs: dueIn(sleep?.delaySeconds ?? 0, deps),
    // Its steps numbered on past the one it replaces: no message of that auction takes a step of this one.
    ...(replacing ? { step: replacing.step + 1, version: replacing.version + 1 } : {}),
  };
  // A wait for the book ends here: no message carries it on (the auction step settles what comes after).
  const { lastResortWait: _, ...going } = outcomeRecorded(context);
  const inAuction: LiquidationRecord = {
    ...withHistory(
      liquidation,
      'AUCTION',
      opening.startedAtMs,
      `lot ${opening.lot}${replacing ? ' again' : ''}`,
    ),
    remainingSize: opening.lot,
    // Its auction is auctionIdOf(its id): not stored again, 61 bytes of an item every write rewrites whole, a write
    // unit a KB (cost52-auction-id-derived).
    context: going,
  };
  // A first sleep, planned on the providers listed, checks none changed since.
  const committed = await commitOrSkip(
    deps,
    [
      { kind: 'liquidation', record: inAuction, expectedVersion: liquidation.version },
      { kind: 'auction', record: auction, expectedVersion: replacing?.version },
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

/**
 * A slice all under its lot that nothing closed and whose plan moved no money: only a provider takes it (no order
 * sells it, and ADL closes its counterparties in whole lots). When its auction ended with no fill, or it has had none
 * and waits for the book (its lot set since), an auction opens for it again once a provider can bid: a registered
 * provider and a redrive end it (lot52-sub-lot-auction-again). Not in the delivery whose step just ended that auction
 * (`ending`), whose providers could not bid. Undefined: no auction now.
 */
export async function auctionAgain(
  liquidation: LiquidationRecord,
  context: LiquidationContext,
  position: PositionRecord,
  auction: AuctionRecord | undefined,
  mark: PriceE8,
  deps: SettlementDeps,
  carried: Carried,
  ending: boolean,
): Promise<Step | undefined> {
  if (
    ending ||
    deps.strategy === 'market-only' ||
    context.settle ||
    context.lastResortOrder ||
    sumSize(liquidation.marketFills) > 0n ||
    context.plannedSize >= lotSizeOf(marketConfig(deps.config, liquidation.symbol)) ||
    (auction && (auction.state === 'RUNNING' || auction.fills.length > 0))
  )
    return undefined;
  const opening = openingAuction(liquidation, context, position, mark, deps);
  carried.market ??= await deps.markets.get(liquidation.symbol);
  const plan = planOpening(
    opening,
    mark,
    deps.clock.nowMs(),
    deps.config,
    await deps.providers.list(liquidation.symbol),
  );
  if (plan.kind === 'no-bidder') return undefined;
  return startAuction(liquidation, context, opening, plan, deps, carried, auction);
}
