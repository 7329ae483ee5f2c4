import { describe, expect, it, vi } from 'vitest';
import { base, price } from '../../shared/domain/units.ts';
import { METRICS } from '../../shared/metrics.ts';
import {
  type AuctionQueueMessage,
  type AuctionRecord,
  isRegistrationWakeMessage,
} from '../../shared/ports/index.ts';
import { parseAuctionQueueMessage } from '../../shared/schemas/messages.ts';
import { handleAdmin } from '../../shared/services/admin.ts';
import { REGISTRATION_WAKES_PER_PART } from '../../shared/services/registration-wake.ts';
import { QUEUES } from '../../shared/topology.ts';
import { crashOnceAt, createPipeline, type Pipeline } from '../support/pipeline.ts';

const sleeperOf = (i: number): AuctionRecord => ({
  id: `s-${i}`,
  liquidationId: `s-${i}:liq`,
  symbol: 'ETH-USD',
  direction: i % 3 === 0 ? 'BUY' : 'SELL',
  lot: base('1'),
  remainingLot: base('1'),
  top: price('200'),
  startedAtMs: 1,
  resets: 0,
  step: 3,
  state: 'RUNNING',
  fills: [],
  // Groups of 7 equal wake marks: the cursor goes on after a sleeper by its id too.
  wakeMark: price(String(150 + Math.floor(i / 7))),
  version: 0,
});

const SLEEPERS = REGISTRATION_WAKES_PER_PART * 2 + 500;

/** 2,500 sleepers of ETH-USD, and the admin deps of the pipeline. */
async function sleeping(options: Parameters<typeof createPipeline>[0] = {}) {
  const p = createPipeline(options);
  for (let i = 0; i < SLEEPERS; i++) await p.adapters.auctions.create(sleeperOf(i));
  const admin = { ...p.adapters, config: p.config, telemetry: p.telemetry, nowMs: () => p.clock.nowMs() };
  const register = (id: string) =>
    handleAdmin(
      {
        action: 'registerProvider',
        id,
        capital: '1000',
        maxDiscount: '0.02',
        maxLot: '5',
        symbols: ['ETH-USD'],
      },
      admin,
    );
  return { p, register };
}

interface Taken {
  readonly body: string;
  readonly message: AuctionQueueMessage;
}

/** Every message on the auction queue now, taken off it; the sleepers woken are counted in `woken`. */
async function takeAll(p: Pipeline, woken: Map<string, number>): Promise<string[]> {
  const taken: Taken[] = [];
  for (;;) {
    const batch = await p.adapters.auctionQueue.receive(10, 300);
    if (batch.length === 0) break;
    for (const m of batch) {
      await p.adapters.auctionQueue.delete(m.receiptHandle);
      taken.push({ body: m.body, message: parseAuctionQueueMessage(m.body) });
    }
  }
  for (const { message } of taken)
    if (!isRegistrationWakeMessage(message) && message.woken)
      woken.set(message.auctionId, (woken.get(message.auctionId) ?? 0) + 1);
  return taken.filter(({ message }) => isRegistrationWakeMessage(message)).map((t) => t.body);
}

const deliver = (p: Pipeline, body: string, id = 'd') =>
  p.handlers.auction({ messageId: id, body, receiptHandle: '', receiveCount: 1, sentAtMs: 0 });

/** Delivers each continuation in `bodies` and those they leave, until none is left; returns the deliveries. */
async function deliverAll(p: Pipeline, bodies: string[], woken: Map<string, number>): Promise<number> {
  let deliveries = 0;
  let left = bodies;
  while (left.length > 0) {
    const [body, ...rest] = left;
    await deliver(p, body!, `d${deliveries}`);
    deliveries += 1;
    expect(deliveries).toBeLessThan(20);
    left = [...rest, ...(await takeAll(p, woken))];
  }
  return deliveries;
}

const onceEach = (woken: Map<string, number>): void => {
  expect(woken.size).toBe(SLEEPERS);
  expect([...woken.values()].every((n) => n === 1)).toBe(true);
};

