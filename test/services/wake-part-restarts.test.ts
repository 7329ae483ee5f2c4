import { describe, expect, it } from 'vitest';
import { parseBase, parsePrice, price } from '../../shared/domain/units.ts';
import { METRICS } from '../../shared/metrics.ts';
import { isRegistrationWakeMessage } from '../../shared/ports/index.ts';
import { parseAuctionQueueMessage } from '../../shared/schemas/messages.ts';
import { handleAdmin } from '../../shared/services/admin.ts';
import { REGISTRATION_WAKES_PER_PART } from '../../shared/services/registration-wake.ts';
import { SPENT_WAKES_PER_DELIVERY, wakeContinuationOf } from '../../shared/services/sleeping.ts';
import { IN_ORDER_PART_MS, WAKE_RETRY_DELAY_SECONDS } from '../../shared/services/wake.ts';
import { auctionRecord } from '../support/auction-records.ts';
import { createPipeline, type Pipeline } from '../support/pipeline.ts';

/**
 * wake-part-restarts (session 42): a part of a wake (up to 1,000 sleepers, 100 SendMessageBatch calls) failed whole
 * when one send failed, and kept nothing: its retry began it again from its first sleeper. With one send in 37
 * failing (each call failing whole, sending nothing), every part met a failure and no wake ever finished; now each
 * delivery keeps the prefix that went, and the wake finishes in a few more deliveries than it has parts. Session 43:
 * such a delivery no longer fails (its continuation goes on from the prefix: wakes43-progress-retried), and each
 * sleeper is counted once (wakes43-count-once).
 */

const SLEEPERS = 2_500;
const FAIL_EVERY = 37;
/** Deliveries, retries included, that a wake of SLEEPERS must finish within (3 parts without failures). */
const MAX_DELIVERIES = 15;

/** SLEEPERS sleepers of ETH-USD: two SELL in three (more than a part), in groups of 7 equal wake marks. */
async function sleeping(p: Pipeline): Promise<void> {
  for (let i = 0; i < SLEEPERS; i++)
    await p.adapters.auctions.create(
      auctionRecord(`s-${i}`, {
        direction: i % 3 === 0 ? 'BUY' : 'SELL',
        wakeMark: price(String(150 + Math.floor(i / 7))),
      }),
    );
}

/**
 * Every `every`-th SendMessageBatch call on the auction queue fails whole (a throttled call), as the AWS adapter
 * meets it: a sendBatch sends its batches of 10 in turn and throws at the one that fails, sending no later one.
 */
function failingEvery(p: Pipeline, every = FAIL_EVERY): { failed: () => number } {
  const queue = p.adapters.auctionQueue;
  const sendBatch = queue.sendBatch.bind(queue);
  let calls = 0;
  queue.sendBatch = async (bodies) => {
    for (let at = 0; at < bodies.length; at += 10) {
      calls += 1;
      if (calls % every === 0) throw new Error('ServiceUnavailable');
      await sendBatch(bodies.slice(at, at + 10));
    }
  };
  return { failed: () => Math.floor(calls / every) };
}

/** Every message on the auction queue, taken off it: the woken steps counted per auction, the others returned. */
async function takeAll(p: Pipeline, woken: Map<string, number>): Promise<string[]> {
  const rest: string[] = [];
  for (;;) {
    const batch = await p.adapters.auctionQueue.receive(10, 300);
    if (batch.length === 0) return rest;
    for (const m of batch) {
      await p.adapters.auctionQueue.delete(m.receiptHandle);
      const message = parseAuctionQueueMessage(m.body);
      if (!isRegistrationWakeMessage(message) && message.woken && message.step !== 0)
        woken.set(message.auctionId, (woken.get(message.auctionId) ?? 0) + 1);
      else rest.push(m.body);
    }
  }
}

/**
 * Delivers `body` to the auction function, again after each delivery that fails (SQS's redelivery), then each
 * message it leaves, those delayed once due (the clock moved on to them); returns the deliveries and the failed ones.
 */
async function deliverAll(
  p: Pipeline,
  body: string,
  woken: Map<string, number>,
  maxDeliveries = MAX_DELIVERIES,
): Promise<{ deliveries: number; failed: number }> {
  let left = [body];
  let deliveries = 0;
  let failed = 0;
  for (;;) {
    if (left.length === 0) {
      // A continuation after a part that met a failed send comes a little later (wakes43b).
      if ((await p.adapters.auctionQueue.depth()).delayed === 0) break;
      p.clock.advance(1000);
      left = await takeAll(p, woken);
      continue;
    }
    const [next, ...rest] = left;
    deliveries += 1;
    // Before the fix: every delivery failed (each part met a failing send), and its retry began the part again.
    if (deliveries > maxDeliveries) throw new Error(`not finished in ${maxDeliveries} deliveries`);
    const ok = await p.handlers
      .auction({ messageId: `d${deliveries}`, body: next!, receiptHandle: '', receiveCount: 1, sentAtMs: 0 })
      .then(
        () => true,
        () => false,
      );
    if (!ok) failed += 1;
    left = [...(ok ? rest : left), ...(await takeAll(p, woken))];
  }
  return { deliveries, failed };
}

