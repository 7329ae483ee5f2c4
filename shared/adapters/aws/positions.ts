import { type DynamoDBClient, GetItemCommand, PutItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import { type AdlOrder, adlLeverageKey } from '../../domain/adl-threshold.ts';
import type { PositionState, Side } from '../../domain/model.ts';
import type { PriceE8 } from '../../domain/units.ts';
import type { CrashHook, CrossedPage, PositionRecord, PositionRepository } from '../../ports/index.ts';
import { POSITION_ADL_INDEXES, POSITION_INDEX } from '../../topology.ts';
import {
  AdapterInputError,
  CorruptItemError,
  checkNextVersion,
  conditional,
  decodeCursor,
  encodeCursor,
  type Item,
  N,
  noCrash,
  optBig,
  readBig,
  readInt,
  readS,
  S,
} from './codec.ts';

/**
 * Positions table, pk `id`. Only OPEN positions carry the index attributes `liqKey` and `liqPrice`, so the
 * `byLiquidationPrice` GSI is sparse: a position that leaves OPEN is written without them and drops out. ADL's
 * two GSIs share the partition `liqKey`, sorted by `entryPrice` and by `adlLeverage` (only on OPEN positions).
 */

/** Index partition of a market side (one shard, see DEFAULT_POSITION_INDEX_SHARDS in topology.ts). */
export const positionIndexKey = (symbol: string, side: Side, shard = 0): string =>
  `${symbol}#${side}#${shard}`;

const SIDES: readonly Side[] = ['LONG', 'SHORT'];
const STATES: readonly PositionState[] = ['OPEN', 'LIQUIDATING', 'CLOSED'];

export function readSide(item: Item, name = 'side'): Side {
  const value = readS(item, name);
  if (!(SIDES as readonly string[]).includes(value)) throw new CorruptItemError(`adapter/bad-side: ${value}`);
  return value as Side;
}

export function positionItem(p: PositionRecord): Item {
  return {
    id: S(p.id),
    traderId: S(p.traderId),
    symbol: S(p.symbol),
    side: S(p.side),
    size: N(p.size),
    entryPrice: N(p.entryPrice),
    collateral: N(p.collateral),
    state: S(p.state),
    version: N(p.version),
    liquidationPrice: N(p.liquidationPrice),
    ...(p.closedPayout !== undefined ? { closedPayout: N(p.closedPayout) } : {}),
    ...(p.state === 'OPEN'
      ? {
          liqKey: S(positionIndexKey(p.symbol, p.side)),
          liqPrice: N(p.liquidationPrice),
          adlLeverage: N(adlLeverageKey(p.size, p.collateral)),
        }
      : {}),
  };
}

export function positionFromItem(item: Item): PositionRecord {
  const state = readS(item, 'state');
  if (!(STATES as readonly string[]).includes(state))
    throw new CorruptItemError(`adapter/bad-state: ${state}`);
  const closedPayout = optBig(item, 'closedPayout');
  return {
    id: readS(item, 'id'),
    traderId: readS(item, 'traderId'),
    symbol: readS(item, 'symbol'),
    side: readSide(item),
    size: readBig(item, 'size'),
    entryPrice: readBig(item, 'entryPrice'),
    collateral: readBig(item, 'collateral'),
    state: state as PositionState,
    version: readInt(item, 'version'),
    liquidationPrice: readBig(item, 'liquidationPrice'),
    ...(closedPayout !== undefined ? { closedPayout } : {}),
  };
}

export class DynamoPositionRepository implements PositionRepository {
  constructor(
    private readonly dynamo: DynamoDBClient,
    private readonly table: string,
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
      this.dynamo.send(
        new PutItemCommand({
          TableName: this.table,
          Item: positionItem(position),
          ConditionExpression: 'attribute_not_exists(id)',
        }),
      ),
    );
    this.crash('positions.create');
  }

  /**
   * One Query on the sparse index: longs `liqPrice >= mark` newest-crossed first (descending), shorts
   * `liqPrice <= mark` ascending. Positions with equal prices come in the index's order.
   */
  async queryCrossed(
    symbol: string,
    side: Side,
    mark: PriceE8,
    limit: number,
    cursor?: string,
  ): Promise<CrossedPage> {
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new AdapterInputError(`positions/bad-limit: ${limit}`);
    }
    const long = side === 'LONG';
    const out = await this.dynamo.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: POSITION_INDEX,
        KeyConditionExpression: `liqKey = :key AND liqPrice ${long ? '>=' : '<='} :mark`,
        // The GSI is eventually consistent on AWS: a position that just left OPEN may linger briefly.
        FilterExpression: '#state = :open',
        ExpressionAttributeNames: { '#state': 'state' },
        ExpressionAttributeValues: {
          ':key': S(positionIndexKey(symbol, side)),
          ':mark': N(mark),
          ':open': S('OPEN'),
        },
        ScanIndexForward: !long,
        Limit: limit,
        ...(cursor === undefined ? {} : { ExclusiveStartKey: decodeCursor(cursor) }),
      }),
    );
    const positions = (out.Items ?? []).map(positionFromItem);
    return out.LastEvaluatedKey ? { positions, cursor: encodeCursor(out.LastEvaluatedKey) } : { positions };
  }

  /** One Query on an ADL index: entry price ascending for longs, descending for shorts; leverage descending. */
  async queryAdlOrder(
    symbol: string,
    side: Side,
    order: AdlOrder,
    limit: number,
    cursor?: string,
  ): Promise<CrossedPage> {
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new AdapterInputError(`positions/bad-limit: ${limit}`);
    }
    if (order !== 'entry' && order !== 'leverage') {
      throw new AdapterInputError(`positions/bad-order: ${String(order)}`);
    }
    const out = await this.dynamo.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: POSITION_ADL_INDEXES[order],
        KeyConditionExpression: 'liqKey = :key',
        FilterExpression: '#state = :open',
        ExpressionAttributeNames: { '#state': 'state' },
        ExpressionAttributeValues: { ':key': S(positionIndexKey(symbol, side)), ':open': S('OPEN') },
        ScanIndexForward: order === 'entry' && side === 'LONG',
        Limit: limit,
        ...(cursor === undefined ? {} : { ExclusiveStartKey: decodeCursor(cursor) }),
      }),
    );
    const positions = (out.Items ?? []).map(positionFromItem);
    return out.LastEvaluatedKey ? { positions, cursor: encodeCursor(out.LastEvaluatedKey) } : { positions };
  }

  async replace(next: PositionRecord, expectedVersion: number): Promise<void> {
    checkNextVersion('positions', next.version, expectedVersion);
    await conditional('positions/version', () =>
      this.dynamo.send(
        new PutItemCommand({
          TableName: this.table,
          Item: positionItem(next),
          ConditionExpression: 'version = :expected',
          ExpressionAttributeValues: { ':expected': N(expectedVersion) },
        }),
      ),
    );
    this.crash('positions.replace');
  }
}
