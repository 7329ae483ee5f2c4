/**
 * ADL rounds: a deficit beyond one transaction of counterparties, taken in rounds after the settlement; and the
 * deleverage write of one counterparty, which the settlement makes too.
 */

import {
  type AdlAllocation,
  type AdlFill,
  allocateAdl,
  deleverageCounterparty,
  recordAdlEvent,
} from '../../domain/adl.ts';
import { formatQuote, type PriceE8 } from '../../domain/units.ts';
import type { WaterfallDecision } from '../../domain/waterfall.ts';
import { METRICS } from '../../metrics.ts';
import type { LiquidationRecord, PositionRecord, Write } from '../../ports/index.ts';
import { dueLiquidationMessage } from '../../schemas/messages.ts';
import { type LiquidationContext, latestMark, requireFreshMark, type SettlementDeps } from '../context.ts';
import { withLiquidationPrice } from '../margin-check.ts';
import { type AdlPlanner, adlQueue } from './adl-queue.ts';
import { LiquidationStuckError } from './errors.ts';
import { commitOrSkip, contextOf, LATE_DELIVERY_MS, type Step, withoutOver } from './step.ts';

/** Rounds one delivery runs before it hands the rest to a message of its own (bounded work per delivery). */
const ADL_ROUNDS_PER_DELIVERY = 4;
/** Delay of the message that continues the rounds. */
const ROUNDS_CONTINUE_SECONDS = 1;

/**
 * The settlement leaves a deficit ADL did not cover: others may stand behind the counterparties one transaction
 * holds, or behind those that could only close size. A plan that saw the whole side spent is final, unless ADL's
 * orders may lag the writes (a GSI): then a round confirms it a moment later (adl-index-lag). The baseline has no
 * ADL.
 */
export const roundsFollow = (
  decision: WaterfallDecision,
  frozen: LiquidationContext['settle'],
  deps: SettlementDeps,
): boolean =>
  deps.strategy !== 'market-only' &&
  (decision.adl?.uncovered ?? 0n) > 0n &&
  (!frozen?.adlExhausted || deps.positions.adlOrdersLagMs > 0);

/**
 * ADL's further rounds on a settled liquidation (context.adlRound): each one takes what is still uncovered
 * (settlement.badDebt) from the next counterparties of the queue at the latest mark, out of profit they still
 * hold, in one transaction with the record (the counterparties' versions and the record's
 * conditional: a delivery that races another, or comes back after a crash, plans the round again). Rounds
 * end when the deficit is covered or the side has no one left to give.
 */
export async function adlRounds(liquidation: LiquidationRecord, deps: SettlementDeps): Promise<Step> {
  let current = liquidation;
  for (let i = 0; i < ADL_ROUNDS_PER_DELIVERY; i++) {
    const confirmAtMs = current.context?.adlRound?.confirm?.atMs;
    if (confirmAtMs !== undefined && deps.clock.nowMs() < confirmAtMs) {
      // The round that confirms nobody is left runs once the index shows the last moments' writes.
      const seconds = Math.max(ROUNDS_CONTINUE_SECONDS, Math.ceil((confirmAtMs - deps.clock.nowMs()) / 1000));
      await deps.liquidationQueue.send(
        dueLiquidationMessage({ liquidationId: current.id }, deps.clock.nowMs(), seconds),
        seconds,
      );
      return { done: true, record: current };
    }
    const step = await adlRound(current, deps);
    if (step.done) return step;
    // A round lost to another writer (a counterparty or the record moved): read the record again. Whatever
    // called this (an auction step too) has nothing to resume the rounds with.
    const next = step.next ?? (await deps.liquidations.get(liquidation.id));
    if (!next?.context?.adlRound) return { done: true, record: next ?? current };
    current = next;
  }
  // The rest in a delivery of its own (this one's work stays bounded), a second later: rounds that lost races
  // to other writers of the same counterparties do not spin.
  await deps.liquidationQueue.send(
    dueLiquidationMessage({ liquidationId: current.id }, deps.clock.nowMs(), ROUNDS_CONTINUE_SECONDS),
    ROUNDS_CONTINUE_SECONDS,
  );
  return { done: true, record: current };
}

