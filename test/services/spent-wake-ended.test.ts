import { describe, expect, it } from 'vitest';
import { DEFAULT_RISK_CONFIG_INPUT, parseRiskConfig } from '../../shared/domain/config.ts';
import { isTerminal } from '../../shared/domain/model.ts';
import { formatQuote, price } from '../../shared/domain/units.ts';
import { METRICS } from '../../shared/metrics.ts';
import { parseAuctionStepMessage } from '../../shared/schemas/messages.ts';
import { SPENT_WAKES_PER_DELIVERY } from '../../shared/services/sleeping.ts';
import {
  auctionEndingIntoWait,
  auctionOf,
  auctionRecord,
  leftAuctionAt,
  liquidationOf,
} from '../support/auction-records.ts';
import { crashOnceAt, createPipeline } from '../support/pipeline.ts';

/**
 * As spent-provider-sleepers.test.ts: A (p1) and B (p2), SELL auctions of ETH-USD, sleep on lp-1; A's step at 450 s
 * clears A's whole lot with exactly lp-1's capital (clearingCapital), so A ends in the step that spends lp-1; B sleeps
 * until 560 s. `failing`: how many reads of the sleepers index from A's step on fail (no tick comes meanwhile: each
 * is a spent wake's).
 */
async function endedPayer(
  failing: number,
  maxReceiveCount?: number,
  crashHook?: ReturnType<typeof crashOnceAt>['hook'],
  lpCapital?: string,
) {
  const p = createPipeline({
    ...(maxReceiveCount ? { maxReceiveCount: { auctionSteps: maxReceiveCount } } : {}),
    ...(crashHook ? { crashHook } : {}),
  });
  await p.tick('ETH-USD', '200'); // a market's first print waits for a second
  await p.tick('ETH-USD', '200');
  await p.fund('100000');
  await p.open('LONG', '1', '200', '20'); // liquidated below 184.62
  await p.open('LONG', '1', '200', '21'); // below 183.59
  await p.open('SHORT', '5', '200', '500');
  await p.provider('lp-1', lpCapital ?? (await clearingCapital()), '0.02', '10');
  p.venue.faults.emptyBooks.add('ETH-USD');
  const t0 = p.clock.nowMs();
  await p.tick('ETH-USD', '184');
  await p.runUntil(t0 + 200_000);
  await p.tick('ETH-USD', '183.5');
  await p.runUntil(t0 + 201_000);
  const plannedB = (await auctionOf(p, 'p2')).stepDueAtMs!;
  expect(plannedB).toBe(t0 + 560_000);
  let left = failing;
  const auctions = p.adapters.auctions;
  const sleepers = auctions.sleepers.bind(auctions);
  auctions.sleepers = async (...args) => {
    if (left > 0) {
      left -= 1;
      throw new Error('throttled');
    }
    return sleepers(...args);
  };
  return { p, t0, plannedB, heal: () => (left = 0) };
}

let clearing: string | undefined;
/** What A's whole lot costs at its step at 450 s: a provider with that much clears A and is spent by it. */
async function clearingCapital(): Promise<string> {
  if (clearing === undefined) {
    const { p, t0 } = await endedPayer(0, undefined, undefined, '100000');
    await p.runUntil(t0 + 451_000);
    const a = await auctionOf(p, 'p1');
    expect(a).toMatchObject({ state: 'CLEARED', remainingLot: 0n });
    clearing = formatQuote(a.fills.reduce((sum, f) => sum + f.cost!, 0n));
  }
  return clearing;
}

