import type { EmbeddedAdapters } from '../../shared/adapters/embedded/index.ts';
import type { RiskConfig } from '../../shared/domain/config.ts';
import type { Fill, Side, TerminalState } from '../../shared/domain/model.ts';
import { auctionFillCost } from '../../shared/domain/provider-fills.ts';
import type {
  AccountBalance,
  AuctionRecord,
  JournalEntry,
  LiquidationRecord,
  PositionRecord,
  ProviderRecord,
} from '../../shared/ports/index.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';

/**
 * A risk analyst's recomputation of the crash replay's numbers from the records its stores hold at the end (the
 * liquidations with their fills and settlements, the auctions, the fund's journal, the positions and providers as
 * they ended), with no code of the report's aggregation (shared/sim/recorder.ts, engine.ts's summary) and none of
 * the domain's accounting: each settlement's close is worked out again here from its fills, by the rules
 * accounting.ts documents, so a rounding or a sign that drifted there shows here as a difference to the unit.
 * It also says what the records must be for the numbers to be final: every liquidation in one terminal state, no
 * position left LIQUIDATING, nothing queued, the journal a chain that adds up, each settlement's money the fund's
 * entries for it, each size accounted for.
 */

/** What the replay's stores hold at its end, as read by `readStores` (the engine's `inspect`). */
export interface ReplayStores {
  readonly liquidations: readonly LiquidationRecord[];
  readonly auctions: readonly AuctionRecord[];
  readonly journal: readonly JournalEntry[];
  readonly balance: AccountBalance;
  /** The book's positions as they ended, by id. */
  readonly positions: ReadonlyMap<string, PositionRecord>;
  readonly providers: ReadonlyMap<string, ProviderRecord>;
  /** Messages left on the liquidation and auction queues (visible, in flight or delayed) and dead-lettered. */
  readonly queued: number;
  readonly deadLetters: number;
}

export async function readStores(
  adapters: EmbeddedAdapters,
  book: readonly PositionRecord[],
  providers: readonly ProviderRecord[],
): Promise<ReplayStores> {
  const positions = new Map<string, PositionRecord>();
  for (const p of book) {
    const found = await adapters.positions.get(p.id);
    if (found) positions.set(p.id, found);
  }
  const finalProviders = new Map<string, ProviderRecord>();
  for (const p of providers) {
    const found = adapters.providers.peek(p.id);
    if (found) finalProviders.set(p.id, found);
  }
  let queued = 0;
  for (const q of [adapters.liquidationQueue, adapters.auctionQueue]) {
    const d = await q.depth();
    queued += d.visible + d.inFlight + d.delayed;
  }
  let deadLetters = 0;
  for (const q of [adapters.liquidationDeadLetters, adapters.auctionDeadLetters]) {
    const d = await q.depth();
    deadLetters += d.visible + d.inFlight + d.delayed;
  }
  return {
    liquidations: adapters.liquidations.all(),
    auctions: adapters.auctions.all(),
    journal: await adapters.ledger.journal(INSURANCE_ACCOUNT),
    balance: await adapters.ledger.balance(INSURANCE_ACCOUNT),
    positions,
    providers: finalProviders,
    queued,
    deadLetters,
  };
}

export interface AuditInput {
  readonly strategy: 'waterfall' | 'no-auction' | 'market-only';
  readonly symbol: string;
  readonly config: RiskConfig;
  readonly book: readonly PositionRecord[];
  /** The providers as the run started (none take part in no-auction). */
  readonly providers: readonly ProviderRecord[];
  readonly fundStart: bigint;
  /** Every mark the run fed its ticks (an auction fill's mark is one of them: see auctionMark). */
  readonly marks: readonly bigint[];
  readonly stores: ReplayStores;
}

