import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_RISK_CONFIG_INPUT, parseRiskConfig } from '../../shared/domain/config.ts';
import { METRICS } from '../../shared/metrics.ts';
import { parseAuctionStepMessage } from '../../shared/schemas/messages.ts';
import { auctionOf, leftAuctionAt, liquidationOf } from '../support/auction-records.ts';
import { createPipeline, type Pipeline } from '../support/pipeline.ts';

/**
 * The fills one step may take, when set (MAX_FILLS_PER_STEP otherwise). At 90 a step an auction's 1,000 fills take 12
 * steps, so no run reaches its bound of 20 capped steps (MAX_CAPPED_RUNS) unless a step takes fewer: 4 here.
 */
const cap = vi.hoisted(() => ({ fills: undefined as number | undefined }));
vi.mock('../../shared/domain/clearing.ts', async (importOriginal) => {
  const clearing = await importOriginal<typeof import('../../shared/domain/clearing.ts')>();
  return {
    ...clearing,
    clearAuctionStep: (input: Parameters<typeof clearing.clearAuctionStep>[0]) =>
      clearing.clearAuctionStep(
        cap.fills === undefined
          ? input
          : { ...input, maxFills: Math.min(input.maxFills ?? cap.fills, cap.fills) },
      ),
  };
});

afterEach(() => {
  cap.fills = undefined;
});

/**
 * As spent-wake-ended.test.ts's capped run, with the default tail (an hour): a 10 ETH long crossed at 184 over an empty book, 150 providers of 0.1 ETH
 * at 1 % (each with a cent more than its fill costs: every fill spends its provider, a wake owed), whose bids the
 * curve reaches at its step at 270 s; 100 of them take the lot at one price. Its wakes (their providers epoch bump)
 * fail while `failing()` says so.
 */
async function crowded(marks: 'held' | 'as-configured', failing: (p: Pipeline) => boolean) {
  const config = parseRiskConfig({
    ...DEFAULT_RISK_CONFIG_INPUT,
    auction: { ...DEFAULT_RISK_CONFIG_INPUT.auction, maxResets: 0 },
  });
  const p = createPipeline({ config, marks });
  await p.tick('ETH-USD', '200'); // a market's first print waits for a second
  await p.tick('ETH-USD', '200');
  const long = await p.open('LONG', '10', '200', '200');
  for (let i = 0; i < 150; i++) await p.provider(`lp-${String(i).padStart(3, '0')}`, '18.22', '0.01', '0.1');
  p.venue.faults.emptyBooks.add('ETH-USD');
  const t0 = p.clock.nowMs();
  await p.tick('ETH-USD', '184');
  await p.runUntil(t0 + 1000);
  expect((await auctionOf(p, long.id)).stepDueAtMs).toBe(t0 + 270_000);
  const failed = { count: 0 };
  const markets = p.adapters.markets;
  const bump = markets.bumpProvidersEpoch.bind(markets);
  markets.bumpProvidersEpoch = async (symbol) => {
    if (failing(p)) {
      failed.count += 1;
      throw new Error('throttled');
    }
    return bump(symbol);
  };
  const owed = () => p.errors.filter((e) => e.includes('auction/spent-wake-owed')).length;
  return { p, t0, long, failed, owed };
}

/** Each provider filled once, 100 fills at one price, the lot sold, the debt paid, every step on time. */
async function clearedOnce(p: Pipeline, positionId: string): Promise<void> {
  const auction = await auctionOf(p, positionId);
  expect(auction).toMatchObject({ state: 'CLEARED', remainingLot: 0n });
  expect(auction.spentIn).toBeUndefined();
  expect(auction.fills).toHaveLength(100);
  expect(new Set(auction.fills.map((f) => f.providerId)).size).toBe(100);
  expect(new Set(auction.fills.map((f) => f.price)).size).toBe(1);
  expect(liquidationOf(p, positionId).state).toBe('SETTLED_AUCTION');
  expect(await p.check()).toMatchObject({ violations: [] });
  // A retry that finds its step taken ran none late (review42-debt-retry-lateness).
  const lateness = p.telemetry.observations.filter((o) => o.metric === METRICS.AuctionStepLateness.name);
  expect(Math.max(...lateness.map((o) => o.value))).toBeLessThanOrEqual(1);
}

