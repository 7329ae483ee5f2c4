import { expect, it } from 'vitest';
import { price } from '../../shared/domain/units.ts';
import type { LiquidationRecord, PositionRecord } from '../../shared/ports/index.ts';
import { handleTick, type MarginCheckDeps } from '../../shared/services/margin-check.ts';
import { createPipeline } from '../support/pipeline.ts';
import { pendingTick } from '../support/resume.ts';

/**
 * A rebase takes a pending tick of the old numbering over (services/margin-check.ts). A continuation of that tick,
 * retried once the new numbering has reached the same sequence and is pending there, is known by its stamp (at or
 * before the old numbering's end): it re-sends what it started instead of claiming a segment of the new tick
 * (review, session 34: it claimed one and skipped the re-send, so a liquidation it began before dying was never sent).
 */
it('a late continuation of a tick a rebase took over is not taken for the new tick numbered the same', async () => {
  const p = createPipeline({ marks: 'as-configured', maxPositionsPerInvocation: 1 });
  await p.tick('ETH-USD', '100', { sequence: 1000 });
  await p.tick('ETH-USD', '100', { sequence: 1001 });
  await p.open('LONG', '10', '100', '100');
  const b = await p.open('LONG', '10', '100', '100');
  // The old numbering's tick 1002 crosses both longs: its own invocation starts A, a continuation must start B.
  const old1002 = await pendingTick(p, '91', 1002);

  // The feed restarts at 995 (prints at 200); its held print waits for the old mark to go stale.
  p.clock.advance(121_000);
  expect(await p.tick('ETH-USD', '200', { sequence: 995 })).toMatchObject({ reason: 'tick/sequence-behind' });
  p.clock.advance(5_000);

  // The continuation (segment 1) of old 1002 runs late: it read the market (1002 pending) and claimed segment 1;
  // the rebasing print 996 lands meanwhile (takes 1002 over: re-sends what it started, A); then the continuation
  // begins B and dies before sending B's message.
  let rebased = false;
  let failSend = true;
  const continuationDeps: MarginCheckDeps = {
    ...p.marginDeps,
    positions: new Proxy(p.marginDeps.positions, {
      get(target, prop, receiver) {
        if (prop === 'queryCrossed')
          return async (...args: Parameters<typeof target.queryCrossed>) => {
            if (!rebased) {
              rebased = true;
              await p.tick('ETH-USD', '200', { sequence: 996 });
            }
            return target.queryCrossed(...args);
          };
        return Reflect.get(target, prop, receiver);
      },
    }),
    liquidationQueue: new Proxy(p.marginDeps.liquidationQueue, {
      get(target, prop, receiver) {
        if (prop === 'sendBatch')
          return async (bodies: readonly string[]) => {
            if (failSend) {
              failSend = false;
              throw new Error('crash before sending');
            }
            return target.sendBatch(bodies);
          };
        return Reflect.get(target, prop, receiver);
      },
    }),
  };
  await expect(handleTick(old1002, continuationDeps, p.clock.nowMs(), 1)).rejects.toThrow(
    'crash before sending',
  );
  expect((await p.adapters.markets.get('ETH-USD'))?.lastTick?.sequence).toBeLessThan(1002);
  expect((await p.adapters.positions.get(b.id))?.state).toBe('LIQUIDATING');

  // The new numbering goes on: 997 confirms the move to 200; a short opened there; its 1002 crosses the short.
  p.clock.advance(5_000);
  expect(await p.tick('ETH-USD', '200', { sequence: 997 })).toMatchObject({ status: 'accepted' });
  const d = await p.open('SHORT', '10', '200', '100');
  for (let s = 998; s <= 1001; s++) {
    p.clock.advance(1_000);
    expect(await p.tick('ETH-USD', '200', { sequence: s })).toMatchObject({ status: 'accepted' });
  }
  p.clock.advance(1_000);
  // EventBridge's retry of old 1002's segment 1 arrives while new 1002 is starting its liquidations (pending).
  let retried = false;
  const newDeps: MarginCheckDeps = {
    ...p.marginDeps,
    liquidations: new Proxy(p.marginDeps.liquidations, {
      get(target, prop, receiver) {
        if (prop === 'begin')
          return async (position: PositionRecord, liquidation: LiquidationRecord) => {
            if (!retried) {
              retried = true;
              expect((await p.adapters.markets.get('ETH-USD'))?.pendingSequence).toBe(1002);
              await handleTick(old1002, p.marginDeps, p.clock.nowMs(), 1);
            }
            return target.begin(position, liquidation);
          };
        return Reflect.get(target, prop, receiver);
      },
    }),
  };
  const new1002 = {
    symbol: 'ETH-USD',
    markPrice: price('206'),
    timestampMs: p.clock.nowMs(),
    sequence: 1002,
    source: 'new',
  };
  expect(await handleTick(new1002, newDeps, p.clock.nowMs())).toMatchObject({ status: 'accepted' });
  expect(retried).toBe(true);
  expect((await p.adapters.positions.get(d.id))?.state).toBe('LIQUIDATING');
  expect((await p.adapters.markets.get('ETH-USD'))?.pendingSequence).toBeUndefined();

  // Later prints of the new numbering.
  for (let s = 1003; s <= 1005; s++) {
    p.clock.advance(1_000);
    await p.tick('ETH-USD', '200', { sequence: s });
  }
  await p.drain();
  const lb = (await p.adapters.liquidations.listByTick('ETH-USD#1002')).find((l) => l.positionId === b.id);
  const report = await p.check();
  // Old 1002's retry, known by its stamp, re-sent what it started: B's liquidation ended (it stayed QUEUED with no
  // message for good before).
  expect(lb?.state).not.toBe('QUEUED');
  expect(report.violations).toEqual([]);
});
