import { type AdlCandidate, compareRanked, type RankedCandidate } from '../domain/adl.ts';
import type { Side } from '../domain/model.ts';
import type { PriceE8 } from '../domain/units.ts';
import type { PositionRecord } from '../ports/index.ts';

/** A counterparty a plan may take, with the version of the record it was ranked from (the freeze commits against it). */
export type VersionedCandidate = AdlCandidate & { readonly version: number };

/** A record's ranking at the queue's mark, as of the version it was read at. */
export interface QueuedEntry {
  readonly ranked: RankedCandidate;
  readonly candidate: VersionedCandidate;
}

/**
 * The ADL queue of one market side at one mark: the best-ranked positions, as a read of the whole side found
 * them, kept in rank order as plans read them again. Settlements at the same mark plan from it instead of
 * reading the whole side (an ADL settlement cost O(side) reads; a crash settles thousands at a handful of
 * marks), and each plan reads only the head it uses: a record is ranked as of its last read, so the head is
 * exact for every record read since it last changed.
 */
export class AdlQueue {
  readonly #entries: QueuedEntry[];

  /** @param entries ranked at `mark`, in rank order */
  constructor(
    readonly mark: PriceE8,
    readonly takenAtMs: number,
    entries: readonly QueuedEntry[],
  ) {
    this.#entries = [...entries];
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
      const moved: QueuedEntry[] = [];
      const stale = new Set<QueuedEntry>();
      for (const entry of unread) {
        seen.add(entry.candidate.id);
        const record = records.get(entry.candidate.id);
        if (record?.version === entry.candidate.version) continue;
        stale.add(entry);
        const ranked = record ? rank(record) : undefined;
        if (ranked) moved.push(ranked);
      }
      if (stale.size > 0) {
        // Stale entries sit in the head (a concurrent plan on this queue may have moved or dropped them).
        for (let i = 0; stale.size > 0 && i < this.#entries.length; ) {
          if (stale.delete(this.#entries[i]!)) this.#entries.splice(i, 1);
          else i++;
        }
        for (const entry of moved) this.#insert(entry);
      }
    }
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

  /** The queue of (symbol, side) taken at exactly `mark`, if still fresh. */
  get(symbol: string, side: Side, mark: PriceE8, nowMs: number): AdlQueue | undefined {
    const entry = this.#entries.get(`${symbol}|${side}`);
    if (!entry || entry.mark !== mark) return undefined;
    if (nowMs - entry.takenAtMs > this.maxAgeMs || nowMs < entry.takenAtMs) return undefined;
    return entry;
  }

  put(symbol: string, side: Side, queue: AdlQueue): void {
    this.#entries.set(`${symbol}|${side}`, queue);
  }
}
