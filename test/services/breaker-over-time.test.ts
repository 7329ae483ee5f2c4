import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { describe, expect, it } from 'vitest';
import { notTakenLines, REPLAY_AHEAD_LIMIT, REPLAY_POLL_MS } from '../../cli/ops/events.ts';
import { DEFAULT_RISK_CONFIG_INPUT, parseRiskConfig } from '../../shared/domain/config.ts';
import { parsePrice } from '../../shared/domain/units.ts';
import { handledTicks, replayPrices } from '../../shared/local/ticks.ts';
import { METRICS } from '../../shared/metrics.ts';
import { parseTickDetail } from '../../shared/schemas/tick.ts';
import { createPipeline } from '../support/pipeline.ts';

/**
 * The breaker's rules over time through margin-check (breakerConfirmSeconds, priceWindowSeconds). Found by the
 * review of session 32's diff: the feed chooses its prints' times, so neither rule may count on them alone.
 */
const windowed = () =>
  parseRiskConfig({
    ...DEFAULT_RISK_CONFIG_INPUT,
    markets: DEFAULT_RISK_CONFIG_INPUT.markets.map((m) => ({ ...m, priceWindowSeconds: 60 })),
  });

describe('breakerConfirmSeconds: a move persists on this service clock too', () => {
  it('a second bad print of one burst, stamped maxClockSkewSeconds ahead, does not confirm the first', async () => {
    const p = createPipeline(); // breakerConfirmSeconds 5, maxClockSkewSeconds 5, priceBand 15 %
    await p.tick('ETH-USD', '100', { sequence: 0 }); // a market's first print waits for a second
    await p.tick('ETH-USD', '100', { sequence: 1 });
    const long = await p.open('LONG', '10', '100', '100'); // liquidatable below ~92.3
    p.clock.advance(1_000);
    const now = p.clock.nowMs();
    expect(await p.tick('ETH-USD', '80', { sequence: 2, timestampMs: now })).toMatchObject({
      reason: 'tick/price-band',
    });
    expect(await p.tick('ETH-USD', '80', { sequence: 3, timestampMs: now + 5_000 })).toMatchObject({
      reason: 'tick/breaker-confirming',
    });
    expect((await p.adapters.positions.get(long.id))?.state).toBe('OPEN');
  });

  it('a burst of a print stamped long ago and one stamped now does not confirm it either', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '100', { sequence: 0 });
    await p.tick('ETH-USD', '100', { sequence: 1 });
    const lastAt = p.clock.nowMs();
    const long = await p.open('LONG', '10', '100', '100');
    p.clock.advance(55_000);
    // Both delivered now: the first 54 s old (within maxTickAgeSeconds) and after the last mark.
    expect(await p.tick('ETH-USD', '80', { sequence: 2, timestampMs: lastAt + 1_000 })).toMatchObject({
      reason: 'tick/price-band',
    });
    expect(await p.tick('ETH-USD', '80', { sequence: 3 })).toMatchObject({
      reason: 'tick/breaker-confirming',
    });
    expect((await p.adapters.positions.get(long.id))?.state).toBe('OPEN');
    // The move persists: 5 s later on both clocks, a print that agrees is followed.
    p.clock.advance(5_000);
    expect(await p.tick('ETH-USD', '80.5', { sequence: 4 })).toMatchObject({ status: 'accepted' });
    expect((await p.adapters.positions.get(long.id))?.state).toBe('LIQUIDATING');
  });
});

