import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { InsuranceConfig } from '../../shared/domain/config.ts';
import {
  credit,
  creditBack,
  InsuranceError,
  type InsuranceState,
  planDebit,
  planFeeReturn,
  rollWindow,
  windowStartFor,
} from '../../shared/domain/insurance.ts';
import { maxBig, minBig, usd } from '../../shared/domain/units.ts';

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

describe('creditBack: a shortfall payout given back (credit-back-window)', () => {
  it('in its window, frees the room it gives back: a further draw of that much is paid, one more unit is not', () => {
    const drawn = planDebit(state('5000', '0', HOUR), usd('1000'), HOUR + 5, config).next;
    expect(drawn).toEqual({ balance: usd('4000'), windowStartMs: HOUR, windowDrawn: usd('1000') });
    expect(planDebit(drawn, usd('0.000001'), HOUR + 6, config).reason).toBe('insurance/draw-cap');
    // A plan made again pays 300 less: the difference comes back to the fund and to the window.
    const back = creditBack(drawn, usd('300'), HOUR);
    expect(back.next).toEqual({ balance: usd('4300'), windowStartMs: HOUR, windowDrawn: usd('700') });
    expect(back.credited).toBe(usd('300'));
    expect(back.reason).toBe('shortfall-payout');
    const again = planDebit(back.next, usd('300.000001'), HOUR + 7, config);
    expect(again).toMatchObject({ paid: usd('300'), refused: 1n, reason: 'insurance/draw-cap' });
    expect(again.next.windowDrawn).toBe(usd('1000'));
  });

  it('after the window rolled, leaves the new window alone; more than the window drew takes it to 0, no lower', () => {
    const rolled = planDebit(state('5000', '1000', HOUR), usd('400'), 2 * HOUR, config).next;
    expect(rolled.windowStartMs).toBe(2 * HOUR);
    const late = creditBack(rolled, usd('300'), HOUR).next;
    expect(late).toEqual({ balance: usd('4900'), windowStartMs: 2 * HOUR, windowDrawn: usd('400') });
    expect(planDebit(late, usd('601'), 2 * HOUR + 1, config).paid).toBe(usd('600'));
    // A window not open yet has no draws to give back either.
    expect(creditBack(rolled, usd('300'), 3 * HOUR).next.windowDrawn).toBe(usd('400'));
    expect(creditBack(rolled, usd('400.000001'), 2 * HOUR).next).toEqual({
      balance: usd('5000.000001'),
      windowStartMs: 2 * HOUR,
      windowDrawn: 0n,
    });
  });

  it('a fee credit never frees room in the window', () => {
    const spent = state('5000', '1000', HOUR);
    expect(credit(spent, usd('300'), 'liquidation-fee').next.windowDrawn).toBe(usd('1000'));
    expect(planDebit(credit(spent, usd('300'), 'liquidation-fee').next, usd('1'), HOUR, config).paid).toBe(
      0n,
    );
  });

  it('never below 0, never more room than the draws given back, balance exact (property)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ kind: fc.constant('debit' as const), amount: amountArb, window: fc.nat(2) }),
            fc.record({ kind: fc.constant('back' as const), amount: amountArb, window: fc.nat(2) }),
          ),
          { maxLength: 30 },
        ),
        (ops) => {
          let s: InsuranceState = { balance: usd('100000'), windowStartMs: 0, windowDrawn: 0n };
          // What each window drew and got back, by hand.
          const net = new Map<number, bigint>();
          for (const op of ops) {
            const windowStartMs = op.window * HOUR;
            if (op.kind === 'debit') {
              const plan = planDebit(s, op.amount, windowStartMs, config);
              if (plan.paid > 0n) {
                const w = plan.next.windowStartMs;
                net.set(w, (net.get(w) ?? 0n) + plan.paid);
              }
              s = plan.next;
              continue;
            }
            const before = s;
            s = creditBack(s, op.amount, windowStartMs).next;
            expect(s.balance).toBe(before.balance + op.amount);
            expect(s.windowDrawn >= 0n).toBe(true);
            expect(before.windowDrawn - s.windowDrawn).toBe(
              windowStartMs === before.windowStartMs ? minBig(op.amount, before.windowDrawn) : 0n,
            );
            if (windowStartMs === before.windowStartMs) {
              net.set(windowStartMs, maxBig(0n, (net.get(windowStartMs) ?? 0n) - op.amount));
            }
          }
          expect(s.windowDrawn).toBe(net.get(s.windowStartMs) ?? 0n);
        },
      ),
      RUNS,
    );
  });
});

