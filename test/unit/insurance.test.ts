import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { InsuranceConfig } from '../../shared/domain/config.ts';
import {
  credit,
  InsuranceError,
  type InsuranceState,
  planDebit,
  rollWindow,
  windowStartFor,
} from '../../shared/domain/insurance.ts';
import { usd } from '../../shared/domain/units.ts';

const RUNS = { numRuns: 300 };
const HOUR = 3_600_000;
const config: InsuranceConfig = { drawCapPerWindow: usd('1000'), windowSeconds: 3600, floor: usd('100') };
const state = (balance: string, drawn = '0', windowStartMs = 0): InsuranceState => ({
  balance: usd(balance),
  windowStartMs,
  windowDrawn: usd(drawn),
});

describe('planDebit: limits (over, at, under)', () => {
  it.each([
    { name: 'under both limits', s: state('1000'), amount: '500', paid: '500', reason: undefined },
    { name: 'exactly down to the floor', s: state('1000'), amount: '900', paid: '900', reason: undefined },
    { name: 'over the floor', s: state('1000'), amount: '901', paid: '900', reason: 'insurance/floor' },
    {
      name: 'balance already below the floor',
      s: state('50'),
      amount: '10',
      paid: '0',
      reason: 'insurance/floor',
    },
    { name: 'exactly up to the cap', s: state('5000', '600'), amount: '400', paid: '400', reason: undefined },
    {
      name: 'over the cap',
      s: state('5000', '600'),
      amount: '401',
      paid: '400',
      reason: 'insurance/draw-cap',
    },
    {
      name: 'cap already spent',
      s: state('5000', '1000'),
      amount: '1',
      paid: '0',
      reason: 'insurance/draw-cap',
    },
    {
      name: 'both bind equally: floor',
      s: state('500', '600'),
      amount: '500',
      paid: '400',
      reason: 'insurance/floor',
    },
  ])('$name', ({ s, amount, paid, reason }) => {
    const plan = planDebit(s, usd(amount), 1_000, config);
    expect(plan.paid).toBe(usd(paid));
    expect(plan.refused).toBe(usd(amount) - usd(paid));
    expect(plan.reason).toBe(reason);
    expect(plan.next.balance).toBe(s.balance - usd(paid));
    expect(plan.next.windowDrawn).toBe(s.windowDrawn + usd(paid));
  });
});

describe('draw windows', () => {
  it.each([
    {
      name: 'one ms before the end: same window',
      start: HOUR,
      now: 2 * HOUR - 1,
      expectStart: HOUR,
      drawn: '600',
    },
    { name: 'at the end: new window', start: HOUR, now: 2 * HOUR, expectStart: 2 * HOUR, drawn: '0' },
    {
      name: 'later: aligned to the window length',
      start: 0,
      now: 2 * HOUR + 1_234,
      expectStart: 2 * HOUR,
      drawn: '0',
    },
    {
      name: 'clock went backwards: kept',
      start: 5 * HOUR,
      now: 3 * HOUR,
      expectStart: 5 * HOUR,
      drawn: '600',
    },
  ])('$name', ({ start, now, expectStart, drawn }) => {
    const next = rollWindow(state('5000', '600', start), now, config);
    expect(next.windowStartMs).toBe(expectStart);
    expect(next.windowDrawn).toBe(usd(drawn));
  });

  it('a new window restores the allowance', () => {
    const spent = state('5000', '1000', 0);
    expect(planDebit(spent, usd('300'), HOUR - 1, config).paid).toBe(0n);
    const plan = planDebit(spent, usd('300'), HOUR, config);
    expect(plan.paid).toBe(usd('300'));
    expect(plan.next).toEqual({ balance: usd('4700'), windowStartMs: HOUR, windowDrawn: usd('300') });
  });

  it('windowStartFor floors to the window length', () => {
    expect(windowStartFor(0, config)).toBe(0);
    expect(windowStartFor(HOUR - 1, config)).toBe(0);
    expect(windowStartFor(HOUR, config)).toBe(HOUR);
  });
});

describe('credit', () => {
  it('adds the amount and keeps the window', () => {
    const r = credit(state('100', '700', HOUR), usd('12.5'), 'liquidation-fee');
    expect(r.next).toEqual({ balance: usd('112.5'), windowStartMs: HOUR, windowDrawn: usd('700') });
    expect(r.credited).toBe(usd('12.5'));
    expect(r.reason).toBe('liquidation-fee');
  });
});