describe('priceWindowSeconds: a walk is held at the band of its window', () => {
  it('a walk of prints each within the band of the last trips it at the band of its window', async () => {
    const p = createPipeline({ config: windowed() });
    await p.tick('ETH-USD', '100', { sequence: 0 }); // a market's first print waits for a second
    await p.tick('ETH-USD', '100', { sequence: 1 }); // opens the window at 100
    const short = await p.open('SHORT', '10', '100', '250'); // liquidatable above ~121.95
    // Five prints in a second, each 10 % above the last: 110 is within the window's band, 121 is not.
    p.clock.advance(200);
    expect(await p.tick('ETH-USD', '110', { sequence: 2 })).toMatchObject({ status: 'accepted' });
    p.clock.advance(200);
    expect(await p.tick('ETH-USD', '121', { sequence: 3 })).toMatchObject({ reason: 'tick/window-band' });
    p.clock.advance(200);
    expect(await p.tick('ETH-USD', '133.1', { sequence: 4 })).toMatchObject({
      reason: 'tick/breaker-confirming',
    });
    expect((await p.adapters.positions.get(short.id))?.state).toBe('OPEN');
    expect((await p.adapters.markets.get('ETH-USD'))?.lastTick?.markPrice).toBe(parsePrice('110'));
    // The move persists: 5 s after the held print, one that agrees with it is followed, and the short starts.
    p.clock.advance(5_000);
    expect(await p.tick('ETH-USD', '123', { sequence: 5 })).toMatchObject({ status: 'accepted' });
    expect((await p.adapters.positions.get(short.id))?.state).toBe('LIQUIDATING');
    expect((await p.adapters.markets.get('ETH-USD'))?.bandAnchor?.markPrice).toBe(parsePrice('123'));
  });

  it('a print stamped ahead is judged by the window it falls in now', async () => {
    const p = createPipeline({ config: windowed() });
    await p.tick('ETH-USD', '100', { sequence: 0 });
    await p.tick('ETH-USD', '100', { sequence: 1 }); // opens the window at 100
    p.clock.advance(50_000);
    expect(await p.tick('ETH-USD', '110', { sequence: 2 })).toMatchObject({ status: 'accepted' });
    p.clock.advance(6_000); // 56 s into the window, stamped as if 61 s
    const ahead = await p.tick('ETH-USD', '121', { sequence: 3, timestampMs: p.clock.nowMs() + 5_000 });
    expect(ahead).toMatchObject({ reason: 'tick/window-band' });
    expect((await p.adapters.markets.get('ETH-USD'))?.lastTick?.markPrice).toBe(parsePrice('110'));
  });

  it('across the end of a window the mark moves at most twice the band', async () => {
    const p = createPipeline({ config: windowed() });
    await p.tick('ETH-USD', '100', { sequence: 0 });
    await p.tick('ETH-USD', '100', { sequence: 1 }); // opens the window at 100
    p.clock.advance(59_800);
    expect(await p.tick('ETH-USD', '115', { sequence: 2 })).toMatchObject({ status: 'accepted' });
    p.clock.advance(200); // the window has passed: the next opens at 115, where it ended
    expect(await p.tick('ETH-USD', '132.25', { sequence: 3 })).toMatchObject({ status: 'accepted' });
    p.clock.advance(200);
    expect(await p.tick('ETH-USD', '152.0875', { sequence: 4 })).toMatchObject({
      reason: 'tick/window-band',
    });
    expect((await p.adapters.markets.get('ETH-USD'))?.lastTick?.markPrice).toBe(parsePrice('132.25'));
  });
});

/** EventBridge as margin-check's rule delivers it: each entry put to the tick handler, at once. */
const busOf = (p: ReturnType<typeof createPipeline>) =>
  ({
    send: async (command: { input: { Entries?: { Detail?: string }[] } }) => {
      const entries = command.input.Entries ?? [];
      for (const e of entries) {
        const parsed = parseTickDetail(JSON.parse(e.Detail!));
        if (!parsed.ok) throw new Error(parsed.reason);
        await p.deliverTick(parsed.tick);
      }
      return { Entries: entries.map((_, i) => ({ EventId: `e${i}` })) };
    },
  }) as unknown as EventBridgeClient;