describe("an ended auction's wake debt never waits for a later step (spent-wake-ended)", () => {
  it("A's wake fails once after A ended: its delivery fails and the retry wakes B, 30 s later, not at 560 s", async () => {
    const { p, t0, plannedB } = await endedPayer(1);
    await p.runUntil(plannedB - 1000);
    const a = await auctionOf(p, 'p1');
    expect(a).toMatchObject({ state: 'CLEARED' });
    // A's settlement went on at 450 s, the wake's failure notwithstanding.
    expect(leftAuctionAt(p, 'p1')).toBe(t0 + 450_000);
    expect(p.telemetry.marketCounts.get(`${METRICS.AuctionWakeFailures.name}@ETH-USD`)).toBe(1);
    // Before: the delivery succeeded, nobody came back for the debt, and B slept until 560 s.
    expect(await auctionOf(p, 'p2')).toMatchObject({ state: 'EXHAUSTED', endedBy: 'wake' });
    expect(leftAuctionAt(p, 'p2')).toBeLessThanOrEqual(t0 + 450_000 + 31_000);
    expect(p.errors.filter((e) => e.includes('auction/spent-wake-owed'))).toHaveLength(1);
    expect((await auctionOf(p, 'p1')).spentIn).toBeUndefined();
    await p.drain();
    expect(await p.check()).toMatchObject({ violations: [] });
  });

  it('a wake that keeps failing dead-letters its message (alarmed); redriven, it pays the debt once', async () => {
    const { p, t0, plannedB, heal } = await endedPayer(Number.POSITIVE_INFINITY, 3);
    await p.runUntil(plannedB + 1000);
    // Every receive of A's ending step failed on the wake alone: A's liquidation was settled at the first.
    expect(leftAuctionAt(p, 'p1')).toBe(t0 + 450_000);
    expect(isTerminal(liquidationOf(p, 'p1').state)).toBe(true);
    expect(p.telemetry.marketCounts.get(`${METRICS.AuctionWakeFailures.name}@ETH-USD`)).toBe(3);
    // B, never woken, ended at its planned step.
    expect(leftAuctionAt(p, 'p2')).toBe(plannedB);
    await p.drain();
    expect((await auctionOf(p, 'p1')).spentIn).toEqual(['ETH-USD']);
    const dead = await p.adapters.auctionDeadLetters.receive(10, 30);
    expect(dead.map((m) => parseAuctionStepMessage(m.body).auctionId)).toEqual([
      (await auctionOf(p, 'p1')).id,
    ]);
    heal();
    for (const m of dead) {
      await p.handlers.auction(m);
      await p.adapters.auctionDeadLetters.delete(m.receiptHandle);
    }
    await p.drain();
    expect((await auctionOf(p, 'p1')).spentIn).toBeUndefined();
    expect(await p.check()).toMatchObject({ violations: [] });
  });
});

describe('a redelivery of an ended auction settles before it pays the wake (review41-ended-wake-first)', () => {
  it("a wake whose record write fails does not hold the settlement the ending step's delivery died before", async () => {
    // Killed right after the commit that ends A (its settlement's first transition): its redelivery, 30 s later,
    // finds A ended, owing the wake and its settlement unfinished.
    const crash = crashOnceAt('transactor.commit');
    const { p, t0 } = await endedPayer(0, undefined, crash.hook);
    const providers = p.adapters.providers;
    const list = providers.list.bind(providers);
    providers.list = async (symbol) => {
      const listed = await list(symbol);
      if (p.clock.nowMs() === t0 + 450_000 && !crash.crashed()) crash.arm();
      return listed;
    };
    // The redelivery's write of the debt paid fails once (DynamoDB throttling past the SDK's retries, say).
    const auctions = p.adapters.auctions;
    const replace = auctions.replace.bind(auctions);
    let throttled = 0;
    auctions.replace = async (next, expectedVersion) => {
      const stored = await auctions.get(next.id);
      if (throttled === 0 && stored?.spentIn && next.spentIn === undefined && stored.state !== 'RUNNING') {
        throttled += 1;
        throw new Error('ProvisionedThroughputExceededException');
      }
      return replace(next, expectedVersion);
    };
    await p.runUntil(t0 + 450_000 + 31_000);
    expect(crash.crashed()).toBe(true);
    expect(throttled).toBe(1);
    expect(await auctionOf(p, 'p1')).toMatchObject({ state: 'CLEARED' });
    // Settled by the redelivery at 480 s; before, the wake threw first and the settlement waited for the retry.
    const { history } = liquidationOf(p, 'p1');
    expect(isTerminal(history.at(-1)!.state)).toBe(true);
    expect(history.at(-1)!.atMs).toBeLessThanOrEqual(t0 + 480_000);
    await p.drain();
    expect((await auctionOf(p, 'p1')).spentIn).toBeUndefined();
    expect(await p.check()).toMatchObject({ violations: [] });
  });
});

