import { describe, expect, it } from 'vitest';
import { EmbeddedLedger, LedgerIdempotencyConflictError } from '../../shared/adapters/embedded/ledger.ts';
import { usd } from '../../shared/domain/units.ts';
import { ConditionFailedError, type LedgerMovement } from '../../shared/ports/index.ts';

const FUND = 'insurance';
let keys = 0;
const movement = (amount: string, more: Partial<LedgerMovement> = {}): LedgerMovement => ({
  account: FUND,
  idempotencyKey: `k${++keys}`,
  amount: usd(amount),
  kind: Number(amount) < 0 ? 'withdraw' : 'deposit',
  reference: 'test',
  atMs: 1_000,
  floor: 0n,
  ...more,
});

async function fundWith(amount: string): Promise<EmbeddedLedger> {
  const ledger = new EmbeddedLedger();
  await ledger.apply(movement(amount));
  return ledger;
}

describe('embedded ledger: balances and journal', () => {
  it('an unknown account has a zero balance at sequence 0', async () => {
    expect(await new EmbeddedLedger().balance('nobody')).toEqual({
      account: 'nobody',
      balance: 0n,
      sequence: 0,
      windowStartMs: 0,
      windowDrawn: 0n,
    });
  });

  it('journals each movement with the balance before and after and a per-account sequence', async () => {
    const ledger = new EmbeddedLedger();
    const a = await ledger.apply(movement('100'));
    const b = await ledger.apply(movement('-30.5'));
    await ledger.apply(movement('7', { account: 'other' }));
    expect([a.balanceBefore, a.balanceAfter, a.sequence]).toEqual([0n, usd('100'), 1]);
    expect([b.balanceBefore, b.balanceAfter, b.sequence]).toEqual([usd('100'), usd('69.5'), 2]);
    expect((await ledger.journal(FUND)).map((e) => e.sequence)).toEqual([1, 2]);
    expect((await ledger.balance(FUND)).balance).toBe(usd('69.5'));
    expect((await ledger.balance('other')).sequence).toBe(1);
  });

  it('re-applying a key returns the first entry and changes nothing', async () => {
    const ledger = new EmbeddedLedger();
    const first = await ledger.apply(movement('100', { idempotencyKey: 'dep-1' }));
    const again = await ledger.apply(movement('100', { idempotencyKey: 'dep-1', atMs: 9_999 }));
    expect(again).toEqual({ ...first, replayed: true });
    expect((await ledger.balance(FUND)).balance).toBe(usd('100'));
    expect(await ledger.journal(FUND)).toHaveLength(1);
  });

  it('re-applying a key with another amount is a conflict, not a no-op', async () => {
    const ledger = new EmbeddedLedger();
    await ledger.apply(movement('100', { idempotencyKey: 'dep-1' }));
    await expect(ledger.apply(movement('101', { idempotencyKey: 'dep-1' }))).rejects.toThrow(
      LedgerIdempotencyConflictError,
    );
    await expect(ledger.apply(movement('101', { idempotencyKey: 'dep-1' }))).rejects.toThrow(
      /ledger\/idempotency-conflict/,
    );
    expect((await ledger.balance(FUND)).balance).toBe(usd('100'));
  });

  it('keys are per account', async () => {
    const ledger = new EmbeddedLedger();
    await ledger.apply(movement('1', { idempotencyKey: 'same' }));
    await ledger.apply(movement('2', { idempotencyKey: 'same', account: 'other' }));
    expect((await ledger.balance('other')).balance).toBe(usd('2'));
  });
});

describe('embedded ledger: floor', () => {
  it.each([
    { name: 'under the floor', draw: '-60.000001', ok: false },
    { name: 'at the floor', draw: '-60', ok: true },
    { name: 'over the floor', draw: '-59.999999', ok: true },
  ])('a debit landing $name', async ({ draw, ok }) => {
    const ledger = await fundWith('100');
    const attempt = ledger.apply(movement(draw, { floor: usd('40') }));
    if (ok) await expect(attempt).resolves.toMatchObject({ balanceBefore: usd('100') });
    else {
      await expect(attempt).rejects.toBeInstanceOf(ConditionFailedError);
      expect(await ledger.balance(FUND)).toMatchObject({ balance: usd('100'), sequence: 1 });
      expect(await ledger.journal(FUND)).toHaveLength(1);
    }
  });

  it('a credit is never refused, even below the floor', async () => {
    const ledger = await fundWith('10');
    await expect(ledger.apply(movement('5', { floor: usd('100') }))).resolves.toMatchObject({
      balanceAfter: usd('15'),
    });
  });
});

describe('embedded ledger: draw window', () => {
  const window = (windowStartMs: number, cap = '50') => ({ drawWindow: { windowStartMs, cap: usd(cap) } });

  it.each([
    { name: 'over the cap', second: '-20.000001', ok: false },
    { name: 'at the cap', second: '-20', ok: true },
    { name: 'under the cap', second: '-19.999999', ok: true },
  ])('draws within one window: total $name', async ({ second, ok }) => {
    const ledger = await fundWith('1000');
    await ledger.apply(movement('-30', window(3_600_000)));
    const attempt = ledger.apply(movement(second, window(3_600_000)));
    if (ok) {
      await expect(attempt).resolves.toBeDefined();
      expect((await ledger.balance(FUND)).windowDrawn).toBe(usd('30') - usd(second));
    } else {
      await expect(attempt).rejects.toThrow(/ledger\/draw-cap/);
      expect((await ledger.balance(FUND)).windowDrawn).toBe(usd('30'));
    }
  });

  it('a later window starts from zero; credits do not refill the window', async () => {
    const ledger = await fundWith('1000');
    await ledger.apply(movement('-50', window(0)));
    await ledger.apply(movement('500', window(0)));
    await expect(ledger.apply(movement('-1', window(0)))).rejects.toBeInstanceOf(ConditionFailedError);
    await ledger.apply(movement('-50', window(3_600_000)));
    expect(await ledger.balance(FUND)).toMatchObject({ windowStartMs: 3_600_000, windowDrawn: usd('50') });
  });

  it('a draw dated in an earlier window counts against the stored one (the fund-safe reading)', async () => {
    const ledger = await fundWith('1000');
    await ledger.apply(movement('-40', window(3_600_000)));
    await expect(ledger.apply(movement('-20', window(0)))).rejects.toThrow(/ledger\/draw-cap/);
    await ledger.apply(movement('-10', window(0)));
    expect(await ledger.balance(FUND)).toMatchObject({ windowStartMs: 3_600_000, windowDrawn: usd('50') });
  });

  it('a debit without a draw window is only held to the floor', async () => {
    const ledger = await fundWith('1000');
    await ledger.apply(movement('-900'));
    expect((await ledger.balance(FUND)).windowDrawn).toBe(0n);
  });
});

describe('embedded ledger: bad input', () => {
  it.each([
    { name: 'empty account', m: { account: '' }, reason: /ledger: id/ },
    { name: 'empty key', m: { idempotencyKey: '' }, reason: /ledger\/bad-idempotency-key/ },
    { name: 'number amount', m: { amount: 5 as unknown as bigint }, reason: /ledger\/bad-amount/ },
  ])('refuses $name', async ({ m, reason }) => {
    await expect(new EmbeddedLedger().apply(movement('1', m))).rejects.toThrow(reason);
  });
});
