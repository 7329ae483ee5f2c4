import { earlierWake, wakes } from '../../domain/sleep.ts';
import type { PriceE8 } from '../../domain/units.ts';
import {
  type AuctionRecord,
  type AuctionRepository,
  ConditionFailedError,
  type ProcessingFailure,
  type Sleeper,
} from '../../ports/index.ts';
import {
  auctionItem,
  auctionItemBytesAtMost,
  SIZED_WRITER,
  WRITER_TOKEN_LENGTH,
  withWriter,
} from '../aws/record-items.ts';
import {
  EmbeddedInputError,
  fire,
  frozenCopy,
  type HookRef,
  requireFailure,
  requireId,
  requireItemSize,
  requireVersionBump,
} from './internal.ts';

/**
 * Dutch auctions: create is conditional on absence, replace on the version. Sleepers (RUNNING with a wake mark)
 * are kept per market side like the AWS adapter's sparse index; they are written at nearly every step and read
 * only when a tick reaches the side's wake mark, so a read sorts what it returns instead of every write keeping
 * an order.
 */
export class EmbeddedAuctionRepository implements AuctionRepository {
  readonly #records = new Map<string, AuctionRecord>();
  /** Sleepers by market side, then id: a tick reads them only when it reaches the side's wake mark. */
  readonly #sleepers = new Map<string, Map<string, Sleeper>>();
  readonly #hook: HookRef;
  /** Claims made: each claim's token (no answer is lost here: a token as the AWS adapter's, of its size, for parity). */
  #claims = 0;

  constructor(hook: HookRef = {}) {
    this.#hook = hook;
  }

  async get(id: string): Promise<AuctionRecord | undefined> {
    return this.#records.get(id);
  }

