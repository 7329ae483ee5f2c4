/**
 * QUEUED: re-check at the latest mark, then cancel, or claim the liquidation with its market order fixed (after the
 * venue check, which may hold it).
 */

import { riskConfigDigestOf } from '../../config-digest.ts';
import {
  CLAIMED_CONFIG_DIGEST_CHARS,
  type ClaimedFacts,
  encodeClaimedFacts,
} from '../../domain/claimed-facts.ts';
import type { MarketConfig } from '../../domain/config.ts';
import { lotSizeOf, marketConfig } from '../../domain/config.ts';
import { isLiquidatable } from '../../domain/margin.ts';
import { type LiquidationStep, planLiquidationStep } from '../../domain/sizing.ts';
import { div, floorToLot, formatPrice, PPM_SCALE, type Ppm, type PriceE8 } from '../../domain/units.ts';
import { venueDisputesMark } from '../../domain/venue-check.ts';
import { METRICS } from '../../metrics.ts';
import {
  ConditionFailedError,
  type LiquidationRecord,
  type MarketState,
  type PositionRecord,
} from '../../ports/index.ts';
import { closeDirection, type LiquidationContext, markOfMarket, type SettlementDeps } from '../context.ts';
import { isNextSlice, withLiquidationPrice } from '../margin-check.ts';
import { leaseFor, ownerOf } from './lease.ts';
import { marketOrderId } from './market-order.ts';
import {
  type Carried,
  commitOrSkip,
  loadPosition,
  type MarkAt,
  markOf,
  type Step,
  withHistory,
} from './step.ts';
import { quoteOrNone } from './venue.ts';

/** The position and the latest mark in one read when neither is carried (one call per liquidation saved). */
async function loadClaimInputs(
  liquidation: LiquidationRecord,
  deps: SettlementDeps,
  carried: Carried,
): Promise<void> {
  if (carried.position || carried.mark) return;
  const { position, market } = await deps.reader.positionAndMarket(
    liquidation.positionId,
    liquidation.symbol,
  );
  carried.position = position;
  carried.market = market;
  carried.mark = markOfMarket(market, liquidation.triggerMark, deps.clock.nowMs());
}

/**
 * Re-checks at the latest mark and either cancels (healthy again) or claims the liquidation (QUEUED ->
 * EXECUTING) with its market order fixed: size, limit and reference. Cancelling is only possible from QUEUED,
 * so once any consumer may have placed the order nobody can cancel it away.
 */
