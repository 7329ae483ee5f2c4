import { expect, it } from 'vitest';
import { parsePrice } from '../../shared/domain/units.ts';
import { handleTick, type MarginCheckDeps } from '../../shared/services/margin-check.ts';
import { createPipeline } from '../support/pipeline.ts';

/**
 * A tick that crosses more positions than one invocation starts goes on through continuation events, one segment
 * after another (services/margin-check.ts). Found by an audit of margin-check in session 36: a duplicate delivery
 * of the tick's own event (EventBridge is at-least-once) arriving while its chain ran found the tick pending, took
 * itself for a retry and started a second chain, whose every segment found its number claimed and re-sent all the
 * tick had started: messages growing with the square of the tick's size (240 for 60 liquidations here).
 */
/** Tick 3 of ETH-USD at 196: it crosses every long of the book (opened at 200 with 1 to 4 USD of collateral). */
const crossingTick = (p: ReturnType<typeof createPipeline>) => ({
  symbol: 'ETH-USD',
  markPrice: parsePrice('196'),
  timestampMs: p.clock.nowMs(),
  sequence: 3,
  source: 'feed',
});

it("a duplicate of a tick's event during its continuation chain starts no second chain", async () => {
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
  const tick = crossingTick(p);
  const now = p.clock.nowMs();
  const started = async () => (await p.adapters.liquidations.listByTick('ETH-USD#3')).length;
  // The chain: segment 0, then 1 ...
  expect(await handleTick(tick, p.marginDeps, now, 0)).toMatchObject({ needsContinuation: true });
  expect(await handleTick(tick, p.marginDeps, now, 1)).toMatchObject({ needsContinuation: true });
  // ... when segment 0's event is delivered again: it re-sends what the tick started once (the retry of a twin
  // that died may need it), and goes no further.
  let resent = await started();
  expect(await handleTick(tick, p.marginDeps, now, 0)).toMatchObject({
    status: 'rejected',
    reason: 'tick/continuation-done',
  });
  // So does segment 1's, once segment 2 was claimed. (One of segment 1 before that is taken for its retry, whose
  // invocation may have died before sending, and continues.)
  let outcome = await handleTick(tick, p.marginDeps, now, 2);
  resent += await started();
  expect(await handleTick(tick, p.marginDeps, now, 1)).toMatchObject({ reason: 'tick/continuation-done' });
  for (let segment = 3; outcome.status === 'accepted' && outcome.needsContinuation; segment++)
    outcome = await handleTick(tick, p.marginDeps, now, segment);
  expect(await started()).toBe(60);
  // Each liquidation sent once by the chain, and once more by each late duplicate: no chain re-sending the whole
  // tick at every segment (it was 240 messages).
  expect(sent).toBe(60 + resent);
  expect(resent).toBe(50);
  expect((await p.adapters.markets.get('ETH-USD'))?.pendingSequence).toBeUndefined();
});

/** A view of `target` whose `overrides` replace some methods (the others bound to it: private fields). */
function over<T extends object>(target: T, overrides: Partial<Record<keyof T, unknown>>): T {
  return new Proxy(target, {
    get(t, key) {
      if (key in overrides) return (overrides as Record<PropertyKey, unknown>)[key];
      const value = Reflect.get(t, key, t);
      return typeof value === 'function' ? value.bind(t) : value;
    },
  });
}

/**
 * The review of that fix found the twin's loss: two deliveries of segment 1 at once. A claims it, begins its page and
 * dies before sending; B, whose claim failed, re-sent the tick's started list before A's begins landed, then found
 * A's positions begun and skipped them, and continued (segment 2 claims). A's retry then finds a later segment
 * claimed: it must still re-send what the tick started, or A's liquidations stay QUEUED with no message.
 */
it('a retry of a segment whose twin continued past it still re-sends what the dead delivery began', async () => {
  const p = createPipeline({ maxPositionsPerInvocation: 10 });
  await p.tick('ETH-USD', '200');
  await p.tick('ETH-USD', '200.5');
  for (let i = 0; i < 30; i++) await p.open('LONG', '1', '200', String(1 + (i % 4)));
  const tick = crossingTick(p);
  const now = p.clock.nowMs();
  const base = p.marginDeps;
  expect(await handleTick(tick, base, now, 0)).toMatchObject({ needsContinuation: true });

  // Each delivery stops at its first begin until released: A's begins land, then B's.
  const gate = () => {
    let reach = () => {};
    let release = () => {};
    const reached = new Promise<void>((resolve) => (reach = resolve));
    const released = new Promise<void>((resolve) => (release = resolve));
    return { reach: () => reach(), reached, release: () => release(), released };
  };
  const [gateA, gateB] = [gate(), gate()];
  const liquidations = base.liquidations;
  const beginAfter =
    (g: ReturnType<typeof gate>) =>
    async (...args: Parameters<typeof liquidations.begin>) => {
      g.reach();
      await g.released;
      return liquidations.begin(...args);
    };
  const depsA: MarginCheckDeps = {
    ...base,
    liquidations: over(liquidations, { begin: beginAfter(gateA) }),
    liquidationQueue: over(base.liquidationQueue, {
      sendBatch: async () => {
        throw new Error('A dies before sending its batch');
      },
    }),
  };
  const depsB: MarginCheckDeps = { ...base, liquidations: over(liquidations, { begin: beginAfter(gateB) }) };
  const a = handleTick(tick, depsA, now, 1).catch((error: Error) => error);
  await gateA.reached; // A claimed segment 1 and read its page
  const b = handleTick(tick, depsB, now, 1); // its claim fails: it re-sends the started list (A's not begun yet)
  await gateB.reached;
  gateA.release();
  expect(await a).toBeInstanceOf(Error);
  gateB.release();
  expect(await b).toMatchObject({ status: 'accepted', needsContinuation: true });
  let outcome = await handleTick(tick, base, now, 2); // B's continuation claims
  // A's retry (Lambda's retry of the failed invocation):
  expect(await handleTick(tick, base, now, 1)).toMatchObject({ reason: 'tick/continuation-done' });
  for (let segment = 3; outcome.status === 'accepted' && outcome.needsContinuation; segment++)
    outcome = await handleTick(tick, base, now, segment);
  expect((await p.adapters.markets.get('ETH-USD'))?.pendingSequence).toBeUndefined();
  await p.drain();
  expect(p.adapters.liquidations.all().filter((l) => l.state === 'QUEUED')).toEqual([]);
  expect(p.adapters.liquidations.all()).toHaveLength(30);
});
