/**
 * SETTLING: a plan's inputs (the fund, ADL's counterparties, a last resort's fills) frozen on the record before any
 * money moves, and frozen again when they no longer hold (refreeze). Separate from the decision that applies them.
 */

import type { AdlCandidate } from '../../domain/adl.ts';
import type { MarketConfig } from '../../domain/config.ts';
import { baseOf, lotSizeOf, marketConfig } from '../../domain/config.ts';
import type { InsuranceState } from '../../domain/insurance.ts';
import type { Fill } from '../../domain/model.ts';
import { type BaseE8, formatBase, maxBig, minBig, type PriceE8, type QuoteE6 } from '../../domain/units.ts';
import {
  appliedAmounts,
  appliedByKey,
  decideWaterfall,
  planKeyOf,
  type WaterfallDecision,
} from '../../domain/waterfall.ts';
import type { AccountBalance, LiquidationRecord, PositionRecord } from '../../ports/index.ts';
import type { LiquidationContext, SettlementDeps } from '../context.ts';
import { adlQueue, waterfallPlanner } from './adl-queue.ts';
import { LiquidationStuckError, SubLotRemainderError } from './errors.ts';
import { lastResort } from './last-resort.ts';
import { outcomeRecorded } from './lease.ts';
import { type Carried, commitOrSkip, contextOf, markOf, type Step, sumSize, withHistory } from './step.ts';

/** The slice being liquidated: its planned size, with all of the position's collateral behind it. */
export const sliceOf = (position: PositionRecord, context: LiquidationContext) => ({
  side: position.side,
  size: context.plannedSize,
  entryPrice: position.entryPrice,
  collateral: position.collateral,
  ...(position.collateralOverE16 ? { collateralOverE16: position.collateralOverE16 } : {}),
});

/**
 * The position beyond the slice, valued at the mark the slice was planned at, or at `mark` when that is worse for
 * the position: a fee it could not pay there is not charged (accounting.ts settleSlice). A slice the auction or
 * the last resort settles minutes later, the mark having fallen meanwhile, charged a fee on a position bankrupt at
 * its own settlement: the rest owed it back as deficit, paid by the fund or, its cap bound, by ADL's
 * counterparties. `mark` must be stored before any money moves (a frozen plan's, an ended auction's), so every
 * delivery of the plan charges the same fee. Valued at the slice's limit instead, rests kept more collateral and
 * were liquidated later and deeper: the demo's fund ended at 15,918 USD instead of 62,424.
 */
export const restOf = (position: PositionRecord, context: LiquidationContext, mark: PriceE8) => {
  const planned = context.executionMark;
  const worse = position.side === 'LONG' ? minBig(planned, mark) : maxBig(planned, mark);
  return { size: position.size - context.plannedSize, mark: worse };
};

type FrozenInputs = NonNullable<LiquidationContext['settle']>;

/** `restMark`: what the slice's rest is valued at (restOf; default the plan's mark, which a freeze stores). */
export type Decide = (
  insurance: InsuranceState,
  candidates?: readonly AdlCandidate[],
  lastResort?: readonly Fill[],
  restMark?: PriceE8,
) => WaterfallDecision;

/**
 * Reads the fund and the ADL candidates, and stores them with the liquidation (SETTLING) before any movement.
 * When no layer could close any of the slice, the last-resort order is placed here and its fills frozen too.
 */
