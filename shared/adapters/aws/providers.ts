import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  ScanCommand,
} from '@aws-sdk/client-dynamodb';
import {
  type ProviderFill,
  type ProviderFills,
  type ProviderMarketTotals,
  providerFillsRead,
} from '../../domain/provider-fills.ts';
import type { CrashHook, ProviderRecord, ProviderRepository } from '../../ports/index.ts';
import {
  CorruptItemError,
  conditional,
  type Item,
  N,
  noCrash,
  optReadable,
  optSetAside,
  readBig,
  readInt,
  readMap,
  readMaps,
  readS,
  readStrings,
  S,
  setAsideAttr,
  storedAttr,
  strings,
  within,
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
  ...(p.fills !== undefined
    ? { fills: providerFillsRead(p.fills) ? fillsAttr(p.fills) : storedAttr(p.fills) }
    : {}),
  ...setAsideAttr('fillsSetAside', p.fillsSetAside),
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
  ...optFills(item),
  version: readInt(item, 'version'),
});

const lotsBySymbol = (lots: Item): Record<string, bigint> =>
  Object.fromEntries(Object.keys(lots).map((symbol) => [symbol, readBig(lots, symbol)]));

/**
 * What the provider won (ProviderRecord.fills): a map of the count, the latest fills (bounded by
 * MAX_PROVIDER_FILLS_KEPT), the totals by market and when they began. Not fenced (writer-schema.ts): a version before
 * session 48 reads the item without it and its whole-item Put drops it (providers48-fills-not-fenced).
 */
function fillsAttr(fills: ProviderFills): AttributeValue {
  return {
    M: {
      total: N(fills.total),
      sinceMs: N(fills.sinceMs),
      recent: { L: fills.recent.map(fillAttr) },
      byMarket: {
        M: Object.fromEntries(Object.entries(fills.byMarket).map(([symbol, t]) => [symbol, totalsAttr(t)])),
      },
    },
  };
}

const fillAttr = (f: ProviderFill): AttributeValue => ({
  M: {
    liquidationId: S(f.liquidationId),
    step: N(f.step),
    symbol: S(f.symbol),
    direction: S(f.direction),
    size: N(f.size),
    price: N(f.price),
    cost: N(f.cost),
    mark: N(f.mark),
    edge: N(f.edge),
    atMs: N(f.atMs),
  },
});

const totalsAttr = (t: ProviderMarketTotals): AttributeValue => ({
  M: {
    fills: N(t.fills),
    bought: N(t.bought),
    paid: N(t.paid),
    sold: N(t.sold),
    received: N(t.received),
    edge: N(t.edge),
  },
});

function readFills(value: AttributeValue): ProviderFills {
  const m = readMap({ fills: value }, 'fills');
  const recent = readMaps(m, 'recent').map((f, i) =>
    within(`recent[${i}]`, (): ProviderFill => {
      const direction = readS(f, 'direction');
      if (direction !== 'BUY' && direction !== 'SELL')
        throw new CorruptItemError(`adapter/bad-direction: ${direction}`);
      return {
        liquidationId: readS(f, 'liquidationId'),
        step: readInt(f, 'step'),
        symbol: readS(f, 'symbol'),
        direction,
        size: readBig(f, 'size'),
        price: readBig(f, 'price'),
        cost: readBig(f, 'cost'),
        mark: readBig(f, 'mark'),
        edge: readBig(f, 'edge'),
        atMs: readInt(f, 'atMs'),
      };
    }),
  );
  const markets = readMap(m, 'byMarket');
  const byMarket = Object.fromEntries(
    Object.keys(markets).map((symbol) => [
      symbol,
      within(`byMarket.${symbol}`, (): ProviderMarketTotals => {
        const t = readMap(markets, symbol);
        return {
          fills: readInt(t, 'fills'),
          bought: readBig(t, 'bought'),
          paid: readBig(t, 'paid'),
          sold: readBig(t, 'sold'),
          received: readBig(t, 'received'),
          edge: readBig(t, 'edge'),
        };
      }),
    ]),
  );
  return { total: readInt(m, 'total'), recent, byMarket, sinceMs: readInt(m, 'sinceMs') };
}

/**
 * The provider's fills: display only, so fills this version cannot read (a later version's shape, an edit by hand)
 * never fail the read of the provider, which every auction step makes: kept as stored, written back unchanged, and
 * shown as unreadable (providers48-fills-unreadable).
 */
function optFills(item: Item): Pick<ProviderRecord, 'fills' | 'fillsSetAside'> {
  const fills = optReadable(item.fills, readFills);
  const fillsSetAside = optSetAside(item, 'fillsSetAside', readFills);
  return {
    ...(fills !== undefined ? { fills } : {}),
    ...(fillsSetAside !== undefined ? { fillsSetAside } : {}),
  };
}

/**
 * Every provider, ordered by id: a consistent Scan of the (short, admin-registered) table. An item that does not read
 * throws, named (every auction step of its markets fails on it until it is fixed); with `unreadable`, it is reported
 * there and left out, for an operator's list (review48-providers-list-unreadable).
 */
export async function scanProviders(
  dynamo: DynamoDBClient,
  table: string,
  unreadable?: (id: string, reason: string) => void,
): Promise<ProviderRecord[]> {
  const providers: ProviderRecord[] = [];
  let start: Item | undefined;
  do {
    const out = await dynamo.send(
      new ScanCommand({
        TableName: table,
        ConsistentRead: true,
        ...(start === undefined ? {} : { ExclusiveStartKey: start }),
      }),
    );
    for (const item of out.Items ?? []) {
      try {
        providers.push(providerFromItem(item));
      } catch (error) {
        if (!(error instanceof CorruptItemError)) throw error;
        const id = item.id?.S ?? '?';
        if (!unreadable) throw new CorruptItemError(`providers ${id}: ${error.message}`);
        unreadable(id, error.message);
      }
    }
    start = out.LastEvaluatedKey;
  } while (start !== undefined);
  return providers.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

export class DynamoProviderRepository implements ProviderRepository {
  constructor(
    private readonly dynamo: DynamoDBClient,
    private readonly table: string,
    private readonly crash: CrashHook = noCrash,
  ) {}

  /** Providers quoting `symbol`, ordered by id. */
  async list(symbol: string): Promise<readonly ProviderRecord[]> {
    return (await scanProviders(this.dynamo, this.table)).filter((p) => p.symbols.includes(symbol));
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
