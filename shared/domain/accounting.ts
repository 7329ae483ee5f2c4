import { marginE16 } from './margin.ts';
import type { Fill, Position, Side } from './model.ts';
import {
  type BaseE8,
  div,
  maxBig,
  minBig,
  NOTIONAL_TO_QUOTE,
  PPM_SCALE,
  type Ppm,
  type PriceE8,
  type QuoteE6,
} from './units.ts';

/**
 * Settling the close of (part of) an isolated-margin position against fills. Exact values are kept in
 * E16 units (1e-16 quote = BaseE8 * PriceE8; QuoteE6 * NOTIONAL_TO_QUOTE is E16) and rounded once.
 */

export type AccountingReason =
  | 'accounting/bad-position'
  | 'accounting/bad-fee-rate'
  | 'accounting/no-fills'
  | 'accounting/bad-fill'
  | 'accounting/overfill';

export class AccountingError extends Error {
  override readonly name = 'AccountingError';
  constructor(
    readonly reason: AccountingReason,
    detail: string,
  ) {
    super(`${reason}: ${detail}`);
  }
}

export type ClosablePosition = Pick<
  Position,
  'side' | 'size' | 'entryPrice' | 'collateral' | 'collateralOverE16'
>;

export interface CloseSettlement {
  readonly closedSize: BaseE8;
  /** sum size_i * price_i, floored (informational: the fee is computed from the exact value). */
  readonly closedNotional: QuoteE6;
  readonly realizedPnl: QuoteE6;
  /**
   * Liquidation fee actually collected for the fund (capped by what the trader still has), and ADL's counterparties'
   * rounding beyond the shortfall (creditCloseRounding).
   */
  readonly fee: QuoteE6;
  /** Loss beyond the collateral, owed by the backstop layers (fund, then ADL); less ADL's counterparties' rounding. */
  readonly shortfall: QuoteE6;
  readonly remaining: { readonly size: BaseE8; readonly collateral: QuoteE6 };
  /**
   * A slice (settleSlice) only: the sub-unit by which `traderPayout`, the rest's collateral, overstates its exact
   * margin (Position.collateralOverE16 of the rest).
   */
  readonly restCollateralOverE16?: bigint;
  /** Paid out to the trader on a full close (0 on a partial close: the money stays as collateral). */
  readonly traderPayout: QuoteE6;
  /**
   * What the counterparty (venue, auction buyer, ADL counterparties) receives: -realizedPnl, less what the ADL
   * counterparties' rounding credits the fund (creditCloseRounding).
   */
  readonly counterpartyFlow: QuoteE6;
  /** Net flow into the backstop: fee - shortfall (the shortfall is paid by the fund or socialized by ADL). */
  readonly fundFlow: QuoteE6;
}

/** Exact PnL in E16 units of closing `size` at `price`: size(price - entry) long, size(entry - price) short. */
export function pnlE16(side: Side, size: BaseE8, entryPrice: PriceE8, price: PriceE8): bigint {
  return side === 'LONG' ? size * (price - entryPrice) : size * (entryPrice - price);
}

/** A fill's value in E16: what its counterparty settled it for when it did so in whole units, else price x size. */
export const fillValueE16 = (f: Fill): bigint =>
  f.cost === undefined ? f.size * f.price : f.cost * NOTIONAL_TO_QUOTE;

/** pnl16 of closing a fill against `entryPrice`, at the fill's value (fillValueE16). */
export function fillPnlE16(side: Side, f: Fill, entryPrice: PriceE8): bigint {
  const value16 = fillValueE16(f);
  const entry16 = f.size * entryPrice;
  return side === 'LONG' ? value16 - entry16 : entry16 - value16;
}

