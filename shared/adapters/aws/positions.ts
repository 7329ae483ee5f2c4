import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  QueryCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { type AdlOrder, adlLeverageKey } from '../../domain/adl-threshold.ts';
import { wholeMargin } from '../../domain/margin.ts';
import {
  type AdlEvent,
  type AdlEvents,
  adlEventsRead,
  type PositionState,
  type Side,
} from '../../domain/model.ts';
import type { PriceE8 } from '../../domain/units.ts';
import type { CrashHook, CrossedPage, PositionRecord, PositionRepository } from '../../ports/index.ts';
import { POSITION_ADL_INDEXES, POSITION_INDEX } from '../../topology.ts';
import {
  AdapterInputError,
  CorruptItemError,
  checkNextVersion,
  conditional,
  type Item,
  isConditionalCheckFailed,
  N,
  noCrash,
  optBig,
  optReadable,
  optSetAside,
  readBig,
  readInt,
  readMap,
  readMaps,
  readS,
  S,
  setAsideAttr,
  storedAttr,
  within,
} from './codec.ts';
import { putOwned, updateItemOwned } from './owned-put.ts';
import type { PositionIndexLayout } from './position-layout.ts';
import { scanPages } from './scan.ts';
import { readSharded } from './sharded-query.ts';
import { fencedPut, schemaStamp } from './writer-schema.ts';

/**
 * Positions table, pk `id`. Only OPEN positions carry the index attributes `liqKey` and `liqPrice`, so the
 * `byLiquidationPrice` GSI is sparse: a position that leaves OPEN is written without them and drops out. ADL's
 * two GSIs share the partition `liqKey`, sorted by `entryPrice` and by `adlLeverage` (only on OPEN positions).
 * A market side's partition may be split into shards (position-layout.ts); reads merge them in order.
 */

const SIDES: readonly Side[] = ['LONG', 'SHORT'];
const STATES: readonly PositionState[] = ['OPEN', 'LIQUIDATING', 'CLOSED'];

export function readSide(item: Item, name = 'side'): Side {
  const value = readS(item, name);
  if (!(SIDES as readonly string[]).includes(value)) throw new CorruptItemError(`adapter/bad-side: ${value}`);
  return value as Side;
}

/** The item of a position; an OPEN one carries its index attributes, in its shard of `layout`. */
export function positionItem(p: PositionRecord, layout: PositionIndexLayout): Item {
  return {
    id: S(p.id),
    traderId: S(p.traderId),
    symbol: S(p.symbol),
    side: S(p.side),
    size: N(p.size),
    entryPrice: N(p.entryPrice),
    collateral: N(p.collateral),
    ...(p.collateralOverE16 !== undefined ? { collateralOverE16: N(p.collateralOverE16) } : {}),
    state: S(p.state),
    version: N(p.version),
    liquidationPrice: N(p.liquidationPrice),
    ...(p.closedPayout !== undefined ? { closedPayout: N(p.closedPayout) } : {}),
    ...(p.adlProfitGiven !== undefined ? { adlProfitGiven: N(p.adlProfitGiven) } : {}),
    ...(p.adlEvents !== undefined
      ? { adlEvents: adlEventsRead(p.adlEvents) ? adlEventsAttr(p.adlEvents) : storedAttr(p.adlEvents) }
      : {}),
    ...setAsideAttr('adlEventsSetAside', p.adlEventsSetAside),
    ...(p.state === 'OPEN'
      ? {
          liqKey: S(layout.keyOf(p)),
          liqPrice: N(p.liquidationPrice),
          adlLeverage: N(adlLeverageKey(p.size, wholeMargin(p))),
        }
      : {}),
    ...schemaStamp(),
  };
}

/**
 * `backstop positions index`: gives the open positions stored before ADL's leverage order existed (session 17)
 * their `adlLeverage`, which every write since sets. DynamoDB builds a new index from the items that carry its
 * keys only, and ADL's search takes every open position to be in both of its orders (adl-threshold.ts): one
 * missing from the leverage order is ranked by neither bound, and its profit is never taken. One Scan of the
 * table; each update is conditional on the version read, so a position written meanwhile (which a writer keys
 * itself) is left as it is. Idempotent.
 */
export async function indexAdlLeverage(
  dynamo: DynamoDBClient,
  table: string,
): Promise<{
  readonly missing: number;
  readonly indexed: number;
  /** Items that could not be read as positions (CorruptItemError), by id: left for an operator. */
  readonly unreadable: readonly string[];
}> {
  let missing = 0;
  let indexed = 0;
  const unreadable: string[] = [];
  const pages = scanPages(dynamo, {
    TableName: table,
    FilterExpression: '#state = :open AND attribute_not_exists(adlLeverage)',
    ExpressionAttributeNames: { '#state': 'state' },
    ExpressionAttributeValues: { ':open': S('OPEN') },
  });
  for await (const { items } of pages) {
    for (const item of items) {
      let p: PositionRecord;
      try {
        p = positionFromItem(item);
      } catch (error) {
        if (!(error instanceof CorruptItemError)) throw error;
        unreadable.push(item.id?.S ?? '?');
        continue;
      }
      missing++;
      try {
        await dynamo.send(
          new UpdateItemCommand({
            TableName: table,
            Key: { id: S(p.id) },
            UpdateExpression: 'SET adlLeverage = :leverage',
            ConditionExpression:
              'version = :version AND #state = :open AND attribute_not_exists(adlLeverage)',
            ExpressionAttributeNames: { '#state': 'state' },
            ExpressionAttributeValues: {
              ':leverage': N(adlLeverageKey(p.size, wholeMargin(p))),
              ':version': N(p.version),
              ':open': S('OPEN'),
            },
          }),
        );
        indexed++;
      } catch (error) {
        if (!isConditionalCheckFailed(error)) throw error;
      }
    }
  }
  return { missing, indexed, unreadable };
}

