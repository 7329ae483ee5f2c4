import { type AdlOrder, adlLeverageKey } from '../../domain/adl-threshold.ts';
import { wholeMargin } from '../../domain/margin.ts';
import type { Side } from '../../domain/model.ts';
import type { PriceE8 } from '../../domain/units.ts';
import {
  ConditionFailedError,
  type CrossedPage,
  type PositionRecord,
  type PositionRepository,
} from '../../ports/index.ts';
import {
  EmbeddedInputError,
  fire,
  getOrCreate,
  type HookRef,
  requireId,
  requireVersionBump,
} from './internal.ts';
import { LazyOrderIndex } from './order-index.ts';
import { compareKeys, type IndexEntry, type IndexKey, indexKey, SortedIndex } from './sorted-index.ts';

/**
 * Positions with the sparse liquidation-price index of the DynamoDB GSI: one ordered index per
 * (symbol, side) holding OPEN positions only. Entries are ordered by an "endangerment key" so the most
 * endangered position always comes first and a crossing query is a prefix of the index:
 *
 *   long:  key = -liquidationPrice, crossed when liquidationPrice >= mark  <=>  key <= -mark
 *   short: key = +liquidationPrice, crossed when liquidationPrice <= mark  <=>  key <= +mark
 *
 * Ties on the price are ordered by id (ascending) so pages are deterministic.
 *
 * Two more sparse indexes per (symbol, side) give ADL's orders (PositionRepository.queryAdlOrder): by entry
 * price, the most profitable first (longs ascending, shorts descending), and by descending leverage key.
 */

const endangerment = (side: Side, liquidationPrice: PriceE8): bigint =>
  side === 'LONG' ? -liquidationPrice : liquidationPrice;

const partition = (symbol: string, side: Side): string => `${symbol}#${side}`;

/** The index keys of ADL's orders, ascending: the first entry is the one ADL reads first. */
const ADL_KEYS: Readonly<Record<AdlOrder, (p: PositionRecord) => bigint>> = {
  entry: (p) => (p.side === 'LONG' ? p.entryPrice : -p.entryPrice),
  leverage: (p) => -adlLeverageKey(p.size, wholeMargin(p)),
};
const ADL_ORDERS: readonly AdlOrder[] = ['entry', 'leverage'];

const SIDES: readonly string[] = ['LONG', 'SHORT'];

function checkRecord(p: PositionRecord): void {
  requireId(p?.id, 'positions');
  if (!SIDES.includes(p.side)) throw new EmbeddedInputError(`positions/bad-side: ${String(p.side)}`);
  if (typeof p.liquidationPrice !== 'bigint') {
    throw new EmbeddedInputError(`positions/bad-liquidation-price: ${p.id} must carry a bigint PriceE8`);
  }
  if (!Number.isSafeInteger(p.version)) throw new EmbeddedInputError(`positions/bad-version: ${p.id}`);
}

interface Cursor {
  readonly partition: string;
  readonly after: IndexKey;
}

const encodeCursor = (c: Cursor): string =>
  Buffer.from(JSON.stringify([c.partition, c.after.key.toString(), c.after.id])).toString('base64url');

function decodeCursor(text: string, expectedPartition: string): IndexKey {
  let parts: unknown;
  try {
    parts = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw new EmbeddedInputError('positions/bad-cursor: not a cursor of this index');
  }
  if (
    !Array.isArray(parts) ||
    parts.length !== 3 ||
    typeof parts[1] !== 'string' ||
    !/^-?\d+$/.test(parts[1]) ||
    typeof parts[2] !== 'string'
  ) {
    throw new EmbeddedInputError('positions/bad-cursor: not a cursor of this index');
  }
  if (parts[0] !== expectedPartition) {
    throw new EmbeddedInputError(
      `positions/bad-cursor: cursor of ${String(parts[0])}, not ${expectedPartition}`,
    );
  }
  return indexKey(BigInt(parts[1]), parts[2]);
}

