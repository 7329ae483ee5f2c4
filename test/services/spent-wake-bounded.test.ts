import { describe, expect, it } from 'vitest';
import { price } from '../../shared/domain/units.ts';
import { METRICS } from '../../shared/metrics.ts';
import {
  type AuctionRecord,
  type AuctionStepMessage,
  isRegistrationWakeMessage,
  providersEpochOf,
} from '../../shared/ports/index.ts';
import { parseAuctionQueueMessage, parseAuctionStepMessage } from '../../shared/schemas/messages.ts';
import { handleAdmin } from '../../shared/services/admin.ts';
import { SPENT_WAKES_PER_DELIVERY, wakeSpent } from '../../shared/services/sleeping.ts';
import { auctionRecord } from '../support/auction-records.ts';
import { crashOnceAt, createPipeline, type Pipeline } from '../support/pipeline.ts';

const auctionOf = (id: string, direction: 'BUY' | 'SELL', extra: Partial<AuctionRecord>): AuctionRecord =>
  auctionRecord(id, { direction, ...extra });

/** Every message on the auction queue now, taken off it. */
async function takeAll(p: Pipeline): Promise<{ body: string; message: AuctionStepMessage }[]> {
  const taken: { body: string; message: AuctionStepMessage }[] = [];
  for (;;) {
    const batch = await p.adapters.auctionQueue.receive(10, 300);
    if (batch.length === 0) return taken;
    for (const m of batch) {
      await p.adapters.auctionQueue.delete(m.receiptHandle);
      taken.push({ body: m.body, message: parseAuctionStepMessage(m.body) });
    }
  }
}

/** 2,500 sleepers of ETH-USD (wake marks in groups of 7 equal ones) and a payer owing their wake. */
async function owedWake(p: Pipeline): Promise<{ payer: AuctionRecord; sleepers: number }> {
  const sleepers = SPENT_WAKES_PER_DELIVERY * 2 + 500;
  for (let i = 0; i < sleepers; i++) {
    const direction = i % 3 === 0 ? 'BUY' : 'SELL';
    await p.adapters.auctions.create(
      auctionOf(`s-${i}`, direction, { wakeMark: price(String(150 + Math.floor(i / 7))) }),
    );
  }
  const payer = auctionOf('payer', 'SELL', { spentIn: ['ETH-USD'] });
  await p.adapters.auctions.create(payer);
  return { payer, sleepers };
}

/** Delivers `body` to the auction function, then each continuation it leaves; counts the sleepers woken. */
async function deliverAll(
  p: Pipeline,
  body: string,
  woken: Map<string, number>,
  payer = 'payer',
): Promise<number> {
  let bodies = [body];
  let deliveries = 0;
  while (bodies.length > 0) {
    const outcome = await p.handlers.auction({
      messageId: `d${deliveries}`,
      body: bodies[0]!,
      receiptHandle: '',
      receiveCount: 1,
      sentAtMs: 0,
    });
    // A stale message of the payer: the auction function pays the wake and changes nothing else.
    expect(outcome).toEqual({ status: 'stale' });
    deliveries += 1;
    expect(deliveries).toBeLessThan(10);
    const taken = await takeAll(p);
    count(taken, woken);
    bodies = taken.filter(({ message }) => message.auctionId === payer).map((t) => t.body);
  }
  return deliveries;
}

const count = (taken: readonly { message: AuctionStepMessage }[], woken: Map<string, number>): void => {
  for (const { message } of taken)
    if (message.woken && !message.auctionId.startsWith('payer'))
      woken.set(message.auctionId, (woken.get(message.auctionId) ?? 0) + 1);
};

