import { BatchGetItemCommand, type DynamoDBClient, type KeysAndAttributes } from '@aws-sdk/client-dynamodb';
import { equalJitterDelayMs, sleep as sleepMs } from '../../backoff.ts';
import { chunksOf } from '../../in-flight.ts';
import type {
  AuctionRecord,
  BatchReader,
  LiquidationRecord,
  MarketState,
  PositionRecord,
} from '../../ports/index.ts';
import { auctionFromItem } from './auctions.ts';
import { type Item, S } from './codec.ts';
import { liquidationFromItem } from './liquidations.ts';
import { marketFromItem } from './markets.ts';
import { positionFromItem } from './positions.ts';

/** BatchGetItem's limit of keys per call. */
export const BATCH_GET_MAX = 100;
const MAX_UNPROCESSED_ROUNDS = 8;

/** How batchGetConsistent waits before asking again for unprocessed keys (tests pass their own). */
export interface BatchGetRetry {
  /** In [0, 1): the jitter's draw (Math.random by default). */
  readonly random?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

/**
 * The wait before round `round` (1, 2, ...) of unprocessed keys: exponential (50 ms, doubling) with equal jitter, half
 * of it fixed and half drawn (AWS's "Exponential Backoff And Jitter"; DynamoDB's guide asks batch retries to back off).
 * Without jitter, readers throttled together (the consumers of one crash's burst) asked again together, each round
 * (ops47-batch-get-jitter). Equal, not full: the rounds are bounded, and a draw near 0 on each would spend them at once.
 * The feed publisher's rule (equalJitterDelayMs), uncapped: the rounds are.
 */
export const unprocessedDelayMs = (round: number, random: () => number): number =>
  equalJitterDelayMs(round, 50, Number.POSITIVE_INFINITY, random);

/** Keys DynamoDB still left unprocessed after every round: throttling that lasted, which a later read may get past. */
export class UnprocessedKeysError extends Error {
  override readonly name = 'UnprocessedKeysError';
}

/**
 * One BatchGetItem over several tables (at most 100 keys), strongly consistent, retrying unprocessed keys with
 * jittered backoff (DynamoDB returns them under throttling); the items found, by table.
 */
export async function batchGetConsistent(
  dynamo: DynamoDBClient,
  keysByTable: Readonly<Record<string, readonly Item[]>>,
  retry: BatchGetRetry = {},
): Promise<Record<string, Item[]>> {
  const random = retry.random ?? Math.random;
  const sleep = retry.sleep ?? sleepMs;
  const found: Record<string, Item[]> = Object.fromEntries(Object.keys(keysByTable).map((t) => [t, []]));
  let pending: Record<string, KeysAndAttributes> = Object.fromEntries(
    Object.entries(keysByTable)
      .filter(([, keys]) => keys.length > 0)
      .map(([table, keys]) => [table, { Keys: [...keys], ConsistentRead: true }]),
  );
  for (let round = 0; Object.keys(pending).length > 0; round++) {
    if (round > 0) {
      if (round > MAX_UNPROCESSED_ROUNDS)
        throw new UnprocessedKeysError('dynamodb/batch-get-unprocessed: keys still unprocessed');
      await sleep(unprocessedDelayMs(round, random));
    }
    const out = await dynamo.send(new BatchGetItemCommand({ RequestItems: pending }));
    for (const [table, items] of Object.entries(out.Responses ?? {})) found[table]?.push(...items);
    pending = out.UnprocessedKeys ?? {};
  }
  return found;
}

/** A record and its market in one round trip instead of two GetItem calls (the consumer's re-check, a step). */
export class DynamoBatchReader implements BatchReader {
  constructor(
    private readonly dynamo: DynamoDBClient,
    private readonly tables: {
      readonly positions: string;
      readonly markets: string;
      readonly auctions: string;
      readonly liquidations: string;
    },
  ) {}

  async liquidationPositionAndMarket(
    liquidationId: string,
    positionId: string,
    symbol: string,
  ): Promise<{
    liquidation: LiquidationRecord | undefined;
    position: PositionRecord | undefined;
    market: MarketState | undefined;
  }> {
    const { liquidations, positions, markets } = this.tables;
    const found = await batchGetConsistent(this.dynamo, {
      [liquidations]: [{ id: S(liquidationId) }],
      [positions]: [{ id: S(positionId) }],
      [markets]: [{ symbol: S(symbol) }],
    });
    const liquidation = found[liquidations]?.[0];
    const position = found[positions]?.[0];
    const market = found[markets]?.[0];
    return {
      liquidation: liquidation ? liquidationFromItem(liquidation) : undefined,
      position: position ? positionFromItem(position) : undefined,
      market: market ? marketFromItem(market) : undefined,
    };
  }

  async auctionAndMarket(
    auctionId: string,
    symbol: string,
  ): Promise<{ auction: AuctionRecord | undefined; market: MarketState | undefined }> {
    const { record, market } = await this.#withMarket(
      this.tables.auctions,
      auctionId,
      auctionFromItem,
      symbol,
    );
    return { auction: record, market };
  }

  async positionAndMarket(
    positionId: string,
    symbol: string,
  ): Promise<{ position: PositionRecord | undefined; market: MarketState | undefined }> {
    const { record, market } = await this.#withMarket(
      this.tables.positions,
      positionId,
      positionFromItem,
      symbol,
    );
    return { position: record, market };
  }

  /** The record `id` of `table` (keyed by id) and the market `symbol`, in one BatchGetItem. */
  async #withMarket<T>(
    table: string,
    id: string,
    fromItem: (item: Item) => T,
    symbol: string,
  ): Promise<{ record: T | undefined; market: MarketState | undefined }> {
    const { markets } = this.tables;
    const found = await batchGetConsistent(this.dynamo, {
      [table]: [{ id: S(id) }],
      [markets]: [{ symbol: S(symbol) }],
    });
    const record = found[table]?.[0];
    const market = found[markets]?.[0];
    return {
      record: record ? fromItem(record) : undefined,
      market: market ? marketFromItem(market) : undefined,
    };
  }

  async markets(symbols: readonly string[]): Promise<readonly MarketState[]> {
    return this.#many(this.tables.markets, 'symbol', symbols, marketFromItem);
  }

  async positions(ids: readonly string[]): Promise<readonly PositionRecord[]> {
    return this.#many(this.tables.positions, 'id', ids, positionFromItem);
  }

  async liquidations(ids: readonly string[]): Promise<readonly LiquidationRecord[]> {
    return this.#many(this.tables.liquidations, 'id', ids, liquidationFromItem);
  }

  /**
   * The items of `table` whose key `key` is one of `values` (each asked once), a BatchGetItem of at most 100 keys after
   * another (a caller that wants several in flight splits its keys itself: local/seed.ts).
   */
  async #many<T>(
    table: string,
    key: 'id' | 'symbol',
    values: readonly string[],
    fromItem: (item: Item) => T,
  ): Promise<T[]> {
    const found: T[] = [];
    for (const chunk of chunksOf([...new Set(values)], BATCH_GET_MAX)) {
      const items = await batchGetConsistent(this.dynamo, { [table]: chunk.map((v) => ({ [key]: S(v) })) });
      found.push(...(items[table] ?? []).map(fromItem));
    }
    return found;
  }
}
