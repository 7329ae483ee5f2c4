import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { describe, expect, it } from 'vitest';
import { notTakenLines, REPLAY_AHEAD_LIMIT, REPLAY_POLL_MS } from '../../cli/ops/events.ts';
import type { Tick } from '../../shared/domain/tick.ts';
import { parsePrice } from '../../shared/domain/units.ts';
import { handledOnRecord, handledTicks, replayPrices } from '../../shared/local/ticks.ts';
import { METRICS } from '../../shared/metrics.ts';
import { parseTickDetail } from '../../shared/schemas/tick.ts';
import { createPipeline } from '../support/pipeline.ts';

/**
 * feed48-refusal-trace: a tick margin-check refused too old, out of order, as a duplicate or while a sequence jump
 * confirms left nothing on the market, so `backstop replay`, which sends each tick once the market shows the last,
 * waited on it and stopped as stalled after a minute. Each such refusal now leaves a trace (MarketState.refusals).
 */

/** A bus that hands each tick to margin-check, `before` each delivery (the stack's lag, another sender's print). */
const busOf = (
  p: ReturnType<typeof createPipeline>,
  before: (tick: Tick) => Promise<void> = async () => {},
) =>
  ({
    send: async (command: { input: { Entries?: { Detail?: string }[] } }) => {
      const entries = command.input.Entries ?? [];
      for (const e of entries) {
        const parsed = parseTickDetail(JSON.parse(e.Detail!));
        if (!parsed.ok) throw new Error(parsed.reason);
        await before(parsed.tick);
        await p.deliverTick(parsed.tick);
      }
      return { Entries: entries.map((_, i) => ({ EventId: `e${i}` })) };
    },
  }) as unknown as EventBridgeClient;

