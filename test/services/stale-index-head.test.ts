import { describe, expect, it } from 'vitest';
import {
  DEFAULT_RISK_CONFIG,
  DEFAULT_RISK_CONFIG_INPUT,
  parseRiskConfig,
} from '../../shared/domain/config.ts';
import { parseBase, parsePrice, parseQuote } from '../../shared/domain/units.ts';
import type { PositionRecord } from '../../shared/ports/index.ts';
import { handleTick, withLiquidationPrice } from '../../shared/services/margin-check.ts';
import { createPipeline } from '../support/pipeline.ts';

/** The deployment after a lowered maintenance margin (0.025 -> 0.01), before `positions reindex` ran. */
const LOWERED = parseRiskConfig({
  ...DEFAULT_RISK_CONFIG_INPUT,
  markets: DEFAULT_RISK_CONFIG_INPUT.markets.map((m) =>
    m.symbol === 'ETH-USD' ? { ...m, maintenanceMargin: '0.01' } : m,
  ),
});

const long = (id: string, collateral: string, config = LOWERED): PositionRecord =>
  withLiquidationPrice(
    {
      id,
      traderId: `t-${id}`,
      symbol: 'ETH-USD',
      side: 'LONG',
      size: parseBase('10'),
      entryPrice: parsePrice('200'),
      collateral: parseQuote(collateral),
      state: 'OPEN',
      version: 0,
    },
    config,
  );

/**
 * A lowered maintenance margin before `positions reindex`: the index holds positions as crossed that the exact
 * re-check finds healthy (stale-index-head).
 */
describe('margin-check: index entries the exact re-check refuses', () => {
  it('a head of stale-but-healthy index entries (a lowered margin, not yet reindexed) must not hide crossed positions behind it or make a tick continue forever', async () => {
    // docs/DEPLOY.md: "A lowered margin needs it too, or the old prices liquidate positions the new rules keep
    // (the re-check ... then cancels it: work, but no sale)". The re-check happens before any start, so these
    // entries stay OPEN at the head of the index: every continuation re-reads them from the start.
    const p = createPipeline({ config: LOWERED, maxPositionsPerInvocation: 2 });
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    // Three longs written under the old 0.025 rate: index price 184.61..., healthy at 183 under 0.01 (181.81...).
    for (const id of ['old-1', 'old-2', 'old-3'])
      await p.adapters.positions.create(long(id, '200', DEFAULT_RISK_CONFIG));
    // A long written under the new rate, crossed at 183 (183.33...): behind the old ones in the index order.
    const crossed = long('new-crossed', '185');
    await p.adapters.positions.create(crossed);
    expect(crossed.liquidationPrice).toBeGreaterThanOrEqual(parsePrice('183'));

    const t = {
      symbol: 'ETH-USD',
      markPrice: parsePrice('183'),
      timestampMs: p.clock.nowMs(),
      sequence: 3,
      source: 'test',
    };
    let outcome = await handleTick(t, p.marginDeps, p.clock.nowMs());
    let segments = 0;
    while (outcome.status === 'accepted' && outcome.needsContinuation && segments < 50) {
      segments += 1;
      outcome = await handleTick(t, p.marginDeps, p.clock.nowMs(), segments);
    }
    // Before: 50 continuations, each reading the same two stale entries, and the crossed long never started.
    expect((await p.adapters.positions.get('new-crossed'))?.state).toBe('LIQUIDATING');
    expect(segments).toBeLessThan(50);
    // The old ones were priced again by the new rules, out of the crossed range, and stay OPEN.
    for (const id of ['old-1', 'old-2', 'old-3']) {
      const old = (await p.adapters.positions.get(id))!;
      expect(old).toMatchObject({ state: 'OPEN', liquidationPrice: long(id, '200').liquidationPrice });
      expect(old.liquidationPrice).toBeLessThan(parsePrice('183'));
    }
  });
});