describe('rejections', () => {
  it.each([
    {
      name: 'zero debit',
      run: () => planDebit(state('1000'), 0n, 0, config),
      reason: 'insurance/non-positive-amount',
    },
    {
      name: 'negative debit',
      run: () => planDebit(state('1000'), -1n, 0, config),
      reason: 'insurance/non-positive-amount',
    },
    {
      name: 'zero credit',
      run: () => credit(state('1000'), 0n, 'fee'),
      reason: 'insurance/non-positive-amount',
    },
    {
      name: 'negative credit',
      run: () => credit(state('1000'), -5n, 'fee'),
      reason: 'insurance/non-positive-amount',
    },
    {
      name: 'credit without reason',
      run: () => credit(state('1000'), 5n, ' '),
      reason: 'insurance/bad-reason',
    },
    {
      name: 'negative time',
      run: () => planDebit(state('1000'), 1n, -1, config),
      reason: 'insurance/bad-time',
    },
    {
      name: 'fractional time',
      run: () => planDebit(state('1000'), 1n, 1.5, config),
      reason: 'insurance/bad-time',
    },
    {
      name: 'NaN time',
      run: () => planDebit(state('1000'), 1n, Number.NaN, config),
      reason: 'insurance/bad-time',
    },
    {
      name: 'negative drawn',
      run: () => planDebit(state('1000', '-1'), 1n, 0, config),
      reason: 'insurance/bad-state',
    },
    {
      name: 'zero window',
      run: () => planDebit(state('1000'), 1n, 0, { ...config, windowSeconds: 0 }),
      reason: 'insurance/bad-config',
    },
  ])('$name', ({ run, reason }) => {
    expect(run).toThrow(InsuranceError);
    expect(run).toThrow(reason);
  });
});

// --- properties -----------------------------------------------------------------------------------------

const amountArb = fc.bigInt({ min: 1n, max: 2_000_000_000n }); // up to 2,000 USD
const opArb = fc.oneof(
  fc.record({ kind: fc.constant('credit' as const), amount: amountArb }),
  fc.record({
    kind: fc.constant('debit' as const),
    amount: amountArb,
    dtMs: fc.integer({ min: 0, max: HOUR }),
  }),
);
const configArb = fc.record({
  drawCapPerWindow: fc.bigInt({ min: 0n, max: 3_000_000_000n }),
  windowSeconds: fc.integer({ min: 1, max: 7_200 }),
  floor: fc.bigInt({ min: 0n, max: 1_000_000_000n }),
});

describe('insurance: properties over operation sequences', () => {
  it('never below the floor, never over the cap, paid + refused == amount, credits never refused', () => {
    fc.assert(
      fc.property(
        configArb,
        fc.bigInt({ min: 0n, max: 5_000_000_000n }),
        fc.array(opArb, { maxLength: 40 }),
        (cfg, extra, ops) => {
          let s: InsuranceState = { balance: cfg.floor + extra, windowStartMs: 0, windowDrawn: 0n };
          let now = 0;
          const len = cfg.windowSeconds * 1000;
          for (const op of ops) {
            if (op.kind === 'credit') {
              const r = credit(s, op.amount, 'deposit');
              expect(r.next.balance).toBe(s.balance + op.amount);
              expect(r.next.windowDrawn).toBe(s.windowDrawn);
              s = r.next;
              continue;
            }
            now += op.dtMs;
            const plan = planDebit(s, op.amount, now, cfg);
            const newWindow = now >= s.windowStartMs + len;
            const drawnBefore = newWindow ? 0n : s.windowDrawn;
            expect(plan.paid + plan.refused).toBe(op.amount);
            expect(plan.paid >= 0n && plan.refused >= 0n).toBe(true);
            expect(plan.next.balance).toBe(s.balance - plan.paid);
            expect(plan.next.windowDrawn).toBe(drawnBefore + plan.paid);
            expect(plan.next.balance >= cfg.floor).toBe(true);
            expect(plan.next.windowDrawn <= cfg.drawCapPerWindow).toBe(true);
            expect(plan.next.windowStartMs % len).toBe(0);
            expect(plan.next.windowStartMs <= now).toBe(true);
            // as much as possible: a refusal means a limit is exhausted, and names it
            if (plan.refused > 0n) {
              const atFloor = plan.next.balance === cfg.floor;
              const atCap = plan.next.windowDrawn === cfg.drawCapPerWindow;
              expect(atFloor || atCap).toBe(true);
              expect(plan.reason).toBe(atFloor ? 'insurance/floor' : 'insurance/draw-cap');
            } else {
              expect(plan.reason).toBeUndefined();
            }
            s = plan.next;
          }
        },
      ),
      RUNS,
    );
  });
});
