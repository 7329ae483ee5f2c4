import { describe, expect, it, vi } from 'vitest';
import { parseBase, parsePrice } from '../../shared/domain/units.ts';
import { METRICS } from '../../shared/metrics.ts';
import { createPipeline, RecordingTelemetry } from '../support/pipeline.ts';

/**
 * The admin Lambda's answer to a fund movement (functions/admin). An audit of the handlers in session 36 found a key
 * applied before answered with its first entry's balance and no word that nothing moved, and that old balance
 * published as the fund's gauge (InsuranceFundBalance: a fund-low page on a healthy fund, or one masked). The
 * function's wiring (its own module: the AWS clients of a deployment) is swapped for the embedded adapters here.
 */
const p = createPipeline();
const telemetry = new RecordingTelemetry();
vi.mock('../../shared/lambda/wiring.ts', () => ({
  wiring: () => ({ adapters: { ...p.adapters, clock: p.clock }, config: p.config, telemetry }),
}));

describe('the admin function on a fund movement', () => {
  it('answers the balance now and says when its key was applied before; the gauge follows the balance now', async () => {
    const { admin } = await import('../../functions/admin/index.ts');
    const gauge = () => telemetry.observations.filter((o) => o.metric === METRICS.InsuranceFundBalance.name);
    expect(await admin({ action: 'deposit', amount: '1000', idempotencyKey: 'd1', operator: 'ops' })).toEqual(
      {
        ok: true,
        alreadyApplied: false,
        balance: '1000',
        balanceAfter: '1000',
        sequence: 1,
      },
    );
    p.clock.advance(1);
    await admin({ action: 'deposit', amount: '500', idempotencyKey: 'd2', operator: 'ops' });
    p.clock.advance(1);
    // The operator's retry of d1 (its first answer lost): nothing moves, and the answer says so.
    expect(await admin({ action: 'deposit', amount: '1000', idempotencyKey: 'd1', operator: 'ops' })).toEqual(
      {
        ok: true,
        alreadyApplied: true,
        balance: '1500',
        balanceAfter: '1000',
        sequence: 1,
      },
    );
    expect(gauge().map((o) => o.value)).toEqual([1000, 1500, 1500]);
  });
});

describe('the admin function on a request it refuses', () => {
  it('answers the refusal whatever the action holds, and logs only an action it knows', async () => {
    const { admin } = await import('../../functions/admin/index.ts');
    const { logger } = await import('../../shared/lambda/runtime.ts');
    const info = vi.spyOn(logger, 'info').mockImplementation(() => {});
    try {
      // A parsed event's object with a "toString" key: String() of it threw after the refusal (a review, session 40).
      const odd = JSON.parse('{"action":{"toString":1},"amount":"1"}');
      expect(await admin(odd)).toMatchObject({ ok: false, reason: expect.stringMatching(/^admin\/invalid/) });
      const long = `withdraw${'x'.repeat(100_000)}`;
      expect(await admin({ action: long, amount: '1', idempotencyKey: 'k' })).toMatchObject({ ok: false });
      expect(
        await admin({ action: 'deposit', amount: '-1', idempotencyKey: 'k', operator: 'ops' }),
      ).toMatchObject({
        ok: false,
      });
      const actions = info.mock.calls.map((c) => (c[1] as { action?: unknown }).action);
      expect(actions).toEqual(['unknown', 'unknown', 'deposit']);
    } finally {
      info.mockRestore();
    }
  });
});

describe("the admin function's log line of a refusal", () => {
  it("names the refusal's code, not the records its reason describes to the caller", async () => {
    const { admin } = await import('../../functions/admin/index.ts');
    const { logger } = await import('../../shared/lambda/runtime.ts');
    const position = {
      action: 'openPosition',
      id: 'pos-log-1',
      traderId: 'trader-7c1e',
      symbol: 'ETH-USD',
      side: 'LONG',
      size: '3.21',
      entryPrice: '1500',
      collateral: '900',
    };
    expect(await admin(position)).toMatchObject({ ok: true });
    const info = vi.spyOn(logger, 'info').mockImplementation(() => {});
    try {
      // Another position under a taken id: the answer describes the stored one, its owner included.
      const refused = await admin({ ...position, size: '4' });
      expect(refused).toMatchObject({ ok: false, reason: expect.stringContaining('trader-7c1e') });
      const lines = JSON.stringify(info.mock.calls);
      expect(lines).toContain('admin/position-exists');
      expect(lines).not.toMatch(/trader-7c1e|3\.21|1,?500/);
    } finally {
      info.mockRestore();
    }
  });
});

describe("the admin function on a registration's wake", () => {
  it('counts the sleepers woken and a failed wake in their market, once each', async () => {
    const { admin } = await import('../../functions/admin/index.ts');
    await p.adapters.auctions.create({
      id: 'asleep',
      liquidationId: 'asleep:liq',
      symbol: 'ETH-USD',
      direction: 'SELL',
      lot: parseBase('1'),
      remainingLot: parseBase('1'),
      top: parsePrice('200'),
      startedAtMs: 1,
      resets: 0,
      step: 1,
      state: 'RUNNING',
      fills: [],
      wakeMark: parsePrice('190'),
      version: 0,
    });
    const register = (id: string) =>
      admin({
        action: 'registerProvider',
        id,
        capital: '1000',
        maxDiscount: '0.02',
        maxLot: '5',
        symbols: ['ETH-USD'],
      });
    expect(await register('lp-w1')).toEqual({ ok: true, id: 'lp-w1', woken: 1 });
    expect(telemetry.marketCounts.get(`${METRICS.AuctionsWoken.name}@ETH-USD`)).toBe(1);
    vi.spyOn(p.adapters.auctions, 'sleepers').mockRejectedValueOnce(new Error('ThrottlingException'));
    expect(await register('lp-w2')).toMatchObject({ ok: true, id: 'lp-w2', wakeError: expect.any(String) });
    // Before: counted by the function with no Market (on no market's graph), beside none by the service.
    expect(telemetry.total(METRICS.AuctionWakeFailures.name)).toBe(1);
    expect(telemetry.marketCounts.get(`${METRICS.AuctionWakeFailures.name}@ETH-USD`)).toBe(1);
    expect(telemetry.unmarked).toEqual(new Set());
  });
});