describe("a capped run's wake debt still owed when the run stops fails its delivery after the run (review42-capped-run-split)", () => {
  it.each([
    {
      failingUntil: 271_000,
      failures: 20,
      deliveries: 1,
      // Once a delivery (capped44-count-once): before, once for each of the 20 capped steps' wakes.
      wakeFailures: 1,
      paidAt: 271_000,
      case: "the run's next delivery, a second later, pays it; the retry finds its step taken",
    },
    {
      // Every delivery that finds the debt meanwhile tries it: at 271 s the run's next one (its 5 steps' wakes) and the
      // 19 other messages the first run's steps sent, at 272 s the 4 the second sent. Only the two runs' deliveries,
      // which own the debt, fail (capped44-stale-run-quiet; before, the 23 others failed too: 25, and 48 wake failures).
      failingUntil: 300_000,
      failures: 20 + 19 + 5 + 4,
      deliveries: 1 + 1,
      wakeFailures: 2,
      paidAt: 300_000,
      case: 'the wakes fail until the retry, 30 s later, which pays it',
    },
  ])(
    'owed after the 20th capped step: $case',
    async ({ failingUntil, failures, deliveries, wakeFailures, paidAt }) => {
      // 4 fills a step: the lot's 100 take 25 steps, 20 in the first delivery (at 270 s), 5 in the next (271 s).
      cap.fills = 4;
      const { p, t0, long, failed, owed } = await crowded('held', (p) => p.clock.nowMs() < t0 + failingUntil);
      await p.runUntil(t0 + 270_000);
      // Its 20 steps committed, each wake failed: the delivery failed after them, the debt on the record.
      const after = await auctionOf(p, long.id);
      expect(after).toMatchObject({ state: 'RUNNING', step: 20, spentIn: ['ETH-USD'] });
      expect(after.fills).toHaveLength(80);
      expect(failed.count).toBe(20);
      expect(owed()).toBe(1);
      await p.runUntil(t0 + paidAt - 1000);
      expect((await auctionOf(p, long.id)).spentIn).toEqual(['ETH-USD']);
      await p.runUntil(t0 + paidAt);
      expect((await auctionOf(p, long.id)).spentIn).toBeUndefined();
      // The 20th step's message went on with the run: the lot cleared at the same price a second later.
      expect(await auctionOf(p, long.id)).toMatchObject({ state: 'CLEARED', step: 25 });
      expect(leftAuctionAt(p, long.id)).toBe(t0 + 271_000);
      await p.drain();
      expect(failed.count).toBe(failures);
      expect(owed()).toBe(deliveries);
      expect(p.errors).toHaveLength(deliveries);
      expect(p.telemetry.total(METRICS.AuctionWakeFailures.name)).toBe(wakeFailures);
      await clearedOnce(p, long.id);
    },
  );

  it("while the wake keeps failing, only the message that owns the debt fails; the run's other messages end quietly, and the debt is paid (capped44-stale-run-quiet)", async () => {
    cap.fills = 4;
    // The wake fails until 380 s: the owner's retries (30 s apart here) fail at 301, 331 and 361 s and pay at 391 s.
    const { p, t0, long, failed } = await crowded('held', (p) => p.clock.nowMs() < t0 + 380_000);
    await p.runUntil(t0 + 272_000);
    expect(await auctionOf(p, long.id)).toMatchObject({ state: 'CLEARED', step: 25, spentIn: ['ETH-USD'] });
    await p.runUntil(t0 + 390_000);
    // Still owed: not lost while its owner's message lives.
    expect((await auctionOf(p, long.id)).spentIn).toEqual(['ETH-USD']);
    await p.drain();
    expect((await auctionOf(p, long.id)).spentIn).toBeUndefined();
    // Each capped run's delivery failed, then the second run's (the owner) at each retry until the wake came back; the
    // first run's retry found the debt owned by the second and ended quietly. Before: the 23 stale messages failed at
    // each receive as well (100 failed deliveries, 123 wake failures).
    expect(p.errors).toHaveLength(2 + 3);
    expect(p.adapters.auctionDeadLetters.pending()).toEqual([]);
    expect(failed.count).toBeGreaterThan(2 + 3);
    expect(p.telemetry.total(METRICS.AuctionWakeFailures.name)).toBe(2 + 3);
    await clearedOnce(p, long.id);
  });

  it("a wake that fails for good: only the owner's message is dead-lettered, with the debt, and its redrive pays (capped44-stale-run-quiet)", async () => {
    cap.fills = 4;
    let failing = true;
    const { p, long } = await crowded('held', () => failing);
    await p.drain();
    // The debt stays on the record, and on the one dead letter: the owner's (before: 25 dead letters, one a message,
    // and 148 wake failures).
    const auction = await auctionOf(p, long.id);
    expect(auction).toMatchObject({ state: 'CLEARED', spentIn: ['ETH-USD'], runFrom: 20 });
    const dead = p.adapters.auctionDeadLetters.pending();
    expect(dead.map((m) => parseAuctionStepMessage(m.body).step)).toEqual([20]);
    // The fault gone, the dead letter redriven: it pays the debt.
    failing = false;
    const [redriven] = await p.adapters.auctionDeadLetters.receive(10, 30);
    await p.adapters.auctionQueue.send(redriven!.body);
    await p.adapters.auctionDeadLetters.delete(redriven!.receiptHandle);
    await p.drain();
    expect((await auctionOf(p, long.id)).spentIn).toBeUndefined();
    await clearedOnce(p, long.id);
  });

  it('the run stops for a fresh mark after the capped step whose wake failed: the delivery fails, its retry pays', async () => {
    // Marks as configured (stale after 120 s): a tick at 150 s keeps the mark fresh up to the step at 270 s, exactly.
    // The capped step's wake fails once and takes a second, so the run's next step finds the mark 121 s old.
    let first = true;
    const { p, t0, long, failed, owed } = await crowded('as-configured', (p) => {
      if (!first) return false;
      first = false;
      p.clock.advance(1000);
      return true;
    });
    await p.runUntil(t0 + 150_000);
    await p.tick('ETH-USD', '184');
    const sent: number[] = [];
    const queue = p.adapters.auctionQueue;
    const send = queue.send.bind(queue);
    queue.send = async (body, delaySeconds) => {
      sent.push(parseAuctionStepMessage(body).step);
      return send(body, delaySeconds);
    };
    await p.runUntil(t0 + 270_000);
    const after = await auctionOf(p, long.id);
    expect(after).toMatchObject({ state: 'RUNNING', step: 1, spentIn: ['ETH-USD'] });
    expect(after.fills).toHaveLength(90);
    expect(failed.count).toBe(1);
    expect(owed()).toBe(1);
    // Step 1's messages wait for the fresh mark (they pay no debt): the debt waits for the retry at 300 s.
    await p.runUntil(t0 + 299_000);
    expect((await auctionOf(p, long.id)).spentIn).toEqual(['ETH-USD']);
    await p.runUntil(t0 + 300_000);
    expect((await auctionOf(p, long.id)).spentIn).toBeUndefined();
    expect(await auctionOf(p, long.id)).toMatchObject({ state: 'RUNNING', step: 1 });
    // The feed is back: step 1 runs at its message's next look (331 s), at the price of 270 s.
    await p.runUntil(t0 + 310_000);
    await p.tick('ETH-USD', '184');
    await p.drain();
    expect(owed()).toBe(1);
    expect(p.errors).toHaveLength(1);
    await clearedOnce(p, long.id);
    // One message of step 1 waited (its capped step's, at 271 s and 301 s). Before: the run sent step 1 back as well,
    // a second message waiting for the same step (4 waits, and a twin delivery once the feed was back).
    expect(sent.filter((step) => step === 1)).toHaveLength(3);
    expect(p.telemetry.total(METRICS.StaleMarkWaits.name)).toBe(2);
  });
});

