import { describe, expect, it } from 'vitest';
import { METRICS } from '../../shared/metrics.ts';
import type { LiquidationRecord } from '../../shared/ports/index.ts';
import {
  auctionStalled,
  RESEND_AGAIN_AFTER_MS,
  RESEND_COUNTED_WITHIN_MS,
  RESEND_DELAY_SECONDS,
  STEP_STALL_MARGIN_MS,
  watchLiquidations,
} from '../../shared/services/liquidation-watch.ts';
import { auctionRecord } from '../support/auction-records.ts';
import { crashOnceAt, createPipeline, type Pipeline, RecordingTelemetry } from '../support/pipeline.ts';

/**
 * Several paths leave a running auction with no step message (review43c-slow-commit-resend's "Left": a step commit
 * that outlasts its early-message window and whose delivery then dies before its resend; a purge; a dead letter
 * SQS deleted). Only liquidation-watch saw one, as overdue an hour or more later, and an operator had to resend it
 * (watch43-stalled-auction). The watch now sends a stalled step again itself.
 */

describe('auctionStalled: a running step due more than the margin ago', () => {
  const due = 10_000_000;
  it('is stalled only past the margin, only while running, only with a due time', () => {
    expect(auctionStalled({ state: 'RUNNING', stepDueAtMs: due }, due)).toBe(false);
    expect(auctionStalled({ state: 'RUNNING', stepDueAtMs: due }, due + STEP_STALL_MARGIN_MS)).toBe(false);
    expect(auctionStalled({ state: 'RUNNING', stepDueAtMs: due }, due + STEP_STALL_MARGIN_MS + 1)).toBe(true);
    expect(auctionStalled({ state: 'CLEARED', stepDueAtMs: due }, due + STEP_STALL_MARGIN_MS + 1)).toBe(
      false,
    );
    expect(auctionStalled({ state: 'EXHAUSTED', stepDueAtMs: due }, due + STEP_STALL_MARGIN_MS + 1)).toBe(
      false,
    );
    // A record of an earlier version: left to the overdue report.
    expect(auctionStalled({ state: 'RUNNING' }, Number.MAX_SAFE_INTEGER)).toBe(false);
  });

  it('waits past SQS longest delay', () => {
    expect(STEP_STALL_MARGIN_MS).toBeGreaterThanOrEqual(900_000);
  });
});

/** A sleeping auction whose step message the queue lost, received once due and deleted. */
async function stalledAuction(options: Parameters<typeof createPipeline>[0] = {}) {
  const p: Pipeline = createPipeline(options);
  await p.fund('10000');
  await p.tick('ETH-USD', '200');
  await p.tick('ETH-USD', '200');
  await p.open('LONG', '10', '200', '200'); // bankrupt at 180
  await p.provider('lp-1', '100000', '0.05', '100'); // takes at 5 % under the mark
  p.venue.faults.emptyBooks.add('ETH-USD'); // the market takes nothing: the slice goes to the auction
  await p.tick('ETH-USD', '175');
  await p.runUntil(p.clock.nowMs());
  const [liquidation] = p.adapters.liquidations.all();
  expect(liquidation?.state).toBe('AUCTION');
  const auctionId = `${liquidation!.id}:auction`;
  const watch = async () => {
    const telemetry = new RecordingTelemetry();
    const report = await watchLiquidations(
      p.adapters.liquidations,
      p.config,
      p.clock.nowMs(),
      telemetry,
      20,
      {
        resend: {
          auctions: p.adapters.auctions,
          markets: p.adapters.markets,
          auctionQueue: p.adapters.auctionQueue,
        },
      },
    );
    // Counted by the delivery that takes the step with the resend (so far), none by the watch.
    expect(telemetry.marketCounts.get(`${METRICS.AuctionStepsResent.name}@ETH-USD`)).toBeUndefined();
    return { resent: report.resent, counted: resentCounted(p) };
  };
  // Asleep, its step due ahead: not touched.
  const asleep = await p.adapters.auctions.get(auctionId);
  expect(asleep?.state).toBe('RUNNING');
  expect(asleep!.stepDueAtMs!).toBeGreaterThan(p.clock.nowMs());
  expect(await watch()).toEqual({ resent: 0, counted: undefined });
  expect(await p.adapters.auctionQueue.depth()).toMatchObject({ visible: 0 });
  // The step's message is lost: received once due, then deleted.
  let lost: readonly { receiptHandle: string }[] = [];
  for (let i = 0; i < 1000 && lost.length === 0; i++) {
    p.clock.advance(1_000);
    lost = await p.adapters.auctionQueue.receive(10, 30);
  }
  expect(lost).toHaveLength(1);
  for (const m of lost) await p.adapters.auctionQueue.delete(m.receiptHandle);
  const stalled = await p.adapters.auctions.get(auctionId);
  expect(stalled?.step).toBe(asleep?.step);
  return { p, auctionId, liquidationId: liquidation!.id, dueAtMs: stalled!.stepDueAtMs!, watch };
}