/**
 * Who deleveraged the position (Position.adlEvents): a map of the count and a list bounded by MAX_ADL_EVENTS_KEPT,
 * so the item stays far below DynamoDB's 400 KB. Not fenced (writer-schema.ts): a version before session 47 reads
 * the item without it and its whole-item Put drops it (docs/DEPLOY.md, upgrading to session 47).
 */
function adlEventsAttr(events: AdlEvents): AttributeValue {
  return {
    M: {
      total: N(events.total),
      recent: {
        L: events.recent.map(
          (e): AttributeValue => ({
            M: {
              liquidationId: S(e.liquidationId),
              round: N(e.round),
              size: N(e.size),
              price: N(e.price),
              mark: N(e.mark),
              given: N(e.given),
              haircut: N(e.haircut),
              atMs: N(e.atMs),
            },
          }),
        ),
      },
    },
  };
}

function readAdlEvents(value: AttributeValue): AdlEvents {
  const m = readMap({ adlEvents: value }, 'adlEvents');
  const recent = readMaps(m, 'recent').map((e, i) =>
    within(
      `recent[${i}]`,
      (): AdlEvent => ({
        liquidationId: readS(e, 'liquidationId'),
        round: readInt(e, 'round'),
        size: readBig(e, 'size'),
        price: readBig(e, 'price'),
        mark: readBig(e, 'mark'),
        given: readBig(e, 'given'),
        haircut: readBig(e, 'haircut'),
        atMs: readInt(e, 'atMs'),
      }),
    ),
  );
  return { total: readInt(m, 'total'), recent };
}

export function positionFromItem(item: Item): PositionRecord {
  const state = readS(item, 'state');
  if (!(STATES as readonly string[]).includes(state))
    throw new CorruptItemError(`adapter/bad-state: ${state}`);
  const closedPayout = optBig(item, 'closedPayout');
  const adlProfitGiven = optBig(item, 'adlProfitGiven');
  const collateralOverE16 = optBig(item, 'collateralOverE16');
  // Display only (adl47-who-closed): a list this version cannot read never fails the read of the position, which
  // margin checks and ADL's ranking make (follow47-adl-events-unreadable).
  const adlEvents = optReadable(item.adlEvents, readAdlEvents);
  const adlEventsSetAside = optSetAside(item, 'adlEventsSetAside', readAdlEvents);
  return {
    id: readS(item, 'id'),
    traderId: readS(item, 'traderId'),
    symbol: readS(item, 'symbol'),
    side: readSide(item),
    size: readBig(item, 'size'),
    entryPrice: readBig(item, 'entryPrice'),
    collateral: readBig(item, 'collateral'),
    ...(collateralOverE16 !== undefined ? { collateralOverE16 } : {}),
    state: state as PositionState,
    version: readInt(item, 'version'),
    liquidationPrice: readBig(item, 'liquidationPrice'),
    ...(closedPayout !== undefined ? { closedPayout } : {}),
    ...(adlProfitGiven !== undefined ? { adlProfitGiven } : {}),
    ...(adlEvents !== undefined ? { adlEvents } : {}),
    ...(adlEventsSetAside !== undefined ? { adlEventsSetAside } : {}),
  };
}

function checkLimit(limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new AdapterInputError(`positions/bad-limit: ${limit}`);
}

export class DynamoPositionRepository implements PositionRepository {
  /** ADL's orders are GSIs: eventually consistent, usually within a second of the write. */
  readonly adlOrdersLagMs = 1_000;
  constructor(
    private readonly dynamo: DynamoDBClient,
    private readonly table: string,
    private readonly layout: PositionIndexLayout,
    private readonly crash: CrashHook = noCrash,
  ) {}

  async get(id: string): Promise<PositionRecord | undefined> {
    const out = await this.dynamo.send(
      new GetItemCommand({ TableName: this.table, Key: { id: S(id) }, ConsistentRead: true }),
    );
    return out.Item ? positionFromItem(out.Item) : undefined;
  }

  async create(position: PositionRecord): Promise<void> {
    await conditional('positions/exists', () =>
      putOwned(this.dynamo, {
        TableName: this.table,
        Item: positionItem(position, this.layout),
        ConditionExpression: 'attribute_not_exists(id)',
      }),
    );
    this.crash('positions.create');
  }

