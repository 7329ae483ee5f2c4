import { describe, expect, it } from 'vitest';
import { DEFAULT_RISK_CONFIG } from '../../shared/domain/config.ts';
import { base, price, usd } from '../../shared/domain/units.ts';
import { type AuctionRecord, ConditionFailedError, type ProviderRecord } from '../../shared/ports/index.ts';
import { handleAdmin } from '../../shared/services/admin.ts';
import { auctionRecord } from '../support/auction-records.ts';
import { loseNextAnswer } from '../support/lost-answer.ts';
import { motoStages } from '../support/moto.ts';
import { RecordingTelemetry } from '../support/pipeline.ts';
import { liquidation, position } from '../support/records.ts';

/**
 * A conditional PutItem sent alone that DynamoDB applied but whose answer was lost (a timeout, a reset
 * connection): the SDK sends it again, and the retry's condition fails on the write it made itself (PutItem has no
 * idempotency token). Found for auctions in session 41 (auction-write-lost-answer); the liquidations', positions'
 * and providers' puts said ConditionFailedError the same way (put-lost-answer): an operator's re-registration of a
 * provider failed as a concurrent change though its write was applied, and its wake did not run. Every put alone
 * now carries a token of its call (owned-put.ts `putOwned`) and knows its own write; another call's put on the same
 * read, even of the same record, is still refused.
 */

const moto = motoStages('plost');

async function setUp() {
  const { clients, adapters } = await moto.stage();
  return { clients, adapters, fault: loseNextAnswer(clients, 'PutItemCommand') };
}

const provider = (over: Partial<ProviderRecord> = {}): ProviderRecord => ({
  id: 'lp-1',
  capital: usd('1000'),
  maxDiscountPpm: 20_000n,
  maxLot: base('5'),
  symbols: ['ETH-USD'],
  version: 0,
  ...over,
});

describe('lost answers of conditional puts sent alone (moto, real adapters)', () => {
  it("liquidations.replace: a put whose answer was lost is the call's own; another on the same read is refused", async () => {
    const { clients, adapters, fault } = await setUp();
    await adapters.positions.create(position());
    await adapters.liquidations.begin(position(), liquidation());
    const executing = liquidation({ state: 'EXECUTING', version: 2 });
    fault.bodies.length = 0;
    fault.armed = true;
    await adapters.liquidations.replace(executing, 1);
    expect(fault.lost).toBe(1);
    expect(fault.bodies).toHaveLength(2);
    expect(await adapters.liquidations.get('pos-1:1')).toEqual(executing);
    // A duplicate delivery that read version 1: the same record, or another.
    await expect(adapters.liquidations.replace(executing, 1)).rejects.toBeInstanceOf(ConditionFailedError);
    await expect(
      adapters.liquidations.replace(liquidation({ state: 'CANCELLED', version: 2 }), 1),
    ).rejects.toBeInstanceOf(ConditionFailedError);
    expect(await adapters.liquidations.get('pos-1:1')).toEqual(executing);
    clients.destroy();
  });

  it("positions.replace: a put whose answer was lost is the call's own; another on the same read is refused", async () => {
    const { clients, adapters, fault } = await setUp();
    await adapters.positions.create(position());
    const next = position({ collateral: usd('140'), version: 2 });
    fault.bodies.length = 0;
    fault.armed = true;
    await adapters.positions.replace(next, 1);
    expect(fault.lost).toBe(1);
    expect(fault.bodies).toHaveLength(2);
    expect(await adapters.positions.get('pos-1')).toEqual(next);
    await expect(adapters.positions.replace(next, 1)).rejects.toBeInstanceOf(ConditionFailedError);
    await expect(
      adapters.positions.replace(position({ collateral: usd('130'), version: 2 }), 1),
    ).rejects.toBeInstanceOf(ConditionFailedError);
    expect(await adapters.positions.get('pos-1')).toEqual(next);
    clients.destroy();
  });

  it("positions.create: a put whose answer was lost is the call's own; another create of the id is refused", async () => {
    const { clients, adapters, fault } = await setUp();
    fault.armed = true;
    await adapters.positions.create(position());
    expect(fault.lost).toBe(1);
    expect(await adapters.positions.get('pos-1')).toEqual(position());
    await expect(adapters.positions.create(position())).rejects.toBeInstanceOf(ConditionFailedError);
    clients.destroy();
  });

  it("providers.put: a replace and a create whose answers were lost are the call's own; others are refused", async () => {
    const { clients, adapters, fault } = await setUp();
    fault.armed = true;
    await adapters.providers.put(provider(), undefined);
    expect(fault.lost).toBe(1);
    expect(await adapters.providers.get('lp-1')).toEqual(provider());
    await expect(adapters.providers.put(provider(), undefined)).rejects.toBeInstanceOf(ConditionFailedError);

    const topped = provider({ capital: usd('2000'), version: 1 });
    fault.armed = true;
    await adapters.providers.put(topped, 0);
    expect(fault.lost).toBe(2);
    expect(await adapters.providers.get('lp-1')).toEqual(topped);
    await expect(adapters.providers.put(topped, 0)).rejects.toBeInstanceOf(ConditionFailedError);
    await expect(
      adapters.providers.put(provider({ capital: usd('3000'), version: 1 }), 0),
    ).rejects.toBeInstanceOf(ConditionFailedError);
    expect(await adapters.providers.get('lp-1')).toEqual(topped);
    clients.destroy();
  });

  it("liquidations.saveWatchCursor: a run's cursor whose answer was lost is its own; another run's on the same read is refused (watch44b-cursor)", async () => {
    const { clients, adapters, fault } = await setUp();
    const cycle = { cycleStartedAtMs: 1_000, judged: 300, overdue: 0 };
    expect(await adapters.liquidations.saveWatchCursor(cycle, undefined, 'run-a')).toBe(true);
    const from = { shard: 4, after: { startedAtMs: 900, id: 'pos-9:1' } };
    fault.bodies.length = 0;
    fault.armed = true;
    expect(await adapters.liquidations.saveWatchCursor({ ...cycle, judged: 600, from }, 1, 'run-b')).toBe(
      true,
    );
    expect(fault.lost).toBe(1);
    expect(fault.bodies).toHaveLength(2);
    const stored = { ...cycle, judged: 600, from, version: 2, owner: 'run-b' };
    expect(await adapters.liquidations.watchCursor()).toEqual(stored);
    // A slow run that read version 1 too: refused, the stored cursor kept.
    expect(await adapters.liquidations.saveWatchCursor(cycle, 1, 'run-c')).toBe(false);
    expect(await adapters.liquidations.watchCursor()).toEqual(stored);
    // The cursor is no liquidation: neither read as one nor an id a liquidation may take.
    expect(await adapters.liquidations.get('~watch~open-cursor')).toBeUndefined();
    clients.destroy();
  });
});

