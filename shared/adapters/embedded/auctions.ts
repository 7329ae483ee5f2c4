import { wakes } from '../../domain/sleep.ts';
import type { PriceE8 } from '../../domain/units.ts';
import {
  type AuctionRecord,
  type AuctionRepository,
  ConditionFailedError,
  type ProcessingFailure,
  type Sleeper,
} from '../../ports/index.ts';
import {
  EmbeddedInputError,
  fire,
  frozenCopy,
  type HookRef,
  requireFailure,
  requireId,
  requireVersionBump,
} from './internal.ts';
import { type IndexKey, indexKey, SortedIndex } from './sorted-index.ts';

/**
 * Dutch auctions: create is conditional on absence, replace on the version. Sleepers (RUNNING with a wake mark)
 * are indexed per market side like the AWS adapter's sparse index, BUY by the negated mark so that both
 * sides read "reached" as a prefix.
 */
export class EmbeddedAuctionRepository implements AuctionRepository {
  readonly #records = new Map<string, AuctionRecord>();
  readonly #sleepers = new Map<string, SortedIndex<Sleeper>>();
  readonly #hook: HookRef;

  constructor(hook: HookRef = {}) {
    this.#hook = hook;
  }

  async get(id: string): Promise<AuctionRecord | undefined> {
    return this.#records.get(id);
  }

  async create(auction: AuctionRecord): Promise<void> {
    this.checkWrite(auction, undefined);
    this.store(auction);
    fire(this.#hook, 'auctions.create');
  }

  async replace(next: AuctionRecord, expectedVersion: number): Promise<void> {
    this.checkWrite(next, expectedVersion);
    this.store(next);
    fire(this.#hook, 'auctions.replace');
  }

  async recordFailure(id: string, failure: ProcessingFailure): Promise<void> {
    requireId(id, 'auctions');
    requireFailure(failure, 'auctions');
    const current = this.#records.get(id);
    if (!current) throw new ConditionFailedError(`auctions/not-found: ${id}`);
    this.#records.set(id, frozenCopy({ ...current, lastFailure: failure }));
    fire(this.#hook, 'auctions.recordFailure');
  }

  async sleepers(
    symbol: string,
    direction: 'BUY' | 'SELL',
    mark: PriceE8,
    limit: number,
  ): Promise<{ readonly due: readonly Sleeper[]; readonly next: PriceE8 | undefined }> {
    requireLimit(limit);
    const index = this.#sleepers.get(sideKey(symbol, direction));
    if (!index) return { due: [], next: undefined };
    const { values } = index.range(undefined, MAX_KEY, limit + 1);
    const due: Sleeper[] = [];
    for (const sleeper of values) {
      if (due.length === limit || !wakes(direction, sleeper.wakeMark, mark)) break;
      due.push(sleeper);
    }
    return { due, next: values[due.length]?.wakeMark };
  }

  /** Every auction in creation order (reports of the simulation). */
  all(): AuctionRecord[] {
    return [...this.#records.values()];
  }

  /** Condition of a write: absent when expectedVersion is undefined, else stored at that version. */
  checkWrite(next: AuctionRecord, expectedVersion: number | undefined): void {
    requireId(next?.id, 'auctions');
    const current = this.#records.get(next.id);
    if (expectedVersion === undefined) {
      if (current) throw new ConditionFailedError(`auctions/exists: ${next.id}`);
      return;
    }
    requireVersionBump(next, expectedVersion, 'auctions');
    if (!current) throw new ConditionFailedError(`auctions/not-found: ${next.id}`);
    if (current.version !== expectedVersion) {
      throw new ConditionFailedError(
        `auctions/version-mismatch: ${next.id} is at version ${current.version}, not ${expectedVersion}`,
      );
    }
  }

  /** Stores a checked record (a frozen deep copy) and moves its sleeper entry. */
  store(next: AuctionRecord): void {
    const current = this.#records.get(next.id);
    if (current?.wakeMark !== undefined) this.#index(current).remove(sleeperKey(current));
    const stored = frozenCopy(next);
    this.#records.set(next.id, stored);
    if (stored.wakeMark !== undefined && stored.state === 'RUNNING') {
      const value = { id: stored.id, step: stored.step, wakeMark: stored.wakeMark };
      this.#index(stored).insert({ ...sleeperKey(stored), value });
    }
  }

  #index(auction: AuctionRecord): SortedIndex<Sleeper> {
    const key = sideKey(auction.symbol, auction.direction);
    let index = this.#sleepers.get(key);
    if (!index) {
      index = new SortedIndex();
      this.#sleepers.set(key, index);
    }
    return index;
  }
}

const MAX_KEY = 2n ** 256n;
const sideKey = (symbol: string, direction: 'BUY' | 'SELL'): string => `${symbol}#${direction}`;
const sleeperKey = (a: AuctionRecord): IndexKey =>
  indexKey(a.direction === 'SELL' ? (a.wakeMark as PriceE8) : -(a.wakeMark as PriceE8), a.id);

function requireLimit(limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 1)
    throw new EmbeddedInputError(`auctions/bad-limit: a limit is an integer >= 1, got ${limit}`);
}
