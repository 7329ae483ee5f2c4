import { pnlE16 } from '../../shared/domain/accounting.ts';
import { allocateAdl, rankForAdl } from '../../shared/domain/adl.ts';
import { type ClaimedFacts, decodeClaimedFacts } from '../../shared/domain/claimed-facts.ts';
import { baseOf, quoteOf } from '../../shared/domain/config.ts';
import { bankruptcyPrice, isLiquidatable, liquidationPrice } from '../../shared/domain/margin.ts';
import {
  type AdlEvent,
  adlEventsRead,
  isTerminal,
  type LiquidationState,
  setAsideList,
} from '../../shared/domain/model.ts';
import {
  MAX_PROVIDER_FILLS_KEPT,
  type ProviderFill,
  providerFillsRead,
} from '../../shared/domain/provider-fills.ts';
import type { SizingReason } from '../../shared/domain/sizing.ts';
import {
  type BaseE8,
  div,
  formatBase,
  formatDecimal,
  formatPpm,
  formatPrice,
  formatQuote,
  formatQuoteGrouped,
  maxBig,
  NOTIONAL_TO_QUOTE,
  PPM_SCALE,
  type Ppm,
  type PriceE8,
  parsePpm,
  parseQuote,
} from '../../shared/domain/units.ts';
import { planKeyOf, SETTLEMENT_UNITS, type SettlementAmounts } from '../../shared/domain/waterfall.ts';
import { counted, iso } from '../../shared/domain/words.ts';
import { chunksOf, eachInFlight } from '../../shared/in-flight.ts';
import {
  type Adapters,
  type AuctionFill,
  type AuctionRecord,
  isOpenLiquidation,
  type JournalEntry,
  type LiquidationRecord,
  type PositionRecord,
  type ProcessingFailure,
  type ProviderRecord,
} from '../../shared/ports/index.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { auctionIdOf } from '../../shared/services/liquidation.ts';
import { NEXT_SLICE_NOTE } from '../../shared/services/margin-check.ts';

/**
 * `liquidations show`: one liquidation's whole story from its records, read by key through the adapters (no scan):
 * the liquidation, its position, its auction, its settlement with ADL's closes, and the fund's journal entries that
 * reference it. Every amount is a decimal string in its unit (never a float), every time ISO-8601 UTC.
 */

export type ShowAdapters = Pick<
  Adapters,
  'liquidations' | 'positions' | 'auctions' | 'ledger' | 'reader' | 'providers'
>;

export interface ShownFailure {
  readonly reason: string;
  readonly attempt: number;
  readonly at: string;
}

const failureOf = (f: ProcessingFailure | undefined): ShownFailure | undefined =>
  f === undefined ? undefined : { reason: f.reason, attempt: f.attempt, at: iso(f.atMs) };

export interface ShownEvent {
  readonly at: string;
  readonly state: string;
  /** The note with its fixed-point integers written as decimals in their units. */
  readonly note?: string;
  /** The note as stored, when it held fixed-point integers (its sizes in 1e-8 base units, prices in 1e-8 quote). */
  readonly storedNote?: string;
}

/**
 * Notes the services write with a size or price as its stored integer (shared/services/liquidation/): each as a
 * decimal in its unit. Any other note is shown as stored.
 */
export function decodeNote(note: string, base: string, quote: string): string {
  const size = (v: string) => `${formatBase(BigInt(v))} ${base}`;
  const price = (v: string) => `${formatPrice(BigInt(v))} ${quote}`;
  let m = /^healthy at (\d+)$/.exec(note);
  if (m) return `healthy at ${price(m[1]!)}`;
  m = /^size (\d+) limit (\d+)$/.exec(note);
  if (m) return `size ${size(m[1]!)}, limit ${price(m[2]!)}`;
  m = /^size (\d+) limit (\d+) market order (\d+)$/.exec(note);
  if (m) return `size ${size(m[1]!)}, limit ${price(m[2]!)}, market order ${size(m[3]!)} (its whole lots)`;
  m = /^filled (\d+) of (\d+)$/.exec(note);
  if (m) return `filled ${size(m[1]!)} of ${size(m[2]!)}`;
  m = /^lot (\d+)$/.exec(note);
  if (m) return `lot ${size(m[1]!)}`;
  return note;
}

export interface ShownFill {
  readonly price: string;
  readonly size: string;
  /** What the counterparty paid or was paid for it, when it settled it in whole units of its own (an auction's). */
  readonly cost?: string;
}

/** A fill of the market order, with how far it was from the mark the order was placed at. */
export interface ShownMarketFill extends ShownFill {
  /**
   * Percent from the execution mark, against the trader: sold below or bought above it (negative: a better price),
   * to 0.01 %, rounded toward zero. Absent: a last-resort fill (placed later, at a later mark), or no mark known.
   */
  readonly slippagePercent?: string;
  /** A fill of the last-resort order (placed after the other layers closed none of the slice), not the first. */
  readonly lastResort?: true;
}

export interface ShownAdlClose {
  readonly positionId: string;
  /** Size of the counterparty closed against the liquidated position, at the plan's mark (0: profit taken only). */
  readonly closedSize: string;
  /** The effective close price (informational: the money that moved is profitGiven). */
  readonly price: string;
  /** Profit it gave up to cover the deficit, haircut included. */
  readonly profitGiven: string;
  readonly haircut: string;
  /** Its version the plan was made on: the close is its version + 1. */
  readonly planVersion: number;
  /** Why ADL took from it, and in what order (absent: the plan's inputs do not rank it). */
  readonly rank?: ShownAdlRank;
  /** The counterparty's position now (undefined: not found). */
  readonly now?: { readonly state: string; readonly size: string; readonly version: number };
}

/**
 * Why ADL took from a counterparty: its place among the counterparties the settlement's plan took from, in ADL's
 * order (README: the opposite side's profitable positions, the highest score first), and its score's two factors at
 * the plan's mark, from the plan's frozen inputs (as allocateAdl ranked them).
 */
export interface ShownAdlRank {
  /** 1: ADL took from it first. */
  readonly place: number;
  /** The counterparties the settlement's plan took from (not its later ADL rounds', which rank their own anew). */
  readonly of: number;
  /**
   * Its profit at the mark left to give (less what ADL took before) in percent of its collateral, to 0.01 %, rounded
   * toward zero. Absent: no collateral, which ranks first.
   */
  readonly profitPercentOfCollateral?: string;
  /** Its effective leverage at the mark: its size's value over its equity, to 0.01, rounded toward zero. */
  readonly effectiveLeverage: string;
}

export interface ShownSettlement {
  /** The layers that acted, as the terminal event says (`market>insurance>adl`). */
  readonly settledBy?: string;
  /** The settlement's amounts as recorded: `fee` is what the fund received as the fee, not what the trader paid. */
  readonly amounts: Readonly<Record<keyof SettlementAmounts, string>>;
  /**
   * The fee against its rate: the rate in force when the liquidation was claimed, as the claim recorded it (a share,
   * 0.01: 1 %; its configuration: ShownClaim.configDigest). The settlement charged the rate in force when it was
   * planned, recorded nowhere: another only if a configuration was deployed in between, when `how` compares against a
   * rate it did not charge (review52-support-fee-rate-settled). Applied to the closed notional (every close's size at
   * its price: market, last resort, auction, ADL at the plan's mark), rounded up (`atRate`). `paid`: what the trader
   * paid, its equity after the closes (a close settled whole: at least 0) less what was left to it or to the rest.
   * `how`, of `paid`: `at-rate`; `capped`, less, as the close left the trader less than that (a slice: less than
   * leaves the whole position solvent); `above-rate`, more, a fee an earlier plan of the settlement credited and the
   * fund's floor kept, out of what the close left the trader. `credited`: amounts.fee, what the fund received as the fee:
   * more than `paid` by the whole units ADL's counterparties' closes at the mark rounded away (the trader's own
   * close rounds its own) or by a fee the floor kept beyond what the trader had left (part of the shortfall); where
   * the payout went is not known only without a plan, so with neither: `paid` is then amounts.fee. Absent: the rate
   * is not recorded (claimed before session 51) or a close's fills are not on the records.
   */
  readonly feeBasis?: {
    readonly rate: string;
    readonly closedNotional: string;
    readonly atRate: string;
    readonly paid: string;
    readonly credited: string;
    readonly how: 'at-rate' | 'capped' | 'above-rate';
  };
  /**
   * What the trader lost (absent: the collateral at the claim is not recorded, or where the payout went is not
   * known). `collateral`: behind the liquidated size when it was claimed (a slice has all of the position's; below
   * zero: a rest carrying the deficit of its earlier slices). `lost`: that less what was left to the trader or to the
   * rest. `beyondCollateral`: a close settled whole, its loss beyond the collateral (its equity below zero), which the
   * fund, ADL or bad debt bore (amounts.shortfall, less ADL's rounding, plus a fee the floor kept), never the trader;
   * 0 for a slice. `restDeficit`: a slice's rest carries its deficit as negative collateral instead (its later gains
   * fill it; the fund and ADL settle what the position leaves once closed whole).
   */
  readonly traderLoss?: {
    readonly collateral: string;
    readonly lost: string;
    readonly beyondCollateral: string;
    readonly restDeficit: string;
  };
  /**
   * Where `amounts.traderPayout` went: `trader`, paid out (the liquidation closed what was left of the position);
   * `rest`, the collateral the rest of the position keeps (negative: the slice's deficit it carries). Absent: the
   * records do not tell (a record without the position version it worked on).
   */
  readonly payoutTo?: 'trader' | 'rest';
  readonly adl: {
    /**
     * The counterparties of the settlement's own plan and what each closed and gave, derived from the plan's frozen
     * inputs (allocateAdl, as the settlement ran it); undefined when the record has no plan of ADL's, or the
     * derivation does not give the settlement's amounts (then `note` says why).
     */
    readonly closes?: readonly ShownAdlClose[];
    /** Rounds run after the settlement for a deficit beyond one transaction (their counterparties are not recorded on the liquidation; each one's position names it: adl47-who-closed). */
    readonly rounds: number;
    readonly owesRounds: boolean;
    readonly note?: string;
  };
}

