import { AdapterInputError, decodeCursor, type Item } from './codec.ts';

/**
 * One ordered read of an index whose items spread over several partitions (shards) of the same sort key:
 * a page queries every shard not yet exhausted, in parallel, and merges them. A shard that has more to read
 * bounds the page: nothing beyond the last key it evaluated is returned, since that shard may hold items
 * before it; the rest is read again on the next page. With one shard this is the plain Query. A cursor
 * says where each shard's read stands, so it is refused by a read of another shard count.
 */

export interface ShardedIndexRead {
  /** The partitions (shards) to merge. */
  readonly partitions: readonly string[];
  /** Numeric sort attribute of the index (an integer). */
  readonly sortAttribute: string;
  /** Read order: ascending sort values first, or descending. */
  readonly ascending: boolean;
  /** Attributes of an item that make an ExclusiveStartKey of this index (table key, index keys). */
  readonly keyAttributes: readonly string[];
  /** The Query of one partition: at most `limit` items evaluated, after `start`. */
  query(
    partition: string,
    limit: number,
    start: Item | undefined,
  ): Promise<{ items: Item[]; lastKey?: Item }>;
}

export interface ShardedPage {
  readonly items: Item[];
  readonly cursor?: string;
}

/** Where each shard's read stands: not started, after a key, or read to its end. */
type ShardState = null | Item | 'done';

export async function readSharded(
  read: ShardedIndexRead,
  limit: number,
  cursor?: string,
): Promise<ShardedPage> {
  const states =
    cursor === undefined ? read.partitions.map((): ShardState => null) : decodeStates(cursor, read);
  if (read.partitions.length === 1) {
    // One shard: the plain Query, in its own order.
    const state = states[0]!;
    if (state === 'done') return { items: [] };
    const out = await read.query(read.partitions[0]!, limit, state ?? undefined);
    return out.lastKey ? { items: out.items, cursor: encodeStates([out.lastKey]) } : { items: out.items };
  }
  // A share of the page from each shard: about `limit` items read in all.
  const perShard = Math.ceil(limit / read.partitions.length);
  const pages = await Promise.all(
    read.partitions.map((partition, shard) => {
      const state = states[shard];
      return state === 'done' ? undefined : read.query(partition, perShard, state ?? undefined);
    }),
  );
  const value = (item: Item): bigint => sortValue(item, read.sortAttribute);
  // Sort order as a sign: negative when a comes first.
  const compare = (a: bigint, b: bigint): number => (a === b ? 0 : a < b === read.ascending ? -1 : 1);
  let bound: bigint | undefined;
  for (const page of pages) {
    if (!page?.lastKey) continue;
    const last = value(page.lastKey);
    if (bound === undefined || compare(last, bound) < 0) bound = last;
  }
  const candidates: { item: Item; shard: number; at: number; value: bigint }[] = [];
  pages.forEach((page, shard) => {
    page?.items.forEach((item, at) => {
      const v = value(item);
      // Ties with the bound may come first: equal keys have no order across shards.
      if (bound === undefined || compare(v, bound) <= 0) candidates.push({ item, shard, at, value: v });
    });
  });
  candidates.sort((a, b) => compare(a.value, b.value) || a.shard - b.shard || a.at - b.at);
  const taken = candidates.slice(0, limit);
  const lastTaken = new Map<number, number>();
  for (const c of taken) lastTaken.set(c.shard, c.at);
  const next = states.map((state, shard): ShardState => {
    const page = pages[shard];
    if (!page) return state;
    const at = lastTaken.get(shard) ?? -1;
    if (at === page.items.length - 1) return page.lastKey ?? 'done';
    // Some of the shard's items wait for a later page: resume after the last one returned.
    return at >= 0 ? keyOf(page.items[at]!, read.keyAttributes) : state;
  });
  const items = taken.map((c) => c.item);
  return next.every((s) => s === 'done') ? { items } : { items, cursor: encodeStates(next) };
}

function sortValue(item: Item, attribute: string): bigint {
  const n = item[attribute]?.N;
  if (n === undefined) throw new AdapterInputError(`adapter/unsorted-item: no ${attribute}`);
  return BigInt(n);
}

const keyOf = (item: Item, attributes: readonly string[]): Item =>
  Object.fromEntries(attributes.map((name) => [name, item[name]!]));

const encodeStates = (states: readonly ShardState[]): string =>
  Buffer.from(JSON.stringify({ s: states })).toString('base64url');

function decodeStates(cursor: string, read: ShardedIndexRead): ShardState[] {
  const decoded = decodeCursor(cursor) as unknown as { s?: unknown };
  const states = decoded.s;
  if (
    !Array.isArray(states) ||
    states.length !== read.partitions.length ||
    !states.every((s) => s === null || s === 'done' || (typeof s === 'object' && !Array.isArray(s)))
  ) {
    throw new AdapterInputError('adapter/bad-cursor: not a cursor of this index and shard count');
  }
  return states as ShardState[];
}