describe("a running auction's failed wake is retried by its delivery, not left to its next step (spent-wake-retry-late)", () => {
  // lp-1's 150 USD buys part of A's lot at 450 s: A runs on, asleep until its next step at 540 s, which ends it.
  it("A's wake fails once at 450 s: its delivery fails and the retry wakes B at 480 s, not A's next step at 540 s", async () => {
    const { p, t0, plannedB } = await endedPayer(1, undefined, undefined, '150');
    await p.runUntil(t0 + 451_000);
    const a = await auctionOf(p, 'p1');
    expect(a).toMatchObject({ state: 'RUNNING', spentIn: ['ETH-USD'] });
    expect(a.fills.map((f) => f.providerId)).toEqual(['lp-1']);
    expect(a.stepDueAtMs).toBe(t0 + 540_000);
    expect(p.errors.filter((e) => e.includes('auction/spent-wake-owed'))).toHaveLength(1);
    await p.runUntil(plannedB - 1000);
    expect(p.telemetry.marketCounts.get(`${METRICS.AuctionWakeFailures.name}@ETH-USD`)).toBe(1);
    // Before: the delivery succeeded and the debt waited for A's step at 540 s, which woke B then.
    expect(await auctionOf(p, 'p2')).toMatchObject({ state: 'EXHAUSTED', endedBy: 'wake', fills: [] });
    expect(leftAuctionAt(p, 'p2')).toBe(t0 + 480_000);
    expect((await auctionOf(p, 'p1')).spentIn).toBeUndefined();
    expect(p.errors.filter((e) => e.includes('auction/spent-wake-owed'))).toHaveLength(1);
    await p.drain();
    expect(await p.check()).toMatchObject({ violations: [] });
  });

  it('a wake that keeps failing dead-letters the deliveries that owe it (alarmed); redriven, they pay it once', async () => {
    const { p, t0, plannedB, heal } = await endedPayer(Number.POSITIVE_INFINITY, 3, undefined, '150');
    await p.runUntil(plannedB + 1000);
    // A's step at 450 s and each retry failed on the wake alone: A's fill stands, its next steps went on.
    const a = await auctionOf(p, 'p1');
    expect(a.fills.map((f) => f.providerId)).toEqual(['lp-1']);
    expect(a.state).toBe('EXHAUSTED');
    expect(leftAuctionAt(p, 'p1')).toBe(t0 + 540_000);
    expect(isTerminal(liquidationOf(p, 'p1').state)).toBe(true);
    // B, never woken, ended at its planned step.
    expect(leftAuctionAt(p, 'p2')).toBe(plannedB);
    await p.drain();
    // Each receive counted, as the ended auction's are.
    expect(p.telemetry.marketCounts.get(`${METRICS.AuctionWakeFailures.name}@ETH-USD`)).toBe(6);
    expect((await auctionOf(p, 'p1')).spentIn).toEqual(['ETH-USD']);
    const dead = await p.adapters.auctionDeadLetters.receive(10, 30);
    // A's step that spent lp-1 (step 1, at 450 s) and the one that ended it (step 2, at 540 s), each after 3 receives.
    const steps = dead.map((m) => parseAuctionStepMessage(m.body));
    expect(steps.map((m) => m.auctionId)).toEqual([a.id, a.id]);
    expect(steps.map((m) => m.step).sort()).toEqual([1, 2]);
    expect(p.errors.filter((e) => e.includes('auction/spent-wake-owed'))).toHaveLength(6);
    heal();
    const before = p.telemetry.total(METRICS.AuctionsWoken.name);
    for (const m of dead) {
      await p.handlers.auction(m);
      await p.adapters.auctionDeadLetters.delete(m.receiptHandle);
    }
    await p.drain();
    expect((await auctionOf(p, 'p1')).spentIn).toBeUndefined();
    // B has ended: the debt paid wakes nobody more.
    expect(p.telemetry.total(METRICS.AuctionsWoken.name)).toBe(before);
    expect(await p.check()).toMatchObject({ violations: [] });
  });
});

