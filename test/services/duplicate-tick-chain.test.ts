import { expect, it } from 'vitest';
import { parsePrice } from '../../shared/domain/units.ts';
import { handleTick } from '../../shared/services/margin-check.ts';
import { createPipeline } from '../support/pipeline.ts';

/**
 * A tick that crosses more positions than one invocation starts goes on through continuation events, one segment
 * after another (services/margin-check.ts). Found by an audit of margin-check in session 36: a duplicate delivery
 * of the tick's own event (EventBridge is at-least-once) arriving while its chain ran found the tick pending, took
 * itself for a retry and started a second chain, whose every segment found its number claimed and re-sent all the
 * tick had started: messages growing with the square of the tick's size (240 for 60 liquidations here).
 */
it("a duplicate of a tick's event during its continuation chain sends nothing twice", async () => {
  const p = createPipeline({ maxPositionsPerInvocation: 10 });
  await p.tick('ETH-USD', '200'); // a market's first print waits for a second
  await p.tick('ETH-USD', '200.5');
  for (let i = 0; i < 60; i++) await p.open('LONG', '1', '200', String(1 + (i % 4)));
  let sent = 0;
  const send = p.adapters.liquidationQueue.sendBatch.bind(p.adapters.liquidationQueue);
  p.adapters.liquidationQueue.sendBatch = async (bodies) => {
    sent += bodies.length;
    return send(bodies);
  };
  const tick = {
    symbol: 'ETH-USD',
    markPrice: parsePrice('196'),
    timestampMs: p.clock.nowMs(),
    sequence: 3,
    source: 'feed',
  };
  const now = p.clock.nowMs();
  // The chain: segment 0, then 1 ...
  expect(await handleTick(tick, p.marginDeps, now, 0)).toMatchObject({ needsContinuation: true });
  expect(await handleTick(tick, p.marginDeps, now, 1)).toMatchObject({ needsContinuation: true });
  // ... when segment 0's event is delivered again: nothing to do, and no second chain.
  expect(await handleTick(tick, p.marginDeps, now, 0)).toMatchObject({
    status: 'rejected',
    reason: 'tick/continuation-done',
  });
  // So is segment 1's, once segment 2 was claimed. (One of segment 1 before that is taken for its retry, whose
  // invocation may have died before sending: it re-sends what the tick started, as it must.)
  let outcome = await handleTick(tick, p.marginDeps, now, 2);
  expect(await handleTick(tick, p.marginDeps, now, 1)).toMatchObject({ reason: 'tick/continuation-done' });
  for (let segment = 3; outcome.status === 'accepted' && outcome.needsContinuation; segment++)
    outcome = await handleTick(tick, p.marginDeps, now, segment);
  const started = await p.adapters.liquidations.listByTick('ETH-USD#3');
  expect(started).toHaveLength(60);
  expect(sent).toBe(60);
  expect((await p.adapters.markets.get('ETH-USD'))?.pendingSequence).toBeUndefined();
});
