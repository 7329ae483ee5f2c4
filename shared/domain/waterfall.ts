import {
  assertClosablePosition,
  type ClosablePosition,
  type CloseSettlement,
  chargeFee,
  chargeSliceFee,
  closeRoundingOwnE16,
  creditCloseRounding,
  settleClose,
  settleSlice,
} from './accounting.ts';
import { type AdlAllocation, type AdlCandidate, allocateAdl } from './adl.ts';
import { type InsuranceConfig, lotSizeOf, type MarketConfig } from './config.ts';
import {
  credit,
  creditBack,
  type DebitRefusal,
  type InsuranceState,
  planDebit,
  planFeeReturn,
  windowStartFor,
} from './insurance.ts';
import type { Fill, Layer, TerminalState } from './model.ts';
import { type BaseE8, floorToLot, maxBig, minBig, type PriceE8, type QuoteE6 } from './units.ts';

/**
 * The liquidation waterfall as one pure decision: given what has happened so far (market fills, auction
 * fills, the fund's state), say what to do next, and once every layer that had to act has acted, the
 * settlement plan and the ledger movements that carry it out.
 *
 * Layers run in order market -> auction -> insurance -> adl:
 *   market    IOC fills on the venue within the slippage bound (possibly none)
 *   auction   Dutch auction of the size the market left (possibly none, when `finished`)
 *   (close)   all fills are settled as ONE close (settleClose): realized PnL, fee, shortfall; the whole units
 *             ADL's counterparties' own closes and the trader's close round away go to the fund
 *             (creditCloseRounding)
 *   insurance pays the shortfall within its floor and draw cap (planDebit)
 *   adl       takes the size still open at the mark and the deficit the fund refused (allocateAdl), each
 *             counterparty closing whole lots of the market's lot
 *   (carry)   size ADL cannot take (its counterparties are too few for one transaction, or spent, or it is under
 *             a lot) stays open: the slice settles what was closed and the rest goes to the position's next slice
 *   last resort  when no layer can close anything of the slice (nothing filled within the slippage bound, the
 *             auction found no bid, the other side holds no profit), a market order of its whole lots within the
 *             market's wider lastResortSlippageBound: the fills count as market fills, their shortfall goes to the
 *             fund and ADL like any other, what they leave is carried; when it fills nothing, 'escalate' (the
 *             caller waits for the book and tries again, then retries and dead-letters with an alarm). A slice
 *             under one lot (market.lotSize) is no order the venue fills: 'escalate' at once,
 *             'waterfall/sub-lot-remainder'
 *
 * Terminal state = the LAST layer in that order that acted. A layer acts when it closes size (market,
 * auction, adl), pays part of a shortfall (insurance), or is handed a deficit (adl, even one it cannot
 * cover: the uncovered part is reported as bad debt). Examples: auction closed the rest and the fund paid
 * a shortfall -> SETTLED_INSURANCE; the fund paid part and ADL the rest -> SETTLED_ADL. CANCELLED only
 * when the position is no longer liquidatable and nothing executed.
 *
 * Money identity at 'settle' (exact): shortfall = insurance.shortfallPaid + adl.covered + adl.uncovered,
 * and size = market.closedSize + auction.closedSize + adl.closedSize + carriedSize.
 */

export type NextAction =
  /** Run the market layer. */
  | 'execute-market'
  /** The market left size: start the auction of the remainder. */
  | 'start-auction'
  /** An auction is running: ask again after each step. */
  | 'await-auction'
  /** ADL must act: call again with the opposite side's open positions in `adlCandidates`. */
  | 'load-adl-candidates'
  /** Nothing could close any of the slice: a market order of `lastResortSize` within the last resort's bound. */
  | 'execute-last-resort'
  /** Terminal reached: persist the plan (settlement record) first, then apply `movements`. */
  | 'settle'
  /** CANCELLED: put the position back to OPEN; nothing to apply. */
  | 'cancel'
  /** Cannot finish now: the last-resort order filled nothing, or the slice is under a lot (see `reason`). */
  | 'escalate';

export type WaterfallReason =
  | 'waterfall/bad-input'
  | 'waterfall/auction-before-market'
  | 'waterfall/overfill'
  | 'waterfall/no-liquidity'
  /** No layer took a slice under the market's lot, and the venue fills whole lots only. */
  | 'waterfall/sub-lot-remainder';