  /**
   * The sparse index, every shard of the side merged: longs `liqPrice >= mark` newest-crossed first
   * (descending), shorts `liqPrice <= mark` ascending. Positions with equal prices come in the index's order.
   */
  async queryCrossed(
    symbol: string,
    side: Side,
    mark: PriceE8,
    limit: number,
    cursor?: string,
  ): Promise<CrossedPage> {
    checkLimit(limit);
    const long = side === 'LONG';
    return this.readIndex(
      {
        symbol,
        side,
        index: POSITION_INDEX,
        sortAttribute: 'liqPrice',
        ascending: !long,
        range: { condition: `liqPrice ${long ? '>=' : '<='} :mark`, values: { ':mark': N(mark) } },
      },
      limit,
      cursor,
    );
  }

  /** An ADL index, every shard of the side merged: entry price ascending for longs, descending for shorts; leverage descending. */
  async queryAdlOrder(
    symbol: string,
    side: Side,
    order: AdlOrder,
    limit: number,
    cursor?: string,
  ): Promise<CrossedPage> {
    checkLimit(limit);
    if (order !== 'entry' && order !== 'leverage') {
      throw new AdapterInputError(`positions/bad-order: ${String(order)}`);
    }
    return this.readIndex(
      {
        symbol,
        side,
        index: POSITION_ADL_INDEXES[order],
        sortAttribute: order === 'entry' ? 'entryPrice' : 'adlLeverage',
        ascending: order === 'entry' && side === 'LONG',
      },
      limit,
      cursor,
    );
  }

  private async readIndex(
    spec: {
      readonly symbol: string;
      readonly side: Side;
      readonly index: string;
      readonly sortAttribute: string;
      readonly ascending: boolean;
      readonly range?: { readonly condition: string; readonly values: Item };
    },
    limit: number,
    cursor: string | undefined,
  ): Promise<CrossedPage> {
    const page = await readSharded(
      {
        partitions: this.layout.keys(spec.symbol, spec.side),
        sortAttribute: spec.sortAttribute,
        ascending: spec.ascending,
        keyAttributes: ['id', 'liqKey', spec.sortAttribute],
        query: async (partition, shardLimit, start) => {
          const out = await this.dynamo.send(
            new QueryCommand({
              TableName: this.table,
              IndexName: spec.index,
              KeyConditionExpression: spec.range
                ? `liqKey = :key AND ${spec.range.condition}`
                : 'liqKey = :key',
              // The GSI is eventually consistent on AWS: a position that just left OPEN may linger briefly.
              FilterExpression: '#state = :open',
              ExpressionAttributeNames: { '#state': 'state' },
              ExpressionAttributeValues: { ':key': S(partition), ':open': S('OPEN'), ...spec.range?.values },
              ScanIndexForward: spec.ascending,
              Limit: shardLimit,
              ...(start === undefined ? {} : { ExclusiveStartKey: start }),
            }),
          );
          return {
            items: out.Items ?? [],
            ...(out.LastEvaluatedKey ? { lastKey: out.LastEvaluatedKey } : {}),
          };
        },
      },
      limit,
      cursor,
    );
    const positions = page.items.map(positionFromItem);
    return page.cursor === undefined ? { positions } : { positions, cursor: page.cursor };
  }

  async replace(next: PositionRecord, expectedVersion: number): Promise<void> {
    checkNextVersion('positions', next.version, expectedVersion);
    const put = fencedPut({
      TableName: this.table,
      Item: positionItem(next, this.layout),
      ConditionExpression: 'version = :expected',
      ExpressionAttributeValues: { ':expected': N(expectedVersion) },
    });
    await conditional('positions/version', () => putOwned(this.dynamo, put));
    this.crash('positions.replace');
  }

  async reprice(id: string, liquidationPrice: PriceE8, expectedVersion: number): Promise<void> {
    // Any integer price, as create and replace take: 0 is a fully collateralised long's (domain/margin.ts), and a
    // short's is <= 0 only with negative collateral beyond its entry notional (a slice's rest may carry a deficit).
    if (typeof liquidationPrice !== 'bigint')
      throw new AdapterInputError(`positions/bad-liquidation-price: ${id} must carry a bigint PriceE8`);
    // The index attributes but the price stay as stored: the position keeps its partition (liqKey). Its own write
    // (updateItemOwned): a lost answer's retry fails on the version it set, which is not another writer's.
    await conditional('positions/version', () =>
      updateItemOwned(this.dynamo, {
        TableName: this.table,
        Key: { id: S(id) },
        UpdateExpression: 'SET liquidationPrice = :price, liqPrice = :price, version = :next',
        ConditionExpression: 'version = :expected AND #state = :open',
        ExpressionAttributeNames: { '#state': 'state' },
        ExpressionAttributeValues: {
          ':price': N(liquidationPrice),
          ':next': N(expectedVersion + 1),
          ':expected': N(expectedVersion),
          ':open': S('OPEN'),
        },
      }),
    );
    this.crash('positions.replace');
  }
}