export interface ShownJournalEntry {
  readonly sequence: number;
  readonly at: string;
  readonly kind: string;
  readonly key: string;
  readonly amount: string;
  readonly balanceAfter: string;
  readonly actor?: string;
}

export interface LiquidationShow {
  readonly liquidation: {
    readonly id: string;
    readonly positionId: string;
    readonly symbol: string;
    readonly side: string;
    /** The units of sizes (base) and of prices and money (quote). */
    readonly base: string;
    readonly quote: string;
    readonly state: string;
    /** Work remains: not terminal, or owing ADL rounds. */
    readonly open: boolean;
    /**
     * A tick's: the time the feed stamped on it (its clock; margin-check's when the stamp was ahead of it); a next
     * slice's: when its previous slice settled.
     */
    readonly startedAt: string;
    /**
     * `tick`: a tick's mark crossed the position's liquidation price; `previous-slice`: its settlement left a rest
     * still past it, or below the market's dust size (closed whatever its health).
     */
    readonly startedBy: 'tick' | 'previous-slice';
    /**
     * A next slice's: why the settlement started it, judged on the rest as its claim read it at `triggerMark`
     * (absent: not claimed yet, or claimed before session 51).
     */
    readonly restWas?: 'past-liquidation-price' | 'dust';
    readonly tickKey: string;
    /** The sequence of the tick (tickKey's number): a next slice's is its first slice's. */
    readonly tickSequence?: number;
    /** The tick's mark (a next slice's: the mark its previous slice settled at). */
    readonly triggerMark: string;
    readonly remainingSize: string;
    readonly history: readonly ShownEvent[];
    readonly marketFills: readonly ShownMarketFill[];
    readonly marketFilledSize: string;
    readonly lastFailure?: ShownFailure;
    readonly markDisputedSince?: string;
    readonly slices: { readonly previous?: string; readonly next?: string };
    readonly context?: ShownContext;
    readonly version: number;
  };
  /** The position now (undefined: no record). */
  readonly position?: ShownPosition;
  readonly auction?: ShownAuction;
  readonly settlement?: ShownSettlement;
  readonly journal: {
    readonly account: string;
    readonly entries: readonly ShownJournalEntry[];
    /** Net of the entries, by what they moved: the fee credited, the shortfall the fund paid (>= 0: paid). */
    readonly fee: string;
    readonly fundPaid: string;
    /** Whether the nets are the settlement's fee and fund payout (undefined: not settled). */
    readonly agreesWithSettlement?: boolean;
  };
}

export interface ShownPosition {
  readonly id: string;
  readonly traderId: string;
  readonly state: string;
  /** As stored: a CLOSED position keeps its last size (a liquidation's close) or 0 (an ADL close). */
  readonly size: string;
  readonly collateral: string;
  readonly entryPrice: string;
  readonly closedPayout?: string;
  readonly version: number;
}

/** What the claim read and applied (LiquidationContext.claimed); shares as decimals (0.025: 2.5 %). */
export interface ShownClaim {
  /** The position as the claim read it: the whole position, or what a previous slice left. */
  readonly position: { readonly size: string; readonly collateral: string; readonly entryPrice: string };
  /**
   * The mark at (a long: or below; a short: or above) which it is liquidated: its equity is the maintenance margin.
   * null: no such positive price. A long's: its collateral covers any price (at least its value at entry), no mark
   * liquidates it (a rest closed as dust may still be claimed); a short's: its collateral is below zero by so much
   * that every mark is past it. Never `0`, which read as a price.
   */
  readonly liquidationPrice: string | null;
  /**
   * The mark at which its equity is zero: a close beyond it loses more than the collateral (the shortfall). null as
   * liquidationPrice: a long's equity stays above zero at any price, a short's is below zero at every price.
   */
  readonly bankruptcyPrice: string | null;
  readonly maintenanceMargin: string;
  readonly initialMargin: string;
  readonly liquidationFee: string;
  /** The market order's bound: its limit is the execution mark less (a sell) or plus (a buy) this share. */
  readonly slippageBound: string;
  /** Why plannedSize (absent: the market-only baseline, which closes the whole position). */
  readonly sizing?: {
    readonly reason: SizingReason;
    /** plannedSize as a percent of the position's size, to 0.01 %, rounded toward zero. */
    readonly percentOfPosition: string;
    readonly why: string;
  };
  /** The tick whose mark the claim used (absent: none recorded on the market, the trigger mark). */
  readonly markTick?: { readonly sequence: number; readonly indexPrice?: string };
  /**
   * The start (12 characters) of the digest of the risk configuration the claim applied: a stack's
   * RiskConfigDigest output, or what `config digest --config FILE` prints of a file, begins with it. null: the claim
   * recorded none (claimed before session 52, or by an earlier version during its deploy), so it is unknown.
   */
  readonly configDigest: string | null;
}

export interface ShownContext {
  readonly plannedSize: string;
  /** The market order's size when it is not plannedSize: the slice's whole lots (0: no order, all under a lot). */
  readonly marketOrderSize?: string;
  readonly executionMark: string;
  readonly executionMarkAt?: string;
  readonly limitPrice?: string;
  /** Absent: claimed before session 51, whose records keep none of it (or a stored text that does not read). */
  readonly claimed?: ShownClaim;
  /**
   * Why `claimed` is absent: `predates-claim-facts`, the claim recorded none (before session 51, or a function of
   * the version before during the deploy); `does-not-read`, it recorded a text this version cannot read (an edit by
   * hand, a later version's). Absent: `claimed` is there.
   */
  readonly claimedMissing?: 'predates-claim-facts' | 'does-not-read';
  readonly positionVersion?: number;
  readonly settledMark?: string;
  readonly waitsForBook?: {
    readonly waits: number;
    readonly ordersFilledNothing: number;
    readonly outraced: number;
    readonly pendingOrder?: { readonly attempt: number; readonly size: string; readonly limitPrice: string };
  };
  readonly lease?: { readonly owner: string; readonly until: string };
  readonly adlRound?: { readonly round: number; readonly confirmAt?: string; readonly confirmMark?: string };
  /** The settlement's frozen inputs (absent: settled without the fund or ADL, or not planned yet). */
  readonly plan?: {
    readonly at: string;
    readonly mark: string;
    readonly fundBalance: string;
    readonly fundDrawnInWindow: string;
    readonly position: { readonly size: string; readonly collateral: string; readonly entryPrice: string };
    readonly lastResortFills?: readonly ShownFill[];
    readonly replans?: number;
    readonly superseded?: boolean;
  };
}

export interface ShownAuction {
  readonly id: string;
  readonly state: string;
  readonly direction: string;
  readonly lot: string;
  readonly remainingLot: string;
  readonly top: string;
  readonly startedAt: string;
  readonly step: number;
  readonly resets: number;
  readonly stepDueAt?: string;
  readonly wakeMark?: string;
  readonly endedBy?: string;
  readonly endedAtMark?: string;
  readonly fills: readonly ShownAuctionFill[];
  readonly filledSize: string;
  /** Providers of its fills whose record could not be read (a refused read, a record that does not read): why. */
  readonly providersUnread?: readonly { readonly providerId: string; readonly reason: string }[];
  readonly lastFailure?: ShownFailure;
}

/**
 * An auction's fill. `step`, `at`, `mark` and `slippagePercent` say when it was made: from the auction's record, which
 * keeps them on each fill made since session 52 (review52-support-fill-times-on-auction); for an older fill, from its
 * provider's record, which keeps its latest MAX_PROVIDER_FILLS_KEPT fills (providers48-fills-on-record), only where
 * that record tells the fill from every other fill of the provider in the auction (providerTimesOf). Absent otherwise:
 * the record has let it go (the provider filled later auctions since), never held it (before session 48), cannot tell
 * it apart, or was not read (ShownAuction.providersUnread).
 */
export interface ShownAuctionFill extends ShownFill {
  readonly providerId: string;
  /** The auction's step that filled it. */
  readonly step?: number;
  /** When that step filled it, by the auction function's clock. */
  readonly at?: string;
  /** The mark the step priced at. */
  readonly mark?: string;
  /** As a market fill's, against `mark`: sold below or bought above it, to 0.01 %, rounded toward zero. */
  readonly slippagePercent?: string;
}

const fillOf = (f: { price: bigint; size: bigint; cost?: bigint }): ShownFill => ({
  price: formatPrice(f.price),
  size: formatBase(f.size),
  ...(f.cost === undefined ? {} : { cost: formatQuote(f.cost) }),
});

const sizeOf = (fills: readonly { size: bigint }[]): bigint => fills.reduce((t, f) => t + f.size, 0n);

/** `part` of `whole` in percent, to 0.01 %, rounded toward zero (a fill within a bound never reads as beyond it). */
const percentOf = (part: bigint, whole: bigint): string => {
  const hundredths = (part * 10_000n) / whole;
  return formatDecimal(hundredths, 2);
};

/** A share in ppm as a percent for people (25,000 ppm: `2.5 %`). */
const percentText = (share: Ppm): string => `${formatDecimal(share, 4)} %`;

/**
 * Why the claim planned the size it did, in words (domain/sizing.ts's reasons); `im`: the initial margin; `whole`:
 * it planned all of the position (a smallest slice raised to more than the position is all of it).
 */