const resentCounted = (p: Pipeline) =>
  p.telemetry.marketCounts.get(`${METRICS.AuctionStepsResent.name}@ETH-USD`);

const queued = async (p: Pipeline) => {
  const d = await p.adapters.auctionQueue.depth();
  return d.visible + d.inFlight + d.delayed;
};

describe('liquidation-watch: a running auction whose step message was lost', () => {
  it('is sent its step again once overdue past the margin, and its lot then clears', async () => {
    const { p, auctionId, liquidationId, dueAtMs, watch } = await stalledAuction();
    // Overdue by the margin, no more (the mark kept fresh by the feed): not touched.
    p.clock.set(dueAtMs + STEP_STALL_MARGIN_MS);
    await p.tick('ETH-USD', '175');
    expect(await watch()).toEqual({ resent: 0, counted: undefined });
    expect(await queued(p)).toBe(0);
    p.clock.advance(1);
    await p.tick('ETH-USD', '175');
    expect(await watch()).toEqual({ resent: 1, counted: undefined });
    expect(await queued(p)).toBe(1);
    await p.drain();
    expect((await p.adapters.auctions.get(auctionId))?.state).toBe('CLEARED');
    expect((await p.adapters.liquidations.get(liquidationId))?.state).toMatch(/^SETTLED_/);
    // Nothing left to heal; the resend took the step, counted once.
    expect(await watch()).toEqual({ resent: 0, counted: 1 });
  });

  it("is not sent again while its market's mark is stale, and is once the feed is back", async () => {
    const { p, auctionId, dueAtMs, watch } = await stalledAuction({ marks: 'as-configured' }); // 120 s at most
    // No tick since: the mark is stale (its own message would wait for a fresh one; a resend each run would pile
    // twins waiting beside it).
    p.clock.set(dueAtMs + STEP_STALL_MARGIN_MS + 60_000);
    expect(await watch()).toEqual({ resent: 0, counted: undefined });
    expect(await queued(p)).toBe(0);
    await p.tick('ETH-USD', '175');
    expect(await watch()).toEqual({ resent: 1, counted: undefined });
    await p.drain();
    expect((await p.adapters.auctions.get(auctionId))?.state).toBe('CLEARED');
    expect(resentCounted(p)).toBe(1);
  });

  it('a resend that meets a mark gone stale since is counted once, not at each of its looks for a fresh one (final44-resent-stale-once)', async () => {
    const { p, auctionId, dueAtMs, watch } = await stalledAuction({ marks: 'as-configured' }); // 120 s at most
    p.clock.set(dueAtMs + STEP_STALL_MARGIN_MS + 60_000);
    await p.tick('ETH-USD', '175');
    // The mark 70 s old: fresh at the watch's run, stale (130 s and more) when the resend comes, 60 s later.
    p.clock.advance(70_000);
    expect(await watch()).toEqual({ resent: 1, counted: undefined });
    // It looks at 60, 90, 120 and 150 s, within RESEND_COUNTED_WITHIN_MS of its due time, and waits each time.
    await p.runUntil(p.clock.nowMs() + 150_000);
    expect(p.telemetry.total(METRICS.StaleMarkWaits.name)).toBeGreaterThanOrEqual(4);
    expect((await p.adapters.auctions.get(auctionId))?.state).toBe('RUNNING');
    await p.tick('ETH-USD', '175');
    await p.drain();
    expect((await p.adapters.auctions.get(auctionId))?.state).toBe('CLEARED');
    // Before: once a look (each delivery of the message sent back still said `resent`), 6 for one lost message.
    expect(resentCounted(p)).toBe(1);
  });
});

