import { type AdlCandidate, asAdlCandidate, compareRanked, type RankedCandidate } from '../domain/adl.ts';
import { type AdlOrder, AdlThreshold, type AdlThresholdResult } from '../domain/adl-threshold.ts';
import type { Side } from '../domain/model.ts';
import type { PriceE8 } from '../domain/units.ts';
import type { PositionRecord, PositionRepository } from '../ports/index.ts';

/** Positions per page of each of ADL's two orders. */
const ADL_ORDER_PAGE = 1000;

/**
 * The exact top `count` of the ADL ranking of `side` at `mark` against a `deleveragedSide` position, read as
 * prefixes of the side's two ADL orders in turn (the threshold search of shared/domain/adl-threshold.ts): a
 * crash's ranking reads a few thousand positions of a side, whatever its size, instead of all of it.
 */
export async function readAdlTop(
  positions: PositionRepository,
  symbol: string,
  side: Side,
  mark: PriceE8,
  deleveragedSide: Side,
  count: number,
  /** Only the positions that give when ADL closes no size (AdlThreshold). */
  withoutClosing = false,
): Promise<AdlThresholdResult<PositionRecord>> {
  const search = new AdlThreshold<PositionRecord>(mark, deleveragedSide, count, withoutClosing);
  const cursors: Record<AdlOrder, string | undefined> = { entry: undefined, leverage: undefined };
  // Ranked as ADL sees each position (its exact margin floored: asAdlCandidate), returned as stored: the very copy
  // the search ranked, for a write made from the entry must keep what that record holds (a copy read on a later
  // page, after another writer moved it, would pair its version with the earlier copy's ranking).
  const storedOf = new WeakMap<PositionRecord, PositionRecord>();
  const view = (p: PositionRecord): PositionRecord => {
    const seen = asAdlCandidate(p);
    if (seen !== p) storedOf.set(seen, p);
    return seen;
  };
  for (;;) {
    for (const order of ['entry', 'leverage'] as const) {
      const page = await positions.queryAdlOrder(symbol, side, order, ADL_ORDER_PAGE, cursors[order]);
      cursors[order] = page.cursor;
      search.offer(order, page.positions.map(view), page.cursor === undefined);
    }
    if (search.done()) {
      const result = search.result();
      const entries = result.entries.map((e) => ({
        ...e,
        candidate: storedOf.get(e.candidate) ?? e.candidate,
      }));
      return { ...result, entries };
    }
  }
}

/** A counterparty a plan may take, with the version of the record it was ranked from (the freeze commits against it). */
export type VersionedCandidate = AdlCandidate & { readonly version: number };

/** A record's ranking at the queue's mark, as of the version it was read at. */
export interface QueuedEntry {
  readonly ranked: RankedCandidate;
  readonly candidate: VersionedCandidate;
}

/**
 * The ADL queue of one market side at one mark: the best-ranked positions, as a ranking of the side found
 * them (readAdlTop), kept in rank order as plans read them again. Settlements at the same mark plan from it
 * instead of ranking the side again (a crash settles thousands at a handful of marks), and each plan reads
 * only the head it uses: a record is ranked as of its last read, so the head is
 * exact for every record read since it last changed.
 */
export class AdlQueue {
  readonly #entries: QueuedEntry[];
  /**
   * The last ranking the queue held when taken, if the side held more: positions it never held rank after it, so
   * a record that moves below it (ADL closed some of it) leaves the queue instead of being served ahead of them.
   */
  readonly #horizon: RankedCandidate | undefined;

  /**
   * @param entries ranked at `mark`, in rank order
   * @param complete every position of the side that could be deleveraged at `mark` is in it: ranking the side
   *   again while the queue serves finds no one else (but for positions traders changed meanwhile, which a
   *   serving queue misses anyway)
   */
  constructor(
    readonly mark: PriceE8,
    readonly takenAtMs: number,
    entries: readonly QueuedEntry[],
    readonly complete = false,
  ) {
    this.#entries = [...entries];
    this.#horizon = complete ? undefined : entries[entries.length - 1]?.ranked;
  }

  get length(): number {
    return this.#entries.length;
  }

  get ids(): string[] {
    return this.#entries.map((e) => e.candidate.id);
  }

