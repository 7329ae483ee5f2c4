/**
 * What one delivery carries from step to step (Carried), a step's result, and the record helpers every step uses
 * (reads, history, conditional commits). The leaf the other liquidation modules import.
 */

import type { Fill } from '../../domain/model.ts';
import type { BaseE8, PriceE8 } from '../../domain/units.ts';
import type { WaterfallDecision } from '../../domain/waterfall.ts';
import {
  type AccountBalance,
  ConditionFailedError,
  type LiquidationRecord,
  type MarketState,
  type PositionRecord,
  type ProvidersEpochCheck,
  type Write,
} from '../../ports/index.ts';
import { type LiquidationContext, markOfMarket, requireFreshMark, type SettlementDeps } from '../context.ts';
import { LiquidationStuckError } from './errors.ts';

/** A mark with the time of its tick. */
export type MarkAt = { readonly mark: PriceE8; readonly atMs: number };

/** What one message's processing already read or wrote: carried forward instead of read again. */
export interface Carried {
  position?: PositionRecord;
  mark?: MarkAt;
  /** The market record as the claim read it (its wake marks spare a new auction's cover when they hold). */
  market?: MarketState;
  /** The plan a freeze just stored with the record of this version: the frozen inputs give it again. */
  frozenPlan?: {
    readonly liquidationId: string;
    readonly version: number;
    readonly decision: WaterfallDecision;
    readonly reads: PlanReads;
  };
  /**
   * The writes of the auction step that ended the auction, not committed yet: they go in the transaction that
   * freezes the settlement (one fewer per liquidation an auction hands to the fund or ADL), or alone before any
   * other effect (`flushPending`).
   */
  pendingWrites?: readonly Write[];
  /** The last resort's waits so far, as its message counts them (the record's count: LiquidationContext). */
  lastResortWaits?: number;
  /** The wait the message carries on (LiquidationMessage.lastResortWaitId). */
  lastResortWaitId?: string;
  /** The wait the record named when the message was sent (LiquidationMessage.lastResortWaitAfter). */
  lastResortWaitAfter?: string;
  /** The market's last-resort fills on the slice's side at its last look (LiquidationMessage.lastResortFillsSeen). */
  lastResortFillsSeen?: number;
  /** Of lastResortWaits, those after which a sibling's last resort had filled (LiquidationMessage). */
  lastResortWaitsOutraced?: number;
  /** The message's markDisputedSinceMs: read only on a record without one (confirmWithVenue). */
  markDisputedSinceMs?: number;
  /** The mark at which ADL last found nobody to take this waiting slice (LiquidationMessage.adlJudgedAtE8). */
  adlJudgedAt?: PriceE8;
  /** This delivery's token as the owner of an order lease. */
  owner?: string;
  /** The record as stored with this delivery's lease (released when the delivery fails). */
  leased?: LiquidationRecord;
  /**
   * The client order id whose claim this delivery wrote before placing it: any other order it places may have been
   * placed by an earlier delivery (one that timed out or died), and a refusal of it says nothing about that.
   */
  claimedOrder?: string;
}

/** What a plan read, for its settlement to write on instead of reading it again (the writes' conditions hold it). */
export interface PlanReads {
  /** The ADL counterparties' records, at the versions the plan froze. */
  readonly counterparties?: ReadonlyMap<string, PositionRecord>;
  /** The fund's account as the plan read it. */
  readonly fund?: AccountBalance;
}

/** One transition: `done` with the record this message leaves, or the record to continue from (unknown: re-read). */
export type Step =
  | { readonly done: true; readonly record: LiquidationRecord }
  | { readonly done: false; readonly next?: LiquidationRecord };

export async function loadPosition(
  liquidation: LiquidationRecord,
  deps: SettlementDeps,
  carried: Carried,
): Promise<PositionRecord> {
  carried.position ??= await deps.positions.get(liquidation.positionId);
  if (!carried.position)
    throw new LiquidationStuckError(`liquidation/position-missing: ${liquidation.positionId}`);
  return carried.position;
}

export async function markOf(
  liquidation: LiquidationRecord,
  deps: SettlementDeps,
  carried: Carried,
  fallback: PriceE8,
) {
  if (!carried.mark) {
    carried.market = await deps.markets.get(liquidation.symbol);
    carried.mark = markOfMarket(carried.market, fallback, deps.clock.nowMs());
  }
  // Every decision reads the mark here: none is made on a mark the feed has not confirmed lately.
  return requireFreshMark(carried.mark, liquidation.symbol, deps);
}

export const withHistory = (
  liquidation: LiquidationRecord,
  state: LiquidationRecord['state'],
  atMs: number,
  note?: string,
): LiquidationRecord => ({
  ...liquidation,
  state,
  history: [...liquidation.history, note === undefined ? { atMs, state } : { atMs, state, note }],
  version: liquidation.version + 1,
});

export const sumSize = (fills: readonly Fill[]): BaseE8 => fills.reduce((total, f) => total + f.size, 0n);

export function contextOf(liquidation: LiquidationRecord): LiquidationContext {
  const context = liquidation.context;
  if (!context) throw new LiquidationStuckError(`liquidation/no-context: ${liquidation.id}`);
  return context;
}

/** A position without the sub-unit a slice left over on its collateral (a close rounded it, or it closed). */
export function withoutOver<P extends PositionRecord>(position: P): Omit<P, 'collateralOverE16'> {
  const { collateralOverE16: _, ...rest } = position;
  return rest;
}

/**
 * A delivery that acts on what was decided or found longer ago than this acts on now instead: a frozen plan is
 * made again, ADL's confirming round ranks at the mark of now. A delivery freezes and applies in well under a
 * second; one that died in between comes back after its visibility timeout (minutes), when the mark has moved.
 */
export const LATE_DELIVERY_MS = 30_000;

/**
 * Commits the writes; a failed condition means a concurrent or earlier attempt moved the records first,
 * which the caller's loop then observes by re-reading (never an effect applied twice). 'quiet': a caller that
 * does not re-read logs what it does instead.
 */
export async function commitOrSkip(
  deps: SettlementDeps,
  writes: readonly Write[],
  providersUnchanged?: ProvidersEpochCheck,
  lost: 'log' | 'quiet' = 'log',
): Promise<boolean> {
  try {
    await deps.transactor.commit(writes, providersUnchanged);
    return true;
  } catch (error) {
    if (!(error instanceof ConditionFailedError)) throw error;
    if (lost === 'quiet') return false;
    deps.telemetry.info('concurrent transition observed; re-reading', {
      records: writes.map((w) => `${w.kind}:${w.record.id}`),
    });
    return false;
  }
}