describe('a spent provider wakes its sleepers a bounded number per delivery (spent-wake-unbounded)', () => {
  it('one delivery wakes at most SPENT_WAKES_PER_DELIVERY; continuations wake every other sleeper once, then drop the debt', async () => {
    const p = createPipeline();
    const { payer, sleepers } = await owedWake(p);
    await wakeSpent(payer, p.deps);
    const first = await takeAll(p);
    const woken = new Map<string, number>();
    count(first, woken);
    // Before: all 2,500 at once, in the step's delivery, and the debt dropped.
    expect(woken.size).toBeLessThanOrEqual(SPENT_WAKES_PER_DELIVERY);
    const owed = await p.adapters.auctions.get('payer');
    expect(owed?.spentIn).toEqual(['ETH-USD']);
    expect(owed?.spentWokenTo).toBeDefined();
    const continuations = first.filter(({ message }) => message.auctionId === 'payer');
    expect(continuations).toHaveLength(1);

    const deliveries = 1 + (await deliverAll(p, continuations[0]!.body, woken));
    expect(deliveries).toBe(Math.ceil(sleepers / SPENT_WAKES_PER_DELIVERY));
    expect(woken.size).toBe(sleepers);
    expect([...woken.values()].every((n) => n === 1)).toBe(true);
    const paid = await p.adapters.auctions.get('payer');
    expect(paid?.spentIn).toBeUndefined();
    expect(paid?.spentWokenTo).toBeUndefined();
    expect(paid).toMatchObject({ state: 'RUNNING', step: 3, fills: [] });
    // Counted as a tick's wakes are, in its market (spent-wakes-uncounted).
    expect(p.telemetry.total(METRICS.AuctionsWoken.name)).toBe(sleepers);
    expect(p.telemetry.marketCounts.get(`${METRICS.AuctionsWoken.name}@ETH-USD`)).toBe(sleepers);
    expect(p.telemetry.unmarked).toEqual(new Set());
  });

  it('a failed wake is counted in the market it failed in, the debt kept (spent-wakes-uncounted)', async () => {
    const p = createPipeline();
    const { payer } = await owedWake(p);
    p.adapters.markets.bumpProvidersEpoch = async () => {
      throw new Error('throttled');
    };
    await wakeSpent(payer, p.deps);
    expect(p.telemetry.marketCounts.get(`${METRICS.AuctionWakeFailures.name}@ETH-USD`)).toBe(1);
    expect(p.telemetry.unmarked).toEqual(new Set());
    expect((await p.adapters.auctions.get('payer'))?.spentIn).toEqual(['ETH-USD']);
  });

  it('a delivery that dies after writing how far it went: its redelivery goes on from there', async () => {
    const crash = crashOnceAt('auctions.replace');
    const p = createPipeline({ crashHook: crash.hook });
    const { payer, sleepers } = await owedWake(p);
    crash.arm();
    await expect(wakeSpent(payer, p.deps)).rejects.toThrow(/auctions.replace/);
    const woken = new Map<string, number>();
    const first = await takeAll(p);
    count(first, woken);
    // Its first part went out, and no continuation: the delivery died before sending it.
    expect(woken.size).toBe(SPENT_WAKES_PER_DELIVERY);
    expect(first.some(({ message }) => message.auctionId === 'payer')).toBe(false);
    expect((await p.adapters.auctions.get('payer'))?.spentWokenTo).toBeDefined();
    // SQS redelivers the message that died (here a stale step of the payer).
    await deliverAll(p, JSON.stringify({ auctionId: 'payer', step: 2, symbol: 'ETH-USD' }), woken);
    expect(woken.size).toBe(sleepers);
    expect([...woken.values()].every((n) => n === 1)).toBe(true);
    expect((await p.adapters.auctions.get('payer'))?.spentIn).toBeUndefined();
  });
});

