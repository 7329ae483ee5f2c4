import {
  ConditionFailedError,
  isOpenLiquidation,
  type LiquidationRecord,
  type LiquidationRepository,
  type OpenListingPage,
  type OpenListingPosition,
  type PositionRecord,
  type ProcessingFailure,
  liquidationStartedAtMs as startedAtMs,
  type WatchCursor,
  type WatchCursorState,
} from '../../ports/index.ts';
import {
  liquidationItem,
  liquidationItemBytesAtMost,
  SIZED_WRITER,
  withWriter,
} from '../aws/record-items.ts';
import { comesAfter, compareListingKeys, isListingPosition, openListingKeyOf } from '../shards.ts';
import {
  checkInTransaction,
  EmbeddedInputError,
  fire,
  frozenCopy,
  getOrCreate,
  type HookRef,
  requireFailure,
  requireId,
  requireItemSize,
  requireVersionBump,
} from './internal.ts';
import type { EmbeddedPositionRepository } from './positions.ts';

/** Records per page of openStartedBefore (the AWS adapter's BatchGet). */
const OPEN_PAGE = 100;

const byId = (a: LiquidationRecord, b: LiquidationRecord): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/**
 * Liquidations, sharing the position store for the two transactions. Like TransactWriteItems, every
 * condition of a transaction is checked before anything is written (and without yielding to other calls),
 * so a failure writes nothing. listByTick returns a tick's liquidations ordered by id, as the AWS adapter.
 */
export class EmbeddedLiquidationRepository implements LiquidationRepository {
  readonly #records = new Map<string, LiquidationRecord>();
  /** tickKey -> liquidation ids (the tickKey of a liquidation never changes). */
  readonly #byTick = new Map<string, string[]>();
  readonly #positions: EmbeddedPositionRepository;
  readonly #hook: HookRef;
  #watchCursor: WatchCursor | undefined;

  constructor(positions: EmbeddedPositionRepository, hook: HookRef = {}) {
    this.#positions = positions;
    this.#hook = hook;
  }

  async get(id: string): Promise<LiquidationRecord | undefined> {
    return this.#records.get(id);
  }

  /** Synchronous read (the batch reader's: one await per call, as one BatchGetItem). */
  peek(id: string): LiquidationRecord | undefined {
    return this.#records.get(id);
  }

  /** The stored version, read without yielding (the ledger's fences). */
  versionOf(id: string): number | undefined {
    return this.#records.get(id)?.version;
  }

