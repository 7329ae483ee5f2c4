import { AsyncLocalStorage } from 'node:async_hooks';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { QueueSendError } from '../../shared/adapters/embedded/queue.ts';
import { price } from '../../shared/domain/units.ts';
import { METRICS } from '../../shared/metrics.ts';
import {
  type AuctionRecord,
  InjectedCrash,
  isRegistrationWakeMessage,
  type ReceivedMessage,
} from '../../shared/ports/index.ts';
import { parseAuctionQueueMessage } from '../../shared/schemas/messages.ts';
import { handleAdmin } from '../../shared/services/admin.ts';
import { REGISTRATION_WAKES_PER_PART } from '../../shared/services/registration-wake.ts';
import { SPENT_WAKES_PER_DELIVERY, wakeContinuationOf } from '../../shared/services/sleeping.ts';
import { Rng } from '../../shared/sim/random.ts';
import { auctionRecord } from '../support/auction-records.ts';
import { createPipeline } from '../support/pipeline.ts';

/**
 * The wakes of sleeping auctions that go on in parts (session 41): a registration's (its admin call, then
 * continuation messages) and a spent provider's (paid by its auction's deliveries, covered by a later one), racing
 * each other (two registrations at once too, each answerable for its own bumps), crashes at every write and send,
 * duplicated deliveries, sleepers planning again or ending meanwhile. The pipeline fuzzing never reaches them: its
 * runs have a few sleepers, never a wake's second part, and no invariant of who was woken. Here every sleeper is a
 * bare record whose woken step message is only noted, and at the end every wake owed must have reached every sleeper
 * that planned before its bump: a step message of the plan it slept on, sent after the bump, or a plan made since.
 * FUZZ_RUNS and FUZZ_SEED as fuzz.test.ts.
 */
const RUNS = Math.max(1, Math.ceil(Number(process.env.FUZZ_RUNS ?? 6) / 3));
const SEED = Number(process.env.FUZZ_SEED ?? 20240404);

const MARKETS = ['ETH-USD', 'BTC-USD'] as const;
type Market = (typeof MARKETS)[number];
const marketsArb = fc.constantFrom<Market[]>(
  ['ETH-USD'],
  ['BTC-USD'],
  ['ETH-USD', 'BTC-USD'],
  ['BTC-USD', 'ETH-USD'],
);

type Event =
  | { readonly kind: 'register'; readonly markets: Market[]; readonly alongside?: Market[] }
  | { readonly kind: 'debt'; readonly markets: Market[]; readonly ended: boolean; readonly own: Market }
  | { readonly kind: 'replan'; readonly count: number }
  | { readonly kind: 'end'; readonly count: number }
  | { readonly kind: 'deliver'; readonly rounds: number };

const eventArb: fc.Arbitrary<Event> = fc.oneof(
  fc.record({ kind: fc.constant('register' as const), markets: marketsArb }),
  // Two registrations at once: one's record may land between the other's bump and record, or a continuation's part.
  fc.record({ kind: fc.constant('register' as const), markets: marketsArb, alongside: marketsArb }),
  fc.record({
    kind: fc.constant('debt' as const),
    markets: marketsArb,
    ended: fc.boolean(),
    own: fc.constantFrom<Market>(...MARKETS),
  }),
  fc.record({ kind: fc.constant('replan' as const), count: fc.integer({ min: 1, max: 200 }) }),
  fc.record({ kind: fc.constant('end' as const), count: fc.integer({ min: 1, max: 50 }) }),
  fc.record({ kind: fc.constant('deliver' as const), rounds: fc.integer({ min: 1, max: 4 }) }),
);