/** lp1 registers on ETH-USD through the admin function: its wake of the sleepers begins in the call. */
const registerLp1 = (p: Pipeline) =>
  handleAdmin(
    {
      action: 'registerProvider',
      id: 'lp1',
      capital: '1000',
      maxDiscount: '0.02',
      maxLot: '5',
      symbols: ['ETH-USD'],
    },
    { ...p.adapters, config: p.config, telemetry: p.telemetry, nowMs: () => p.clock.nowMs() },
  );

const everyOnceAtLeast = (woken: Map<string, number>): void => {
  expect(woken.size).toBe(SLEEPERS);
};

/** An ended auction, 'payer', owing the wake of ETH-USD's sleepers (its deliveries fail while it owes it: SpentWakeOwedError); its continuation's body. */
async function endedPayer(p: Pipeline): Promise<string> {
  const payer = auctionRecord('payer', {
    step: 5,
    state: 'EXHAUSTED',
    endedBy: 'plan',
    spentIn: ['ETH-USD'],
  });
  await p.adapters.auctions.create(payer);
  return JSON.stringify(wakeContinuationOf(payer));
}

const sent = (woken: Map<string, number>): number => [...woken.values()].reduce((a, b) => a + b, 0);

describe('a wake whose sends partly fail goes on from the prefix that went (wake-part-restarts)', () => {
  it("a spent provider's wake in parts, one send in 37 failing: it finishes in a bounded number of retries", async () => {
    const p = createPipeline();
    await sleeping(p);
    const payerWake = await endedPayer(p);
    const faults = failingEvery(p);
    const woken = new Map<string, number>();
    const { deliveries, failed } = await deliverAll(p, payerWake, woken);
    everyOnceAtLeast(woken);
    expect((await p.adapters.auctions.get('payer'))?.spentIn).toBeUndefined();
    // Each part that failed after some sends went on in a continuation: no delivery failed (wakes43-progress-retried).
    // Before: 9 of 10 deliveries failed, the payer's message received 10 times (dead-lettered at maxReceiveCount, 5).
    expect(faults.failed()).toBeGreaterThan(5);
    expect(failed).toBe(0);
    expect(deliveries).toBeLessThanOrEqual(Math.ceil(SLEEPERS / SPENT_WAKES_PER_DELIVERY) + faults.failed());
    // Each sleeper counted once, though the messages sent past a failed part's cursor went again (wakes43-count-once).
    // Before: every message counted, 3,530 for the 2,500 sleepers.
    expect(sent(woken)).toBeGreaterThan(SLEEPERS);
    expect(p.telemetry.marketCounts.get(`${METRICS.AuctionsWoken.name}@ETH-USD`)).toBe(SLEEPERS);
    expect(p.telemetry.marketCounts.get(`${METRICS.AuctionWakeFailures.name}@ETH-USD`)).toBe(faults.failed());
  });

  it("a registration's wake, one send in 37 failing: the answer counts what went, the continuations finish it", async () => {
    const p = createPipeline();
    await sleeping(p);
    const faults = failingEvery(p);
    const answer = await registerLp1(p);
    const woken = new Map<string, number>();
    // After a part that met a failed send, its continuation comes a little later (wakes43b).
    expect(await takeAll(p, woken)).toEqual([]);
    p.clock.advance(WAKE_RETRY_DELAY_SECONDS * 1000);
    const [continuation, ...others] = await takeAll(p, woken);
    expect(others).toEqual([]);
    // The 37th send failed: the 36 batches before it went, so did those in flight, which the continuation sends
    // again. The answer counts the 360 up to the cursor it recorded (before: all that went, 490, and the continuation
    // counted the 130 again: wakes43-count-once; session 41, none).
    expect(answer).toMatchObject({
      ok: true,
      woken: 360,
      wakeContinues: ['ETH-USD'],
      wakeError: 'ETH-USD SELL sleepers: ServiceUnavailable',
    });
    expect(sent(woken)).toBeGreaterThan(360);
    expect((await p.adapters.markets.get('ETH-USD'))?.registrationWake?.wokenTo?.id).toBeDefined();

    const { deliveries, failed } = await deliverAll(p, continuation!, woken);
    everyOnceAtLeast(woken);
    expect((await p.adapters.markets.get('ETH-USD'))?.registrationWake).toMatchObject({ done: true });
    // Each part that failed after some sends went on in a continuation (before: 8 of 9 deliveries failed).
    expect(faults.failed()).toBeGreaterThan(5);
    expect(failed).toBe(0);
    expect(deliveries).toBeLessThanOrEqual(
      Math.ceil(SLEEPERS / REGISTRATION_WAKES_PER_PART) + faults.failed(),
    );
    expect(sent(woken)).toBeGreaterThan(SLEEPERS);
    expect(p.telemetry.marketCounts.get(`${METRICS.AuctionsWoken.name}@ETH-USD`)).toBe(SLEEPERS);
  });

  it("a tick's wake whose sends partly fail counts those sent and keeps the wake mark for the next tick", async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '200');
    const count = 45;
    for (let i = 0; i < count; i++) {
      const wakeMark = parsePrice('201') + BigInt(i);
      await p.adapters.auctions.create(
        auctionRecord(`a-${String(i).padStart(4, '0')}`, { lot: parseBase('1'), wakeMark }),
      );
      await p.adapters.markets.coverWakeMark('ETH-USD', 'SELL', wakeMark);
    }
    const queue = p.adapters.auctionQueue;
    const sendBatch = queue.sendBatch.bind(queue);
    let failing = true;
    // The batch of the 11th to the 20th sleeper fails.
    queue.sendBatch = async (bodies) => {
      if (failing && bodies.some((b) => b.includes('"a-0010"'))) throw new Error('ServiceUnavailable');
      await sendBatch(bodies);
    };
    const before = (await p.adapters.markets.get('ETH-USD'))?.wakeMarks?.SELL;
    await p.tick('ETH-USD', '210');
    const woken = new Map<string, number>();
    await takeAll(p, woken);
    expect(woken.size).toBe(count - 10);
    // Before: none counted, though 35 went.
    expect(p.telemetry.total(METRICS.AuctionsWoken.name)).toBe(count - 10);
    expect(p.telemetry.total(METRICS.AuctionWakeFailures.name)).toBe(1);
    expect((await p.adapters.markets.get('ETH-USD'))?.wakeMarks?.SELL).toBe(before);
    // The next tick reaching it wakes the side again: the ten left out are woken.
    failing = false;
    await p.tick('ETH-USD', '210.5');
    await takeAll(p, woken);
    expect(woken.size).toBe(count);
    expect((await p.adapters.markets.get('ETH-USD'))?.wakeMarks).toBeUndefined();
  });

  it.each([
    { every: 5, case: 'one call in 5' },
    { every: 37, case: 'one call in 37' },
  ])("a spent provider's wake, $case failing: each message goes about once (wakes43b)", async ({ every }) => {
    const p = createPipeline();
    await sleeping(p);
    const payerWake = await endedPayer(p);
    const faults = failingEvery(p, every);
    const woken = new Map<string, number>();
    const startedAt = p.clock.nowMs();
    const { deliveries, failed } = await deliverAll(p, payerWake, woken, 1000);
    everyOnceAtLeast(woken);
    expect((await p.adapters.auctions.get('payer'))?.spentIn).toBeUndefined();
    expect(failed).toBe(0);
    expect(faults.failed()).toBeGreaterThan(5);
    // The first part sends 25 calls at once: those past its failed one went, and go again with the next part. Each
    // part after it sends a call at a time and stops at its first failure, so nothing past it goes. Before: 21,128
    // messages with one call in 5 failing (2,660 now), 3,530 with one in 37 (2,630 now).
    expect(sent(woken)).toBeLessThanOrEqual(SLEEPERS + 24 * 10);
    expect(p.telemetry.marketCounts.get(`${METRICS.AuctionsWoken.name}@ETH-USD`)).toBe(SLEEPERS);
    // Every part but the last failed, each counted once, and the part after each came 5 s later (before: at once).
    expect(p.telemetry.marketCounts.get(`${METRICS.AuctionWakeFailures.name}@ETH-USD`)).toBe(deliveries - 1);
    expect(p.clock.nowMs() - startedAt).toBeGreaterThanOrEqual(
      (deliveries - 1) * WAKE_RETRY_DELAY_SECONDS * 1000,
    );
  });

  it("a spent provider's wake on a slow SQS: a part sent a batch at a time stops beginning calls after IN_ORDER_PART_MS (review43c-in-order-part-time)", async () => {
    const p = createPipeline();
    await sleeping(p);
    const payerWake = await endedPayer(p);
    // One call in 150 fails; each takes 200 ms (throttled, retried by the SDK), after its predecessor when in order.
    const faults = failingEvery(p, 150);
    const queue = p.adapters.auctionQueue;
    const sendBatch = queue.sendBatch.bind(queue);
    queue.sendBatch = async (bodies) => {
      p.clock.advance(200 * Math.ceil(bodies.length / 10));
      return sendBatch(bodies);
    };
    // How long each delivery of a part sent in order (its record marked by a failed part) took.
    const inOrderMs: number[] = [];
    const auction = p.handlers.auction.bind(p.handlers);
    p.handlers.auction = async (message) => {
      const inOrder = (await p.adapters.auctions.get('payer'))?.spentWakeSendFailed === true;
      const startedAt = p.clock.nowMs();
      try {
        return await auction(message);
      } finally {
        if (inOrder) inOrderMs.push(p.clock.nowMs() - startedAt);
      }
    };
    const woken = new Map<string, number>();
    const { failed } = await deliverAll(p, payerWake, woken, 1000);
    everyOnceAtLeast(woken);
    expect((await p.adapters.auctions.get('payer'))?.spentIn).toBeUndefined();
    expect(failed).toBe(0);
    expect(faults.failed()).toBeGreaterThan(0);
    expect(inOrderMs.length).toBeGreaterThan(0);
    // Before: the part after the failed one made its 100 calls one after another, 20 s of the step delivery it runs
    // in (the auction function has 60 s, a step begun with 20 s left); 25 in flight, they take a few calls' time.
    expect(Math.max(...inOrderMs)).toBeLessThanOrEqual(IN_ORDER_PART_MS + 200);
    expect(p.telemetry.marketCounts.get(`${METRICS.AuctionsWoken.name}@ETH-USD`)).toBe(SLEEPERS);
  });

  it("a registration's wake, one call in 5 failing: its continuations send in order after a failed part (wakes43b)", async () => {
    const p = createPipeline();
    await sleeping(p);
    const faults = failingEvery(p, 5);
    const answer = await registerLp1(p);
    expect(answer).toMatchObject({ ok: true, wakeContinues: ['ETH-USD'] });
    expect((await p.adapters.markets.get('ETH-USD'))?.registrationWake?.sendFailed).toBe(true);
    const woken = new Map<string, number>();
    p.clock.advance(WAKE_RETRY_DELAY_SECONDS * 1000);
    const [continuation] = await takeAll(p, woken);
    const { failed } = await deliverAll(p, continuation!, woken, 1000);
    everyOnceAtLeast(woken);
    expect((await p.adapters.markets.get('ETH-USD'))?.registrationWake).toEqual(
      expect.objectContaining({ done: true }),
    );
    expect((await p.adapters.markets.get('ETH-USD'))?.registrationWake?.sendFailed).toBeUndefined();
    expect(failed).toBe(0);
    expect(faults.failed()).toBeGreaterThan(5);
    // The admin call's part sent 25 calls at once; the continuations, one at a time.
    expect(sent(woken)).toBeLessThanOrEqual(SLEEPERS + 24 * 10);
    expect(p.telemetry.marketCounts.get(`${METRICS.AuctionsWoken.name}@ETH-USD`)).toBe(SLEEPERS);
  });

  it.each(['spent', 'registration'] as const)(
    "a %s wake's part that fails after some sends, whose continuation cannot be sent either, counts one failure (wakes43b)",
    async (kind) => {
      const p = createPipeline();
      await sleeping(p);
      let body: string;
      if (kind === 'spent') {
        body = await endedPayer(p);
      } else {
        await registerLp1(p);
        [body] = (await takeAll(p, new Map())) as [string];
      }
      const before = p.telemetry.total(METRICS.AuctionWakeFailures.name);
      // The part's 37th call fails (after 36 went), and so does the continuation's send.
      failingEvery(p);
      const queue = p.adapters.auctionQueue;
      queue.send = async () => {
        throw new Error('ServiceUnavailable');
      };
      await expect(
        p.handlers.auction({ messageId: 'd1', body, receiptHandle: '', receiveCount: 1, sentAtMs: 0 }),
      ).rejects.toThrow(kind === 'spent' ? 'auction/spent-wake-owed' : 'registration-wake/failed');
      // Before: 2, the part's failure and the continuation's.
      expect(p.telemetry.total(METRICS.AuctionWakeFailures.name) - before).toBe(1);
    },
  );
});