export async function freeze(
  frozenFrom: LiquidationRecord,
  context: LiquidationContext,
  position: PositionRecord,
  base: {
    readonly mark: PriceE8;
    readonly nowMs: number;
    readonly appliedDrawAtMs?: number;
    readonly auctionFills: readonly Fill[];
    readonly lastResortFills?: readonly Fill[];
    readonly applied?: Readonly<Record<string, QuoteE6>>;
    readonly replans?: number;
  },
  decide: Decide,
  deps: SettlementDeps,
  carried: Carried,
  fundRead?: AccountBalance,
): Promise<Step> {
  // The record the SETTLING commit expects: a last-resort order's lease moves it on.
  let liquidation = frozenFrom;
  const fund = fundRead ?? (await deps.ledger.balance(deps.insuranceAccount));
  const insurance = insuranceStateOf(fund);
  let lastResortFills = base.lastResortFills;
  if (context.lastResortOrder && !lastResortFills) {
    // A pending order comes before any plan: its fills are the last resort's, whatever the plan would be now.
    const placed = await lastResortWhileFreezing(
      liquidation,
      context,
      context.lastResortOrder.size,
      base.mark,
      deps,
      carried,
    );
    if ('step' in placed) return placed.step;
    liquidation = placed.record;
    lastResortFills = placed.fills;
  }
  let decision = decide(insurance, undefined, lastResortFills);
  let candidates: (AdlCandidate & { version: number })[] | undefined;
  let counterparties: Map<string, PositionRecord> | undefined;
  let adlExhausted = false;
  const closedSize = sumSize(liquidation.marketFills) + sumSize(base.auctionFills);
  const market = marketConfig(deps.config, liquidation.symbol);
  if (
    decision.next === 'load-adl-candidates' &&
    closedSize + sumSize(lastResortFills ?? []) === 0n &&
    context.plannedSize < lotSizeOf(market)
  ) {
    // A slice all under its lot that nothing closed: ADL closes its counterparties in whole lots (allocateAdl), so
    // it takes none of it, whoever is in profit. Its queue is not read (it escalates: waterfall/sub-lot-remainder).
    candidates = [];
    decision = decide(insurance, candidates, lastResortFills);
  } else if (
    decision.next === 'load-adl-candidates' &&
    deps.strategy === 'market-only' &&
    closedSize === context.plannedSize
  ) {
    // The baseline has no ADL: a deficit the fund refuses stays bad debt. (ADL still takes size the book could
    // not, or the position would never close.)
    candidates = [];
    decision = decide(insurance, candidates, lastResortFills);
  } else if (decision.next === 'load-adl-candidates') {
    // ADL closes what no layer closed; with nothing left to close it only takes profit out of collateral.
    const closesSize = context.plannedSize - closedSize - sumSize(lastResortFills ?? []) > 0n;
    const queue = await adlQueue(
      liquidation,
      base.mark,
      deps,
      closesSize,
      waterfallPlanner((c) => decide(insurance, c, lastResortFills)),
    );
    decision = queue.decision;
    adlExhausted = queue.spent && queue.complete;
    // Freeze only the counterparties the plan uses (the queue's best, at most what one transaction holds: the
    // size the others would have taken is carried to the next slice). They are a prefix of the rank order, so
    // the plan on them alone is the same plan.
    const used = new Set((decision.adl?.fills ?? []).map((f) => f.id));
    const kept = queue.head.filter((e) => used.has(e.candidate.id));
    candidates = kept.map((e) => e.candidate);
    counterparties = new Map();
    for (const { candidate } of kept) {
      const record = queue.records.get(candidate.id);
      if (record?.version === candidate.version) counterparties.set(candidate.id, record);
    }
    if (kept.length < queue.head.length) {
      decision = decide(
        insurance,
        kept.map((e) => e.ranked),
        lastResortFills,
      );
    }
  }
  if (decision.next === 'execute-last-resort' && candidates && !lastResortFills) {
    // ADL took nothing at this mark: a wait for the book plans again only once the mark moves the other side's way.
    carried.adlJudgedAt = base.mark;
    const size = decision.lastResortSize ?? 0n;
    const placed = await lastResortWhileFreezing(liquidation, context, size, base.mark, deps, carried);
    if ('step' in placed) return placed.step;
    liquidation = placed.record;
    lastResortFills = placed.fills;
    decision = decide(insurance, candidates, lastResortFills);
  }
  if (decision.next === 'escalate') {
    if (decision.reason === 'waterfall/sub-lot-remainder') {
      // The auction's end, written with the plan (an ending step's writes), lands first: thrown without it, the
      // auction stayed RUNNING and its step failed on every receive.
      if (!(await flushPending(deps, carried))) return { done: false };
      throw subLotRemainder(liquidation, context.plannedSize - closedSize, market, deps);
    }
    throw new LiquidationStuckError(`${decision.reason ?? 'waterfall/escalate'}: ${liquidation.id}`);
  }
  if (decision.next !== 'settle') {
    throw new LiquidationStuckError(`liquidation/unexpected-next: ${decision.next} for ${liquidation.id}`);
  }
  const settle: FrozenInputs = {
    insurance,
    nowMs: base.nowMs,
    mark: base.mark,
    position: {
      size: position.size,
      collateral: position.collateral,
      ...(position.collateralOverE16 ? { collateralOverE16: position.collateralOverE16 } : {}),
      entryPrice: position.entryPrice,
      version: position.version,
    },
    auctionFills: base.auctionFills,
    ...(candidates ? { candidates, adlTraderRounding: true } : {}),
    ...(adlExhausted ? { adlExhausted } : {}),
    ...(lastResortFills ? { lastResortFills } : {}),
    ...(base.applied
      ? { applied: base.applied, replans: base.replans ?? 1, insuranceHoldsApplied: true }
      : {}),
    ...(base.appliedDrawAtMs !== undefined ? { appliedDrawAtMs: base.appliedDrawAtMs } : {}),
  };
  const settling: LiquidationRecord = {
    ...withHistory(
      liquidation,
      'SETTLING',
      deps.clock.nowMs(),
      base.applied ? 'inputs refreshed' : undefined,
    ),
    context: { ...outcomeRecorded(context), settle },
  };
  if (
    !(await commitOrSkip(deps, [
      ...(carried.pendingWrites ?? []),
      { kind: 'liquidation', record: settling, expectedVersion: liquidation.version },
    ]))
  ) {
    return { done: false };
  }
  // The next transition settles from these frozen inputs, which give this plan again: it need not be redone.
  carried.pendingWrites = undefined;
  carried.frozenPlan = {
    liquidationId: settling.id,
    version: settling.version,
    decision,
    reads: { ...(counterparties ? { counterparties } : {}), ...(fund ? { fund } : {}) },
  };
  return { done: false, next: settling };
}