export function assertClosablePosition(p: ClosablePosition): void {
  if (p.side !== 'LONG' && p.side !== 'SHORT')
    throw new AccountingError('accounting/bad-position', `side ${String(p.side)}`);
  if (p.size <= 0n) throw new AccountingError('accounting/bad-position', `size ${p.size} must be > 0`);
  if (p.entryPrice <= 0n)
    throw new AccountingError('accounting/bad-position', `entry price ${p.entryPrice} must be > 0`);
  // Negative collateral is a deficit an earlier slice left with the rest of the position (settleSlice): this
  // close settles it first.
  const over = p.collateralOverE16 ?? 0n;
  if (over < 0n || over >= NOTIONAL_TO_QUOTE)
    throw new AccountingError('accounting/bad-position', `collateralOverE16 ${over} is outside [0, 1e10)`);
}

/** The checked totals of closing `fills` out of `position`: size, notional (price x size) and PnL, in E16. */
function closeTotals(
  position: ClosablePosition,
  fills: readonly Fill[],
  feeRate: Ppm,
): { readonly closedSize: BaseE8; readonly notional16: bigint; readonly pnl16: bigint } {
  assertClosablePosition(position);
  if (feeRate < 0n || feeRate > PPM_SCALE)
    throw new AccountingError('accounting/bad-fee-rate', `${feeRate} ppm is outside [0, 1e6]`);
  if (fills.length === 0) throw new AccountingError('accounting/no-fills', 'a close needs at least one fill');
  let closedSize = 0n;
  let notional16 = 0n;
  let pnl16 = 0n;
  for (const [i, f] of fills.entries()) {
    if (f.size <= 0n || f.price <= 0n || (f.cost !== undefined && f.cost < 0n))
      throw new AccountingError(
        'accounting/bad-fill',
        `fill ${i}: size ${f.size} and price ${f.price} must be > 0, cost ${f.cost ?? '-'} >= 0`,
      );
    closedSize += f.size;
    // The fee's base is price x size: a cost rounded down (a BUY lot's provider) must not lower the fee.
    notional16 += f.size * f.price;
    pnl16 += fillPnlE16(position.side, f, position.entryPrice);
  }
  if (closedSize > position.size)
    throw new AccountingError(
      'accounting/overfill',
      `fills total ${closedSize} > position size ${position.size}`,
    );
  return { closedSize, notional16, pnl16 };
}

/** The fee on a notional (E16) at `feeRate`, ceiled: the fund never collects less than the rate says. */
const feeOn = (notional16: bigint, feeRate: Ppm): QuoteE6 =>
  div(notional16 * feeRate, NOTIONAL_TO_QUOTE * PPM_SCALE, 'ceil');

/**
 * Closes `fills` (total size <= position size) out of an isolated-margin position.
 *
 *   pnl16     = sum size_i (price_i - E)  (long; E - price_i short), exact in E16; a fill with a cost (an
 *               auction's, settled by its provider in whole units) counts cost_i x 1e10 for size_i price_i
 *   pnl       = floor(pnl16 / 1e10) while M + pnl16 >= 0: the trader never gets a sub-unit more;
 *               ceil(pnl16 / 1e10) under water, so shortfall = floor(exact loss beyond M): the fund never
 *               pays a sub-unit more than the exact loss. The counterparty pays exactly -pnl either way.
 *   equity    = M + pnl
 *   shortfall = max(0, -equity)
 *   fee       = min(ceil(sum size_i price_i * feeRate), max(0, equity))     (ceil: favours the fund)
 *   left      = max(0, equity) - fee
 *   full close: traderPayout = left, remaining = { 0, 0 }
 *   partial:    traderPayout = 0, remaining = { size - closed, left }  (a shortfall zeroes the remainder first)
 *
 * Conservation (exact, every input), with traderChange = traderPayout + remaining.collateral - M:
 *   traderChange + counterpartyFlow + fee - shortfall = 0,  i.e.  traderChange + counterpartyFlow + fundFlow = 0
 * where counterpartyFlow = -pnl and fundFlow = fee - shortfall (the shortfall term is what the backstop pays).
 */
