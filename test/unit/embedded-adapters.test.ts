import { describe, expect, it } from 'vitest';
import {
  ClockError,
  createEmbeddedAdapters,
  ManualClock,
  systemClock,
} from '../../shared/adapters/embedded/index.ts';
import { base, price, usd } from '../../shared/domain/units.ts';
import { InjectedCrash, type PositionRecord } from '../../shared/ports/index.ts';

const position: PositionRecord = {
  id: 'p1',
  traderId: 't1',
  symbol: 'ETH-USD',
  side: 'LONG',
  size: base('1'),
  entryPrice: price('200'),
  collateral: usd('20'),
  state: 'OPEN',
  version: 0,
  liquidationPrice: price('190'),
};

describe('manual clock', () => {
  it('moves only when told, never backwards', () => {
    const clock = new ManualClock(100);
    expect(clock.nowMs()).toBe(100);
    clock.advance(50);
    clock.set(200);
    expect(clock.nowMs()).toBe(200);
    expect(() => clock.set(199)).toThrow(ClockError);
    expect(() => clock.advance(-1)).toThrow(/clock\/bad-time/);
    expect(() => clock.advance(0.5)).toThrow(/clock\/bad-time/);
    expect(clock.nowMs()).toBe(200);
  });

  it('the system clock reads wall time', () => {
    expect(Math.abs(systemClock.nowMs() - Date.now())).toBeLessThan(1_000);
  });
});

describe('embedded adapter bundle', () => {
  it('fires the crash hook right after the side effect, which stays done', async () => {
    const points: string[] = [];
    const adapters = createEmbeddedAdapters({
      crashHook: (point) => {
        points.push(point);
        if (point === 'positions.create') throw new InjectedCrash(point);
      },
    });
    await expect(adapters.positions.create(position)).rejects.toBeInstanceOf(InjectedCrash);
    expect(await adapters.positions.get('p1')).toEqual(position);
    adapters.setCrashHook((point) => points.push(point));
    await adapters.ledger.apply({
      account: 'fund',
      idempotencyKey: 'd1',
      amount: usd('5'),
      kind: 'deposit',
      reference: 'r',
      atMs: 0,
      floor: 0n,
    });
    await adapters.markets.clearPending('ETH-USD', { sequence: 1, timestampMs: 0 });
    expect(points).toEqual(['positions.create', 'ledger.apply']);
  });

  it('a crash between two batch groups leaves the first group sent', async () => {
    let groups = 0;
    const adapters = createEmbeddedAdapters({
      crashHook: (point) => {
        if (point === 'liquidationQueue.sendBatch' && ++groups === 1) throw new InjectedCrash(point);
      },
    });
    const bodies = Array.from({ length: 15 }, (_, i) => `{"liquidationId":"l${i}"}`);
    await expect(adapters.liquidationQueue.sendBatch(bodies)).rejects.toBeInstanceOf(InjectedCrash);
    expect(await adapters.liquidationQueue.depth()).toEqual({ visible: 10, inFlight: 0, delayed: 0 });
  });

  it('wires the work queues to their dead-letter queues with the topology receive count (5)', async () => {
    const clock = new ManualClock(0);
    const adapters = createEmbeddedAdapters({ clock });
    await adapters.auctionQueue.send('{"auctionId":"a","step":1}', 90);
    clock.advance(90_000);
    for (let i = 0; i < 5; i += 1) {
      expect(await adapters.auctionQueue.receive(10, 10)).toHaveLength(1);
      clock.advance(10_000);
    }
    expect(await adapters.auctionQueue.receive(10, 10)).toEqual([]);
    expect(adapters.auctionDeadLetters.pending().map((m) => m.body)).toEqual(['{"auctionId":"a","step":1}']);
    expect(adapters.clock).toBe(clock);
  });
});
