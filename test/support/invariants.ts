import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { auctionItem } from '../../shared/adapters/aws/auctions.ts';
import { itemBytes, MAX_ITEM_BYTES } from '../../shared/adapters/aws/item-size.ts';
import { liquidationItem } from '../../shared/adapters/aws/liquidations.ts';
import { SIZED_WRITER, withWriter } from '../../shared/adapters/aws/record-items.ts';
import type { EmbeddedAdapters } from '../../shared/adapters/embedded/index.ts';
import { fillPnlE16 } from '../../shared/domain/accounting.ts';
import { MAX_ADL_EVENTS_KEPT } from '../../shared/domain/adl.ts';
import { bidPrice } from '../../shared/domain/clearing.ts';
import { marketConfig, type RiskConfig } from '../../shared/domain/config.ts';
import { boundedFills } from '../../shared/domain/fills.ts';
import { isLiquidatable, marginE16 } from '../../shared/domain/margin.ts';
import { adlEventsRead, type Fill, isTerminal, type Side, setAsideList } from '../../shared/domain/model.ts';
import {
  auctionFillCost,
  fillEdge,
  type ProviderMarketTotals,
  providerFillsRead,
} from '../../shared/domain/provider-fills.ts';
import {
  div,
  maxBig,
  minBig,
  NOTIONAL_TO_QUOTE,
  PPM_SCALE,
  type PriceE8,
  type QuoteE6,
} from '../../shared/domain/units.ts';
import { SETTLEMENT_UNITS, type SettlementAmounts } from '../../shared/domain/waterfall.ts';
import {
  type AuctionRecord,
  type JournalEntry,
  type LiquidationRecord,
  type OrderRequest,
  type OrderResult,
  type PositionRecord,
  type ProviderRecord,
  type Venue,
  VenueError,
} from '../../shared/ports/index.ts';
import type { LiquidationContext } from '../../shared/services/context.ts';
import { auctionIdOf, MAX_FILLS_PER_ORDER } from '../../shared/services/liquidation.ts';
import { NEXT_SLICE_NOTE } from '../../shared/services/margin-check.ts';
import { reconcileAccount } from '../../shared/services/reconcile.ts';

/**
 * The invariants of issue 7, checked from the records after a scenario: an Observer logs every write the
 * embedded stores make (grouped by atomic operation) and every venue order, and checkInvariants re-derives the
 * money from those records alone, exactly in bigint, then checks states, effects and health. It returns the
 * figures for docs/RELIABILITY.md and a list of violations (empty when every invariant holds).
 */

// --- Observation -------------------------------------------------------------------------------------------

export type RecordKind = 'position' | 'liquidation' | 'auction' | 'provider';

export interface LoggedWrite {
  readonly kind: RecordKind;
  /** The record replaced (undefined: created). */
  readonly before: unknown;
  readonly after: unknown;
}

/** Writes applied by one atomic operation (a transaction, a begin, a single put). */
export interface WriteGroup {
  readonly id: number;
  readonly writes: LoggedWrite[];
}

export interface OrderLog {
  readonly order: OrderRequest;
  /** Calls to placeIoc with this client order id (retries and redeliveries included). */
  calls: number;
  errors: number;
  /** The venue executed the order (an answer was returned, or the timeout came after the execution). */
  executed: boolean;
  /** Fills of the execution, when an answer was seen. */
  result?: OrderResult;
  /** Calls that returned a different answer than the first (the venue broke idempotency). */
  mismatches: number;
}

/** Forwards to the venue and logs every order by client order id. */
export class CountingVenue implements Venue {
  readonly orders = new Map<string, OrderLog>();

  constructor(readonly inner: Venue) {}

  async placeIoc(order: OrderRequest): Promise<OrderResult> {
    let log = this.orders.get(order.clientOrderId);
    if (!log) {
      log = { order, calls: 0, errors: 0, executed: false, mismatches: 0 };
      this.orders.set(order.clientOrderId, log);
    }
    log.calls += 1;
    try {
      const result = await this.inner.placeIoc(order);
      if (log.result && !sameFills(log.result.fills, result.fills)) log.mismatches += 1;
      log.result ??= result;
      log.executed = true;
      return result;
    } catch (error) {
      log.errors += 1;
      // The simulated venue's 'timeout-after-fill' executes, then loses the answer (simulated.ts says so).
      if (error instanceof VenueError && /executed, answer lost/.test(error.message)) log.executed = true;
      throw error;
    }
  }

  /** Quotes asked, and a hook run after each answer (a test may change the book between a quote and an order). */
  quotes = 0;
  afterQuote: (() => void) | undefined;

  async quote(symbol: string, reference?: OrderRequest['reference']): ReturnType<Venue['quote']> {
    const answer = await this.inner.quote(symbol, reference);
    this.quotes += 1;
    this.afterQuote?.();
    return answer;
  }
}

/**
 * The auction a liquidation started, if it started one: the context named it until session 52, which derives it
 * (auctionIdOf: cost52-auction-id-derived); a liquidation that reached AUCTION has it.
 */
export const startedAuctionId = (l: LiquidationRecord): string | undefined =>
  l.context?.auctionId ?? (l.history.some((e) => e.state === 'AUCTION') ? auctionIdOf(l.id) : undefined);

/**
 * Logs every write of an embedded bundle by patching its stores' write paths (positions.write and createMany,
 * liquidations.store, auctions.store, providers.store), grouped by the atomic operation that made them.
 * The services see the same objects: nothing changes for them.
 */
export class Observer {
  readonly groups: WriteGroup[] = [];
  /** Every stored version of each position, in write order (the first is its creation). */
  readonly positionHistory = new Map<string, PositionRecord[]>();
  #group: WriteGroup | undefined;
  #groupDepth = 0;
  #nextGroup = 1;
  readonly #last = new Map<string, unknown>();