export function settleClose(
  position: ClosablePosition,
  fills: readonly Fill[],
  feeRate: Ppm,
): CloseSettlement {
  const { closedSize, notional16, pnl16: fillsPnl16 } = closeTotals(position, fills, feeRate);
  // What an earlier slice's rounding left on the collateral comes back here: the close settles the exact margin.
  const pnl16 = fillsPnl16 - (position.collateralOverE16 ?? 0n);
  const underWater = marginE16(position) + fillsPnl16 < 0n;
  const realizedPnl = div(pnl16, NOTIONAL_TO_QUOTE, underWater ? 'ceil' : 'floor');
  const equity = position.collateral + realizedPnl;
  const shortfall = equity < 0n ? -equity : 0n;
  const fee = minBig(feeOn(notional16, feeRate), maxBig(0n, equity));
  const left = maxBig(0n, equity) - fee;
  const full = closedSize === position.size;

  return {
    closedSize,
    closedNotional: div(notional16, NOTIONAL_TO_QUOTE, 'floor'),
    realizedPnl,
    fee,
    shortfall,
    remaining: full ? { size: 0n, collateral: 0n } : { size: position.size - closedSize, collateral: left },
    traderPayout: full ? left : 0n,
    counterpartyFlow: -realizedPnl,
    fundFlow: fee - shortfall,
  };
}

/**
 * The close charged `extra` more fee than settleClose found due: a fee an earlier plan of the settlement credited
 * and the fund cannot give back (its floor; waterfall.ts). It comes out of what the trader keeps first, and what
 * the trader no longer has becomes shortfall, so conservation still holds:
 *   fee' = fee + extra, taken = min(extra, left), shortfall' = shortfall + extra - taken, left' = left - taken.
 */
export function chargeFee(s: CloseSettlement, extra: QuoteE6): CloseSettlement {
  if (extra < 0n) throw new AccountingError('accounting/bad-fee-rate', `extra fee ${extra} must be >= 0`);
  if (extra === 0n) return s;
  const full = s.remaining.size === 0n;
  const left = full ? s.traderPayout : s.remaining.collateral;
  const taken = minBig(extra, left);
  const fee = s.fee + extra;
  const shortfall = s.shortfall + extra - taken;
  return {
    ...s,
    fee,
    shortfall,
    remaining: full ? s.remaining : { size: s.remaining.size, collateral: left - taken },
    traderPayout: full ? left - taken : 0n,
    fundFlow: fee - shortfall,
  };
}

/**
 * Closes a slice of a position that keeps `rest.size` after it (and all the collateral behind the slice). Nothing
 * is owed to or by the fund now: the slice's deficit, if any, stays with the rest as negative collateral, and the
 * fund and ADL settle what the position leaves once it is closed whole (paying each slice's deficit let a trader
 * whose rest recovered keep that profit while the fund had paid the loss of the slice before it). The fee is what
 * the rate says, but never more than leaves the whole position solvent at `rest.mark` (the slice's equity plus the
 * rest's PnL there): a fee the rest would owe back as its deficit is not the fund's, and ADL's counterparties
 * would pay it once the fund's draw cap binds.
 *   equity16 = M16 + pnl16 (M16: the exact margin, collateral less collateralOverE16)
 *   equity  = ceil(equity16 / 1e10); the rest carries equity x 1e10 - equity16 as its collateralOverE16, which
 *             its final close takes back (a slice's rounding never pays the trader, nor charges the fund)
 *   fee     = min(ceil(sum size_i price_i * feeRate), max(0, floor((equity16 + rest pnl16 at rest.mark) / 1e10)))
 *   traderPayout = equity - fee: what the rest starts with (below zero: the deficit it carries); shortfall 0
 * Conservation: traderChange = pnl - fee, counterpartyFlow = -pnl, fundFlow = fee.
 */