export function sizingWhy(reason: SizingReason, im: Ppm, whole: boolean): string {
  switch (reason) {
    case 'sizing/restore-initial-margin':
      return `part of the position: the least whose close leaves the rest its initial margin (${percentText(im)} of its value)`;
    case 'sizing/min-slice':
      return whole
        ? "the whole position: what restores the initial margin, raised to the market's smallest slice (minSliceNotional), is all of it"
        : "part of the position: what restores the initial margin, raised to the market's smallest slice (minSliceNotional)";
    case 'sizing/max-close-share':
      return "part of the position: a position this large (above the market's sliceAboveNotional) is closed in slices of at most maxCloseShare of it, the rest in the next slices";
    case 'sizing/dust-remainder':
      return "the whole position: what a partial close would leave is below the market's dust size or smallest slice";
    case 'sizing/insolvent':
      return 'the whole position: it had no equity left at the mark (past its bankruptcy price)';
    case 'sizing/fee-exceeds-margin-relief':
      return 'the whole position: the fee rate is at least the initial margin, so no partial close restores it';
    case 'sizing/no-partial-restores':
      return `the whole position: no partial close leaves the rest its initial margin (${percentText(im)} of its value)`;
  }
}

/** What the claim recorded (undefined: claimed before session 51, or a record that does not read as them). */
const claimedFactsOf = (l: LiquidationRecord): ClaimedFacts | undefined =>
  l.context?.claimed === undefined ? undefined : decodeClaimedFacts(l.context.claimed);

/** A price the margin formulas give, or null when none is positive (ShownClaim.liquidationPrice). */
const positivePrice = (price: PriceE8): string | null => (price > 0n ? formatPrice(price) : null);

function claimOf(l: LiquidationRecord, c: ClaimedFacts, plannedSize: BaseE8): ShownClaim | undefined {
  const position = { side: l.side, ...c.position };
  let liquidation: PriceE8;
  let bankruptcy: PriceE8;
  try {
    liquidation = liquidationPrice(position, c.maintenanceMargin);
    bankruptcy = bankruptcyPrice(position);
  } catch {
    // A record no claim could have written (an edit by hand): shown without what it claimed, not a failed command.
    return undefined;
  }
  return {
    position: {
      size: formatBase(c.position.size),
      collateral: formatQuote(c.position.collateral),
      entryPrice: formatPrice(c.position.entryPrice),
    },
    liquidationPrice: positivePrice(liquidation),
    bankruptcyPrice: positivePrice(bankruptcy),
    maintenanceMargin: formatPpm(c.maintenanceMargin),
    initialMargin: formatPpm(c.initialMargin),
    liquidationFee: formatPpm(c.liquidationFee),
    slippageBound: formatPpm(c.slippageBound),
    ...(c.sizing
      ? {
          sizing: {
            reason: c.sizing,
            percentOfPosition: percentOf(plannedSize, c.position.size),
            why: sizingWhy(c.sizing, c.initialMargin, plannedSize === c.position.size),
          },
        }
      : {}),
    ...(c.markTick
      ? {
          markTick: {
            sequence: c.markTick.sequence,
            ...(c.markTick.indexPrice === undefined
              ? {}
              : { indexPrice: formatPrice(c.markTick.indexPrice) }),
          },
        }
      : {}),
    configDigest: c.configDigest ?? null,
  };
}

/**
 * The market fills with their slippage against the execution mark; the last-resort order's fills, which a settlement
 * appends to the market's (the plan's lastResortFills, the last ones), flagged and not measured against that mark.
 */
function marketFillsOf(l: LiquidationRecord): ShownMarketFill[] {
  const c = l.context;
  const lastResort = l.settlement ? (c?.settle?.lastResortFills?.length ?? 0) : 0;
  const firstLastResort = l.marketFills.length - lastResort;
  return l.marketFills.map((f, i) => {
    if (i >= firstLastResort) return { ...fillOf(f), lastResort: true };
    if (!c || c.executionMark <= 0n) return fillOf(f);
    const against = l.side === 'LONG' ? c.executionMark - f.price : f.price - c.executionMark;
    return { ...fillOf(f), slippagePercent: percentOf(against, c.executionMark) };
  });
}

function contextOf(l: LiquidationRecord): ShownContext | undefined {
  const c = l.context;
  if (!c) return undefined;
  const waits = c.lastResortWait?.waits ?? 0;
  const attempts = c.lastResortAttempt ?? 0;
  const order = c.lastResortOrder;
  const plan = c.settle;
  const facts = claimedFactsOf(l);
  const claimed = facts ? claimOf(l, facts, c.plannedSize) : undefined;
  return {
    plannedSize: formatBase(c.plannedSize),
    ...(c.marketOrderSize === undefined ? {} : { marketOrderSize: formatBase(c.marketOrderSize) }),
    executionMark: formatPrice(c.executionMark),
    ...(c.executionMarkAtMs === undefined ? {} : { executionMarkAt: iso(c.executionMarkAtMs) }),
    ...(c.limitPrice === undefined ? {} : { limitPrice: formatPrice(c.limitPrice) }),
    ...(claimed
      ? { claimed }
      : { claimedMissing: c.claimed === undefined ? 'predates-claim-facts' : 'does-not-read' }),
    ...(c.positionVersion === undefined ? {} : { positionVersion: c.positionVersion }),
    ...(c.settledMark === undefined ? {} : { settledMark: formatPrice(c.settledMark) }),
    ...(waits > 0 || attempts > 0 || order
      ? {
          waitsForBook: {
            waits,
            ordersFilledNothing: attempts,
            outraced: c.lastResortOutraced ?? 0,
            ...(order
              ? {
                  pendingOrder: {
                    attempt: order.attempt,
                    size: formatBase(order.size),
                    limitPrice: formatPrice(order.limitPrice),
                  },
                }
              : {}),
          },
        }
      : {}),
    ...(c.lease ? { lease: { owner: c.lease.owner, until: iso(c.lease.untilMs) } } : {}),
    ...(c.adlRound
      ? {
          adlRound: {
            round: c.adlRound.round,
            ...(c.adlRound.confirm
              ? { confirmAt: iso(c.adlRound.confirm.atMs), confirmMark: formatPrice(c.adlRound.confirm.mark) }
              : {}),
          },
        }
      : {}),
    ...(plan
      ? {
          plan: {
            at: iso(plan.nowMs),
            mark: formatPrice(plan.mark),
            fundBalance: formatQuote(plan.insurance.balance),
            fundDrawnInWindow: formatQuote(plan.insurance.windowDrawn),
            position: {
              size: formatBase(plan.position.size),
              collateral: formatQuote(plan.position.collateral),
              entryPrice: formatPrice(plan.position.entryPrice),
            },
            ...(plan.lastResortFills ? { lastResortFills: plan.lastResortFills.map(fillOf) } : {}),
            ...(plan.replans === undefined ? {} : { replans: plan.replans }),
            ...(plan.superseded ? { superseded: true } : {}),
          },
        }
      : {}),
  };
}

/**
 * ADL's closes in the settlement, from the plan's frozen inputs: the waterfall (domain/waterfall.ts) gives ADL the
 * size no other layer closed and the deficit the fund refused, among the frozen candidates at the plan's mark, so
 * allocateAdl on them is the allocation the settlement committed. Checked against the recorded amounts (the size ADL
 * closed; the deficit it covered, when no round followed; some left uncovered, when rounds did) and against the
 * frozen list itself, which holds only the counterparties the plan used (freeze): undefined, with the reason, when
 * they differ (a record of another version's plan, whose totals may agree while its split does not).
 */
export function adlClosesOf(l: LiquidationRecord): {
  readonly fills?: ReturnType<typeof allocateAdl>['fills'];
  readonly note?: string;
} {
  const s = l.settlement;
  const plan = l.context?.settle;
  if (!s || (s.adlClosedSize === 0n && s.adlCovered === 0n && s.badDebt === 0n)) return {};
  if (!plan?.candidates)
    return { note: 'the record keeps no plan of ADL (its counterparties are not recorded on it)' };
  let allocation: ReturnType<typeof allocateAdl>;
  try {
    allocation = allocateAdl({
      // The fund's refusal: what the fund did not pay of the shortfall (rounds move only covered vs uncovered).
      deficit: s.shortfall - s.insurancePaid,
      bankruptPosition: { side: l.side, size: s.adlClosedSize + s.carriedSize },
      ranked: plan.candidates,
      mark: plan.mark,
    });
  } catch (error) {
    // A record no plan of this version's could have made: shown without its counterparties, not a failed command.
    return { note: `the plan's inputs give no ADL allocation (${(error as Error).message})` };
  }
  const rounds = (l.context?.adlRounds ?? 0) > 0 || l.context?.adlRound !== undefined;
  // Rounds follow only a settlement that left some of the deficit uncovered (roundsFollow).
  const agrees =
    allocation.closedSize === s.adlClosedSize &&
    (rounds
      ? allocation.covered <= s.adlCovered && allocation.uncovered > 0n
      : allocation.covered === s.adlCovered);
  if (!agrees)
    return {
      note: `the plan's inputs do not give the settlement's ADL amounts (closed ${formatBase(allocation.closedSize)}, covered ${formatQuote(allocation.covered)}): its counterparties are not shown`,
    };
  // Every counterparty frozen took part in the plan: one left out here was used by rules other than these.
  const used = new Set(allocation.fills.map((f) => f.id));
  const unused = plan.candidates.filter((c) => !used.has(c.id)).map((c) => c.id);
  if (unused.length > 0)
    return {
      note: `the plan froze counterparties this allocation does not use (${unused.slice(0, 3).join(', ')}${unused.length > 3 ? `, ${unused.length - 3} more` : ''}): a plan of another version's, its counterparties are not shown`,
    };
  return { fills: allocation.fills.filter((f) => f.size > 0n || f.pnlGiven > 0n) };
}

/**
 * Each counterparty's rank (ShownAdlRank) in a plan adlClosesOf gives the settlement's allocation for: the frozen
 * candidates are those it took from, in ADL's order. Empty when it gives none (its order is not the settlement's).
 */
