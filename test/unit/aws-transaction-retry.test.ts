import { describe, expect, it } from 'vitest';
import { retryingConflicts, TRANSACTION_ATTEMPTS } from '../../shared/adapters/aws/codec.ts';

/** A TransactWriteItems cancelled with these reasons, as the SDK throws it. */
const cancelled = (...codes: string[]) =>
  Object.assign(new Error('Transaction cancelled, please refer cancellation reasons for specific reasons'), {
    name: 'TransactionCanceledException',
    CancellationReasons: codes.map((Code) => ({ Code })),
  });

/** A transaction failing with `errors` in turn, then succeeding; counts its attempts and the pauses between. */
function transaction(...errors: Error[]) {
  const calls = { attempts: 0, pauses: [] as number[] };
  const transact = async () => {
    calls.attempts += 1;
    const error = errors.shift();
    if (error) throw error;
    return 'written';
  };
  const pause = async (ms: number) => calls.pauses.push(ms);
  return { calls, run: () => retryingConflicts(transact, TRANSACTION_ATTEMPTS, pause) };
}

describe('retryingConflicts', () => {
  it('runs a transaction cancelled by a conflict or throttling again, after a bounded pause', async () => {
    const t = transaction(cancelled('None', 'TransactionConflict'), cancelled('ThrottlingError', 'None'));
    await expect(t.run()).resolves.toBe('written');
    expect(t.calls.attempts).toBe(3);
    expect(t.calls.pauses).toHaveLength(2);
    for (const ms of t.calls.pauses) expect(ms).toBeGreaterThanOrEqual(0);
    expect(Math.max(...t.calls.pauses)).toBeLessThanOrEqual(400);
  });

  it('gives up after its attempts, with the last cancellation', async () => {
    const conflicts = Array.from({ length: TRANSACTION_ATTEMPTS }, () => cancelled('TransactionConflict'));
    const t = transaction(...conflicts);
    await expect(t.run()).rejects.toMatchObject({ name: 'TransactionCanceledException' });
    expect(t.calls.attempts).toBe(TRANSACTION_ATTEMPTS);
  });

  it.each([
    ['a failed condition (ours to judge)', cancelled('TransactionConflict', 'ConditionalCheckFailed')],
    ['a validation error (it would fail again)', cancelled('ValidationError', 'None')],
    ['an unknown cancellation', cancelled('None', 'None')],
    ['another error', new Error('socket hang up')],
  ])('never runs again %s', async (_case, error) => {
    const t = transaction(error);
    await expect(t.run()).rejects.toBe(error);
    expect(t.calls.attempts).toBe(1);
  });
});
