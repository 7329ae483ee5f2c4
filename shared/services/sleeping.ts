import {
  type AuctionStatus,
  auctionStatus,
  lastPriceBeforeReset,
  MAX_AUCTION_PRICE,
} from '../domain/auction.ts';
import { accepts, bidPrice, smallestFill } from '../domain/clearing.ts';
import { lotSizeOf, marketConfig, type RiskConfig } from '../domain/config.ts';
import { type AuctionSleep, earlierWake, planSleep } from '../domain/sleep.ts';
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
} from '../domain/units.ts';
import { METRICS } from '../metrics.ts';
import {
  type AuctionRecord,
  type AuctionStepMessage,
  ConditionFailedError,
  type MarketState,
  maxLotIn,
  type ProviderRecord,
  type ProvidersEpochCheck,
  providersEpochOf,
} from '../ports/index.ts';
import { encodeMessage, stepMessageOf } from '../schemas/messages.ts';
import type { SettlementDeps } from './context.ts';
import { movedOn, sendWakeContinuation, sidesOf, wakeInOrder } from './wake.ts';

/**
 * What the liquidation and auction functions share about sleeping auctions: the bid an auction waits for,
 * the plan of a new auction's first step, and the market's wake mark that must cover a sleeper's.
 */

/**
 * The first bid the auction can reach, as a discount (premium) from the mark; undefined: nobody can bid any more.
 * A provider counts when it has the room for a dust-sized piece of `remainingLot` (or all of it, if smaller;
 * one base unit at least, when the market has no dust; in whole lots of the market's: clearing's smallestFill)
 * and the capital to pay for it at the price it fills at, its own bid at the mark (clearing's bidPrice: each bid
 * fills at its own price, session 44). A BUY provider counted at
 * the auction's price of the moment, below its ask, kept an auction asleep until its ask, then nobody filled (found
 * by the pipeline fuzzing, session 27); a SELL provider whose capital pays for the piece only below its bid never
 * fills (the clearing takes no crumbs), so it is no bid. A bid this curve does not reach before it must reset (SELL:
 * below the last price it offers then; BUY: above it) is no bid on it: at this mark the auction would walk its
 * curve unfilled (an audit of the auction path, session 36: a SELL discount of 0.4 or a BUY premium of 0.8, within
 * the floor, held a lot 181 minutes); whether a reset's curve reaches it is stepOnce's question (services/auction.ts).
 */
export function bestBid(
  auction: Pick<AuctionRecord, 'direction' | 'symbol' | 'top' | 'startedAtMs'>,
  status: AuctionStatus,
  providers: readonly ProviderRecord[],
  config: RiskConfig,
  remainingLot: BaseE8,
  mark: PriceE8,
  last: PriceE8 = lastPriceOffered(auction, status, mark, config),
): Ppm | undefined {
  // The clearing's smallest fill: a market without dust still needs a bidder to buy one base unit (one lot): capital
  // of 0 is no bid.
  const market = marketConfig(config, auction.symbol);
  const smallest = smallestFill(remainingLot, market.dustSize, lotSizeOf(market));
  const { direction } = auction;
  let best: Ppm | undefined;
  for (const p of providers) {
    // Beyond the floor, or not reached by this curve's last price (the bid itself: `accepts`), it never fills here.
    const reached = withinFloor(p.maxDiscountPpm, direction, config) && accepts(p, direction, last, mark);
    if (!reached || (best !== undefined && p.maxDiscountPpm >= best)) continue;
    if (canBid(p, smallest, bidPrice(p, direction, mark))) best = p.maxDiscountPpm;
  }
  return best;
}

/**
 * The last price the curve offers before its reset, or its price now if beyond (a linear curve between its last
 * boundary and its reset, stepped by a wake): a bid beyond it is never reached on this curve.
 */