describe('liquidation-watch: many stalled auctions', () => {
  it('reads their auctions several at a time, not one after another, and sends each step once', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '200'); // a market's first print waits for a second
    await p.tick('ETH-USD', '200');
    const now = p.clock.nowMs();
    const count = 40;
    // Only what the watch reads of them: in AUCTION, started 20 minutes ago (too young to be judged overdue).
    const liquidations = Array.from(
      { length: count },
      (_, i) =>
        ({
          id: `l${i}:0`,
          state: 'AUCTION',
          symbol: 'ETH-USD',
          history: [{ state: 'AUCTION', atMs: now - 1_200_000 }],
        }) as unknown as LiquidationRecord,
    );
    let reading = 0;
    let most = 0;
    const auctions = {
      get: async (id: string) => {
        reading += 1;
        most = Math.max(most, reading);
        await new Promise((resolve) => setImmediate(resolve));
        reading -= 1;
        return auctionRecord(id, { stepDueAtMs: now - STEP_STALL_MARGIN_MS - 1 });
      },
      claimStepResend: async (id: string) => `claim-${id}`,
      giveBackStepResend: async () => true,
    };
    const sent: string[] = [];
    const report = await watchLiquidations(
      {
        openStartedBefore: async function* () {
          yield { records: liquidations, next: { shard: 0 } };
        },
      },
      p.config,
      now,
      new RecordingTelemetry(),
      20,
      {
        resend: {
          auctions,
          markets: p.adapters.markets,
          auctionQueue: { send: async (body: string) => void sent.push(body) },
        },
      },
    );
    expect(most).toBeGreaterThan(1);
    expect(most).toBeLessThanOrEqual(16);
    expect(report.resent).toBe(count);
    expect(new Set(sent).size).toBe(count);
  });
});

describe('liquidation-watch: a step whose own message waits for a fresh mark (review43e-feed-back-resend)', () => {
  it('is no lost step: the feed back, its waiting message takes it, and nothing counts as sent again', async () => {
    const p = createPipeline({ marks: 'as-configured' }); // 120 s at most
    await p.fund('10000');
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    await p.open('LONG', '10', '200', '200');
    await p.provider('lp-1', '100000', '0.05', '100');
    p.venue.faults.emptyBooks.add('ETH-USD');
    await p.tick('ETH-USD', '175');
    await p.runUntil(p.clock.nowMs());
    const [liquidation] = p.adapters.liquidations.all();
    const auctionId = `${liquidation!.id}:auction`;
    const asleep = await p.adapters.auctions.get(auctionId);
    // The feed stops: the step's own message, due, waits for a fresh mark (a look every 30 s) past the margin.
    await p.runUntil(asleep!.stepDueAtMs! + STEP_STALL_MARGIN_MS + 60_000);
    expect((await p.adapters.auctions.get(auctionId))?.step).toBe(asleep?.step);
    expect(await queued(p)).toBe(1);
    // The feed is back, and the watch runs before that message's next look.
    await p.tick('ETH-USD', '175');
    const telemetry = new RecordingTelemetry();
    await watchLiquidations(p.adapters.liquidations, p.config, p.clock.nowMs(), telemetry, 20, {
      resend: {
        auctions: p.adapters.auctions,
        markets: p.adapters.markets,
        auctionQueue: p.adapters.auctionQueue,
      },
    });
    await p.drain();
    expect((await p.adapters.auctions.get(auctionId))?.state).toBe('CLEARED');
    // Its own message took the step (any twin found it taken): no lost message to page about.
    const resentCount = (t: RecordingTelemetry) =>
      t.marketCounts.get(`${METRICS.AuctionStepsResent.name}@ETH-USD`) ?? 0;
    expect(resentCount(telemetry) + resentCount(p.telemetry)).toBe(0);
    expect(p.telemetry.warnings).not.toContain('auction step stalled: the message sent again took it');
  });
});

