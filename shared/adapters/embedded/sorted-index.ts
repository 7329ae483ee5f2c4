/**
 * An ordered index of (key, id) entries kept as a list of sorted chunks (the layout of Python's
 * sortedcontainers): insert and remove cost O(log n + chunk) instead of O(n) for one flat sorted array,
 * a bulk load is one sort, and a range read walks chunks in order. Keys are exact bigints; `approx`
 * (Number(key)) decides most comparisons cheaply, and because Number(bigint) is monotonic a difference in
 * `approx` always agrees with the exact order.
 */

export interface IndexKey {
  readonly approx: number;
  readonly key: bigint;
  readonly id: string;
}

export interface IndexEntry<T> extends IndexKey {
  readonly value: T;
}

export const indexKey = (key: bigint, id: string): IndexKey => ({ approx: Number(key), key, id });

/** Order by key, then id: a total order, so pagination after a (key, id) cursor is exact. */
export function compareKeys(a: IndexKey, b: IndexKey): number {
  if (a.approx !== b.approx) return a.approx < b.approx ? -1 : 1;
  if (a.key !== b.key) return a.key < b.key ? -1 : 1;
  if (a.id === b.id) return 0;
  return a.id < b.id ? -1 : 1;
}

/** Chunks split at twice this size; 1,000 keeps splices cheap and the chunk list short for 1M entries. */
const LOAD = 1000;

export class SortedIndex<T> {
  #chunks: IndexEntry<T>[][] = [];
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** Adds many entries with one sort (faster than single inserts when the batch is not tiny). */
  bulkInsert(entries: readonly IndexEntry<T>[]): void {
    if (entries.length === 0) return;
    if (entries.length < this.#size / 16) {
      for (const e of entries) this.insert(e);
      return;
    }
    const all = this.#chunks.flat();
    for (const e of entries) all.push(e);
    all.sort(compareKeys);
    const chunks: IndexEntry<T>[][] = [];
    for (let i = 0; i < all.length; i += LOAD) chunks.push(all.slice(i, i + LOAD));
    this.#chunks = chunks;
    this.#size = all.length;
  }

  insert(entry: IndexEntry<T>): void {
    if (this.#chunks.length === 0) {
      this.#chunks.push([entry]);
      this.#size = 1;
      return;
    }
    let c = this.#firstChunkNotBelow(entry);
    if (c === this.#chunks.length) c -= 1;
    const chunk = this.#chunks[c]!;
    chunk.splice(upperBound(chunk, entry), 0, entry);
    this.#size += 1;
    if (chunk.length > 2 * LOAD) this.#chunks.splice(c + 1, 0, chunk.splice(LOAD));
  }

  /** Removes the entry with exactly this key and id; false when absent. */
  remove(probe: IndexKey): boolean {
    const c = this.#firstChunkNotBelow(probe);
    const chunk = this.#chunks[c];
    if (!chunk) return false;
    const i = lowerBound(chunk, probe);
    const found = chunk[i];
    if (!found || compareKeys(found, probe) !== 0) return false;
    chunk.splice(i, 1);
    this.#size -= 1;
    if (chunk.length === 0) this.#chunks.splice(c, 1);
    return true;
  }

  /**
   * Entries strictly after `after` (from the start when undefined) whose key is <= maxKey, at most `limit`,
   * and whether at least one more such entry follows.
   */
  range(after: IndexKey | undefined, maxKey: bigint, limit: number): { values: T[]; more: boolean } {
    const values: T[] = [];
    let c = 0;
    let i = 0;
    if (after) {
      c = this.#firstChunkAbove(after);
      const chunk = this.#chunks[c];
      if (chunk) i = upperBound(chunk, after);
    }
    for (; c < this.#chunks.length; c += 1, i = 0) {
      const chunk = this.#chunks[c]!;
      for (; i < chunk.length; i += 1) {
        const e = chunk[i]!;
        if (e.key > maxKey) return { values, more: false };
        if (values.length === limit) return { values, more: true };
        values.push(e.value);
      }
    }
    return { values, more: false };
  }

  /** All entries in order (tests and compaction). */
  *entries(): IterableIterator<IndexEntry<T>> {
    for (const chunk of this.#chunks) yield* chunk;
  }

  /** First chunk whose last entry is >= probe (chunks.length when none). */
  #firstChunkNotBelow(probe: IndexKey): number {
    let lo = 0;
    let hi = this.#chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const chunk = this.#chunks[mid]!;
      if (compareKeys(chunk[chunk.length - 1]!, probe) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** First chunk whose last entry is > probe (chunks.length when none). */
  #firstChunkAbove(probe: IndexKey): number {
    let lo = 0;
    let hi = this.#chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const chunk = this.#chunks[mid]!;
      if (compareKeys(chunk[chunk.length - 1]!, probe) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** First index whose entry is >= probe. */
function lowerBound(chunk: readonly IndexKey[], probe: IndexKey): number {
  let lo = 0;
  let hi = chunk.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareKeys(chunk[mid]!, probe) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index whose entry is > probe. */
function upperBound(chunk: readonly IndexKey[], probe: IndexKey): number {
  let lo = 0;
  let hi = chunk.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareKeys(chunk[mid]!, probe) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