export function adlRanksOf(l: LiquidationRecord): ReadonlyMap<string, ShownAdlRank> {
  const plan = l.context?.settle;
  if (!plan?.candidates || !adlClosesOf(l).fills) return new Map();
  const ranked = rankForAdl(plan.candidates, plan.mark, l.side);
  return new Map(
    ranked.map((c, i) => {
      const pnl16 = pnlE16(c.side, c.size, c.entryPrice, plan.mark);
      const equity16 = c.collateral * NOTIONAL_TO_QUOTE + pnl16;
      return [
        c.id,
        {
          place: i + 1,
          of: ranked.length,
          ...(c.collateral > 0n
            ? { profitPercentOfCollateral: percentOf(c.unrealizedPnl, c.collateral) }
            : {}),
          effectiveLeverage: formatDecimal((c.size * plan.mark * 100n) / equity16, 2),
        },
      ] as const;
    }),
  );
}

/**
 * Whether the settlement closed what was left of the position, its payout the trader's, or left a rest that keeps
 * it (applySettlement: the position after it is its size less the slice plus what was carried). Without a frozen
 * plan the position itself tells: the settlement wrote the version after the one it worked on, CLOSED only when it
 * closed it whole, and a closed position is never written again.
 */
function payoutTo(l: LiquidationRecord, position: PositionRecord | undefined): 'trader' | 'rest' | undefined {
  const s = l.settlement;
  const c = l.context;
  if (!s || !c) return undefined;
  if (s.carriedSize > 0n || c.nextLiquidationId !== undefined) return 'rest';
  if (c.settle) return c.settle.position.size > c.plannedSize ? 'rest' : 'trader';
  const worked = c.positionVersion;
  if (worked === undefined || !position || position.version <= worked) return undefined;
  return position.version === worked + 1 && position.state === 'CLOSED' ? 'trader' : 'rest';
}

/**
 * The settlement's fee against the rate the claim recorded, on every close's notional as the waterfall charges it
 * (domain/waterfall.ts: the market's fills with the last resort's, the auction's, ADL's size at the plan's mark), and
 * what the trader paid of it (accounting.ts: its equity after the closes less what was left to it or to the rest).
 * Only when the records hold every close: their sizes must be the settlement's, layer by layer.
 */
function feeBasisOf(
  l: LiquidationRecord,
  auction: AuctionRecord | undefined,
  to: 'trader' | 'rest' | undefined,
): ShownSettlement['feeBasis'] {
  const s = l.settlement;
  const claimed = claimedFactsOf(l);
  const plan = l.context?.settle;
  if (!s || !claimed) return undefined;
  const auctionFills = plan?.auctionFills ?? auction?.fills ?? [];
  if (sizeOf(l.marketFills) !== s.marketClosedSize || sizeOf(auctionFills) !== s.auctionClosedSize)
    return undefined;
  if (s.adlClosedSize > 0n && !plan) return undefined;
  let notional16 = 0n;
  for (const f of [...l.marketFills, ...auctionFills]) notional16 += f.size * f.price;
  if (plan) notional16 += s.adlClosedSize * plan.mark;
  const rate = claimed.liquidationFee;
  const atRate = div(notional16 * rate, NOTIONAL_TO_QUOTE * PPM_SCALE, 'ceil');
  const equity = claimed.position.collateral + s.realizedPnl;
  // Without where the payout went there was no plan: no ADL's rounding nor a kept fee added to it, so paid = fee.
  const paid =
    to === 'trader' ? maxBig(0n, equity) - s.traderPayout : to === 'rest' ? equity - s.traderPayout : s.fee;
  return {
    rate: formatPpm(rate),
    closedNotional: formatQuote(div(notional16, NOTIONAL_TO_QUOTE, 'floor')),
    atRate: formatQuote(atRate),
    paid: formatQuote(paid),
    credited: formatQuote(s.fee),
    how: paid === atRate ? 'at-rate' : paid < atRate ? 'capped' : 'above-rate',
  };
}

/** What the trader lost of the collateral the claim read (ShownSettlement.traderLoss). */
function traderLossOf(
  l: LiquidationRecord,
  to: 'trader' | 'rest' | undefined,
): ShownSettlement['traderLoss'] {
  const s = l.settlement;
  const collateral = claimedFactsOf(l)?.position.collateral ?? l.context?.settle?.position.collateral;
  if (!s || collateral === undefined || to === undefined) return undefined;
  const equity = collateral + s.realizedPnl;
  return {
    collateral: formatQuote(collateral),
    lost: formatQuote(collateral - s.traderPayout),
    beyondCollateral: formatQuote(to === 'trader' && equity < 0n ? -equity : 0n),
    restDeficit: formatQuote(to === 'rest' && s.traderPayout < 0n ? -s.traderPayout : 0n),
  };
}

async function settlementOf(
  l: LiquidationRecord,
  adapters: ShowAdapters,
  position: PositionRecord | undefined,
  auction: AuctionRecord | undefined,
): Promise<ShownSettlement | undefined> {
  const s = l.settlement;
  if (!s) return undefined;
  const amounts = Object.fromEntries(
    (Object.keys(SETTLEMENT_UNITS) as (keyof SettlementAmounts)[]).map((k) => [
      k,
      SETTLEMENT_UNITS[k] === 'base' ? formatBase(s[k]) : formatQuote(s[k]),
    ]),
  ) as Record<keyof SettlementAmounts, string>;
  const terminal = [...l.history].reverse().find((e) => isTerminal(e.state));
  const { fills, note } = adlClosesOf(l);
  let closes: ShownAdlClose[] | undefined;
  if (fills) {
    const versions = new Map((l.context?.settle?.candidates ?? []).map((c) => [c.id, c.version]));
    const ranks = adlRanksOf(l);
    const now = new Map(
      (await adapters.reader.positions(fills.map((f) => f.id))).map((p) => [p.id, p] as const),
    );
    closes = fills.map((f) => {
      const p = now.get(f.id);
      return {
        positionId: f.id,
        closedSize: formatBase(f.size),
        price: formatPrice(f.price),
        profitGiven: formatQuote(f.pnlGiven),
        haircut: formatQuote(f.haircut),
        planVersion: versions.get(f.id) ?? -1,
        ...(ranks.has(f.id) ? { rank: ranks.get(f.id)! } : {}),
        ...(p ? { now: { state: p.state, size: formatBase(p.size), version: p.version } } : {}),
      };
    });
  }
  const to = payoutTo(l, position);
  const feeBasis = feeBasisOf(l, auction, to);
  const traderLoss = traderLossOf(l, to);
  return {
    ...(terminal?.note ? { settledBy: terminal.note } : {}),
    amounts,
    ...(feeBasis ? { feeBasis } : {}),
    ...(traderLoss ? { traderLoss } : {}),
    ...(to ? { payoutTo: to } : {}),
    adl: {
      ...(closes ? { closes } : {}),
      rounds: l.context?.adlRounds ?? l.context?.adlRound?.round ?? 0,
      owesRounds: l.context?.adlRound !== undefined,
      ...(note ? { note } : {}),
    },
  };
}

const positionOf = (p: PositionRecord): ShownPosition => ({
  id: p.id,
  traderId: p.traderId,
  state: p.state,
  size: formatBase(p.size),
  collateral: formatQuote(p.collateral),
  entryPrice: formatPrice(p.entryPrice),
  ...(p.closedPayout === undefined ? {} : { closedPayout: formatQuote(p.closedPayout) }),
  version: p.version,
});

/** When an auction fill was made, as the auction or its provider's record keeps it. */
type FillTime = Pick<ProviderFill, 'step' | 'atMs' | 'mark'>;

/** The fill's own time, recorded on the auction with it (AuctionFill: made since session 52). */
const ownTimeOf = (f: AuctionFill): FillTime | undefined =>
  f.step === undefined || f.atMs === undefined || f.mark === undefined
    ? undefined
    : { step: f.step, atMs: f.atMs, mark: f.mark };

/**
 * The times of an auction's older fills (without their own: ownTimeOf) from their providers' records, which keep their
 * latest fills. Each fill a record keeps of the auction is one of the provider's fills in it (the step's one write
 * takes both), so a record keeping as many as the provider's untimed fills keeps them all, in step order as the
 * auction lists them. Otherwise a kept fill times a fill only when its size, price and cost are those of exactly one
 * of the provider's untimed fills, and of no other fill the record keeps: a provider that filled alike at two steps,
 * one kept and one let go, leaves both untimed, never guessed. The record's fills of steps the auction times itself,
 * or of steps after the auction as read (a running auction that stepped before its providers were read), are not its
 * fills to match.
 */
function providerTimesOf(
  a: AuctionRecord,
  providers: ReadonlyMap<string, ProviderRecord>,
): (FillTime | undefined)[] {
  const timed: (FillTime | undefined)[] = a.fills.map(() => undefined);
  const alike = (k: ProviderFill, f: AuctionFill) =>
    k.size === f.size && k.price === f.price && (f.cost === undefined || k.cost === f.cost);
  for (const [id, provider] of providers) {
    if (!providerFillsRead(provider.fills)) continue;
    const mine = a.fills.flatMap((f, i) => (f.providerId === id ? [i] : []));
    const ownSteps = new Set(mine.map((i) => ownTimeOf(a.fills[i]!)?.step));
    const untimed = mine.filter((i) => ownTimeOf(a.fills[i]!) === undefined);
    const kept = provider.fills.recent.filter(
      (k) => k.liquidationId === a.liquidationId && k.step < a.step && !ownSteps.has(k.step),
    );
    // Every untimed fill of it kept: one to one, in step order (both lists are).
    if (kept.length === untimed.length && kept.every((k, j) => alike(k, a.fills[untimed[j]!]!))) {
      for (const [j, k] of kept.entries()) timed[untimed[j]!] = k;
      continue;
    }
    for (const k of kept) {
      const matches = untimed.filter((i) => alike(k, a.fills[i]!));
      if (matches.length !== 1) continue;
      const i = matches[0]!;
      if (kept.filter((other) => alike(other, a.fills[i]!)).length === 1) timed[i] = k;
    }
  }
  return timed;
}

