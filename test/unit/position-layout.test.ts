import { describe, expect, it } from 'vitest';
import {
  PositionIndexLayout,
  PositionLayoutError,
  positionLayoutFromEnv,
  SINGLE_SHARD_LAYOUT,
} from '../../shared/adapters/aws/position-layout.ts';
import { POSITION_INDEX_SHARDS_ENV } from '../../shared/topology.ts';

describe('position index layout', () => {
  it('gives one shard to every market unless named', () => {
    const layout = new PositionIndexLayout({ 'BTC-USD': 4 });
    expect(layout.readShards('BTC-USD')).toBe(4);
    expect(layout.writeShards('BTC-USD')).toBe(4);
    expect(layout.readShards('ETH-USD')).toBe(1);
    expect(layout.keys('BTC-USD', 'SHORT')).toEqual([
      'BTC-USD#SHORT#0',
      'BTC-USD#SHORT#1',
      'BTC-USD#SHORT#2',
      'BTC-USD#SHORT#3',
    ]);
    expect(layout.keys('ETH-USD', 'LONG')).toEqual(['ETH-USD#LONG#0']);
  });

  it('puts a position in the same shard every time, and spreads many over all of them', () => {
    const layout = new PositionIndexLayout({ 'BTC-USD': 4 });
    const keyOf = (id: string) => layout.keyOf({ id, symbol: 'BTC-USD', side: 'LONG' });
    const keys = Array.from({ length: 400 }, (_, i) => keyOf(`position-${i}`));
    expect(keys.map((_, i) => keyOf(`position-${i}`))).toEqual(keys);
    const counts = new Map<string, number>();
    for (const key of keys) counts.set(key, (counts.get(key) ?? 0) + 1);
    expect([...counts.keys()].sort()).toEqual(layout.keys('BTC-USD', 'LONG'));
    // Roughly even: a hash, not a counter (each shard expects 100).
    for (const n of counts.values()) expect(n).toBeGreaterThan(60);
    expect(SINGLE_SHARD_LAYOUT.keyOf({ id: 'position-1', symbol: 'BTC-USD', side: 'LONG' })).toBe(
      'BTC-USD#LONG#0',
    );
  });

  it('reads POSITION_INDEX_SHARDS, and refuses what it cannot use with the reason', () => {
    expect(positionLayoutFromEnv({})).toBe(SINGLE_SHARD_LAYOUT);
    expect(
      positionLayoutFromEnv({ [POSITION_INDEX_SHARDS_ENV]: '{"ETH-USD": 2}' }).writeShards('ETH-USD'),
    ).toBe(2);
    const refused = (value: string) => () => positionLayoutFromEnv({ [POSITION_INDEX_SHARDS_ENV]: value });
    expect(refused('{"ETH-USD": 2')).toThrow(/POSITION_INDEX_SHARDS is not JSON/);
    expect(refused('{"ETH-USD": 0}')).toThrow(PositionLayoutError);
    expect(refused('{"ETH-USD": 2.5}')).toThrow(/ETH-USD/);
    expect(refused('{"eth": 2}')).toThrow(/eth: not a market symbol/);
    expect(refused('4')).toThrow(PositionLayoutError);
    expect(() => new PositionIndexLayout({}, 0)).toThrow(PositionLayoutError);
    expect(refused('{"ETH-USD": {"read": 2, "write": 4}}')).toThrow(/write must be at most read/);
    expect(refused('{"ETH-USD": {"read": 4}}')).toThrow(PositionLayoutError);
  });

  it('reads ahead of writes while a count is raised: every shard written is read, new writes stay where old readers look', () => {
    // Step one of raising BTC-USD from 1 to 4 shards: functions still on the old count read shard 0 only.
    const raising = new PositionIndexLayout({ 'BTC-USD': { read: 4, write: 1 } });
    expect(raising.keys('BTC-USD', 'LONG')).toHaveLength(4);
    for (let i = 0; i < 50; i++) {
      expect(raising.keyOf({ id: `position-${i}`, symbol: 'BTC-USD', side: 'LONG' })).toBe('BTC-USD#LONG#0');
    }
  });
});