  /**
   * `position` is the OPEN record as read (version v): the stored position must still be at version v and
   * OPEN; it becomes { ...stored, state: 'LIQUIDATING', version: v + 1 } and leaves the index. The
   * liquidation (state QUEUED) must not exist yet.
   */
  async begin(position: PositionRecord, liquidation: LiquidationRecord): Promise<void> {
    if (position?.state !== 'OPEN') {
      throw new EmbeddedInputError(
        `liquidations/position-not-open: pass the OPEN record as read (${position?.state})`,
      );
    }
    if (liquidation?.positionId !== position.id) {
      throw new EmbeddedInputError(
        `liquidations/position-mismatch: ${liquidation?.id} is for ${liquidation?.positionId}, not ${position.id}`,
      );
    }
    if (liquidation.state !== 'QUEUED') {
      throw new EmbeddedInputError(
        `liquidations/not-queued: ${liquidation.id} starts in ${liquidation.state}`,
      );
    }
    const stored = this.#positions.peek(position.id);
    if (!stored || stored.version !== position.version || stored.state !== 'OPEN') {
      throw new ConditionFailedError(
        `liquidations/position-changed: ${position.id} is not OPEN at version ${position.version}`,
      );
    }
    // Its items on AWS: the position's update, the liquidation's put, its tick-index item.
    checkInTransaction(
      1,
      () => 3,
      () => this.checkWrite(liquidation, undefined),
    );
    this.#positions.write(stored, { ...stored, state: 'LIQUIDATING', version: stored.version + 1 });
    this.store(liquidation, true);
    fire(this.#hook, 'liquidations.begin');
  }

  async replace(next: LiquidationRecord, expectedVersion: number): Promise<void> {
    this.checkWrite(next, expectedVersion, true);
    this.store(next, false);
    fire(this.#hook, 'liquidations.replace');
  }

  async replaceWithPosition(
    next: LiquidationRecord,
    expectedVersion: number,
    position: PositionRecord,
    expectedPositionVersion: number,
  ): Promise<void> {
    // Its items on AWS: the liquidation's put, the position's.
    checkInTransaction(
      0,
      () => 2,
      () => this.checkWrite(next, expectedVersion),
    );
    const currentPosition = this.#positions.checkReplace(position, expectedPositionVersion);
    this.store(next, false);
    this.#positions.write(currentPosition, position);
    fire(this.#hook, 'liquidations.replaceWithPosition');
  }

  async listByTick(tickKey: string): Promise<readonly LiquidationRecord[]> {
    return (this.#byTick.get(tickKey) ?? []).map((id) => this.#records.get(id)!).sort(byId);
  }

  /**
   * Stores an UpdateItem's result: measured as the stored item, which may carry the token of the put that wrote it
   * alone (owned-put.ts), so refused as DynamoDB would refuse it.
   */
  #update(next: LiquidationRecord): void {
    requireItemSize(
      liquidationItemBytesAtMost(next),
      () => withWriter(liquidationItem(next), SIZED_WRITER),
      'liquidations',
      next.id,
      'update',
    );
    this.#records.set(next.id, frozenCopy(next));
  }

  async recordFailure(id: string, failure: ProcessingFailure): Promise<void> {
    requireId(id, 'liquidations');
    requireFailure(failure, 'liquidations');
    const current = this.#records.get(id);
    if (!current) throw new ConditionFailedError(`liquidations/not-found: ${id}`);
    this.#update({ ...current, lastFailure: failure });
    fire(this.#hook, 'liquidations.recordFailure');
  }

  async recordMarkDispute(
    id: string,
    sinceMs: number,
  ): Promise<{ readonly sinceMs: number; readonly recorded: boolean }> {
    requireId(id, 'liquidations');
    if (!Number.isSafeInteger(sinceMs) || sinceMs < 0)
      throw new EmbeddedInputError(`liquidations/bad-time: ${sinceMs} is not an integer of ms`);
    const current = this.#records.get(id);
    if (current?.state !== 'QUEUED') throw new ConditionFailedError(`liquidations/not-queued: ${id}`);
    if (current.markDisputedSinceMs !== undefined)
      return { sinceMs: current.markDisputedSinceMs, recorded: false };
    this.#update({ ...current, markDisputedSinceMs: sinceMs });
    fire(this.#hook, 'liquidations.recordMarkDispute');
    return { sinceMs, recorded: true };
  }

  /**
   * A scan of the store (the embedded engine holds no index: only the watch asks, never the replay's hot path), in
   * the AWS index's order: shard, start time, id.
   */
  async *openStartedBefore(
    startedBeforeMs: number,
    from?: OpenListingPosition,
    startedFromMs = Number.MIN_SAFE_INTEGER,
  ): AsyncIterable<OpenListingPage> {
    for (const ms of [startedBeforeMs, startedFromMs])
      if (!Number.isSafeInteger(ms))
        throw new EmbeddedInputError(`liquidations/bad-time: ${ms} is not an integer of ms`);
    if (from !== undefined && !isListingPosition(from))
      throw new EmbeddedInputError(`liquidations/bad-position: ${JSON.stringify(from)}`);
    const listed = [...this.#records.values()]
      .filter(
        (l) => isOpenLiquidation(l) && startedAtMs(l) < startedBeforeMs && startedAtMs(l) >= startedFromMs,
      )
      .map((l) => ({ record: l, key: openListingKeyOf(l) }))
      .filter(({ key }) => from === undefined || comesAfter(key, from))
      .sort((a, b) => compareListingKeys(a.key, b.key));
    for (let i = 0; i < listed.length; i += OPEN_PAGE) {
      const page = listed.slice(i, i + OPEN_PAGE);
      const last = page.at(-1)!.key;
      yield {
        records: page.map(({ record }) => record),
        next: { shard: last.shard, after: { startedAtMs: last.startedAtMs, id: last.id } },
      };
    }
  }

  async watchCursor(): Promise<WatchCursor | undefined> {
    return this.#watchCursor;
  }

  async saveWatchCursor(
    cursor: WatchCursorState,
    expectedVersion: number | undefined,
    owner: string,
  ): Promise<boolean> {
    // No answer is lost here: the AWS adapter's retry of a write whose answer was lost finds its own (putOwned).
    if (this.#watchCursor?.version !== expectedVersion) return false;
    this.#watchCursor = frozenCopy({ ...cursor, version: (expectedVersion ?? 0) + 1, owner });
    return true;
  }

  /** Every liquidation in creation order (reports of the simulation). */
  all(): LiquidationRecord[] {
    return [...this.#records.values()];
  }

  /**
   * Condition of a write: absent when expectedVersion is undefined, else stored at that version (and the
   * new record carries version + 1 and keeps its position and tickKey); and its item within DynamoDB's size.
   * `alone`: put by replace, whose item carries its writer's token (a transaction's put carries none).
   */
  checkWrite(next: LiquidationRecord, expectedVersion: number | undefined, alone = false): void {
    requireId(next?.id, 'liquidations');
    const current = this.#records.get(next.id);
    if (expectedVersion === undefined) {
      if (current) throw new ConditionFailedError(`liquidations/exists: ${next.id}`);
      // Measured as stored (store), as the AWS adapter writes a new record (newLiquidationItem).
      const fresh = asCreated(next);
      requireItemSize(
        liquidationItemBytesAtMost(fresh),
        () => liquidationItem(fresh),
        'liquidations',
        next.id,
      );
      return;
    }
    requireVersionBump(next, expectedVersion, 'liquidations');
    if (!current) throw new ConditionFailedError(`liquidations/not-found: ${next.id}`);
    if (current.version !== expectedVersion) {
      throw new ConditionFailedError(
        `liquidations/version-mismatch: ${next.id} is at version ${current.version}, not ${expectedVersion}`,
      );
    }
    if (next.tickKey !== current.tickKey || next.positionId !== current.positionId) {
      throw new EmbeddedInputError(
        `liquidations/immutable-key: ${next.id} cannot change its tickKey or position`,
      );
    }
    requireItemSize(
      liquidationItemBytesAtMost(next),
      () => (alone ? withWriter(liquidationItem(next), SIZED_WRITER) : liquidationItem(next)),
      'liquidations',
      next.id,
    );
  }

  /**
   * Stores a checked record; a new one joins its tick's list and starts without a failure or a dispute (they belong
   * to the record that had them, not to a slice spread from it).
   */
  store(next: LiquidationRecord, created: boolean): void {
    if (created) {
      this.#records.set(next.id, frozenCopy(asCreated(next)));
      getOrCreate(this.#byTick, next.tickKey, () => []).push(next.id);
    } else this.#records.set(next.id, frozenCopy(next));
  }
}

/** A record as created: a failure or a hold's start belongs to the record that had it, not to a slice spread from it. */
function asCreated(l: LiquidationRecord): LiquidationRecord {
  const { lastFailure: _dropped, markDisputedSinceMs: _held, ...fresh } = l;
  return fresh;
}