const auctionOf = (
  a: AuctionRecord,
  side: string,
  providers: ReadonlyMap<string, ProviderRecord>,
  unread: readonly { readonly providerId: string; readonly reason: string }[],
): ShownAuction => {
  const fromProviders = providerTimesOf(a, providers);
  return {
    id: a.id,
    state: a.state,
    direction: a.direction,
    lot: formatBase(a.lot),
    remainingLot: formatBase(a.remainingLot),
    top: formatPrice(a.top),
    startedAt: iso(a.startedAtMs),
    step: a.step,
    resets: a.resets,
    ...(a.stepDueAtMs === undefined ? {} : { stepDueAt: iso(a.stepDueAtMs) }),
    ...(a.wakeMark === undefined ? {} : { wakeMark: formatPrice(a.wakeMark) }),
    ...(a.endedBy === undefined ? {} : { endedBy: a.endedBy }),
    ...(a.endedAtMark === undefined ? {} : { endedAtMark: formatPrice(a.endedAtMark) }),
    fills: a.fills.map((f, i) => {
      const t = ownTimeOf(f) ?? fromProviders[i];
      return {
        providerId: f.providerId,
        ...fillOf(f),
        ...(t === undefined || t.mark <= 0n
          ? {}
          : {
              step: t.step,
              at: iso(t.atMs),
              mark: formatPrice(t.mark),
              // A long's close sells (below the mark is against the trader), a short's buys.
              slippagePercent: percentOf(side === 'LONG' ? t.mark - f.price : f.price - t.mark, t.mark),
            }),
      };
    }),
    filledSize: formatBase(sizeOf(a.fills)),
    ...(unread.length > 0 ? { providersUnread: unread } : {}),
    ...(a.lastFailure ? { lastFailure: failureOf(a.lastFailure)! } : {}),
  };
};

function journalOf(l: LiquidationRecord, entries: readonly JournalEntry[]): LiquidationShow['journal'] {
  let fee = 0n;
  let paid = 0n;
  for (const e of entries) {
    const key = planKeyOf(e.idempotencyKey);
    if (key === `${l.id}:fee`) fee += e.amount;
    else if (key === `${l.id}:shortfall`) paid -= e.amount;
  }
  const s = l.settlement;
  return {
    account: INSURANCE_ACCOUNT,
    entries: entries.map((e) => ({
      sequence: e.sequence,
      at: iso(e.atMs),
      kind: e.kind,
      key: e.idempotencyKey,
      amount: formatQuote(e.amount),
      balanceAfter: formatQuote(e.balanceAfter),
      ...(e.actor === undefined ? {} : { actor: e.actor }),
    })),
    fee: formatQuote(fee),
    fundPaid: formatQuote(paid),
    ...(s && isTerminal(l.state) ? { agreesWithSettlement: fee === s.fee && paid === s.insurancePaid } : {}),
  };
}

/**
 * Why a settlement started this next slice (applySettlement): its rest, as this slice's claim read it, still past its
 * liquidation price at the settlement's mark (the trigger mark), or else below the market's dust size.
 */
function restWasOf(l: LiquidationRecord): LiquidationShow['liquidation']['restWas'] {
  const claimed = claimedFactsOf(l);
  if (!claimed) return undefined;
  try {
    const rest = { side: l.side, ...claimed.position };
    return isLiquidatable(rest, l.triggerMark, claimed.maintenanceMargin) ? 'past-liquidation-price' : 'dust';
  } catch {
    // A record no claim could have written (an edit by hand): not judged.
    return undefined;
  }
}

/**
 * The records of the providers of an auction's fills that carry no time of their own (made before session 52), read by
 * key (their times may be on them): a read that fails (credentials without `dynamodb:GetItem` on the providers table,
 * a record that does not read) is said, not fatal.
 */
async function providersOf(
  adapters: ShowAdapters,
  auction: AuctionRecord,
): Promise<{
  readonly read: ReadonlyMap<string, ProviderRecord>;
  readonly unread: { readonly providerId: string; readonly reason: string }[];
}> {
  const read = new Map<string, ProviderRecord>();
  const unread: { providerId: string; reason: string }[] = [];
  const ids = [...new Set(auction.fills.filter((f) => ownTimeOf(f) === undefined).map((f) => f.providerId))];
  await eachInFlight(ids, READS_IN_FLIGHT, async (id) => {
    try {
      const p = await adapters.providers.get(id);
      if (p) read.set(id, p);
    } catch (error) {
      unread.push({ providerId: id, reason: (error as Error).message });
    }
  });
  unread.sort((a, b) => (a.providerId < b.providerId ? -1 : 1));
  return { read, unread };
}

/** The liquidation `id` and what it led to, read by key; undefined when there is no such liquidation. */
export async function collectLiquidation(
  adapters: ShowAdapters,
  id: string,
): Promise<LiquidationShow | undefined> {
  const l = await adapters.liquidations.get(id);
  if (!l) return undefined;
  const [position, auction, entries] = await Promise.all([
    adapters.positions.get(l.positionId),
    adapters.auctions.get(l.context?.auctionId ?? auctionIdOf(l.id)),
    // The fund's entries keyed `<liquidation id>:...` (a key range of its journal, read strongly: Ledger.entriesOf).
    adapters.ledger.entriesOf(INSURANCE_ACCOUNT, l.id),
  ]);
  const providers = auction ? await providersOf(adapters, auction) : undefined;
  const base = baseOf(l.symbol);
  const quote = quoteOf(l.symbol);
  const first = l.history[0]?.note;
  const previous = first?.startsWith(`${NEXT_SLICE_NOTE} `)
    ? first.slice(NEXT_SLICE_NOTE.length + 1)
    : undefined;
  const context = contextOf(l);
  const restWas = previous === undefined ? undefined : restWasOf(l);
  const sequence = /#(\d+)$/.exec(l.tickKey)?.[1];
  const tickSequence = sequence === undefined ? undefined : Number(sequence);
  const settlement = await settlementOf(l, adapters, position, auction);
  return {
    liquidation: {
      id: l.id,
      positionId: l.positionId,
      symbol: l.symbol,
      side: l.side,
      base,
      quote,
      state: l.state,
      open: isOpenLiquidation(l),
      startedAt: iso(l.history[0]?.atMs ?? 0),
      startedBy: previous ? 'previous-slice' : 'tick',
      ...(restWas ? { restWas } : {}),
      tickKey: l.tickKey,
      ...(tickSequence === undefined ? {} : { tickSequence }),
      triggerMark: formatPrice(l.triggerMark),
      remainingSize: formatBase(l.remainingSize),
      history: l.history.map((e) => {
        const note = e.note === undefined ? undefined : decodeNote(e.note, base, quote);
        return {
          at: iso(e.atMs),
          state: e.state,
          ...(note === undefined ? {} : { note }),
          ...(note !== undefined && note !== e.note ? { storedNote: e.note } : {}),
        };
      }),
      marketFills: marketFillsOf(l),
      marketFilledSize: formatBase(sizeOf(l.marketFills)),
      ...(l.lastFailure ? { lastFailure: failureOf(l.lastFailure)! } : {}),
      ...(l.markDisputedSinceMs === undefined ? {} : { markDisputedSince: iso(l.markDisputedSinceMs) }),
      slices: {
        ...(previous ? { previous } : {}),
        ...(l.context?.nextLiquidationId ? { next: l.context.nextLiquidationId } : {}),
      },
      ...(context ? { context } : {}),
      version: l.version,
    },
    ...(position ? { position: positionOf(position) } : {}),
    ...(auction && providers
      ? { auction: auctionOf(auction, l.side, providers.read, providers.unread) }
      : {}),
    ...(settlement ? { settlement } : {}),
    journal: journalOf(l, entries),
  };
}

/** Most of a position's versions `--position` reads (the liquidation each may have started, by key). */
export const MAX_POSITION_VERSIONS_READ = 1000;
/** Liquidation ids per read of the batch reader (a BatchGetItem's 100 keys on AWS), and reads in flight. */
const IDS_PER_READ = 100;
const READS_IN_FLIGHT = 4;

export interface PositionLiquidations {
  readonly position: ShownPosition & { readonly symbol: string; readonly side: string };
  readonly liquidations: readonly {
    readonly id: string;
    readonly state: LiquidationState;
    readonly open: boolean;
    readonly startedAt: string;
    readonly plannedSize?: string;
    /**
     * As recorded: before the market layer, the size to close; after it, what it left to the layers after it (on an
     * ended liquidation, not what is still open: the text shows it only while the liquidation has not ended).
     */
    readonly remainingSize: string;
    /** The terminal event's note: the layers that settled it (`market>auction`), or why it was cancelled. */
    readonly outcome?: string;
  }[];
  /** Versions before this one were not read (more than MAX_POSITION_VERSIONS_READ); absent: every one was. */
  readonly unreadBelowVersion?: number;
  /**
   * The liquidations whose ADL reduced or closed this position (as their counterparty), from its record: absent when
   * ADL never took from it (or only before session 47, whose records keep none).
   */
  readonly deleveragedBy?: {
    /** Every ADL event recorded on the position: more than `events` when older ones were let go. */
    readonly total: number;
    /** The latest (MAX_ADL_EVENTS_KEPT), the oldest first. */
    readonly events: readonly ShownAdlEvent[];
  };
  /**
   * Lists of ADL events on the record in a shape this version cannot read (a later version's, an edit by hand),
   * each with why: kept on the record as they are. `current`: the position's list (no `deleveragedBy` then); else
   * one set aside when an event started a new list (follow47-adl-events-unreadable). Absent: none.
   */
  readonly unreadableAdlEvents?: readonly { readonly reason: string; readonly current: boolean }[];
}

