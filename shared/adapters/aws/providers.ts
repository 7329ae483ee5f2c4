import { type DynamoDBClient, GetItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import type { CrashHook, ProviderRecord, ProviderRepository } from '../../ports/index.ts';
import {
  conditional,
  type Item,
  N,
  noCrash,
  readBig,
  readInt,
  readMap,
  readS,
  readStrings,
  S,
  strings,
} from './codec.ts';
import { putOwned } from './owned-put.ts';
import { fencedPut, schemaStamp } from './writer-schema.ts';

/**
 * Providers table, pk `id`. list(symbol) is a consistent Scan filtered in code: the providers are a short,
 * admin-registered list (tens of items), so an index per symbol would cost more than it saves.
 */

export const providerItem = (p: ProviderRecord): Item => ({
  id: S(p.id),
  capital: N(p.capital),
  maxDiscountPpm: N(p.maxDiscountPpm),
  maxLot: N(p.maxLot),
  ...(p.maxLotBySymbol
    ? {
        maxLotBySymbol: {
          M: Object.fromEntries(Object.entries(p.maxLotBySymbol).map(([s, lot]) => [s, N(lot)])),
        },
      }
    : {}),
  symbols: strings(p.symbols),
  version: N(p.version),
  ...schemaStamp(),
});

export const providerFromItem = (item: Item): ProviderRecord => ({
  id: readS(item, 'id'),
  capital: readBig(item, 'capital'),
  maxDiscountPpm: readBig(item, 'maxDiscountPpm'),
  maxLot: readBig(item, 'maxLot'),
  ...(item.maxLotBySymbol ? { maxLotBySymbol: lotsBySymbol(readMap(item, 'maxLotBySymbol')) } : {}),
  symbols: readStrings(item, 'symbols'),
  version: readInt(item, 'version'),
});

const lotsBySymbol = (lots: Item): Record<string, bigint> =>
  Object.fromEntries(Object.keys(lots).map((symbol) => [symbol, readBig(lots, symbol)]));

export class DynamoProviderRepository implements ProviderRepository {
  constructor(
    private readonly dynamo: DynamoDBClient,
    private readonly table: string,
    private readonly crash: CrashHook = noCrash,
  ) {}

  /** Providers quoting `symbol`, ordered by id. */
  async list(symbol: string): Promise<readonly ProviderRecord[]> {
    const providers: ProviderRecord[] = [];
    let start: Item | undefined;
    do {
      const out = await this.dynamo.send(
        new ScanCommand({
          TableName: this.table,
          ConsistentRead: true,
          ...(start === undefined ? {} : { ExclusiveStartKey: start }),
        }),
      );
      for (const item of out.Items ?? []) {
        const provider = providerFromItem(item);
        if (provider.symbols.includes(symbol)) providers.push(provider);
      }
      start = out.LastEvaluatedKey;
    } while (start !== undefined);
    return providers.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async get(id: string): Promise<ProviderRecord | undefined> {
    const out = await this.dynamo.send(
      new GetItemCommand({ TableName: this.table, Key: { id: S(id) }, ConsistentRead: true }),
    );
    return out.Item ? providerFromItem(out.Item) : undefined;
  }

  /** expectedVersion undefined: create (fails if the id exists); else replace if the stored version matches. */
  async put(provider: ProviderRecord, expectedVersion: number | undefined): Promise<void> {
    const Item = providerItem(provider);
    const put =
      expectedVersion === undefined
        ? { TableName: this.table, Item, ConditionExpression: 'attribute_not_exists(id)' }
        : fencedPut({
            TableName: this.table,
            Item,
            ConditionExpression: 'version = :expected',
            ExpressionAttributeValues: { ':expected': N(expectedVersion) },
          });
    await conditional(expectedVersion === undefined ? 'providers/exists' : 'providers/version', () =>
      putOwned(this.dynamo, put),
    );
    this.crash('providers.put');
  }
}
