/**
 * MARKET_EXECUTED / SETTLING: ask the waterfall what comes next (the auction, the fund and ADL, the last resort) and
 * apply the settlement in one transaction.
 */

import { profitGivenAfter } from '../../domain/adl.ts';
import type { InsuranceConfig } from '../../domain/config.ts';
import { lotSizeOf, marketConfig } from '../../domain/config.ts';
import { boundedFills } from '../../domain/fills.ts';
import { type InsuranceState, windowStartFor } from '../../domain/insurance.ts';
import { isLiquidatable } from '../../domain/margin.ts';
import type { Fill, Side, TerminalState } from '../../domain/model.ts';
import { floorToLot, type PriceE8 } from '../../domain/units.ts';
import {
  appliedAmounts,
  decideWaterfall,
  differenceMovements,
  settlementRecord,
  type WaterfallDecision,
  type WaterfallInput,
} from '../../domain/waterfall.ts';
import { METRICS } from '../../metrics.ts';
import {
  type AuctionRecord,
  ConditionFailedError,
  type LiquidationRecord,
  MovementFencedError,
  type PositionRecord,
  type Write,
} from '../../ports/index.ts';
import { type LiquidationContext, oppositeSide, type SettlementDeps } from '../context.ts';
import { liquidationIdOf, NEXT_SLICE_NOTE, withLiquidationPrice } from '../margin-check.ts';
import { planOpening } from '../sleeping.ts';
import { adlRounds, deleverage, roundsFollow } from './adl-rounds.ts';
import { auctionAgain, ensureAuctionScheduled, openingAuction, startAuction } from './auction-start.ts';
import { LiquidationStuckError } from './errors.ts';
import { sendNextSlice } from './follow-ups.ts';
import {
  type Decide,
  flushPending,
  freeze,
  frozenByOlderVersion,
  refreeze,
  restOf,
  sliceOf,
} from './freeze.ts';
import { lastResort } from './last-resort.ts';
import { awaitLeaseHolder, outcomeRecorded } from './lease.ts';
import { recordSettlementMetrics } from './settlement-metrics.ts';
import {
  type Carried,
  commitOrSkip,
  contextOf,
  LATE_DELIVERY_MS,
  loadPosition,
  markOf,
  type PlanReads,
  type Step,
  sumSize,
  withHistory,
  withoutOver,
} from './step.ts';
import { MAX_FILLS_PER_ORDER } from './venue.ts';

/** Before the fund is consulted: a plan that needs no fund state is exactly as valid with this one. */
const NO_FUND: InsuranceState = { balance: 0n, windowStartMs: 0, windowDrawn: 0n };

/** A frozen plan from another draw window, or older than LATE_DELIVERY_MS, is made again. */
const frozenPlanIsStale = (frozenAtMs: number, nowMs: number, config: InsuranceConfig): boolean =>
  nowMs - frozenAtMs > LATE_DELIVERY_MS ||
  windowStartFor(nowMs, config) !== windowStartFor(frozenAtMs, config);