describe('backstop replay through a move the breaker holds', () => {
  it('sends the prints that confirm it, and reports those the breaker held or refused while it confirmed', async () => {
    const p = createPipeline();
    // A real 30 % move, one print a second: it trips the breaker and persists.
    const prices = ['100', '100', '130', '130', '130', '130', '130', '130', '130', '130', '130', '130'];
    const t0 = p.clock.nowMs();
    const outcome = await replayPrices({
      points: prices.map((price, i) => ({ timestampMs: t0 + i * 1_000, price: parsePrice(price) })),
      symbol: 'ETH-USD',
      busName: 'bus',
      events: busOf(p),
      speed: { kind: 'factor', factor: 1 },
      firstSequence: 1,
      now: () => p.clock.nowMs(),
      sleep: async (ms) => p.clock.advance(ms),
      backlog: {
        limit: REPLAY_AHEAD_LIMIT,
        stallMs: 60_000,
        pollMs: REPLAY_POLL_MS,
        handled: () => handledTicks(p.adapters.markets, 'ETH-USD'),
      },
    });
    expect(outcome.stalled).toBeUndefined();
    expect(outcome.sent).toBe(prices.length);
    expect((await p.adapters.markets.get('ETH-USD'))?.lastTick?.markPrice).toBe(parsePrice('130'));
    // 3 tripped it; 4 to 7 agreed with it 1 to 4 s later, refused; 8, 5 s later, confirmed the move, and the rest
    // followed it.
    expect(outcome.notTaken).toEqual([
      { sequence: 3, reason: 'tick/price-band' },
      ...[4, 5, 6, 7].map((sequence) => ({ sequence, reason: 'tick/breaker-confirming' })),
    ]);
    expect(p.telemetry.total(METRICS.TicksAccepted.name)).toBe(6); // 2, then 8 to 12
  });

  it('at max speed, reports every print refused while the breaker confirms, the last one included (feed47-replay-breaker)', async () => {
    // Found in session 46, fixed in 47: margin-check refused such a print without a trace, so the replay could not
    // wait on it; it waited on nothing while the breaker held a move, and its ticks were refused without a word.
    const p = createPipeline();
    const prices = ['100', '100', '130', '130', '130', '130', '130', '130'];
    // Each tick is handled as soon as it is put: no time passes, and the move cannot persist.
    const outcome = await replayPrices({
      points: prices.map((price, i) => ({ timestampMs: i * 60_000, price: parsePrice(price) })),
      symbol: 'ETH-USD',
      busName: 'bus',
      events: busOf(p),
      speed: { kind: 'max' },
      firstSequence: 1,
      now: () => p.clock.nowMs(),
      sleep: async (ms) => p.clock.advance(ms),
      backlog: {
        limit: REPLAY_AHEAD_LIMIT,
        stallMs: 60_000,
        pollMs: REPLAY_POLL_MS,
        handled: () => handledTicks(p.adapters.markets, 'ETH-USD'),
      },
    });
    expect(outcome).toMatchObject({ sent: 8, accepted: 8, rejected: [] });
    expect(outcome.stalled).toBeUndefined();
    expect(outcome.notTaken).toEqual([
      { sequence: 3, reason: 'tick/price-band' },
      ...[4, 5, 6, 7, 8].map((sequence) => ({ sequence, reason: 'tick/breaker-confirming' })),
    ]);
    const market = await p.adapters.markets.get('ETH-USD');
    expect(market?.lastTick).toMatchObject({ sequence: 2, markPrice: parsePrice('100') });
    expect(market?.breaker).toMatchObject({ tick: { sequence: 3 }, confirming: { sequence: 8 } });
    expect(p.telemetry.counts.get(`${METRICS.TicksRejected.name}:tick/breaker-confirming`)).toBe(5);
    // What `backstop replay` says of them on stderr.
    expect(notTakenLines('ETH-USD', outcome.notTaken)).toEqual([
      "ETH-USD's circuit breaker held 1 of the replay's ticks (tick/price-band; sequence 3): they liquidated nothing",
      "margin-check refused 5 of the replay's ticks as tick/breaker-confirming (sequences 4, 5, 6, 7, 8): they " +
        "agreed with the move ETH-USD's circuit breaker held sooner than the market's breakerConfirmSeconds after " +
        'it, and liquidated nothing; the first print agreeing with it once it has persisted that long is followed',
    ]);
  });
});