  async create(auction: AuctionRecord): Promise<void> {
    this.checkWrite(auction, undefined, true);
    this.store(auction);
    fire(this.#hook, 'auctions.create');
  }

  /** Keeps the stored resend claim, as the AWS adapter's (watch45-resend-claim-kept): the record's is its read's. */
  async replace(next: AuctionRecord, expectedVersion: number): Promise<void> {
    // (Anything but a record goes on to checkWrite's refusal.)
    const kept =
      typeof next === 'object' && next !== null ? withClaimOf(next, this.#records.get(next.id)) : next;
    this.checkWrite(kept, expectedVersion, true);
    this.store(kept);
    fire(this.#hook, 'auctions.replace');
  }

  async recordFailure(id: string, failure: ProcessingFailure): Promise<void> {
    requireId(id, 'auctions');
    requireFailure(failure, 'auctions');
    const current = this.#records.get(id);
    if (!current) throw new ConditionFailedError(`auctions/not-found: ${id}`);
    this.storeUpdated({ ...current, lastFailure: failure });
    fire(this.#hook, 'auctions.recordFailure');
  }

  async claimStepResend(
    id: string,
    step: number,
    atMs: number,
    lastBeforeMs: number,
  ): Promise<string | undefined> {
    for (const value of [step, atMs, lastBeforeMs])
      if (!Number.isSafeInteger(value) || value < 0)
        throw new EmbeddedInputError(`auctions/bad-claim: ${value} is not an integer >= 0`);
    const current = this.#records.get(id);
    if (current?.state !== 'RUNNING' || current.step !== step) return undefined;
    const last = current.stepResent;
    if (last !== undefined && last.step === step && last.atMs > lastBeforeMs) return undefined;
    // No version bump: as the AWS adapter's UpdateItem, it fights no step. Its token in the claim, as the AWS one's.
    this.#claims += 1;
    const claimer = `claim-${String(this.#claims).padStart(WRITER_TOKEN_LENGTH - 'claim-'.length, '0')}`;
    this.storeUpdated({ ...current, stepResent: { step, atMs, claimer } });
    fire(this.#hook, 'auctions.claimStepResend');
    return claimer;
  }

  /** As the AWS adapter's: the claim's time to 0, only if the stored claim holds `claimer` (watch46-give-back-own). */
  async giveBackStepResend(id: string, claimer: string): Promise<boolean> {
    if (typeof claimer !== 'string' || claimer === '')
      throw new EmbeddedInputError(`auctions/bad-claimer: ${String(claimer)} is no claim's token`);
    const current = this.#records.get(id);
    const claim = current?.stepResent;
    if (current === undefined || claim?.claimer !== claimer) return false;
    this.storeUpdated({ ...current, stepResent: { ...claim, atMs: 0 } });
    fire(this.#hook, 'auctions.giveBackStepResend');
    return true;
  }

  /**
   * An UpdateItem's result, measured as DynamoDB would: the stored item may still carry the `writer` token of the
   * create or replace that put it (a transaction's put carries none: measured with one, the bound errs large).
   */
  private storeUpdated(next: AuctionRecord): void {
    requireItemSize(
      auctionItemBytesAtMost(next),
      () => withWriter(auctionItem(next), SIZED_WRITER),
      'auctions',
      next.id,
      'update',
    );
    this.#records.set(next.id, frozenCopy(next));
  }

  async sleepers(
    symbol: string,
    direction: 'BUY' | 'SELL',
    mark: PriceE8 | undefined,
    limit: number,
    after?: Sleeper,
  ): Promise<{ readonly due: readonly Sleeper[]; readonly next: PriceE8 | undefined }> {
    requireLimit(limit);
    const side = this.#sleepers.get(sideKey(symbol, direction));
    if (!side) return { due: [], next: undefined };
    // Only the reached ones are sorted; the nearest one not reached is one pass.
    const reached: Sleeper[] = [];
    let nearest: PriceE8 | undefined;
    for (const sleeper of side.values()) {
      if (after !== undefined && wakeOrder(direction, sleeper, after) <= 0) continue;
      if (mark === undefined || wakes(direction, sleeper.wakeMark, mark)) reached.push(sleeper);
      else if (
        nearest === undefined ||
        earlierWake(direction, sleeper.wakeMark, nearest) === sleeper.wakeMark
      )
        nearest = sleeper.wakeMark;
    }
    reached.sort((a, b) => wakeOrder(direction, a, b));
    if (reached.length > limit) return { due: reached.slice(0, limit), next: reached[limit]!.wakeMark };
    return { due: reached, next: nearest };
  }

  /** Every auction in creation order (reports of the simulation). */
  all(): AuctionRecord[] {
    return [...this.#records.values()];
  }

  /**
   * Condition of a write: absent when expectedVersion is undefined, else stored at that version; and its item
   * within DynamoDB's size. `alone`: put by create or replace, whose item carries its writer's token.
   */
  checkWrite(next: AuctionRecord, expectedVersion: number | undefined, alone = false): void {
    requireId(next?.id, 'auctions');
    const current = this.#records.get(next.id);
    if (expectedVersion === undefined) {
      if (current) throw new ConditionFailedError(`auctions/exists: ${next.id}`);
    } else {
      requireVersionBump(next, expectedVersion, 'auctions');
      if (!current) throw new ConditionFailedError(`auctions/not-found: ${next.id}`);
      if (current.version !== expectedVersion) {
        throw new ConditionFailedError(
          `auctions/version-mismatch: ${next.id} is at version ${current.version}, not ${expectedVersion}`,
        );
      }
    }
    requireItemSize(
      auctionItemBytesAtMost(next),
      () => (alone ? withWriter(auctionItem(next), SIZED_WRITER) : auctionItem(next)),
      'auctions',
      next.id,
    );
  }

  /** Stores a checked record (a frozen deep copy) and moves its sleeper entry. */
  store(next: AuctionRecord): void {
    const stored = frozenCopy(next);
    this.#records.set(next.id, stored);
    const key = sideKey(stored.symbol, stored.direction);
    let side = this.#sleepers.get(key);
    if (stored.wakeMark !== undefined && stored.state === 'RUNNING') {
      if (!side) {
        side = new Map();
        this.#sleepers.set(key, side);
      }
      // Frozen: sleepers() hands out these very entries (found by the adapter parity review, session 27: a
      // caller changing a returned sleeper changed what the next query returned).
      side.set(stored.id, Object.freeze({ id: stored.id, step: stored.step, wakeMark: stored.wakeMark }));
    } else {
      side?.delete(stored.id);
    }
  }
}

/** `next` with the claim `stored` holds (none: none). */
function withClaimOf(next: AuctionRecord, stored: AuctionRecord | undefined): AuctionRecord {
  const { stepResent: _read, ...rest } = next;
  return stored?.stepResent === undefined ? rest : { ...rest, stepResent: stored.stepResent };
}

const sideKey = (symbol: string, direction: 'BUY' | 'SELL'): string => `${symbol}#${direction}`;
/** Wake order: SELL lowest wake mark first, BUY highest; then id, so ties come out the same every time. */
function wakeOrder(direction: 'BUY' | 'SELL', a: Sleeper, b: Sleeper): number {
  if (a.wakeMark !== b.wakeMark) return a.wakeMark < b.wakeMark === (direction === 'SELL') ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function requireLimit(limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 1)
    throw new EmbeddedInputError(`auctions/bad-limit: a limit is an integer >= 1, got ${limit}`);
}
