import {
  type DynamoDBClient,
  type TransactWriteItem,
  TransactWriteItemsCommand,
} from '@aws-sdk/client-dynamodb';
import {
  type CrashHook,
  type LiquidationRecord,
  MAX_WRITES_PER_COMMIT,
  type ProvidersEpochCheck,
  type Transactor,
  type Write,
} from '../../ports/index.ts';
import type { TableId } from '../../topology.ts';
import { auctionItem } from './auctions.ts';
import {
  AdapterInputError,
  checkNextVersion,
  conditional,
  type Item,
  N,
  noCrash,
  retryingConflicts,
  S,
} from './codec.ts';
import {
  checkLiquidationId,
  newLiquidationItem,
  refusingMovedKey,
  replacedLiquidationPut,
  tickIndexUpdates,
} from './liquidations.ts';
import { PROVIDERS_EPOCH_ATTR } from './markets.ts';
import type { PositionIndexLayout } from './position-layout.ts';
import { positionItem } from './positions.ts';
import { providerItem } from './providers.ts';
import { fencedPut, refusingNewerWriter } from './writer-schema.ts';

/**
 * Transactor on one TransactWriteItems: each write is a Put conditional on the stored version (or on
 * absence). A new liquidation (a slice) also joins its tick index (see liquidations.ts), so listByTick sees
 * it. Positions, liquidations and auctions must carry expectedVersion + 1 (providers: no fixed step). A
 * providers epoch to check is a ConditionCheck on the market's item.
 */
export class AwsTransactor implements Transactor {
  constructor(
    private readonly dynamo: DynamoDBClient,
    private readonly tables: Readonly<Record<TableId, string>>,
    private readonly layout: PositionIndexLayout,
    private readonly crash: CrashHook = noCrash,
  ) {}

  async commit(writes: readonly Write[], providersUnchanged?: ProvidersEpochCheck): Promise<void> {
    if (writes.length === 0) return;
    const keys = new Set(writes.map((w) => `${w.kind}:${w.record.id}`));
    if (keys.size !== writes.length) {
      throw new AdapterInputError('transactor/duplicate-record: one record written twice in a commit');
    }
    const created = writes.flatMap((w) =>
      w.kind === 'liquidation' && w.expectedVersion === undefined ? [w.record] : [],
    );
    const items = [
      ...writes.map((w) => this.item(w)),
      ...tickIndexUpdates(this.tables.liquidations, created).map((Update) => ({ Update })),
      ...(providersUnchanged ? [this.providersCheck(providersUnchanged)] : []),
    ];
    if (items.length > MAX_WRITES_PER_COMMIT) {
      throw new AdapterInputError(
        `transactor/too-many-writes: ${items.length} items (tick index included), at most ${MAX_WRITES_PER_COMMIT}`,
      );
    }
    // Replaced liquidations keep their tick and position, refused as the embedded transactor does.
    const replaced = new Map<
      number,
      { readonly next: LiquidationRecord; readonly expectedVersion: number }
    >();
    writes.forEach((w, index) => {
      if (w.kind === 'liquidation' && w.expectedVersion !== undefined)
        replaced.set(index, { next: w.record, expectedVersion: w.expectedVersion });
    });
    const transaction = new TransactWriteItemsCommand({ TransactItems: items });
    const puts = items.map((item) => ('Put' in item ? item.Put : undefined));
    await conditional('transactor/version', () =>
      refusingMovedKey(
        () => refusingNewerWriter(() => retryingConflicts(() => this.dynamo.send(transaction)), puts),
        replaced,
      ),
    );
    this.crash('transactor.commit');
  }

  /** The market's providers epoch is still the one read (0: never bumped, so absent). */
  private providersCheck({ symbol, epoch }: ProvidersEpochCheck): TransactWriteItem {
    return {
      ConditionCheck: {
        TableName: this.tables.markets,
        Key: { symbol: S(symbol) },
        ...(epoch === 0
          ? { ConditionExpression: 'attribute_not_exists(#epoch)' }
          : { ConditionExpression: '#epoch = :epoch', ExpressionAttributeValues: { ':epoch': N(epoch) } }),
        ExpressionAttributeNames: { '#epoch': PROVIDERS_EPOCH_ATTR },
      },
    };
  }

  private item(write: Write): TransactWriteItem {
    const put = (table: string, item: Item, expectedVersion: number | undefined): TransactWriteItem => ({
      Put:
        expectedVersion === undefined
          ? { TableName: table, Item: item, ConditionExpression: 'attribute_not_exists(id)' }
          : fencedPut({
              TableName: table,
              Item: item,
              ConditionExpression: 'version = :expected',
              ExpressionAttributeValues: { ':expected': N(expectedVersion) },
            }),
    });
    const { expectedVersion } = write;
    switch (write.kind) {
      case 'position':
        if (expectedVersion !== undefined)
          checkNextVersion('positions', write.record.version, expectedVersion);
        return put(this.tables.positions, positionItem(write.record, this.layout), expectedVersion);
      case 'liquidation':
        checkLiquidationId(write.record.id);
        if (expectedVersion === undefined)
          return put(this.tables.liquidations, newLiquidationItem(write.record), undefined);
        checkNextVersion('liquidations', write.record.version, expectedVersion);
        return { Put: replacedLiquidationPut(this.tables.liquidations, write.record, expectedVersion) };
      case 'auction':
        if (expectedVersion !== undefined)
          checkNextVersion('auctions', write.record.version, expectedVersion);
        return put(this.tables.auctions, auctionItem(write.record), expectedVersion);
      case 'provider':
        return put(this.tables.providers, providerItem(write.record), expectedVersion);
    }
  }
}
