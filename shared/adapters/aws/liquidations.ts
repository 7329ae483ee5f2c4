import {
  type AttributeValue,
  type CancellationReason,
  type DynamoDBClient,
  GetItemCommand,
  QueryCommand,
  type TransactWriteItem,
  TransactWriteItemsCommand,
  type Update,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { type LiquidationState, TERMINAL_STATES } from '../../domain/model.ts';
import { parseBase, parseQuote } from '../../domain/units.ts';
import { SETTLEMENT_UNITS, type SettlementAmounts } from '../../domain/waterfall.ts';
import { chunksOf, eachInFlight } from '../../in-flight.ts';
import {
  ConditionFailedError,
  type CrashHook,
  isOpenLiquidation,
  type LiquidationContext,
  type LiquidationEvent,
  type LiquidationRecord,
  type LiquidationRepository,
  liquidationStartedAtMs,
  type OpenListingPage,
  type OpenListingPosition,
  type PositionRecord,
  type ProcessingFailure,
  type WatchCursor,
  type WatchCursorState,
} from '../../ports/index.ts';
import { contextFromText } from '../../schemas/context.ts';
import { LIQUIDATION_WATCH_KEY_PREFIX, OPEN_LIQUIDATIONS_INDEX } from '../../topology.ts';
import {
  compareListingKeys,
  isListingPosition,
  OPEN_INDEX_SHARDS,
  openListingKeyOf,
  openShardKey,
  openShardOf,
  TICK_INDEX_PREFIX,
  TICK_INDEX_SHARDS,
  tickIndexItems,
  tickIndexShardId,
} from '../shards.ts';
import {
  AdapterInputError,
  CorruptItemError,
  cancellationCodes,
  checkNextVersion,
  conditional,
  failureAttr,
  type Item,
  isConditionalCheckFailed,
  N,
  noCrash,
  optFailure,
  optInt,
  optS,
  readBig,
  readFill,
  readInt,
  readMap,
  readMaps,
  readS,
  retryingConflicts,
  S,
} from './codec.ts';
import { liquidationItem, SETTLEMENT_KEYS, SETTLEMENT_KEYS_ADDED } from './record-items.ts';

export { liquidationItem };

import { putOwned, updateItemOwned } from './owned-put.ts';
import type { PositionIndexLayout } from './position-layout.ts';
import { positionItem, readSide } from './positions.ts';
import { BATCH_GET_MAX, batchGetConsistent } from './reader.ts';
import { scanPages } from './scan.ts';
import { fencedPut, refusingNewerWriter, schemaStamp } from './writer-schema.ts';

/**
 * Liquidations table, pk `id`. listByTick without a Scan or an extra index: `begin` adds the liquidation id,
 * in the same transaction, to one of TICK_INDEX_SHARDS tick-index items (`~tick~<tickKey>~<shard>`, a string
 * set `ids`; ../shards.ts) in this table. Sharding spreads the growing item (an ADD rewrites the whole item, and pays a write
 * unit per KB of it; 400 KB limit: about 8k ids of 50 bytes per shard, so about 2M liquidations per tick, and
 * about 1M with the 100-character position ids admin allows (about 3,900 ids of 106 bytes per shard), where 32 shards
 * held 250k, which a crash of a book of millions can start in one tick) and the concurrent starts of a tick over
 * more items (each start's transaction holds one; a conflict is retried, see retryingConflicts); listByTick reads
 * the shards (three BatchGets, only to re-send an interrupted tick's messages) and then the liquidations. A count
 * raised reads every item a smaller one wrote.
 */

/** BatchGetItem calls listByTick keeps in flight. */
const READS_IN_FLIGHT = 16;

const STATES: readonly LiquidationState[] = [
  'QUEUED',
  'EXECUTING',
  'MARKET_EXECUTED',
  'AUCTION',
  'SETTLING',
  'SETTLED_MARKET',
  'SETTLED_AUCTION',
  'SETTLED_INSURANCE',
  'SETTLED_ADL',
  'CANCELLED',
];

const readState = (item: Item, name: string): LiquidationState => {
  const value = readS(item, name);
  if (!(STATES as readonly string[]).includes(value))
    throw new CorruptItemError(`adapter/bad-state: ${value}`);
  return value as LiquidationState;
};

/** Transaction items adding new liquidations to their tick indexes: one Update per shard item touched. */
export function tickIndexUpdates(table: string, liquidations: readonly LiquidationRecord[]): Update[] {
  return [...tickIndexItems(liquidations)].map(([id, ids]) => ({
    TableName: table,
    Key: { id: S(id) },
    UpdateExpression: 'ADD ids :ids SET kind = :kind',
    ExpressionAttributeValues: { ':ids': { SS: ids }, ':kind': S('tickIndex') },
  }));
}

/** The table's items that are not liquidations: the tick index, liquidation-watch's cursor. */
const isHelperItemId = (id: string): boolean =>
  id.startsWith(TICK_INDEX_PREFIX) || id.startsWith(LIQUIDATION_WATCH_KEY_PREFIX);

/** Liquidation ids may not collide with the tick-index items or the watch's cursor. */
export function checkLiquidationId(id: string): void {
  if (!id) throw new AdapterInputError('liquidations/bad-id: empty id');
  if (isHelperItemId(id)) {
    throw new AdapterInputError(
      `liquidations/bad-id: ids may not start with ${TICK_INDEX_PREFIX} or ${LIQUIDATION_WATCH_KEY_PREFIX}`,
    );
  }
}

/** Scaled integers; decimal strings (what versions before typed settlements wrote) are parsed in their unit. */
export function readSettlement(m: Item): SettlementAmounts {
  const amounts: Partial<Record<keyof SettlementAmounts, bigint>> = {};
  for (const key of SETTLEMENT_KEYS) {
    const value = m[key];
    if (value === undefined && SETTLEMENT_KEYS_ADDED.has(key)) {
      amounts[key] = 0n;
      continue;
    }
    if (value?.S === undefined) {
      amounts[key] = readBig(m, key);
      continue;
    }
    try {
      amounts[key] =
        SETTLEMENT_UNITS[key] === 'base'
          ? parseBase(value.S, key)
          : parseQuote(value.S, key, { allowNegative: true });
    } catch (error) {
      throw new CorruptItemError(`adapter/bad-settlement: ${error instanceof Error ? error.message : error}`);
    }
  }
  return amounts as SettlementAmounts;
}

/** The item of a record being created: a failure or a dispute belongs to the record that had it, not to a new slice. */
export function newLiquidationItem(l: LiquidationRecord): Item {
  const { lastFailure: _dropped, markDisputedSinceMs: _held, ...fresh } = l;
  return liquidationItem(fresh);
}

/**
 * The Put of a liquidation replaced at `expectedVersion`: on that version, and only while it keeps its tick and
 * its position (the tick index lists it under the tickKey it began with; a record moved to another tick would be
 * re-sent by neither tick's recovery). The item as it stood comes back on a failed condition (ALL_OLD), so a
 * moved key is told from a lost race without another read (refusingMovedKey).
 * Found by the adapter parity review, session 27: the embedded adapters refused a replace that changes the
 * tickKey or the position (liquidations/immutable-key), the AWS adapters wrote it.
 */
export function replacedLiquidationPut(
  table: string,
  next: LiquidationRecord,
  expectedVersion: number,
): NonNullable<TransactWriteItem['Put']> {
  return fencedPut({
    TableName: table,
    Item: liquidationItem(next),
    ConditionExpression: 'version = :expected AND tickKey = :tickKey AND positionId = :positionId',
    ExpressionAttributeValues: {
      ':expected': N(expectedVersion),
      ':tickKey': S(next.tickKey),
      ':positionId': S(next.positionId),
    },
    ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
  });
}

/** A replace whose record would move to another tick or position: a caller bug, as the embedded adapter says. */
const movedKey = (next: LiquidationRecord): AdapterInputError =>
  new AdapterInputError(`liquidations/immutable-key: ${next.id} cannot change its tickKey or position`);

/** The stored item was at the expected version, so only the key condition failed. */
const onlyKeyFailed = (stored: Item | undefined, expectedVersion: number): boolean =>
  stored?.version?.N === String(expectedVersion);

/**
 * Runs a write holding replacedLiquidationPut items (`replaced`: by their index in the transaction; a single
 * PutItem is index 0) and throws AdapterInputError when the first item whose condition failed is one of them and
 * failed only on its key: the embedded adapter checks a commit's writes in order and refuses the same way.
 * Any other error passes unchanged (to `conditional`).
 */
export async function refusingMovedKey<T>(
  write: () => Promise<T>,
  replaced: ReadonlyMap<number, { readonly next: LiquidationRecord; readonly expectedVersion: number }>,
): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (isConditionalCheckFailed(error)) {
      const r = replaced.get(0);
      if (r && onlyKeyFailed((error as { Item?: Item }).Item, r.expectedVersion)) throw movedKey(r.next);
      throw error;
    }
    const reasons = (error as { CancellationReasons?: CancellationReason[] }).CancellationReasons;
    if (cancellationCodes(error) && reasons) {
      const first = reasons.findIndex((reason) => reason.Code === 'ConditionalCheckFailed');
      const r = replaced.get(first);
      if (r && onlyKeyFailed(reasons[first]?.Item, r.expectedVersion)) throw movedKey(r.next);
    }
    throw error;
  }
}