const scenarioArb = fc.record({
  // Across a part's budget in one market, a few in the other: a part crosses markets and sides.
  eth: fc.integer({ min: 0, max: REGISTRATION_WAKES_PER_PART * 2 + 300 }),
  btc: fc.integer({ min: 0, max: 300 }),
  events: fc.array(eventArb, { minLength: 2, maxLength: 10 }),
  crashRate: fc.constantFrom(0, 0, 0.002, 0.01, 0.05),
  dupRate: fc.constantFrom(0, 0.1),
  // Sends that fail without storing (SQS's errors; a crash is a death after the send).
  // Per message: a part of 1,000 then fails one time in 2 or in 7.
  failRate: fc.constantFrom(0, 0, 0.0005, 0.002),
  // Of a registration's continuation, sent once per part: often, or its failures are never met.
  continuationFailRate: fc.constantFrom(0, 0.3),
  concurrent: fc.boolean(),
  seed: fc.integer({ min: 1, max: 1_000_000 }),
});
type Scenario = typeof scenarioArb extends fc.Arbitrary<infer S> ? S : never;

const sleeperOf = (id: string, symbol: Market, r: Rng): AuctionRecord => {
  const direction = r.chance(0.5) ? 'BUY' : 'SELL';
  // Few distinct marks: the cursor goes on after a sleeper by its id too.
  return auctionRecord(id, { symbol, direction, wakeMark: price(String(150 + r.int(0, 20))) });
};

/** A plan a sleeper slept on (step), made at `seq`; Infinity: ended. */
interface Plan {
  readonly seq: number;
  readonly step: number;
}
interface Bump {
  readonly symbol: string;
  readonly seq: number;
  /** The registration whose call bumped (none: a spent provider's wake). */
  readonly by: string | undefined;
}
/** A spent provider's debt: its auction, the markets it spent, and when its commit was. */
interface Debt {
  readonly id: string;
  readonly markets: readonly string[];
  readonly seq: number;
}

