import { describe, expect, it } from 'vitest';
import { EmbeddedAuctionRepository } from '../../shared/adapters/embedded/auctions.ts';
import { frozenCopy } from '../../shared/adapters/embedded/internal.ts';
import { EmbeddedLiquidationRepository } from '../../shared/adapters/embedded/liquidations.ts';
import { EmbeddedMarketRepository } from '../../shared/adapters/embedded/markets.ts';
import { EmbeddedPositionRepository } from '../../shared/adapters/embedded/positions.ts';
import { EmbeddedProviderRepository } from '../../shared/adapters/embedded/providers.ts';
import { EmbeddedTransactor } from '../../shared/adapters/embedded/transactor.ts';
import { base, price, usd } from '../../shared/domain/units.ts';
import {
  type AcceptedTick,
  type AuctionRecord,
  ConditionFailedError,
  type LiquidationRecord,
  type PositionRecord,
  type ProviderRecord,
} from '../../shared/ports/index.ts';

const tick = (sequence: number, mark = '195'): AcceptedTick => ({
  sequence,
  markPrice: price(mark),
  timestampMs: 1_000 * sequence,
});

const openPosition = (id = 'p1', version = 3): PositionRecord => ({
  id,
  traderId: 't1',
  symbol: 'ETH-USD',
  side: 'LONG',
  size: base('2'),
  entryPrice: price('200'),
  collateral: usd('20'),
  state: 'OPEN',
  version,
  liquidationPrice: price('190'),
});

const liquidation = (position: PositionRecord, more: Partial<LiquidationRecord> = {}): LiquidationRecord => ({
  id: `${position.id}:${position.version}`,
  positionId: position.id,
  symbol: position.symbol,
  side: position.side,
  state: 'QUEUED',
  tickKey: 'ETH-USD#7',
  triggerMark: price('189'),
  remainingSize: position.size,
  marketFills: [],
  history: [{ atMs: 7_000, state: 'QUEUED' }],
  version: 0,
  ...more,
});

const auction = (more: Partial<AuctionRecord> = {}): AuctionRecord => ({
  id: 'a1',
  liquidationId: 'p1:3',
  symbol: 'ETH-USD',
  direction: 'SELL',
  lot: base('1'),
  remainingLot: base('1'),
  top: price('198'),
  startedAtMs: 0,
  resets: 0,
  step: 0,
  state: 'RUNNING',
  fills: [],
  version: 0,
  ...more,
});

const provider = (more: Partial<ProviderRecord> = {}): ProviderRecord => ({
  id: 'lp1',
  capital: usd('1000000'),
  maxDiscountPpm: 50_000n,
  maxLot: base('10'),
  symbols: ['ETH-USD'],
  version: 0,
  ...more,
});

function stores() {
  const positions = new EmbeddedPositionRepository();
  const liquidations = new EmbeddedLiquidationRepository(positions);
  const auctions = new EmbeddedAuctionRepository();
  const providers = new EmbeddedProviderRepository();
  const markets = new EmbeddedMarketRepository();
  const transactor = new EmbeddedTransactor({ positions, liquidations, auctions, providers, markets });
  return { positions, liquidations, auctions, providers, markets, transactor };
}

