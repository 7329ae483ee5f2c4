import { expect } from 'vitest';
import type { Tick } from '../../shared/domain/tick.ts';
import { parsePrice } from '../../shared/domain/units.ts';
import type { AdminDeps } from '../../shared/services/admin.ts';
import { handleTick } from '../../shared/services/margin-check.ts';
import type { Pipeline } from './pipeline.ts';

/** The admin function's dependencies on a pipeline's adapters. */
export const adminDepsOf = (p: Pipeline): AdminDeps => ({
  ...p.adapters,
  config: p.config,
  telemetry: p.telemetry,
  nowMs: () => p.clock.nowMs(),
});

/**
 * A tick of ETH-USD a second from now whose first invocation leaves it pending (the pipeline starts one position
 * per invocation): its continuation is the caller's to deliver, or lose.
 */
export async function pendingTick(
  p: Pipeline,
  price: string,
  sequence: number,
  source = 'old',
): Promise<Tick> {
  p.clock.advance(1_000);
  const tick = {
    symbol: 'ETH-USD',
    markPrice: parsePrice(price),
    timestampMs: p.clock.nowMs(),
    sequence,
    source,
  };
  expect(await handleTick(tick, p.marginDeps, p.clock.nowMs())).toMatchObject({ needsContinuation: true });
  return tick;
}

/** Admin dependencies whose rebaseSequence runs `first` before it writes: what happens between a resume's read and its write. */
export function racingRebase(p: Pipeline, first: () => Promise<void>): AdminDeps {
  const markets = p.adapters.markets;
  return {
    ...adminDepsOf(p),
    markets: new Proxy(markets, {
      get: (target, key) =>
        key === 'rebaseSequence'
          ? async (...args: Parameters<typeof markets.rebaseSequence>) => {
              await first();
              return markets.rebaseSequence(...args);
            }
          : Reflect.get(target, key).bind(target),
    }),
  };
}