export class WaterfallError extends Error {
  override readonly name = 'WaterfallError';
  constructor(
    readonly reason: WaterfallReason,
    detail: string,
  ) {
    super(`${reason}: ${detail}`);
  }
}

export interface WaterfallInput {
  /** Deterministic liquidation id: prefix of every idempotency key. */
  readonly liquidationId: string;
  readonly position: ClosablePosition;
  /** Mark at execution: the ADL closes at it and ranks by it. */
  readonly mark: PriceE8;
  /** lotSize: the last resort sells whole lots (absent: 1 unit). */
  readonly market: Pick<MarketConfig, 'liquidationFee' | 'lotSize'>;
  /** Caller's re-check at the execution mark (margin.ts); consulted only while nothing has executed. */
  readonly stillLiquidatable: boolean;
  /** Absent: the market layer has not run yet. */
  readonly marketResult?: { readonly fills: readonly Fill[] };
  /**
   * Absent: no auction started. `finished`: no further fill will come (cleared or exhausted); fills that
   * cover the whole remainder end the auction layer whatever `finished` says.
   */
  readonly auctionResult?: { readonly fills: readonly Fill[]; readonly finished: boolean };
  /** Fills of the last-resort market order; present once it was placed (possibly empty). */
  readonly lastResortResult?: { readonly fills: readonly Fill[] };
  readonly insurance: {
    readonly account: string;
    readonly state: InsuranceState;
    readonly config: InsuranceConfig;
  };
  /** Open positions of the market (any side); only needed once ADL has to act. */
  readonly adlCandidates?: readonly AdlCandidate[];
  readonly nowMs: number;
  /**
   * A settlement planned again: what its earlier plans already moved, which `insurance.state` already holds.
   * The plan then credits or draws only the differences, and gives back only what the fund can (see decideWaterfall).
   */
  readonly applied?: AppliedAmounts;
  /**
   * When the shortfall `applied` holds was drawn (its journal time; default nowMs): a payout given back frees room
   * in that draw's window only, never in the window of a later plan, where it was not drawn.
   */
  readonly appliedDrawAtMs?: number;
  /**
   * false: ADL only takes the size no other layer closed, and the deficit the fund refuses stays bad debt (the
   * market-only baseline, which has no ADL to socialize losses). Default true.
   */
  readonly socializeDeficit?: boolean;
  /**
   * The position beyond this slice (default none): it stays with the trader, and so does the slice's deficit
   * (settleSlice): the fund and ADL settle what the position leaves when it is closed whole. The slice's fee never
   * leaves the whole position bankrupt at `mark`, the mark the slice was planned at: a fee the fund would pay
   * back as the rest's deficit is not charged.
   */
  readonly restOfPosition?: { readonly size: BaseE8; readonly mark: PriceE8 };
}

/** An ADL allocation that closes nothing and covers nothing. */
const NO_ADL_CLOSE: AdlAllocation = {
  fills: [],
  covered: 0n,
  uncovered: 0n,
  closedSize: 0n,
  unmatchedSize: 0n,
  closeRoundingE16: 0n,
};

/** Net amounts a settlement's earlier plans applied to the fund (both >= 0). */
export interface AppliedAmounts {
  readonly fee: QuoteE6;
  readonly shortfallPaid: QuoteE6;
}

/** Same shape as the Ledger port's LedgerMovement (the domain does not import ports). */
export interface PlannedMovement {
  readonly account: string;
  readonly idempotencyKey: string;
  /** Signed: positive credits the fund, negative debits it. */
  readonly amount: QuoteE6;
  readonly kind: 'liquidation-fee' | 'shortfall-payout';
  readonly reference: string;
  readonly atMs: number;
  readonly floor: QuoteE6;
  /**
   * A shortfall payout's draw window: the window a debit is counted in, or, on a payout given back (a positive
   * 'shortfall-payout', see differenceMovements), the window of the draws it gives back (creditBack).
   */
  readonly drawWindow?: { readonly windowStartMs: number; readonly cap: QuoteE6 };
}