describe('liquidation-watch: a step sent again is not sent again each run (watch44-resend-once)', () => {
  it('while its resend waits (a consumer behind), later runs send nothing; long after, still stalled, once more', async () => {
    const { p, auctionId, dueAtMs, watch } = await stalledAuction();
    p.clock.set(dueAtMs + STEP_STALL_MARGIN_MS + 1);
    await p.tick('ETH-USD', '175');
    const firstAtMs = p.clock.nowMs();
    expect(await watch()).toEqual({ resent: 1, counted: undefined });
    expect((await p.adapters.auctions.get(auctionId))?.stepResent).toEqual({
      step: (await p.adapters.auctions.get(auctionId))?.step,
      atMs: firstAtMs,
      claimer: expect.any(String),
    });
    // The consumer takes nothing: each run (every 5 minutes) finds the step still stalled and sends no twin.
    while (p.clock.nowMs() + 300_000 < firstAtMs + RESEND_AGAIN_AFTER_MS) {
      p.clock.advance(300_000);
      await p.tick('ETH-USD', '175');
      expect((await watch()).resent).toBe(0);
    }
    expect(await queued(p)).toBe(1);
    // The resend was lost too: long after it, the step still stalled, it is sent once more, and the lot clears.
    const resend = await p.adapters.auctionQueue.receive(10, 30);
    for (const m of resend) await p.adapters.auctionQueue.delete(m.receiptHandle);
    p.clock.set(firstAtMs + RESEND_AGAIN_AFTER_MS + 1);
    await p.tick('ETH-USD', '175');
    expect(await watch()).toEqual({ resent: 1, counted: undefined });
    expect(await watch()).toEqual({ resent: 0, counted: undefined });
    await p.drain();
    expect((await p.adapters.auctions.get(auctionId))?.state).toBe('CLEARED');
    expect(resentCounted(p)).toBe(1);
  });

  it('a send that fails gives its claim back: the next run sends it', async () => {
    const { p, auctionId, dueAtMs } = await stalledAuction();
    p.clock.set(dueAtMs + STEP_STALL_MARGIN_MS + 1);
    await p.tick('ETH-USD', '175');
    const run = (send: (body: string, delaySeconds?: number) => Promise<void>) =>
      watchLiquidations(p.adapters.liquidations, p.config, p.clock.nowMs(), new RecordingTelemetry(), 20, {
        resend: { auctions: p.adapters.auctions, markets: p.adapters.markets, auctionQueue: { send } },
      });
    const failed = await run(async () => {
      throw new Error('sqs unavailable');
    });
    expect(failed.resent).toBe(0);
    p.clock.advance(300_000);
    await p.tick('ETH-USD', '175');
    const next = await run((body, delaySeconds) => p.adapters.auctionQueue.send(body, delaySeconds));
    expect(next.resent).toBe(1);
    await p.drain();
    expect((await p.adapters.auctions.get(auctionId))?.state).toBe('CLEARED');
  });

  it('a give-back that fails is logged at WARN with the auction and the reason', async () => {
    const { p, auctionId, dueAtMs } = await stalledAuction();
    p.clock.set(dueAtMs + STEP_STALL_MARGIN_MS + 1);
    await p.tick('ETH-USD', '175');
    const warned: { message: string; fields?: Record<string, unknown> }[] = [];
    const telemetry = new (class extends RecordingTelemetry {
      override warn(message: string, fields?: Record<string, unknown>): void {
        super.warn(message);
        warned.push({ message, ...(fields ? { fields } : {}) });
      }
    })();
    const auctions = {
      get: (id: string) => p.adapters.auctions.get(id),
      claimStepResend: (id: string, step: number, atMs: number, lastBeforeMs: number) =>
        p.adapters.auctions.claimStepResend(id, step, atMs, lastBeforeMs),
      giveBackStepResend: async () => {
        throw new Error('dynamodb throttled');
      },
    };
    await watchLiquidations(p.adapters.liquidations, p.config, p.clock.nowMs(), telemetry, 20, {
      resend: {
        auctions,
        markets: p.adapters.markets,
        auctionQueue: {
          send: async () => {
            throw new Error('sqs unavailable');
          },
        },
      },
    });
    const giveBack = warned.find((w) => w.fields?.auctionId === auctionId && w.message.includes('give'));
    expect(giveBack?.fields).toMatchObject({ auctionId, reason: 'dynamodb throttled' });
    // The send's failure is still the one reported for the liquidation.
    expect(telemetry.warnings).toContain('stalled auction step not sent again');
  });
});

