import { fillPnlE16, fillValueE16, settleClose } from '../domain/accounting.ts';
import { marginE16 } from '../domain/margin.ts';
import { type Fill, isTerminal, type Layer, type Side } from '../domain/model.ts';
import { div, NOTIONAL_TO_QUOTE, type PriceE8, type QuoteE6 } from '../domain/units.ts';
import type { SettlementAmounts } from '../domain/waterfall.ts';
import type { AuctionRecord, LiquidationRecord, PositionRecord, ProviderRecord } from '../ports/index.ts';
import { isLastResortOrderId } from '../services/liquidation.ts';
import { SimulationError } from './engine.ts';
import type { ObservedOrder, ObservedWrite } from './observe.ts';
import type { Conservation } from './results.ts';
import { isZeroPriceFill, orderSlippage } from './stats.ts';

/**
 * What the engine learns from watching the services: terminal states, settlement amounts, market orders,
 * auction fills, provider capital, and the counterparty side of every close for the conservation check.
 *
 * Conservation, exact in QuoteE6. Each close pays its counterparty -realizedPnl (accounting.ts: "the
 * counterparty pays exactly -pnl"); the counterparty is the venue for market fills, the providers for auction
 * fills, and the ADL counterparties for the size closed at the mark, who in turn close their own positions at
 * the mark against the rest of the market (the venue side). The loss nobody covered (uncovered bad debt) is
 * what those counterparties were never paid. With the traders measured from the final position records
 * (collateral left, plus payouts on close) and the fund from its ledger:
 *   traders + fund + venue + providers + adl = 0
 * so any money a service creates or loses (a payout dropped, a movement applied twice) shows as an error.
 */

const TERMINAL_LAYER: Readonly<Record<string, Layer>> = {
  SETTLED_MARKET: 'market',
  SETTLED_AUCTION: 'auction',
  SETTLED_INSURANCE: 'insurance',
  SETTLED_ADL: 'adl',
};

/** pnl16 of closing `size` at `price` against `entry` (E16 units). */
const pnl16 = (side: Side, size: bigint, entry: PriceE8, price: PriceE8): bigint =>
  side === 'LONG' ? size * (price - entry) : size * (entry - price);

/**
 * What a whole close rounds away from the trader (E16): solvent, its exact margin and PnL (its fills, and ADL's size
 * at the mark) less the whole units it keeps; under water the loss is floored, the fund's way: 0.
 */
function ownRounding16(
  p: PositionRecord,
  fills: readonly Fill[],
  { adlClosedSize }: SettlementAmounts,
  mark: PriceE8,
): bigint {
  const exact16 =
    marginE16(p) +
    fills.reduce((t, f) => t + fillPnlE16(p.side, f, p.entryPrice), 0n) +
    pnl16(p.side, adlClosedSize, p.entryPrice, mark);
  return exact16 < 0n ? 0n : exact16 - div(exact16, NOTIONAL_TO_QUOTE, 'floor') * NOTIONAL_TO_QUOTE;
}

/** Per minute: settlements by layer, deficits left as bad debt (not ADL's: it closed and covered nothing), cancels. */
export type MinuteCounts = Record<Layer | 'badDebt' | 'cancelled', number>;

