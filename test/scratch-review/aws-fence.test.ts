import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AwsClients,
  createAwsAdapters,
  createAwsClients,
  createLocalResources,
  localClientConfig,
} from '../../shared/adapters/aws/index.ts';
import { systemClock } from '../../shared/adapters/embedded/clock.ts';
import { usd } from '../../shared/domain/units.ts';
import type { LedgerMovement } from '../../shared/ports/index.ts';
import { type MotoServer, startMoto } from '../support/moto.ts';

let moto: MotoServer | undefined;
let clients: AwsClients | undefined;
beforeAll(async () => {
  moto = await startMoto();
  clients = createAwsClients(localClientConfig(moto.endpoint));
});
afterAll(async () => {
  clients?.destroy();
  await moto?.stop();
});

const mv = (m: Partial<LedgerMovement>): LedgerMovement => ({
  account: 'fund',
  idempotencyKey: 'k',
  amount: usd('1'),
  kind: 'test',
  reference: 'L',
  atMs: 1,
  floor: 0n,
  ...m,
});

describe('aws scratch', () => {
  it('stale fenced movement whose key the new plan reused with another amount', async () => {
    const names = await createLocalResources(clients!, 'scratchfence');
    const a = createAwsAdapters({ clients: clients!, names, clock: systemClock });
    const setVersion = (v: number) =>
      clients!.dynamo.send(
        new PutItemCommand({
          TableName: names.tables.liquidations,
          Item: { id: { S: 'L' }, version: { N: String(v) } },
        }),
      );
    await setVersion(3);
    await a.ledger.apply(mv({ idempotencyKey: 'seed', amount: usd('100'), reference: 'seed' }));
    await a.ledger.apply(
      mv({ idempotencyKey: 'L:shortfall', amount: usd('-25'), fence: { liquidationId: 'L', version: 3 } }),
    );
    const stale = await a.ledger
      .apply(
        mv({ idempotencyKey: 'L:shortfall', amount: usd('-50'), fence: { liquidationId: 'L', version: 1 } }),
      )
      .then(
        (x) => x,
        (e) => e,
      );
    console.log('stale answer:', stale?.name, stale?.message);
    const below = await a.ledger
      .apply(mv({ idempotencyKey: 'L:big', amount: usd('-1000'), fence: { liquidationId: 'L', version: 1 } }))
      .then(
        (x) => x,
        (e) => e,
      );
    console.log('stale below-floor answer (aws):', below?.name);
    const { EmbeddedLedger } = await import('../../shared/adapters/embedded/ledger.ts');
    const e = new EmbeddedLedger({}, () => 3);
    await e.apply(mv({ idempotencyKey: 'seed', amount: usd('100'), reference: 'seed' }));
    const eb = await e
      .apply(mv({ idempotencyKey: 'L:big', amount: usd('-1000'), fence: { liquidationId: 'L', version: 1 } }))
      .then(
        (x) => x,
        (err) => err,
      );
    console.log('stale below-floor answer (embedded):', eb?.name);
    expect(stale?.name).toBe('MovementFencedError');
  }, 60_000);
});