describe("liquidation-watch: a failed send gives back this run's claim only (watch46-give-back-own)", () => {
  it("another run's claim stored since stands: the next run sends no twin of its resend", async () => {
    const { p, auctionId, dueAtMs, watch } = await stalledAuction();
    p.clock.set(dueAtMs + STEP_STALL_MARGIN_MS + 60_001);
    await p.tick('ETH-USD', '175');
    const nowMs = p.clock.nowMs();
    const telemetry = new RecordingTelemetry();
    const failed = await watchLiquidations(p.adapters.liquidations, p.config, nowMs, telemetry, 20, {
      resend: {
        auctions: p.adapters.auctions,
        markets: p.adapters.markets,
        auctionQueue: {
          send: async (body) => {
            // While the send fails, another run's claim replaces this one's: a run begun a minute earlier, of the
            // previous version (no token), once its put had dropped this run's claim (stored as it would store it).
            const current = (await p.adapters.auctions.get(auctionId))!;
            p.adapters.auctions.store({
              ...current,
              stepResent: { step: current.step, atMs: nowMs - 60_000 },
            });
            // Its resend is on the queue: its send went.
            await p.adapters.auctionQueue.send(body, RESEND_DELAY_SECONDS);
            throw new Error('sqs unavailable');
          },
        },
      },
    });
    expect(failed.resent).toBe(0);
    expect(telemetry.warnings).toContain('stalled auction step not sent again');
    // Before: given back (its time 0) though not this run's, and the next run sent the step again, a twin.
    const claim = (await p.adapters.auctions.get(auctionId))?.stepResent;
    expect(claim).toEqual({ step: claim?.step, atMs: nowMs - 60_000 });
    p.clock.advance(300_000);
    await p.tick('ETH-USD', '175');
    expect(await watch()).toEqual({ resent: 0, counted: undefined });
    expect(await queued(p)).toBe(1);
    await p.drain();
    expect((await p.adapters.auctions.get(auctionId))?.state).toBe('CLEARED');
  });
});

