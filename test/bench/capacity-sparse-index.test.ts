import { TransactWriteItemsCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { CapacityMeter } from '../../bench/capacity.ts';
import { createAwsClients, localClientConfig } from '../../shared/adapters/aws/index.ts';
import { itemBytes } from '../../shared/adapters/aws/item-size.ts';
import { PositionIndexLayout } from '../../shared/adapters/aws/position-layout.ts';
import { positionItem } from '../../shared/adapters/aws/positions.ts';
import { BASE_SCALE, PRICE_SCALE, QUOTE_SCALE } from '../../shared/domain/units.ts';

/**
 * The position indexes are sparse (only OPEN positions carry their keys): the settlement's write of a CLOSED
 * position that was LIQUIDATING (out of every index) writes no index entry. Found by a review of the benchmark in
 * session 25: the meter charged a copy per index on every position write (5 WRU for this 2 WRU write).
 */
describe('CapacityMeter on the sparse position indexes', () => {
  it('a transactional put of a CLOSED position (LIQUIDATING before) consumes no GSI write units', async () => {
    const clients = createAwsClients(localClientConfig('http://127.0.0.1:9'));
    // Short-circuit the network: the meter (initialize step) sees the input and an empty output.
    clients.dynamo.middlewareStack.add(
      (() => async () => ({ output: { $metadata: {} }, response: {} })) as never,
      { step: 'build', name: 'noNetwork' },
    );
    const meter = new CapacityMeter();
    meter.attach(clients);
    const closed = positionItem(
      {
        id: 'p-1',
        traderId: 't-1',
        symbol: 'ETH-USD',
        side: 'LONG',
        size: BASE_SCALE,
        entryPrice: 200n * PRICE_SCALE,
        collateral: 20n * QUOTE_SCALE,
        state: 'CLOSED',
        version: 3,
        liquidationPrice: 190n * PRICE_SCALE,
      },
      new PositionIndexLayout(),
    );
    expect(closed.liqKey).toBeUndefined(); // out of every (sparse) index
    expect(itemBytes(closed)).toBeLessThan(1024);
    await clients.dynamo.send(
      new TransactWriteItemsCommand({
        TransactItems: [{ Put: { TableName: 'backstop-x-positions', Item: closed } }],
      }),
    );
    // 1 KB item in a transaction: 2 WRU, no index entry written or deleted (it left the indexes at LIQUIDATING).
    expect(meter.snapshot().writeUnits).toBe(2);
    clients.destroy();
  });
});