/**
 * A slice under its market's lot that nothing took: the venue fills whole lots only, so no order sells it, and ADL
 * closes whole lots of its counterparties. It fails at once (retried, then dead-lettered), where last-resort orders
 * answered with no fills waited about 4 hours for a book that was there (review50-integrate-sub-lot-stuck). The
 * reason says what the auction layer did, as it happened (lot52-sub-lot-reason).
 */
function subLotRemainder(
  liquidation: LiquidationRecord,
  left: BaseE8,
  market: MarketConfig,
  deps: SettlementDeps,
): SubLotRemainderError {
  return new SubLotRemainderError(
    `waterfall/sub-lot-remainder: ${liquidation.id}: ${formatBase(left)} ${baseOf(market.symbol)} left, under ${market.symbol}'s lot ${formatBase(lotSizeOf(market))}; ${auctionOutcome(liquidation, deps)}, ADL closes its counterparties in whole lots only, and the venue fills whole lots only`,
  );
}

/** What the auction layer did for a slice nothing took. */
function auctionOutcome(liquidation: LiquidationRecord, deps: SettlementDeps): string {
  if (deps.strategy === 'market-only') return 'the market-only strategy runs no auction';
  // Its history, not its context: the context no longer names the auction (cost52-auction-id-derived).
  if (liquidation.history.some((h) => h.state === 'AUCTION'))
    return 'its auction ended with no provider taking it';
  if (liquidation.state === 'SETTLING') return 'no auction opens once its plan is made (SETTLING)';
  return 'no provider could bid for it';
}

/**
 * The last resort's order from freeze: the auction's end is committed first (an order at the venue comes after
 * it). Its fills and the record the freeze commits on, or the step to return: another writer moved the record,
 * or nothing was within the bound (the liquidation waits for the book: its message comes back).
 */
async function lastResortWhileFreezing(
  liquidation: LiquidationRecord,
  context: LiquidationContext,
  size: BaseE8,
  mark: PriceE8,
  deps: SettlementDeps,
  carried: Carried,
): Promise<
  { readonly step: Step } | { readonly fills: readonly Fill[]; readonly record: LiquidationRecord }
> {
  if (!(await flushPending(deps, carried))) return { step: { done: false } };
  const placed = await lastResort(liquidation, context, size, mark, deps, carried);
  if (placed === 'moved') return { step: { done: false } };
  if (placed === 'waiting') return { step: { done: true, record: liquidation } };
  return placed;
}

/**
 * Frozen inputs that no longer hold: fresh ones, from what already-applied movements were computed from. The
 * money this settlement's plans moved is read from the ledger, not remembered: a plan may have moved it in an
 * earlier delivery (one that failed, died, or raced this one). The fund is read with it, so the new plan knows
 * both (WaterfallInput.applied) and moves only differences the fund can take (replan-fee-floor).
 */