function lastPriceOffered(
  auction: Pick<AuctionRecord, 'direction' | 'top' | 'startedAtMs'>,
  status: AuctionStatus,
  mark: PriceE8,
  config: RiskConfig,
): PriceE8 {
  const atBoundary = lastPriceBeforeReset(auction, mark, config.auction);
  return auction.direction === 'SELL' ? minBig(atBoundary, status.price) : maxBig(atBoundary, status.price);
}

/** bestBid's bound when any price is one some curve may offer: who has the room and capital to bid at all. */
export const anyPriceBound = (direction: AuctionRecord['direction']): PriceE8 =>
  direction === 'SELL' ? 1n : MAX_AUCTION_PRICE;

/**
 * A bid the auction's price can reach at some mark: the floor follows the mark as the bid does, so a SELL discount
 * below the floor's share (1 - d < floor, or a price of 0 or less) or a BUY premium above it (1 + d > 1 / floor) is
 * never reached, whatever the mark; such a provider would keep an auction nobody takes walking its whole curve.
 */
function withinFloor(discount: Ppm, direction: AuctionRecord['direction'], config: RiskConfig): boolean {
  const { floor } = config.auction;
  if (direction === 'SELL') return PPM_SCALE - discount > 0n && PPM_SCALE - discount >= floor;
  return floor === 0n || (PPM_SCALE + discount) * floor <= PPM_SCALE * PPM_SCALE;
}

/** A provider that could take `size` at `price`: room for it, and the capital (clearing's sizeAt, inverted). */
const canBid = (p: ProviderRecord, size: BaseE8, price: PriceE8): boolean =>
  p.maxLot >= size && p.capital * NOTIONAL_TO_QUOTE >= size * price;

/**
 * The providers as one auction's bidders: each one's maxLot is its lot in the auction's market (maxLotIn), less
 * what it took at earlier steps (the records written back keep their own terms).
 */
export function biddersOf(
  providers: readonly ProviderRecord[],
  symbol: string,
  fills: AuctionRecord['fills'],
): readonly ProviderRecord[] {
  if (fills.length === 0 && !providers.some((p) => p.maxLotBySymbol)) return providers;
  const taken = new Map<string, bigint>();
  for (const f of fills) taken.set(f.providerId, (taken.get(f.providerId) ?? 0n) + f.size);
  return providers.map((p) => {
    const lot = maxLotIn(p, symbol);
    const room = maxBig(0n, lot - (taken.get(p.id) ?? 0n));
    return room === p.maxLot ? p : { ...p, maxLot: room };
  });
}

/** How a new auction begins: no provider can bid on it, its first step is due at once, or it sleeps first. */
export type AuctionOpening =
  | { readonly kind: 'no-bidder' }
  | { readonly kind: 'step-now' }
  | { readonly kind: 'sleep'; readonly sleep: AuctionSleep };

/**
 * The first step of a new auction, planned as it starts: it opens beyond the mark (above for SELL, below for
 * BUY), where no bid stands, so its first step would fill nothing and only plan the sleep. 'no-bidder': no
 * provider whose bid the curve reaches has the capital and room for a dust-sized piece at its bid, the price it
 * fills at (its first step would end it); 'step-now': a reset is due or the start price already reaches the best bid.
 */
export function planOpening(
  auction: AuctionRecord,
  mark: PriceE8,
  nowMs: number,
  config: RiskConfig,
  providers: readonly ProviderRecord[],
): AuctionOpening {
  const status = auctionStatus(auction, mark, nowMs, config.auction);
  const bidders = biddersOf(providers, auction.symbol, auction.fills);
  const best = bestBid(auction, status, bidders, config, auction.remainingLot, mark);
  if (best === undefined) return { kind: 'no-bidder' };
  if (status.needsReset || accepts({ maxDiscountPpm: best }, auction.direction, status.price, mark)) {
    return { kind: 'step-now' };
  }
  return { kind: 'sleep', sleep: planSleep(auction, mark, nowMs, config.auction, best) };
}

