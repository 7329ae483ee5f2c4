import { expect, it } from 'vitest';
import { METRICS } from '../../shared/metrics.ts';
import { createPipeline } from '../support/pipeline.ts';

/**
 * What `CircuitBreakerAlarm` counts, as its runbook entry says (oncall50-runbook-ok): each trip and each print that
 * re-arms an open breaker, not the breaker being open. So the alarm returns to OK 5 minutes after the last such print,
 * open breaker or not, and a print refused while the move confirms (tick/breaker-confirming) keeps it from nothing.
 */
it('counts a trip and each print that re-arms the breaker, none that confirms it or while it stays open (oncall50-runbook-ok)', async () => {
  const p = createPipeline();
  const tripped = () => p.telemetry.total(METRICS.CircuitBreakerTripped.name);
  await p.tick('ETH-USD', '200'); // a market's first print waits for a second
  await p.tick('ETH-USD', '200');
  expect(tripped()).toBe(0);
  p.clock.advance(1_000);
  expect(await p.tick('ETH-USD', '100')).toMatchObject({ reason: 'tick/price-band' });
  expect(tripped()).toBe(1);
  // Out of band of both the last mark and the held print: re-arms it, counted again.
  p.clock.advance(1_000);
  expect(await p.tick('ETH-USD', '150')).toMatchObject({ reason: 'tick/breaker-open' });
  expect(tripped()).toBe(2);
  // Agreeing with the held print too soon: refused, not counted; then nothing comes, the breaker stays open.
  p.clock.advance(1_000);
  expect(await p.tick('ETH-USD', '150')).toMatchObject({ reason: 'tick/breaker-confirming' });
  expect(tripped()).toBe(2);
  p.clock.advance(10 * 60_000);
  expect((await p.adapters.markets.get('ETH-USD'))?.breaker).toBeDefined();
  expect(tripped()).toBe(2);
});