export async function decideAndSettle(
  liquidation: LiquidationRecord,
  deps: SettlementDeps,
  auction: AuctionRecord | undefined,
  carried: Carried = {},
): Promise<Step> {
  const context = contextOf(liquidation);
  const named = context.lastResortWait?.id;
  if (
    carried.lastResortWaitId !== undefined &&
    named !== carried.lastResortWaitId &&
    named !== carried.lastResortWaitAfter
  ) {
    // A copy of a wait message (its delivery came back after it sent the next wait, a duplicate delivery, a wait
    // another replaced): the wait the record names goes on, and this one ends, sending nothing. Before session 43
    // each copy sent a next wait of its own, every look after: chains in parallel (waits43-one-chain). One whose
    // predecessor is still named goes on, as a take-over: its sender has not named it yet, and may never (a write
    // slower than the wait, a death, a lost race); ended, the liquidation was left with no message when that write
    // landed (review43b-wait-before-named). Only one take-over's write lands on a version; the others then end here.
    deps.telemetry.info('a copy of a wait for the book; the one the record names goes on', {
      liquidationId: liquidation.id,
    });
    return { done: true, record: liquidation };
  }
  // This delivery's step just ended the slice's auction (its writes go with the first transition below).
  const ending = carried.pendingWrites !== undefined;
  // Every outcome below commits on this record's version: a lease taken after this read fails that commit.
  if ((await awaitLeaseHolder(liquidation, deps, carried)) === 'moved') return { done: false };
  const live = await loadPosition(liquidation, deps, carried);
  const frozen = context.settle;
  // A reader holding an old liquidation record sees a position that has moved on: never plan from it.
  const expectedVersion = frozen?.position.version ?? context.positionVersion;
  if (live.state !== 'LIQUIDATING' || (expectedVersion !== undefined && live.version !== expectedVersion)) {
    carried.position = undefined;
    return { done: false };
  }
  const position: PositionRecord = frozen ? { ...live, ...frozen.position } : live;
  const market = marketConfig(deps.config, liquidation.symbol);
  const now = deps.clock.nowMs();

  const auctionFills: readonly Fill[] =
    frozen?.auctionFills ??
    auction?.fills.map(({ price, size, cost }) =>
      cost === undefined ? { price, size } : { price, size, cost },
    ) ??
    [];
  // Undefined until the auction layer has run (or is running); market-only has none to run.
  let auctionResult: WaterfallInput['auctionResult'] =
    auction || frozen || deps.strategy === 'market-only'
      ? { fills: auctionFills, finished: auction ? auction.state !== 'RUNNING' || !!frozen : true }
      : undefined;
  const mark = frozen?.mark ?? (await markOf(liquidation, deps, carried, context.executionMark)).mark;
  const decide: Decide = (insurance, candidates, lastResort, restMark) =>
    decideWaterfall({
      liquidationId: liquidation.id,
      position: sliceOf(position, context),
      restOfPosition: restOf(position, context, restMark ?? mark),
      mark,
      market,
      stillLiquidatable: true,
      marketResult: { fills: liquidation.marketFills },
      ...(auctionResult ? { auctionResult } : {}),
      insurance: { account: deps.insuranceAccount, state: insurance, config: deps.config.insurance },
      ...(candidates ? { adlCandidates: candidates } : {}),
      ...(lastResort ? { lastResortResult: { fills: lastResort } } : {}),
      // The baseline has no ADL: a deficit the fund refuses stays bad debt.
      ...(deps.strategy === 'market-only' ? { socializeDeficit: false } : {}),
      nowMs: frozen?.nowMs ?? now,
      ...(frozen?.applied ? { applied: appliedAmounts(frozen.applied, liquidation.id) } : {}),
      ...(frozen?.appliedDrawAtMs !== undefined ? { appliedDrawAtMs: frozen.appliedDrawAtMs } : {}),
    });

  // Reads the fund and ADL's queue, plans on them and freezes the plan (or places the last resort it calls for).
  const planWithTheFund = () =>
    freeze(liquidation, context, position, { mark, nowMs: now, auctionFills }, decide, deps, carried);

  if (!frozen && (context.lastResortAttempt || context.lastResortOrder)) {
    // Waiting for the book: a quote, then this attempt's order when the quote is within the bound, ask it first,
    // and only fills call for a plan (which reads the fund and ADL's queue, spent when the last resort is
    // needed). A new attempt still comes only after an order that filled nothing, so a fill of a concurrent
    // delivery is never skipped.
    if (!(await flushPending(deps, carried))) return { done: false };
    // Under its lot (a lot set or raised since the wait began), only a provider takes it: an auction first.
    const again = await auctionAgain(liquidation, context, position, auction, mark, deps, carried, ending);
    if (again) return again;
    // A position healthy again while it waits is still sold (not cancelled as a queued one would be): measured on
    // the crash replay, cancelling it gave back positions that the next leg down liquidated deeper, at a loss
    // the fund and ADL paid (docs/RELIABILITY.md, last-resort-recovered).
    // The last resort comes after the auction layer: it ended (or never started, nobody being able to bid).
    auctionResult = { fills: auctionFills, finished: true };
    // ADL found nobody when the wait began, at the mark then: one the mark has since moved into profit may take the
    // slice now (a crash puts the other side in profit as it deepens), so plan again, ADL first; the plan waits for
    // the book again if it still finds nobody (an audit in session 37: the slice waited out its budget and was
    // dead-lettered, the position left past its bankruptcy price, while ADL could have closed it).
    if (!context.lastResortOrder && otherSideGainedSince(liquidation.side, mark, carried.adlJudgedAt)) {
      return planWithTheFund();
    }
    const left = context.plannedSize - sumSize(liquidation.marketFills) - sumSize(auctionFills);
    // Whole lots (the decision's lastResortSize). A lot set or raised since the wait began may leave none: no order
    // sells that, nor ADL (whole lots), and no provider could bid (auctionAgain): planned again, it ends as
    // waterfall/sub-lot-remainder.
    const wholeLots = floorToLot(left, lotSizeOf(market));
    if (wholeLots === 0n && !context.lastResortOrder) return planWithTheFund();
    const placed = await lastResort(liquidation, context, wholeLots, mark, deps, carried);
    if (placed === 'moved') return { done: false };
    if (placed === 'waiting') return { done: true, record: liquidation };
    return freeze(
      placed.record,
      context,
      position,
      { mark, nowMs: now, auctionFills, lastResortFills: placed.fills },
      decide,
      deps,
      carried,
    );
  }

  if (
    frozen &&
    (frozen.superseded || context.lastResortOrder || frozenByOlderVersion(frozen, liquidation.id))
  ) {
    // A plan being made again (refreeze) that wrote before its freeze: a last-resort order it placed and did not
    // record, or a wait for the book. Plan again, placing that order first. (Or a plan an older version froze
    // without what this one needs to apply it: plan again on the ledger as it is.)
    return refreeze(liquidation, context, position, deps, carried);
  }
  if (frozen) {
    const planned = carried.frozenPlan;
    const fresh = planned?.liquidationId === liquidation.id && planned.version === liquidation.version;
    // A plan applied late (its delivery died after the freeze and came back: a redelivery, a redrive, a backlog)
    // is made again on the mark and the fund's window of now: applied as frozen, its draws would open the window
    // it was planned in, one cap per stale window, and ADL would close counterparties at an old mark.
    if (!fresh && frozenPlanIsStale(frozen.nowMs, now, deps.config.insurance)) {
      return refreeze(liquidation, context, position, deps, carried);
    }
    // One an earlier delivery froze is applied only while the market's mark is fresh too, as every decision is
    // (its own mark was fresh when frozen, up to LATE_DELIVERY_MS ago): a read of the market on this path alone.
    if (!fresh) await markOf(liquidation, deps, carried, frozen.mark);
    const decision = fresh
      ? planned.decision
      : decide(frozen.insurance, frozen.candidates, frozen.lastResortFills);
    if (decision.next !== 'settle') {
      throw new LiquidationStuckError(`liquidation/frozen-plan-${decision.next}: ${liquidation.id}`);
    }
    return applySettlement(
      liquidation,
      context,
      position,
      decision,
      deps,
      mark,
      mark,
      carried,
      fresh ? planned.reads : {},
    );
  }

  // A plan that pays nothing from the fund and needs no ADL is the same whatever the fund holds: settle it
  // without reading the fund or freezing. Otherwise read the fund (and the ADL candidates) and freeze. Settled
  // without a freeze, the slice's rest is valued at marks stored before this delivery (the claim's, the ended
  // auction's), not the mark of now: a delivery that applied the fee and died comes back at another mark, and
  // must plan the same fee (the ledger refuses a key applied with another amount).
  const storedRestMark = auction?.endedAtMark ?? context.executionMark;
  // A slice under its lot whose auction ended with no fill: only a provider takes it, in an auction of its own again.
  const again =
    auction && (await auctionAgain(liquidation, context, position, auction, mark, deps, carried, ending));
  if (again) return again;
  let decision = decide(NO_FUND, undefined, undefined, storedRestMark);
  if (decision.next === 'start-auction') {
    const opening = openingAuction(liquidation, context, position, mark, deps);
    // The market before the providers: a first sleep commits on the providers epoch it read (startAuction).
    carried.market ??= await deps.markets.get(liquidation.symbol);
    const plan = planOpening(opening, mark, now, deps.config, await deps.providers.list(liquidation.symbol));
    if (plan.kind !== 'no-bidder') return startAuction(liquidation, context, opening, plan, deps, carried);
    // Its first step would end it unfilled: the fund and ADL take the rest now, not a message later.
    deps.telemetry.count(METRICS.AuctionsSkipped.name, 1, { Market: liquidation.symbol });
    auctionResult = { fills: [], finished: true };
    decision = decide(NO_FUND, undefined, undefined, storedRestMark);
  }
  switch (decision.next) {
    case 'await-auction':
      await ensureAuctionScheduled(liquidation, deps);
      return { done: true, record: liquidation };
    case 'settle':
      if (!(await flushPending(deps, carried))) return { done: false };
      return applySettlement(liquidation, context, position, decision, deps, mark, storedRestMark, carried);
    default:
      return planWithTheFund();
  }
}