describe('a wake begun later covers the rest of an earlier one (redundant-spent-wakes)', () => {
  it('two payers of one market: the earlier stops at its next part, the later wakes every sleeper once', async () => {
    const p = createPipeline();
    const { payer, sleepers } = await owedWake(p);
    const second = auctionOf('payer2', 'BUY', { spentIn: ['ETH-USD'] });
    await p.adapters.auctions.create(second);
    const continuationOf = (taken: readonly { body: string; message: AuctionStepMessage }[], id: string) => {
      const bodies = taken.filter(({ message }) => message.auctionId === id).map((t) => t.body);
      expect(bodies).toHaveLength(1);
      return bodies[0]!;
    };

    // The first payer's first part, then its second: a registration's bump meanwhile begins no wake.
    await wakeSpent(payer, p.deps);
    const early = new Map<string, number>();
    const firstPart = await takeAll(p);
    count(firstPart, early);
    expect(early.size).toBe(SPENT_WAKES_PER_DELIVERY);
    await p.adapters.markets.bumpProvidersEpoch('ETH-USD');
    const outcome = await p.handlers.auction({
      messageId: 'p1-2',
      body: continuationOf(firstPart, 'payer'),
      receiptHandle: '',
      receiveCount: 1,
      sentAtMs: 0,
    });
    expect(outcome).toEqual({ status: 'stale' });
    const secondPart = await takeAll(p);
    count(secondPart, early);
    expect(early.size).toBe(SPENT_WAKES_PER_DELIVERY * 2);

    // The second payer begins its wake (from the first sleeper), then the first payer's third part comes.
    await wakeSpent(second, p.deps);
    const late = new Map<string, number>();
    const secondFirst = await takeAll(p);
    count(secondFirst, late);
    const before = p.telemetry.total(METRICS.AuctionsWoken.name);
    await deliverAll(p, continuationOf(secondPart, 'payer'), early);
    // Covered: it wakes nobody, drops its debt and sends no continuation (before: the last 500 again).
    expect(p.telemetry.total(METRICS.AuctionsWoken.name)).toBe(before);
    expect(early.size).toBe(SPENT_WAKES_PER_DELIVERY * 2);
    const stopped = await p.adapters.auctions.get('payer');
    expect(stopped?.spentIn).toBeUndefined();
    expect(stopped?.spentWakeBegan).toBeUndefined();

    // The later wake is not covered by the earlier one: it goes on to every sleeper, each once.
    await deliverAll(p, continuationOf(secondFirst, 'payer2'), late, 'payer2');
    expect(late.size).toBe(sleepers);
    expect([...late.values()].every((n) => n === 1)).toBe(true);
    expect((await p.adapters.auctions.get('payer2'))?.spentIn).toBeUndefined();
    // 2,000 + 2,500 messages; each payer waking all of them sent 5,000.
    expect(p.telemetry.total(METRICS.AuctionsWoken.name)).toBe(SPENT_WAKES_PER_DELIVERY * 2 + sleepers);
  });

  // Review 41: the later wake leaves its own auction out (it planned on the capital as written), but a payer whose plan
  // was read before the earlier wake's bump (committed between that payer's commit and its bump) planned on the spent
  // capital: the earlier wake, stopped, no longer woke it, and it slept out its plan (up to 900 s).
  it('a later payer that planned before the earlier wake began wakes itself; one that planned after does not', async () => {
    const p = createPipeline();
    const { payer } = await owedWake(p);
    const planned = providersEpochOf(await p.adapters.markets.get('ETH-USD'));
    // A BUY sleeper: past the earlier wake's first part (the SELL sleepers come first).
    const second = auctionOf('payer2', 'BUY', { spentIn: ['ETH-USD'], wakeMark: price('150') });
    await p.adapters.auctions.create(second);
    const ownWakes = (taken: readonly { message: AuctionStepMessage }[], id: string) =>
      taken.filter(({ message }) => message.woken && message.auctionId === id).length;

    await wakeSpent(payer, p.deps);
    const firstPart = await takeAll(p);
    expect(ownWakes(firstPart, 'payer2')).toBe(0);
    // payer2 committed on the epoch before the first payer's bump, and begins its own wake after it.
    await wakeSpent(second, p.deps, undefined, planned);
    const secondFirst = await takeAll(p);
    const woken = new Map<string, number>();
    const [continuation] = firstPart.filter(({ message }) => message.auctionId === 'payer');
    await deliverAll(p, continuation!.body, woken);
    // The first payer's rest is covered by payer2's wake: none of it comes again.
    expect(woken.size).toBe(0);
    expect(ownWakes(secondFirst, 'payer2')).toBe(1);

    // A payer whose plan read the epoch its own bump moves on from planned on what every earlier spend left.
    const third = auctionOf('payer3', 'BUY', { spentIn: ['ETH-USD'], wakeMark: price('150') });
    await p.adapters.auctions.create(third);
    const now = providersEpochOf(await p.adapters.markets.get('ETH-USD'));
    await wakeSpent(third, p.deps, undefined, now);
    expect(ownWakes(await takeAll(p), 'payer3')).toBe(0);
  });

  // wakes43-retry-own-step: a wake whose first part sent nothing wrote nothing, so its retry (which knows no epoch its
  // auction planned on) began it afresh, bumped the epoch again and woke its own auction: one step more.
  it('the retry of a wake whose first part sent nothing neither bumps again nor wakes its own auction', async () => {
    const p = createPipeline();
    const { sleepers } = await owedWake(p);
    const planned = providersEpochOf(await p.adapters.markets.get('ETH-USD'));
    const payer2 = auctionOf('payer2', 'BUY', { spentIn: ['ETH-USD'], wakeMark: price('150') });
    await p.adapters.auctions.create(payer2);
    const queue = p.adapters.auctionQueue;
    const sendBatch = queue.sendBatch.bind(queue);
    // The first SendMessageBatch call fails: the part's first batch, so its cursor goes nowhere.
    let failing = 1;
    queue.sendBatch = async (bodies) => {
      if (failing-- > 0) throw new Error('ServiceUnavailable');
      await sendBatch(bodies);
    };
    // The step that spent the provider, its plan committed on the epoch before this wake's bump.
    expect(await wakeSpent(payer2, p.deps, undefined, planned)).toBe(false);
    const kept = await p.adapters.auctions.get('payer2');
    expect(kept).toMatchObject({ spentIn: ['ETH-USD'], spentWakeBegan: { 'ETH-USD': planned + 1 } });
    expect(kept?.spentWokenTo).toBeUndefined();
    const woken = new Map<string, number>();
    count(await takeAll(p), woken);
    // SQS's retry of the step's delivery, stale now, pays the debt's first part.
    const retry = await p.handlers.auction({
      messageId: 'retry',
      body: JSON.stringify({ auctionId: 'payer2', step: 2, symbol: 'ETH-USD' }),
      receiptHandle: '',
      receiveCount: 2,
      sentAtMs: 0,
    });
    expect(retry).toEqual({ status: 'stale' });
    const taken = await takeAll(p);
    count(taken, woken);
    // Before: bumped again, and payer2's own step sent, woken (a step more than its plan).
    expect(taken.filter(({ message }) => message.auctionId === 'payer2' && message.step !== 0)).toEqual([]);
    expect(providersEpochOf(await p.adapters.markets.get('ETH-USD'))).toBe(planned + 1);
    const [continuation] = taken.filter(({ message }) => message.auctionId === 'payer2');
    await deliverAll(p, continuation!.body, woken, 'payer2');
    expect(woken.size).toBe(sleepers);
    expect((await p.adapters.auctions.get('payer2'))?.spentIn).toBeUndefined();
    expect(p.telemetry.total(METRICS.AuctionsWoken.name)).toBe(sleepers);
  });

  // Found by the wake stress test (session 41, fuzz41-duplicate-delivery-covers): SQS delivered the payer's message
  // twice at once; both deliveries read the record before either wrote, both bumped, and the one whose bump came first
  // wrote its progress. Its next part found the market's latest wake past its own (the other delivery's, whose part was
  // thrown away with its write) and stopped: the sleepers after its first part slept out their plans.
  it('a debt delivered twice at once: the delivery whose write lost covers nothing, the other wakes every sleeper', async () => {
    const p = createPipeline();
    const { payer, sleepers } = await owedWake(p);
    const woken = new Map<string, number>();
    // Both read the payer as it was: the first writes its progress, the second's write fails.
    await wakeSpent(payer, p.deps);
    const first = await takeAll(p);
    count(first, woken);
    await wakeSpent(payer, p.deps);
    const twin = await takeAll(p);
    count(twin, woken);
    expect(twin.some(({ message }) => message.auctionId === 'payer')).toBe(false);
    expect(woken.size).toBe(SPENT_WAKES_PER_DELIVERY);
    const [continuation] = first.filter(({ message }) => message.auctionId === 'payer');
    await deliverAll(p, continuation!.body, woken);
    expect(woken.size).toBe(sleepers);
    expect((await p.adapters.auctions.get('payer'))?.spentIn).toBeUndefined();
  });

  it('a payer whose market read fails goes on waking (an extra wake, never a missed one)', async () => {
    const p = createPipeline();
    const { payer } = await owedWake(p);
    const second = auctionOf('payer2', 'BUY', { spentIn: ['ETH-USD'] });
    await p.adapters.auctions.create(second);
    await wakeSpent(payer, p.deps);
    await takeAll(p);
    await wakeSpent(second, p.deps);
    await takeAll(p);
    p.adapters.markets.get = async () => {
      throw new Error('throttled');
    };
    // Its second part, as its continuation's delivery pays it.
    await wakeSpent((await p.adapters.auctions.get('payer'))!, p.deps);
    const woken = new Map<string, number>();
    count(await takeAll(p), woken);
    expect(woken.size).toBe(SPENT_WAKES_PER_DELIVERY);
  });
});