export async function adlRound(liquidation: LiquidationRecord, deps: SettlementDeps): Promise<Step> {
  const context = contextOf(liquidation);
  const settlement = liquidation.settlement;
  if (!settlement) throw new LiquidationStuckError(`adl/round-without-settlement: ${liquidation.id}`);
  // Profit as counterparties hold it now (a round may come long after its settlement: a retry, a redrive).
  const settledAt = context.settle?.mark ?? context.executionMark;
  // A round confirming a finding ranks at the finding's mark: what it may add is only what the index had not shown.
  // One that comes late (a redelivery, a redrive) ranks at the mark of now: profit at an old mark is not profit.
  const confirm = context.adlRound?.confirm;
  const now = deps.clock.nowMs();
  const confirmedAt = confirm && now - confirm.atMs <= LATE_DELIVERY_MS ? confirm.mark : undefined;
  // Either way the round writes counterparties: never while the market's mark is stale (it waits for a tick).
  const latest = requireFreshMark(
    await latestMark(deps.markets, liquidation.symbol, settledAt, now),
    liquidation.symbol,
    deps,
  );
  const mark = confirmedAt ?? latest.mark;
  const deficit = settlement.badDebt;
  const planner: AdlPlanner<AdlAllocation> = {
    plan: (ranked) =>
      allocateAdl({ deficit, bankruptPosition: { side: liquidation.side, size: 0n }, ranked, mark }),
    takesAll: (a) => a.uncovered === 0n,
    stands: (a, spent) => a.uncovered === 0n || !spent,
  };
  // A confirming round reads the orders again: the cached queue is the finding it confirms.
  const queue = await adlQueue(liquidation, mark, deps, false, planner, confirm !== undefined);
  const versions = new Map(queue.head.map((e) => [e.candidate.id, e.candidate.version]));
  // A plan on this container's queue may have moved an entry past the record this plan read: plan again.
  if (queue.decision.fills.some((f) => queue.records.get(f.id)?.version !== versions.get(f.id)))
    return { done: false, next: liquidation };
  const allocation = queue.decision;
  const round = (context.adlRound?.round ?? 0) + 1;
  // Nobody (more) left to give. On orders that may lag the writes, final only when a round a moment later,
  // confirming it at the same mark, finds nobody either (adl-index-lag).
  const spent = allocation.covered === 0n || queue.spent;
  const lagMs = deps.positions.adlOrdersLagMs;
  const last =
    allocation.uncovered === 0n || (lagMs === 0 ? spent : confirm !== undefined && allocation.covered === 0n);
  const { adlRound: _, ...rest } = context;
  // No history event per round: the record stays one terminal event, and its size bounded whatever the rounds.
  const next: LiquidationRecord = {
    ...liquidation,
    settlement: {
      ...settlement,
      adlCovered: settlement.adlCovered + allocation.covered,
      badDebt: allocation.uncovered,
    },
    context: last
      ? { ...rest, adlRounds: round }
      : {
          ...rest,
          adlRound: spent ? { round, confirm: { atMs: deps.clock.nowMs() + lagMs, mark } } : { round },
        },
    version: liquidation.version + 1,
  };
  const writes: Write[] = [{ kind: 'liquidation', record: next, expectedVersion: liquidation.version }];
  for (const fill of allocation.fills) {
    const record = queue.records.get(fill.id);
    writes.push({
      kind: 'position',
      ...deleverage(fill, record, versions.get(fill.id), mark, deps, {
        liquidationId: liquidation.id,
        round,
        atMs: now,
      }),
    });
  }
  if (!(await commitOrSkip(deps, writes))) return { done: false };
  const market = { Market: liquidation.symbol };
  if (allocation.fills.length > 0)
    deps.telemetry.count(METRICS.AdlEvents.name, allocation.fills.length, market);
  if (!last) return { done: false, next };
  if (allocation.uncovered > 0n)
    deps.telemetry.observe(METRICS.BadDebt.name, Number(formatQuote(allocation.uncovered)), market);
  return { done: true, record: next };
}

/**
 * An ADL counterparty closes `size` at the mark and gives up `pnlGiven` of its profit to cover the deficit. The same
 * write records on it which liquidation (and round) did it: no write of its own, and a round that is retried
 * commits it once (the write is conditional on the version planned on).
 */
export function deleverage(
  fill: AdlFill,
  current: PositionRecord | undefined,
  planVersion: number | undefined,
  mark: PriceE8,
  deps: SettlementDeps,
  by: { readonly liquidationId: string; readonly round: number; readonly atMs: number },
): { record: PositionRecord; expectedVersion: number } {
  if (planVersion === undefined || !current)
    throw new LiquidationStuckError(`adl/counterparty-missing: ${fill.id}`);
  // The write is made from the record the plan read: any other would undo what another writer did to it.
  if (current.version !== planVersion)
    throw new LiquidationStuckError(
      `adl/counterparty-version: ${fill.id} v${current.version}, plan v${planVersion}`,
    );
  // Applied against the version the plan was made on: a counterparty that changed since makes the commit fail.
  const after = deleverageCounterparty(current, fill, mark);
  const { size, collateral, adlProfitGiven: given } = after;
  // A close rounds the exact margin once: what it leaves holds no sub-unit over. A haircut alone keeps it.
  const { adlProfitGiven: _, ...rest } = after.keepsOver ? current : withoutOver(current);
  const base = {
    ...rest,
    size,
    collateral,
    ...(given > 0n ? { adlProfitGiven: given } : {}),
    ...recordAdlEvent(current, {
      liquidationId: by.liquidationId,
      round: by.round,
      size: fill.size,
      price: fill.price,
      mark,
      given: fill.pnlGiven,
      haircut: fill.haircut,
      atMs: by.atMs,
    }),
    version: planVersion + 1,
  };
  const record =
    size === 0n
      ? { ...base, state: 'CLOSED' as const, collateral: 0n, closedPayout: collateral }
      : withLiquidationPrice({ ...base, state: 'OPEN' }, deps.config);
  return { record, expectedVersion: planVersion };
}