const sleeperOf = (id: string, direction: 'BUY' | 'SELL', wakeMark: string): AuctionRecord =>
  auctionRecord(id, { direction, wakeMark: price(wakeMark) });

describe("an operator's registration whose answer was lost (moto, the admin service on the real adapters)", () => {
  it('a top-up whose put lost its answer succeeds and wakes the sleepers of its market (put-lost-answer)', async () => {
    const { clients, adapters, fault } = await setUp();
    const deps = {
      ...adapters,
      config: DEFAULT_RISK_CONFIG,
      telemetry: new RecordingTelemetry(),
      nowMs: () => Date.now(),
    };
    const register = {
      action: 'registerProvider',
      id: 'lp-1',
      capital: '1000',
      maxDiscount: '0.02',
      maxLot: '5',
      symbols: ['ETH-USD'],
    };
    expect(await handleAdmin(register, deps)).toEqual({ ok: true, id: 'lp-1', woken: 0 });
    await adapters.auctions.create(sleeperOf('s-0', 'SELL', '150'));
    await adapters.auctions.create(sleeperOf('b-0', 'BUY', '250'));

    fault.armed = true;
    // Its capital restated on the version read: before, the retry's failed condition answered admin/concurrent-change and
    // nobody was woken.
    const answer = await handleAdmin({ ...register, capital: '500', expectedVersion: 0 }, deps);
    expect(fault.lost).toBe(1);
    expect(answer).toEqual({ ok: true, id: 'lp-1', woken: 2 });
    expect(await adapters.providers.get('lp-1')).toMatchObject({ capital: usd('500'), version: 1 });
    const sent: { auctionId: string; woken?: boolean }[] = [];
    for (;;) {
      const batch = await adapters.auctionQueue.receive(10, 30);
      if (batch.length === 0) break;
      sent.push(...batch.map((m) => JSON.parse(m.body)));
    }
    expect(sent.map((m) => [m.auctionId, m.woken]).sort()).toEqual([
      ['b-0', true],
      ['s-0', true],
    ]);
    clients.destroy();
  });
});