export interface LayerAmounts {
  /** closedSize includes the last-resort order's fills (lastResortSize of it). */
  readonly market: { readonly closedSize: BaseE8; readonly lastResortSize: BaseE8 };
  readonly auction: { readonly closedSize: BaseE8 };
  readonly insurance: {
    /**
     * Liquidation fee credited to the fund: 0 whenever there is a shortfall, but for the part of an earlier plan's
     * fee the fund could not give back (chargeFee, replan-fee-floor). It holds ADL's counterparties' rounding beyond
     * the shortfall (creditCloseRounding).
     */
    readonly feeCredited: QuoteE6;
    readonly shortfallPaid: QuoteE6;
    readonly refused: QuoteE6;
    readonly refusal?: DebitRefusal;
  };
  readonly adl: {
    readonly closedSize: BaseE8;
    readonly deficit: QuoteE6;
    readonly covered: QuoteE6;
    /** Bad debt: deficit nobody could absorb. */
    readonly uncovered: QuoteE6;
  };
}

export interface WaterfallDecision {
  readonly next: NextAction;
  /** Set with next 'settle' or 'cancel'. */
  readonly terminal?: TerminalState;
  /** Layers that acted, in waterfall order (complete only at 'settle'). */
  readonly acted: readonly Layer[];
  readonly layers: LayerAmounts;
  /** The close of the whole position (market, auction and ADL fills), at 'settle'. */
  readonly settlement?: CloseSettlement;
  /** Returned to the trader at 'settle' (the position's isolated collateral left over). */
  readonly traderPayout: QuoteE6;
  /**
   * Size of the slice left open at 'settle' (ADL could not take it): it stays with the position, and so does
   * `traderPayout` (the slice settles as the size it closed). 0 when the slice closed whole.
   */
  readonly carriedSize: BaseE8;
  /** Size for the last-resort order (whole lots), with next 'execute-last-resort'. */
  readonly lastResortSize?: BaseE8;
  /** Ledger movements to apply at 'settle', keyed `${liquidationId}:fee` and `${liquidationId}:shortfall`. */
  readonly movements: readonly PlannedMovement[];
  /** Fund state once `movements` are applied (the input state when there are none). */
  readonly insuranceNext: InsuranceState;
  /** Counterparty closes and profit given, at 'settle' when ADL acted. */
  readonly adl?: AdlAllocation;
  readonly reason?: WaterfallReason;
}

const TERMINAL_OF: Readonly<Record<Layer, TerminalState>> = {
  market: 'SETTLED_MARKET',
  auction: 'SETTLED_AUCTION',
  insurance: 'SETTLED_INSURANCE',
  adl: 'SETTLED_ADL',
};

function sumSize(fills: readonly Fill[], what: string): BaseE8 {
  let total = 0n;
  for (const [i, f] of fills.entries()) {
    if (f.size <= 0n || f.price <= 0n)
      throw new WaterfallError('waterfall/bad-input', `${what} fill ${i}: size and price must be > 0`);
    total += f.size;
  }
  return total;
}

function assertInput(input: WaterfallInput): void {
  if (typeof input.liquidationId !== 'string' || input.liquidationId === '')
    throw new WaterfallError('waterfall/bad-input', 'liquidationId is empty');
  if (input.mark <= 0n) throw new WaterfallError('waterfall/bad-input', `mark ${input.mark} must be > 0`);
  if (!Number.isSafeInteger(input.nowMs) || input.nowMs < 0)
    throw new WaterfallError('waterfall/bad-input', `nowMs ${input.nowMs}`);
  if (input.insurance.account === '')
    throw new WaterfallError('waterfall/bad-input', 'insurance account is empty');
  assertClosablePosition(input.position);
  const rest = input.restOfPosition;
  if (rest && (rest.size < 0n || rest.mark <= 0n))
    throw new WaterfallError('waterfall/bad-input', `restOfPosition ${rest.size} at ${rest.mark}`);
  const applied = input.applied;
  if (applied && (applied.fee < 0n || applied.shortfallPaid < 0n))
    throw new WaterfallError(
      'waterfall/bad-input',
      `applied fee ${applied.fee}, shortfall ${applied.shortfallPaid}`,
    );
  if (!input.marketResult && input.auctionResult)
    throw new WaterfallError('waterfall/auction-before-market', 'an auction result without a market result');
}