/**
 * The check a sleep's commit makes: the market's providers are those the sleep was planned on, the market having
 * been read before they were listed. Otherwise registerProvider's wake, sent before this sleeper committed, would
 * miss it, and it would sleep up to 900 s on bids that are no longer all there are (noticed in session 27: a
 * provider registered while an auction planned its sleep went unseen).
 */
export const providersUnchangedSince = (
  symbol: string,
  market: MarketState | undefined,
): ProvidersEpochCheck => ({ symbol, epoch: providersEpochOf(market) });

/** Whether the market, as read, covers the auction's wake mark (an auction awake needs no cover). */
export function wakeCovered(auction: AuctionRecord, market: MarketState | undefined): boolean {
  const { wakeMark, direction } = auction;
  if (wakeMark === undefined) return true;
  const covering = market?.wakeMarks?.[direction];
  return covering !== undefined && earlierWake(direction, covering, wakeMark) === covering;
}

/**
 * After the commit: the market's wake mark must cover the sleeper's, or no tick would wake it. Failing here
 * only costs the early wake (the step message still comes when planned), so it is reported, not retried.
 * Written even when the market as read covers it: a tick may be replacing that mark with one found before this
 * sleeper committed, and the cover's count makes that replace fail. `market`: the market record as read (which
 * write to try first).
 */
export async function coverWake(
  auction: AuctionRecord,
  market: MarketState | undefined,
  deps: Pick<SettlementDeps, 'markets' | 'telemetry'>,
): Promise<void> {
  const { wakeMark, direction, symbol } = auction;
  if (wakeMark === undefined) return;
  try {
    await deps.markets.coverWakeMark(symbol, direction, wakeMark, wakeCovered(auction, market));
  } catch (error) {
    deps.telemetry.count(METRICS.AuctionWakeFailures.name, 1, { Market: symbol });
    deps.telemetry.warn('wake mark not recorded; the auction wakes when its step message comes', {
      auctionId: auction.id,
      error: error instanceof Error ? error.message : String(error),
    });
  }
}

/** When a step sent `delaySeconds` from now is due (as sendStep stamps its message). */
export const dueIn = (delaySeconds: number, deps: Pick<SettlementDeps, 'clock'>): number =>
  deps.clock.nowMs() + delaySeconds * 1000;

/**
 * Sends the message of the auction's current step, due `delaySeconds` from now: a step delivered later than that
 * does not let the curve walk on meanwhile (auction.ts onTimeCurve).
 */
export async function sendStep(
  auction: Pick<AuctionRecord, 'id' | 'step' | 'symbol'>,
  delaySeconds: number,
  deps: Pick<SettlementDeps, 'auctionQueue' | 'clock'>,
): Promise<void> {
  await deps.auctionQueue.send(
    encodeMessage(stepMessageOf(auction, dueIn(delaySeconds, deps))),
    delaySeconds,
  );
}

/**
 * Whether a provider with `capital` still makes, in `symbol` at `mark`, every bid a sleeper there may have planned on
 * it (bestBid): it pays for a dust-sized piece (one base unit without dust) at the highest price an auction of the
 * market offers, a BUY's cap of mark / floor (a SELL bid is never above the mark). Only capital is shared between
 * auctions: a provider's lot room is per auction, so another auction's fills never take the room a sleeper counted.
 */
export function keepsEveryBid(capital: QuoteE6, symbol: string, mark: PriceE8, config: RiskConfig): boolean {
  const piece = maxBig(1n, marketConfig(config, symbol).dustSize);
  const highest = div(mark * PPM_SCALE, config.auction.floor, 'ceil');
  return capital * NOTIONAL_TO_QUOTE >= piece * highest;
}

