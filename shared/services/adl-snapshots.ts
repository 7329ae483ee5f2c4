import type { AdlCandidate, RankedCandidate } from '../domain/adl.ts';
import type { Side } from '../domain/model.ts';
import type { PriceE8 } from '../domain/units.ts';

/**
 * The ADL queue of one market side at one mark: the best-ranked ids, as a read of the whole side found them.
 * Settlements at the same mark plan from these ids' fresh records instead of reading the whole side again
 * (an ADL settlement cost O(side) reads; a crash settles thousands at a handful of marks).
 */
export interface AdlSnapshot {
  readonly mark: PriceE8;
  readonly takenAtMs: number;
  /** Ids in rank order at `mark` when taken. */
  readonly ids: readonly string[];
  /**
   * Rankings at `mark` of records the plans read, by id, with the version they were ranked at: a record still at
   * that version ranks the same, so a plan scores only what changed.
   */
  readonly ranks: Map<string, QueuedRanking>;
}

/** A record's ranking at the queue's mark, and the candidate a plan takes from it (none: not deleverageable). */
export interface QueuedRanking {
  readonly version: number;
  readonly ranked?: RankedCandidate;
  readonly candidate?: AdlCandidate & { readonly version: number };
}

/** Per-container snapshots (a hint: every plan re-reads and re-ranks the records it uses). */
export class AdlSnapshots {
  readonly #entries = new Map<string, AdlSnapshot>();

  /**
   * @param maxAgeMs how long a snapshot serves (positions opened or changed by traders meanwhile are missed
   *   until then; ADL's own changes are re-read)
   */
  constructor(readonly maxAgeMs = 2_000) {}

  /** The snapshot of (symbol, side) taken at exactly `mark`, if still fresh. */
  get(symbol: string, side: Side, mark: PriceE8, nowMs: number): AdlSnapshot | undefined {
    const entry = this.#entries.get(`${symbol}|${side}`);
    if (!entry || entry.mark !== mark) return undefined;
    if (nowMs - entry.takenAtMs > this.maxAgeMs || nowMs < entry.takenAtMs) return undefined;
    return entry;
  }

  put(symbol: string, side: Side, snapshot: Omit<AdlSnapshot, 'ranks'>): void {
    this.#entries.set(`${symbol}|${side}`, { ...snapshot, ranks: new Map() });
  }

  /** Drops ids that can no longer be deleveraged at the snapshot's mark (closed, or no profit left). */
  forget(symbol: string, side: Side, ids: ReadonlySet<string>): void {
    const key = `${symbol}|${side}`;
    const entry = this.#entries.get(key);
    if (!entry || ids.size === 0) return;
    this.#entries.set(key, { ...entry, ids: entry.ids.filter((id) => !ids.has(id)) });
  }
}