async function run(s: Scenario): Promise<void> {
  const r = new Rng(s.seed);
  let armed = false;
  const crashRng = new Rng(s.seed + 1);
  const crashes: string[] = [];
  const p = createPipeline({
    crashHook: (point) => {
      if (!armed || /\.(receive|delete|changeVisibility)$/.test(point)) return;
      if (s.crashRate > 0 && crashRng.next() < s.crashRate) {
        crashes.push(point);
        throw new InjectedCrash(point);
      }
    },
  });
  let seq = 0;
  const plans = new Map<string, Plan[]>();
  const woken = new Map<string, Plan[]>();
  const bumps: Bump[] = [];
  const debtors = new Set<string>();
  const debts: Debt[] = [];

  // Every bump, and every woken step message stored (a send that crashes after storing it counts).
  const markets = p.adapters.markets;
  const caller = new AsyncLocalStorage<string>();
  const bump = markets.bumpProvidersEpoch.bind(markets);
  markets.bumpProvidersEpoch = async (symbol) => {
    const at = ++seq;
    const note = () => bumps.push({ symbol, seq: at, by: caller.getStore() });
    try {
      const epoch = await bump(symbol);
      note();
      return epoch;
    } catch (error) {
      if (error instanceof InjectedCrash) note();
      throw error;
    }
  };
  const queue = p.adapters.auctionQueue;
  const noteSent = (bodies: readonly string[], at: number) => {
    for (const body of bodies) {
      const m = parseAuctionQueueMessage(body);
      // Step 0: a debt's continuation (an ended auction's, by its plan, is marked woken), no wake.
      if (isRegistrationWakeMessage(m) || !m.woken || m.step === 0) continue;
      woken.set(m.auctionId, [...(woken.get(m.auctionId) ?? []), { seq: at, step: m.step }]);
    }
  };
  // Sends that fail without storing (SQS's errors; a crash is a death after the send), decided per entry.
  const failRng = new Rng(s.seed + 2);
  const fails = (body: string) =>
    armed && failRng.next() < (body.includes('registrationWake') ? s.continuationFailRate : s.failRate);
  for (const method of ['send', 'sendBatch'] as const) {
    const original = (queue[method] as (...args: unknown[]) => Promise<void>).bind(queue);
    (queue as unknown as Record<string, unknown>)[method] = async (...args: unknown[]) => {
      const all = method === 'send' ? [args[0] as string] : (args[0] as string[]);
      const unsent = all.flatMap((body, i) => (fails(body) ? [i] : []));
      const bodies = all.filter((_, i) => !unsent.includes(i));
      const at = ++seq;
      if (bodies.length > 0) {
        try {
          await (method === 'send' ? original(...args) : original(bodies));
        } catch (error) {
          if (error instanceof InjectedCrash) noteSent(bodies, at);
          throw error;
        }
        noteSent(bodies, at);
      }
      if (unsent.length > 0) throw new QueueSendError(`queue/send-failed: ${unsent.length} not sent`, unsent);
    };
  }
  /** The harness's own writes and sends (an operator's, a test's set-up) do not crash. */
  const quietly = async <T>(work: () => Promise<T>): Promise<T> => {
    const wasArmed = armed;
    armed = false;
    try {
      return await work();
    } finally {
      armed = wasArmed;
    }
  };
  const plan = (id: string, step: number) => plans.set(id, [...(plans.get(id) ?? []), { seq: ++seq, step }]);

  const sleepers: string[] = [];
  for (const [symbol, count] of [
    ['ETH-USD', s.eth],
    ['BTC-USD', s.btc],
  ] as const) {
    for (let i = 0; i < count; i++) {
      const record = sleeperOf(`${symbol}-s${i}`, symbol, r);
      await p.adapters.auctions.create(record);
      sleepers.push(record.id);
      plan(record.id, record.step);
    }
  }
  if (s.dupRate > 0) queue.faults.duplicateWhen = () => r.next() < s.dupRate;

  /** Delivers one round of the auction queue; woken steps of the bare sleepers are only noted (taken off). */
  const handle = async (m: ReceivedMessage): Promise<void> => {
    const message = parseAuctionQueueMessage(m.body);
    try {
      // A debtor's step 0: the message that goes on with its debt (its own real steps are only noted).
      if (isRegistrationWakeMessage(message) || (debtors.has(message.auctionId) && message.step === 0))
        await p.handlers.auction(m);
      await queue.delete(m.receiptHandle);
    } catch {
      // Left in flight: redelivered after the visibility timeout, dead-lettered after maxReceiveCount.
    }
  };
  const round = async (): Promise<number> => {
    const batch = await queue.receive(10, 30);
    if (s.concurrent) await Promise.all(batch.map(handle));
    else for (const m of batch) await handle(m);
    return batch.length;
  };
  const redrive = async (): Promise<number> => {
    let moved = 0;
    for (;;) {
      const batch = await p.adapters.auctionDeadLetters.receive(10, 30);
      if (batch.length === 0) return moved;
      for (const m of batch) {
        await quietly(() => queue.send(m.body));
        await p.adapters.auctionDeadLetters.delete(m.receiptHandle);
        moved += 1;
      }
    }
  };
  const drain = async (): Promise<void> => {
    for (let i = 0; i < 20_000; i++) {
      if ((await round()) > 0) continue;
      const depth = await queue.depth();
      if (depth.visible + depth.inFlight + depth.delayed === 0) return;
      p.clock.advance(5000);
    }
    throw new Error('the auction queue never drained');
  };

  /** Registers until an answer says every wake went (an operator retries an error or a wakeError). */
  let providers = 0;
  const obligedRegistrations: { id: string; from: number; to: number; markets: ReadonlySet<string> }[] = [];
  /** Registers, again after a call that threw (the operator sees an error), as an operator would. */
  const register = async (symbols: Market[]): Promise<void> => {
    const id = `lp-${++providers}`;
    for (let attempt = 0; attempt < 10; attempt++) {
      const from = seq;
      let owedIn: ReadonlySet<string> | undefined;
      // A call waking hundreds crashes at some send at the higher rates: the later retries run clean.
      const wasArmed = armed;
      armed = attempt < 5;
      try {
        const answer = await caller.run(id, () =>
          handleAdmin(
            { action: 'registerProvider', id, capital: '1000', maxDiscount: '0.02', maxLot: '5', symbols },
            { ...p.adapters, config: p.config, telemetry: p.telemetry, nowMs: () => p.clock.nowMs() },
          ),
        );
        // A market whose wake failed but goes on in a continuation is retried by the auction function: owed all the
        // same. One that does not go on is the answer's warning (its sleepers see the provider when they step): the
        // operator goes on, and only that market's wake is not owed.
        const goesOn = new Set('wakeContinues' in answer ? (answer.wakeContinues ?? []) : []);
        const failedIn = ('wakeError' in answer ? (answer.wakeError ?? '') : '')
          .split('; ')
          .filter((e) => e.length > 0)
          .map((e) => e.split(' ')[0]!);
        if (answer.ok)
          owedIn = new Set(symbols.filter((symbol) => goesOn.has(symbol) || !failedIn.includes(symbol)));
      } catch (error) {
        if (!(error instanceof InjectedCrash)) throw error;
      } finally {
        armed = wasArmed;
      }
      if (owedIn) {
        obligedRegistrations.push({ id, from, to: seq, markets: owedIn });
        return;
      }
    }
    throw new Error(`registration of ${id} never answered`);
  };

  const owe = async (e: Extract<Event, { kind: 'debt' }>): Promise<void> => {
    const id = `debtor-${debts.length + 1}`;
    debtors.add(id);
    const record: AuctionRecord = {
      ...sleeperOf(id, e.own, r),
      step: 5,
      spentIn: e.markets,
      ...(e.ended ? { state: 'EXHAUSTED' as const, endedBy: 'plan' as const } : {}),
    };
    const { wakeMark: _, ...awake } = record;
    await quietly(() => p.adapters.auctions.create(e.ended ? awake : record));
    if (!e.ended) {
      sleepers.push(id);
      plan(id, record.step);
    }
    // The commit that spent a provider: a sleeper that planned before it planned on the capital it spent.
    debts.push({ id, markets: e.markets, seq: ++seq });
    // The message that goes on with the debt (its step's delivery died after the commit).
    await quietly(() => queue.send(JSON.stringify(wakeContinuationOf(record))));
  };

  armed = true;
  for (const e of s.events) {
    switch (e.kind) {
      case 'register':
        if (e.alongside) await Promise.all([register(e.markets), register(e.alongside), round()]);
        else if (s.concurrent) await Promise.all([register(e.markets), round()]);
        else await register(e.markets);
        break;
      case 'debt':
        await owe(e);
        break;
      case 'replan':
      case 'end':
        for (let i = 0; i < e.count && sleepers.length > 0; i++) {
          const id = sleepers[r.int(0, sleepers.length - 1)]!;
          const current = (await p.adapters.auctions.get(id))!;
          if (current.state !== 'RUNNING' || current.wakeMark === undefined) continue;
          const { wakeMark: _, ...awake } = current;
          const next: AuctionRecord =
            e.kind === 'end'
              ? { ...awake, state: 'EXHAUSTED', endedBy: 'plan', step: current.step + 1 }
              : { ...current, step: current.step + 1, wakeMark: price(String(150 + r.int(0, 20))) };
          await quietly(() =>
            p.adapters.auctions.replace({ ...next, version: current.version + 1 }, current.version),
          );
          plan(id, e.kind === 'end' ? Number.POSITIVE_INFINITY : next.step);
          // A debtor's step carries its debt and pays it in its delivery, retried until it does, running or ended
          // (spent-wake-retry-late): the message that goes on with it stands for that delivery.
          if (next.spentIn?.length) await quietly(() => queue.send(JSON.stringify(wakeContinuationOf(next))));
        }
        break;
      case 'deliver':
        for (let i = 0; i < e.rounds; i++) await round();
        break;
    }
  }
  // To quiescence: redriven dead letters (alarmed). No later step of a debtor is needed: a delivery whose wake failed
  // fails, running or ended, and its retry pays (before, a running debtor's debt waited for its next step).
  for (let pass = 0; ; pass++) {
    if (pass > 50) throw new Error('debts never paid');
    // A part that fails keeps the prefix its sends reached (wake-part-restarts, session 42), but at the higher crash
    // rates nearly every delivery of a part still fails, and is dead-lettered and redriven: the faults end (an outage
    // does) and the owed wakes go through.
    if (pass === 10) armed = false;
    await drain();
    if ((await redrive()) > 0) continue;
    const owing = p.adapters.auctions
      .all()
      .filter((a) => debtors.has(a.id) && a.spentIn !== undefined && a.spentIn.length > 0);
    if (owing.length === 0) break;
    throw new Error(`debts never paid: ${owing.map((a) => `${a.id} (${a.state})`)}`);
  }
  armed = false;

  // Every wake owed: each bump of a registration that answered (but in a market its answer says is not woken) (a sleeper that planned before it may not have
  // seen the provider), and each spent provider's debt (one that planned before its commit, but its own auction).
  const owed = [
    ...bumps
      .filter((b) =>
        obligedRegistrations.some(
          ({ id, from, to, markets }) => b.by === id && b.seq > from && b.seq <= to && markets.has(b.symbol),
        ),
      )
      .map((b) => ({ symbol: b.symbol, seq: b.seq, what: `registration bump ${b.symbol}@${b.seq}` })),
    ...debts.flatMap((d) =>
      d.markets.map((symbol) => ({
        symbol,
        seq: d.seq,
        what: `${d.id}'s debt in ${symbol}@${d.seq}`,
        own: d.id,
      })),
    ),
  ];
  const missed: string[] = [];
  for (const o of owed) {
    for (const id of sleepers) {
      if ('own' in o && o.own === id) continue;
      const record = (await p.adapters.auctions.get(id))!;
      if (record.symbol !== o.symbol) continue;
      const history = plans.get(id) ?? [];
      const sleptOn = history.findLast((x) => x.seq < o.seq);
      if (!sleptOn || sleptOn.step === Number.POSITIVE_INFINITY) continue;
      if (history.some((x) => x.seq > o.seq)) continue;
      if ((woken.get(id) ?? []).some((w) => w.seq > o.seq && w.step === sleptOn.step)) continue;
      missed.push(`${id} (step ${sleptOn.step}, planned at ${sleptOn.seq}) not woken after ${o.what}`);
    }
  }
  if (missed.length > 0)
    throw new Error(
      `${missed.length} lost sleepers: ${missed.slice(0, 5).join('; ')} (crashes ${crashes.join(',')})`,
    );
  // AuctionsWoken counts each sleeper once a wake, and only messages that went: never more than were sent (a part's
  // messages sent again by its retry, or by a twin delivery whose write lost, are not counted twice:
  // wakes43-count-once). Without crashes, failed sends or deliveries at once, every one is counted.
  const exact =
    crashes.length === 0 &&
    s.failRate === 0 &&
    s.continuationFailRate === 0 &&
    !s.concurrent &&
    !s.events.some((e) => e.kind === 'register' && e.alongside);
  for (const symbol of MARKETS) {
    let sent = 0;
    for (const [id, list] of woken) if (id.startsWith(symbol) || isDebtorIn(id, symbol)) sent += list.length;
    const counted = p.telemetry.marketCounts.get(`${METRICS.AuctionsWoken.name}@${symbol}`) ?? 0;
    if (exact) expect(counted, symbol).toBe(sent);
    else expect(counted, symbol).toBeLessThanOrEqual(sent);
  }

  function isDebtorIn(id: string, symbol: string): boolean {
    return debtors.has(id) && p.adapters.auctions.all().some((a) => a.id === id && a.symbol === symbol);
  }
}

describe('stress: wakes in parts, crashes, duplicates and races', () => {
  it('no sleeper a wake owes is left asleep', () => {
    expect(SPENT_WAKES_PER_DELIVERY).toBe(REGISTRATION_WAKES_PER_PART);
    return fc.assert(
      fc.asyncProperty(scenarioArb, async (s) => {
        await run(s);
      }),
      // A counterexample runs again with its seed (FUZZ_SEED) and fast-check's printed path (FUZZ_PATH).
      {
        numRuns: RUNS,
        seed: SEED,
        verbose: 0,
        ...(process.env.FUZZ_PATH ? { path: process.env.FUZZ_PATH } : {}),
      },
    );
  }, 600_000);
});