export function settleSlice(
  slice: ClosablePosition,
  fills: readonly Fill[],
  feeRate: Ppm,
  rest: { readonly size: BaseE8; readonly mark: PriceE8 },
): CloseSettlement {
  if (rest.size <= 0n || rest.mark <= 0n)
    throw new AccountingError(
      'accounting/bad-position',
      `rest ${rest.size} at ${rest.mark}: both must be > 0`,
    );
  const { closedSize, notional16, pnl16 } = closeTotals(slice, fills, feeRate);
  if (closedSize !== slice.size)
    throw new AccountingError(
      'accounting/bad-position',
      `a slice closes whole: ${closedSize} of ${slice.size}`,
    );
  // Rounded up, whatever the slice's side of water, and the sub-unit carried: the rest's final close settles the
  // exact margin (rounded once, against the trader), so neither the trader nor the fund gains by the slicing.
  const equity16 = marginE16(slice) + pnl16;
  const equity = div(equity16, NOTIONAL_TO_QUOTE, 'ceil');
  const realizedPnl = equity - slice.collateral;
  const rest16 = pnlE16(slice.side, rest.size, slice.entryPrice, rest.mark);
  const whole = div(equity16 + rest16, NOTIONAL_TO_QUOTE, 'floor');
  const fee = minBig(feeOn(notional16, feeRate), maxBig(0n, whole));
  return {
    closedSize,
    closedNotional: div(notional16, NOTIONAL_TO_QUOTE, 'floor'),
    realizedPnl,
    fee,
    shortfall: 0n,
    remaining: { size: 0n, collateral: 0n },
    restCollateralOverE16: equity * NOTIONAL_TO_QUOTE - equity16,
    traderPayout: equity - fee,
    counterpartyFlow: -realizedPnl,
    fundFlow: fee,
  };
}

/** A fee kept on a slice (see chargeFee): taken from what the rest starts with, below zero if need be. */
export function chargeSliceFee(s: CloseSettlement, extra: QuoteE6): CloseSettlement {
  if (extra < 0n) throw new AccountingError('accounting/bad-fee-rate', `extra fee ${extra} must be >= 0`);
  return { ...s, fee: s.fee + extra, traderPayout: s.traderPayout - extra, fundFlow: s.fundFlow + extra };
}

/**
 * ADL's counterparties closed their part of `s` at the mark, each rounded on its own (adl.ts closeRoundingE16), and
 * the trader's close rounded its own (closeRoundingOwnE16): in all they gave `roundingE16` (E16) that no account
 * received. Its whole units go to the fund: a smaller shortfall (the fund pays less, or ADL's deficit is smaller),
 * the rest with the fee; the trader's outcome is its own close's. What is left is under one unit. Conservation
 * still holds: counterpartyFlow and fundFlow move by the same units.
 */
export function creditCloseRounding(s: CloseSettlement, roundingE16: bigint): CloseSettlement {
  if (roundingE16 < 0n)
    throw new AccountingError('accounting/bad-fill', `close rounding ${roundingE16} must be >= 0`);
  const units = div(roundingE16, NOTIONAL_TO_QUOTE, 'floor');
  if (units === 0n) return s;
  const lessShortfall = minBig(units, s.shortfall);
  const fee = s.fee + units - lessShortfall;
  const shortfall = s.shortfall - lessShortfall;
  return {
    ...s,
    fee,
    shortfall,
    counterpartyFlow: s.counterpartyFlow - units,
    fundFlow: fee - shortfall,
  };
}

/**
 * What a whole close (settleClose) of `fills` out of `position` rounds away from the trader (E16, 0 <= it < 1e10):
 * solvent, its exact margin and PnL less the whole units its equity keeps (the close floors them). Under water it
 * is 0: the close floors the loss beyond the collateral, the fund's way, and the trader gives no sub-unit. A slice
 * rounds nothing away: settleSlice carries its sub-unit on the rest, whose own final close rounds it.
 */
export function closeRoundingOwnE16(position: ClosablePosition, fills: readonly Fill[]): bigint {
  const exact16 = marginE16(position) + closeTotals(position, fills, 0n).pnl16;
  return exact16 < 0n ? 0n : exact16 - div(exact16, NOTIONAL_TO_QUOTE, 'floor') * NOTIONAL_TO_QUOTE;
}

/** traderPayout + remaining.collateral - collateral: the trader's change of wealth from a close. */
export const traderChange = (position: ClosablePosition, s: CloseSettlement): QuoteE6 =>
  s.traderPayout + s.remaining.collateral - position.collateral;