export async function refreeze(
  liquidation: LiquidationRecord,
  context: LiquidationContext,
  position: PositionRecord,
  deps: SettlementDeps,
  carried: Carried,
): Promise<Step> {
  const frozen = context.settle!;
  const market = marketConfig(deps.config, liquidation.symbol);
  // At the mark of now, not the frozen one: a plan made again because its counterparties changed may find
  // nobody left to close the slice there, and a last-resort order bound to a mark the market has left would
  // never fill (the money already applied is read from the ledger, whatever the mark).
  const { mark } = await markOf(liquidation, deps, carried, frozen.mark);
  // Stored before the ledger is read: the old plan's movements are fenced by the old version, so none still in
  // flight (another delivery's) can land after the reads, and the fund read holds every one that landed.
  // Already stored (by a delivery planning again alongside, or one that died): the old plan's fence is spent, and
  // storing it again would fail that delivery's freeze as that one fails this one's, two deliveries in turn
  // until both are dead-lettered.
  const already = frozen.superseded === true && !carried.pendingWrites?.length;
  const superseded: LiquidationRecord = already
    ? liquidation
    : {
        ...withHistory(liquidation, liquidation.state, deps.clock.nowMs(), 'planning again'),
        context: { ...contextOf(liquidation), settle: { ...frozen, superseded: true } },
      };
  if (
    !already &&
    !(await commitOrSkip(deps, [
      ...(carried.pendingWrites ?? []),
      { kind: 'liquidation', record: superseded, expectedVersion: liquidation.version },
    ]))
  ) {
    return { done: false };
  }
  carried.pendingWrites = undefined;
  const [entries, fund] = await Promise.all([
    deps.ledger.entriesOf(deps.insuranceAccount, liquidation.id),
    deps.ledger.balance(deps.insuranceAccount),
  ]);
  const applied = appliedByKey(entries);
  // New draws count in the window of now (a plan's own time would reopen a window gone by); a payout given back
  // returns to the window its draw was made in.
  const now = deps.clock.nowMs();
  const appliedDrawAtMs = firstDrawAtMs(entries, liquidation.id);
  const decide: Decide = (insurance, candidates, lastResort) =>
    decideWaterfall({
      liquidationId: liquidation.id,
      position: sliceOf(position, context),
      restOfPosition: restOf(position, context, mark),
      mark,
      market,
      stillLiquidatable: true,
      marketResult: { fills: liquidation.marketFills },
      auctionResult: { fills: frozen.auctionFills, finished: true },
      insurance: { account: deps.insuranceAccount, state: insurance, config: deps.config.insurance },
      ...(candidates ? { adlCandidates: candidates } : {}),
      ...(lastResort ? { lastResortResult: { fills: lastResort } } : {}),
      // The baseline has no ADL: a deficit the fund refuses stays bad debt.
      ...(deps.strategy === 'market-only' ? { socializeDeficit: false } : {}),
      nowMs: now,
      applied: appliedAmounts(applied, liquidation.id),
      ...(appliedDrawAtMs !== undefined ? { appliedDrawAtMs } : {}),
    });
  const { settle: _stale, ...unfrozen } = context;
  return freeze(
    superseded,
    unfrozen,
    position,
    {
      mark,
      nowMs: now,
      ...(appliedDrawAtMs !== undefined ? { appliedDrawAtMs } : {}),
      auctionFills: frozen.auctionFills,
      // An executed last-resort order stays executed, whatever the fresh plan.
      ...(frozen.lastResortFills ? { lastResortFills: frozen.lastResortFills } : {}),
      // Keys of its own even when nothing moved yet: an older plan's movement, refused by its fence, must not
      // meet a key of this one with another amount (an idempotency conflict instead of a refusal).
      applied,
      replans: (frozen.replans ?? 0) + 1,
    },
    decide,
    deps,
    carried,
    fund,
  );
}

/**
 * A plan an older version froze after money moved: on the fund before what it applied (no
 * `insuranceHoldsApplied`, before session 24), or after a draw without the draw's time (no `appliedDrawAtMs`,
 * before session 27), so a payout it gives back would free the window of its plan, not of its draw. Or one with
 * ADL's counterparties from before adl-trader-rounding: made again here it would credit their rounding (and the
 * trader's), not the amounts the older version may have applied, and, from before adl-close-rounding, count none
 * of their sub-units (review42-adl-older-plan).
 */
export function frozenByOlderVersion(
  frozen: NonNullable<LiquidationContext['settle']>,
  liquidationId: string,
): boolean {
  if ((frozen.candidates?.length ?? 0) > 0 && !frozen.adlTraderRounding) return true;
  if (!frozen.applied) return false;
  if (!frozen.insuranceHoldsApplied) return true;
  return frozen.appliedDrawAtMs === undefined && frozen.applied[`${liquidationId}:shortfall`] !== undefined;
}

/**
 * When this liquidation's plans first drew on the fund for its shortfall (a journal entry's time), if ever: a
 * give-back frees room in that window only, where every one of its draws counted or a later one did.
 */
function firstDrawAtMs(
  entries: readonly { readonly idempotencyKey: string; readonly amount: QuoteE6; readonly atMs: number }[],
  liquidationId: string,
): number | undefined {
  let at: number | undefined;
  for (const e of entries) {
    if (e.amount < 0n && planKeyOf(e.idempotencyKey) === `${liquidationId}:shortfall`)
      at = Math.min(at ?? e.atMs, e.atMs);
  }
  return at;
}

const insuranceStateOf = (fund: AccountBalance): InsuranceState => ({
  balance: fund.balance,
  windowStartMs: fund.windowStartMs,
  windowDrawn: fund.windowDrawn,
});

/** Commits the ending auction step's writes alone (false: a concurrent step committed first). */
export async function flushPending(deps: SettlementDeps, carried: Carried): Promise<boolean> {
  if (!carried.pendingWrites) return true;
  if (!(await commitOrSkip(deps, carried.pendingWrites))) return false;
  carried.pendingWrites = undefined;
  return true;
}