/** One ADL close or haircut a position took as a counterparty (Position.adlEvents). */
export interface ShownAdlEvent {
  /** The liquidation whose rest or deficit it took. */
  readonly liquidationId: string;
  /** 0: the liquidation's settlement; n: its n-th ADL round after it. */
  readonly round: number;
  readonly at: string;
  /** Size closed at the mark (0: profit taken only, a haircut). */
  readonly closedSize: string;
  readonly mark: string;
  /** The effective close price (informational: the money that moved is profitGiven). */
  readonly price: string;
  /** Profit it gave up to cover the deficit, haircut included. */
  readonly profitGiven: string;
  readonly haircut: string;
  /**
   * Why ADL took from this position, from its liquidation's plan (ShownAdlRank). Absent: an ADL round's (a round's
   * counterparties are not recorded on the liquidation), or a plan that does not give its settlement's ADL amounts.
   */
  readonly rank?: ShownAdlRank;
}

const adlEventOf = (e: AdlEvent, rank: ShownAdlRank | undefined): ShownAdlEvent => ({
  liquidationId: e.liquidationId,
  round: e.round,
  at: iso(e.atMs),
  closedSize: formatBase(e.size),
  mark: formatPrice(e.mark),
  price: formatPrice(e.price),
  profitGiven: formatQuote(e.given),
  haircut: formatQuote(e.haircut),
  ...(rank ? { rank } : {}),
});

/**
 * The liquidations of a position: a liquidation's id is `<position id>:<version>`, the version of the position it
 * started on, so the liquidations of a position are found by key among the ids of its versions up to its current
 * one (the liquidations table has no index by position, and a Scan is not an operator's read). And the liquidations
 * whose ADL took from it, as its record names them (adl47-who-closed). Undefined: no such position.
 */
export async function collectPositionLiquidations(
  adapters: ShowAdapters,
  positionId: string,
): Promise<PositionLiquidations | undefined> {
  const p = await adapters.positions.get(positionId);
  if (!p) return undefined;
  const from = Math.max(0, p.version + 1 - MAX_POSITION_VERSIONS_READ);
  const versions = Array.from({ length: p.version + 1 - from }, (_, i) => from + i);
  const found: { readonly startedOn: number; readonly l: LiquidationRecord }[] = [];
  // A BatchGetItem of 100 ids at a time, not a GetItem per version (ops47-show-batch-get: 1,000 calls for a position
  // of 1,000 versions).
  const versionOf = new Map(versions.map((v) => [`${positionId}:${v}`, v]));
  await eachInFlight(chunksOf([...versionOf.keys()], IDS_PER_READ), READS_IN_FLIGHT, async (ids) => {
    for (const l of await adapters.reader.liquidations(ids))
      if (l.positionId === positionId) found.push({ startedOn: versionOf.get(l.id)!, l });
  });
  // In the order they started: each starts on a later version of the position than the one before. Not by time: a
  // tick's is the feed's clock (up to its skew ahead), a next slice's the function's, and reads complete in any order.
  found.sort((a, b) => a.startedOn - b.startedOn);
  // Why ADL took from it: the plans of the settlements that did, read by key (a round's counterparties are not kept).
  const ranks = new Map<string, ShownAdlRank>();
  if (adlEventsRead(p.adlEvents)) {
    const settledBy = [
      ...new Set(p.adlEvents.recent.filter((e) => e.round === 0).map((e) => e.liquidationId)),
    ];
    for (const l of settledBy.length > 0 ? await adapters.reader.liquidations(settledBy) : []) {
      const rank = adlRanksOf(l).get(positionId);
      if (rank) ranks.set(l.id, rank);
    }
  }
  const base = baseOf(p.symbol);
  const unreadable = [
    ...setAsideList(p.adlEventsSetAside).map((e) => ({ reason: e.unreadable, current: false })),
    ...(p.adlEvents && !adlEventsRead(p.adlEvents)
      ? [{ reason: p.adlEvents.unreadable, current: true }]
      : []),
  ];
  return {
    position: { ...positionOf(p), symbol: p.symbol, side: p.side },
    liquidations: found.map(({ l }) => {
      const terminal = [...l.history].reverse().find((e) => isTerminal(e.state));
      return {
        id: l.id,
        state: l.state,
        open: isOpenLiquidation(l),
        startedAt: iso(l.history[0]?.atMs ?? 0),
        ...(l.context ? { plannedSize: formatBase(l.context.plannedSize) } : {}),
        remainingSize: formatBase(l.remainingSize),
        ...(terminal?.note ? { outcome: decodeNote(terminal.note, base, quoteOf(p.symbol)) } : {}),
      };
    }),
    ...(from > 0 ? { unreadBelowVersion: from } : {}),
    ...(adlEventsRead(p.adlEvents)
      ? {
          deleveragedBy: {
            // A count below the events kept (an edit by hand) is not shown as fewer than listed.
            total: Math.max(p.adlEvents.total, p.adlEvents.recent.length),
            events: p.adlEvents.recent.map((e) =>
              adlEventOf(e, e.round === 0 ? ranks.get(e.liquidationId) : undefined),
            ),
          },
        }
      : {}),
    ...(unreadable.length > 0 ? { unreadableAdlEvents: unreadable } : {}),
  };
}

// --- Text --------------------------------------------------------------------------------------------------

/** The failed delivery's receive count (0: not known). */
const receiveOf = (f: ShownFailure): string => (f.attempt > 0 ? `receive ${f.attempt}` : 'receive unknown');

const plural = (n: number, one: string, many: string): string =>
  n === 0 ? `no ${one}` : counted(n, one, many);

/** A position as it is now: a CLOSED one by what it paid out (its stored size is its last, or 0). */
const nowOf = (p: ShownPosition, base: string, quote: string): string =>
  p.state === 'CLOSED'
    ? `CLOSED${p.closedPayout === undefined ? '' : `, paid out ${money(p.closedPayout, quote)}`} (version ${p.version})`
    : `${p.state}, ${p.size} ${base}, collateral ${money(p.collateral, quote)} (version ${p.version})`;

/** An amount for people: grouped, never rounded (formatQuoteGrouped), from the report's exact decimal. */
const money = (decimal: string, quote: string): string =>
  `${formatQuoteGrouped(parseQuote(decimal, 'amount', { allowNegative: true }))} ${quote}`;

/** The settlement's traderPayout, by where it went (ShownSettlement.payoutTo). */
const PAYOUT_TO = {
  trader: (m: string) => `collateral left to the trader ${m}`,
  rest: (m: string) => `collateral left with the rest of the position ${m}`,
  unknown: (m: string) => `collateral left ${m} (the trader's if it closed the position, else its rest's)`,
} as const;

/** A share as a percent (`0.025`: `2.5 %`). */
const share = (decimal: string): string => percentText(parsePpm(decimal));

/** Why ADL took from a counterparty, in words (ShownAdlRank). */
function rankText(r: ShownAdlRank): string {
  const by = "by profit as a share of collateral x effective leverage at the plan's mark";
  // Among its settlement's counterparties: ADL's later rounds take from others, ranked anew at their own marks.
  const place =
    r.of === 1
      ? `the only counterparty its settlement's ADL took from, ranked first ${by}`
      : `ranked ${ordinal(r.place)} of the ${r.of} counterparties its settlement's ADL took from, ${by}`;
  const profit =
    r.profitPercentOfCollateral === undefined
      ? 'profit on no collateral (which ranks first)'
      : `profit ${r.profitPercentOfCollateral} % of its collateral`;
  return `${place}: ${profit}, effective leverage ${r.effectiveLeverage}x`;
}

/** 1st, 2nd, 3rd, 4th, 11th, 21st. */
function ordinal(n: number): string {
  const teen = n % 100 >= 11 && n % 100 <= 13;
  const suffix = teen ? 'th' : n % 10 === 1 ? 'st' : n % 10 === 2 ? 'nd' : n % 10 === 3 ? 'rd' : 'th';
  return `${n}${suffix}`;
}

/** A market fill's distance from the execution mark, in the trader's words: a long's close sells, a short's buys. */
function fromMark(f: ShownMarketFill, side: string, mark: string | undefined): string {
  if (f.lastResort) return ' (last resort)';
  if (f.slippagePercent === undefined) return '';
  return `, ${distanceFrom('the mark', f.slippagePercent, f.price === mark, side)}`;
}

/** An auction fill's distance from its step's mark, said as a market fill's (fromMark). */
function fromStepMark(f: ShownAuctionFill, side: string, quote: string): string {
  if (f.slippagePercent === undefined || f.mark === undefined) return '';
  return `, ${distanceFrom(`the step's mark ${f.mark} ${quote}`, f.slippagePercent, f.price === f.mark, side)}`;
}

/** `percent` (ShownMarketFill.slippagePercent) from `mark` in words: below or above it, as the trader's close went. */
function distanceFrom(mark: string, percent: string, atMark: boolean, side: string): string {
  if (atMark) return `at ${mark}`;
  // Rounded toward zero to 0.01 %: a fill nearer than that is not at the mark.
  if (percent === '0') return `within 0.01 % of ${mark}`;
  const worse = !percent.startsWith('-');
  // Two decimals always, so a column of fills reads aligned (2.10 %, not 2.1 %).
  const [whole, fraction = ''] = (worse ? percent : percent.slice(1)).split('.');
  return `${whole}.${fraction.padEnd(2, '0')} % ${worse === (side === 'LONG') ? 'below' : 'above'} ${mark}`;
}