/** A stored context, or CorruptItemError when its text is not one. */
function readContext(text: string): LiquidationContext {
  try {
    return contextFromText(text);
  } catch (error) {
    throw new CorruptItemError(
      `adapter/bad-context: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

export function liquidationFromItem(item: Item): LiquidationRecord {
  const contextText = optS(item, 'context');
  const context = contextText === undefined ? undefined : readContext(contextText);
  const lastFailure = optFailure(item);
  const markDisputedSinceMs = optInt(item, 'markDisputedSinceMs');
  const settlement = item.settlement === undefined ? undefined : readSettlement(readMap(item, 'settlement'));
  return {
    id: readS(item, 'id'),
    positionId: readS(item, 'positionId'),
    symbol: readS(item, 'symbol'),
    side: readSide(item),
    state: readState(item, 'state'),
    tickKey: readS(item, 'tickKey'),
    triggerMark: readBig(item, 'triggerMark'),
    remainingSize: readBig(item, 'remainingSize'),
    marketFills: readMaps(item, 'marketFills').map(readFill),
    ...(settlement === undefined ? {} : { settlement }),
    history: readMaps(item, 'history').map((m): LiquidationEvent => {
      const note = optS(m, 'note');
      return {
        atMs: readInt(m, 'atMs'),
        state: readState(m, 'state'),
        ...(note === undefined ? {} : { note }),
      };
    }),
    ...(context === undefined ? {} : { context }),
    ...(lastFailure === undefined ? {} : { lastFailure }),
    ...(markDisputedSinceMs === undefined ? {} : { markDisputedSinceMs }),
    version: readInt(item, 'version'),
  };
}

/** The terminal states as expression values (:terminal0, ...). */
const TERMINAL_VALUES: Readonly<Record<string, AttributeValue>> = Object.fromEntries(
  TERMINAL_STATES.map((state, i) => [`:terminal${i}`, S(state)]),
);

/**
 * Lists in the open index the open liquidations written before it existed (session 38): liquidation-watch cannot
 * see them until their next write. Once per table, by an operator; a Scan (a page at a time) that keeps only those
 * not ended (or owing ADL rounds) and not listed yet. Each update is conditional on the version read and the
 * attribute's absence, so a record that moved meanwhile (its write lists it itself while open), a re-run or a
 * concurrent run changes nothing. An item no version can read is returned by id, not listed.
 */
export async function indexOpenLiquidations(
  dynamo: DynamoDBClient,
  table: string,
): Promise<{
  readonly scanned: number;
  readonly open: number;
  readonly indexed: number;
  /** Items that could not be read as liquidations (CorruptItemError), by id: left for an operator to look at. */
  readonly unreadable: readonly string[];
}> {
  let scanned = 0;
  let open = 0;
  let indexed = 0;
  const unreadable: string[] = [];
  const pages = scanPages(dynamo, {
    TableName: table,
    // Liquidations (the tick-index items have no tickKey) not listed yet, and not ended (isOpenLiquidation: a
    // terminal one is open only while ADL rounds follow it, which its context says).
    FilterExpression:
      'attribute_exists(tickKey) AND attribute_not_exists(openShard) AND ' +
      `(NOT #state IN (${Object.keys(TERMINAL_VALUES).join(', ')}) OR contains(#context, :adlRound))`,
    ExpressionAttributeNames: { '#state': 'state', '#context': 'context' },
    ExpressionAttributeValues: { ...TERMINAL_VALUES, ':adlRound': S('"adlRound"') },
  });
  for await (const { items } of pages) {
    for (const item of items) {
      scanned++;
      let l: LiquidationRecord;
      try {
        l = liquidationFromItem(item);
      } catch (error) {
        // One item no version can read must not keep the others from the index.
        if (!(error instanceof CorruptItemError)) throw error;
        unreadable.push(item.id?.S ?? '?');
        continue;
      }
      if (!isOpenLiquidation(l)) continue;
      open++;
      try {
        await dynamo.send(
          new UpdateItemCommand({
            TableName: table,
            Key: { id: S(l.id) },
            UpdateExpression: 'SET openShard = :shard, startedAtMs = :started',
            ConditionExpression: 'version = :version AND attribute_not_exists(openShard)',
            ExpressionAttributeValues: {
              ':shard': S(openShardOf(l.id)),
              ':started': N(liquidationStartedAtMs(l)),
              ':version': N(l.version),
            },
          }),
        );
        indexed++;
      } catch (error) {
        if (!isConditionalCheckFailed(error)) throw error;
      }
    }
  }
  return { scanned, open, indexed, unreadable };
}

/** liquidation-watch's cursor: an item of this table, and the only one the watch may write (topology.ts). */
const WATCH_CURSOR_ID = `${LIQUIDATION_WATCH_KEY_PREFIX}open-cursor`;

/**
 * The cursor as an item. Its position under names of its own: `openShard` and `startedAtMs` would list it in the
 * open index, and `state` or `tickKey` make an item a liquidation to the table's readers (status, the index scan).
 */
function watchCursorItem(cursor: WatchCursorState, owner: string, version: number): Item {
  const from = cursor.from;
  return {
    id: S(WATCH_CURSOR_ID),
    kind: S('watchCursor'),
    cycleStartedAtMs: N(cursor.cycleStartedAtMs),
    cycleJudged: N(cursor.judged),
    cycleOverdue: N(cursor.overdue),
    ...(cursor.lastCycleOverdue === undefined ? {} : { lastCycleOverdue: N(cursor.lastCycleOverdue) }),
    owner: S(owner),
    version: N(version),
    ...(from ? { resumeShard: N(from.shard) } : {}),
    ...(from?.after
      ? { resumeAfterStartedAtMs: N(from.after.startedAtMs), resumeAfterId: S(from.after.id) }
      : {}),
  };
}

function watchCursorFromItem(item: Item): WatchCursor {
  const shard = optInt(item, 'resumeShard');
  const afterId = optS(item, 'resumeAfterId');
  const lastCycleOverdue = optInt(item, 'lastCycleOverdue');
  return {
    cycleStartedAtMs: readInt(item, 'cycleStartedAtMs'),
    judged: readInt(item, 'cycleJudged'),
    overdue: readInt(item, 'cycleOverdue'),
    ...(lastCycleOverdue === undefined ? {} : { lastCycleOverdue }),
    owner: readS(item, 'owner'),
    version: readInt(item, 'version'),
    ...(shard === undefined
      ? {}
      : {
          from: {
            shard,
            ...(afterId === undefined
              ? {}
              : { after: { startedAtMs: readInt(item, 'resumeAfterStartedAtMs'), id: afterId } }),
          },
        }),
  };
}

export class DynamoLiquidationRepository implements LiquidationRepository {
  constructor(
    private readonly dynamo: DynamoDBClient,
    private readonly tables: { readonly liquidations: string; readonly positions: string },
    private readonly layout: PositionIndexLayout,
    private readonly crash: CrashHook = noCrash,
  ) {}

  async get(id: string): Promise<LiquidationRecord | undefined> {
    if (isHelperItemId(id)) return undefined;
    const out = await this.dynamo.send(
      new GetItemCommand({ TableName: this.tables.liquidations, Key: { id: S(id) }, ConsistentRead: true }),
    );
    return out.Item ? liquidationFromItem(out.Item) : undefined;
  }

  /**
   * One transaction: position OPEN@v -> LIQUIDATING@v+1 (leaving the index), liquidation put if absent, and
   * its id added to the tick index. `position` is the OPEN record as read.
   */
  async begin(position: PositionRecord, liquidation: LiquidationRecord): Promise<void> {
    if (position.state !== 'OPEN') {
      throw new AdapterInputError(
        `liquidations/position-not-open: pass the OPEN record as read (${position.state})`,
      );
    }
    if (liquidation.positionId !== position.id) {
      throw new AdapterInputError(
        'liquidations/position-mismatch: liquidation.positionId must be position.id',
      );
    }
    if (liquidation.state !== 'QUEUED') {
      throw new AdapterInputError(
        `liquidations/not-queued: ${liquidation.id} starts in ${liquidation.state}`,
      );
    }
    checkLiquidationId(liquidation.id);
    await conditional('liquidations/begin', () =>
      retryingConflicts(() =>
        this.dynamo.send(
          new TransactWriteItemsCommand({
            TransactItems: [
              {
                Update: {
                  TableName: this.tables.positions,
                  Key: { id: S(position.id) },
                  UpdateExpression: 'SET #state = :liquidating, version = :next REMOVE liqKey, liqPrice',
                  ConditionExpression: 'version = :expected AND #state = :open',
                  ExpressionAttributeNames: { '#state': 'state' },
                  ExpressionAttributeValues: {
                    ':liquidating': S('LIQUIDATING'),
                    ':open': S('OPEN'),
                    ':next': N(position.version + 1),
                    ':expected': N(position.version),
                  },
                },
              },
              {
                Put: {
                  TableName: this.tables.liquidations,
                  Item: newLiquidationItem(liquidation),
                  ConditionExpression: 'attribute_not_exists(id)',
                },
              },
              ...tickIndexUpdates(this.tables.liquidations, [liquidation]).map((Update) => ({ Update })),
            ],
          }),
        ),
      ),
    );
    this.crash('liquidations.begin');
  }

  async replace(next: LiquidationRecord, expectedVersion: number): Promise<void> {
    checkNextVersion('liquidations', next.version, expectedVersion);
    const put = replacedLiquidationPut(this.tables.liquidations, next, expectedVersion);
    await conditional('liquidations/version', () =>
      refusingMovedKey(
        // Its own put first (putOwned): a lost answer's retry finds this call's item, never a moved key.
        () => putOwned(this.dynamo, put),
        new Map([[0, { next, expectedVersion }]]),
      ),
    );
    this.crash('liquidations.replace');
  }

  async replaceWithPosition(
    next: LiquidationRecord,
    expectedVersion: number,
    position: PositionRecord,
    expectedPositionVersion: number,
  ): Promise<void> {
    checkNextVersion('liquidations', next.version, expectedVersion);
    checkNextVersion('positions', position.version, expectedPositionVersion);
    const puts = [
      replacedLiquidationPut(this.tables.liquidations, next, expectedVersion),
      fencedPut({
        TableName: this.tables.positions,
        Item: positionItem(position, this.layout),
        ConditionExpression: 'version = :expected',
        ExpressionAttributeValues: { ':expected': N(expectedPositionVersion) },
      }),
    ];
    const transaction = new TransactWriteItemsCommand({ TransactItems: puts.map((Put) => ({ Put })) });
    await conditional('liquidations/version', () =>
      refusingMovedKey(
        () => refusingNewerWriter(() => retryingConflicts(() => this.dynamo.send(transaction)), puts),
        new Map([[0, { next, expectedVersion }]]),
      ),
    );
    this.crash('liquidations.replaceWithPosition');
  }

  /** UpdateItem of lastFailure alone, on an existing item: no version condition, so no transition is fought. */
  async recordFailure(id: string, failure: ProcessingFailure): Promise<void> {
    checkLiquidationId(id);
    await conditional(`liquidations/not-found: ${id}`, () =>
      this.dynamo.send(
        new UpdateItemCommand({
          TableName: this.tables.liquidations,
          Key: { id: S(id) },
          UpdateExpression: 'SET lastFailure = :failure',
          ConditionExpression: 'attribute_exists(id)',
          ExpressionAttributeValues: { ':failure': failureAttr('liquidations', failure) },
        }),
      ),
    );
    this.crash('liquidations.recordFailure');
  }

  /**
   * UpdateItem of markDisputedSinceMs alone, on a QUEUED item without one: no version condition, so no transition is
   * fought. A failed condition reads the item (consistently) for the time that won.
   */
  async recordMarkDispute(
    id: string,
    sinceMs: number,
  ): Promise<{ readonly sinceMs: number; readonly recorded: boolean }> {
    checkLiquidationId(id);
    if (!Number.isSafeInteger(sinceMs) || sinceMs < 0)
      throw new AdapterInputError(`liquidations/bad-time: ${sinceMs} is not an integer of ms`);
    try {
      // Its own write (updateItemOwned): a lost answer's retry fails on the time it recorded, not another delivery's.
      await updateItemOwned(this.dynamo, {
        TableName: this.tables.liquidations,
        Key: { id: S(id) },
        UpdateExpression: 'SET markDisputedSinceMs = :since',
        ConditionExpression: '#state = :queued AND attribute_not_exists(markDisputedSinceMs)',
        ExpressionAttributeNames: { '#state': 'state' },
        ExpressionAttributeValues: { ':since': N(sinceMs), ':queued': S('QUEUED') },
      });
    } catch (error) {
      if (!isConditionalCheckFailed(error)) throw error;
      const stored = await this.get(id);
      if (stored?.state !== 'QUEUED' || stored.markDisputedSinceMs === undefined)
        throw new ConditionFailedError(`liquidations/not-queued: ${id}`);
      return { sinceMs: stored.markDisputedSinceMs, recorded: false };
    }
    this.crash('liquidations.recordMarkDispute');
    return { sinceMs, recorded: true };
  }

  async listByTick(tickKey: string): Promise<readonly LiquidationRecord[]> {
    const shardKeys = Array.from({ length: TICK_INDEX_SHARDS }, (_, s) => ({
      id: S(tickIndexShardId(tickKey, s)),
    }));
    const pages = chunksOf(shardKeys, BATCH_GET_MAX);
    const items = (await Promise.all(pages.map((keys) => this.batchGet(keys)))).flat();
    const ids = items.flatMap((item) => (item.ids?.SS ? item.ids.SS : []));
    // Several BatchGets in flight: a tick that crossed 100,000 positions is read in seconds (its re-send).
    const chunks = chunksOf(ids, BATCH_GET_MAX).map((chunk) => chunk.map((id): Item => ({ id: S(id) })));
    const records: LiquidationRecord[] = [];
    await eachInFlight(chunks, READS_IN_FLIGHT, async (keys) => {
      records.push(...(await this.batchGet(keys)).map(liquidationFromItem));
    });
    return records.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /**
   * Each shard of the open index from `from`'s, a page of keys at a time, started before `startedBeforeMs`; the
   * records read consistently, 100 at a time, and kept only while still open (the index lags the table). A page's
   * `next` is its last key (the LastEvaluatedKey a query ending there would give), so a listing resumes after it even
   * once that liquidation has left the index.
   */
  async *openStartedBefore(
    startedBeforeMs: number,
    from?: OpenListingPosition,
    startedFromMs = Number.MIN_SAFE_INTEGER,
  ): AsyncIterable<OpenListingPage> {
    for (const ms of [startedBeforeMs, startedFromMs])
      if (!Number.isSafeInteger(ms))
        throw new AdapterInputError(`liquidations/bad-time: ${ms} is not an integer of ms`);
    if (from !== undefined && !isListingPosition(from))
      throw new AdapterInputError(`liquidations/bad-position: ${JSON.stringify(from)}`);
    // An empty range (BETWEEN refuses a start past its end).
    if (startedFromMs >= startedBeforeMs) return;
    for (let shard = from?.shard ?? 0; shard < OPEN_INDEX_SHARDS; shard++) {
      const after = shard === from?.shard ? from.after : undefined;
      // Past the bound (a position a later-bounded listing gave): none after it here, and DynamoDB refuses a start
      // key outside the key condition (review44b-open-listing-range).
      if (after && after.startedAtMs >= startedBeforeMs) continue;
      // Before the range's start: the range's start reads the same ones (and the key must be in the range).
      let start: Item | undefined =
        after && after.startedAtMs >= startedFromMs
          ? { openShard: S(openShardKey(shard)), startedAtMs: N(after.startedAtMs), id: S(after.id) }
          : undefined;
      do {
        const out = await this.dynamo.send(
          new QueryCommand({
            TableName: this.tables.liquidations,
            IndexName: OPEN_LIQUIDATIONS_INDEX,
            KeyConditionExpression: 'openShard = :shard AND startedAtMs BETWEEN :from AND :last',
            ExpressionAttributeValues: {
              ':shard': S(openShardKey(shard)),
              ':from': N(startedFromMs),
              ':last': N(startedBeforeMs - 1),
            },
            ...(start ? { ExclusiveStartKey: start } : {}),
          }),
        );
        const keys = (out.Items ?? []).map((item) => ({
          shard,
          startedAtMs: readInt(item, 'startedAtMs'),
          id: readS(item, 'id'),
        }));
        const chunks = chunksOf(keys, BATCH_GET_MAX);
        // READS_IN_FLIGHT BatchGets at once: a long crash's open auctions are read within the watch's timeout.
        for (let i = 0; i < chunks.length; i += READS_IN_FLIGHT) {
          const group = chunks.slice(i, i + READS_IN_FLIGHT);
          const pages = await Promise.all(group.map((c) => this.batchGet(c.map((k) => ({ id: S(k.id) })))));
          for (const [at, items] of pages.entries()) {
            const last = group[at]!.at(-1)!;
            // In the index's order (BatchGetItem answers in none).
            const open = items
              .map(liquidationFromItem)
              .filter(isOpenLiquidation)
              .sort((a, b) => compareListingKeys(openListingKeyOf(a), openListingKeyOf(b)));
            if (open.length > 0)
              yield {
                records: open,
                next: { shard, after: { startedAtMs: last.startedAtMs, id: last.id } },
              };
          }
        }
        start = out.LastEvaluatedKey;
      } while (start);
    }
  }

  async watchCursor(): Promise<WatchCursor | undefined> {
    const out = await this.dynamo.send(
      new GetItemCommand({
        TableName: this.tables.liquidations,
        Key: { id: S(WATCH_CURSOR_ID) },
        ConsistentRead: true,
      }),
    );
    return out.Item ? watchCursorFromItem(out.Item) : undefined;
  }

  /**
   * A PutItem of the cursor item, on the version read (fenced, as every whole item), written as its own (putOwned):
   * a retry of it whose first answer was lost finds its call's write and succeeds. Any other failed condition: another
   * run stored first. `owner` only names the run in the item.
   */
  async saveWatchCursor(
    cursor: WatchCursorState,
    expectedVersion: number | undefined,
    owner: string,
  ): Promise<boolean> {
    const put = fencedPut({
      TableName: this.tables.liquidations,
      Item: { ...watchCursorItem(cursor, owner, (expectedVersion ?? 0) + 1), ...schemaStamp() },
      ...(expectedVersion === undefined
        ? { ConditionExpression: 'attribute_not_exists(id)' }
        : {
            ConditionExpression: 'version = :expected',
            ExpressionAttributeValues: { ':expected': N(expectedVersion) },
          }),
    });
    try {
      await putOwned(this.dynamo, put);
      return true;
    } catch (error) {
      if (isConditionalCheckFailed(error)) return false;
      throw error;
    }
  }

  /** BatchGetItem (consistent) that retries unprocessed keys; at most 100 keys. */
  private async batchGet(keys: Item[]): Promise<Item[]> {
    const found = await batchGetConsistent(this.dynamo, { [this.tables.liquidations]: keys });
    return found[this.tables.liquidations] ?? [];
  }
}