/** A payer's record (step 3) owing the wake of 2,500 ETH-USD sleepers. */
const recordOf = auctionRecord;

describe("an ended auction's wake continuation that cannot be sent (spent-wake-ended)", () => {
  it('fails the delivery; its redelivery goes on from where the record says, each sleeper woken once', async () => {
    const p = createPipeline();
    const sleepers = SPENT_WAKES_PER_DELIVERY + 500;
    for (let i = 0; i < sleepers; i++)
      await p.adapters.auctions.create(recordOf(`s-${i}`, { wakeMark: price(String(150 + (i % 40))) }));
    await p.adapters.auctions.create(
      recordOf('payer', { state: 'CLEARED', endedBy: 'plan', spentIn: ['ETH-USD'] }),
    );
    const queue = p.adapters.auctionQueue;
    const send = queue.send.bind(queue);
    queue.send = async () => {
      throw new Error('throttled');
    };
    // A stale message of the ended payer (its continuations' kind): nothing else of it comes later.
    const stale = {
      messageId: 'm',
      body: '{"auctionId":"payer","step":0,"symbol":"ETH-USD"}',
      receiptHandle: '',
    };
    const delivery = { ...stale, receiveCount: 1, sentAtMs: 0 };
    // Before: the delivery succeeded, the debt stayed on the record, and no delivery of it ever came again.
    await expect(p.handlers.auction(delivery)).rejects.toThrow(/auction\/spent-wake-owed: payer/);
    const owed = await p.adapters.auctions.get('payer');
    expect(owed?.spentWokenTo).toBeDefined();
    queue.send = send;
    expect(await p.handlers.auction({ ...delivery, receiveCount: 2 })).toEqual({ status: 'stale' });
    expect((await p.adapters.auctions.get('payer'))?.spentIn).toBeUndefined();
    const woken = new Map<string, number>();
    for (;;) {
      const batch = await queue.receive(10, 300);
      if (batch.length === 0) break;
      for (const m of batch) {
        const { auctionId } = parseAuctionStepMessage(m.body);
        woken.set(auctionId, (woken.get(auctionId) ?? 0) + 1);
      }
    }
    expect(woken.size).toBe(sleepers);
    expect([...woken.values()].every((n) => n === 1)).toBe(true);
  });

  it('a RUNNING auction whose wake fails fails the delivery too; its retry pays it (spent-wake-retry-late)', async () => {
    const p = createPipeline();
    await p.adapters.auctions.create(recordOf('s-0', { wakeMark: price('150') }));
    await p.adapters.auctions.create(recordOf('payer', { spentIn: ['ETH-USD'] }));
    const markets = p.adapters.markets;
    const bump = markets.bumpProvidersEpoch.bind(markets);
    markets.bumpProvidersEpoch = async () => {
      throw new Error('throttled');
    };
    const delivery = {
      messageId: 'm',
      body: '{"auctionId":"payer","step":2,"symbol":"ETH-USD"}',
      receiptHandle: '',
      receiveCount: 1,
      sentAtMs: 0,
    };
    // Before: a stale step, the debt kept for the payer's next step (up to 900 s).
    await expect(p.handlers.auction(delivery)).rejects.toThrow(/auction\/spent-wake-owed: payer/);
    expect((await p.adapters.auctions.get('payer'))?.spentIn).toEqual(['ETH-USD']);
    markets.bumpProvidersEpoch = bump;
    expect(await p.handlers.auction({ ...delivery, receiveCount: 2 })).toEqual({ status: 'stale' });
    expect((await p.adapters.auctions.get('payer'))?.spentIn).toBeUndefined();
  });
});