export async function claim(
  liquidation: LiquidationRecord,
  deps: SettlementDeps,
  carried: Carried,
): Promise<Step> {
  await loadClaimInputs(liquidation, deps, carried);
  const position = await loadPosition(liquidation, deps, carried);
  const market = marketConfig(deps.config, liquidation.symbol);
  const reference = await markOf(liquidation, deps, carried, liquidation.triggerMark);
  const { mark } = reference;
  const now = deps.clock.nowMs();

  // A slice left as dust goes on whatever its health (see applySettlement): a healthy dust remainder stays.
  const dustSlice = isNextSlice(liquidation) && position.size < market.dustSize;
  if (!dustSlice && !isLiquidatable(position, mark, market.maintenanceMargin)) {
    // Healthy again at the latest mark: nothing executed, the position goes back to the book, priced by the
    // rules this deployment runs (a reindex after a change of the margin passed it over while LIQUIDATING).
    const reopened: PositionRecord = withLiquidationPrice(
      { ...position, state: 'OPEN', version: position.version + 1 },
      deps.config,
    );
    const cancelled = withHistory(liquidation, 'CANCELLED', now, `healthy at ${mark}`);
    const committed = await commitOrSkip(deps, [
      { kind: 'liquidation', record: cancelled, expectedVersion: liquidation.version },
      { kind: 'position', record: reopened, expectedVersion: position.version },
    ]);
    if (!committed) return { done: false };
    deps.telemetry.count(METRICS.LiquidationsCancelled.name, 1, { Market: liquidation.symbol });
    return { done: true, record: cancelled };
  }

  if (
    !dustSlice &&
    (await confirmWithVenue(liquidation, position, reference, market, deps, carried)) === 'moved'
  )
    return { done: false };

  const step = deps.strategy === 'market-only' ? undefined : planLiquidationStep(position, mark, market);
  const plannedSize = step?.size ?? position.size;
  // The venue fills whole lots only: a part under one (a position opened before its market had a lot) goes straight
  // on to the auction (ADL closes whole lots of its counterparties only), and a slice all under one places no order.
  const marketOrderSize = floorToLot(plannedSize, lotSizeOf(market));
  const direction = closeDirection(position.side);
  const slip = deps.strategy === 'market-only' ? PPM_SCALE - 1n : market.slippageBound;
  // Worst acceptable price, rounded toward the mark (a tighter bound protects the fund).
  const limitPrice =
    direction === 'SELL'
      ? div(mark * (PPM_SCALE - slip), PPM_SCALE, 'ceil')
      : deps.strategy === 'market-only'
        ? mark * 1000n
        : div(mark * (PPM_SCALE + slip), PPM_SCALE, 'floor');
  const context: LiquidationContext = {
    plannedSize,
    ...(marketOrderSize === plannedSize ? {} : { marketOrderSize }),
    executionMark: mark,
    executionMarkAtMs: reference.atMs,
    limitPrice,
    positionVersion: position.version,
    claimed: encodeClaimedFacts({
      ...claimedFacts(position, market, slip, step, reference, carried.market),
      configDigest: riskConfigDigestOf(deps.config).slice(0, CLAIMED_CONFIG_DIGEST_CHARS),
    }),
    // The claimant places the order: the lease comes with the claim.
    lease: leaseFor(ownerOf(carried), now, deps),
  };
  const claimed: LiquidationRecord = {
    ...withHistory(
      liquidation,
      'EXECUTING',
      now,
      `size ${plannedSize} limit ${limitPrice}${marketOrderSize === plannedSize ? '' : ` market order ${marketOrderSize}`}`,
    ),
    remainingSize: plannedSize,
    context,
  };
  if (
    !(await commitOrSkip(deps, [
      { kind: 'liquidation', record: claimed, expectedVersion: liquidation.version },
    ]))
  ) {
    return { done: false };
  }
  carried.leased = claimed;
  carried.claimedOrder = marketOrderId(claimed.id);
  return { done: false, next: claimed };
}

/** What the claim read and applied, for `liquidations show` (LiquidationContext.claimed). */
function claimedFacts(
  position: PositionRecord,
  market: MarketConfig,
  slippageBound: Ppm,
  step: LiquidationStep | undefined,
  reference: MarkAt,
  read: MarketState | undefined,
): ClaimedFacts {
  const tick = read?.lastTick;
  // The mark's tick, when the mark is the market's last tick as read (else the trigger mark: no tick recorded).
  const markTick =
    tick && tick.markPrice === reference.mark && tick.timestampMs === reference.atMs
      ? {
          sequence: tick.sequence,
          ...(tick.indexPrice === undefined ? {} : { indexPrice: tick.indexPrice }),
        }
      : undefined;
  return {
    position: {
      size: position.size,
      entryPrice: position.entryPrice,
      collateral: position.collateral,
      ...(position.collateralOverE16 === undefined ? {} : { collateralOverE16: position.collateralOverE16 }),
    },
    ...(step ? { sizing: step.reason } : {}),
    ...(markTick ? { markTick } : {}),
    maintenanceMargin: market.maintenanceMargin,
    initialMargin: market.initialMargin,
    liquidationFee: market.liquidationFee,
    slippageBound,
  };
}

/** How long a liquidation the venue holds (MarkDisputedError) waits before it looks again, at most. */
export const MARK_DISPUTE_WAIT_SECONDS = 10;

/**
 * The venue disputes the mark a liquidation would start on (domain/venue-check.ts): it waits, unwritten, for
 * `waitSeconds`: the next look, or the hold's end if sooner (before session 39, a hold of 25 s ended at the look at
 * 30 s).
 */
export class MarkDisputedError extends Error {
  override readonly name = 'MarkDisputedError';
  constructor(
    readonly symbol: string,
    mark: PriceE8,
    venuePrice: PriceE8 | undefined,
    readonly sinceMs: number,
    readonly waitSeconds: number,
  ) {
    super(
      `mark/disputed: ${symbol} mark ${formatPrice(mark)}, the venue's price for the close ${venuePrice === undefined ? 'unknown (its quote failed)' : formatPrice(venuePrice)} (disputed since ${new Date(sinceMs).toISOString()})`,
    );
  }
}