  constructor(adapters: EmbeddedAdapters) {
    const { positions, liquidations, auctions, providers, transactor } = adapters;

    const write = positions.write.bind(positions);
    positions.write = (current, next) => {
      write(current, next);
      this.#log('position', next.id, next);
    };
    const createMany = positions.createMany.bind(positions);
    positions.createMany = (records) => {
      createMany(records);
      this.#atomic(() => {
        for (const r of records) this.#log('position', r.id, r);
      });
    };
    const store = liquidations.store.bind(liquidations);
    liquidations.store = (next, created) => {
      store(next, created);
      this.#log('liquidation', next.id, next);
    };
    const storeAuction = auctions.store.bind(auctions);
    auctions.store = (next) => {
      storeAuction(next);
      this.#log('auction', next.id, next);
    };
    const storeProvider = providers.store.bind(providers);
    providers.store = (next) => {
      storeProvider(next);
      this.#log('provider', next.id, next);
    };
    // The embedded stores write synchronously inside these calls: tag what they write as one group.
    this.#wrapAtomic(transactor, 'commit');
    this.#wrapAtomic(liquidations, 'begin');
    this.#wrapAtomic(liquidations, 'replaceWithPosition');
  }

  /** The stored version `version` of a position, if it was ever written. */
  positionAt(id: string, version: number): PositionRecord | undefined {
    return this.positionHistory.get(id)?.find((p) => p.version === version);
  }

  #wrapAtomic<T extends object, K extends keyof T>(target: T, method: K): void {
    const original = (target[method] as (...args: unknown[]) => Promise<unknown>).bind(target);
    (target as Record<K, unknown>)[method] = (...args: unknown[]) => {
      let result: Promise<unknown> | undefined;
      this.#atomic(() => {
        result = original(...args);
      });
      return result;
    };
  }

  #atomic(run: () => void): void {
    if (this.#groupDepth === 0) this.#group = undefined;
    this.#groupDepth += 1;
    try {
      run();
    } finally {
      this.#groupDepth -= 1;
      if (this.#groupDepth === 0) this.#group = undefined;
    }
  }

  #log(kind: RecordKind, id: string, after: unknown): void {
    const key = `${kind}:${id}`;
    const before = this.#last.get(key);
    this.#last.set(key, after);
    let group = this.#groupDepth > 0 ? this.#group : undefined;
    if (!group) {
      group = { id: this.#nextGroup++, writes: [] };
      this.groups.push(group);
      if (this.#groupDepth > 0) this.#group = group;
    }
    group.writes.push({ kind, before, after });
    if (kind === 'position') {
      const p = after as PositionRecord;
      let history = this.positionHistory.get(p.id);
      if (!history) {
        history = [];
        this.positionHistory.set(p.id, history);
      }
      history.push(p);
    }
  }
}

// --- Per-tick check ----------------------------------------------------------------------------------------

/**
 * After an accepted tick (and its continuations), no OPEN position of the market may be liquidatable at the
 * tick's mark: the margin check must have started every one the mark crosses. A full scan of the book.
 */
export function uncoveredAtTick(
  adapters: EmbeddedAdapters,
  config: RiskConfig,
  symbol: string,
  mark: PriceE8,
): string[] {
  const m = marketConfig(config, symbol).maintenanceMargin;
  const found: string[] = [];
  for (const side of ['LONG', 'SHORT'] as const) {
    // scanCrossed uses the stored liquidation price; the exact re-check below is the authority.
    const everything = side === 'LONG' ? 0n : 10n ** 30n;
    for (const p of adapters.positions.scanCrossed(symbol, side, everything)) {
      if (isLiquidatable(p, mark, m)) found.push(`${p.id} (v${p.version}) liquidatable at ${mark}`);
    }
  }
  return found;
}

// --- The report --------------------------------------------------------------------------------------------

export interface Conservation {
  /** Traders' wealth change: collateral of unclosed positions plus payouts, minus collateral at creation. */
  readonly traders: QuoteE6;
  /** The fund's liquidation flows (fees in, shortfall payouts out) from its journal. */
  readonly fund: QuoteE6;
  /** Venue: counterparty of the market fills (receives -realized PnL), with the rounding residue of each close. */
  readonly venue: QuoteE6;
  /** Providers: counterparty of the auction fills. */
  readonly providers: QuoteE6;
  /** ADL: counterparty of the closes at the mark, both the bankrupt position's and its counterparties'. */
  readonly adl: QuoteE6;
  /** Loss nobody absorbed (settlement badDebt): an IOU, so the flows above sum to it. */
  readonly badDebt: QuoteE6;
  /** traders + fund + venue + providers + adl - badDebt: must be 0. */
  readonly error: QuoteE6;
}

export interface InvariantReport {
  readonly violations: string[];
  readonly figures: {
    readonly positions: number;
    readonly liquidations: number;
    readonly byState: Record<string, number>;
    readonly inFlight: number;
    readonly deadLetters: number;
    readonly venueOrders: number;
    readonly venueCalls: number;
    readonly venueExecutions: number;
    readonly journalEntries: number;
    readonly feesCollected: QuoteE6;
    readonly insurancePaid: QuoteE6;
    readonly adlCovered: QuoteE6;
    readonly badDebt: QuoteE6;
    readonly fundBalance: QuoteE6;
    readonly fundMin: QuoteE6;
    /** Largest total drawn within one draw window. */
    readonly maxWindowDraw: QuoteE6;
    readonly auctions: number;
    readonly auctionFills: number;
    readonly providerCapitalUsed: QuoteE6;
    readonly conservation: Conservation;
  };
}

export interface CheckInput {
  readonly adapters: EmbeddedAdapters;
  readonly config: RiskConfig;
  readonly observer: Observer;
  readonly venue: CountingVenue;
  readonly insuranceAccount: string;
  /** Dead-lettered messages this scenario expects (default 0: any is a violation). */
  readonly allowedDeadLetters?: number;
}

const FUND_KINDS = new Set(['liquidation-fee', 'shortfall-payout']);

/** What a settled record without its amounts is checked as (and reported). */
const NO_SETTLEMENT: SettlementAmounts = Object.fromEntries(
  Object.keys(SETTLEMENT_UNITS).map((k) => [k, 0n]),
) as unknown as SettlementAmounts;

const pnl16 = (side: Side, size: bigint, entry: PriceE8, price: PriceE8): bigint =>
  side === 'LONG' ? size * (price - entry) : size * (entry - price);

/** Realized PnL of a close, rounded as accounting.ts documents: floor, or ceil once under water. */
const realized = (collateral: QuoteE6, p16: bigint): QuoteE6 =>
  div(p16, NOTIONAL_TO_QUOTE, collateral * NOTIONAL_TO_QUOTE + p16 < 0n ? 'ceil' : 'floor');

const sumSize = (fills: readonly Fill[]): bigint => fills.reduce((t, f) => t + f.size, 0n);
const notional = (fills: readonly Fill[]): bigint => fills.reduce((t, f) => t + f.size * f.price, 0n);

function sameFills(a: readonly Fill[], b: readonly Fill[]): boolean {
  return a.length === b.length && a.every((f, i) => f.price === b[i]?.price && f.size === b[i]?.size);
}

/** One settlement's close, re-derived from its fills alone (accounting.ts rules), and who took the other side. */
export interface DerivedClose {
  readonly pnl: QuoteE6;
  readonly fee: QuoteE6;
  readonly shortfall: QuoteE6;
  readonly payout: QuoteE6;
  /** A slice's: the sub-unit the rest's collateral overstates its exact margin by (0 for a whole close). */
  readonly restOver: bigint;
  /** What the counterparties received (-pnl split): providers their fills, ADL its size at the mark, the venue the rest. */
  readonly toProviders: QuoteE6;
  readonly toAdl: QuoteE6;
  readonly toVenue: QuoteE6;
  readonly adlSize: bigint;
  /** Mark the ADL layer closed at. */
  readonly mark: PriceE8;
}

export interface SettlementCheck {
  readonly close: DerivedClose;
  /** The settlement record's amounts. */
  readonly recorded: Readonly<
    Record<'pnl' | 'fee' | 'shortfall' | 'paid' | 'covered' | 'badDebt' | 'payout', QuoteE6>
  >;
  /** Size the slice closed: its planned size less what it carried back to the position. */
  readonly planned: bigint;
  readonly problems: string[];
}

/**
 * Re-derives a settled (not cancelled) liquidation's close from its fills and the position it started from, and
 * compares it with the settlement record: sizes per layer, pnl, fee, shortfall, payout, shortfall split.
 */
export function checkSettlement(
  l: LiquidationRecord,
  context: LiquidationContext,
  before: Pick<PositionRecord, 'side' | 'entryPrice' | 'collateral' | 'collateralOverE16'> & {
    readonly size?: bigint;
  },
  auction: AuctionRecord | undefined,
  config: RiskConfig,
  /**
   * What the ADL counterparties' closes rounded away in all (E16): its whole units, with the trader's own close's
   * rounding, go to the fund.
   */
  adlRounding16 = 0n,
): SettlementCheck {
  const problems: string[] = [];
  if (!l.settlement) problems.push(`settle: ${l.id} is ${l.state} without settlement amounts`);
  const s = l.settlement ?? NO_SETTLEMENT;
  const mark = context.settle?.mark ?? context.executionMark;
  const auctionFills: readonly Fill[] = context.settle?.auctionFills ?? auction?.fills ?? [];
  const adlSize = s.adlClosedSize;
  // A slice may hand what ADL could not take back to the position: it settled as the size it closed.
  const carried = s.carriedSize;
  const planned = context.plannedSize - carried;
  const closed = sumSize(l.marketFills) + sumSize(auctionFills) + adlSize;
  if (closed !== planned)
    problems.push(`settle: ${l.id} closed ${closed} + carried ${carried}, planned ${context.plannedSize}`);
  if (sumSize(l.marketFills) !== s.marketClosedSize || sumSize(auctionFills) !== s.auctionClosedSize)
    problems.push(`settle: ${l.id} layer sizes disagree with its fills`);

  const fillsPnl16 = (fills: readonly Fill[]) =>
    fills.reduce((t, f) => t + fillPnlE16(before.side, f, before.entryPrice), 0n);
  const auction16 = fillsPnl16(auctionFills);
  const adl16 = pnl16(before.side, adlSize, before.entryPrice, mark);
  // The fee's base is price x size (an auction fill's cost, rounded against its provider, is not).
  const notional16 =
    [...l.marketFills, ...auctionFills].reduce((t, f) => t + f.size * f.price, 0n) + adlSize * mark;
  // A slice whose position keeps size (accounting.ts settleSlice): its PnL rounded up, no shortfall now, the rest
  // starts with what the slice leaves (below zero: the deficit it carries), and the fee is at most what leaves the
  // whole position solvent at the mark the slice was planned at, or at the settlement's mark where that is worse.
  const rest = before.size === undefined ? 0n : before.size - closed;
  const settledAt = context.settledMark ?? mark;
  const restMark =
    before.side === 'LONG'
      ? minBig(context.executionMark, settledAt)
      : maxBig(context.executionMark, settledAt);
  const restPnl16 = pnl16(before.side, rest, before.entryPrice, restMark);
  const sliced = rest > 0n;
  const close16 = fillsPnl16(l.marketFills) + auction16 + adl16;
  // The exact margin: the collateral less the sub-unit an earlier slice's rounding left on it.
  const over = before.collateralOverE16 ?? 0n;
  const equity16 = before.collateral * NOTIONAL_TO_QUOTE - over + close16;
  const pnl = sliced
    ? div(equity16, NOTIONAL_TO_QUOTE, 'ceil') - before.collateral
    : realized(before.collateral, close16 - over);
  const equity = before.collateral + pnl;
  const feePpm = marketConfig(config, l.symbol).liquidationFee;
  const feeDue = div(notional16 * feePpm, NOTIONAL_TO_QUOTE * PPM_SCALE, 'ceil');
  let fee = sliced
    ? minBig(feeDue, maxBig(0n, div(equity16 + restPnl16, NOTIONAL_TO_QUOTE, 'floor')))
    : minBig(feeDue, maxBig(0n, equity));
  let payout = sliced ? equity - fee : maxBig(0n, equity) - fee;
  let shortfall = sliced ? 0n : maxBig(0n, -equity);
  // A solvent trader's whole close ADL takes part in rounds its exact equity down: that sub-unit joins the
  // counterparties' (adl-trader-rounding). A slice carries its own on the rest; under water none is given.
  const own16 =
    adlSize > 0n && !sliced && equity16 >= 0n
      ? equity16 - div(equity16, NOTIONAL_TO_QUOTE, 'floor') * NOTIONAL_TO_QUOTE
      : 0n;
  // The counterparties' rounding and the trader's, in whole units, to the fund: a smaller shortfall, then more fee.
  const rounded = div(adlRounding16 + own16, NOTIONAL_TO_QUOTE, 'floor');
  const lessShortfall = minBig(rounded, shortfall);
  fee += rounded - lessShortfall;
  shortfall -= lessShortfall;
  // Planned again, a settlement keeps the part of a fee credited before that the fund, as the plan saw it, could
  // not give back above its floor: after the shortfall it gives back, unless the kept fee is more than the
  // trader has left (then with none given back). The trader pays it from the payout, a shortfall for the rest (a
  // slice's rest carries all of it).
  const applied = context.settle?.applied;
  const feeBefore = applied?.[`${l.id}:fee`] ?? 0n;
  const fund = context.settle?.insurance;
  if (fund && fee < feeBefore) {
    const owed = feeBefore - fee;
    const floor = config.insurance.floor;
    const givenBack = maxBig(0n, -(applied?.[`${l.id}:shortfall`] ?? 0n) - shortfall);
    const keptAfterGiveBack = owed - minBig(owed, maxBig(0n, fund.balance + givenBack - floor));
    const kept =
      sliced || keptAfterGiveBack <= payout
        ? keptAfterGiveBack
        : owed - minBig(owed, maxBig(0n, fund.balance - floor));
    const taken = sliced ? kept : minBig(kept, payout);
    fee += kept;
    payout -= taken;
    shortfall += kept - taken;
  }
  const toProviders = div(-auction16, NOTIONAL_TO_QUOTE, 'floor');
  // ADL's close (its counterparties, and the trader's close with them) pays the fund what its rounding gave in
  // whole units.
  const atMark = div(-adl16, NOTIONAL_TO_QUOTE, 'floor');
  const toAdl = atMark - rounded;
  const recorded = {
    pnl: s.realizedPnl,
    fee: s.fee,
    shortfall: s.shortfall,
    paid: s.insurancePaid,
    covered: s.adlCovered,
    badDebt: s.badDebt,
    payout: s.traderPayout,
  };
  if (
    recorded.pnl !== pnl ||
    recorded.fee !== fee ||
    recorded.shortfall !== shortfall ||
    recorded.payout !== payout
  )
    problems.push(
      `settle: ${l.id} records pnl/fee/shortfall/payout ${recorded.pnl}/${recorded.fee}/${recorded.shortfall}/${recorded.payout}, fills give ${pnl}/${fee}/${shortfall}/${payout}`,
    );
  if (recorded.paid + recorded.covered + recorded.badDebt !== shortfall)
    problems.push(
      `settle: ${l.id} shortfall ${shortfall} != paid ${recorded.paid} + adl ${recorded.covered} + bad debt ${recorded.badDebt}`,
    );
  const close = {
    pnl,
    fee,
    shortfall,
    payout,
    // What the rest's collateral overstates its exact margin by: taken back by its final close.
    restOver: sliced ? equity * NOTIONAL_TO_QUOTE - equity16 : 0n,
    toProviders,
    toAdl,
    toVenue: -pnl - toProviders - atMark,
    adlSize,
    mark,
  };
  return { close, recorded, planned, problems };
}

export interface JournalFlows {
  /** Sum of the fund's liquidation flows (fees in, shortfall payouts out). */
  readonly fundFlow: QuoteE6;
  /** Fee and payout per liquidation id (the entries' reference). */
  readonly byReference: Map<string, { fee: QuoteE6; paid: QuoteE6; entries: number }>;
  /** Idempotency keys applied more than once. */
  readonly problems: string[];
}

/** The fund's journal summed per liquidation, each idempotency key once. */
export function journalFlows(journal: readonly JournalEntry[]): JournalFlows {
  const keys = new Set<string>();
  const byReference = new Map<string, { fee: QuoteE6; paid: QuoteE6; entries: number }>();
  const problems: string[] = [];
  let fundFlow = 0n;
  for (const e of journal) {
    if (keys.has(e.idempotencyKey))
      problems.push(`ledger: idempotency key ${e.idempotencyKey} applied twice`);
    keys.add(e.idempotencyKey);
    if (!FUND_KINDS.has(e.kind)) continue;
    fundFlow += e.amount;
    const f = byReference.get(e.reference) ?? { fee: 0n, paid: 0n, entries: 0 };
    if (e.kind === 'liquidation-fee') f.fee += e.amount;
    else f.paid -= e.amount;
    f.entries += 1;
    byReference.set(e.reference, f);
  }
  return { fundFlow, byReference, problems };
}

/**
 * What is wrong with a counterparty write's ADL events (adl47-who-closed), one event by `liquidationId` in `round`
 * recorded: the count up one, the event last, the older ones the latest of those it had, set-asides kept.
 */
export function adlEventProblems(
  was: PositionRecord | undefined,
  c: PositionRecord,
  expected: { liquidationId: string; round: number; size: bigint; given: bigint },
): string[] {
  const { liquidationId, round, size, given } = expected;
  const problems: string[] = [];
  const before = was?.adlEvents;
  const after = adlEventsRead(c.adlEvents) ? c.adlEvents : undefined;
  // A list that did not read is set aside, and a new one starts (follow47-adl-events-unreadable).
  const total = adlEventsRead(before) ? before.total : 0;
  const last = after?.recent.at(-1);
  if (after?.total !== total + 1)
    problems.push(
      `adl events: ${c.id} counts ${after?.total} after ${total}, deleveraged once by ${liquidationId}`,
    );
  else if (
    last?.liquidationId !== liquidationId ||
    last.round !== round ||
    last.size !== size ||
    last.given !== given
  )
    problems.push(
      `adl events: ${c.id}'s last event ${toJson(last)} is not ${liquidationId} round ${round}, ${size} closed, ${given} given`,
    );
  // The events before it are the latest of those it had, in order, none lost short of the cap nor changed.
  const older = after?.recent.slice(0, -1) ?? [];
  const had = adlEventsRead(before) ? before.recent : [];
  if (
    older.length !== Math.min(had.length, MAX_ADL_EVENTS_KEPT - 1) ||
    toJson(older) !== toJson(had.slice(had.length - older.length))
  )
    problems.push(`adl events: ${c.id} kept ${toJson(older)} of ${toJson(had)}`);
  // Set-asides are kept as they were; an unreadable list joins them, as stored.
  const asideBefore = was?.adlEventsSetAside ?? [];
  const asideExpected =
    before === undefined || adlEventsRead(before) ? asideBefore : [...setAsideList(asideBefore), before];
  if (toJson(c.adlEventsSetAside ?? []) !== toJson(asideExpected))
    problems.push(
      `adl events: ${c.id} set aside ${toJson(c.adlEventsSetAside)}, not ${toJson(asideExpected)}`,
    );
  return problems;
}

/**
 * One execution per client order id (`<liquidation id>:market`, and `:last-resort` for the waterfall's last
 * resort), the same answer on every repeat, and each liquidation's recorded market fills equal to what the venue
 * executed (none for a cancelled one; a settled one's include its last-resort fills).
 */
export function checkVenueOrders(
  venue: CountingVenue,
  liquidations: readonly LiquidationRecord[],
): { calls: number; executions: number; problems: string[] } {
  const problems: string[] = [];
  const byId = new Set(liquidations.map((l) => l.id));
  let calls = 0;
  let executions = 0;
  const orderOf = new Map<string, OrderLog>();
  // In attempt order: only the last one may have filled (a new attempt follows one that filled nothing).
  const lastResortOf = new Map<string, OrderLog[]>();
  for (const [clientOrderId, log] of venue.orders) {
    calls += log.calls;
    if (log.executed) executions += 1;
    if (log.mismatches > 0) problems.push(`venue: ${clientOrderId} answered differently on a repeat`);
    const [, owner, kind] = /^(.*):(market|last-resort:\d+)$/.exec(clientOrderId) ?? [];
    if (!owner || !byId.has(owner)) {
      problems.push(`venue: order ${clientOrderId} belongs to no liquidation`);
      continue;
    }
    if (kind === 'market') orderOf.set(owner, log);
    else lastResortOf.set(owner, [...(lastResortOf.get(owner) ?? []), log]);
  }
  for (const l of liquidations) {
    const log = orderOf.get(l.id);
    // EXECUTING: the order may have been placed; its fills are stored by the next transition, which its message
    // (checked by the caller: progressing, or a dead letter) still has to make.
    if (l.state === 'QUEUED' || l.state === 'EXECUTING') continue;
    const executedFills = log?.executed ? log.result?.fills : [];
    if (log?.executed && !log.result) {
      problems.push(
        `venue: ${l.id}'s order executed but its answer was lost; the record holds ${l.marketFills.length} fills`,
      );
      continue;
    }
    if (l.state === 'CANCELLED') {
      if (executedFills && executedFills.length > 0)
        problems.push(`venue: ${l.id} is CANCELLED but its market order filled ${sumSize(executedFills)}`);
      // A waiting last resort may be cancelled (last-resort-recovered): only after orders that filled nothing.
      for (const o of lastResortOf.get(l.id) ?? []) {
        const fills = o.result?.fills;
        if (o.executed && (fills === undefined || fills.length > 0))
          problems.push(
            `venue: ${l.id} is CANCELLED but ${o.order.clientOrderId} executed ${fills ? fmtFills(fills) : '(answer lost)'}`,
          );
      }
      continue;
    }
    const lastResortFills = isTerminal(l.state)
      ? (lastResortOf.get(l.id) ?? []).flatMap((o) => (o.executed ? (o.result?.fills ?? []) : []))
      : [];
    // As kept: an order's answer of more than MAX_FILLS_PER_ORDER fills is folded into its exact totals.
    const kept = (fills: readonly Fill[]) => boundedFills(fills, MAX_FILLS_PER_ORDER);
    const expected = [...kept(executedFills ?? []), ...kept(lastResortFills)];
    if (!sameFills(l.marketFills, expected))
      problems.push(
        `venue: ${l.id} records fills ${fmtFills(l.marketFills)}, the venue executed ${fmtFills(expected)}`,
      );
    // And checked on their own against the venue's trades: the size and price x size a close settles.
    const executed = [...(executedFills ?? []), ...lastResortFills];
    if (sumSize(l.marketFills) !== sumSize(executed) || notional(l.marketFills) !== notional(executed))
      problems.push(`venue: ${l.id}'s recorded fills do not total what the venue executed`);
  }
  return { calls, executions, problems };
}

/** Auction fills against their lots, and what the fills cost the providers (capital they must have used). */
export function checkAuctions(auctions: Iterable<AuctionRecord>): {
  fills: number;
  cost: QuoteE6;
  problems: string[];
} {
  const problems: string[] = [];
  let fills = 0;
  let cost = 0n;
  for (const a of auctions) {
    fills += a.fills.length;
    const filled = sumSize(a.fills);
    if (filled !== a.lot - a.remainingLot)
      problems.push(`auction: ${a.id} filled ${filled} of a lot ${a.lot} leaving ${a.remainingLot}`);
    for (const f of a.fills) cost += auctionFillCost(a.direction, f);
  }
  return { fills, cost, problems };
}

/**
 * What each provider won, on its record (providers48-fills-on-record): every auction step's write of a provider it
 * filled records exactly that fill (its liquidation, step, size, price, cost, the step's mark, and its edge at that
 * mark), no other write of a provider changes its fills, and each provider's totals per market are the auctions'
 * fills of it, exactly: count, base bought and sold, quote paid and received (a fill's cost by auctionFillCost, as
 * checkAuctions counts it), and the edges its fills recorded.
 */
export function checkProviderFills(
  observer: Pick<Observer, 'groups'>,
  auctions: Iterable<AuctionRecord>,
): string[] {
  const problems: string[] = [];
  const same = (x: unknown, y: unknown) => x === y || toJson(x) === toJson(y);
  const edges = new Map<string, bigint>();
  const last = new Map<string, ProviderRecord>();
  for (const group of observer.groups) {
    const step = group.writes.find((w) => w.kind === 'auction' && w.before !== undefined);
    const auctionBefore = step?.before as AuctionRecord | undefined;
    const auctionAfter = step?.after as AuctionRecord | undefined;
    const newFills = auctionAfter?.fills.slice(auctionBefore?.fills.length ?? 0) ?? [];
    let stepMark: PriceE8 | undefined;
    for (const w of group.writes) {
      if (w.kind !== 'provider') continue;
      const before = w.before as ProviderRecord | undefined;
      const after = w.after as ProviderRecord;
      last.set(after.id, after);
      const mine = newFills.filter((f) => f.providerId === after.id);
      if (mine.length === 0) {
        if (!same(before?.fills, after.fills) || !same(before?.fillsSetAside, after.fillsSetAside))
          problems.push(`provider fills: ${after.id} changed by a write that filled nothing`);
        continue;
      }
      const a = auctionBefore!;
      const f = mine[0]!;
      const was = providerFillsRead(before?.fills) ? before.fills.total : 0;
      const now = providerFillsRead(after.fills) ? after.fills : undefined;
      const got = now?.recent.at(-1);
      if (mine.length !== 1 || now?.total !== was + 1 || got === undefined) {
        problems.push(
          `provider fills: ${after.id} counts ${now?.total} after ${was}, filled once by ${a.id}`,
        );
        continue;
      }
      if (
        got.liquidationId !== a.liquidationId ||
        got.step !== a.step ||
        got.symbol !== a.symbol ||
        got.direction !== a.direction ||
        got.size !== f.size ||
        got.price !== f.price ||
        got.cost !== auctionFillCost(a.direction, f) ||
        got.edge !== fillEdge(a.direction, got.size, got.mark, got.cost)
      )
        problems.push(`provider fills: ${after.id}'s last fill ${toJson(got)} is not ${a.id}'s ${toJson(f)}`);
      // The auction keeps when each fill was made, as its provider's record does (review52-support-fill-times-on-auction).
      if (f.step !== a.step || f.atMs !== got.atMs || f.mark !== got.mark)
        problems.push(
          `auction fill times: ${a.id}'s fill of ${after.id} at step ${a.step} records ${toJson({ step: f.step, atMs: f.atMs, mark: f.mark })}, its provider's record ${toJson({ step: got.step, atMs: got.atMs, mark: got.mark })}`,
        );
      // The step's own mark (providers49-fill-mark): each fill is at its provider's bid at that mark (clearing's
      // bidPrice, the terms read by the step: the write's before), one mark for every fill of the step, and the mark
      // the auction records when the step ended it.
      if (got.price !== bidPrice(before!, a.direction, got.mark))
        problems.push(
          `provider fills: ${after.id}'s fill of ${a.id} step ${a.step} records mark ${got.mark}, at which its bid is ${bidPrice(before!, a.direction, got.mark)}, not the fill's price ${got.price}`,
        );
      stepMark ??= got.mark;
      if (got.mark !== stepMark)
        problems.push(
          `provider fills: ${after.id}'s fill of ${a.id} step ${a.step} records mark ${got.mark}, another of the step's ${stepMark}`,
        );
      if (auctionAfter?.state !== 'RUNNING' && auctionAfter?.endedAtMark !== undefined)
        if (got.mark !== auctionAfter.endedAtMark)
          problems.push(
            `provider fills: ${after.id}'s fill of ${a.id} step ${a.step} records mark ${got.mark}, the step ended the auction at ${auctionAfter.endedAtMark}`,
          );
      const key = `${after.id} ${a.symbol}`;
      edges.set(key, (edges.get(key) ?? 0n) + got.edge);
    }
  }
  // The auctions' fills, totalled per provider and market as its record totals them.
  const expected = new Map<string, Map<string, ProviderMarketTotals>>();
  for (const a of auctions)
    for (const f of a.fills) {
      const markets = expected.get(f.providerId) ?? new Map<string, ProviderMarketTotals>();
      expected.set(f.providerId, markets);
      const t = markets.get(a.symbol) ?? { fills: 0, bought: 0n, paid: 0n, sold: 0n, received: 0n, edge: 0n };
      const sell = a.direction === 'SELL';
      const cost = auctionFillCost(a.direction, f);
      markets.set(a.symbol, {
        fills: t.fills + 1,
        bought: t.bought + (sell ? f.size : 0n),
        paid: t.paid + (sell ? cost : 0n),
        sold: t.sold + (sell ? 0n : f.size),
        received: t.received + (sell ? 0n : cost),
        edge: edges.get(`${f.providerId} ${a.symbol}`) ?? 0n,
      });
    }
  for (const [id, p] of last) {
    const fills = providerFillsRead(p.fills) ? p.fills : undefined;
    const sorted = (o: Readonly<Record<string, ProviderMarketTotals>>) =>
      Object.fromEntries(Object.entries(o).sort(([x], [y]) => (x < y ? -1 : 1)));
    const want = sorted(Object.fromEntries(expected.get(id) ?? []));
    if (!same(sorted(fills?.byMarket ?? {}), want))
      problems.push(
        `provider fills: ${id}'s totals ${toJson(fills?.byMarket)} are not its auction fills' ${toJson(want)}`,
      );
  }
  return problems;
}

/** Checks every invariant of issue 7 from the records; see the module comment. */
export async function checkInvariants(input: CheckInput): Promise<InvariantReport> {
  const { adapters, config, observer, insuranceAccount } = input;
  const violations: string[] = [];
  const fail = (message: string): void => {
    // Thousands of copies of one fault would bury the others: keep a sample.
    if (violations.length < 200) violations.push(message);
  };

  const liquidations = adapters.liquidations.all();
  const auctions = new Map(adapters.auctions.all().map((a) => [a.id, a]));
  const byState: Record<string, number> = {};
  for (const l of liquidations) byState[l.state] = (byState[l.state] ?? 0) + 1;

  // --- the journal: one entry per key, balances chain, floor and draw cap -----------------------------------
  const report = await reconcileAccount(adapters.ledger, insuranceAccount, {
    count: () => {},
    observe: () => {},
    info: () => {},
    warn: () => {},
  });
  if (report.difference !== 0n) fail(`ledger: balance differs from its journal by ${report.difference}`);
  for (const problem of report.problems) fail(`ledger: ${problem}`);
  const { floor, drawCapPerWindow, windowSeconds } = config.insurance;
  if (report.minBalance < 0n) fail(`ledger: the fund went to ${report.minBalance}, below zero`);
  const journal = await adapters.ledger.journal(insuranceAccount);
  const { fundFlow, byReference: fundByReference, problems: journalProblems } = journalFlows(journal);
  for (const problem of journalProblems) fail(problem);
  let windowStart = -1;
  let windowDrawn = 0n;
  let maxWindowDraw = 0n;
  const windowMs = windowSeconds * 1000;
  for (const e of journal) {
    if (!FUND_KINDS.has(e.kind) || e.amount === 0n) continue;
    const start = Math.floor(e.atMs / windowMs) * windowMs;
    if (e.amount > 0n) {
      // A shortfall payout given back (a settlement planned again pays less) frees its window's room while that
      // is still the current window (credit-back-window); a fee never does.
      if (e.kind === 'shortfall-payout' && start === windowStart)
        windowDrawn -= minBig(e.amount, windowDrawn);
      continue;
    }
    if (e.balanceAfter < floor) fail(`ledger: debit ${e.idempotencyKey} left ${e.balanceAfter} < floor`);
    // A fee given back (a settlement planned again charges less) is no draw: the ledger takes it with no window
    // (planFeeReturn; found by the pipeline fuzzing, session 27, with a cap of 0).
    if (e.kind !== 'shortfall-payout') continue;
    // The ledger's window rule: a later window start opens a new window, an earlier one counts in the current.
    if (start > windowStart) {
      windowStart = start;
      windowDrawn = 0n;
    }
    windowDrawn -= e.amount;
    maxWindowDraw = maxBig(maxWindowDraw, windowDrawn);
    if (windowDrawn > drawCapPerWindow)
      fail(`ledger: window ${windowStart} drew ${windowDrawn}, cap ${drawCapPerWindow}`);
  }

  const {
    calls: venueCalls,
    executions: venueExecutions,
    problems: venueProblems,
  } = checkVenueOrders(input.venue, liquidations);
  for (const problem of venueProblems) fail(problem);

  // --- items as the AWS adapters write them: DynamoDB refuses one over 400 KB, the embedded stores do not ----
  for (const l of liquidations) {
    // Put alone, it carries its writer's token (a UUID).
    const bytes = itemBytes(withWriter(liquidationItem(l), SIZED_WRITER));
    if (bytes > MAX_ITEM_BYTES)
      fail(`items: liquidation ${l.id} is ${bytes} bytes in DynamoDB, over its limit`);
  }
  for (const a of auctions.values()) {
    // Put alone, it carries its writer's token (a UUID).
    const bytes = itemBytes(withWriter(auctionItem(a), SIZED_WRITER));
    if (bytes > MAX_ITEM_BYTES) fail(`items: auction ${a.id} is ${bytes} bytes in DynamoDB, over its limit`);
  }

  // --- settlements: each once, money re-derived from the records --------------------------------------------
  const terminalWrites = new Map<string, number>();
  let traders = 0n;
  let venue = 0n;
  let providers = 0n;
  let adl = 0n;
  let badDebt = 0n;
  let fees = 0n;
  let paid = 0n;
  let covered = 0n;
  /** Payouts of positions closed by a settlement, by position id. */
  const payouts = new Map<string, QuoteE6>();
  const m = (symbol: string) => marketConfig(config, symbol);

  /** The counterparty writes of settlements and rounds: each records one ADL event (adl47-who-closed). */
  const adlWrites = new Set<unknown>();
  const checkAdlEvent = (
    w: { readonly before?: unknown; readonly after: unknown },
    liquidationId: string,
    round: number,
    size: bigint,
    given: bigint,
  ): void => {
    adlWrites.add(w);
    for (const problem of adlEventProblems(
      w.before as PositionRecord | undefined,
      w.after as PositionRecord,
      {
        liquidationId,
        round,
        size,
        given,
      },
    ))
      fail(problem);
  };
  for (const group of observer.groups) {
    const round = group.writes.find(
      (w) =>
        w.kind === 'liquidation' &&
        w.before !== undefined &&
        isTerminal((w.before as LiquidationRecord).state) &&
        isTerminal((w.after as LiquidationRecord).state),
    );
    if (round) {
      // A further ADL round of a settled liquidation: counterparties give profit, close nothing.
      const l = round.after as LiquidationRecord;
      const b = round.before as LiquidationRecord;
      const delta = (l.settlement?.adlCovered ?? 0n) - (b.settlement?.adlCovered ?? 0n);
      if (l.state !== b.state) fail(`round: ${l.id} went from ${b.state} to ${l.state}`);
      if (delta < 0n || l.settlement?.badDebt !== (b.settlement?.badDebt ?? 0n) - delta)
        fail(
          `round: ${l.id} covered ${delta}, bad debt ${b.settlement?.badDebt} -> ${l.settlement?.badDebt}`,
        );
      if (l.settlement?.shortfall !== b.settlement?.shortfall) fail(`round: ${l.id} changed its shortfall`);
      let given = 0n;
      const roundNumber = l.context?.adlRounds ?? l.context?.adlRound?.round;
      for (const w of group.writes) {
        if (w.kind !== 'position') continue;
        const c = w.after as PositionRecord;
        const cb = w.before as PositionRecord | undefined;
        if (!cb || cb.size !== c.size || cb.state !== c.state) {
          fail(`round: ${l.id} closed or created position ${c.id}`);
          continue;
        }
        if (cb.collateral < c.collateral) fail(`round: ${c.id} received ${c.collateral - cb.collateral}`);
        given += cb.collateral - c.collateral;
        checkAdlEvent(w, l.id, roundNumber ?? -1, 0n, cb.collateral - c.collateral);
      }
      if (given !== delta) fail(`round: ${l.id} counterparties gave ${given}, the round says ${delta}`);
      traders -= given;
      covered += delta;
      badDebt -= delta;
      continue;
    }
    const settled = group.writes.find(
      (w) =>
        w.kind === 'liquidation' &&
        isTerminal((w.after as LiquidationRecord).state) &&
        (w.before === undefined || !isTerminal((w.before as LiquidationRecord).state)),
    );
    if (!settled) continue;
    const l = settled.after as LiquidationRecord;
    terminalWrites.set(l.id, (terminalWrites.get(l.id) ?? 0) + 1);
    const positionWrites = group.writes.filter((w) => w.kind === 'position');
    const own = positionWrites.find((w) => (w.after as PositionRecord).id === l.positionId);
    if (!own?.before) {
      fail(`settle: ${l.id} reached ${l.state} without writing its position`);
      continue;
    }
    const before = own.before as PositionRecord;
    const after = own.after as PositionRecord;
    if (l.state === 'CANCELLED') {
      if (after.state !== 'OPEN' || after.size !== before.size || after.collateral !== before.collateral)
        fail(
          `cancel: ${l.id} changed its position (${before.size}/${before.collateral} -> ${after.state} ${after.size}/${after.collateral})`,
        );
      if (positionWrites.length !== 1) fail(`cancel: ${l.id} wrote other positions`);
      continue;
    }

    const context = l.context;
    if (!context) {
      fail(`settle: ${l.id} has no context`);
      continue;
    }
    const auctionId = startedAuctionId(l);
    const auction = auctionId ? auctions.get(auctionId) : undefined;
    // What each counterparty's close rounded away (E16): its exact margin and closed profit at the mark, less the
    // whole units it kept (a counterparty is solvent: the close floors).
    const adlMark = context.settle?.mark ?? context.executionMark;
    let adlRounding16 = 0n;
    for (const w of positionWrites) {
      const c = w.after as PositionRecord;
      const cb = w.before as PositionRecord | undefined;
      if (c.id === l.positionId || !cb || cb.size <= c.size) continue;
      const exact16 = marginE16(cb) + pnl16(cb.side, cb.size - c.size, cb.entryPrice, adlMark);
      adlRounding16 += exact16 - div(exact16, NOTIONAL_TO_QUOTE, 'floor') * NOTIONAL_TO_QUOTE;
    }
    const { close, recorded, planned, problems } = checkSettlement(
      l,
      context,
      before,
      auction,
      config,
      adlRounding16,
    );
    for (const problem of problems) fail(problem);
    const { payout } = close;
    const ledger = fundByReference.get(l.id) ?? { fee: 0n, paid: 0n, entries: 0 };
    if (ledger.fee !== recorded.fee || ledger.paid !== recorded.paid)
      fail(
        `settle: ${l.id} journal fee/paid ${ledger.fee}/${ledger.paid}, settlement ${recorded.fee}/${recorded.paid}`,
      );
    fees += recorded.fee;
    paid += recorded.paid;
    covered += recorded.covered;
    badDebt += recorded.badDebt;

    // The trader: the slice's collateral becomes the payout (full close) or stays with the remainder.
    traders += payout - before.collateral;
    if (after.state === 'CLOSED') {
      if (after.size !== before.size - planned && after.size !== before.size)
        fail(`settle: ${l.id} closed its position at size ${after.size}`);
      if (before.size !== planned)
        fail(`settle: ${l.id} closed a position of ${before.size} with a slice of ${planned}`);
      payouts.set(after.id, (payouts.get(after.id) ?? 0n) + payout);
    } else if (
      after.size !== before.size - planned ||
      after.collateral !== payout ||
      (after.collateralOverE16 ?? 0n) !== close.restOver
    ) {
      fail(
        `settle: ${l.id} left a remainder ${after.size}/${after.collateral} over ${after.collateralOverE16 ?? 0n}, expected ${before.size - planned}/${payout} over ${close.restOver}`,
      );
    }
    if (after.state === 'CLOSED' && after.collateralOverE16 !== undefined)
      fail(`settle: ${l.id} closed its position holding a sub-unit over (${after.collateralOverE16})`);
    providers += close.toProviders;
    adl += close.toAdl;
    venue += close.toVenue;

    // ADL counterparties: close `taken` at the mark and give up profit (sum given = adlCovered).
    let taken = 0n;
    let givenTotal = 0n;
    for (const w of positionWrites) {
      const c = w.after as PositionRecord;
      if (c.id === l.positionId) continue;
      const cb = w.before as PositionRecord | undefined;
      if (!cb) {
        fail(`adl: ${l.id} created position ${c.id}`);
        continue;
      }
      const size = cb.size - c.size;
      taken += size;
      // A close takes back the sub-unit a slice left on its collateral; a haircut alone closes nothing.
      const pc =
        size > 0n
          ? realized(
              cb.collateral,
              pnl16(cb.side, size, cb.entryPrice, close.mark) - (cb.collateralOverE16 ?? 0n),
            )
          : 0n;
      adl += -pc;
      // A counterparty closed in full keeps no collateral: what it was paid is on its record.
      let kept = c.collateral;
      if (c.state === 'CLOSED') {
        if (c.closedPayout === undefined) fail(`adl: ${c.id} closed in ${l.id} without a recorded payout`);
        kept = c.closedPayout ?? 0n;
        payouts.set(c.id, (payouts.get(c.id) ?? 0n) + kept);
      }
      const given = cb.collateral + pc - kept;
      if (given < 0n) fail(`adl: ${c.id} received ${-given} in ${l.id}`);
      // ADL gives no sub-unit a counterparty lacks: its exact margin (less a slice's sub-unit over) stays >= 0.
      if (c.state === 'OPEN' && marginE16(c) < 0n)
        fail(`adl: ${c.id} left with an exact margin of ${marginE16(c)} (E16) in ${l.id}`);
      if (kept < 0n) fail(`adl: ${c.id} paid out ${kept} in ${l.id}`);
      checkAdlEvent(w, l.id, 0, size, given);
      givenTotal += given;
      traders += kept - cb.collateral;
    }
    if (taken !== close.adlSize)
      fail(`adl: ${l.id} counterparties took ${taken}, settlement says ${close.adlSize}`);
    if (givenTotal !== recorded.covered)
      fail(`adl: ${l.id} counterparties gave ${givenTotal}, settlement says ${recorded.covered}`);
  }
  for (const [id, count] of terminalWrites)
    if (count !== 1) fail(`settle: ${id} reached a terminal state ${count} times`);
  // Any other write of a position keeps its ADL events as they were (none dropped, none added).
  for (const group of observer.groups)
    for (const w of group.writes) {
      if (w.kind !== 'position' || adlWrites.has(w)) continue;
      const before = w.before as PositionRecord | undefined;
      const after = w.after as PositionRecord;
      const same = (x: unknown, y: unknown) => x === y || toJson(x) === toJson(y);
      if (
        !same(before?.adlEvents, after.adlEvents) ||
        !same(before?.adlEventsSetAside, after.adlEventsSetAside)
      )
        fail(`adl events: ${(w.after as PositionRecord).id} changed by a write that deleveraged nothing`);
    }

  // Traders again, globally: every position's wealth now against its collateral at creation.
  let tradersGlobal = 0n;
  let positions = 0;
  for (const [id, history] of observer.positionHistory) {
    positions += 1;
    for (const v of history) {
      // A record the domain would refuse: an empty open size, or a closed one holding collateral. (Collateral below
      // zero is a deficit a slice left with the rest of its position: accounting.ts settleSlice.)
      if (v.state === 'CLOSED' && v.collateral !== 0n)
        fail(`record: position ${id} v${v.version} is CLOSED with collateral ${v.collateral}`);
      if (v.state !== 'CLOSED' && v.size <= 0n)
        fail(`record: position ${id} v${v.version} is ${v.state} with size ${v.size}`);
    }
    const first = history[0]!;
    const last = history[history.length - 1]!;
    const stored = await adapters.positions.get(id);
    if (stored?.version !== last.version) fail(`observer: position ${id} was written outside the log`);
    let wealth = last.collateral;
    if (last.state === 'CLOSED') {
      const payout = payouts.get(id);
      if (payout === undefined) fail(`lost: position ${id} is CLOSED without a settlement`);
      wealth = payout ?? 0n;
    }
    tradersGlobal += wealth - first.collateral;
  }
  if (tradersGlobal !== traders)
    fail(`traders: positions now hold ${tradersGlobal} more than at creation, settlements say ${traders}`);

  // --- providers: capital consumed = the cost of every auction fill, once ------------------------------------
  let providerCapitalUsed = 0n;
  const firstProvider = new Map<string, ProviderRecord>();
  const lastProvider = new Map<string, ProviderRecord>();
  for (const group of observer.groups) {
    for (const w of group.writes) {
      if (w.kind !== 'provider') continue;
      const p = w.after as ProviderRecord;
      if (!firstProvider.has(p.id)) firstProvider.set(p.id, p);
      lastProvider.set(p.id, p);
    }
  }
  for (const [id, first] of firstProvider)
    providerCapitalUsed += first.capital - lastProvider.get(id)!.capital;
  const {
    fills: auctionFillCount,
    cost: auctionCost,
    problems: auctionProblems,
  } = checkAuctions(auctions.values());
  for (const problem of auctionProblems) fail(problem);
  if (providerCapitalUsed !== auctionCost)
    fail(`providers: capital used ${providerCapitalUsed}, auction fills cost ${auctionCost}`);
  for (const problem of checkProviderFills(observer, auctions.values())) fail(problem);

  // --- states: terminal once, or progressing with a message in flight; nothing lost --------------------------
  const pendingLiquidations = new Set<string>();
  // A wait message is a copy that ends at its delivery (waits43-one-chain), not in flight, unless the record names
  // it or still names the wait it followed (its take-over: review43b-wait-before-named; '' for none).
  const waitsPending = new Map<string, Set<string>>();
  for (const m of adapters.liquidationQueue.pending()) {
    const id = bodyField(m.body, 'liquidationId');
    const waitId = bodyField(m.body, 'lastResortWaitId');
    if (waitId === '') pendingLiquidations.add(id);
    else
      waitsPending.set(
        id,
        (waitsPending.get(id) ?? new Set())
          .add(`=${waitId}`)
          .add(`>${bodyField(m.body, 'lastResortWaitAfter')}`),
      );
  }
  for (const l of liquidations) {
    const named = l.context?.lastResortWait?.id;
    const pending = waitsPending.get(l.id);
    if (pending && ((named !== undefined && pending.has(`=${named}`)) || pending.has(`>${named ?? ''}`)))
      pendingLiquidations.add(l.id);
  }
  const pendingAuctions = new Set<string>();
  for (const m of adapters.auctionQueue.pending()) pendingAuctions.add(bodyField(m.body, 'auctionId'));
  const deadLetters =
    adapters.liquidationDeadLetters.pending().length + adapters.auctionDeadLetters.pending().length;
  if (deadLetters > (input.allowedDeadLetters ?? 0)) {
    const sample = [...adapters.liquidationDeadLetters.pending(), ...adapters.auctionDeadLetters.pending()]
      .slice(0, 3)
      .map((d) => d.body);
    fail(`dead letters: ${deadLetters} messages (${sample.join(', ')})`);
  }
  let inFlight = 0;
  const openLiquidationOf = new Map<string, string[]>();
  for (const l of liquidations) {
    if (isTerminal(l.state)) {
      if (l.context?.adlRound && !pendingLiquidations.has(l.id))
        fail(`stranded: ${l.id} owes ADL round ${l.context.adlRound.round + 1} with no message in flight`);
      continue;
    }
    inFlight += 1;
    const list = openLiquidationOf.get(l.positionId) ?? [];
    list.push(l.id);
    openLiquidationOf.set(l.positionId, list);
    const auctionId = startedAuctionId(l);
    const auction: AuctionRecord | undefined = auctionId ? auctions.get(auctionId) : undefined;
    const progressing =
      pendingLiquidations.has(l.id) ||
      (l.state === 'AUCTION' && auction !== undefined && pendingAuctions.has(auction.id)) ||
      (l.state === 'QUEUED' && (await tickPending(adapters, l)));
    if (!progressing) fail(`stranded: ${l.id} is ${l.state} with no message in flight`);
  }
  for (const [id, history] of observer.positionHistory) {
    const last = history[history.length - 1]!;
    const open = openLiquidationOf.get(id) ?? [];
    if (last.state === 'LIQUIDATING' && open.length !== 1)
      fail(`lost: position ${id} is LIQUIDATING with ${open.length} liquidations in progress`);
    if (last.state !== 'LIQUIDATING' && open.length > 0)
      fail(`orphan: ${open.join(', ')} in progress for ${last.state} position ${id}`);
  }

  // --- health: no liquidation of a position healthy at the price it used -----------------------------------
  for (const l of liquidations) {
    if (l.state === 'CANCELLED' || l.state === 'QUEUED') continue;
    const context = l.context;
    const version = Number(l.id.slice(l.id.lastIndexOf(':') + 1));
    const at = observer.positionAt(l.positionId, version);
    if (!context || !at) {
      fail(`health: cannot find ${l.id}'s position at version ${version}`);
      continue;
    }
    // A slice left as dust is closed whatever its health (slice-dust-carry): no tick would ever close it.
    const dustSlice = l.history[0]?.note?.startsWith(NEXT_SLICE_NOTE) && at.size < m(l.symbol).dustSize;
    if (!dustSlice && !isLiquidatable(at, context.executionMark, m(l.symbol).maintenanceMargin))
      fail(`health: ${l.id} executed at ${context.executionMark} where its position was healthy`);
  }

  const fund = await adapters.ledger.balance(insuranceAccount);
  const error = traders + fundFlow + venue + providers + adl - badDebt;
  if (error !== 0n) fail(`conservation: flows sum to ${error}, not 0`);
  return {
    violations,
    figures: {
      positions,
      liquidations: liquidations.length,
      byState,
      inFlight,
      deadLetters,
      venueOrders: input.venue.orders.size,
      venueCalls,
      venueExecutions,
      journalEntries: journal.length,
      feesCollected: fees,
      insurancePaid: paid,
      adlCovered: covered,
      badDebt,
      fundBalance: fund.balance,
      fundMin: report.minBalance,
      maxWindowDraw,
      auctions: auctions.size,
      auctionFills: auctionFillCount,
      providerCapitalUsed,
      conservation: { traders, fund: fundFlow, venue, providers, adl, badDebt, error },
    },
  };
}

/** A QUEUED liquidation whose tick is still pending: the tick's retry re-sends its message. */
async function tickPending(adapters: EmbeddedAdapters, l: LiquidationRecord): Promise<boolean> {
  const state = await adapters.markets.get(l.symbol);
  return state?.pendingSequence !== undefined && l.tickKey === `${l.symbol}#${state.pendingSequence}`;
}

function bodyField(body: string, field: string): string {
  try {
    const value = (JSON.parse(body) as Record<string, unknown>)[field];
    return typeof value === 'string' ? value : '';
  } catch {
    return '';
  }
}

function fmtFills(fills: readonly Fill[]): string {
  return `[${fills.map((f) => `${f.size}@${f.price}`).join(' ')}]`;
}

/** JSON with bigints as decimal strings. */
export const toJson = (value: unknown): string =>
  JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? v.toString() : v), 2);

/**
 * Figures of one scenario for docs/RELIABILITY.md: written to `$STRESS_FIGURES/<name>.json` when that
 * directory is set (npm run test:stress), otherwise nothing is written.
 */
export function recordFigures(name: string, figures: unknown): void {
  const dir = process.env.STRESS_FIGURES;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, `${name}.json`), `${toJson(figures)}\n`);
}
