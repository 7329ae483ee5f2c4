import { describe, expect, it } from 'vitest';
import { runProblems } from '../../cli/table.ts';
import { marketConfig } from '../../shared/domain/config.ts';
import { isLiquidatable } from '../../shared/domain/margin.ts';
import { parsePrice } from '../../shared/domain/units.ts';
import { runSimulation } from '../../shared/sim/engine.ts';
import { prepareSimulation } from '../../shared/sim/setup.ts';

const MINUTE = 60_000;
const T0 = Date.UTC(2020, 2, 12, 0, 0, 0);

describe('crash replay: the last print', () => {
  it('a last print the breaker holds (a gap beyond the band) is held until confirmed, and what it crosses liquidated', async () => {
    // 200 for ten minutes, then a last close 20 % lower (the band is 15 %): the breaker trips on it. The engine held
    // the price only while a queue had work, and none had: the crossed book stayed OPEN, unreported (0 liquidations,
    // 0 bad debt). It holds it while the breaker is tripped too, which confirms it (two agreeing prints).
    const points = [
      ...Array.from({ length: 10 }, (_, i) => ({ timestampMs: T0 + i * MINUTE, price: parsePrice('200') })),
      { timestampMs: T0 + 10 * MINUTE, price: parsePrice('160') },
    ];
    const prepared = prepareSimulation({ positions: 2000, seed: 1, prices: { name: 'gap-at-end', points } });
    const m = marketConfig(prepared.config, prepared.symbol).maintenanceMargin;
    const crossedAtEnd = prepared.book.filter((p) => isLiquidatable(p, parsePrice('160'), m)).length;
    expect(crossedAtEnd).toBeGreaterThan(100);

    let openCrossed = 0;
    const result = await runSimulation({
      ...prepared,
      strategy: 'waterfall',
      inspect: async (a) => {
        for (const p of prepared.book) {
          const f = (await a.positions.get(p.id))!;
          if (f.state === 'OPEN' && isLiquidatable(f, parsePrice('160'), m)) openCrossed += 1;
        }
      },
    });
    expect(result.ticksRejected['tick/price-band']).toBe(1);
    expect(openCrossed).toBe(0);
    expect(result.openCrossed).toBe(0);
    expect(result.liquidations).toBeGreaterThanOrEqual(crossedAtEnd);
    expect(runProblems([result])).toEqual([]);
  }, 60_000);
});