/** A provider registration through the admin service, on the pipeline's adapters. */
const register = (p: Pipeline, id: string) =>
  handleAdmin(
    {
      action: 'registerProvider',
      id,
      capital: '1000',
      maxDiscount: '0.02',
      maxLot: '5',
      symbols: ['ETH-USD'],
    },
    { ...p.adapters, config: p.config, telemetry: p.telemetry, nowMs: () => p.clock.nowMs() },
  );
const deliver = (p: Pipeline, body: string) =>
  p.handlers.auction({ messageId: 'd', body, receiptHandle: '', receiveCount: 1, sentAtMs: 0 });

describe("a registration's wake covers a spent provider's begun before it (registration-bump-covers-spent)", () => {
  /** Every message on the auction queue now, taken off it: the bodies of those of `of` (a payer, or registrations). */
  async function takeOf(p: Pipeline, woken: Map<string, number>, of: string): Promise<string[]> {
    const bodies: string[] = [];
    for (;;) {
      const batch = await p.adapters.auctionQueue.receive(10, 300);
      if (batch.length === 0) return bodies;
      for (const m of batch) {
        await p.adapters.auctionQueue.delete(m.receiptHandle);
        const message = parseAuctionQueueMessage(m.body);
        if (isRegistrationWakeMessage(message)) {
          if (of === 'registration') bodies.push(m.body);
        } else if (message.auctionId === of) bodies.push(m.body);
        else if (message.woken) woken.set(message.auctionId, (woken.get(message.auctionId) ?? 0) + 1);
      }
    }
  }
  const spentMark = async (p: Pipeline) => (await p.adapters.markets.get('ETH-USD'))?.spentWakeEpoch;

  it("a payer's next part after a registration's wake went on stops; the registration wakes every sleeper once", async () => {
    const p = createPipeline();
    const { payer, sleepers } = await owedWake(p);
    await wakeSpent(payer, p.deps);
    const [payerRest] = await takeOf(p, new Map(), 'payer');
    const began = (await p.adapters.auctions.get('payer'))?.spentWakeBegan?.['ETH-USD'];
    expect(await spentMark(p)).toBe(began);

    expect(await register(p, 'lp1')).toMatchObject({
      woken: SPENT_WAKES_PER_DELIVERY,
      wakeContinues: ['ETH-USD'],
    });
    const woken = new Map<string, number>();
    let bodies = await takeOf(p, woken, 'registration');
    // Marked with the registration's epoch once its rest is recorded and sent on (before: the payer's still).
    const epoch = providersEpochOf(await p.adapters.markets.get('ETH-USD'));
    expect(epoch).toBeGreaterThan(began!);
    expect(await spentMark(p)).toBe(epoch);

    // The payer's second part: covered, it wakes nobody and drops its debt (before: 1,000 more, then 500).
    const before = p.telemetry.total(METRICS.AuctionsWoken.name);
    expect(await deliver(p, payerRest!)).toEqual({ status: 'stale' });
    expect(await takeOf(p, woken, 'payer')).toEqual([]);
    expect(p.telemetry.total(METRICS.AuctionsWoken.name)).toBe(before);
    expect((await p.adapters.auctions.get('payer'))?.spentIn).toBeUndefined();

    while (bodies.length > 0) {
      await deliver(p, bodies[0]!);
      bodies = [...bodies.slice(1), ...(await takeOf(p, woken, 'registration'))];
    }
    expect(woken.size).toBe(sleepers);
    expect([...woken.values()].every((n) => n === 1)).toBe(true);
    expect(p.telemetry.total(METRICS.AuctionsWoken.name)).toBe(SPENT_WAKES_PER_DELIVERY + sleepers);
  });

  it('a registration whose rest was not sent on marks nothing: the payer goes on; a continuation going on with it marks it', async () => {
    const p = createPipeline();
    const { payer } = await owedWake(p);
    expect(await register(p, 'lp1')).toMatchObject({ wakeContinues: ['ETH-USD'] });
    const [lp1Rest] = await takeOf(p, new Map(), 'registration');
    expect(await spentMark(p)).toBe(1);
    await wakeSpent(payer, p.deps);
    const [payerRest] = await takeOf(p, new Map(), 'payer');
    expect(await spentMark(p)).toBe(2);

    p.adapters.auctionQueue.faults.failWhen = (body) => body.includes('registrationWake');
    expect(await register(p, 'lp2')).toMatchObject({
      wakeError: expect.stringMatching(/ETH-USD the rest of the wake not sent on/),
    });
    p.adapters.auctionQueue.faults.failWhen = undefined;
    await takeOf(p, new Map(), 'registration');
    // lp2's wake, recorded, may go no further than its call: the payer's rest is still its own.
    expect(await spentMark(p)).toBe(2);
    const woken = new Map<string, number>();
    await deliver(p, payerRest!);
    await takeOf(p, woken, 'payer');
    expect(woken.size).toBe(SPENT_WAKES_PER_DELIVERY);

    // lp1's continuation goes on with lp2's wake (fuzz41-registration-wake-stranded): it goes on, and is marked.
    expect(await deliver(p, lp1Rest!)).toMatchObject({ status: 'woken', more: true });
    expect(await spentMark(p)).toBe(3);
  });

  it("a registration's wake done in its call marks the market", async () => {
    const p = createPipeline();
    for (let i = 0; i < 3; i++)
      await p.adapters.auctions.create(auctionOf(`s-${i}`, 'SELL', { wakeMark: price('150') }));
    expect(await register(p, 'lp1')).toEqual({ ok: true, id: 'lp1', woken: 3 });
    expect(await spentMark(p)).toBe(1);
  });

  it('a mark that fails costs only extra wakes: the registration is answered as before', async () => {
    const p = createPipeline();
    await p.adapters.auctions.create(auctionOf('s-0', 'SELL', { wakeMark: price('150') }));
    p.adapters.markets.markSpentWake = async () => {
      throw new Error('throttled');
    };
    expect(await register(p, 'lp1')).toEqual({ ok: true, id: 'lp1', woken: 1 });
    expect(p.telemetry.warnings).toContain(
      "a registration's wake not marked; a spent provider's wake of its market goes on",
    );
  });
});