describe("a capped step's failed wake fails its delivery after the run, not at the step (review42-capped-run-split)", () => {
  // As pipeline.test.ts's capped tail: the 1 % bids are reached at step 3 (270 s), the tail, by 150 providers of
  // 0.1 ETH; 100 take the 10 ETH lot (90, then 10 in the run's next step, at the same instant).
  it.each([
    // Both in one delivery: AuctionWakeFailures once (capped44-count-once; before, twice).
    { failing: 2, owed: 1, case: 'both wakes of the run fail: the delivery fails after it, its retry pays' },
    {
      failing: 1,
      owed: 0,
      case: "the capped step's wake fails: the run's ending step pays it, the delivery succeeds",
    },
  ])('a run of 100 fills at one price still ends in one delivery when $case', async ({ failing, owed }) => {
    const config = parseRiskConfig({
      ...DEFAULT_RISK_CONFIG_INPUT,
      auction: { ...DEFAULT_RISK_CONFIG_INPUT.auction, tailSeconds: 270, maxResets: 0 },
    });
    const p = createPipeline({ config });
    await p.tick('ETH-USD', '200'); // a market's first print waits for a second
    await p.tick('ETH-USD', '200');
    const long = await p.open('LONG', '10', '200', '200');
    // Each with a cent more than its fill costs (18.21 USD): the capped step spends its 90.
    for (let i = 0; i < 150; i++)
      await p.provider(`lp-${String(i).padStart(3, '0')}`, '18.22', '0.01', '0.1');
    p.venue.faults.emptyBooks.add('ETH-USD');
    // The first wakes fail (their providers epoch bump): the capped step's, then the ending step's.
    let left = failing;
    const markets = p.adapters.markets;
    const bump = markets.bumpProvidersEpoch.bind(markets);
    markets.bumpProvidersEpoch = async (symbol) => {
      if (left > 0) {
        left -= 1;
        throw new Error('throttled');
      }
      return bump(symbol);
    };
    await p.tick('ETH-USD', '184');
    await p.drain();
    expect(left).toBe(0);
    const auction = await auctionOf(p, long.id);
    // Before: the delivery failed at the capped step, and the run's next step, from its message a second later,
    // found the tail passed: EXHAUSTED with 1 ETH unsold.
    expect(auction).toMatchObject({ state: 'CLEARED', remainingLot: 0n });
    expect(auction.fills).toHaveLength(100);
    expect(new Set(auction.fills.map((f) => f.price)).size).toBe(1);
    // The debt the capped step recorded: still owed after the run, it failed the delivery once; paid in the end.
    expect(p.errors.filter((e) => e.includes('auction/spent-wake-owed'))).toHaveLength(owed);
    expect(p.errors).toHaveLength(owed);
    expect(p.telemetry.marketCounts.get(`${METRICS.AuctionWakeFailures.name}@ETH-USD`)).toBe(1);
    expect(auction.spentIn).toBeUndefined();
    expect(liquidationOf(p, long.id).state).toBe('SETTLED_AUCTION');
    expect(await p.check()).toMatchObject({ violations: [] });
  });
});