describe('liquidation-watch: AuctionStepsResent counts a lost step message, nothing else (watch44-resent-count)', () => {
  it('a resend taken long after its due time (a consumer behind: its own message may be alive behind it) counts nothing', async () => {
    const { p, auctionId, dueAtMs, watch } = await stalledAuction();
    p.clock.set(dueAtMs + STEP_STALL_MARGIN_MS + 1);
    await p.tick('ETH-USD', '175');
    expect(await watch()).toEqual({ resent: 1, counted: undefined });
    // Taken past RESEND_COUNTED_WITHIN_MS of its own due time.
    p.clock.advance(RESEND_DELAY_SECONDS * 1000 + RESEND_COUNTED_WITHIN_MS + 1_000);
    await p.tick('ETH-USD', '175');
    await p.drain();
    expect((await p.adapters.auctions.get(auctionId))?.state).toBe('CLEARED');
    expect(resentCounted(p)).toBeUndefined();
    // The consumer's lateness is paged as such (the step's), as for any late step.
    expect(
      p.telemetry.observations.some(
        (o) => o.metric === METRICS.AuctionStepLateness.name && o.value > STEP_STALL_MARGIN_MS / 1000,
      ),
    ).toBe(true);
  });

  it("a resend's redelivery that finishes the settlement its step left unfinished counts nothing more", async () => {
    const crash = crashOnceAt('transactor.commit');
    const { p, auctionId, dueAtMs, watch } = await stalledAuction({ crashHook: crash.hook });
    p.clock.set(dueAtMs + STEP_STALL_MARGIN_MS + 1);
    await p.tick('ETH-USD', '175');
    expect(await watch()).toEqual({ resent: 1, counted: undefined });
    // The resend takes the step and ends the auction; its delivery dies after the commit, before the settlement.
    crash.arm();
    await p.drain();
    expect(crash.crashed()).toBe(true);
    expect((await p.adapters.auctions.get(auctionId))?.state).toBe('CLEARED');
    // Its redelivery finished the settlement: one lost message, counted once.
    expect(resentCounted(p)).toBe(1);
  });
});

/** The metric's name as the alarm reads it (observe44-resend-failure-alarm). */
const RESEND_FAILURES = 'AuctionStepResendFailures';

describe('liquidation-watch: a stalled step it could not send again (observe44-resend-failure-alarm)', () => {
  it('is counted for its market (alarmed: the auction stays stalled), and a send that succeeds counts nothing', async () => {
    const { p, auctionId, dueAtMs } = await stalledAuction();
    p.clock.set(dueAtMs + STEP_STALL_MARGIN_MS + 1);
    await p.tick('ETH-USD', '175');
    const run = (
      telemetry: RecordingTelemetry,
      send: (body: string, delaySeconds?: number) => Promise<void>,
    ) =>
      watchLiquidations(p.adapters.liquidations, p.config, p.clock.nowMs(), telemetry, 20, {
        resend: { auctions: p.adapters.auctions, markets: p.adapters.markets, auctionQueue: { send } },
      });
    // Before, only a warning line said so: nothing paged until the liquidation was overdue, its tail and an hour on.
    const failing = new RecordingTelemetry();
    const failed = await run(failing, async () => {
      throw new Error('sqs unavailable');
    });
    expect(failed.resent).toBe(0);
    expect(failing.marketCounts.get(`${RESEND_FAILURES}@ETH-USD`)).toBe(1);
    expect(failing.total(RESEND_FAILURES)).toBe(1);
    expect(failing.warnings).toContain('stalled auction step not sent again');
    p.clock.advance(300_000);
    await p.tick('ETH-USD', '175');
    const healthy = new RecordingTelemetry();
    const next = await run(healthy, (body, delaySeconds) => p.adapters.auctionQueue.send(body, delaySeconds));
    expect(next.resent).toBe(1);
    expect(healthy.total(RESEND_FAILURES)).toBe(0);
    await p.drain();
    expect((await p.adapters.auctions.get(auctionId))?.state).toBe('CLEARED');
  });

  it('is a metric of the specs, counted per market', () => {
    expect(METRICS).toHaveProperty(RESEND_FAILURES);
    expect(METRICS[RESEND_FAILURES as keyof typeof METRICS]).toMatchObject({
      name: RESEND_FAILURES,
      kind: 'counter',
      unit: 'Count',
      byMarket: true,
    });
  });
});
