/**
 * ADL's queue: the other side's best-ranked positions at a mark, and a plan made on the fewest of them that give (a
 * settlement's waterfall, or an ADL round).
 */

import {
  type AdlCandidate,
  asAdlCandidate,
  givesWithoutClosing,
  type RankedCandidate,
  rankCandidate,
} from '../../domain/adl.ts';
import type { Side } from '../../domain/model.ts';
import type { PriceE8 } from '../../domain/units.ts';
import type { WaterfallDecision } from '../../domain/waterfall.ts';
import type { LiquidationRecord, PositionRecord } from '../../ports/index.ts';
import { AdlQueue, type QueuedEntry, readAdlTop, type VersionedCandidate } from '../adl-snapshots.ts';
import { oppositeSide, type SettlementDeps } from '../context.ts';

/** Counterparties one settlement may touch: with the liquidation and its position, one transaction (<= 100). */
export const MAX_ADL_COUNTERPARTIES = 90;
/** Best-ranked counterparties a plan considers before keeping the ones it uses (the ADL queue's length). */
const ADL_CANDIDATES_CONSIDERED = 2000;

/** A record's ranking at the queue's mark (undefined: it cannot be deleveraged there). */
function rankAtMark(
  p: PositionRecord,
  symbol: string,
  mark: PriceE8,
  deleveragedSide: Side,
): QueuedEntry | undefined {
  if (p.state !== 'OPEN' || p.symbol !== symbol) return undefined;
  const ranked = rankCandidate(asAdlCandidate(p), mark, deleveragedSide);
  return ranked ? { ranked, candidate: versionedOf(ranked, p.version) } : undefined;
}

const versionedOf = (c: RankedCandidate, version: number): VersionedCandidate => ({
  id: c.id,
  side: c.side,
  size: c.size,
  entryPrice: c.entryPrice,
  collateral: c.collateral,
  ...(c.adlProfitGiven ? { adlProfitGiven: c.adlProfitGiven } : {}),
  ...(c.collateralUnderE16 ? { collateralUnderE16: c.collateralUnderE16 } : {}),
  version,
});

/**
 * The ADL queue: the opposite side's best-ranked open positions at `mark`, ADL_CANDIDATES_CONSIDERED of them
 * (a full sort of every position is the cost to avoid). Ranked exactly from prefixes of the side's two ADL
 * orders (readAdlTop) once per mark and container (AdlSnapshots, renewed after a short time, as exchanges refresh their ADL queues); each plan
 * re-reads the head of the queue it uses, so the money always moves on the positions as they are, and plans
 * with at most MAX_ADL_COUNTERPARTIES of them. A queue too short to take the size is ranked again, unless
 * it held every position ADL could take.
 */
export async function adlQueue<T>(
  liquidation: LiquidationRecord,
  mark: PriceE8,
  deps: SettlementDeps,
  closesSize: boolean,
  planner: AdlPlanner<T>,
  /** Rank the side from its orders as they are now, not from this container's cached queue. */
  uncached = false,
): Promise<{
  readonly head: QueuedEntry[];
  readonly decision: T;
  /** The queue held fewer than MAX_ADL_COUNTERPARTIES that give. */
  readonly spent: boolean;
  /** The queue held every position of the side that could be taken (no one else to rank). */
  readonly complete: boolean;
  /** The records this plan read, by id (the settlement deleverages them without reading them again). */
  readonly records: ReadonlyMap<string, PositionRecord>;
}> {
  const { symbol } = liquidation;
  const side = oppositeSide(liquidation.side);
  const now = deps.clock.nowMs();
  const records = new Map<string, PositionRecord>();
  const read = async (ids: readonly string[]) => {
    const found = await deps.reader.positions(ids);
    for (const p of found) records.set(p.id, p);
    return found;
  };
  // In a queue of haircuts only, a record read again that can no longer give leaves it (not read again).
  const rank = (p: PositionRecord) => {
    const entry = rankAtMark(p, symbol, mark, liquidation.side);
    return entry && (closesSize || givesWithoutClosing(entry.ranked, mark)) ? entry : undefined;
  };
  // A counterparty gives by closing size (the profit it realizes) or out of its collateral (allocateAdl keeps
  // it >= 0): with no size to close, one without collateral gives nothing. Ranked first (no collateral is
  // infinite leverage), such counterparties would fill every place of the plan, and of the queue, and leave the
  // deficit uncovered: with no size to close, neither the queue (readAdlTop) nor the plan takes them.
  const gives = (e: QueuedEntry) => closesSize || givesWithoutClosing(e.ranked, mark);
  const cached = uncached ? undefined : deps.adlSnapshots?.get(symbol, side, mark, now, !closesSize);
  if (cached) {
    const planned = await planOnPrefix(cached, new Set(), read, rank, gives, planner);
    // A queue that held the whole side has no one else to offer: ranking the side again would find the same
    // (a crash with the other side spent asked again for every slice).
    if (planner.stands(planned.decision, planned.spent) || cached.complete)
      return { ...planned, records, complete: cached.complete };
  }
  const top = await readAdlTop(
    deps.positions,
    symbol,
    side,
    mark,
    liquidation.side,
    ADL_CANDIDATES_CONSIDERED,
    !closesSize,
  );
  for (const { candidate: p } of top.entries) records.set(p.id, p);
  const queue = new AdlQueue(
    mark,
    now,
    top.entries.map(({ ranked, candidate: p }) => ({ ranked, candidate: versionedOf(ranked, p.version) })),
    top.complete,
  );
  deps.adlSnapshots?.put(symbol, side, queue, !closesSize);
  // Every record of the queue was read just now.
  return {
    ...(await planOnPrefix(queue, new Set(queue.ids), read, rank, gives, planner)),
    records,
    complete: top.complete,
  };
}