/** Decides the next step of one liquidation, and at the end its settlement (see the module comment). */
export function decideWaterfall(input: WaterfallInput): WaterfallDecision {
  assertInput(input);
  const { position, mark, liquidationId: id } = input;
  const lastResortFills = input.lastResortResult?.fills ?? [];
  const marketFills = [...(input.marketResult?.fills ?? []), ...lastResortFills];
  const auctionFills = input.auctionResult?.fills ?? [];
  const lastResortSize = sumSize(lastResortFills, 'last-resort');
  const marketSize = sumSize(marketFills, 'market');
  const auctionSize = sumSize(auctionFills, 'auction');
  if (marketSize + auctionSize > position.size)
    throw new WaterfallError(
      'waterfall/overfill',
      `fills ${marketSize + auctionSize} > size ${position.size}`,
    );
  const left = position.size - marketSize - auctionSize;

  const stop = (next: NextAction, extra: Partial<WaterfallDecision> = {}): WaterfallDecision => ({
    next,
    acted: [
      ...(marketSize > 0n ? ['market' as const] : []),
      ...(auctionSize > 0n ? ['auction' as const] : []),
    ],
    layers: {
      market: { closedSize: marketSize, lastResortSize },
      auction: { closedSize: auctionSize },
      insurance: { feeCredited: 0n, shortfallPaid: 0n, refused: 0n },
      adl: { closedSize: 0n, deficit: 0n, covered: 0n, uncovered: 0n },
    },
    traderPayout: 0n,
    carriedSize: 0n,
    movements: [],
    insuranceNext: input.insurance.state,
    ...extra,
  });

  if (marketSize === 0n && auctionSize === 0n && !input.stillLiquidatable)
    return stop('cancel', { terminal: 'CANCELLED' });
  if (!input.marketResult) return stop('execute-market');
  if (input.lastResortResult && !input.auctionResult)
    throw new WaterfallError('waterfall/bad-input', 'a last-resort result before the auction layer ended');
  if (left > 0n && !input.auctionResult) return stop('start-auction');
  if (left > 0n && !input.auctionResult?.finished) return stop('await-auction');

  // Market and auction are done. ADL closes what it can of the rest, at the mark, against the opposite side.
  const candidates = input.adlCandidates;
  if (left > 0n && !candidates) return stop('load-adl-candidates');
  let adlSize = 0n;
  let probe: AdlAllocation | undefined;
  if (left > 0n && candidates) {
    probe = allocateAdl({
      deficit: 0n,
      bankruptPosition: { side: position.side, size: left },
      ranked: candidates,
      mark,
      lot: lotSizeOf(input.market),
    });
    adlSize = probe.closedSize;
    if (marketSize + auctionSize + adlSize === 0n) {
      if (input.lastResortResult) return stop('escalate', { reason: 'waterfall/no-liquidity' });
      // The venue fills whole lots only: what is under one is carried to the next slice, or, the slice all under one,
      // no order can sell it.
      const lastResortSize = floorToLot(left, lotSizeOf(input.market));
      if (lastResortSize === 0n) return stop('escalate', { reason: 'waterfall/sub-lot-remainder' });
      return stop('execute-last-resort', { lastResortSize });
    }
  }
  const carriedSize = left - adlSize;
  const closes: Fill[] = [...marketFills, ...auctionFills];
  if (adlSize > 0n) closes.push({ price: mark, size: adlSize });
  // The slice settles as the size it closed, with all its collateral behind it (what is left stays with the
  // carried size, as with any slice).
  const settled = carriedSize > 0n ? { ...position, size: position.size - carriedSize } : position;
  // The rest of the position (and the size ADL left) stays open: the slice pays no deficit now and charges no fee
  // the whole position could not pay (settleSlice); a position closed whole settles as one close.
  const restSize = (input.restOfPosition?.size ?? 0n) + carriedSize;
  const sliced = restSize > 0n;
  const fee = input.market.liquidationFee;
  let settlement = sliced
    ? settleSlice(settled, closes, fee, { size: restSize, mark: input.restOfPosition?.mark ?? mark })
    : settleClose(settled, closes, fee);
  // ADL's counterparties close at the mark, each rounded on its own: what they round away goes to the fund, not to
  // the trader (whose close counts their size at the mark exactly) nor to nobody. So does what the trader's own
  // whole close rounds away: it rounds once, on all its fills, and with ADL's among them the sub-unit is settled in
  // our books, not the venue's (adl-trader-rounding). A slice carries its own on the rest, whose close rounds it.
  if (adlSize > 0n && probe) {
    const own = sliced ? 0n : closeRoundingOwnE16(settled, closes);
    settlement = creditCloseRounding(settlement, probe.closeRoundingE16 + own);
  }

  // Planned again, the fund already holds what earlier plans moved: only the differences move now. A fee to give
  // back is a debit the floor may refuse; what it refuses stays charged (chargeFee), its shortfall then going to
  // the fund's draw and ADL like any other. The movements carry the plan's totals (differenceMovements subtracts).
  const { account, config } = input.insurance;
  const feeBefore = input.applied?.fee ?? 0n;
  const paidBefore = input.applied?.shortfallPaid ?? 0n;
  const movements: PlannedMovement[] = [];
  const base = { account, reference: id, atMs: input.nowMs, floor: config.floor };
  let fund = input.insurance.state;
  // Credits first (never refused): the fee grown, or what the fund paid beyond the shortfall, given back. Then
  // a fee to give back, as far as the floor allows: what it keeps stays charged to the trader (chargeFee), out
  // of the payout first, the rest as more shortfall. Then the shortfall grown, drawn on the fund as it is. The
  // ledger applies the differences in that order (differenceMovements), so it accepts each one this plan expects.
  if (settlement.fee > feeBefore) fund = credit(fund, settlement.fee - feeBefore, 'liquidation-fee').next;
  if (settlement.fee < feeBefore) {
    const owed = feeBefore - settlement.fee;
    const left = settlement.remaining.size === 0n ? settlement.traderPayout : settlement.remaining.collateral;
    const givenBack = maxBig(0n, paidBefore - settlement.shortfall);
    // Kept with the shortfall given back first; a kept fee beyond what the trader has left would shrink that
    // give-back unit for unit (no plan balances then): the fund then gives none back and keeps the fee to its floor.
    // A slice's rest carries whatever is kept (chargeSliceFee): nothing shrinks.
    const withGiveBack = planFeeReturn({ ...fund, balance: fund.balance + givenBack }, owed, config).kept;
    const kept = sliced || withGiveBack <= left ? withGiveBack : planFeeReturn(fund, owed, config).kept;
    settlement = sliced ? chargeSliceFee(settlement, kept) : chargeFee(settlement, kept);
  }
  if (paidBefore > settlement.shortfall)
    fund = creditBack(
      fund,
      paidBefore - settlement.shortfall,
      windowStartFor(input.appliedDrawAtMs ?? input.nowMs, config),
    ).next;
  if (settlement.fee < feeBefore) {
    const returned = planFeeReturn(fund, feeBefore - settlement.fee, config);
    // Unreachable: the fee kept above is what this return leaves (a return the ledger refused would loop).
    if (returned.kept > 0n)
      throw new WaterfallError('waterfall/bad-input', `fee return ${returned.kept} refused`);
    fund = returned.next;
  }
  if (settlement.fee > 0n || feeBefore > 0n)
    movements.push({ ...base, idempotencyKey: `${id}:fee`, amount: settlement.fee, kind: 'liquidation-fee' });
  // What the fund pays of the shortfall: what it paid before, up to the shortfall, and a draw for the rest.
  let paid = minBig(settlement.shortfall, paidBefore);
  let refused = 0n;
  let refusal: DebitRefusal | undefined;
  if (settlement.shortfall > paid) {
    const debit = planDebit(fund, settlement.shortfall - paid, input.nowMs, config);
    paid += debit.paid;
    refused = debit.refused;
    refusal = debit.reason;
    fund = debit.next;
  }
  if (paid > 0n || paidBefore > 0n)
    movements.push({
      ...base,
      idempotencyKey: `${id}:shortfall`,
      amount: -paid,
      kind: 'shortfall-payout',
      drawWindow: { windowStartMs: fund.windowStartMs, cap: config.drawCapPerWindow },
    });

  const adlActs = adlSize > 0n || refused > 0n;
  if (adlActs && !candidates) return stop('load-adl-candidates');
  // Closes of the size left, as the probe took them (what they cannot take is `unmatchedSize`, carried); with no
  // deficit the probe is the allocation itself.
  let adl: AdlAllocation | undefined;
  if (adlActs && candidates) {
    if (input.socializeDeficit === false) {
      // Only the size moves; none of the deficit does.
      adl = { ...(probe ?? NO_ADL_CLOSE), covered: 0n, uncovered: refused };
    } else {
      adl =
        refused === 0n && probe
          ? probe
          : allocateAdl({
              deficit: refused,
              bankruptPosition: { side: position.side, size: left },
              ranked: candidates,
              mark,
              lot: lotSizeOf(input.market),
            });
    }
  }

  const acted: Layer[] = [];
  if (marketSize > 0n) acted.push('market');
  if (auctionSize > 0n) acted.push('auction');
  if (paid > 0n) acted.push('insurance');
  if (adl) acted.push('adl');
  const last = acted[acted.length - 1];
  if (!last) throw new WaterfallError('waterfall/bad-input', 'no layer acted'); // unreachable: size > 0

  return {
    next: 'settle',
    terminal: TERMINAL_OF[last],
    acted,
    layers: {
      market: { closedSize: marketSize, lastResortSize },
      auction: { closedSize: auctionSize },
      insurance: {
        feeCredited: settlement.fee,
        shortfallPaid: paid,
        refused,
        ...(refusal ? { refusal } : {}),
      },
      adl: {
        closedSize: adl?.closedSize ?? 0n,
        deficit: refused,
        covered: adl?.covered ?? 0n,
        uncovered: adl?.uncovered ?? 0n,
      },
    },
    settlement,
    traderPayout: settlement.traderPayout,
    carriedSize,
    movements,
    insuranceNext: fund,
    ...(adl ? { adl } : {}),
  };
}