/**
 * With the market's venueCheckBand, the venue's price for the close must not dispute the mark a liquidation starts
 * on: while it does, the liquidation waits, QUEUED (its message comes back), for at most venueCheckHoldSeconds from
 * the first dispute, as recorded on the liquidation (recordMarkDispute: the first time wins); then it goes on on the
 * mark, as a venue (a book someone props up) must not hold liquidations for ever. A venue that cannot quote is no
 * evidence: it goes on. 'moved': the record left QUEUED, or another delivery recorded the hold first (read it again).
 */
async function confirmWithVenue(
  liquidation: LiquidationRecord,
  position: PositionRecord,
  reference: MarkAt,
  market: MarketConfig,
  deps: SettlementDeps,
  carried: Carried,
): Promise<'checked' | 'moved'> {
  // A slice's rest continues a liquidation whose start was checked (and held at most once).
  if (market.venueCheckBand === undefined || deps.strategy === 'market-only' || isNextSlice(liquidation))
    return 'checked';
  const now = deps.clock.nowMs();
  // The hold starts when the record says. A message's time counts only on a record without one: a message of a
  // version that did not record it (a rolling deploy). Trusted, a message re-sent without it or forged with another
  // time restarted or ended the hold (session 41).
  const legacy = liquidation.markDisputedSinceMs === undefined ? carried.markDisputedSinceMs : undefined;
  const first = liquidation.markDisputedSinceMs ?? legacy;
  // A first time ahead of now (a clock ahead, or forged) would hold past the cap for ever.
  const since = first === undefined ? undefined : Math.min(first, now);
  const quote = await quoteOrNone(liquidation, reference, deps, 'venue quote failed');
  const price = quote && (closeDirection(position.side) === 'SELL' ? quote.bid : quote.ask);
  // No quote is no evidence either way: a dispute already under way holds on (a failing venue must not end it).
  const disputes = quote
    ? venueDisputesMark(position, reference.mark, price, market.maintenanceMargin, market.venueCheckBand)
    : since !== undefined;
  if (!disputes) return 'checked';
  // A hold of 0 holds nothing: the first dispute is overruled at once (it held for a look, 10 s).
  const holdsUntil = (since ?? now) + market.venueCheckHoldSeconds * 1000;
  if (now >= holdsUntil) {
    if (!quote) return 'checked';
    deps.telemetry.warn(
      'the venue has disputed the mark for venueCheckHoldSeconds; liquidating on the mark',
      {
        liquidationId: liquidation.id,
        mark: formatPrice(reference.mark),
        venuePrice: price === undefined ? null : formatPrice(price),
      },
    );
    deps.telemetry.count(METRICS.MarkDisputesOverruled.name, 1, { Market: liquidation.symbol });
    return 'checked';
  }
  if (liquidation.markDisputedSinceMs === undefined) {
    // Recorded before the message goes back: no later message moves it.
    let held: { readonly sinceMs: number; readonly recorded: boolean };
    try {
      held = await deps.liquidations.recordMarkDispute(liquidation.id, since ?? now);
    } catch (error) {
      if (error instanceof ConditionFailedError) return 'moved';
      throw error;
    }
    if (!held.recorded) return 'moved';
    // Once per liquidation held, by the write only one delivery makes (an older version counted a legacy hold). At
    // most once: a delivery whose write landed and that never counted it or never published the count (its answer
    // lost past the SDK's retries, a process killed before the record's metrics went out) leaves the hold uncounted,
    // and its retry cannot tell that from a delivery that did count and then failed (its hold message not sent):
    // the count and the record are not one atomic write, so counting in the retry would count some holds twice.
    if (legacy === undefined)
      deps.telemetry.count(METRICS.LiquidationsDisputed.name, 1, { Market: liquidation.symbol });
  }
  throw new MarkDisputedError(
    liquidation.symbol,
    reference.mark,
    price,
    since ?? now,
    Math.max(1, Math.min(MARK_DISPUTE_WAIT_SECONDS, Math.ceil((holdsUntil - now) / 1000))),
  );
}