/**
 * The markets in which a step's fills leave a provider short of a bid their sleepers may have planned on
 * (keepsEveryBid at each market's mark): those sleepers plan again now, not at the step they planned on it, up to
 * 900 s later, only to end then and hand their lot to the fund and ADL (an audit of two markets, session 40: BTC
 * auctions slept on providers ETH auctions had spent). A provider's capital falls below it with the fill that spends
 * it (and perhaps one more, a last piece at a lower price): rare. `filled`: the providers as the step writes them;
 * `symbol`, `mark`: the step's market and mark. The other markets the filled providers quote are read in one batch.
 */
export async function spentMarkets(
  filled: ReadonlyMap<string, ProviderRecord>,
  symbol: string,
  mark: PriceE8,
  deps: Pick<SettlementDeps, 'reader' | 'config'>,
): Promise<string[]> {
  const configured = new Set(deps.config.markets.map((m) => m.symbol));
  const others = new Set<string>();
  for (const provider of filled.values())
    for (const market of provider.symbols)
      if (market !== symbol && configured.has(market)) others.add(market);
  const marks = new Map<string, PriceE8>([[symbol, mark]]);
  // Every other market's mark in one batch read, as read now: a GetItem each made a provider quoting 40 markets
  // cost 39 calls a fill step (session 41). A cached mark could miss a wake when the mark rose since.
  if (others.size > 0)
    for (const market of await deps.reader.markets([...others]))
      if (market.lastTick) marks.set(market.symbol, market.lastTick.markPrice);
  const spent = new Set<string>();
  for (const provider of filled.values()) {
    for (const market of provider.symbols) {
      const at = marks.get(market);
      // No mark yet: no auction in that market.
      if (!spent.has(market) && at !== undefined && !keepsEveryBid(provider.capital, market, at, deps.config))
        spent.add(market);
    }
  }
  return [...spent];
}

/**
 * How far a debt's wake went (AuctionRecord.spentWokenTo), the epochs it began at (spentWakeBegan), and whether its
 * last part met a failed send (spentWakeSendFailed).
 */
export type SpentWakeProgress = Pick<
  AuctionRecord,
  'spentWokenTo' | 'spentWakeBegan' | 'spentWakeSendFailed'
>;

/**
 * The record owing a wake to `markets` (none: owing nothing), gone as far as `progress` says (undefined: not begun,
 * as a debt with a market newly spent must be: its sleepers may have planned since on what was spent).
 */
export function owing(
  auction: AuctionRecord,
  markets: readonly string[],
  progress?: SpentWakeProgress,
): AuctionRecord {
  const { spentIn: _, spentWokenTo: __, spentWakeBegan: ___, spentWakeSendFailed: ____, ...rest } = auction;
  if (markets.length === 0) return rest;
  const { spentWokenTo, spentWakeBegan, spentWakeSendFailed } = progress ?? {};
  return {
    ...rest,
    spentIn: markets,
    ...(spentWokenTo ? { spentWokenTo } : {}),
    ...(spentWakeBegan ? { spentWakeBegan } : {}),
    ...(spentWakeSendFailed ? { spentWakeSendFailed } : {}),
  };
}

/**
 * Sleepers one delivery wakes for a debt (AuctionRecord.spentIn); the rest go on in a continuation. A wake of
 * every sleeper of a market was unbounded (15,000 in the 100k replay, up to 50,000 a side): inside one step's
 * delivery, ten to a batch, it could outlast the function's timeout (2,000 took 54 s on moto), and every later
 * delivery started it again from the first sleeper (spent-wake-unbounded, session 40). 1,000 are 100
 * SendMessageBatch calls, 25 in flight: a fraction of a second on AWS.
 */
export const SPENT_WAKES_PER_DELIVERY = 1_000;

/**
 * The message that goes on with a debt's wake: a stale message of the auction (its step 0, which every auction that
 * owes a wake has passed; the twin of the step that ended it), which changes nothing but the wake (auction.ts).
 */
export const wakeContinuationOf = (auction: AuctionRecord): AuctionStepMessage => ({
  auctionId: auction.id,
  step: 0,
  symbol: auction.symbol,
  ...(auction.endedBy === 'plan' ? { woken: true } : {}),
});