/** How a plan on the ADL queue's head is made and judged (a settlement's waterfall, or an ADL round). */
export interface AdlPlanner<T> {
  plan(candidates: readonly AdlCandidate[]): T;
  /** The plan takes all it was asked to: more counterparties would change nothing. */
  takesAll(result: T): boolean;
  /** A plan made on a cached queue stands (else the side is ranked again, unless the queue held all of it). */
  stands(result: T, spent: boolean): boolean;
}

/** The waterfall's plan on ADL candidates: what it closes and covers. */
export const waterfallPlanner = (
  plan: (candidates: readonly AdlCandidate[]) => WaterfallDecision,
): AdlPlanner<WaterfallDecision> => ({
  plan,
  takesAll: (d) => d.next === 'settle' && (!d.adl || (d.adl.unmatchedSize === 0n && d.adl.uncovered === 0n)),
  // A spent queue stands only when its plan took everything: else rank the side again (unless it held all).
  stands: (d, spent) =>
    d.next === 'settle' && ((d.carriedSize === 0n && (d.adl?.uncovered ?? 0n) === 0n) || !spent),
});

/**
 * The plan on the queue's best MAX_ADL_COUNTERPARTIES, computed on the fewest of them that give it: ADL takes
 * counterparties in rank order, so once a prefix takes the whole size and covers the whole deficit, the others
 * get nothing (allocateAdl). A settlement usually needs a few, and reads and ranks only those. `spent`: the
 * queue held fewer than MAX_ADL_COUNTERPARTIES.
 */
async function planOnPrefix<T>(
  queue: AdlQueue,
  seen: Set<string>,
  read: (ids: readonly string[]) => Promise<readonly PositionRecord[]>,
  rank: (p: PositionRecord) => QueuedEntry | undefined,
  gives: (entry: QueuedEntry) => boolean,
  planner: AdlPlanner<T>,
): Promise<{ head: QueuedEntry[]; decision: T; spent: boolean }> {
  for (let n = FIRST_PLAN_PREFIX; ; n = Math.min(n * 4, MAX_ADL_COUNTERPARTIES)) {
    const { head, spent } = await headThatGives(queue, n, seen, read, rank, gives);
    // The queue's rankings, made at this mark: the plan reuses their scores.
    const decision = planner.plan(head.map((e) => e.ranked));
    if (planner.takesAll(decision) || spent || n === MAX_ADL_COUNTERPARTIES) return { head, decision, spent };
  }
}

/** The queue's best `n` that can give (in rank order); `spent`: the queue holds fewer. */
async function headThatGives(
  queue: AdlQueue,
  n: number,
  seen: Set<string>,
  read: (ids: readonly string[]) => Promise<readonly PositionRecord[]>,
  rank: (p: PositionRecord) => QueuedEntry | undefined,
  gives: (entry: QueuedEntry) => boolean,
): Promise<{ head: QueuedEntry[]; spent: boolean }> {
  for (let m = n; ; m *= 2) {
    const all = await queue.head(m, seen, read, rank);
    const useful = all.filter(gives);
    if (useful.length >= n) return { head: useful.slice(0, n), spent: false };
    if (all.length < m) return { head: useful, spent: true };
  }
}

/** Counterparties in the first plan: most settlements need one to three. */
const FIRST_PLAN_PREFIX = 4;