describe("a registration's wake is bounded, the rest goes on in continuations (registration-wake-unbounded)", () => {
  it('the admin call wakes at most REGISTRATION_WAKES_PER_PART; continuations wake every other sleeper once', async () => {
    const { p, register } = await sleeping();
    // Before: woken 2,500 in the call, all of them.
    expect(await register('lp1')).toEqual({
      ok: true,
      id: 'lp1',
      woken: REGISTRATION_WAKES_PER_PART,
      wakeContinues: ['ETH-USD'],
    });
    const woken = new Map<string, number>();
    const continuations = await takeAll(p, woken);
    expect(woken.size).toBe(REGISTRATION_WAKES_PER_PART);
    expect(continuations).toEqual([JSON.stringify({ registrationWake: { symbol: 'ETH-USD', epoch: 1 } })]);

    expect(await deliverAll(p, continuations, woken)).toBe(2);
    onceEach(woken);
    expect((await p.adapters.markets.get('ETH-USD'))?.registrationWake).toMatchObject({
      epoch: 1,
      part: 3,
      done: true,
    });
    // Counted in its market, in the call and in the auction function alike.
    expect(p.telemetry.marketCounts.get(`${METRICS.AuctionsWoken.name}@ETH-USD`)).toBe(SLEEPERS);
    expect(p.telemetry.total(METRICS.AuctionWakeFailures.name)).toBe(0);
    expect(p.telemetry.unmarked).toEqual(new Set());
  });

  it('a continuation delivered twice (at-least-once): each sleeper still woken once, the extra message stale', async () => {
    const { p, register } = await sleeping();
    await register('lp1');
    const woken = new Map<string, number>();
    const [first] = await takeAll(p, woken);
    expect(await deliver(p, first!)).toEqual({
      status: 'woken',
      woken: REGISTRATION_WAKES_PER_PART,
      more: true,
    });
    const [second] = await takeAll(p, woken);
    // The duplicate of the first, delivered after it: the record says where to go on, not the message.
    expect(await deliver(p, first!)).toEqual({ status: 'woken', woken: 500, more: false });
    expect(await takeAll(p, woken)).toEqual([]);
    expect(await deliver(p, second!)).toEqual({ status: 'stale' });
    expect(await takeAll(p, woken)).toEqual([]);
    onceEach(woken);
    expect(p.telemetry.marketCounts.get(`${METRICS.AuctionsWoken.name}@ETH-USD`)).toBe(SLEEPERS);
  });

  it('a part that fails is counted in its market and retried by its redelivery; one dying after its record goes on', async () => {
    const crash = crashOnceAt('markets.recordRegistrationWake');
    const { p, register } = await sleeping({ crashHook: crash.hook });
    await register('lp1');
    const woken = new Map<string, number>();
    const [first] = await takeAll(p, woken);
    p.adapters.auctionQueue.faults.failWhen = (body) => body.includes('"woken":true');
    await expect(deliver(p, first!)).rejects.toThrow(/registration-wake\/failed: ETH-USD epoch 1/);
    p.adapters.auctionQueue.faults.failWhen = undefined;
    expect(p.telemetry.marketCounts.get(`${METRICS.AuctionWakeFailures.name}@ETH-USD`)).toBe(1);
    expect(await takeAll(p, woken)).toEqual([]);
    expect(woken.size).toBe(REGISTRATION_WAKES_PER_PART);

    // Its redelivery dies after recording its part, before sending the next continuation.
    crash.arm();
    await expect(deliver(p, first!)).rejects.toThrow(/markets.recordRegistrationWake/);
    expect(await takeAll(p, woken)).toEqual([]);
    expect(woken.size).toBe(REGISTRATION_WAKES_PER_PART * 2);
    // SQS redelivers it again: it goes on from the record, not from where the message began.
    await deliverAll(p, [first!], woken);
    onceEach(woken);
  });

  it('a continuation that keeps failing is dead-lettered, never dropped', async () => {
    const { p, register } = await sleeping();
    await register('lp1');
    await takeAll(p, new Map());
    // The continuation is on the queue again (as sent): every delivery of it fails.
    await p.adapters.auctionQueue.send(JSON.stringify({ registrationWake: { symbol: 'ETH-USD', epoch: 1 } }));
    vi.spyOn(p.adapters.auctions, 'sleepers').mockRejectedValue(new Error('ThrottlingException'));
    const maxReceives = QUEUES.find((q) => q.id === 'auctionSteps')?.deadLetter?.maxReceiveCount ?? 0;
    expect(maxReceives).toBeGreaterThan(1);
    for (let receive = 0; receive <= maxReceives; receive++) {
      for (const m of await p.adapters.auctionQueue.receive(10, 30))
        await expect(p.handlers.auction(m)).rejects.toThrow(/registration-wake\/failed/);
      p.clock.advance(31_000);
    }
    const dead = await p.adapters.auctionDeadLetters.receive(10, 30);
    expect(dead.map((m) => m.body)).toEqual([
      JSON.stringify({ registrationWake: { symbol: 'ETH-USD', epoch: 1 } }),
    ]);
    expect(p.telemetry.marketCounts.get(`${METRICS.AuctionWakeFailures.name}@ETH-USD`)).toBe(maxReceives);
  });

  it("a later registration's wake covers an earlier one's: the earlier continuation goes on with it", async () => {
    const { p, register } = await sleeping();
    await register('lp1');
    const early = new Map<string, number>();
    const [lp1Rest] = await takeAll(p, early);
    expect(await register('lp2')).toMatchObject({ wakeContinues: ['ETH-USD'] });
    const late = new Map<string, number>();
    const [lp2Rest] = await takeAll(p, late);
    expect(lp2Rest).toContain('"epoch":2');
    // lp2's wake began after lp1's bump and wakes every sleeper from the first: lp1's rest is lp2's next part.
    expect(await deliver(p, lp1Rest!)).toEqual({
      status: 'woken',
      woken: REGISTRATION_WAKES_PER_PART,
      more: true,
    });
    const next = await takeAll(p, late);
    expect(next).toEqual([JSON.stringify({ registrationWake: { symbol: 'ETH-USD', epoch: 2 } })]);
    await deliverAll(p, [lp2Rest!, ...next], late);
    onceEach(late);
    expect(p.telemetry.marketCounts.get(`${METRICS.AuctionsWoken.name}@ETH-USD`)).toBe(
      REGISTRATION_WAKES_PER_PART + SLEEPERS,
    );
  });

  // Found by review of the wake stress test (session 41, fuzz41-registration-wake-stranded): a later registration
  // whose continuation could not be sent had recorded its wake all the same, and the earlier one's continuation, finding
  // a later epoch, stopped: the sleepers past the later call's first part were woken by neither, though the earlier
  // answer said its wake went on (and the later one's said they would see it when they step).
  it("an earlier wake's continuation goes on with a later one whose own continuation was not sent", async () => {
    const { p, register } = await sleeping();
    expect(await register('lp1')).toMatchObject({ wakeContinues: ['ETH-USD'] });
    const early = new Map<string, number>();
    const [lp1Rest] = await takeAll(p, early);
    p.adapters.auctionQueue.faults.failWhen = (body) => body.includes('registrationWake');
    expect(await register('lp2')).toMatchObject({
      woken: REGISTRATION_WAKES_PER_PART,
      wakeError: expect.stringMatching(/ETH-USD the rest of the wake not sent on/),
    });
    p.adapters.auctionQueue.faults.failWhen = undefined;
    const late = new Map<string, number>();
    expect(await takeAll(p, late)).toEqual([]);
    // lp1's continuation is the only message left: it wakes every sleeper past lp2's first part, once.
    await deliverAll(p, [lp1Rest!], late);
    onceEach(late);
    expect((await p.adapters.markets.get('ETH-USD'))?.registrationWake).toMatchObject({
      epoch: 2,
      done: true,
    });
  });

  it('a continuation that cannot be sent: the answer says so, counted in its market', async () => {
    const { p, register } = await sleeping();
    p.adapters.auctionQueue.faults.failWhen = (body) => body.includes('registrationWake');
    const answer = await register('lp1');
    expect(answer).toMatchObject({ ok: true, woken: REGISTRATION_WAKES_PER_PART });
    expect(answer).not.toHaveProperty('wakeContinues');
    expect(answer).toHaveProperty(
      'wakeError',
      expect.stringMatching(/ETH-USD the rest of the wake not sent on/),
    );
    expect(p.telemetry.marketCounts.get(`${METRICS.AuctionWakeFailures.name}@ETH-USD`)).toBe(1);
    expect(p.telemetry.warnings).toContain(
      'provider registered; sleeping auctions not woken, they see it when they step',
    );
  });
});