/** A wake's continuation (wakeContinuationOf): the one step message sent with no due time. */
export const isWakeContinuation = (message: AuctionStepMessage): boolean =>
  message.step === 0 && message.dueAtMs === undefined;

/**
 * Pays the wake an auction owes (AuctionRecord.spentIn), after the commit that recorded it, as a registration does
 * (registration-wake.ts): each market's providers epoch first, so an auction planning meanwhile on the capital as it was fails
 * its commit and plans again, then every sleeper of its two sides but this auction (which planned on the capital as
 * written), markets in order, SELL then BUY, at most `budget` in one call. With more left, the record keeps the
 * debt and how far it went (spentWokenTo), and a continuation message of the auction goes on after it; with none,
 * the record drops the debt. A failure is reported (AuctionWakeFailures) and the debt kept. A part whose sends failed
 * after some went is kept as far as they went and goes on in a continuation like any part with more left (retried
 * instead, each delivery going further, such a part was dead-lettered after its receives: wakes43-progress-retried);
 * the record says so (spentWakeSendFailed), and that continuation comes WAKE_RETRY_DELAY_SECONDS later and sends a
 * batch at a time, stopping at its first failure (wakes43b). Any other failure (a bump, the own step, a part that
 * sent nothing, the continuation's send) is left to a later delivery of this auction: its caller fails the delivery
 * on `false` (SpentWakeOwedError) and SQS's redelivery, seconds later, pays it, running or ended (a running one's next step carries it too, but up to 900 s later:
 * spent-wake-retry-late). Returns false when the debt is kept with nothing sent on to pay it, true otherwise (paid,
 * going on in a continuation, or moved on by another delivery). AuctionsWoken counts each sleeper once a wake: a
 * part counts the sleepers its recorded cursor passed (wakes43-count-once).
 *
 * The record keeps the epoch the bump that begins a debt's wake left (spentWakeBegan), and once it does, the market
 * marks it its latest wake (spentWakeEpoch; markCover). A later delivery that finds a market's mark past its own skips the market: a wake
 * begun since (another spent provider's, or a registration's: registration-wake.ts markCovers), after this one's bump
 * and so after the commit that spent the provider, wakes every sleeper of the market from the first, those this one
 * owed included (a sleeper that planned before that bump is indexed by then,
 * or fails its commit on the epoch). Auctions that each spent a provider of one market each woke all its sleepers
 * (redundant-spent-wakes, session 41); now the earlier wakes stop at their next part. Such a wake fails only as the
 * later one fails, whose sleepers are a superset; a read of the market that fails skips nothing.
 *
 * A wake leaves its own auction out, which planned on the capital as written, unless its plan may predate another
 * bump: `plannedAtEpoch`, the providers epoch its commit checked (undefined: not known, a wake begun by a later
 * delivery). A bump between that and this wake's own (an earlier payer's, whose wake this one now covers) means it
 * may have planned on what that payer spent, and it wakes itself with the rest (review41-later-wake-own-sleeper).
 */