const replay = (p: ReturnType<typeof createPipeline>, prices: string[], bus: EventBridgeClient) =>
  replayPrices({
    points: prices.map((price, i) => ({ timestampMs: i * 60_000, price: parsePrice(price) })),
    symbol: 'ETH-USD',
    busName: 'bus',
    events: bus,
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

/** Counts the market's refusal notes that reach the store. */
const countingNotes = (p: ReturnType<typeof createPipeline>) => {
  const markets = p.adapters.markets;
  const note = markets.noteRefusal.bind(markets);
  let calls = 0;
  markets.noteRefusal = async (...args) => {
    calls++;
    return note(...args);
  };
  return () => calls;
};

describe('backstop replay through ticks margin-check refuses without another record', () => {
  it('reports those refused too old by kind and goes on at once, never stalled', async () => {
    const p = createPipeline();
    const t0 = p.clock.nowMs();
    // Ticks 3 and 4 reach margin-check 61 s after they were sent (a stack behind: maxTickAgeSeconds is 60).
    const late = new Set([3, 4]);
    const outcome = await replay(
      p,
      ['100', '100', '101', '102', '103', '104'],
      busOf(p, async (tick) => {
        if (late.has(tick.sequence)) p.clock.advance(61_000);
      }),
    );
    // Before: stalled at 3 after 60 s, 3 of 6 sent.
    expect(outcome.stalled).toBeUndefined();
    expect(outcome).toMatchObject({ sent: 6, accepted: 6, rejected: [] });
    expect(outcome.notTaken).toEqual([
      { sequence: 3, reason: 'tick/too-old' },
      { sequence: 4, reason: 'tick/too-old' },
    ]);
    expect(p.telemetry.counts.get(`${METRICS.TicksRejected.name}:tick/too-old`)).toBe(2);
    expect((await p.adapters.markets.get('ETH-USD'))?.lastTick?.sequence).toBe(6);
    // Not waited on: each next tick went at the first look after it (no poll's 100 ms passed), the lag's 122 s alone.
    expect(p.clock.nowMs() - t0).toBe(122_000);
    expect(notTakenLines('ETH-USD', outcome.notTaken)).toEqual([
      "margin-check refused 2 of the replay's ticks as tick/too-old (sequences 3, 4): they liquidated nothing " +
        '(older than maxTickAgeSeconds when margin-check judged it: the stack is behind)',
    ]);
  });

  it("reports its tick refused as a duplicate of another sender's print with its number", async () => {
    const p = createPipeline();
    const outcome = await replay(
      p,
      ['100', '100', '101', '102'],
      busOf(p, async (tick) => {
        // Another sender's print numbered 3 lands first (a feed that shares the market's numbering).
        if (tick.sequence === 3)
          await p.deliverTick({ ...tick, markPrice: parsePrice('100.5'), source: 'other' });
      }),
    );
    expect(outcome.stalled).toBeUndefined();
    expect(outcome.notTaken).toEqual([{ sequence: 3, reason: 'tick/duplicate' }]);
  });
});

describe("a refusal's trace on the market", () => {
  it('is written once a sequence: a flood of copies of a tick writes nothing more, a copy of an accepted one nothing', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '100', { sequence: 1 });
    await p.tick('ETH-USD', '100', { sequence: 2 });
    const notes = countingNotes(p);
    const at = p.clock.nowMs();
    // EventBridge delivers at least once: copies of the accepted tick are no refusal to trace.
    for (let i = 0; i < 50; i++)
      expect(
        await p.deliverTick({
          symbol: 'ETH-USD',
          markPrice: parsePrice('100'),
          timestampMs: at,
          sequence: 2,
          source: 'test',
        }),
      ).toMatchObject({ reason: 'tick/duplicate' });
    expect(notes()).toBe(0);
    // Another print carrying that number, 50 times: one note.
    for (let i = 0; i < 50; i++)
      await p.deliverTick({
        symbol: 'ETH-USD',
        markPrice: parsePrice('99'),
        timestampMs: at,
        sequence: 2,
        source: 'x',
      });
    expect(notes()).toBe(1);
    // Of another kind, a note of its own; older ticks after a newer one of the kind, nothing more.
    for (const sequence of [1, 0, 1])
      await p.deliverTick({
        symbol: 'ETH-USD',
        markPrice: parsePrice('99'),
        timestampMs: at,
        sequence,
        source: 'x',
      });
    expect(notes()).toBe(2);
    expect(p.telemetry.counts.get(`${METRICS.TicksRejected.name}:tick/duplicate`)).toBe(100);
    const market = await p.adapters.markets.get('ETH-USD');
    expect(market?.refusals?.['tick/duplicate']).toEqual({
      sequence: 2,
      timestampMs: at,
      atMs: at,
      count: 1,
      sinceMs: at,
      notesInSecond: 1,
    });
    // Each newer sequence of a kind once, counted (stamped after the last mark, 61 s old).
    p.clock.advance(62_000);
    for (const sequence of [3, 4, 4, 5]) {
      await p.deliverTick({
        symbol: 'ETH-USD',
        markPrice: parsePrice('100'),
        timestampMs: p.clock.nowMs() - 61_000,
        sequence,
        source: 'x',
      });
    }
    expect(notes()).toBe(5);
    expect((await p.adapters.markets.get('ETH-USD'))?.refusals?.['tick/too-old']).toMatchObject({
      sequence: 5,
      count: 3,
    });
  });

  it('is noted for a print continuing a held sequence jump too soon (tick/sequence-confirming)', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '100', { sequence: 1 });
    await p.tick('ETH-USD', '100', { sequence: 2 });
    const far = 2 + 1_000_001;
    expect(await p.tick('ETH-USD', '100', { sequence: far })).toMatchObject({ reason: 'tick/sequence-jump' });
    p.clock.advance(1_000);
    expect(await p.tick('ETH-USD', '100', { sequence: far + 1 })).toMatchObject({
      reason: 'tick/sequence-confirming',
    });
    const handled = handledOnRecord(await p.adapters.markets.get('ETH-USD'));
    expect(handled.refused).toEqual([
      expect.objectContaining({ sequence: far, reason: 'tick/sequence-jump' }),
      expect.objectContaining({ sequence: far + 1, reason: 'tick/sequence-confirming' }),
    ]);
  });

  it('that cannot be written leaves the refusal standing: counted, a warning with the error, the invocation not failed', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '100', { sequence: 1 });
    await p.tick('ETH-USD', '100', { sequence: 2 });
    p.clock.advance(62_000);
    p.adapters.markets.noteRefusal = async () => {
      throw Object.assign(new Error('Throughput exceeds the current capacity of your table'), {
        name: 'ProvisionedThroughputExceededException',
      });
    };
    expect(
      await p.tick('ETH-USD', '100', { sequence: 3, timestampMs: p.clock.nowMs() - 61_000 }),
    ).toMatchObject({
      status: 'rejected',
      reason: 'tick/too-old',
    });
    expect(p.telemetry.total(METRICS.RefusalTraceFailures.name)).toBe(1);
    expect(p.telemetry.warnings).toContain("refusal's trace not written: the refusal stands without it");
    expect(p.telemetry.counts.get(`${METRICS.TicksRejected.name}:tick/too-old`)).toBe(1);
  });
});