/** What the trader lost, and who bore the loss beyond the collateral (ShownSettlement.traderLoss). */
function lossText(
  loss: NonNullable<ShownSettlement['traderLoss']>,
  to: 'trader' | 'rest',
  payout: string,
  quote: string,
): string {
  const amount = (d: string) => money(d, quote);
  const settledWhole = 'the fund and ADL settle what the position leaves once closed whole';
  if (loss.collateral.startsWith('-')) {
    // A rest its earlier slices left below zero: it had no collateral to lose.
    const came = `the position came to this ${to === 'rest' ? 'slice' : 'close'} with a deficit of ${amount(loss.collateral.slice(1))} (collateral below zero: its earlier slices lost more than their collateral), never charged to the trader`;
    if (to === 'rest')
      return `${came}; its rest carries ${loss.restDeficit === '0' ? amount(payout) : `a deficit of ${amount(loss.restDeficit)}`} after this slice, and ${settledWhole}`;
    return loss.beyondCollateral === '0'
      ? `${came}; this close's gains filled it, and left the trader ${amount(payout)}`
      : `${came}; with this close's loss it came to ${amount(loss.beyondCollateral)} below zero, borne by the fund, ADL or bad debt (the shortfall), never by the trader`;
  }
  if (to === 'rest')
    return loss.restDeficit === '0'
      ? `the position had ${amount(loss.collateral)} of collateral; its rest keeps what is left after the slice (lost ${amount(loss.lost)})`
      : `the slice lost ${amount(loss.lost)}, more than the position's ${amount(loss.collateral)} of collateral: its rest carries the deficit of ${amount(loss.restDeficit)} (collateral below zero), not charged to the trader; the rest's later gains fill it, and ${settledWhole}`;
  return loss.beyondCollateral === '0'
    ? `the trader lost ${amount(loss.lost)} of its ${amount(loss.collateral)} of collateral`
    : `the trader lost all of its collateral, ${amount(loss.collateral)}; the close lost ${amount(loss.beyondCollateral)} more, borne by the fund, ADL or bad debt (the shortfall), never by the trader`;
}

/** The fee the trader paid against its rate, and what the fund received as the fee beyond it (ShownSettlement.feeBasis). */
function feeText(s: ShownSettlement, plan: ShownContext['plan'], quote: string): string {
  const fee = s.feeBasis!;
  const amount = (d: string) => money(d, quote);
  const atRate = `the rate in force when it was claimed, ${share(fee.rate)}, of the closed notional ${amount(fee.closedNotional)}`;
  const capAt =
    s.payoutTo === 'rest'
      ? 'what leaves the whole position solvent at the mark'
      : s.payoutTo === 'trader'
        ? 'what the close left the trader'
        : 'what the close left the trader (a slice: what leaves the whole position solvent at the mark)';
  const paid = `the trader paid ${amount(fee.paid)}: ${
    fee.how === 'at-rate'
      ? `${atRate} (rounded up)`
      : fee.how === 'capped'
        ? `${atRate} is ${amount(fee.atRate)}, capped at ${capAt}`
        : `${atRate} is ${amount(fee.atRate)}; the rest, a fee an earlier plan of this settlement credited, the fund's floor kept out of what the close left the trader`
  }`;
  const credited = parseQuote(fee.credited);
  const more = credited - parseQuote(fee.paid);
  if (more <= 0n) return paid;
  // Beyond what the trader paid (waterfall.ts): ADL's closes' rounding (creditCloseRounding), a fee kept past what
  // the trader had left (chargeFee: that part is shortfall); the records do not tell the two apart.
  const adl = s.amounts.adlClosedSize !== '0';
  const replanned = (plan?.replans ?? 0) > 0;
  const why = [
    ...(adl
      ? ["what ADL's counterparties' closes at the mark rounded away (whole units, never the trader's)"]
      : []),
    ...(replanned || !adl
      ? [
          "a fee an earlier plan of this settlement credited that the fund's floor kept beyond what the trader had left (in the shortfall)",
        ]
      : []),
  ].join(', or ');
  return `${paid}; the fund received ${amount(fee.credited)}, ${amount(formatQuote(more))} more: ${why}`;
}

export function renderLiquidation(r: LiquidationShow): string {
  const l = r.liquidation;
  const { base, quote } = l;
  const size = (s: string) => `${s} ${base}`;
  const price = (p: string) => `${p} ${quote}`;
  const out: string[] = [];
  out.push(
    `liquidation ${l.id}: ${l.symbol} ${l.side}, ${l.state}${r.settlement?.adl.owesRounds ? ' (owes ADL rounds)' : l.open ? ' (open)' : ''}`,
  );
  const c = l.context;
  const claimed = c?.claimed;
  const p = r.position;
  out.push(
    p
      ? `  position     ${p.id} of trader ${p.traderId}, entry ${price(p.entryPrice)}; now ${nowOf(p, base, quote)}`
      : `  position     ${l.positionId}: no record`,
  );
  out.push(
    l.startedBy === 'tick'
      ? `  trigger      mark ${price(l.triggerMark)} of tick ${l.tickSequence ?? l.tickKey} (${l.tickKey}), stamped ${l.startedAt} by the feed`
      : `  trigger      started ${l.startedAt} by the settlement of the previous slice, ${l.slices.previous}: ${
          l.restWas === 'past-liquidation-price'
            ? `the rest was still past its liquidation price at mark ${price(l.triggerMark)}`
            : l.restWas === 'dust'
              ? `the rest was below the market's dust size, closed whatever its health (${claimed?.liquidationPrice === null ? 'it had no liquidation price: its collateral covered any price' : `not past its liquidation price at mark ${price(l.triggerMark)}`})`
              : `the rest was still past its liquidation price at mark ${price(l.triggerMark)}, or below the market's dust size`
        }`,
  );
  if (claimed) {
    const q = claimed.position;
    const long = l.side === 'LONG';
    const liquidationAt =
      claimed.liquidationPrice === null
        ? long
          ? 'no liquidation price: its collateral covers any price'
          : 'no liquidation price: its equity is below the maintenance margin at any price'
        : `liquidation price ${price(claimed.liquidationPrice)} (equity at the maintenance margin, ${share(claimed.maintenanceMargin)} of its value)`;
    const bankruptAt =
      claimed.bankruptcyPrice === null
        ? long
          ? 'no bankruptcy price: its equity stays above zero at any price'
          : 'no bankruptcy price: its equity is below zero at any price'
        : `bankruptcy price ${price(claimed.bankruptcyPrice)} (equity zero)`;
    out.push(
      `  at claim     position ${size(q.size)}, entry ${price(q.entryPrice)}, collateral ${money(q.collateral, quote)}: ${liquidationAt}${claimed.liquidationPrice === null || claimed.bankruptcyPrice === null ? ';' : ','} ${bankruptAt}`,
    );
    out.push(
      claimed.configDigest === null
        ? '  config       which risk configuration the claim applied is not recorded (claimed before session 52, or by an earlier version during its deploy)'
        : `  config       the claim applied the risk configuration whose digest begins ${claimed.configDigest} (a stack's RiskConfigDigest output; backstop config digest --config FILE prints a file's)`,
    );
  } else if (c?.claimedMissing)
    out.push(
      c.claimedMissing === 'predates-claim-facts'
        ? '  at claim     not recorded: this liquidation predates recorded claim facts (claimed before session 51, or by an earlier version during its deploy), so no prices, sizing or fee rate at the claim are shown'
        : '  at claim     recorded in a form this version cannot read (an edit by hand, or a later version), so none of it is shown',
    );
  if (c) {
    const tick = claimed?.markTick;
    const markOf = tick
      ? ` (tick ${tick.sequence}${c.executionMarkAt ? ` of ${c.executionMarkAt}` : ''}${tick.indexPrice ? `, index ${price(tick.indexPrice)}` : ''})`
      : c.executionMarkAt
        ? ` (of ${c.executionMarkAt})`
        : '';
    // The market-only baseline (no sizing) bounds nothing: a buy's limit is a thousand times the mark.
    const bound = !claimed
      ? ''
      : claimed.sizing
        ? ` (the mark ${l.side === 'LONG' ? 'less' : 'plus'} the slippage bound, ${share(claimed.slippageBound)})`
        : ' (the market-only baseline: no bound)';
    out.push(
      `  execution    ${size(c.plannedSize)} planned at mark ${price(c.executionMark)}${markOf}${c.limitPrice ? `, limit ${price(c.limitPrice)}${bound}` : ''}${c.marketOrderSize === undefined ? '' : `, market order ${size(c.marketOrderSize)} (its whole lots)`}`,
    );
    if (claimed?.sizing)
      out.push(
        `  sized        ${claimed.sizing.percentOfPosition} % of the position's ${size(claimed.position.size)}: ${claimed.sizing.why}`,
      );
    else if (claimed) out.push('  sized        the whole position (the market-only baseline)');
  }
  if (l.slices.previous || l.slices.next)
    out.push(
      `  slices       ${[l.slices.previous ? `previous ${l.slices.previous}` : '', l.slices.next ? `next ${l.slices.next}` : ''].filter(Boolean).join(', ')}`,
    );
  out.push('  history');
  for (const e of l.history) out.push(`    ${e.at} ${e.state}${e.note ? `  ${e.note}` : ''}`);
  out.push(
    `  market fills ${l.marketFills.length === 0 ? 'none' : `${l.marketFills.length}, ${size(l.marketFilledSize)} in all`}`,
  );
  for (const f of l.marketFills)
    out.push(`    ${size(f.size)} at ${price(f.price)}${fromMark(f, l.side, c?.executionMark)}`);
  // The record keeps the size it handed on: at the claim the slice, after the market what it left.
  out.push(
    `  remaining    ${size(l.remainingSize)} (as recorded: what the layers after the market had to close)`,
  );
  if (l.markDisputedSince) out.push(`  mark disputed by the venue since ${l.markDisputedSince}`);
  const w = c?.waitsForBook;
  if (w) {
    out.push(
      `  waits for the book: ${w.waits} so far, ${w.ordersFilledNothing} last-resort orders filled nothing, ${w.outraced} outraced by another slice`,
    );
    if (w.pendingOrder)
      out.push(
        `    order ${w.pendingOrder.attempt} pending: ${size(w.pendingOrder.size)}, limit ${price(w.pendingOrder.limitPrice)}`,
      );
  }
  if (c?.lease) out.push(`  orders held by delivery ${c.lease.owner} until ${c.lease.until}`);
  if (l.lastFailure)
    out.push(`  last failure ${l.lastFailure.at} (${receiveOf(l.lastFailure)}): ${l.lastFailure.reason}`);

  const a = r.auction;
  if (a) {
    const ended =
      a.state === 'RUNNING'
        ? `at step ${a.step}${a.stepDueAt ? ` (due ${a.stepDueAt})` : ''}${a.wakeMark ? `, asleep until mark ${price(a.wakeMark)}` : ''}`
        : `ended at step ${a.step}${a.endedAtMark ? ` at mark ${price(a.endedAtMark)}` : ''}${a.endedBy ? ` (by its ${a.endedBy === 'wake' ? "tick's wake" : 'planned step'})` : ''}`;
    out.push(`auction ${a.id}: ${a.direction} ${a.state}, ${ended}`);
    out.push(
      `  lot          ${size(a.lot)}, ${size(a.filledSize)} filled, ${size(a.remainingLot)} left; top ${price(a.top)}, started ${a.startedAt}, ${counted(a.resets, 'reset', 'resets')}`,
    );
    const untimed = a.fills.filter((f) => f.at === undefined).length;
    out.push(
      `  fills        ${
        a.fills.length === 0
          ? 'none'
          : untimed === 0
            ? "each with its step's time and mark"
            : `${untimed} of ${a.fills.length} without a time: a fill made before session 52 is timed only by its provider's record, which keeps its latest ${MAX_PROVIDER_FILLS_KEPT} fills, and only where it tells the fill from the provider's others in this auction`
      }`,
    );
    for (const f of a.fills)
      out.push(
        `    ${f.providerId}: ${size(f.size)} at ${price(f.price)}${f.cost === undefined ? '' : ` (cost ${money(f.cost, quote)})`}${f.at === undefined ? '' : `, step ${f.step} at ${f.at}${fromStepMark(f, l.side, quote)}`}`,
      );
    for (const u of a.providersUnread ?? [])
      out.push(`    provider ${u.providerId}'s record not read (${u.reason}): its fills' times not shown`);
    if (a.lastFailure)
      out.push(`  last failure ${a.lastFailure.at} (${receiveOf(a.lastFailure)}): ${a.lastFailure.reason}`);
  }

  const plan = c?.plan;
  if (plan) {
    out.push(
      `plan         frozen ${plan.at} at mark ${price(plan.mark)}: position ${size(plan.position.size)}, collateral ${money(plan.position.collateral, quote)}, entry ${price(plan.position.entryPrice)}; fund ${money(plan.fundBalance, quote)} (drawn ${money(plan.fundDrawnInWindow, quote)} in its window)${plan.replans ? `, planned again ${plan.replans} times` : ''}${plan.superseded ? ', being planned again' : ''}`,
    );
    for (const f of plan.lastResortFills ?? [])
      out.push(`  last resort  ${size(f.size)} at ${price(f.price)}`);
  }
  const s = r.settlement;
  if (s) {
    const m = s.amounts;
    out.push(`settlement${s.settledBy ? ` (${s.settledBy})` : ''}`);
    out.push(
      `  closed       market ${size(m.marketClosedSize)} (last resort ${size(m.lastResortClosedSize)}), auction ${size(m.auctionClosedSize)}, ADL ${size(m.adlClosedSize)}; carried to the next slice ${size(m.carriedSize)}`,
    );
    // amounts.fee is what the fund received as the fee, not what the trader paid (feeBasis.paid): each said as such.
    const feeSaid = s.feeBasis
      ? `fee: the trader paid ${money(s.feeBasis.paid, quote)}, the fund received ${money(m.fee, quote)}`
      : `fee: the fund received ${money(m.fee, quote)} (what the trader paid: see fee)`;
    out.push(
      `  trader       realized PnL ${money(m.realizedPnl, quote)}; ${feeSaid}; ${PAYOUT_TO[s.payoutTo ?? 'unknown'](money(m.traderPayout, quote))}`,
    );
    if (s.feeBasis) out.push(`  fee          ${feeText(s, c?.plan, quote)}`);
    else
      out.push(
        `  fee          what the trader paid is not shown: ${
          claimed
            ? "the records do not hold every close's fills the fee was charged on"
            : c?.claimedMissing === 'does-not-read'
              ? 'the fee rate in force when it was claimed is recorded in a form this version cannot read'
              : 'the fee rate in force when it was claimed is not recorded (it predates recorded claim facts)'
        }`,
      );
    const loss = s.traderLoss;
    if (loss) out.push(`  loss         ${lossText(loss, s.payoutTo!, m.traderPayout, quote)}`);
    out.push(
      `  shortfall    ${money(m.shortfall, quote)}: fund paid ${money(m.insurancePaid, quote)}, ADL covered ${money(m.adlCovered, quote)}, ${m.badDebt === '0' ? 'no bad debt' : `BAD DEBT ${money(m.badDebt, quote)}`}`,
    );
    for (const close of s.adl.closes ?? []) {
      const now = close.now
        ? `now ${close.now.state}, ${size(close.now.size)} (version ${close.now.version})`
        : 'no record now';
      out.push(
        `  ADL          ${close.positionId}: ${close.closedSize === '0' ? 'closed nothing (a haircut alone)' : `closed ${size(close.closedSize)} at ${price(close.price)} (effective)`}, gave ${money(close.profitGiven, quote)} (haircut ${money(close.haircut, quote)}), from version ${close.planVersion}; ${now}`,
      );
      if (close.rank) out.push(`               ${rankText(close.rank)}`);
    }
    if (s.adl.note) out.push(`  ADL          ${s.adl.note}`);
    if (s.adl.rounds > 0 || s.adl.owesRounds)
      out.push(
        `  ADL rounds   ${s.adl.rounds} after the settlement${s.adl.owesRounds ? ', more to come' : ''} (their counterparties are not recorded on the liquidation)`,
      );
  }
  const j = r.journal;
  out.push(`ledger       ${j.account}: ${plural(j.entries.length, 'entry', 'entries')} keyed ${l.id}:...`);
  for (const e of j.entries)
    out.push(
      `  #${e.sequence} ${e.at} ${e.kind} ${money(e.amount, quote)} -> ${money(e.balanceAfter, quote)} (${e.key})`,
    );
  if (j.entries.length > 0 || j.agreesWithSettlement === false)
    out.push(
      `  net: fee ${money(j.fee, quote)}, fund paid ${money(j.fundPaid, quote)}${j.agreesWithSettlement === undefined ? '' : j.agreesWithSettlement ? ' (as the settlement says)' : ' (NOT what the settlement says)'}`,
    );
  return `${out.join('\n')}\n`;
}

