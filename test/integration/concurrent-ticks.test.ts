import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAwsAdapters } from '../../shared/adapters/aws/index.ts';
import { systemClock } from '../../shared/adapters/embedded/clock.ts';
import { isTerminal } from '../../shared/domain/model.ts';
import { parsePrice } from '../../shared/domain/units.ts';
import { startLocalStack } from '../../shared/local/stack.ts';
import { queueDepths } from '../support/emulator-invariants.ts';
import { startMoto } from '../support/moto.ts';

/**
 * Lambda runs each tick event on its own: a market's ticks may run at once and in any order. Here margin-check
 * takes a crash's ticks four at a time, through the real AWS adapters on moto (conditional writes on the market,
 * the pending mark, the begin transactions): whatever order they land in, no crossed position is left OPEN once a
 * tick at the low has been handled, every liquidation ends terminal, and nothing is dead-lettered. Added in session
 * 25 after a review of the local runner found it ran ticks one at a time (docs/RELIABILITY.md,
 * runner-concurrency-one).
 */

let moto: Awaited<ReturnType<typeof startMoto>>;
beforeAll(async () => {
  moto = await startMoto();
});
afterAll(async () => {
  await moto?.stop();
});

const SYMBOL = 'ETH-USD';
/** Longs of 1 ETH from 200 whose liquidation prices spread from about 197 to 181 (maintenance 2.5 %): the low, 182, crosses all but the last. */
const COLLATERALS = Array.from({ length: 20 }, (_, i) => (8 + i * 0.8).toFixed(2));
const CRASH = ['198', '196', '194', '192', '190', '188', '186', '184', '182'] as const;

describe('concurrent ticks on moto', () => {
  it("leaves no crossed position OPEN when a crash's ticks run four at a time, in any order", async () => {
    const stack = await startLocalStack({
      endpoint: moto.endpoint,
      stage: 'ticks4',
      fastRetries: true,
      tickConcurrency: 4,
    });
    const adapters = createAwsAdapters({ clients: stack.clients, names: stack.names, clock: systemClock });
    let sequence = 0;
    const tick = (price: string) => ({
      symbol: SYMBOL,
      markPrice: price,
      timestamp: Date.now(),
      sequence: ++sequence,
      source: 'race',
    });
    const admin = async (request: unknown) => {
      const result = (await stack.runner.invoke('admin', request)) as { ok: boolean; reason?: string };
      expect(result, JSON.stringify(result)).toMatchObject({ ok: true });
    };
    try {
      // A market opens on its second print (handled one after the other).
      for (const price of ['200', '200']) {
        expect(await stack.putTicks([tick(price)])).toEqual([]);
        await stack.runner.runUntilIdle({ deadlineMs: 60_000 });
      }
      await admin({ action: 'deposit', amount: '100000', idempotencyKey: 'race-fund', operator: 'ops' });
      for (const [i, collateral] of COLLATERALS.entries()) {
        await admin({
          action: 'openPosition',
          id: `race-${i}`,
          traderId: `t-${i}`,
          symbol: SYMBOL,
          side: 'LONG',
          size: '1',
          entryPrice: '200',
          collateral,
        });
      }
      // The crash in one PutEvents: one receive, its ticks invoked four at a time.
      expect(await stack.putTicks(CRASH.map(tick))).toEqual([]);
      await stack.runner.runUntilIdle({ deadlineMs: 120_000 });
      // A print at the low after the burst: whichever ticks the race refused, this one finds what is still open.
      expect(await stack.putTicks([tick('182')])).toEqual([]);
      await stack.runner.runUntilIdle({ deadlineMs: 120_000 });

      const open = await adapters.positions.queryCrossed(SYMBOL, 'LONG', parsePrice('182'), 100);
      expect(open.positions.map((p) => p.id)).toEqual([]);
      const liquidations = (
        await Promise.all(
          Array.from({ length: sequence }, (_, i) => adapters.liquidations.listByTick(`${SYMBOL}#${i + 1}`)),
        )
      ).flat();
      // Every position the low crosses was liquidated, and only those; each liquidation ended.
      const low = parsePrice('182');
      const crossed: string[] = [];
      for (const i of COLLATERALS.keys()) {
        const p = await adapters.positions.get(`race-${i}`);
        if (p && p.liquidationPrice >= low) crossed.push(p.id);
        else expect(p?.state).toBe('OPEN');
      }
      expect(crossed.length).toBeGreaterThan(15);
      expect(new Set(liquidations.map((l) => l.positionId))).toEqual(new Set(crossed));
      for (const l of liquidations) expect(isTerminal(l.state), `${l.id} ${l.state}`).toBe(true);
      const depths = await queueDepths(stack.clients, stack.names);
      for (const [queue, depth] of Object.entries(depths)) expect(depth, queue).toBe(0);
    } finally {
      await stack.stop();
    }
  });
});