describe('embedded markets', () => {
  it('accepts a first tick only with no expected sequence, then only at the stored sequence', async () => {
    const markets = new EmbeddedMarketRepository();
    await expect(markets.acceptTick('ETH-USD', tick(1), 0, false)).rejects.toBeInstanceOf(
      ConditionFailedError,
    );
    await markets.acceptTick('ETH-USD', tick(1), undefined, false);
    await expect(markets.acceptTick('ETH-USD', tick(2), undefined, false)).rejects.toBeInstanceOf(
      ConditionFailedError,
    );
    await expect(markets.acceptTick('ETH-USD', tick(2), 0, false)).rejects.toBeInstanceOf(
      ConditionFailedError,
    );
    await markets.acceptTick('ETH-USD', tick(2), 1, false);
    expect((await markets.get('ETH-USD'))?.lastTick).toEqual(tick(2));
    expect(await markets.get('BTC-USD')).toBeUndefined();
  });

  it('a pending tick is marked; clearPending clears only its own sequence; a non-pending tick clears it', async () => {
    const markets = new EmbeddedMarketRepository();
    await markets.acceptTick('ETH-USD', tick(1), undefined, true);
    expect((await markets.get('ETH-USD'))?.pendingSequence).toBe(1);
    await markets.clearPending('ETH-USD', tick(2));
    expect((await markets.get('ETH-USD'))?.pendingSequence).toBe(1);
    await markets.clearPending('ETH-USD', tick(1));
    expect((await markets.get('ETH-USD'))?.pendingSequence).toBeUndefined();
    await markets.acceptTick('ETH-USD', tick(2), 1, true);
    await markets.acceptTick('ETH-USD', tick(3), 2, false);
    expect(await markets.get('ETH-USD')).toEqual({ symbol: 'ETH-USD', lastTick: tick(3) });
  });

  it('a later tick re-arms the breaker until a reset, a redelivered one does not; ticks keep the breaker', async () => {
    const markets = new EmbeddedMarketRepository();
    await markets.tripBreaker('ETH-USD', 'tick/price-band', tick(5, '100'), 5_000);
    await markets.tripBreaker('ETH-USD', 'tick/other', tick(5, '100'), 5_500);
    await markets.tripBreaker('ETH-USD', 'tick/breaker-open', tick(6, '90'), 6_000);
    expect((await markets.get('ETH-USD'))?.breaker).toEqual({
      reason: 'tick/breaker-open',
      trippedAtMs: 6_000,
      tick: tick(6, '90'),
    });
    await markets.acceptTick('ETH-USD', tick(7), undefined, false);
    expect((await markets.get('ETH-USD'))?.breaker?.reason).toBe('tick/breaker-open');
    await markets.resetBreaker('ETH-USD');
    expect((await markets.get('ETH-USD'))?.breaker).toBeUndefined();
    await markets.resetBreaker('BTC-USD');
    expect(await markets.get('BTC-USD')).toBeUndefined();
  });
});

