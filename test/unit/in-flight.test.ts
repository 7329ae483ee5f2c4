import { describe, expect, it } from 'vitest';
import { chunksOf, eachInFlight } from '../../shared/in-flight.ts';
import { applyAdmin } from '../../shared/local/seed.ts';
import type { AdminRequest } from '../../shared/services/admin.ts';
import { createPipeline } from '../support/pipeline.ts';

/** A promise and its resolve, for a step the test lets go on. */
function gate(): { readonly promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** Every pending promise callback run (the stubs below are in memory: no I/O is waited for). */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('eachInFlight', () => {
  it('runs every item, begun in order, at most inFlight at once', async () => {
    const begun: number[] = [];
    let running = 0;
    let most = 0;
    await eachInFlight([10, 11, 12, 13, 14, 15, 16], 3, async (item, at) => {
      expect(item).toBe(10 + at);
      begun.push(at);
      most = Math.max(most, ++running);
      await Promise.resolve();
      running -= 1;
    });
    expect(begun).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(most).toBe(3);
    // None, and a count below one (one at a time).
    await eachInFlight([], 16, async () => expect.unreachable());
    const one: number[] = [];
    await eachInFlight([0, 1], 0, async (item) => {
      one.push(item);
    });
    expect(one).toEqual([0, 1]);
  });

  it('stop is asked before each item but the first', async () => {
    const begun: number[] = [];
    let asked = 0;
    await eachInFlight(
      [0, 1, 2, 3],
      1,
      async (item) => {
        begun.push(item);
      },
      () => ++asked > 1,
    );
    expect({ begun, asked }).toEqual({ begun: [0, 1], asked: 2 });
  });
});

describe('applyAdmin after a row that throws (tidy45-pool-after-failure)', () => {
  // Found in session 45's tidy of the pools: a row whose store call threw (a throttled table) failed the seed, whose
  // error the CLI printed, while its other workers went on applying the rest of the file behind it.
  it('begins no other row, and throws once the rows in flight are done', async () => {
    const p = createPipeline();
    const deps = { ...p.adapters, config: p.config, telemetry: p.telemetry, nowMs: () => p.clock.nowMs() };
    const requests: AdminRequest[] = Array.from({ length: 10 }, (_, i) => ({
      action: 'registerProvider',
      id: `lp-${i}`,
      capital: '1000',
      maxDiscount: '0.02',
      maxLot: '5',
      symbols: ['ETH-USD'],
    }));
    const begun: string[] = [];
    const second = gate();
    const get = p.adapters.providers.get.bind(p.adapters.providers);
    p.adapters.providers.get = async (id) => {
      begun.push(id);
      if (id === 'lp-0') throw new Error('ThrottlingException');
      if (id === 'lp-1') await second.promise;
      return get(id);
    };
    let settled = false;
    const outcome = applyAdmin(requests, deps, { concurrency: 2 });
    void outcome.catch(() => {}).finally(() => (settled = true));
    await settle();
    // lp-0 failed; lp-1 is still in flight: the call has not answered yet.
    expect(settled).toBe(false);
    second.open();
    await expect(outcome).rejects.toThrow('ThrottlingException');
    await settle();
    expect(begun).toEqual(['lp-0', 'lp-1']);
    expect(await p.adapters.providers.get('lp-1')).toMatchObject({ id: 'lp-1' });
    expect(await p.adapters.providers.get('lp-2')).toBeUndefined();
  });
});

describe('chunksOf', () => {
  it('runs of the size, in order, the last shorter; none of nothing', () => {
    expect(chunksOf([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(
      chunksOf(
        Array.from({ length: 200 }, (_, i) => i),
        100,
      ).map((c) => c.length),
    ).toEqual([100, 100]);
    expect(chunksOf([], 100)).toEqual([]);
  });
});