/** Amounts in QuoteE6, sizes in BaseE8. */
export interface AuditedReplay {
  readonly liquidations: number;
  /** By terminal state; what the table's "settled by" rows count. */
  readonly settledBy: { market: number; auction: number; insurance: number; adl: number };
  /** SETTLED_ADL records where ADL closed nothing and covered nothing: the deficit stayed bad debt. */
  readonly adlBadDebtOnly: number;
  /** Settlements that left some of their deficit uncovered. */
  readonly settlementsWithUncovered: number;
  /** Of the settlements the auction took part in, by terminal state. */
  readonly auctionSettledBy: { market: number; auction: number; insurance: number; adl: number };
  readonly cancelled: number;
  readonly nonTerminal: number;
  readonly positionsLiquidated: number;
  /** Settlements of shorts: their closes buy. */
  readonly shortSettlements: number;
  /** Settlements each layer acted in (closed size, paid a shortfall, or was handed a deficit). */
  readonly acted: { market: number; lastResort: number; auction: number; insurance: number; adl: number };
  readonly closedSize: { market: bigint; lastResort: bigint; auction: bigint; adl: bigint; carried: bigint };
  /**
   * What the closes were worth, summed exactly and floored once: market fills at price x size, auction fills at
   * what their providers paid (their cost), ADL at size x the settlement's mark.
   */
  readonly volume: { market: bigint; lastResort: bigint; auction: bigint; adl: bigint };
  readonly marketOrders: number;
  readonly lastResortOrders: number;
  /** One per market order that filled, hundredths of a bp, ascending. */
  readonly slippageSamples: readonly number[];
  readonly zeroPriceFills: number;
  /** Market fills and auction fills below (above, a BUY) the mark of their time, floor(exact / 1e10). */
  readonly executionCost: bigint;
  /** Of it, the auctions': what providers bought under the mark (their discount). */
  readonly providersDiscount: bigint;
  /** Providers' capital consumed (their records' start less end) and what their fills cost them. */
  readonly providerCapitalUsed: bigint;
  readonly providerCost: bigint;
  readonly fund: {
    readonly start: bigint;
    readonly end: bigint;
    readonly min: bigint;
    /** Deepest fall from a running peak, and that peak (the ratio is what the table shows). */
    readonly fall: bigint;
    readonly peak: bigint;
    /** Journal: what the fees credited and the shortfall payouts debited. */
    readonly earned: bigint;
    readonly paid: bigint;
  };
  /** Settlements' amounts summed. */
  readonly fees: bigint;
  readonly insurancePaid: bigint;
  readonly shortfall: bigint;
  readonly badDebt: bigint;
  readonly badDebtCovered: bigint;
  readonly badDebtUncovered: bigint;
  /** Traders' wealth (collateral left, or payout) at the end less the collateral they started with. */
  readonly tradersChange: bigint;
  /** ADL's counterparties: positions ADL closed (some of), and the size it closed on them. */
  readonly adlCounterparties: number;
  readonly adlCounterpartySize: bigint;
  /** Settlements whose money was worked out from the fills here (all but those planned again). */
  readonly settlementsRederived: number;
  readonly settlementsReplanned: number;
  /** Whole units ADL's closes (and the trader's own close with them) rounded away, credited to the fund with the fee. */
  readonly adlRoundingCredited: bigint;
}

export interface Audit {
  readonly numbers: AuditedReplay;
  /** Every way the records fail to be final and consistent; empty when they are. */
  readonly problems: readonly string[];
}

// --- arithmetic, on its own -----------------------------------------------------------------------------------

const E10 = 10n ** 10n;
const PPM = 1_000_000n;
const floorDiv = (n: bigint, d: bigint): bigint => {
  const q = n / d;
  return n % d !== 0n && n < 0n !== d < 0n ? q - 1n : q;
};
const ceilDiv = (n: bigint, d: bigint): bigint => -floorDiv(-n, d);
/** What flooring an E16 amount to whole units (E6) leaves, 0 <= it < 1e10. */
const subUnit = (n16: bigint): bigint => n16 - floorDiv(n16, E10) * E10;
const min = (a: bigint, b: bigint): bigint => (a < b ? a : b);
const max = (a: bigint, b: bigint): bigint => (a > b ? a : b);
/** The smallest of some values (one at least). */
export const least = (values: readonly bigint[]): bigint => values.reduce(min);
/** E16 PnL of closing `size` at `value16` (what it sold or bought for, E16) against `entry`. */
const pnl16 = (side: Side, size: bigint, value16: bigint, entry: bigint): bigint =>
  side === 'LONG' ? value16 - size * entry : size * entry - value16;
/** What a fill settled for, E16: an auction fill's provider paid (was paid) its cost in whole units. */
const value16 = (f: Fill): bigint => (f.cost === undefined ? f.size * f.price : f.cost * E10);

const TERMINAL: Readonly<Record<string, TerminalState>> = {
  market: 'SETTLED_MARKET',
  auction: 'SETTLED_AUCTION',
  insurance: 'SETTLED_INSURANCE',
  adl: 'SETTLED_ADL',
};
const TERMINAL_STATES = new Set<string>([...Object.values(TERMINAL), 'CANCELLED']);

/** A position as a slice found it (what the walk over its liquidations carries from one to the next). */
interface Held {
  size: bigint;
  collateral: bigint;
  /** E16 by which the collateral overstates the exact margin (a slice's rounding, taken back at the close). */
  over: bigint;
}