describe("a capped run that meets a stale mark, its capped step's commit slower than that step's message (review43-capped-run-early-message)", () => {
  it.each([
    {
      seconds: 2,
      seen: ['1: early'],
      waits: 2,
      case: 'the message came first and waits for the commit (early43): the run leaves the step to it, no twin',
    },
    {
      seconds: 17,
      seen: ['1: early', '1: early', '1: early', '1: stale'],
      waits: 1,
      case: "a commit slower than the message's waits, which ended: the capped step sends the step again (review43c-slow-commit-resend)",
    },
  ])("the capped step's commit takes $seconds s: $case", async ({ seconds, seen, waits }) => {
    // Marks as configured: a tick at 150 s keeps the mark fresh up to the step at 270 s. The capped step's commit is
    // slow, so the run's next step finds the mark too old.
    const { p, t0, long } = await crowded('as-configured', () => false);
    await p.runUntil(t0 + 150_000);
    await p.tick('ETH-USD', '184');
    const transactor = p.adapters.transactor;
    const commit = transactor.commit.bind(transactor);
    const early: string[] = [];
    let slow = true;
    transactor.commit = async (writes, providersUnchanged) => {
      const auction = writes.find((w) => w.kind === 'auction');
      if (slow && auction?.record.step === 1 && auction.record.state === 'RUNNING') {
        slow = false;
        // Meanwhile step 1's message, due a second after it was sent, comes (and comes back): the auction at step 0.
        const queue = p.adapters.auctionQueue;
        for (let s = 0; s < seconds; s++) {
          p.clock.advance(1000);
          for (const m of await queue.receive(10, 30)) {
            const outcome = await p.handlers.auction(m);
            early.push(`${parseAuctionStepMessage(m.body).step}: ${outcome.status}`);
            await queue.delete(m.receiptHandle);
          }
        }
      }
      return commit(writes, providersUnchanged);
    };
    await p.runUntil(t0 + 270_000 + seconds * 1000);
    expect(early).toEqual(seen);
    const after = await auctionOf(p, long.id);
    expect(after).toMatchObject({ state: 'RUNNING', step: 1 });
    expect(after.fills).toHaveLength(90);
    // The feed is back: step 1 runs, and the lot clears at the price of 270 s.
    await p.runUntil(t0 + 310_000);
    await p.tick('ETH-USD', '184');
    await p.drain();
    expect(p.errors).toEqual([]);
    await clearedOnce(p, long.id);
    // One message of step 1 waited for the fresh mark: the early one, or the one the capped step sent again once that
    // one had ended (the run leaves the step to it: no twin wait).
    expect(p.telemetry.total(METRICS.StaleMarkWaits.name)).toBe(waits);
  });
});