// follow47-breaker-trace-best-effort: the trace of a print refused while the breaker confirms (breaker.confirming) is
// read by `backstop replay` alone, yet a failed write of it failed margin-check's invocation: the tick, refused, was
// retried, and could end in the tick DLQ and page.
describe("a breaker's confirming trace that cannot be written", () => {
  /** The pipeline's markets, their trace's write failing as a throttled table's would. */
  const failingTrace = () => {
    const p = createPipeline();
    let tried = 0;
    p.adapters.markets.noteBreakerConfirming = async () => {
      tried++;
      throw Object.assign(new Error('Throughput exceeds the current capacity of your table'), {
        name: 'ProvisionedThroughputExceededException',
      });
    };
    return { p, tried: () => tried };
  };

  it('leaves the refusal standing: counted, a warning with the error, the invocation not failed', async () => {
    const { p, tried } = failingTrace();
    await p.tick('ETH-USD', '100', { sequence: 1 });
    await p.tick('ETH-USD', '100', { sequence: 2 });
    expect(await p.tick('ETH-USD', '130', { sequence: 3 })).toMatchObject({ reason: 'tick/price-band' });
    // Before: the write's error thrown out of the invocation.
    expect(await p.tick('ETH-USD', '130', { sequence: 4 })).toMatchObject({
      status: 'rejected',
      reason: 'tick/breaker-confirming',
    });
    expect(tried()).toBe(1);
    expect(p.telemetry.marketCounts.get(`${METRICS.BreakerTraceFailures.name}@ETH-USD`)).toBe(1);
    expect(p.telemetry.counts.get(`${METRICS.TicksRejected.name}:tick/breaker-confirming`)).toBe(1);
    expect(p.telemetry.warnings).toContain(
      "breaker's confirming trace not written: the refusal stands without it",
    );
    const market = await p.adapters.markets.get('ETH-USD');
    expect(market?.breaker).toMatchObject({ tick: { sequence: 3 } });
    expect(market?.breaker?.confirming).toBeUndefined();
  });

  it('a replay waiting on such a print stops as stalled, naming the breaker', async () => {
    const { p } = failingTrace();
    const prices = ['100', '100', '130', '130', '130'];
    const outcome = await replayPrices({
      points: prices.map((price, i) => ({ timestampMs: i * 60_000, price: parsePrice(price) })),
      symbol: 'ETH-USD',
      busName: 'bus',
      events: busOf(p),
      speed: { kind: 'max' },
      firstSequence: 1,
      now: () => p.clock.nowMs(),
      sleep: async (ms) => p.clock.advance(ms),
      backlog: {
        limit: REPLAY_AHEAD_LIMIT,
        stallMs: 60_000,
        pollMs: REPLAY_POLL_MS,
        handled: () => handledTicks(p.adapters.markets, 'ETH-USD'),
      },
    });
    // 4 was refused without its trace: the replay waited on it, and stopped.
    expect(outcome).toMatchObject({ sent: 4, accepted: 4, rejected: [] });
    expect(outcome.notTaken).toEqual([{ sequence: 3, reason: 'tick/price-band' }]);
    expect(outcome.stalled).toBe(
      'replay/stalled: ETH-USD handled no tick for 60 s (last handled 3, sent up to 4), while its circuit breaker ' +
        'holds tick 3 (tick/price-band): margin-check notes on the breaker each print it refuses while the move ' +
        "confirms (breaker.confirming), unless that note fails (margin-check's warning \"breaker's confirming trace " +
        'not written", metric BreakerTraceFailures) or the stack is older than session 47; else is the stack ' +
        'running, and its ticks accepted (a tick that failed to the end is in `backstop dlq list --queue ' +
        'tickDeadLetters`)? margin-check notes on the market each tick it refuses too old, out of order, ... ' +
        '(refusals), unless that note fails (its warning "refusal\'s trace not written", metric ' +
        'RefusalTraceFailures) or the stack is older than session 48',
    );
  });
});

/**
 * A real move's prints delivered out of order (EventBridge invokes margin-check asynchronously): a print numbered
 * below the one that tripped the breaker and agreeing with it re-arms the breaker with itself, keeping when it was
 * tripped (review, session 34: restarting it delayed the move by up to breakerConfirmSeconds per late print).
 */
describe('a real move whose prints land out of order', () => {
  /** The feed at 100, then at 80 from sequence 2, a print a second; `late` delays prints' arrival (ms). */
  async function followedAfter(late: Record<number, number>): Promise<number | undefined> {
    const p = createPipeline({ marks: 'as-configured' }); // breakerConfirmSeconds 5
    await p.tick('ETH-USD', '100', { sequence: 0 });
    await p.tick('ETH-USD', '100', { sequence: 1 });
    const t0 = p.clock.nowMs();
    const prints = Array.from({ length: 14 }, (_, i) => ({ sequence: 2 + i, stampMs: t0 + 1000 * (i + 1) }))
      .map((print) => ({ ...print, arriveMs: print.stampMs + (late[print.sequence] ?? 0) }))
      .sort((a, b) => a.arriveMs - b.arriveMs || a.sequence - b.sequence);
    for (const print of prints) {
      p.clock.advance(print.arriveMs - p.clock.nowMs());
      const outcome = await p.tick('ETH-USD', '80', { sequence: print.sequence, timestampMs: print.stampMs });
      if (outcome.status === 'accepted') return (print.arriveMs - t0) / 1000;
    }
    return undefined;
  }

  it('is followed a print later at most, however late its earlier prints land', async () => {
    expect(await followedAfter({})).toBe(6);
    expect(await followedAfter({ 2: 1_200 })).toBe(7);
    expect(await followedAfter({ 2: 4_500 })).toBe(7);
    expect(await followedAfter({ 2: 12_500, 3: 8_500, 4: 4_500 })).toBe(9);
  });
});