export async function wakeSpent(
  auction: AuctionRecord,
  deps: SettlementDeps,
  budget: number = SPENT_WAKES_PER_DELIVERY,
  plannedAtEpoch?: number,
): Promise<boolean> {
  const markets = auction.spentIn;
  if (markets === undefined || markets.length === 0) return true;
  // Per market: AuctionsWoken and AuctionWakeFailures name it, as a tick's wake does.
  const failures: { symbol: string; error: string }[] = [];
  const from = auction.spentWokenTo;
  // Begun once per debt, before its first sleeper is read. A record of an earlier version, gone some way with no
  // epochs, goes on with none (it is never skipped, and its bump now would claim a wake it began before).
  const fresh = from === undefined && auction.spentWakeBegan === undefined;
  let began = auction.spentWakeBegan;
  if (fresh) {
    const bumped: Record<string, number> = {};
    for (const symbol of markets) {
      try {
        bumped[symbol] = await deps.markets.bumpProvidersEpoch(symbol);
      } catch (error) {
        failures.push({
          symbol,
          error: `${symbol} providers epoch: ${error instanceof Error ? error.message : String(error)}`,
        });
      }
    }
    began = bumped;
    const own = bumped[auction.symbol];
    if (
      own !== undefined &&
      auction.state === 'RUNNING' &&
      auction.wakeMark !== undefined &&
      (plannedAtEpoch === undefined || own !== plannedAtEpoch + 1)
    )
      try {
        await deps.auctionQueue.send(
          encodeMessage({ ...stepMessageOf(auction, deps.clock.nowMs()), woken: true }),
        );
        deps.telemetry.count(METRICS.AuctionsWoken.name, 1, { Market: auction.symbol });
      } catch (error) {
        failures.push({
          symbol: auction.symbol,
          error: `${auction.symbol} own step: ${error instanceof Error ? error.message : String(error)}`,
        });
      }
  }
  // A wake begun after this one's bump covers the market.
  const coveredSince = async (symbol: string): Promise<boolean> => {
    const own = began?.[symbol];
    if (fresh || own === undefined) return false;
    try {
      return ((await deps.markets.get(symbol))?.spentWakeEpoch ?? 0) > own;
    } catch {
      return false;
    }
  };
  // A bump that failed wakes nobody: the debt is kept, and the delivery that pays it bumps first.
  const part =
    failures.length > 0
      ? undefined
      : await wakeInOrder(deps, sidesOf(markets), from, budget, () => deps.clock.nowMs(), {
          except: auction.id,
          skip: coveredSince,
          inOrder: auction.spentWakeSendFailed === true,
        });
  if (part?.failure) failures.push(part.failure);
  const wokenTo = part?.wokenTo;
  const more = part?.more ?? true;
  // Went past its cursor: kept, and the rest goes on in a continuation, a failed part's too.
  const progressed = part !== undefined && movedOn(part, from);
  // A part that met a failed send after some went: the next one waits, and sends in order (wakes43b).
  const sendFailed = part?.failure !== undefined && progressed;
  const coveredBy = part?.skipped ?? [];
  deps.telemetry.info('sleepers of a spent provider woken', {
    auctionId: auction.id,
    markets,
    woken: sum(part?.passedIn),
    more,
    ...(coveredBy.length > 0 ? { coveredByLaterWake: coveredBy } : {}),
  });
  if (failures.length > 0) {
    for (const symbol of new Set(failures.map((f) => f.symbol)))
      deps.telemetry.count(METRICS.AuctionWakeFailures.name, 1, { Market: symbol });
    deps.telemetry.warn(`sleepers of a spent provider not woken; ${progressed ? GOES_ON : RETRIED_BY}`, {
      auctionId: auction.id,
      error: failures.map((f) => f.error).join('; '),
    });
    // Nothing to keep: its bumps or its own step failed (the retry begins again), or a later part failed before its
    // first send (the retry goes on from the record). A fresh wake whose first part failed so keeps its beginning:
    // its retry neither bumps again nor, knowing no epoch its auction planned on, wakes that auction once more
    // (wakes43-retry-own-step).
    if (part === undefined || !(progressed || fresh)) return false;
  }
  try {
    const rest = more
      ? owing(auction, markets, {
          ...(wokenTo ? { spentWokenTo: wokenTo } : {}),
          ...(began ? { spentWakeBegan: began } : {}),
          ...(sendFailed ? { spentWakeSendFailed: true } : {}),
        })
      : owing(auction, []);
    await deps.auctions.replace({ ...rest, version: auction.version + 1 }, auction.version);
  } catch (error) {
    // Moved on: by a step that found the debt and carries it, or by a delivery that paid it. This delivery's bump
    // covers nobody: its part went no further (fuzz41-duplicate-delivery-covers), and the delivery whose write went
    // counts the sleepers.
    if (!(error instanceof ConditionFailedError)) throw error;
    return true;
  }
  // Each sleeper once a wake: those the recorded cursor passed. The messages sent past it go again, and are counted,
  // with the part after it (wakes43-count-once).
  for (const [symbol, count] of part?.passedIn ?? [])
    if (count > 0) deps.telemetry.count(METRICS.AuctionsWoken.name, count, { Market: symbol });
  await markCover(auction, began, deps);
  // A part that failed before its first send: SQS's retry, on the queue's backoff, goes on from the record.
  if (failures.length > 0 && !progressed) return false;
  if (!more) return true;
  try {
    // Also after a failed send past the cursor: the delivery succeeds and the continuation goes on from the prefix
    // sent, so a part failing at every delivery, each going further, is not dead-lettered (wakes43-progress-retried).
    // That one waits a little: an SQS failing now is not sent its next part at once (wakes43b).
    await sendWakeContinuation(deps.auctionQueue, encodeMessage(wakeContinuationOf(auction)), sendFailed);
    return true;
  } catch (error) {
    // The debt is kept, gone as far as the record says: a later delivery of the auction goes on with it. Counted once
    // a delivery: a part that failed was counted above (wakes43b).
    if (failures.length === 0)
      deps.telemetry.count(METRICS.AuctionWakeFailures.name, 1, { Market: (wokenTo ?? auction).symbol });
    deps.telemetry.warn(`the rest of a spent provider's wake not sent on; ${RETRIED_BY}`, {
      auctionId: auction.id,
      error: error instanceof Error ? error.message : String(error),
    });
    return false;
  }
}