/**
 * The movements that carry out a plan's amounts when earlier plans of the same settlement already applied
 * `applied` (signed, by idempotency key) and then could not commit: only the differences, each under its key
 * suffixed with the plan's number (a key is applied once, with one amount). The plan was made knowing what was
 * applied (WaterfallInput.applied), so it plans every key applied before, and a difference is one the fund can
 * take: a fee given back within its floor, a draw within its floor and cap, each after the plan's credits. A
 * difference keeps its movement's kind and reference, so a liquidation's journal still sums to its settlement
 * (appliedByKey reads it back).
 *
 * A shortfall payout given back (the new plan pays less than earlier ones drew) carries the draw window of the
 * earliest of those draws, `fund.givenBackAtMs` (their journal time; the plan's own time when absent): the ledger
 * takes it off that window's draws while that is still the current window, and leaves a later window's draws
 * alone (creditBack). Every earlier draw was counted in that window or a later one, so a give-back never frees
 * room for draws it did not make: at worst, when a draw was counted in a later window, that window keeps it, in
 * the fund's favour.
 */
export function differenceMovements(
  movements: readonly PlannedMovement[],
  applied: Readonly<Record<string, QuoteE6>>,
  replans: number,
  fund: { readonly atMs: number; readonly config: InsuranceConfig; readonly givenBackAtMs?: number },
): PlannedMovement[] {
  const planned = new Set(movements.map((m) => m.idempotencyKey));
  for (const [key, amount] of Object.entries(applied)) {
    if (amount !== 0n && !planned.has(key))
      throw new WaterfallError('waterfall/bad-input', `${key} was applied and the plan does not say it`);
  }
  const suffix = `:r${replans}`;
  const { config } = fund;
  // A payout given back returns its room to the window it was drawn in (WaterfallInput.appliedDrawAtMs).
  const givenBackWindow = {
    windowStartMs: windowStartFor(fund.givenBackAtMs ?? fund.atMs, config),
    cap: config.drawCapPerWindow,
  };
  const credits: PlannedMovement[] = [];
  const debits: PlannedMovement[] = [];
  for (const movement of movements) {
    const key = movement.idempotencyKey;
    const difference = movement.amount - (applied[key] ?? 0n);
    if (difference === 0n) continue;
    const { drawWindow: _planned, ...rest } = movement;
    const givenBack = movement.kind === 'shortfall-payout' && difference > 0n;
    (difference > 0n ? credits : debits).push({
      ...(givenBack ? rest : movement),
      idempotencyKey: key + suffix,
      amount: difference,
      ...(givenBack ? { drawWindow: givenBackWindow } : {}),
    });
  }
  // Credits first, as the plan counted them: a fee given back may need the room a payout given back makes.
  return [...credits, ...debits];
}