/** The position's liquidations in the order they ran: ids are `${positionId}:${version it started at}`. */
const versionOf = (l: LiquidationRecord): number => Number(l.id.slice(l.id.lastIndexOf(':') + 1));

/**
 * The mark an auction fill was priced at: a provider's bid stands at mark x (1 - d) rounded up (SELL), mark x
 * (1 + d) rounded down (BUY), and fills at it; of the marks the run fed, the one(s) that give this price.
 */
function auctionMark(
  price: bigint,
  direction: 'BUY' | 'SELL',
  discountPpm: bigint,
  marks: ReadonlySet<bigint>,
): bigint[] {
  const [lo, hi] =
    direction === 'SELL'
      ? [floorDiv((price - 1n) * PPM, PPM - discountPpm) + 1n, floorDiv(price * PPM, PPM - discountPpm)]
      : [ceilDiv(price * PPM, PPM + discountPpm), ceilDiv((price + 1n) * PPM, PPM + discountPpm) - 1n];
  const found: bigint[] = [];
  for (let m = lo; m <= hi; m++) if (marks.has(m)) found.push(m);
  return found;
}

export function auditReplay(input: AuditInput): Audit {
  const { stores, strategy } = input;
  const problems: string[] = [];
  const fail = (what: string): void => {
    // Bounded: a broken run must not print a million lines.
    if (problems.length < 50) problems.push(what);
  };
  const market = input.config.markets.find((m) => m.symbol === input.symbol);
  if (!market) throw new Error(`audit: no market ${input.symbol}`);
  const feeRate = market.liquidationFee;
  const marks = new Set(input.marks);
  const providerStart = new Map(input.providers.map((p) => [p.id, p]));
  const auctionOf = new Map(stores.auctions.map((a) => [a.liquidationId, a]));
  const journalOf = new Map<string, JournalEntry[]>();

  // --- the fund's journal: one chain from the start, each key once, adding up to the balance ------------------
  let fundStart: bigint | undefined;
  let earned = 0n;
  let paid = 0n;
  let fundMin: bigint | undefined;
  let peak = 0n;
  let fall = 0n;
  let fallPeak = 0n;
  const keys = new Set<string>();
  let previous: JournalEntry | undefined;
  for (const e of stores.journal) {
    if (keys.has(e.idempotencyKey)) fail(`journal: key ${e.idempotencyKey} twice`);
    keys.add(e.idempotencyKey);
    if (e.account !== INSURANCE_ACCOUNT) fail(`journal: entry ${e.sequence} of account ${e.account}`);
    if (e.balanceAfter !== e.balanceBefore + e.amount) fail(`journal: entry ${e.sequence} does not add up`);
    if (previous && e.balanceBefore !== previous.balanceAfter)
      fail(`journal: entry ${e.sequence} starts at ${e.balanceBefore}, not ${previous.balanceAfter}`);
    if (previous && e.sequence !== previous.sequence + 1)
      fail(`journal: sequence ${e.sequence} after ${previous.sequence}`);
    if (!previous && e.balanceBefore !== 0n) fail(`journal: starts at ${e.balanceBefore}`);
    if (e.balanceAfter < 0n) fail(`journal: entry ${e.sequence} leaves the fund at ${e.balanceAfter}`);
    previous = e;
    if (e.kind === 'fund-start') {
      if (fundStart !== undefined) fail('journal: two fund-start entries');
      fundStart = e.amount;
      peak = e.balanceAfter;
      fundMin = e.balanceAfter;
      continue;
    }
    if (e.kind === 'liquidation-fee') earned += e.amount;
    else if (e.kind === 'shortfall-payout') paid -= e.amount;
    else fail(`journal: entry ${e.sequence} of kind ${e.kind}`);
    const list = journalOf.get(e.reference) ?? [];
    list.push(e);
    journalOf.set(e.reference, list);
    fundMin = fundMin === undefined ? e.balanceAfter : min(fundMin, e.balanceAfter);
    if (e.balanceAfter > peak) peak = e.balanceAfter;
    const f = peak - e.balanceAfter;
    // The deepest fall relative to its peak (cross-multiplied: exact).
    if (f > 0n && (fall === 0n || f * fallPeak > fall * peak)) {
      fall = f;
      fallPeak = peak;
    }
  }
  const start = fundStart ?? 0n;
  if (input.fundStart > 0n && fundStart !== input.fundStart)
    fail(`journal: fund started at ${fundStart}, not ${input.fundStart}`);
  const end = previous?.balanceAfter ?? 0n;
  if (stores.balance.balance !== end)
    fail(`ledger: balance ${stores.balance.balance}, journal ends at ${end}`);
  if (end !== start + earned - paid) fail('ledger: start + fees - payouts is not the end');
  // A fund that started empty has no entry for it: its minimum is that 0.
  if (fundStart === undefined) fundMin = min(fundMin ?? 0n, 0n);
  // No fall at all: 0 of what it started with.
  if (fall === 0n) fallPeak = start;

  // --- the liquidations ------------------------------------------------------------------------------------------
  const settledBy = { market: 0, auction: 0, insurance: 0, adl: 0 };
  const acted = { market: 0, lastResort: 0, auction: 0, insurance: 0, adl: 0 };
  const closedSize = { market: 0n, lastResort: 0n, auction: 0n, adl: 0n, carried: 0n };
  const volume16 = { market: 0n, lastResort: 0n, auction: 0n, adl: 0n };
  let adlBadDebtOnly = 0;
  let withUncovered = 0;
  let shortSettlements = 0;
  const auctionSettledBy = { market: 0, auction: 0, insurance: 0, adl: 0 };
  let cancelled = 0;
  let nonTerminal = 0;
  let marketOrders = 0;
  let lastResortOrders = 0;
  const slippage: number[] = [];
  let zeroPriceFills = 0;
  let cost16 = 0n;
  let discount16 = 0n;
  let providerCost = 0n;
  const providerSpent = new Map<string, bigint>();
  let fees = 0n;
  let insurancePaid = 0n;
  let shortfallTotal = 0n;
  let covered = 0n;
  let uncovered = 0n;
  let rederived = 0;
  let roundingCredited = 0n;
  /** What ADL's counterparties kept of their closes (before what they gave), against their records before. */
  let counterpartiesKept = 0n;
  let replanned = 0;
  const liquidated = new Set<string>();
  const bookOf = new Map(input.book.map((p) => [p.id, p]));
  const byPosition = new Map<string, LiquidationRecord[]>();
  for (const l of stores.liquidations) {
    const list = byPosition.get(l.positionId) ?? [];
    list.push(l);
    byPosition.set(l.positionId, list);
  }
  const ids = new Set(stores.liquidations.map((l) => l.id));
  for (const [reference] of journalOf)
    if (!ids.has(reference)) fail(`journal: entries for ${reference}, no such liquidation`);

  const direction = (side: Side): 'BUY' | 'SELL' => (side === 'LONG' ? 'SELL' : 'BUY');
  const walked = new Map<string, Held & { closed?: bigint }>();

  for (const [positionId, list] of byPosition) {
    const initial = bookOf.get(positionId);
    if (!initial) {
      fail(`liquidation of ${positionId}: not in the book`);
      continue;
    }
    list.sort((a, b) => versionOf(a) - versionOf(b));
    let held: Held & { closed?: bigint } = {
      size: initial.size,
      collateral: initial.collateral,
      over: initial.collateralOverE16 ?? 0n,
    };
    for (const l of list) {
      const terminalEvents = l.history.filter((h) => TERMINAL_STATES.has(h.state));
      const isTerminal = TERMINAL_STATES.has(l.state);
      if (!isTerminal || l.context?.adlRound !== undefined) {
        nonTerminal += 1;
        fail(`${l.id}: ${l.state}${l.context?.adlRound ? ' with ADL rounds to come' : ''} at the end`);
        continue;
      }
      if (terminalEvents.length !== 1 || l.history[l.history.length - 1]?.state !== l.state)
        fail(
          `${l.id}: ${terminalEvents.length} terminal events, last ${l.history.at(-1)?.state}, state ${l.state}`,
        );
      if (held.closed !== undefined) fail(`${l.id}: after its position closed`);
      const sides = l.side;
      const dir = direction(sides);
      if (l.state === 'CANCELLED') {
        cancelled += 1;
        if (l.marketFills.length > 0 || l.settlement) fail(`${l.id}: cancelled with fills or a settlement`);
        if (journalOf.has(l.id)) fail(`${l.id}: cancelled with fund entries`);
        continue;
      }
      const s = l.settlement;
      const context = l.context;
      if (!s || !context) {
        fail(`${l.id}: ${l.state} without a settlement`);
        continue;
      }
      liquidated.add(positionId);
      const layer =
        l.state === 'SETTLED_MARKET'
          ? 'market'
          : l.state === 'SETTLED_AUCTION'
            ? 'auction'
            : l.state === 'SETTLED_INSURANCE'
              ? 'insurance'
              : 'adl';
      settledBy[layer] += 1;
      if (s.auctionClosedSize > 0n) auctionSettledBy[layer] += 1;
      if (s.badDebt > 0n) withUncovered += 1;
      if (l.side === 'SHORT') shortSettlements += 1;
      const deficit = s.adlCovered + s.badDebt;
      if (l.state === 'SETTLED_ADL' && s.adlClosedSize === 0n && s.adlCovered === 0n) adlBadDebtOnly += 1;

      // The fills, as the records hold them: the market order's, the last resort's (appended to the market fills at
      // the settlement), the auction's, and ADL's size at the settlement's mark.
      const mark = context.settle?.mark ?? context.executionMark;
      const lastResortCount = context.settle?.lastResortFills?.length ?? 0;
      const orderFills = l.marketFills.slice(0, l.marketFills.length - lastResortCount);
      const lastResortFills = l.marketFills.slice(l.marketFills.length - lastResortCount);
      const auction = auctionOf.get(l.id);
      if (auction?.state === 'RUNNING') fail(`${l.id}: settled with its auction running`);
      const auctionFills: Fill[] = (auction?.fills ?? []).map(({ price, size, cost }) =>
        cost === undefined ? { price, size } : { price, size, cost },
      );
      const sum = (fills: readonly Fill[]): bigint => fills.reduce((t, f) => t + f.size, 0n);
      if (sum(l.marketFills) !== s.marketClosedSize)
        fail(`${l.id}: market fills ${sum(l.marketFills)} vs ${s.marketClosedSize}`);
      if (sum(lastResortFills) !== s.lastResortClosedSize)
        fail(`${l.id}: last-resort fills ${sum(lastResortFills)} vs ${s.lastResortClosedSize}`);
      if (sum(auctionFills) !== s.auctionClosedSize)
        fail(`${l.id}: auction fills ${sum(auctionFills)} vs ${s.auctionClosedSize}`);
      if (context.settle && sum(context.settle.auctionFills) !== s.auctionClosedSize)
        fail(`${l.id}: frozen auction fills differ from its auction's`);
      if (s.marketClosedSize + s.auctionClosedSize + s.adlClosedSize + s.carriedSize !== context.plannedSize)
        fail(`${l.id}: sizes do not add up to the slice ${context.plannedSize}`);
      if (s.shortfall !== s.insurancePaid + s.adlCovered + s.badDebt)
        fail(
          `${l.id}: shortfall ${s.shortfall} is not paid ${s.insurancePaid} + covered ${s.adlCovered} + left ${s.badDebt}`,
        );
      if (strategy === 'market-only' && s.adlCovered > 0n)
        fail(`${l.id}: the baseline socialized ${s.adlCovered}`);
      if (strategy === 'no-auction' && s.auctionClosedSize > 0n)
        fail(`${l.id}: an auction without providers`);
      if (strategy === 'market-only' && (auction || s.auctionClosedSize > 0n))
        fail(`${l.id}: an auction in the baseline`);

      // The terminal state is the last layer that acted.
      const layers: string[] = [];
      if (s.marketClosedSize > 0n) layers.push('market');
      if (s.auctionClosedSize > 0n) layers.push('auction');
      if (s.insurancePaid > 0n) layers.push('insurance');
      if (s.adlClosedSize > 0n || deficit > 0n) layers.push('adl');
      if (TERMINAL[layers.at(-1) ?? ''] !== l.state)
        fail(`${l.id}: ${l.state}, but the last layer acting was ${layers.at(-1)}`);
      if (s.marketClosedSize > 0n) acted.market += 1;
      if (s.lastResortClosedSize > 0n) acted.lastResort += 1;
      if (s.auctionClosedSize > 0n) acted.auction += 1;
      if (s.insurancePaid > 0n) acted.insurance += 1;
      if (s.adlClosedSize > 0n || deficit > 0n) acted.adl += 1;
      closedSize.market += s.marketClosedSize;
      closedSize.lastResort += s.lastResortClosedSize;
      closedSize.auction += s.auctionClosedSize;
      closedSize.adl += s.adlClosedSize;
      closedSize.carried += s.carriedSize;

      // Volumes, orders, slippage and what each fill gave up against the mark of its time.
      const orderMark = context.executionMark;
      for (const [fills, orderAt, lastResort] of [
        [orderFills, orderMark, false],
        [lastResortFills, mark, true],
      ] as const) {
        if (fills.length === 0) continue;
        marketOrders += 1;
        if (lastResort) lastResortOrders += 1;
        let size = 0n;
        let value = 0n;
        for (const f of fills) {
          size += f.size;
          value += f.size * f.price;
          volume16.market += f.size * f.price;
          if (lastResort) volume16.lastResort += f.size * f.price;
          cost16 += (dir === 'SELL' ? orderAt - f.price : f.price - orderAt) * f.size;
          if (dir === 'SELL' ? f.price * 100n <= orderAt : f.price >= orderAt * 100n) zeroPriceFills += 1;
        }
        const atMark = size * orderAt;
        slippage.push(Number(ceilDiv((dir === 'SELL' ? atMark - value : value - atMark) * PPM, atMark)));
      }
      for (const f of auction?.fills ?? []) {
        volume16.auction += value16(f);
        const cost = auctionFillCost(auction!.direction, f);
        providerCost += cost;
        providerSpent.set(f.providerId, (providerSpent.get(f.providerId) ?? 0n) + cost);
        if (dir === 'SELL' ? f.price * 100n <= mark : f.price >= mark * 100n) zeroPriceFills += 1;
        const provider = providerStart.get(f.providerId);
        if (!provider) {
          fail(`${l.id}: a fill of provider ${f.providerId}, not one the run started with`);
          continue;
        }
        const found = [...new Set(auctionMark(f.price, auction!.direction, provider.maxDiscountPpm, marks))];
        if (found.length !== 1) {
          fail(
            `${l.id}: auction fill at ${f.price} matches ${found.length} marks at ${provider.maxDiscountPpm} ppm`,
          );
          continue;
        }
        const d16 = (auction!.direction === 'SELL' ? found[0]! - f.price : f.price - found[0]!) * f.size;
        cost16 += d16;
        discount16 += d16;
      }
      volume16.adl += s.adlClosedSize * mark;

      // ADL's closes on its counterparties: those the plan used, frozen in its rank order, each closing all it holds
      // until the size is taken (adl.ts, allocateAdl), at the mark, each rounded once on its exact margin (the sub-unit
      // a slice left, collateralUnderE16, with the closed part's profit). What each keeps before it gives: its whole
      // units, less the unit its record's collateral held over that margin (the close takes it back).
      let cpRounding16 = 0n;
      let sizeLeft = s.adlClosedSize;
      for (const c of context.settle?.candidates ?? []) {
        const take = min(c.size, sizeLeft);
        sizeLeft -= take;
        if (take === 0n) continue;
        const under = c.collateralUnderE16 ?? 0n;
        const exact16 = under + pnl16(c.side, take, take * mark, c.entryPrice);
        cpRounding16 += subUnit(exact16);
        counterpartiesKept += floorDiv(exact16, E10) - (under > 0n ? 1n : 0n);
      }
      if (sizeLeft !== 0n)
        fail(`${l.id}: ADL closed ${s.adlClosedSize}, its counterparties ${s.adlClosedSize - sizeLeft}`);

      // The fund's entries for it are its settlement's fee and payout.
      const entries = journalOf.get(l.id) ?? [];
      const feeIn = entries.filter((e) => e.kind === 'liquidation-fee').reduce((t, e) => t + e.amount, 0n);
      const paidOut = -entries
        .filter((e) => e.kind === 'shortfall-payout')
        .reduce((t, e) => t + e.amount, 0n);
      if (feeIn !== s.fee) fail(`${l.id}: fund credited ${feeIn} of fee, settlement says ${s.fee}`);
      if (paidOut !== s.insurancePaid)
        fail(`${l.id}: fund paid ${paidOut}, settlement says ${s.insurancePaid}`);
      fees += s.fee;
      insurancePaid += s.insurancePaid;
      shortfallTotal += s.shortfall;
      covered += s.adlCovered;
      uncovered += s.badDebt;

      // The close worked out again from the fills and the position as the slice found it.
      const frozen = context.settle?.position;
      if (
        frozen &&
        (frozen.size !== held.size ||
          frozen.collateral !== held.collateral ||
          (frozen.collateralOverE16 ?? 0n) !== held.over)
      )
        fail(`${l.id}: the position as frozen differs from its liquidations' walk`);
      const entry = initial.entryPrice;
      const settledSize = context.plannedSize - s.carriedSize;
      const restSize = held.size - context.plannedSize + s.carriedSize;
      const adlFill = s.adlClosedSize > 0n ? [{ price: mark, size: s.adlClosedSize }] : [];
      const closes: Fill[] = [...l.marketFills, ...auctionFills, ...adlFill];
      if (sum(closes) !== settledSize) fail(`${l.id}: closes ${sum(closes)} of a settled ${settledSize}`);
      let fillsPnl16 = 0n;
      let notional16 = 0n;
      for (const f of closes) {
        fillsPnl16 += pnl16(sides, f.size, value16(f), entry);
        notional16 += f.size * f.price;
      }
      const feeDue = ceilDiv(notional16 * feeRate, E10 * PPM);
      const margin16 = held.collateral * E10 - held.over;
      let realized: bigint;
      let fee: bigint;
      let shortfall: bigint;
      let payout: bigint;
      let restOver = 0n;
      if (restSize > 0n) {
        // A slice: rounded up, its sub-unit carried on the rest; no shortfall, the fee capped by the whole position
        // at the worse of the claim's mark and the one it settled at.
        const equity16 = margin16 + fillsPnl16;
        const equity = ceilDiv(equity16, E10);
        realized = equity - held.collateral;
        const settledMark = context.settledMark ?? mark;
        const restMark =
          sides === 'LONG'
            ? min(context.executionMark, settledMark)
            : max(context.executionMark, settledMark);
        const whole = floorDiv(equity16 + pnl16(sides, restSize, restSize * restMark, entry), E10);
        fee = min(feeDue, max(0n, whole));
        shortfall = 0n;
        payout = equity - fee;
        restOver = equity * E10 - equity16;
      } else {
        const exact16 = margin16 + fillsPnl16;
        realized =
          exact16 < 0n ? ceilDiv(fillsPnl16 - held.over, E10) : floorDiv(fillsPnl16 - held.over, E10);
        const equity = held.collateral + realized;
        shortfall = equity < 0n ? -equity : 0n;
        fee = min(feeDue, max(0n, equity));
        payout = max(0n, equity) - fee;
      }
      const replans =
        context.settle?.replans !== undefined || entries.some((e) => /:r\d+$/.test(e.idempotencyKey));
      if (replans) replanned += 1;
      else {
        rederived += 1;
        if (s.realizedPnl !== realized)
          fail(`${l.id}: realized ${s.realizedPnl}, from its fills ${realized}`);
        if (s.traderPayout !== payout) fail(`${l.id}: payout ${s.traderPayout}, from its fills ${payout}`);
        if (s.adlClosedSize === 0n) {
          if (s.fee !== fee || s.shortfall !== shortfall)
            fail(`${l.id}: fee ${s.fee} shortfall ${s.shortfall}, from its fills ${fee} ${shortfall}`);
        } else {
          // ADL's closes round on their own; the whole units they (and a whole close of the trader's) round away are
          // credited to the fund: less shortfall first, the rest with the fee. Exactly those units: a bound (one a
          // counterparty, up to 90 of them) let a unit credited from nothing pass (review46-adl-rounding-exact).
          const units = s.fee - s.shortfall - (fee - shortfall);
          roundingCredited += units;
          const less = min(units, shortfall);
          const own16 = margin16 + fillsPnl16;
          const rounding16 = cpRounding16 + (restSize > 0n || own16 < 0n ? 0n : subUnit(own16));
          if (
            units !== floorDiv(rounding16, E10) ||
            s.shortfall !== shortfall - less ||
            s.fee !== fee + units - less
          )
            fail(
              `${l.id}: fee ${s.fee} shortfall ${s.shortfall} vs ${fee} ${shortfall} and ${units} units of ADL's rounding`,
            );
        }
      }
      held =
        restSize > 0n
          ? { size: restSize, collateral: s.traderPayout, over: restOver }
          : { size: 0n, collateral: 0n, over: 0n, closed: s.traderPayout };
    }
    walked.set(positionId, held);
  }

  // --- the positions at the end: none left in a liquidation; each liquidated one as its liquidations left it -----
  let tradersChange = 0n;
  let adlCounterparties = 0;
  let adlCounterpartySize = 0n;
  let counterpartiesChange = 0n;
  for (const initial of input.book) {
    const p = stores.positions.get(initial.id);
    if (!p) {
      fail(`${initial.id}: missing at the end`);
      continue;
    }
    if (p.state === 'LIQUIDATING') fail(`${p.id}: LIQUIDATING at the end`);
    // A deficit a slice left on its rest is bad debt nobody counted while the position stays open with it.
    if (p.state === 'OPEN' && p.collateral < 0n) fail(`${p.id}: open with a deficit of ${-p.collateral}`);
    if (p.state === 'CLOSED' && (p.collateral !== 0n || p.closedPayout === undefined))
      fail(`${p.id}: closed without its payout`);
    tradersChange += (p.state === 'CLOSED' ? (p.closedPayout ?? 0n) : p.collateral) - initial.collateral;
    const held = walked.get(p.id) ?? {
      size: initial.size,
      collateral: initial.collateral,
      over: initial.collateralOverE16 ?? 0n,
    };
    const sizeNow = p.state === 'CLOSED' ? 0n : p.size;
    const asWalked =
      held.closed !== undefined
        ? p.state === 'CLOSED' && p.closedPayout === held.closed
        : p.state !== 'CLOSED' && p.size === held.size && p.collateral === held.collateral;
    if (!asWalked) {
      // Only ADL changes a position outside its own liquidations: it closes (some of) a counterparty's size, or
      // takes profit out of its collateral (a haircut).
      const closedSome = held.closed === undefined && sizeNow < held.size;
      const haircut = held.closed === undefined && sizeNow === held.size && p.collateral < held.collateral;
      if (!closedSome && !haircut)
        fail(
          `${p.id}: ends ${p.state} ${p.size} / ${p.collateral}, its liquidations left ${held.size} / ${held.collateral}`,
        );
      adlCounterparties += 1;
      adlCounterpartySize += (held.closed === undefined ? held.size : 0n) - sizeNow;
      if (held.closed === undefined)
        counterpartiesChange +=
          (p.state === 'CLOSED' ? (p.closedPayout ?? 0n) : p.collateral) - held.collateral;
    }
  }
  // ADL closes as much on its counterparties as on the liquidated positions.
  if (adlCounterpartySize !== closedSize.adl)
    fail(`ADL closed ${closedSize.adl} of liquidated positions and ${adlCounterpartySize} of counterparties`);
  // What ADL covered came out of its counterparties, unit for unit: their wealth moved by what their closes kept
  // less what they gave (haircuts alone when ADL closed nothing). Checked only through sizes and haircuts, a unit
  // a close kept from nowhere passed while ADL closed some (review46-adl-counterparties-money).
  if (counterpartiesChange !== counterpartiesKept - covered)
    fail(
      `ADL's counterparties' wealth moved by ${counterpartiesChange}: their closes kept ${counterpartiesKept}, they gave ${covered}`,
    );
  if (strategy === 'market-only' && closedSize.adl === 0n && adlCounterparties > 0)
    fail(`the baseline changed ${adlCounterparties} positions outside their liquidations`);

  // --- providers: what each spent is what its fills cost ---------------------------------------------------------
  let providerCapitalUsed = 0n;
  for (const p of input.providers) {
    const now = stores.providers.get(p.id);
    if (strategy === 'no-auction') continue;
    if (!now) {
      fail(`provider ${p.id}: missing at the end`);
      continue;
    }
    const spent = p.capital - now.capital;
    providerCapitalUsed += spent;
    if (spent !== (providerSpent.get(p.id) ?? 0n))
      fail(`provider ${p.id}: spent ${spent}, its fills cost ${providerSpent.get(p.id) ?? 0n}`);
  }
  for (const a of stores.auctions) if (!ids.has(a.liquidationId)) fail(`auction ${a.id}: no liquidation`);
  if (stores.queued > 0) fail(`${stores.queued} messages still queued at the end`);
  if (stores.deadLetters > 0) fail(`${stores.deadLetters} dead letters`);

  return {
    numbers: {
      liquidations: stores.liquidations.length,
      settledBy,
      adlBadDebtOnly,
      settlementsWithUncovered: withUncovered,
      auctionSettledBy,
      cancelled,
      nonTerminal,
      positionsLiquidated: liquidated.size,
      shortSettlements,
      acted,
      closedSize,
      volume: {
        market: floorDiv(volume16.market, E10),
        lastResort: floorDiv(volume16.lastResort, E10),
        auction: floorDiv(volume16.auction, E10),
        adl: floorDiv(volume16.adl, E10),
      },
      marketOrders,
      lastResortOrders,
      slippageSamples: slippage.sort((a, b) => a - b),
      zeroPriceFills,
      executionCost: floorDiv(cost16, E10),
      providersDiscount: floorDiv(discount16, E10),
      providerCapitalUsed,
      providerCost,
      fund: { start, end, min: fundMin ?? start, fall, peak: fallPeak, earned, paid },
      fees,
      insurancePaid,
      shortfall: shortfallTotal,
      badDebt: covered + uncovered,
      badDebtCovered: covered,
      badDebtUncovered: uncovered,
      tradersChange,
      adlCounterparties,
      adlCounterpartySize,
      settlementsRederived: rederived,
      settlementsReplanned: replanned,
      adlRoundingCredited: roundingCredited,
    },
    problems,
  };
}