export class EmbeddedPositionRepository implements PositionRepository {
  /** Every write is in ADL's orders at once. */
  readonly adlOrdersLagMs: number = 0;
  readonly #records = new Map<string, PositionRecord>();
  readonly #indexes = new Map<string, SortedIndex<PositionRecord>>();
  /** ADL's orders, by order then partition: ids, built on first read and kept lazily (order-index.ts). */
  readonly #adlIndexes: Record<AdlOrder, Map<string, LazyOrderIndex>> = {
    entry: new Map(),
    leverage: new Map(),
  };
  readonly #hook: HookRef;

  constructor(hook: HookRef = {}) {
    this.#hook = hook;
  }

  /** Number of stored positions (all states). */
  get count(): number {
    return this.#records.size;
  }

  async get(id: string): Promise<PositionRecord | undefined> {
    return this.#records.get(id);
  }

  /** Synchronous read: transactions check and write without yielding, so no other call interleaves. */
  peek(id: string): PositionRecord | undefined {
    return this.#records.get(id);
  }

  async create(position: PositionRecord): Promise<void> {
    this.checkCreate(position);
    this.write(undefined, position);
    fire(this.#hook, 'positions.create');
  }

  /**
   * Bulk seeding: one sort per (symbol, side) instead of one index insert per record; all-or-nothing on
   * duplicate ids. Records are stored as given, like `create`; OPEN ones enter the index and ADL's orders.
   */
  createMany(positions: readonly PositionRecord[]): void {
    const added: PositionRecord[] = [];
    const byPartition = new Map<string, IndexEntry<PositionRecord>[]>();
    try {
      for (const p of positions) {
        checkRecord(p);
        if (this.#records.has(p.id)) throw new ConditionFailedError(`positions/exists: ${p.id}`);
        const stored = Object.freeze({ ...p });
        this.#records.set(p.id, stored);
        added.push(stored);
        if (stored.state !== 'OPEN') continue;
        getOrCreate(byPartition, partition(stored.symbol, stored.side), () => []).push(entryOf(stored));
      }
    } catch (error) {
      for (const p of added) this.#records.delete(p.id);
      throw error;
    }
    for (const [key, entries] of byPartition) {
      this.#index(key).bulkInsert(entries);
      // ADL's orders of the partition, if built, are built again from the index when next read (one sort).
      for (const order of ADL_ORDERS) this.#adlIndexes[order].delete(key);
    }
    fire(this.#hook, 'positions.createMany');
  }

  async queryCrossed(
    symbol: string,
    side: Side,
    mark: PriceE8,
    limit: number,
    cursor?: string,
  ): Promise<CrossedPage> {
    if (typeof mark !== 'bigint')
      throw new EmbeddedInputError('positions/bad-mark: mark must be a bigint PriceE8');
    const maxKey = endangerment(side, mark);
    return this.#page(symbol, side, limit, cursor, (index, after) => index.range(after, maxKey, limit));
  }

  async queryAdlOrder(
    symbol: string,
    side: Side,
    order: AdlOrder,
    limit: number,
    cursor?: string,
  ): Promise<CrossedPage> {
    if (!ADL_ORDERS.includes(order)) throw new EmbeddedInputError(`positions/bad-order: ${String(order)}`);
    if (!SIDES.includes(side)) throw new EmbeddedInputError(`positions/bad-side: ${String(side)}`);
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new EmbeddedInputError(`positions/bad-limit: ${limit} (a positive integer)`);
    }
    const key = partition(symbol, side);
    const cursorPartition = `${key}#${order}`;
    const from = cursor === undefined ? undefined : decodeCursor(cursor, cursorPartition);
    const { ids, more, last } = this.#adlIndex(order, key).page(from, limit);
    const positions = ids.map((id) => this.#records.get(id)!);
    if (!more || !last) return { positions };
    return { positions, cursor: encodeCursor({ partition: cursorPartition, after: last }) };
  }

  /** One page of a side's index read by `read` from the cursor's entry (its last position), with the next cursor. */
  #page(
    symbol: string,
    side: Side,
    limit: number,
    cursor: string | undefined,
    read: (
      index: SortedIndex<PositionRecord>,
      from: IndexKey | undefined,
    ) => { values: PositionRecord[]; more: boolean },
  ): CrossedPage {
    if (!SIDES.includes(side)) throw new EmbeddedInputError(`positions/bad-side: ${String(side)}`);
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new EmbeddedInputError(`positions/bad-limit: ${limit} (a positive integer)`);
    }
    const key = partition(symbol, side);
    const from = cursor === undefined ? undefined : decodeCursor(cursor, key);
    const index = this.#indexes.get(key);
    if (!index) return { positions: [] };
    const { values, more } = read(index, from);
    const last = values[values.length - 1];
    if (!more || !last) return { positions: values };
    return { positions: values, cursor: encodeCursor({ partition: key, after: entryOf(last) }) };
  }

  async replace(next: PositionRecord, expectedVersion: number): Promise<void> {
    const current = this.checkReplace(next, expectedVersion);
    this.write(current, next);
    fire(this.#hook, 'positions.replace');
  }

  async reprice(id: string, liquidationPrice: PriceE8, expectedVersion: number): Promise<void> {
    // Refused before any condition, as the AWS adapter does.
    if (typeof liquidationPrice !== 'bigint')
      throw new EmbeddedInputError(`positions/bad-liquidation-price: ${id} must carry a bigint PriceE8`);
    const current = this.#records.get(id);
    if (current?.state !== 'OPEN' || current.version !== expectedVersion)
      throw new ConditionFailedError(`positions/version: ${id} is not OPEN at v${expectedVersion}`);
    const next = { ...current, liquidationPrice, version: expectedVersion + 1 };
    this.write(this.checkReplace(next, expectedVersion), next);
    fire(this.#hook, 'positions.replace');
  }

  /**
   * Both sides' OPEN positions of a market the mark crosses, in one pass over every record (a full scan's cost:
   * benchmarks compare the index with it), each side ordered as queryCrossed orders it.
   */
  scanCrossedBothSides(symbol: string, mark: PriceE8): Record<Side, PositionRecord[]> {
    const maxKey: Record<Side, bigint> = {
      LONG: endangerment('LONG', mark),
      SHORT: endangerment('SHORT', mark),
    };
    const crossed: Record<Side, IndexEntry<PositionRecord>[]> = { LONG: [], SHORT: [] };
    for (const p of this.#records.values()) {
      if (p.state !== 'OPEN' || p.symbol !== symbol) continue;
      if (endangerment(p.side, p.liquidationPrice) <= maxKey[p.side]) crossed[p.side].push(entryOf(p));
    }
    return {
      LONG: crossed.LONG.sort(compareKeys).map((e) => e.value),
      SHORT: crossed.SHORT.sort(compareKeys).map((e) => e.value),
    };
  }

  /**
   * Full scan of the book, the reference the index must agree with (benchmarks, property tests):
   * every OPEN position of the side that the mark crosses, in index order.
   */
  scanCrossed(symbol: string, side: Side, mark: PriceE8): PositionRecord[] {
    const maxKey = endangerment(side, mark);
    const crossed: IndexEntry<PositionRecord>[] = [];
    for (const p of this.#records.values()) {
      if (p.state !== 'OPEN' || p.symbol !== symbol || p.side !== side) continue;
      if (endangerment(side, p.liquidationPrice) <= maxKey) crossed.push(entryOf(p));
    }
    return crossed.sort(compareKeys).map((e) => e.value);
  }

  /** The condition of `create` (absent id), checked without writing (transactions use it). */
  checkCreate(position: PositionRecord): void {
    checkRecord(position);
    if (this.#records.has(position.id)) throw new ConditionFailedError(`positions/exists: ${position.id}`);
  }

  /** The version condition of `replace`, checked without writing (transactions use it). */
  checkReplace(next: PositionRecord, expectedVersion: number): PositionRecord {
    checkRecord(next);
    requireVersionBump(next, expectedVersion, 'positions');
    const current = this.#records.get(next.id);
    if (!current) throw new ConditionFailedError(`positions/not-found: ${next.id}`);
    if (current.version !== expectedVersion) {
      throw new ConditionFailedError(
        `positions/version-mismatch: ${next.id} is at version ${current.version}, not ${expectedVersion}`,
      );
    }
    return current;
  }

  /** Stores `next` in place of `current` and moves its index entry (no checks: callers checked). */
  write(current: PositionRecord | undefined, next: PositionRecord): void {
    const from = current?.state === 'OPEN' ? partition(current.symbol, current.side) : undefined;
    const stored = Object.freeze({ ...next });
    const to = stored.state === 'OPEN' ? partition(stored.symbol, stored.side) : undefined;
    if (from) this.#indexes.get(from)?.remove(entryOf(current!));
    this.#records.set(stored.id, stored);
    if (to) this.#index(to).insert(entryOf(stored));
    if (!from && !to) return;
    for (const order of ADL_ORDERS) {
      // Orders not read yet are built from the liquidation-price index when first read.
      if (from && from !== to) this.#adlIndexes[order].get(from)?.leave();
      if (to) this.#adlIndexes[order].get(to)?.place(adlEntryOf(order, stored));
    }
  }

  #index(key: string): SortedIndex<PositionRecord> {
    return getOrCreate(this.#indexes, key, () => new SortedIndex<PositionRecord>());
  }

  /**
   * ADL's `order` of a partition, built from the OPEN positions of the liquidation-price index on first use (a
   * side ADL never reads costs nothing), then kept up by every write.
   */
  #adlIndex(order: AdlOrder, key: string): LazyOrderIndex {
    return getOrCreate(
      this.#adlIndexes[order],
      key,
      () =>
        new LazyOrderIndex(
          (id) => this.#records.get(id)?.state === 'OPEN',
          [...(this.#indexes.get(key)?.entries() ?? [])].map((e) => adlEntryOf(order, e.value)),
        ),
    );
  }
}

function adlEntryOf(order: AdlOrder, p: PositionRecord): IndexEntry<string> {
  const key = ADL_KEYS[order](p);
  return { approx: Number(key), key, id: p.id, value: p.id };
}

function entryOf(p: PositionRecord): IndexEntry<PositionRecord> {
  const key = endangerment(p.side, p.liquidationPrice);
  return { approx: Number(key), key, id: p.id, value: p };
}