describe('embedded liquidations', () => {
  it('begin moves the position OPEN -> LIQUIDATING (out of the index) and creates the liquidation', async () => {
    const { positions, liquidations } = stores();
    const p = openPosition();
    await positions.create(p);
    await liquidations.begin(p, liquidation(p));
    expect(await positions.get('p1')).toEqual({ ...p, state: 'LIQUIDATING', version: 4 });
    expect((await positions.queryCrossed('ETH-USD', 'LONG', price('100'), 10)).positions).toEqual([]);
    expect((await liquidations.get('p1:3'))?.state).toBe('QUEUED');
  });

  it('begin writes nothing when the position moved on', async () => {
    const { positions, liquidations } = stores();
    const p = openPosition();
    await positions.create(p);
    await positions.replace({ ...p, version: 4 }, 3);
    await expect(liquidations.begin(p, liquidation(p))).rejects.toBeInstanceOf(ConditionFailedError);
    expect(await liquidations.get('p1:3')).toBeUndefined();
    expect(await liquidations.listByTick('ETH-USD#7')).toEqual([]);
  });

  it('begin writes nothing when the liquidation exists: the position stays OPEN and indexed', async () => {
    const { positions, liquidations, transactor } = stores();
    const p = openPosition();
    await positions.create(p);
    await transactor.commit([
      { kind: 'liquidation', record: liquidation(p, { tickKey: 'ETH-USD#6' }), expectedVersion: undefined },
    ]);
    await expect(liquidations.begin(p, liquidation(p))).rejects.toBeInstanceOf(ConditionFailedError);
    expect(await positions.get('p1')).toEqual(p);
    expect((await positions.queryCrossed('ETH-USD', 'LONG', price('100'), 10)).positions).toEqual([p]);
    expect(await liquidations.listByTick('ETH-USD#7')).toEqual([]);
  });

  it('begin refuses a position record that is not OPEN or a mismatched liquidation (caller bugs)', async () => {
    const { positions, liquidations } = stores();
    const p = openPosition();
    await positions.create(p);
    await expect(liquidations.begin({ ...p, state: 'LIQUIDATING' }, liquidation(p))).rejects.toThrow(
      /liquidations\/position-not-open/,
    );
    await expect(liquidations.begin(p, liquidation(p, { positionId: 'p2' }))).rejects.toThrow(
      /liquidations\/position-mismatch/,
    );
    await expect(liquidations.begin(p, liquidation(p, { state: 'AUCTION' }))).rejects.toThrow(
      /liquidations\/not-queued/,
    );
  });

  it('replace and replaceWithPosition are conditional on both versions and atomic', async () => {
    const { positions, liquidations } = stores();
    const p = openPosition();
    await positions.create(p);
    const l = liquidation(p);
    await liquidations.begin(p, l);
    await liquidations.replace({ ...l, state: 'MARKET_EXECUTED', version: 1 }, 0);
    await expect(liquidations.replace({ ...l, version: 1 }, 0)).rejects.toBeInstanceOf(ConditionFailedError);
    const stored = (await positions.get('p1'))!;
    const closed = { ...stored, state: 'CLOSED' as const, version: stored.version + 1 };
    // Position version stale: neither record changes.
    await expect(
      liquidations.replaceWithPosition(
        { ...l, state: 'SETTLED_MARKET', version: 2 },
        1,
        closed,
        stored.version - 1,
      ),
    ).rejects.toThrow();
    expect((await liquidations.get(l.id))?.state).toBe('MARKET_EXECUTED');
    expect((await positions.get('p1'))?.state).toBe('LIQUIDATING');
    await liquidations.replaceWithPosition(
      { ...l, state: 'SETTLED_MARKET', version: 2 },
      1,
      closed,
      stored.version,
    );
    expect((await liquidations.get(l.id))?.state).toBe('SETTLED_MARKET');
    expect((await positions.get('p1'))?.state).toBe('CLOSED');
  });

  it('listByTick returns the liquidations created with that tick, by id, in their latest version', async () => {
    const { positions, liquidations } = stores();
    const records = ['p3', 'p1', 'p2'].map((id) => openPosition(id));
    positions.createMany(records);
    for (const p of records) await liquidations.begin(p, liquidation(p));
    const other = openPosition('p9');
    await positions.create(other);
    await liquidations.begin(other, liquidation(other, { tickKey: 'ETH-USD#8' }));
    await liquidations.replace({ ...liquidation(records[0]!), state: 'CANCELLED', version: 1 }, 0);
    const listed = await liquidations.listByTick('ETH-USD#7');
    expect(listed.map((l) => l.id)).toEqual(['p1:3', 'p2:3', 'p3:3']);
    expect(listed[2]?.state).toBe('CANCELLED');
    expect(await liquidations.listByTick('ETH-USD#1')).toEqual([]);
  });

  it('stored records are deep copies: nested arrays cannot be changed through the input', async () => {
    const { positions, liquidations } = stores();
    const p = openPosition();
    await positions.create(p);
    const history = [{ atMs: 1, state: 'QUEUED' as const }];
    await liquidations.begin(p, liquidation(p, { history }));
    history.push({ atMs: 2, state: 'QUEUED' });
    const read = (await liquidations.get('p1:3'))!;
    expect(read.history).toHaveLength(1);
    expect(() => (read.history as unknown[]).push(1)).toThrow(TypeError);
  });
});

describe('frozenCopy (what the embedded stores keep)', () => {
  it('copies plain data deep, frozen at every level; frozen parts are shared, not copied', () => {
    const shared = Object.freeze({ price: 1n });
    const input = { a: 1n, nested: { list: [{ b: 'x' }], shared }, text: 's' };
    const copy = frozenCopy(input);
    expect(copy).toEqual(input);
    expect(copy).not.toBe(input);
    expect(copy.nested.list[0]).not.toBe(input.nested.list[0]);
    expect(copy.nested.shared).toBe(shared);
    expect(
      Object.isFrozen(copy) && Object.isFrozen(copy.nested) && Object.isFrozen(copy.nested.list[0]),
    ).toBe(true);
    input.nested.list[0]!.b = 'changed';
    expect(copy.nested.list[0]!.b).toBe('x');
  });

  it('leaves out undefined properties at every level, as DynamoDB marshalling does', () => {
    const copy = frozenCopy({ a: 1, gone: undefined, nested: { b: 2, gone: undefined } });
    expect(Object.keys(copy)).toEqual(['a', 'nested']);
    expect(Object.keys(copy.nested)).toEqual(['b']);
    expect(Object.isFrozen(copy.nested)).toBe(true);
  });
});