export class SimulationRecorder {
  readonly settledBy: Record<Layer, number> = { market: 0, auction: 0, insurance: 0, adl: 0 };
  /**
   * Of settledBy.adl: settlements ADL only bore the deficit of, closing and covering nothing (always so in the
   * market-only baseline, which has no ADL): their deficit is bad debt left uncovered.
   */
  adlBadDebtOnly = 0;
  cancelled = 0;
  badDebt = 0n;
  badDebtUncovered = 0n;
  fees = 0n;
  insurancePaid = 0n;
  marketOrders = 0;
  /**
   * What the closes were worth, E16, by layer: a market fill's price x size, an auction fill's cost (what its provider
   * paid, or was paid), ADL's size x the mark. Summed exactly and rounded once (the getters): floored fill by fill, a
   * volume depended on how many trades the venue split an order into, and was not what the records hold (a
   * liquidation keeps more than 100 trades of one order as their exact totals).
   */
  readonly #volume16 = { market: 0n, lastResort: 0n, auction: 0n, adl: 0n };
  /** The waterfall's last resort: market orders within its wide bound (part of marketOrders and marketVolume). */
  lastResortOrders = 0;
  /**
   * What market and auction fills gave up against the mark of their time (sold below it, bought above it), price
   * x size: a market order's against the mark it was placed at, an auction's against the mark its step priced at.
   */
  #executionCost16 = 0n;
  /** Auction fills already counted in #executionCost16, by auction id (RUNNING auctions only). */
  readonly #auctionFillsCosted = new Map<string, number>();
  #slicesStarted = 0;
  readonly #positionsLiquidated = new Set<string>();
  providerCapitalUsed = 0n;
  zeroPriceFills = 0;
  /** One sample per market order that filled, hundredths of a basis point. */
  readonly slippage: number[] = [];
  /** Terminal states since the last takeMinute(). */
  /** Fills of ended auctions whose liquidation has not settled yet, by liquidation id. */
  readonly #endedAuctionFills = new Map<string, readonly Fill[]>();
  #minute: MinuteCounts = { market: 0, auction: 0, insurance: 0, adl: 0, badDebt: 0, cancelled: 0 };
  /** Payouts to traders whose position closed, by position id. */
  readonly #payouts = new Map<string, QuoteE6>();
  readonly #flows = { venue: 0n, providers: 0n, adl: 0n };
  /** Settled liquidations with ADL rounds to come, and what ADL covered of each so far. */
  readonly #roundsPending = new Map<string, QuoteE6>();
  /** Settlements counted as left to bad debt with rounds to come, by the minute (takeMinute's index) counted in. */
  readonly #badDebtOnlyAt = new Map<string, number>();
  #minutesTaken = 0;
  /** Minutes (takeMinute's index) of which one settlement counted as bad debt was covered by ADL after all. */
  readonly badDebtMoves: number[] = [];
  /** Last accepted mark: the reference when a record does not carry one. */
  mark: PriceE8;

  constructor(firstMark: PriceE8) {
    this.mark = firstMark;
  }

  onOrder(o: ObservedOrder): void {
    if (o.result.fills.length === 0) return;
    const mark = o.mark ?? this.mark;
    this.marketOrders += 1;
    const lastResort = isLastResortOrderId(o.order.clientOrderId);
    if (lastResort) this.lastResortOrders += 1;
    this.slippage.push(orderSlippage(o.order.direction, o.result.fills, mark));
    for (const f of o.result.fills) {
      this.#executionCost16 += costAgainst(o.order.direction, f, mark);
      this.#volume16.market += f.size * f.price;
      if (lastResort) this.#volume16.lastResort += f.size * f.price;
      if (isZeroPriceFill(o.order.direction, f.price, mark)) this.zeroPriceFills += 1;
    }
  }

  onCommit(writes: readonly ObservedWrite[]): void {
    for (const { write, before } of writes) {
      // A liquidation created by a commit: a slice after the first (a tick's are created by margin-check).
      if (write.kind === 'liquidation' && write.expectedVersion === undefined) this.#slicesStarted += 1;
      // An auction's new fills, against the mark the step priced them at (the last accepted one).
      if (write.kind === 'auction') this.#costAuctionFills(write.record);
      if (write.kind === 'provider' && before) {
        this.providerCapitalUsed += (before as ProviderRecord).capital - write.record.capital;
      }
      // An ended auction's fills, for its liquidation's settlement (one that needs no fund settles unfrozen).
      if (write.kind === 'auction' && write.record.state !== 'RUNNING') {
        this.#endedAuctionFills.set(write.record.liquidationId, write.record.fills);
      }
      // A terminal state is written once, as a transition (never as a creation); ADL rounds write it again.
      if (
        write.kind !== 'liquidation' ||
        write.expectedVersion === undefined ||
        !isTerminal(write.record.state)
      ) {
        continue;
      }
      const id = write.record.id;
      const coveredBefore = this.#roundsPending.get(id);
      const coveredNow = write.record.settlement?.adlCovered ?? 0n;
      if (write.record.context?.adlRound) this.#roundsPending.set(id, coveredNow);
      else this.#roundsPending.delete(id);
      if (coveredBefore !== undefined) {
        // A further ADL round of a settled liquidation: counterparties cover more of its deficit (they close
        // nothing; their collateral is in the traders' final records).
        this.badDebtUncovered -= coveredNow - coveredBefore;
        this.#flows.adl += coveredNow - coveredBefore;
        if (coveredNow > coveredBefore) this.#coveredAfterAll(id);
        continue;
      }
      if (write.record.state === 'CANCELLED') {
        this.cancelled += 1;
        this.#minute.cancelled += 1;
        continue;
      }
      const layer = TERMINAL_LAYER[write.record.state]!;
      this.#positionsLiquidated.add(write.record.positionId);
      this.settledBy[layer] += 1;
      const s = write.record.settlement;
      const badDebtOnly = layer === 'adl' && s?.adlClosedSize === 0n && s.adlCovered === 0n;
      if (badDebtOnly) {
        this.adlBadDebtOnly += 1;
        if (write.record.context?.adlRound) this.#badDebtOnlyAt.set(id, this.#minutesTaken);
      }
      this.#minute[badDebtOnly ? 'badDebt' : layer] += 1;
      this.#settle(write.record, writes);
    }
  }

