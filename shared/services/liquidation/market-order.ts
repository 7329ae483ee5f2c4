/** EXECUTING: the market order the claim fixed, placed under the order lease, its fills handed to the settlement. */

import { absBig, BPS_SCALE, div, type PriceE8 } from '../../domain/units.ts';
import { METRICS } from '../../metrics.ts';
import type { LiquidationRecord } from '../../ports/index.ts';
import { closeDirection, type SettlementDeps } from '../context.ts';
import { holdLease } from './lease.ts';
import { decideAndSettle } from './settlement.ts';
import { type Carried, contextOf, markOf, type Step, sumSize } from './step.ts';
import { keptFills, placeWithRetries } from './venue.ts';

export const marketOrderId = (liquidationId: string): string => `${liquidationId}:market`;

/**
 * Places the claimed order under the order lease (a retry places the same client order id: the venue never
 * executes it twice) and hands the fills to the waterfall in memory; they are stored with the next transition,
 * which is conditional on this record's version.
 */
export async function executeMarket(
  claimed: LiquidationRecord,
  deps: SettlementDeps,
  carried: Carried,
): Promise<Step> {
  // A claimed order is placed (or asked again) only on a fresh mark, as every other decision: while the feed is
  // out it waits with no lease, no order and no write, and its fills are stored with the settlement after.
  await markOf(claimed, deps, carried, contextOf(claimed).executionMark);
  const liquidation = await holdLease(claimed, deps, carried);
  if (!liquidation) return { done: false };
  const context = contextOf(liquidation);
  const clientOrderId = marketOrderId(liquidation.id);
  const placedBefore = carried.claimedOrder !== clientOrderId;
  // Placed now: a later placement of it in this delivery (after a lost commit) is a repeat too.
  carried.claimedOrder = undefined;
  const orderSize = context.marketOrderSize ?? context.plannedSize;
  // A slice under one lot: no order, as the claim fixed for every delivery (the venue would answer no fills).
  const answered =
    orderSize === 0n
      ? []
      : await placeWithRetries(deps, placedBefore, {
          clientOrderId,
          symbol: liquidation.symbol,
          direction: closeDirection(liquidation.side),
          size: orderSize,
          limitPrice: context.limitPrice ?? context.executionMark,
          reference: { mark: context.executionMark, atMs: context.executionMarkAtMs ?? deps.clock.nowMs() },
        });
  for (const fill of answered) {
    deps.telemetry.observe(METRICS.SlippageBps.name, Number(slippageBps(fill.price, context.executionMark)), {
      Market: liquidation.symbol,
    });
  }
  const fills = keptFills(answered, clientOrderId, deps);
  const executed: LiquidationRecord = {
    ...liquidation,
    state: 'MARKET_EXECUTED',
    marketFills: fills,
    remainingSize: context.plannedSize - sumSize(fills),
    history: [
      ...liquidation.history,
      {
        atMs: deps.clock.nowMs(),
        state: 'MARKET_EXECUTED',
        note: `filled ${sumSize(fills)} of ${context.plannedSize}`,
      },
    ],
    // Not stored yet: the next commit expects the stored version.
    version: liquidation.version,
  };
  return decideAndSettle(executed, deps, undefined, carried);
}

/** |fill - mark| / mark in basis points, rounded up. */
export const slippageBps = (fillPrice: PriceE8, mark: PriceE8): bigint =>
  div(absBig(fillPrice - mark) * BPS_SCALE, mark, 'ceil');