/**
 * Whether ADL's counterparties (the other side) gained since `judgedAt`, when it found nobody for the slice: shorts
 * gain as the mark falls, longs as it rises. Not judged (a message from before the field): judge now.
 */
const otherSideGainedSince = (side: Side, mark: PriceE8, judgedAt: PriceE8 | undefined): boolean =>
  judgedAt === undefined || (side === 'LONG' ? mark < judgedAt : mark > judgedAt);

async function applySettlement(
  liquidation: LiquidationRecord,
  context: LiquidationContext,
  position: PositionRecord,
  decision: WaterfallDecision,
  deps: SettlementDeps,
  mark: PriceE8,
  /** What the plan valued the slice's rest at (restOf), recorded with the settlement. */
  restMark: PriceE8,
  carried: Carried,
  reads: PlanReads = {},
): Promise<Step> {
  const now = deps.clock.nowMs();
  const terminal = decision.terminal as TerminalState;
  const adlFills = decision.adl?.fills ?? [];
  // The counterparties the plan read at the versions it froze (the commit checks them), or one batch read of
  // them (not one read each: up to 90 per settlement). One that changed since voids the plan before any money
  // moves: plan again on fresh ones.
  const current = new Map(reads.counterparties);
  const unread = adlFills.filter((f) => !current.has(f.id)).map((f) => f.id);
  if (unread.length > 0) for (const p of await deps.reader.positions(unread)) current.set(p.id, p);
  const frozenVersions = new Map((context.settle?.candidates ?? []).map((c) => [c.id, c.version]));
  if (adlFills.some((f) => current.get(f.id)?.version !== frozenVersions.get(f.id))) {
    return refreeze(liquidation, context, position, deps, carried);
  }
  let fundBalance: bigint | undefined;
  // The plan's read of the fund serves its first movement only: each one moves the account on.
  let known = reads.fund;
  const settle = context.settle;
  const movements = settle?.applied
    ? differenceMovements(decision.movements, settle.applied, settle.replans ?? 1, {
        atMs: settle.nowMs,
        config: deps.config.insurance,
        ...(settle.appliedDrawAtMs !== undefined ? { givenBackAtMs: settle.appliedDrawAtMs } : {}),
      })
    : decision.movements;
  // Each movement lands only while the record is the one this plan was made on (see refreeze).
  const fence = { liquidationId: liquidation.id, version: liquidation.version };
  for (const movement of movements) {
    try {
      const applied = await deps.ledger.apply({ ...movement, fence }, known);
      // A key applied by an earlier delivery answers with that application's balance, not the fund's now.
      if (!applied.replayed) fundBalance = applied.balanceAfter;
      known = undefined;
    } catch (error) {
      // Another delivery moved the record on (to plan again, or to settle): nothing of this one is left to do.
      if (error instanceof MovementFencedError) return { done: false };
      // Another settlement drew the fund since these inputs were frozen: the debit was refused whole
      // (nothing applied), so plan again from the fund as it is now and what this settlement applied.
      if (error instanceof ConditionFailedError && movement.amount < 0n && context.settle) {
        deps.telemetry.info('fund changed since the plan; planning again', { liquidationId: liquidation.id });
        return refreeze(liquidation, context, position, deps, carried);
      }
      throw error;
    }
  }
  const writes: Write[] = [];
  // What ADL could not take (decision.carriedSize) stays with the position, as does the collateral left.
  const remainingSize = position.size - context.plannedSize + decision.carriedSize;
  let nextLiquidation: LiquidationRecord | undefined;
  if (remainingSize === 0n) {
    writes.push({
      kind: 'position',
      record: {
        ...withoutOver(position),
        state: 'CLOSED',
        collateral: 0n,
        closedPayout: decision.traderPayout,
        version: position.version + 1,
      },
      expectedVersion: position.version,
    });
  } else {
    // A partial close: what the slice left of the collateral stays with the remainder (isolated margin), and of
    // the profit ADL took from it before only the remainder's share (the closed part's went with its close).
    const { adlProfitGiven: _given, ...kept } = withoutOver(position);
    const given = profitGivenAfter(position, position.size - remainingSize, 0n, mark);
    // The sub-unit the slice's rounding left on the collateral: the rest's final close takes it back.
    const over = decision.settlement?.restCollateralOverE16 ?? 0n;
    const remainder = withLiquidationPrice(
      {
        ...kept,
        ...(given > 0n ? { adlProfitGiven: given } : {}),
        size: remainingSize,
        collateral: decision.traderPayout,
        ...(over > 0n ? { collateralOverE16: over } : {}),
        version: position.version + 1,
      },
      deps.config,
    );
    const market = marketConfig(deps.config, position.symbol);
    // Still endangered, or dust (a carry the layers could not close: the slice was planned whole, and no tick
    // would ever close a remainder healthy at any price): the next slice starts atomically with this settlement.
    if (isLiquidatable(remainder, mark, market.maintenanceMargin) || remainingSize < market.dustSize) {
      // Still endangered: the next slice starts atomically with this settlement.
      const stillLiquidating: PositionRecord = { ...remainder, state: 'LIQUIDATING' };
      nextLiquidation = {
        ...liquidation,
        id: liquidationIdOf(stillLiquidating),
        state: 'QUEUED',
        triggerMark: mark,
        remainingSize: remainingSize,
        marketFills: [],
        history: [{ atMs: now, state: 'QUEUED', note: `${NEXT_SLICE_NOTE} ${liquidation.id}` }],
        version: 0,
      };
      delete (nextLiquidation as { context?: unknown }).context;
      delete (nextLiquidation as { settlement?: unknown }).settlement;
      writes.push({ kind: 'position', record: stillLiquidating, expectedVersion: position.version });
      writes.push({ kind: 'liquidation', record: nextLiquidation, expectedVersion: undefined });
    } else {
      writes.push({
        kind: 'position',
        record: { ...remainder, state: 'OPEN' },
        expectedVersion: position.version,
      });
    }
  }

  const adlMark = context.settle?.mark ?? context.executionMark;
  for (const fill of adlFills) {
    const version = frozenVersions.get(fill.id);
    writes.push({
      kind: 'position',
      ...deleverage(fill, current.get(fill.id), version, adlMark, deps, {
        liquidationId: liquidation.id,
        round: 0,
        atMs: now,
      }),
    });
  }

  // Bounded here too: an older version froze the venue's answer whole.
  const lastResortFills = boundedFills(context.settle?.lastResortFills ?? [], MAX_FILLS_PER_ORDER);
  const settled: LiquidationRecord = {
    ...withHistory(liquidation, terminal, now, decision.acted.join('>')),
    // The last-resort order's fills are market fills (the record's fills re-derive the settlement).
    ...(lastResortFills.length > 0 ? { marketFills: [...liquidation.marketFills, ...lastResortFills] } : {}),
    settlement: settlementRecord(decision),
    context: {
      ...outcomeRecorded(context),
      settledMark: restMark,
      ...(nextLiquidation ? { nextLiquidationId: nextLiquidation.id } : {}),
      ...(roundsFollow(decision, context.settle, deps) ? { adlRound: { round: 0 } } : {}),
    },
  };
  writes.unshift({ kind: 'liquidation', record: settled, expectedVersion: liquidation.version });
  if (!(await commitOrSkip(deps, writes))) {
    const stored = await deps.liquidations.get(liquidation.id);
    if (context.settle?.candidates && stored?.version === liquidation.version) {
      // Nobody moved the liquidation: an ADL counterparty changed. Plan again on fresh counterparties from the
      // same fund state; the money this plan applied is kept, and the next plan applies only the difference.
      return refreeze(liquidation, context, position, deps, carried);
    }
    return { done: false };
  }

  recordSettlementMetrics(liquidation.symbol, decision, fundBalance, deps, !!settled.context?.adlRound);
  if (adlFills.some((f) => f.size > 0n))
    deps.adlSnapshots?.closedOn(liquidation.symbol, oppositeSide(liquidation.side));
  if (nextLiquidation) await sendNextSlice(nextLiquidation.id, settled, deps);
  if (settled.context?.adlRound) return adlRounds(settled, deps);
  return { done: true, record: settled };
}