  /** Market orders' fills, price x size (floored once). */
  get marketVolume(): QuoteE6 {
    return div(this.#volume16.market, NOTIONAL_TO_QUOTE, 'floor');
  }

  /** Of the market volume, the last resort's orders. */
  get lastResortVolume(): QuoteE6 {
    return div(this.#volume16.lastResort, NOTIONAL_TO_QUOTE, 'floor');
  }

  /** Auction fills at what their providers paid (or were paid, a BUY lot): the value the closes settled at. */
  get auctionVolume(): QuoteE6 {
    return div(this.#volume16.auction, NOTIONAL_TO_QUOTE, 'floor');
  }

  /** ADL's closes of liquidated positions, at the settlement's mark. */
  get adlVolume(): QuoteE6 {
    return div(this.#volume16.adl, NOTIONAL_TO_QUOTE, 'floor');
  }

  /** Positions a settled liquidation closed some of (a position closed in slices counts once). */
  get positionsLiquidated(): number {
    return this.#positionsLiquidated.size;
  }

  /** Market and auction fills against the mark, in quote units (display: floored). */
  get executionCost(): QuoteE6 {
    return div(this.#executionCost16, NOTIONAL_TO_QUOTE, 'floor');
  }

  /** Liquidations started by commits (next slices) since the previous call. */
  takeSlicesStarted(): number {
    const n = this.#slicesStarted;
    this.#slicesStarted = 0;
    return n;
  }

  #costAuctionFills(auction: AuctionRecord): void {
    const seen = this.#auctionFillsCosted.get(auction.id) ?? 0;
    for (const f of auction.fills.slice(seen))
      this.#executionCost16 += costAgainst(auction.direction, f, this.mark);
    if (auction.state === 'RUNNING') this.#auctionFillsCosted.set(auction.id, auction.fills.length);
    else this.#auctionFillsCosted.delete(auction.id);
  }

  /**
   * A settlement counted as left to bad debt (ADL covered none of it) that a later round covered some of: it was
   * settled by ADL after all (the minute it was counted in moves it too: `badDebtMoves`).
   */
  #coveredAfterAll(id: string): void {
    const minute = this.#badDebtOnlyAt.get(id);
    if (minute === undefined) return;
    this.#badDebtOnlyAt.delete(id);
    this.adlBadDebtOnly -= 1;
    if (minute === this.#minutesTaken) {
      this.#minute.badDebt -= 1;
      this.#minute.adl += 1;
    } else this.badDebtMoves.push(minute);
  }

  /** Terminal states counted since the previous call. */
  takeMinute(): MinuteCounts {
    this.#minutesTaken += 1;
    const counts = this.#minute;
    this.#minute = { market: 0, auction: 0, insurance: 0, adl: 0, badDebt: 0, cancelled: 0 };
    return counts;
  }

  /** What a trader holds at the end: the payout of a closed position, else the collateral still posted. */
  wealthOf(final: PositionRecord): QuoteE6 {
    return final.state === 'CLOSED' ? (this.#payouts.get(final.id) ?? 0n) : final.collateral;
  }

  conservation(traders: QuoteE6, fund: QuoteE6): Conservation {
    const { venue, providers, adl } = this.#flows;
    return { traders, fund, venue, providers, adl, error: traders + fund + venue + providers + adl };
  }

  #settle(liquidation: LiquidationRecord, writes: readonly ObservedWrite[]): void {
    const s = liquidation.settlement;
    if (!s) throw new SimulationError(`simulation/no-settlement: ${liquidation.id} is terminal without one`);
    const uncovered = s.badDebt;
    this.badDebt += s.adlCovered + uncovered;
    this.badDebtUncovered += uncovered;
    this.fees += s.fee;
    this.insurancePaid += s.insurancePaid;
    const context = liquidation.context;
    const mark = context?.settle?.mark ?? context?.executionMark ?? this.mark;

    // What the ADL counterparties' closes round away (E16), and the trader's close with them: its whole units went
    // to the fund.
    let adlRounding16 = 0n;
    for (const { write, before } of writes) {
      if (write.kind !== 'position' || !before) continue;
      const previous = before as PositionRecord;
      const next = write.record;
      if (next.id === liquidation.positionId) {
        if (next.state === 'CLOSED') this.#payouts.set(next.id, s.traderPayout);
        // As the settlement used them: frozen in the context, else the ended auction's (as the invariants read).
        const auctionFills =
          context?.settle?.auctionFills ?? this.#endedAuctionFills.get(liquidation.id) ?? [];
        this.#endedAuctionFills.delete(liquidation.id);
        this.#liquidatedClose(s, auctionFills, previous, mark, uncovered);
        // A whole close ADL took part in (a slice carries its sub-unit on the rest): adl-trader-rounding.
        if (next.state === 'CLOSED' && s.adlClosedSize > 0n)
          adlRounding16 += ownRounding16(previous, [...liquidation.marketFills, ...auctionFills], s, mark);
      } else if (previous.size > next.size || previous.collateral !== next.collateral) {
        // An ADL counterparty: closes (part of) its position at the mark and gives up profit.
        const closed = previous.size - next.size;
        if (closed > 0n) {
          const realized = settleClose(previous, [{ price: mark, size: closed }], 0n).realizedPnl;
          this.#flows.adl -= realized;
          adlRounding16 +=
            marginE16(previous) +
            pnl16(previous.side, closed, previous.entryPrice, mark) -
            (previous.collateral + realized) * NOTIONAL_TO_QUOTE;
        }
        if (next.state === 'CLOSED')
          this.#payouts.set(next.id, (this.#payouts.get(next.id) ?? 0n) + (next.closedPayout ?? 0n));
      }
    }
    this.#flows.adl -= div(adlRounding16, NOTIONAL_TO_QUOTE, 'floor');
  }

  /** The counterparties of the liquidated close receive -realizedPnl, split by the layer that took each fill. */
  #liquidatedClose(
    { adlClosedSize: adlSize, realizedPnl }: SettlementAmounts,
    /** The auction's fills as the settlement used them. */
    auctionFills: readonly Fill[],
    position: PositionRecord,
    mark: PriceE8,
    uncovered: QuoteE6,
  ): void {
    const { side, entryPrice } = position;
    let auction16 = 0n;
    for (const f of auctionFills) {
      auction16 += fillPnlE16(side, f, entryPrice);
      this.#volume16.auction += fillValueE16(f);
      if (isZeroPriceFill(side === 'LONG' ? 'SELL' : 'BUY', f.price, mark)) this.zeroPriceFills += 1;
    }
    this.#volume16.adl += adlSize * mark;
    const toProviders = div(-auction16, NOTIONAL_TO_QUOTE, 'floor');
    const toAdl = div(-pnl16(side, adlSize, entryPrice, mark), NOTIONAL_TO_QUOTE, 'floor');
    this.#flows.providers += toProviders;
    this.#flows.adl += toAdl - uncovered;
    // The venue takes the market fills and the rounding residue of the one rounded realized PnL.
    this.#flows.venue += -realizedPnl - toProviders - toAdl;
  }
}

/** A fill's cost against the mark, price x size: what a sale gave up below it, a purchase paid above it. */
const costAgainst = (direction: 'BUY' | 'SELL', f: Fill, mark: PriceE8): bigint =>
  (direction === 'SELL' ? mark - f.price : f.price - mark) * f.size;
