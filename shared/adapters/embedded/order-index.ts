import { type IndexEntry, type IndexKey, SortedIndex } from './sorted-index.ts';

/** Above every key these indexes hold (prices and leverage keys stay far below it). */
const BEYOND_EVERY_KEY = 10n ** 80n;
/** Stale entries tolerated before a rebuild: at least this many, and at least as many as the live ones. */
const MIN_STALE_TO_COMPACT = 1000;

/**
 * One sparse order of ids (one of ADL's orders of a market side), kept lazily: a position that leaves OPEN stays
 * in the order, skipped by reads (`isLive` says it left), until about as many have left as remain and the
 * order is rebuilt. A liquidation's start (the write a crash makes most) so costs a count instead of a
 * removal; a position that changes its key moves at once.
 */
export class LazyOrderIndex {
  #index = new SortedIndex<string>();
  /** The one entry of each id in the index, live or not. */
  readonly #placed = new Map<string, IndexEntry<string>>();
  /** Ids that left since the last rebuild (an upper bound: one that came back still counts). */
  #left = 0;

  /** `initial`: the live entries it starts with, in one sort. */
  constructor(
    private readonly isLive: (id: string) => boolean,
    initial: readonly IndexEntry<string>[] = [],
  ) {
    this.#index.bulkInsert(initial);
    for (const e of initial) this.#placed.set(e.id, e);
  }

  /** `entry.id` is live at `entry.key`. */
  place(entry: IndexEntry<string>): void {
    const at = this.#placed.get(entry.id);
    if (at?.key === entry.key) return;
    if (at) this.#index.remove(at);
    this.#index.insert(entry);
    this.#placed.set(entry.id, entry);
  }

  /** An id left the order (its position is no longer OPEN). */
  leave(): void {
    this.#left += 1;
    if (this.#left >= MIN_STALE_TO_COMPACT && 2 * this.#left > this.#placed.size) this.#compact();
  }

  /**
   * Live ids strictly after `after`, at most `limit`, whether more entries follow, and the entry to continue
   * after (the last one read, live or not).
   */
  page(
    after: IndexKey | undefined,
    limit: number,
  ): { readonly ids: string[]; readonly more: boolean; readonly last?: IndexEntry<string> } {
    const ids: string[] = [];
    let from = after;
    for (;;) {
      const { values, more } = this.#index.range(from, BEYOND_EVERY_KEY, limit - ids.length);
      for (const id of values) if (this.isLive(id)) ids.push(id);
      const lastId = values[values.length - 1];
      const last = lastId === undefined ? undefined : this.#placed.get(lastId);
      if (!more || ids.length === limit || !last) return { ids, more, ...(last ? { last } : {}) };
      from = last;
    }
  }

  /** Rebuilt from the live entries with one sort (removing thousands one by one costs a splice each). */
  #compact(): void {
    for (const id of this.#placed.keys()) if (!this.isLive(id)) this.#placed.delete(id);
    this.#left = 0;
    this.#index = new SortedIndex<string>();
    this.#index.bulkInsert([...this.#placed.values()]);
  }
}
