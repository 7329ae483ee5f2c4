import { describe, expect, it } from 'vitest';
import { DEFAULT_RISK_CONFIG_INPUT, parseRiskConfig } from '../../shared/domain/config.ts';
import { encodeContext } from '../../shared/schemas/context.ts';
import { MAX_ADL_COUNTERPARTIES } from '../../shared/services/liquidation.ts';
import { recordFigures, toJson } from '../support/invariants.ts';
import { createPipeline, syntheticBook } from '../support/pipeline.ts';

/**
 * Scenario 8, load: a liquidation cascade on the embedded engine, every service and adapter as in the Lambdas
 * (margin-check with continuations every 1,000 positions, the consumer, the auction), checked by every invariant
 * afterwards. CI size: 20,000 positions and a crash that liquidates 2,000+ of them; STRESS_FULL=1: 100,000
 * positions and 10,000+ liquidations. Throughput is wall-clock liquidations per second over the cascade (ticks,
 * consumers and auctions, without seeding and checking), measured on whatever else the machine is running.
 *
 * The fund and the providers are sized so that the cascade needs no ADL: this measures the common path. ADL over
 * a large opposite side is the last test (what one settlement freezes stays bounded, whatever the side's size).
 */

const FULL = process.env.STRESS_FULL === '1';
const POSITIONS = FULL ? 100_000 : 20_000;
const MIN_LIQUIDATIONS = FULL ? 10_000 : 2_000;

const config = parseRiskConfig({
  ...DEFAULT_RISK_CONFIG_INPUT,
  insurance: { drawCapPerWindow: '100000000', windowSeconds: 3600, floor: '0' },
});

describe('scenario 8: load', () => {
  it(`a cascade of ${MIN_LIQUIDATIONS}+ liquidations over ${POSITIONS} positions: throughput, invariants hold`, async () => {
    const started = performance.now();
    const p = createPipeline({ config, maxPositionsPerInvocation: 1000 });
    const simulatedStart = p.clock.nowMs();
    await p.tick('ETH-USD', '200');
    p.seed(syntheticBook({ count: POSITIONS, seed: 8, price: '200' }, config));
    await p.fund('100000000');
    for (let i = 1; i <= 5; i++) await p.provider(`lp-${i}`, '100000000', `0.0${i}`, '100000');
    const seeded = performance.now();

    const ticks: { price: string; enqueued: number; tickMs: number; drainMs: number }[] = [];
    for (const price of ['196', '192']) {
      p.clock.advance(60_000);
      const t0 = performance.now();
      const outcome = await p.tick('ETH-USD', price);
      const t1 = performance.now();
      await p.drain();
      const t2 = performance.now();
      ticks.push({
        price,
        enqueued: outcome.status === 'accepted' ? outcome.enqueued : 0,
        tickMs: Math.round(t1 - t0),
        drainMs: Math.round(t2 - t1),
      });
    }
    const cascadeMs = performance.now() - seeded;
    const report = await p.check();
    const checkMs = performance.now() - seeded - cascadeMs;

    expect(report.violations).toEqual([]);
    expect(p.errors).toEqual([]);
    const terminal = report.figures.liquidations - report.figures.inFlight;
    expect(report.figures.inFlight).toBe(0);
    expect(terminal).toBeGreaterThanOrEqual(MIN_LIQUIDATIONS);
    expect(report.figures.conservation.error).toBe(0n);

    const figures = {
      full: FULL,
      positions: POSITIONS,
      liquidations: terminal,
      positionsLiquidated: new Set(p.adapters.liquidations.all().map((l) => l.positionId)).size,
      byState: report.figures.byState,
      ticks,
      seedMs: Math.round(seeded - started),
      cascadeMs: Math.round(cascadeMs),
      checkMs: Math.round(checkMs),
      liquidationsPerSecond: Math.round(terminal / (cascadeMs / 1000)),
      simulatedMinutes: Math.round((p.clock.nowMs() - simulatedStart) / 60_000),
      auctions: report.figures.auctions,
      venueOrders: report.figures.venueOrders,
      journalEntries: report.figures.journalEntries,
      conservation: report.figures.conservation,
    };
    recordFigures(`8-load-${FULL ? 'full' : 'ci'}`, figures);
    console.log(toJson(figures));
  });

  it('adl-candidates-oversized: a frozen settlement fits in one DynamoDB item (400 KB)', async () => {
    // Formerly every open position of the other side was frozen into the liquidation's context: 4,000 of them
    // made a 470,538-byte record. Now only the counterparties the plan uses, at most MAX_ADL_COUNTERPARTIES.
    // (The freeze still reads the whole opposite side to rank it: O(n) reads per ADL settlement.)
    const p = createPipeline();
    await p.tick('ETH-USD', '200');
    p.seed(syntheticBook({ count: 4000, seed: 9, price: '200', longShare: 0, maxLeverage: 5 }));
    await p.open('LONG', '10', '200', '200');
    await p.tick('ETH-USD', '175');
    await p.drain();
    const liquidation = p.adapters.liquidations.all().find((l) => l.positionId === 'p1');
    expect(liquidation?.state).toBe('SETTLED_ADL');
    // The context attribute alone (the frozen candidates), a lower bound of the item's size.
    // As DynamoDB stores it: one JSON attribute of a 400 KB item.
    const contextBytes = liquidation?.context ? encodeContext(liquidation.context).length : 0;
    expect(contextBytes).toBeLessThan(400 * 1024);
    const candidates = liquidation!.context?.settle?.candidates ?? [];
    expect(candidates.length).toBeGreaterThan(0);
    expect(candidates.length).toBeLessThanOrEqual(MAX_ADL_COUNTERPARTIES);
    const report = await p.check();
    expect(report.violations).toEqual([]);
    recordFigures('8-load-adl-freeze', {
      oppositeSide: 4000,
      frozenCandidates: candidates.length,
      contextBytes,
    });
  });
});