/** The key of the plan that first moved an entry: its idempotency key without a replan's suffix (`:r<n>`). */
export const planKeyOf = (idempotencyKey: string): string => idempotencyKey.replace(/:r\d+$/, '');

/**
 * What a settlement's plans applied, by the key of the plan that first moved it: the journal entries of one
 * liquidation summed over their plan suffixes (`:r<n>`), as differenceMovements reads `applied`.
 */
export function appliedByKey(
  entries: readonly { readonly idempotencyKey: string; readonly amount: QuoteE6 }[],
): Record<string, QuoteE6> {
  const applied: Record<string, QuoteE6> = {};
  for (const { idempotencyKey, amount } of entries) {
    const key = planKeyOf(idempotencyKey);
    applied[key] = (applied[key] ?? 0n) + amount;
  }
  return applied;
}

/** `applied` (appliedByKey) of the settlement `id` as WaterfallInput.applied takes it. */
export function appliedAmounts(applied: Readonly<Record<string, QuoteE6>>, id: string): AppliedAmounts {
  return { fee: applied[`${id}:fee`] ?? 0n, shortfallPaid: -(applied[`${id}:shortfall`] ?? 0n) };
}

/**
 * What a settlement did, per layer, as LiquidationRecord.settlement keeps it: sizes in base units, amounts in
 * quote units (positive: paid into the fund or by the layer).
 */