describe('rejections', () => {
  it.each([
    {
      name: 'zero debit',
      run: () => planDebit(state('1000'), 0n, 0, config),
      reason: 'insurance/non-positive-amount: amount 0 must be > 0',
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
      reason: 'insurance/bad-reason: a credit needs a reason',
    },
    {
      name: 'credit with a reason that is no string',
      run: () => credit(state('1000'), 5n, undefined as unknown as string),
      reason: 'insurance/bad-reason',
    },
    {
      name: 'credit to a bad state',
      run: () => credit(state('1000', '-1'), 5n, 'fee'),
      reason: 'insurance/bad-state',
    },
    {
      name: 'payout given back to a bad state',
      run: () => creditBack(state('1000', '-1'), 5n, 0),
      reason: 'insurance/bad-state',
    },
    {
      name: 'fee given back from a bad state',
      run: () => planFeeReturn(state('1000', '-1'), 5n, config),
      reason: 'insurance/bad-state',
    },
    {
      name: 'fee given back under a bad config',
      run: () => planFeeReturn(state('1000'), 5n, { ...config, windowSeconds: 0 }),
      reason: 'insurance/bad-config',
    },
    {
      name: 'zero payout given back',
      run: () => creditBack(state('1000'), 0n, 0),
      reason: 'insurance/non-positive-amount',
    },
    {
      name: 'payout given back to a fractional window',
      run: () => creditBack(state('1000'), 1n, 0.5),
      reason: 'insurance/bad-time',
    },
    {
      name: 'negative time',
      run: () => planDebit(state('1000'), 1n, -1, config),
      reason: 'insurance/bad-time: nowMs -1 must be a non-negative integer',
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
      reason: 'insurance/bad-state: windowDrawn -1000000 < 0',
    },
    {
      name: 'negative window start',
      run: () => planDebit(state('1000', '0', -1), 1n, 0, config),
      reason: 'insurance/bad-state: windowStartMs -1',
    },
    {
      name: 'fractional window start',
      run: () => planDebit(state('1000', '0', 1.5), 1n, 0, config),
      reason: 'insurance/bad-state: windowStartMs 1.5',
    },
    {
      name: 'negative draw cap',
      run: () => planDebit(state('1000'), 1n, 0, { ...config, drawCapPerWindow: -1n }),
      reason: 'insurance/bad-config: drawCapPerWindow and floor must be >= 0',
    },
    {
      name: 'negative floor',
      run: () => planDebit(state('1000'), 1n, 0, { ...config, floor: -1n }),
      reason: 'insurance/bad-config: drawCapPerWindow and floor must be >= 0',
    },
    {
      name: 'zero window',
      run: () => planDebit(state('1000'), 1n, 0, { ...config, windowSeconds: 0 }),
      reason: 'insurance/bad-config: windowSeconds 0',
    },
  ])('$name', ({ run, reason }) => {
    expect(run).toThrow(InsuranceError);
    expect(run).toThrow(reason);
  });

  it('its errors are InsuranceErrors by name', () => {
    expect(new InsuranceError('insurance/bad-time', 'x').name).toBe('InsuranceError');
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

describe('planFeeReturn: a fee given back within the floor (replan-fee-floor)', () => {
  it('gives back what keeps the fund at or above its floor, keeps the rest, and leaves the draw window alone', () => {
    expect(planFeeReturn(state('130', '40'), usd('20'), config)).toEqual({
      given: usd('20'),
      kept: 0n,
      next: state('110', '40'),
    });
    expect(planFeeReturn(state('105'), usd('20'), config)).toEqual({
      given: usd('5'),
      kept: usd('15'),
      next: state('100'),
    });
    expect(planFeeReturn(state('90'), usd('20'), config)).toMatchObject({ given: 0n, kept: usd('20') });
    expect(() => planFeeReturn(state('90'), 0n, config)).toThrow(InsuranceError);
  });
});