// Review 42: a continuation's part whose record write lost to a later registration's call (its record landed between
// the part's read and its write) took the loss for another delivery of its part, which goes on, and sent nothing on;
// the later call's continuation was not sent (its answer said so). Nobody carried the rest, and the payer, covered by
// the earlier registration's mark, had dropped its debt: sleepers past the continuation's part were never woken.
describe('a registration whose part lost its record to a later one (review42-registration-record-overwritten)', () => {
  /** Every message on the auction queue now, taken off it: sleepers woken counted, the others' bodies returned. */
  async function take(p: Pipeline, woken: Map<string, number>): Promise<string[]> {
    const bodies: string[] = [];
    for (;;) {
      const batch = await p.adapters.auctionQueue.receive(10, 300);
      if (batch.length === 0) return bodies;
      for (const m of batch) {
        await p.adapters.auctionQueue.delete(m.receiptHandle);
        const message = parseAuctionQueueMessage(m.body);
        if (!isRegistrationWakeMessage(message) && message.woken && message.auctionId.startsWith('s-'))
          woken.set(message.auctionId, (woken.get(message.auctionId) ?? 0) + 1);
        else bodies.push(m.body);
      }
    }
  }

  it("the continuation goes on with the later wake: every sleeper the payer owed is woken after the payer's commit", async () => {
    const p = createPipeline();
    const { payer, sleepers } = await owedWake(p);
    await wakeSpent(payer, p.deps);
    const [payerRest] = await take(p, new Map());
    expect(await register(p, 'lp1')).toMatchObject({ wakeContinues: ['ETH-USD'] });
    // Woken since the payer's commit (its own first part's are not needed for this).
    const woken = new Map<string, number>();
    const [lp1Rest] = await take(p, woken);
    // lp1's wake is marked: the payer's next part stops, covered, and drops its debt.
    expect(await deliver(p, payerRest!)).toEqual({ status: 'stale' });
    expect(await take(p, woken)).toEqual([]);
    expect((await p.adapters.auctions.get('payer'))?.spentIn).toBeUndefined();

    // lp2 registers while lp1's continuation wakes its part: lp2's record lands first, its continuation not sent.
    const markets = p.adapters.markets;
    const record = markets.recordRegistrationWake.bind(markets);
    let lp2: Awaited<ReturnType<typeof register>> | undefined;
    markets.recordRegistrationWake = async (symbol, wake, expectedPart) => {
      if (lp2 === undefined && expectedPart !== undefined) {
        markets.recordRegistrationWake = record;
        p.adapters.auctionQueue.faults.failWhen = (body) => body.includes('registrationWake');
        lp2 = await register(p, 'lp2');
        p.adapters.auctionQueue.faults.failWhen = undefined;
      }
      return record(symbol, wake, expectedPart);
    };
    let bodies = [lp1Rest!];
    for (let deliveries = 0; bodies.length > 0; deliveries++) {
      expect(deliveries).toBeLessThan(10);
      await deliver(p, bodies[0]!);
      bodies = [...bodies.slice(1), ...(await take(p, woken))];
    }
    expect(lp2).toMatchObject({
      wakeError: expect.stringMatching(/ETH-USD the rest of the wake not sent on/),
    });
    // Before: 2,000 (lp1's two parts; lp2's first part), the last 500 woken by nobody.
    expect(woken.size).toBe(sleepers);
    expect((await p.adapters.markets.get('ETH-USD'))?.registrationWake?.done).toBe(true);
  });

  it("a call whose record lost to a later call's carries that one's wake on, and answers that it goes on", async () => {
    const p = createPipeline();
    const sleepers = SPENT_WAKES_PER_DELIVERY * 2 + 500;
    for (let i = 0; i < sleepers; i++)
      await p.adapters.auctions.create(
        auctionOf(`s-${i}`, 'SELL', { wakeMark: price(String(150 + (i % 9))) }),
      );
    // lp2 registers between lp1's part and its record (lp1 bumped first), its continuation not sent.
    const markets = p.adapters.markets;
    const record = markets.recordRegistrationWake.bind(markets);
    let lp2: Awaited<ReturnType<typeof register>> | undefined;
    markets.recordRegistrationWake = async (symbol, wake, expectedPart) => {
      markets.recordRegistrationWake = record;
      p.adapters.auctionQueue.faults.failWhen = (body) => body.includes('registrationWake');
      lp2 = await register(p, 'lp2');
      p.adapters.auctionQueue.faults.failWhen = undefined;
      return record(symbol, wake, expectedPart);
    };
    // Before: { woken: 1000 } alone, as if lp2's wake covered the rest, though nothing carried it.
    expect(await register(p, 'lp1')).toEqual({
      ok: true,
      id: 'lp1',
      woken: SPENT_WAKES_PER_DELIVERY,
      wakeContinues: ['ETH-USD'],
    });
    expect(lp2).toMatchObject({
      wakeError: expect.stringMatching(/ETH-USD the rest of the wake not sent on/),
    });
    // lp2's wake, carried on by lp1's call, is marked (lp1's bump, before it, is covered by it).
    expect((await p.adapters.markets.get('ETH-USD'))?.spentWakeEpoch).toBe(2);
    const woken = new Map<string, number>();
    let bodies = await take(p, woken);
    for (let deliveries = 0; bodies.length > 0; deliveries++) {
      expect(deliveries).toBeLessThan(10);
      await deliver(p, bodies[0]!);
      bodies = [...bodies.slice(1), ...(await take(p, woken))];
    }
    expect(woken.size).toBe(sleepers);
  });
});
