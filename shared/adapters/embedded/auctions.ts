import {
  type AuctionRecord,
  type AuctionRepository,
  ConditionFailedError,
  type ProcessingFailure,
} from '../../ports/index.ts';
import { fire, frozenCopy, type HookRef, requireFailure, requireId, requireVersionBump } from './internal.ts';

/** Dutch auctions: create is conditional on absence, replace on the version. */
export class EmbeddedAuctionRepository implements AuctionRepository {
  readonly #records = new Map<string, AuctionRecord>();
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

  /** Stores a checked record (a frozen deep copy). */
  store(next: AuctionRecord): void {
    this.#records.set(next.id, frozenCopy(next));
  }
}