  /**
   * The best `n` of the queue (fewer when it holds fewer), each read in this plan (`seen`: ids read so far):
   * reads the head's unread records, drops the ones that can no longer be deleveraged (`rank` gives
   * undefined), moves the ones that changed to their new rank, and repeats until the head is all read.
   */
  async head(
    n: number,
    seen: Set<string>,
    read: (ids: readonly string[]) => Promise<readonly PositionRecord[]>,
    rank: (record: PositionRecord) => QueuedEntry | undefined,
  ): Promise<QueuedEntry[]> {
    for (;;) {
      const head = this.#entries.slice(0, n);
      const unread = head.filter((e) => !seen.has(e.candidate.id));
      if (unread.length === 0) return head;
      const records = new Map((await read(unread.map((e) => e.candidate.id))).map((p) => [p.id, p] as const));
      // Each changed entry and its ranking now (none: it leaves the queue).
      const stale = new Map<QueuedEntry, QueuedEntry | undefined>();
      for (const entry of unread) {
        seen.add(entry.candidate.id);
        const record = records.get(entry.candidate.id);
        if (record?.version === entry.candidate.version) continue;
        stale.set(entry, record ? rank(record) : undefined);
      }
      if (stale.size > 0) {
        // Stale entries sit in the head, unless a concurrent plan on this queue (a batch's records run in
        // parallel) removed them first, and then put back its own ranking: only what this plan removes is
        // put back, so an id is never queued twice.
        const removed: QueuedEntry[] = [];
        for (let i = 0; removed.length < stale.size && i < this.#entries.length; ) {
          const entry = this.#entries[i]!;
          if (stale.has(entry)) {
            this.#entries.splice(i, 1);
            removed.push(entry);
          } else i++;
        }
        for (const entry of removed) {
          const moved = stale.get(entry);
          if (moved && this.#withinHorizon(moved)) this.#insert(moved);
        }
      }
    }
  }

  #withinHorizon(entry: QueuedEntry): boolean {
    return this.#horizon === undefined || compareRanked(entry.ranked, this.#horizon) <= 0;
  }

  #insert(entry: QueuedEntry): void {
    let lo = 0;
    let hi = this.#entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareRanked(this.#entries[mid]!.ranked, entry.ranked) <= 0) lo = mid + 1;
      else hi = mid;
    }
    this.#entries.splice(lo, 0, entry);
  }
}

/** Per-container ADL queues, one per market side (a hint: every plan re-reads the records it uses). */
export class AdlSnapshots {
  readonly #entries = new Map<string, AdlQueue>();

  /**
   * @param maxAgeMs how long a queue serves (positions opened or changed by traders meanwhile are missed
   *   until then, unless a plan reads them; ADL's own changes are re-read)
   */
  constructor(readonly maxAgeMs = 2_000) {}

  /**
   * The queue of (symbol, side) taken at exactly `mark`, if still fresh; `withoutClosing`: the queue of the
   * positions that give without closing size (readAdlTop), kept apart from the whole ranking.
   */
  get(
    symbol: string,
    side: Side,
    mark: PriceE8,
    nowMs: number,
    withoutClosing = false,
  ): AdlQueue | undefined {
    const entry = this.#entries.get(keyOf(symbol, side, withoutClosing));
    if (!entry || entry.mark !== mark) return undefined;
    if (nowMs - entry.takenAtMs > this.maxAgeMs || nowMs < entry.takenAtMs) return undefined;
    return entry;
  }

  put(symbol: string, side: Side, queue: AdlQueue, withoutClosing = false): void {
    this.#entries.set(keyOf(symbol, side, withoutClosing), queue);
  }

  /**
   * ADL closed size of positions of (symbol, side): their realized profit went into their collateral, so some
   * that gave nothing without a close (no collateral) may give now. The queue of those that do is not complete
   * any more: dropped, the next plan ranks the side again.
   */
  closedOn(symbol: string, side: Side): void {
    this.#entries.delete(keyOf(symbol, side, true));
  }
}

const keyOf = (symbol: string, side: Side, withoutClosing: boolean): string =>
  `${symbol}|${side}${withoutClosing ? '|haircut' : ''}`;