const sum = (counts: ReadonlyMap<string, number> | undefined): number =>
  [...(counts?.values() ?? [])].reduce((a, b) => a + b, 0);

/**
 * Marks each market's latest wake (spentWakeEpoch) once the record keeps its beginning: only then does it go on from
 * the first sleeper. Marked at the bump, a twin delivery of the debt (SQS's at-least-once, both reading the record
 * before either wrote), whose later bump lost the record write, covered the other one's rest, which stopped: the
 * sleepers after its first part slept out their plans (the wake stress test, session 41). Unmarked (a failure here,
 * or a death before), later wakes wake those sleepers again: extra wakes, never a missed one.
 */
async function markCover(
  auction: AuctionRecord,
  began: Readonly<Record<string, number>> | undefined,
  deps: SettlementDeps,
): Promise<void> {
  for (const [symbol, epoch] of Object.entries(began ?? {})) {
    try {
      await deps.markets.markSpentWake(symbol, epoch);
    } catch (error) {
      deps.telemetry.warn(
        "a spent provider's wake not marked; later wakes of its market wake its sleepers again",
        {
          auctionId: auction.id,
          symbol,
          error: error instanceof Error ? error.message : String(error),
        },
      );
    }
  }
}

/** Who pays a debt a delivery could not (SpentWakeOwedError). */
const RETRIED_BY = 'the delivery fails and its retry goes on with it';
/** Who pays the rest of a part that failed past its cursor. */
const GOES_ON = 'a continuation goes on from the last sent';

/**
 * A wake an auction still owes after its delivery: an ended auction has no later step to pay it (found in session 41:
 * its sleepers slept out their plan, up to 900 s, on a bidder's spent capital), a running one's comes up to 900 s
 * later (spent-wake-retry-late, session 42). So the delivery fails after its writes, SQS redelivers the message
 * after the queue's backoff (5 s, then 30 s, ...), whose delivery pays the debt, idempotently, and, after
 * maxReceiveCount receives, dead-letters it (alarmed).
 */
export class SpentWakeOwedError extends Error {
  override readonly name = 'SpentWakeOwedError';
  constructor(auction: Pick<AuctionRecord, 'id' | 'spentIn'>) {
    super(`auction/spent-wake-owed: ${auction.id} (${(auction.spentIn ?? []).join(', ')})`);
  }
}