describe("a refusal's trace, bounded", () => {
  it('is noted at most 10 times a second a kind, however many ticks each numbered higher a feed floods (review48-feed-note-flood)', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '100', { sequence: 1 });
    await p.tick('ETH-USD', '100', { sequence: 2 });
    const notes = countingNotes(p);
    // A feed bug: 1,000 ticks in a second, each numbered higher, all stamped 61 s old (too old).
    p.clock.advance(62_000 - (p.clock.nowMs() % 1000));
    const flood = async (from: number) => {
      for (let i = 0; i < 1000; i++) {
        expect(
          await p.deliverTick({
            symbol: 'ETH-USD',
            markPrice: parsePrice('100'),
            timestampMs: p.clock.nowMs() - 61_000,
            sequence: from + i,
            source: 'x',
          }),
        ).toMatchObject({ reason: 'tick/too-old' });
        if (i % 2 === 1) p.clock.advance(1);
      }
    };
    await flood(3);
    // Before: 1,000 writes of the market's item, the partition acceptTick writes.
    expect(notes()).toBe(10);
    expect(p.telemetry.counts.get(`${METRICS.TicksRejected.name}:tick/too-old`)).toBe(1000);
    expect((await p.adapters.markets.get('ETH-USD'))?.refusals?.['tick/too-old']).toMatchObject({
      sequence: 12,
      count: 10,
      notesInSecond: 10,
    });
    // The next second, 10 more: the trace goes on with the flood.
    p.clock.advance(1000 - (p.clock.nowMs() % 1000));
    await flood(2000);
    expect(notes()).toBe(20);
    expect((await p.adapters.markets.get('ETH-USD'))?.refusals?.['tick/too-old']).toMatchObject({
      sequence: 2009,
      count: 20,
      notesInSecond: 10,
    });
  });

  it('is removed by an accepted tick an hour after it, and one noted before the latest rebase at once (review48-feed-trace-expiry)', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '100', { sequence: 1 });
    await p.tick('ETH-USD', '100', { sequence: 2 });
    const at = p.clock.nowMs();
    await p.deliverTick({
      symbol: 'ETH-USD',
      markPrice: parsePrice('99'),
      timestampMs: at,
      sequence: 2,
      source: 'x',
    });
    let sequence = 2;
    const accept = async () => {
      sequence += 1;
      expect(await p.tick('ETH-USD', '100', { sequence })).toMatchObject({ status: 'accepted' });
      return (await p.adapters.markets.get('ETH-USD'))?.refusals;
    };
    // Kept while it may be wanted (a replay waiting on it, `status` after an alarm).
    p.clock.advance(60 * 60 * 1000);
    expect(await accept()).toEqual({ 'tick/duplicate': expect.objectContaining({ sequence: 2 }) });
    // Before: kept until a rebase, ~90 bytes of every accepted tick's write for good.
    p.clock.advance(1);
    expect(await accept()).toBeUndefined();
    // One a rebase of a version before the traces left (another resumedAfterMs): removed by the next accepted tick.
    const stale = {
      sequence: 1,
      timestampMs: at,
      atMs: p.clock.nowMs(),
      count: 1,
      sinceMs: at,
      notesInSecond: 1,
      resumedAfterMs: 1,
    };
    const markets = p.adapters.markets;
    const acceptTick = markets.acceptTick.bind(markets);
    markets.acceptTick = async (...args) => ({
      ...(await acceptTick(...args)),
      refusals: { 'tick/too-old': stale },
    });
    const dropped: unknown[] = [];
    markets.dropRefusals = async (_symbol, traces) => {
      dropped.push(...traces);
    };
    await accept();
    expect(dropped).toEqual([{ reason: 'tick/too-old', trace: stale }]);
  });
});

// feed48c-trace-unreadable: a trace stored in a shape the adapter cannot read was met as absent, so every refusal of
// its kind wrote a note whose condition failed on it, and no expiry removed it. margin-check now hands it, as read, to
// the note that replaces it and to the next accepted tick's drop (the embedded store never holds one: set here).
describe("a refusal's trace that does not read", () => {
  it('is replaced by the next note of its kind only as read, and removed by the next accepted tick at once', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '100', { sequence: 1 });
    await p.tick('ETH-USD', '100', { sequence: 2 });
    const unreadable = { unreadable: 'refusal:tick/too-old: seq is not a number', stored: { S: 'x' } };
    const markets = p.adapters.markets;
    const get = markets.get.bind(markets);
    markets.get = async (symbol) => {
      const state = await get(symbol);
      return state && { ...state, unreadableRefusals: { 'tick/too-old': unreadable } };
    };
    const replacing: unknown[] = [];
    markets.noteRefusal = async (_symbol, _reason, _trace, given) => {
      replacing.push(given);
    };
    p.clock.advance(62_000);
    expect(
      await p.tick('ETH-USD', '100', { sequence: 3, timestampMs: p.clock.nowMs() - 61_000 }),
    ).toMatchObject({ reason: 'tick/too-old' });
    // Before: no stored trace given, so the adapter's condition met it as absent.
    expect(replacing).toEqual([unreadable]);
    const acceptTick = markets.acceptTick.bind(markets);
    markets.acceptTick = async (...args) => ({
      ...(await acceptTick(...args)),
      unreadableRefusals: { 'tick/too-old': unreadable },
    });
    const dropped: unknown[] = [];
    markets.dropRefusals = async (_symbol, traces) => {
      dropped.push(...traces);
    };
    expect(await p.tick('ETH-USD', '100', { sequence: 4 })).toMatchObject({ status: 'accepted' });
    // Before: kept for good (its age does not read, and it was never among the traces read).
    expect(dropped).toEqual([{ reason: 'tick/too-old', trace: unreadable }]);
  });
});