describe('embedded auctions and providers', () => {
  it('auctions: create once, replace at the version', async () => {
    const { auctions } = stores();
    await auctions.create(auction());
    await expect(auctions.create(auction())).rejects.toBeInstanceOf(ConditionFailedError);
    await auctions.replace(auction({ step: 1, version: 1 }), 0);
    await expect(auctions.replace(auction({ step: 2, version: 1 }), 0)).rejects.toBeInstanceOf(
      ConditionFailedError,
    );
    expect((await auctions.get('a1'))?.step).toBe(1);
  });

  it('providers: put creates when no version is expected, updates at the stored version; list by symbol', async () => {
    const { providers } = stores();
    await providers.put(provider({ id: 'lp2' }), undefined);
    await providers.put(provider(), undefined);
    await providers.put(provider({ id: 'lp3', symbols: ['BTC-USD'] }), undefined);
    await expect(providers.put(provider(), undefined)).rejects.toBeInstanceOf(ConditionFailedError);
    await providers.put(provider({ capital: usd('5'), version: 1 }), 0);
    await expect(providers.put(provider({ version: 2 }), 0)).rejects.toBeInstanceOf(ConditionFailedError);
    expect((await providers.list('ETH-USD')).map((p) => p.id)).toEqual(['lp1', 'lp2']);
    expect((await providers.get('lp1'))?.capital).toBe(usd('5'));
  });
});

describe('embedded transactor', () => {
  it('commits every write or none', async () => {
    const { positions, liquidations, auctions, providers, transactor } = stores();
    const p = openPosition();
    await positions.create(p);
    await providers.put(provider(), undefined);
    const closed = { ...p, state: 'CLOSED' as const, version: 4 };
    const stale = transactor.commit([
      { kind: 'position', record: closed, expectedVersion: 3 },
      { kind: 'auction', record: auction(), expectedVersion: undefined },
      { kind: 'provider', record: provider({ version: 1 }), expectedVersion: 7 },
    ]);
    await expect(stale).rejects.toBeInstanceOf(ConditionFailedError);
    expect(await positions.get('p1')).toEqual(p);
    expect(await auctions.get('a1')).toBeUndefined();
    await transactor.commit([
      { kind: 'position', record: closed, expectedVersion: 3 },
      { kind: 'auction', record: auction(), expectedVersion: undefined },
      { kind: 'provider', record: provider({ version: 1 }), expectedVersion: 0 },
      { kind: 'liquidation', record: liquidation(p), expectedVersion: undefined },
    ]);
    expect((await positions.get('p1'))?.state).toBe('CLOSED');
    expect((await positions.queryCrossed('ETH-USD', 'LONG', price('1'), 10)).positions).toEqual([]);
    expect(await auctions.get('a1')).toEqual(auction());
    expect((await providers.get('lp1'))?.version).toBe(1);
    expect((await liquidations.listByTick('ETH-USD#7')).map((l) => l.id)).toEqual(['p1:3']);
  });

  it('refuses a record written twice in one commit and a wrong version step', async () => {
    const { transactor } = stores();
    await expect(
      transactor.commit([
        { kind: 'auction', record: auction(), expectedVersion: undefined },
        { kind: 'auction', record: auction(), expectedVersion: undefined },
      ]),
    ).rejects.toThrow(/transactor\/duplicate-record/);
    await transactor.commit([{ kind: 'auction', record: auction(), expectedVersion: undefined }]);
    await expect(
      transactor.commit([{ kind: 'auction', record: auction({ version: 3 }), expectedVersion: 0 }]),
    ).rejects.toThrow(/auctions\/bad-version/);
  });
});