export interface SettlementAmounts {
  readonly marketClosedSize: BaseE8;
  /** Part of marketClosedSize: the last resort's order. */
  readonly lastResortClosedSize: BaseE8;
  readonly auctionClosedSize: BaseE8;
  readonly adlClosedSize: BaseE8;
  /** Left with the position for its next slice (what ADL's counterparties could not take). */
  readonly carriedSize: BaseE8;
  readonly realizedPnl: QuoteE6;
  readonly fee: QuoteE6;
  readonly shortfall: QuoteE6;
  readonly insurancePaid: QuoteE6;
  readonly adlCovered: QuoteE6;
  readonly badDebt: QuoteE6;
  readonly traderPayout: QuoteE6;
}

/**
 * When a position's next slice may start after this one settled: at once, or after the market's cooldown when
 * this slice found the liquidity spent: it needed the last resort, or it left size to carry that ADL took none
 * of (the market filled what it could, no provider or counterparty took the rest). Selling the rest into the same
 * book at once would walk the price down, and a book that fills only slivers (a per-order cap) ran slices back to
 * back: 23,829 in 6 simulated hours (found by the pipeline fuzzing, session 27). Size carried past ADL's share of
 * one settlement (its counterparties per transaction) goes on at once: the next slice's ADL takes it.
 */
export function nextSliceDelaySeconds(
  settlement: SettlementAmounts | undefined,
  cooldownSeconds: number,
): number {
  if (!settlement) return 0;
  const spent =
    settlement.lastResortClosedSize > 0n || (settlement.carriedSize > 0n && settlement.adlClosedSize === 0n);
  return spent ? cooldownSeconds : 0;
}

/** The unit of each settlement amount: base-unit sizes or quote-unit money (stores encode by it). */
export const SETTLEMENT_UNITS: Readonly<Record<keyof SettlementAmounts, 'base' | 'quote'>> = {
  marketClosedSize: 'base',
  lastResortClosedSize: 'base',
  auctionClosedSize: 'base',
  adlClosedSize: 'base',
  carriedSize: 'base',
  realizedPnl: 'quote',
  fee: 'quote',
  shortfall: 'quote',
  insurancePaid: 'quote',
  adlCovered: 'quote',
  badDebt: 'quote',
  traderPayout: 'quote',
};

/** The amounts of a decision, for LiquidationRecord.settlement. */
export function settlementRecord(d: WaterfallDecision): SettlementAmounts {
  const { market, auction, insurance, adl } = d.layers;
  return {
    marketClosedSize: market.closedSize,
    lastResortClosedSize: market.lastResortSize,
    auctionClosedSize: auction.closedSize,
    adlClosedSize: adl.closedSize,
    carriedSize: d.carriedSize,
    realizedPnl: d.settlement?.realizedPnl ?? 0n,
    fee: insurance.feeCredited,
    shortfall: d.settlement?.shortfall ?? 0n,
    insurancePaid: insurance.shortfallPaid,
    adlCovered: adl.covered,
    badDebt: adl.uncovered,
    traderPayout: d.traderPayout,
  };
}