describe('a retry that only pays a wake debt reports no step lateness (review42-debt-retry-lateness)', () => {
  it("the retries of A's steps that owe a wake run no step late, nor does their redrive", async () => {
    const { p, heal } = await endedPayer(Number.POSITIVE_INFINITY, undefined, undefined, '150');
    // A's step 1 (450 s) fails on the wake at its first 3 receives, SQS's backoff bringing it back 5, 30 s on; at its
    // 4th (605 s, 155 s after it was due) the debt is step 2's, whose delivery (540 s) carried it on: it ends quietly
    // (capped44-stale-run-quiet; before, it failed its 5 receives too). Step 2 fails at each of its 5, then
    // dead-letters.
    await p.drain();
    expect(p.errors.filter((e) => e.includes('auction/spent-wake-owed'))).toHaveLength(3 + 5);
    heal();
    const dead = await p.adapters.auctionDeadLetters.receive(10, 30);
    expect(dead).toHaveLength(1);
    for (const m of dead) {
      await p.handlers.auction(m);
      await p.adapters.auctionDeadLetters.delete(m.receiptHandle);
    }
    await p.drain();
    expect((await auctionOf(p, 'p1')).spentIn).toBeUndefined();
    expect(await p.check()).toMatchObject({ violations: [] });
    // Every step ran when it was due: a retry found its step taken. Before: each retry reported its wait, up to the
    // redrive's, past AuctionStepsLateAlarm's 60 s ("consumer behind", over RecordFailures' page for the same).
    const lateness = p.telemetry.observations.filter((o) => o.metric === METRICS.AuctionStepLateness.name);
    expect(lateness.length).toBeGreaterThan(0);
    expect(Math.max(...lateness.map((o) => o.value))).toBeLessThanOrEqual(1);
  });
});

describe("an ended auction's delivery that finishes the settlement its ending step left reports its lateness (lateness43-ended-settlement)", () => {
  it("A's ending step dies after its commit: the redelivery, 30 s late, settles A and says so", async () => {
    // As review41-ended-wake-first's: killed right after the commit that ends A (its settlement's first transition).
    const crash = crashOnceAt('transactor.commit');
    const { p, t0 } = await endedPayer(0, undefined, crash.hook);
    const providers = p.adapters.providers;
    const list = providers.list.bind(providers);
    providers.list = async (symbol) => {
      const listed = await list(symbol);
      if (p.clock.nowMs() === t0 + 450_000 && !crash.crashed()) crash.arm();
      return listed;
    };
    await p.runUntil(t0 + 479_000);
    expect(crash.crashed()).toBe(true);
    expect(await auctionOf(p, 'p1')).toMatchObject({ state: 'CLEARED' });
    expect(liquidationOf(p, 'p1').state).toBe('SETTLING');
    const late = () =>
      p.telemetry.observations
        .filter((o) => o.metric === METRICS.AuctionStepLateness.name)
        .map((o) => o.value);
    expect(Math.max(...late())).toBeLessThanOrEqual(1);
    await p.runUntil(t0 + 480_000);
    expect(isTerminal(liquidationOf(p, 'p1').state)).toBe(true);
    // The step due at 450 s settled 30 s late. Before: no lateness from an ended auction's delivery, however late
    // (a redrive's hours) the settlement it finished.
    expect(late().filter((s) => s > 1)).toEqual([30]);
    await p.drain();
    expect(late().filter((s) => s > 1)).toEqual([30]);
    expect(await p.check()).toMatchObject({ violations: [] });
  });

  it("a last resort waiting for the book is its liquidation message's: the ending step's redelivery reports no lateness", async () => {
    // No bid left when A's planned step comes (lp's capital gone), no fund, no counterparty: A ends EXHAUSTED and its
    // settlement's last resort finds an empty book and waits (its message, 60 s on). The delivery dies right after
    // sending it.
    const crash = crashOnceAt('liquidationQueue.send');
    const { p, long, due } = await auctionEndingIntoWait(crash);
    await p.runUntil(due);
    expect(crash.crashed()).toBe(true);
    expect(await auctionOf(p, long.id)).toMatchObject({ state: 'EXHAUSTED', fills: [] });
    expect(liquidationOf(p, long.id).context?.lastResortAttempt).toBe(1);
    // The redelivery, 30 s on, finds the settlement waiting: nothing of it was due then.
    await p.runUntil(due + 30_000);
    expect(p.errors).toEqual(['auctionSteps: liquidationQueue.send']);
    const lateness = p.telemetry.observations.filter((o) => o.metric === METRICS.AuctionStepLateness.name);
    expect(lateness.length).toBeGreaterThan(0);
    expect(Math.max(...lateness.map((o) => o.value))).toBeLessThanOrEqual(1);
  });
});