export function renderPositionLiquidations(r: PositionLiquidations): string {
  const p = r.position;
  const base = baseOf(p.symbol);
  const out = [
    `position ${p.id} of trader ${p.traderId}: ${p.symbol} ${p.side}, entry ${p.entryPrice} ${quoteOf(p.symbol)}; now ${nowOf(p, base, quoteOf(p.symbol))}`,
    r.liquidations.length === 0
      ? '  no liquidation'
      : `  ${plural(r.liquidations.length, 'liquidation', 'liquidations')}, the oldest first:`,
  ];
  for (const l of r.liquidations)
    out.push(
      `  ${l.id} ${l.state}${l.outcome ? ` (${l.outcome})` : ''}${l.open ? ', open' : ''}, started ${l.startedAt}${l.plannedSize ? `, ${l.plannedSize} ${base} planned` : ''}${isTerminal(l.state) ? '' : `, ${l.remainingSize} ${base} remaining`}`,
    );
  if (r.unreadBelowVersion !== undefined)
    out.push(
      `  (versions below ${r.unreadBelowVersion} not read: the latest ${MAX_POSITION_VERSIONS_READ} only)`,
    );
  const adl = r.deleveragedBy;
  if (adl) {
    const quote = quoteOf(p.symbol);
    const kept = adl.events.length;
    const latest = kept === 1 ? 'only the latest kept' : `the latest ${kept} kept`;
    out.push(
      `  deleveraged by ADL ${adl.total === 1 ? 'once' : `${adl.total} times`}${adl.total > kept ? `, ${latest}` : ''}${kept > 1 ? ', the oldest first' : ''}:`,
    );
    for (const e of adl.events) {
      out.push(
        `  ${e.at} by ${e.liquidationId} (${e.round === 0 ? 'its settlement' : `its ADL round ${e.round}`}): ${e.closedSize === '0' ? `closed nothing (a haircut alone, at mark ${e.mark} ${quote})` : `closed ${e.closedSize} ${base} at mark ${e.mark} ${quote} (effective ${e.price} ${quote})`}, gave ${money(e.profitGiven, quote)} (haircut ${money(e.haircut, quote)})`,
      );
      if (e.rank) out.push(`    ${rankText(e.rank)}`);
    }
  }
  for (const u of r.unreadableAdlEvents ?? [])
    out.push(
      u.current
        ? `  ADL events recorded in a shape this version cannot read (${u.reason}): kept on the record as they are`
        : `  an earlier list of ADL events this version cannot read (${u.reason}): set aside on the record as it was when an ADL event started a new list`,
    );
  return `${out.join('\n')}\n`;
}
