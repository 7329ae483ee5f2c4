import { describe, expect, it } from 'vitest';
import { createEmbeddedAdapters } from '../../shared/adapters/embedded/index.ts';
import { openShardKey, openShardOf } from '../../shared/adapters/shards.ts';
import { DEFAULT_RISK_CONFIG, type RiskConfig } from '../../shared/domain/config.ts';
import { price } from '../../shared/domain/units.ts';
import { METRICS } from '../../shared/metrics.ts';
import type { LiquidationRecord, LiquidationRepository } from '../../shared/ports/index.ts';
import { LAST_RESORT_MAX_WAIT_MS } from '../../shared/services/liquidation.ts';
import {
  CYCLE_REPORTED_WITHIN_MS,
  OVERDUE_SLACK_MS,
  overdueAtMs,
  WATCH_BUDGET_MS,
  watchLiquidations,
  YOUNG_COUNTED_MAX,
} from '../../shared/services/liquidation-watch.ts';
import { FUNCTIONS } from '../../shared/topology.ts';
import { createPipeline, RecordingTelemetry } from '../support/pipeline.ts';
import { liquidation as liquidationOf, position } from '../support/records.ts';

/**
 * Nothing moved a liquidation left with no message (a purged queue, a message lost to a fault no retry covered, a
 * bug): it stayed open, unseen by any alarm (noted in sessions 36 and 37). liquidation-watch reports those past
 * the longest their state may stay quiet.
 */

const record = (over: Partial<LiquidationRecord>): LiquidationRecord => ({
  id: 'pos-1:1',
  positionId: 'pos-1',
  symbol: 'ETH-USD',
  side: 'LONG',
  state: 'QUEUED',
  tickKey: 'ETH-USD#1',
  triggerMark: price('1890'),
  remainingSize: 1n,
  marketFills: [],
  history: [{ atMs: 1_000_000, state: 'QUEUED' }],
  version: 1,
  ...over,
});

const SQS_MAX_DELAY_MS = 900_000;

describe('overdueAtMs: the longest a state may stay quiet, and the slack', () => {
  const config = DEFAULT_RISK_CONFIG;
  const { tailSeconds, maxResets } = config.auction;

  it('a start: the venue check may hold it, and a next slice may be sent up to 900 s ahead', () => {
    const hold = config.markets[0]!.venueCheckHoldSeconds * 1000;
    expect(overdueAtMs(record({}), config)).toBe(1_000_000 + hold + SQS_MAX_DELAY_MS + OVERDUE_SLACK_MS);
    const longHold: RiskConfig = {
      ...config,
      markets: config.markets.map((m) => ({ ...m, venueCheckHoldSeconds: 3_600 })),
    };
    expect(overdueAtMs(record({}), longHold)).toBe(
      1_000_000 + 3_600_000 + SQS_MAX_DELAY_MS + OVERDUE_SLACK_MS,
    );
  });

  it('an auction: its tail for each of its runs, counted from when it began', () => {
    const l = record({
      state: 'AUCTION',
      history: [
        { atMs: 1_000_000, state: 'QUEUED' },
        { atMs: 1_002_000, state: 'EXECUTING' },
        { atMs: 1_003_000, state: 'AUCTION' },
      ],
    });
    expect(overdueAtMs(l, config)).toBe(
      1_003_000 + tailSeconds * 1000 * (maxResets + 1) + SQS_MAX_DELAY_MS + OVERDUE_SLACK_MS,
    );
  });

  it('a last resort waiting for the book: its longest wait, counted from its first wait, in any state', () => {
    for (const state of ['MARKET_EXECUTED', 'AUCTION'] as const) {
      const l = record({
        state,
        history: [
          { atMs: 1_000_000, state: 'QUEUED' },
          { atMs: 1_001_000, state: 'MARKET_EXECUTED', note: 'last resort 1 filled nothing' },
          { atMs: 1_500_000, state: 'MARKET_EXECUTED', note: 'last resort 2 filled nothing' },
        ],
      });
      expect(overdueAtMs(l, config), state).toBe(
        1_001_000 + LAST_RESORT_MAX_WAIT_MS + SQS_MAX_DELAY_MS + OVERDUE_SLACK_MS,
      );
    }
  });

  it('an auction opened again (a slice under its lot: lot52-sub-lot-auction-again): counted from its last opening', () => {
    const H = 3_600_000;
    const l = record({
      state: 'AUCTION',
      history: [
        { atMs: 0, state: 'QUEUED' },
        { atMs: 1_000, state: 'EXECUTING' },
        { atMs: 2_000, state: 'AUCTION', note: 'lot 50000' },
        { atMs: 5 * H, state: 'AUCTION', note: 'lot 50000 again' },
      ],
    });
    // Before: from the first opening, the new auction's run overdue an hour after it opened.
    expect(overdueAtMs(l, config)).toBe(
      5 * H + tailSeconds * 1000 * (maxResets + 1) + SQS_MAX_DELAY_MS + OVERDUE_SLACK_MS,
    );
  });

  it("an auction that ended, its last resort waiting: counted from the auction's start, not a later attempt", () => {
    // Found by the review of session 38: the last AUCTION event was taken as the start, and a last resort after the
    // auction writes its attempts in AUCTION: each put the bound off by three tails.
    const H = 3_600_000;
    const l = record({
      state: 'AUCTION',
      history: [
        { atMs: 0, state: 'QUEUED' },
        { atMs: 1_000, state: 'EXECUTING' },
        { atMs: 2_000, state: 'AUCTION', note: 'lot 1' },
        { atMs: 1 * H, state: 'AUCTION', note: 'last resort 0 filled nothing' },
        { atMs: 24 * H - 30 * 60_000, state: 'AUCTION', note: 'last resort 7 filled nothing' },
      ],
    });
    const auctionBound = 2_000 + tailSeconds * 1000 * (maxResets + 1) + SQS_MAX_DELAY_MS;
    const waitBound = 1 * H + LAST_RESORT_MAX_WAIT_MS + SQS_MAX_DELAY_MS;
    expect(overdueAtMs(l, config)).toBe(
      Math.max(24 * H - 30 * 60_000, auctionBound, waitBound) + OVERDUE_SLACK_MS,
    );
  });

  it('any other state moves on its messages within the slack', () => {
    for (const state of ['EXECUTING', 'MARKET_EXECUTED', 'SETTLING', 'SETTLED_ADL'] as const) {
      const l = record({
        state,
        history: [
          { atMs: 1_000_000, state: 'QUEUED' },
          { atMs: 2_000_000, state },
        ],
      });
      expect(overdueAtMs(l, config), state).toBe(2_000_000 + OVERDUE_SLACK_MS);
    }
  });
});

describe('liquidation-watch', () => {
  it('reports a liquidation whose message was lost once it is overdue, and none once a resend has moved it', async () => {
    const p = createPipeline();
    await p.fund('1000000');
    await p.tick('ETH-USD', '2000');
    const long = await p.open('LONG', '1', '2000', '200');
    await p.tick('ETH-USD', '1700');
    // The queue loses the start's message (a purge).
    const lost = await p.adapters.liquidationQueue.receive(10, 30);
    expect(lost).toHaveLength(1);
    for (const m of lost) await p.adapters.liquidationQueue.delete(m.receiptHandle);
    const [liquidation] = p.adapters.liquidations.all();
    expect(liquidation?.positionId).toBe(long.id);
    const dueMs = overdueAtMs(liquidation!, p.config);

    const watch = async (nowMs: number) => {
      const telemetry = new RecordingTelemetry();
      const report = await watchLiquidations(p.adapters.liquidations, p.config, nowMs, telemetry);
      const gauges = telemetry.observations.filter((o) => o.metric === METRICS.LiquidationsOverdue.name);
      return { report, gauges: gauges.map((g) => g.value) };
    };
    // Too young to judge, then judged and not yet overdue: each run still reports (the stopped-watch alarm).
    expect(await watch(p.clock.nowMs())).toEqual({
      report: { judged: 0, overdue: 0, sample: [], resent: 0, complete: true },
      gauges: [0],
    });
    expect((await watch(dueMs - 1)).report).toMatchObject({ judged: 1, overdue: 0 });
    expect(await watch(dueMs)).toEqual({
      report: {
        judged: 1,
        overdue: 1,
        sample: [
          {
            id: liquidation!.id,
            symbol: 'ETH-USD',
            state: 'QUEUED',
            startedAtMs: liquidation!.history[0]!.atMs,
            overdueSinceMs: dueMs,
            owesAdlRounds: false,
          },
        ],
        resent: 0,
        complete: true,
      },
      gauges: [1],
    });

    // An operator who knows the message was lost needs not wait: `all` lists it however young, and gauges nothing.
    const all = new RecordingTelemetry();
    const listed = await watchLiquidations(p.adapters.liquidations, p.config, p.clock.nowMs(), all, 20, {
      all: true,
    });
    expect(listed.sample.map((l) => l.id)).toEqual([liquidation!.id]);
    expect(all.observations).toEqual([]);
    // What the operator's resend sends: the consumer resumes from the record.
    await p.adapters.liquidationQueue.send(JSON.stringify({ liquidationId: liquidation!.id }), 0);
    await p.tick('ETH-USD', '1700');
    await p.drain();
    expect((await p.adapters.liquidations.get(liquidation!.id))?.state).toMatch(/^SETTLED_/);
    expect((await watch(dueMs)).report).toEqual({
      judged: 0,
      overdue: 0,
      sample: [],
      resent: 0,
      complete: true,
    });
  });
});

describe('watchLiquidations { all }', () => {
  it('lists a liquidation the stack started a moment ahead of the operator machine clock (review, session 38)', async () => {
    const p = createPipeline();
    await p.fund('1000000');
    await p.tick('ETH-USD', '2000');
    await p.open('LONG', '1', '2000', '200');
    await p.tick('ETH-USD', '1700');
    const lost = await p.adapters.liquidationQueue.receive(10, 30);
    for (const m of lost) await p.adapters.liquidationQueue.delete(m.receiptHandle);
    const [liquidation] = p.adapters.liquidations.all();
    // The operator's machine is 2 s behind the Lambda clock that stamped the start (startedAtMs <= Lambda's now).
    const operatorNow = p.clock.nowMs() - 2_000;
    const report = await watchLiquidations(
      p.adapters.liquidations,
      p.config,
      operatorNow,
      new RecordingTelemetry(),
      20,
      {
        all: true,
      },
    );
    // "every open liquidation, however young"
    expect(report.sample.map((l) => l.id)).toEqual([liquidation!.id]);
  });
});

describe('liquidation-watch: a run bounded in time (watch44-bounded-run)', () => {
  // 100,000 open liquidations after a crash: read whole, each run, the watch outran its 300 s and reported nothing.
  const nowMs = 50 * OVERDUE_SLACK_MS;
  const page = (p: number, overdueAt?: number) =>
    Array.from({ length: 10 }, (_, i) =>
      record({
        id: `p${p}-${i}:1`,
        // Judged (started over the slack ago), not overdue; one page may hold an overdue one.
        history: [{ atMs: i === overdueAt ? 0 : nowMs - OVERDUE_SLACK_MS - 1, state: 'QUEUED' }],
      }),
    );
  const run = async (atMs: number, overduePage?: number) => {
    let clockMs = atMs;
    const liquidations = {
      openStartedBefore: async function* () {
        // Each page takes 100 s to read and judge (a crash's thousands of records in each).
        for (let p = 0; p < 5; p++) {
          yield { records: page(p, p === overduePage ? 0 : undefined), next: { shard: p } };
          clockMs += 100_000;
        }
      },
    };
    const telemetry = new RecordingTelemetry();
    const report = await watchLiquidations(liquidations, DEFAULT_RISK_CONFIG, atMs, telemetry, 20, {
      budget: { untilMs: atMs + WATCH_BUDGET_MS, nowMs: () => clockMs },
    });
    const gauges = telemetry.observations.filter((o) => o.metric === METRICS.LiquidationsOverdue.name);
    return { report, gauges: gauges.map((g) => g.value), warnings: telemetry.warnings };
  };

  it('stops reading at its budget, within the function timeout, and says it judged only part', async () => {
    const timeoutMs = FUNCTIONS.find((f) => f.id === 'liquidationWatch')!.timeoutSeconds * 1000;
    expect(WATCH_BUDGET_MS).toBeLessThanOrEqual(timeoutMs - 60_000);
    const { report, gauges, warnings } = await run(nowMs);
    expect(report).toMatchObject({ complete: false, judged: 30, overdue: 0 });
    // No 0 for what it did not judge: a run that never ends its reading pages as a stopped watch.
    expect(gauges).toEqual([]);
    expect(warnings).toContain(
      'liquidation-watch ran out of time: it judged only part of the open liquidations',
    );
  });

  it('still reports the overdue ones it found (the next runs resume after it: watch44b-cursor)', async () => {
    const found = await run(nowMs, 1);
    expect(found.report).toMatchObject({ complete: false, overdue: 1 });
    expect(found.gauges).toEqual([1]);
  });
});

describe('liquidation-watch: each run resumes where the last stored run stopped (watch44b-cursor)', () => {
  // A backlog no run reads whole: 900 open liquidations in one shard (more than a run's budget) and 20 elsewhere.
  const BIG_SHARD = 5;
  const nowMs = 50 * OVERDUE_SLACK_MS;
  // `lastEventAtMs`: a later event each (a liquidation still moving, never overdue however late the run).
  const backlog = async (startedAtMs: (id: string) => number, lastEventAtMs?: number) => {
    const adapters = createEmbeddedAdapters();
    const ids: string[] = [];
    let big = 0;
    for (let i = 0; ids.length < 920; i++) {
      const id = `b${i}:1`;
      const inBig = openShardOf(id) === openShardKey(BIG_SHARD);
      if (inBig ? big >= 900 : ids.length - big >= 20) continue;
      if (inBig) big += 1;
      ids.push(id);
      const p = position({ id: `b${i}` });
      await adapters.positions.create(p);
      await adapters.liquidations.begin(
        p,
        liquidationOf({
          id,
          positionId: p.id,
          history: [
            { atMs: startedAtMs(id), state: 'QUEUED' },
            ...(lastEventAtMs === undefined ? [] : [{ atMs: lastEventAtMs, state: 'QUEUED' as const }]),
          ],
        }),
      );
    }
    return { liquidations: adapters.liquidations, ids };
  };
  type Cursors = Pick<LiquidationRepository, 'watchCursor' | 'saveWatchCursor'>;
  // A run whose budget is spent after its third page (each takes 100 s).
  const run = async (
    liquidations: Pick<LiquidationRepository, 'openStartedBefore'>,
    cursors: Cursors,
    atMs: number,
    runId: string,
  ) => {
    let reads = 0;
    const telemetry = new RecordingTelemetry();
    const report = await watchLiquidations(liquidations, DEFAULT_RISK_CONFIG, atMs, telemetry, 10_000, {
      budget: { untilMs: atMs + WATCH_BUDGET_MS, nowMs: () => atMs + 100_000 * ++reads },
      resume: { cursors, runId },
    });
    const gauges = telemetry.observations.filter((o) => o.metric === METRICS.LiquidationsOverdue.name);
    return { report, read: report.sample.map((l) => l.id), gauges: gauges.map((g) => g.value), telemetry };
  };
  const countEach = (reads: readonly string[][]) => {
    const times = new Map<string, number>();
    for (const id of reads.flat()) times.set(id, (times.get(id) ?? 0) + 1);
    return times;
  };

  it('a shard longer than a run: the next runs read its tail, each at any time (one 5-minute slot), and a cycle reads each once', async () => {
    const { liquidations, ids } = await backlog(() => 0);
    const runs = [];
    // Every run in the same 5-minute slot: where a run begins comes from the stored cursor, not the clock.
    for (let r = 0; r < 4; r++)
      runs.push(await run(liquidations, liquidations, nowMs + r * 1_000, `run-${r}`));
    expect(runs.map((r) => r.report.complete)).toEqual([false, false, false, true]);
    expect(runs.map((r) => r.read.length)).toEqual([300, 300, 300, 20]);
    const times = countEach(runs.map((r) => r.read));
    expect([...times.keys()].sort()).toEqual([...ids].sort());
    expect(new Set(times.values())).toEqual(new Set([1]));
    // The gauge: what the cycle found so far; its last run, the whole cycle's.
    expect(runs.map((r) => r.gauges)).toEqual([[300], [600], [900], [920]]);
    // The next cycle begins again at the listing's start.
    const next = await run(liquidations, liquidations, nowMs + 10_000, 'run-4');
    expect(next.read).toEqual(runs[0]!.read);
    // Still the last cycle's 920 for the part not read again yet (review44b-watch-cycle-gauge).
    expect(next.gauges).toEqual([920]);
  });

  it('a 0 only once the cycle read everything; an overdue one found mid-cycle stays in the gauge to its end', async () => {
    // Judged, none overdue but one.
    const { liquidations, ids } = await backlog((id) => (id === 'b0:1' ? 0 : nowMs - OVERDUE_SLACK_MS - 1));
    expect(ids).toContain('b0:1');
    const runs = [];
    for (let r = 0; r < 4; r++)
      runs.push(await run(liquidations, liquidations, nowMs + r * 1_000, `run-${r}`));
    expect(runs.map((r) => r.report.judged)).toEqual([300, 300, 300, 20]);
    const foundAt = runs.findIndex((r) => r.read.includes('b0:1'));
    expect(foundAt).toBeGreaterThanOrEqual(0);
    expect(runs.map((r) => r.gauges)).toEqual(runs.map((_, i) => (i < foundAt ? [] : [1])));
    const healthy = await backlog(() => nowMs - OVERDUE_SLACK_MS - 1);
    const quiet = [];
    for (let r = 0; r < 4; r++)
      quiet.push(await run(healthy.liquidations, healthy.liquidations, nowMs + r * 1_000, `q-${r}`));
    expect(quiet.map((r) => r.gauges)).toEqual([[], [], [], [0]]);
    expect(quiet[3]!.report.cycle).toMatchObject({ judged: 920, overdue: 0, cursorSaved: true });
  });

  it('two runs at once (a slow run and the next): one stores its cursor, the other is dropped, and nothing is counted twice', async () => {
    const { liquidations, ids } = await backlog(() => 0);
    const first = await run(liquidations, liquidations, nowMs, 'run-0');
    const [slow, next] = await Promise.all([
      run(liquidations, liquidations, nowMs + 1_000, 'slow'),
      run(liquidations, liquidations, nowMs + 2_000, 'next'),
    ]);
    // Both read on from the same stored cursor; only one stores where it stopped.
    expect(slow!.read).toEqual(next!.read);
    expect(slow!.read.some((id) => first.read.includes(id))).toBe(false);
    expect([slow!.report.cycle?.cursorSaved, next!.report.cycle?.cursorSaved].sort()).toEqual([false, true]);
    const winner = slow!.report.cycle?.cursorSaved ? 'slow' : 'next';
    expect((await liquidations.watchCursor())?.owner).toBe(winner);
    const rest = [];
    for (let r = 0; r < 2; r++) rest.push(await run(liquidations, liquidations, nowMs + 3_000 + r, `r-${r}`));
    expect(rest.map((r) => r.report.complete)).toEqual([false, true]);
    const times = countEach([first.read, slow!.read, ...rest.map((r) => r.read)]);
    expect([...times.keys()].sort()).toEqual([...ids].sort());
    expect(new Set(times.values())).toEqual(new Set([1]));
    // The cycle's count: its stored runs', each liquidation once.
    expect(rest[1]!.gauges).toEqual([920]);
  });

  it('a cursor write that fails: the next run reads that part again; one whose answer was lost: the next goes on after it', async () => {
    const { liquidations, ids } = await backlog(() => 0);
    const first = await run(liquidations, liquidations, nowMs, 'run-0');
    const failing: Cursors = {
      watchCursor: () => liquidations.watchCursor(),
      saveWatchCursor: async () => {
        throw new Error('ProvisionedThroughputExceededException');
      },
    };
    const failed = await run(liquidations, failing, nowMs + 1_000, 'failed');
    expect(failed.report.cycle?.cursorSaved).toBe(false);
    expect(failed.telemetry.warnings).toContain(
      'liquidation-watch could not store its cursor: the next run reads this part again',
    );
    // Still reported: what it found is true, and a watch that never stores pages as stopped, never as healthy.
    expect(failed.gauges).toEqual([600]);
    const again = await run(liquidations, liquidations, nowMs + 2_000, 'again');
    expect(again.read).toEqual(failed.read);
    const lostAnswer: Cursors = {
      watchCursor: () => liquidations.watchCursor(),
      saveWatchCursor: async (...args) => {
        await liquidations.saveWatchCursor(...args);
        throw new Error('socket hang up');
      },
    };
    const lost = await run(liquidations, lostAnswer, nowMs + 3_000, 'lost');
    expect(lost.report.cycle?.cursorSaved).toBe(false);
    const last = await run(liquidations, liquidations, nowMs + 4_000, 'last');
    expect(last.report.complete).toBe(true);
    const times = countEach([first.read, again.read, lost.read, last.read]);
    expect([...times.keys()].sort()).toEqual([...ids].sort());
    expect(new Set(times.values())).toEqual(new Set([1]));
    expect(last.gauges).toEqual([920]);
  });

  it('a cursor that cannot be read: the run begins at the start and stores nothing over what it could not read', async () => {
    const { liquidations } = await backlog(() => 0);
    const first = await run(liquidations, liquidations, nowMs, 'run-0');
    const stored = await liquidations.watchCursor();
    const unreadable: Cursors = {
      watchCursor: async () => {
        throw new Error('InternalServerError');
      },
      saveWatchCursor: (...args) => liquidations.saveWatchCursor(...args),
    };
    const blind = await run(liquidations, unreadable, nowMs + 1_000, 'blind');
    expect(blind.read).toEqual(first.read);
    expect(blind.report.cycle?.cursorSaved).toBe(false);
    expect(await liquidations.watchCursor()).toEqual(stored);
  });

  // LiquidationWatchStoppedAlarm pages when 15 minutes (three runs) pass without a report: a cycle of four runs or
  // more that reports only at its end paged a working watch as stopped, once a cycle, through a whole crash.
  it('review44b-watch-cycle-gauge: once a cycle has ended, each run of the next reports, and what a cycle found stays reported until one ends without it', async () => {
    const healthy = await backlog(() => nowMs - OVERDUE_SLACK_MS - 1);
    const quiet = [];
    for (let r = 0; r < 8; r++)
      quiet.push(await run(healthy.liquidations, healthy.liquidations, nowMs + r * 1_000, `q-${r}`));
    // The first cycle after the upgrade knows no earlier one: a 0 only from its end.
    expect(quiet.map((r) => r.gauges)).toEqual([[], [], [], [0], [0], [0], [0], [0]]);
    expect(quiet.map((r) => r.report.complete)).toEqual([
      false,
      false,
      false,
      true,
      false,
      false,
      false,
      true,
    ]);

    // One overdue: found by the first cycle, reported by every run of the next, even before it reaches it again.
    const { liquidations } = await backlog((id) => (id === 'b0:1' ? 0 : nowMs - OVERDUE_SLACK_MS - 1));
    const cycles: number[][][] = [];
    for (let c = 0; c < 3; c++) {
      if (c === 2) {
        const found = (await liquidations.get('b0:1'))!;
        await liquidations.replace(
          {
            ...found,
            state: 'CANCELLED',
            history: [...found.history, { atMs: nowMs, state: 'CANCELLED' }],
            version: found.version + 1,
          },
          found.version,
        );
      }
      const gauges = [];
      for (let r = 0; r < 4; r++)
        gauges.push(
          (await run(liquidations, liquidations, nowMs + c * 10_000 + r * 1_000, `c${c}-${r}`)).gauges,
        );
      cycles.push(gauges);
    }
    expect(cycles[1]).toEqual([[1], [1], [1], [1]]);
    // Moved on since: reported until the cycle that no longer finds it ends.
    expect(cycles[2]).toEqual([[1], [1], [1], [0]]);
  });

  it('review44b-watch-cycle-gauge: a run that stores no cursor mid-cycle reports no 0 (a watch that never stores pages as stopped)', async () => {
    const healthy = await backlog(() => nowMs - OVERDUE_SLACK_MS - 1);
    for (let r = 0; r < 4; r++)
      await run(healthy.liquidations, healthy.liquidations, nowMs + r * 1_000, `q-${r}`);
    const failing: Cursors = {
      watchCursor: () => healthy.liquidations.watchCursor(),
      saveWatchCursor: async () => {
        throw new Error('AccessDeniedException');
      },
    };
    const failed = await run(healthy.liquidations, failing, nowMs + 5_000, 'failed');
    expect(failed.report.cycle?.cursorSaved).toBe(false);
    expect(failed.gauges).toEqual([]);
  });

  it('review44b-watch-cycle-gauge: a cycle begun over an hour ago vouches for no 0 (its cursor writes failing, each run reads its same tail)', async () => {
    // Never overdue: each moved again long after the runs below.
    const { liquidations } = await backlog(() => nowMs - OVERDUE_SLACK_MS - 1, nowMs + 10 * OVERDUE_SLACK_MS);
    for (let r = 0; r < 3; r++) await run(liquidations, liquidations, nowMs + r * 1_000, `r-${r}`);
    const failing: Cursors = {
      watchCursor: () => liquidations.watchCursor(),
      saveWatchCursor: async () => {
        throw new Error('AccessDeniedException');
      },
    };
    // Each resumes at the same stored cursor, reads the last 20 and ends the cycle; the first 900 are never read again.
    const soon = await run(liquidations, failing, nowMs + 600_000, 'soon');
    expect(soon.report).toMatchObject({ complete: true, cycle: { judged: 920, cursorSaved: false } });
    expect(soon.gauges).toEqual([0]);
    for (const late of [CYCLE_REPORTED_WITHIN_MS + 1_000, 2 * CYCLE_REPORTED_WITHIN_MS]) {
      const stale = await run(liquidations, failing, nowMs + late, `late-${late}`);
      expect(stale.report).toMatchObject({ complete: true, judged: 20 });
      expect(stale.gauges).toEqual([]);
    }
  });
});

// ux45-young-read-bounded: the operator's count of the open liquidations too young to judge read every one of them, so
// after a crash (tens of thousands open, under an hour old) the command's reads grew with the whole backlog.
describe('liquidation-watch: the count of the young ones reads a bounded part (ux45-young-read-bounded)', () => {
  const nowMs = 50 * OVERDUE_SLACK_MS;
  const open = async (young: number, firstAgoMs = 50 * 60_000) => {
    const adapters = createEmbeddedAdapters();
    const begin = async (i: number, atMs: number) => {
      const p = position({ id: `y${i}` });
      await adapters.positions.create(p);
      await adapters.liquidations.begin(
        p,
        liquidationOf({ id: `y${i}:1`, positionId: p.id, history: [{ atMs, state: 'QUEUED' }] }),
      );
    };
    // Three judged (one overdue), the young ones started in the last hour, the first `firstAgoMs` ago.
    for (let i = 0; i < 3; i++) await begin(i, i === 0 ? 0 : nowMs - OVERDUE_SLACK_MS - 1);
    for (let i = 0; i < young; i++) await begin(3 + i, nowMs - firstAgoMs + i);
    // A spy on the port: each record the listing hands over was read.
    let read = 0;
    const liquidations: Pick<LiquidationRepository, 'openStartedBefore'> = {
      async *openStartedBefore(before, from, startedFrom) {
        for await (const page of adapters.liquidations.openStartedBefore(before, from, startedFrom)) {
          read += page.records.length;
          yield page;
        }
      },
    };
    return { liquidations, reads: () => read };
  };
  const PAGE = 100;

  it('counts at most YOUNG_COUNTED_MAX of them beyond the judged, and says there may be more', async () => {
    const backlog = await open(3 * YOUNG_COUNTED_MAX);
    const report = await watchLiquidations(
      backlog.liquidations,
      DEFAULT_RISK_CONFIG,
      nowMs,
      new RecordingTelemetry(),
      20,
      {
        young: true,
      },
    );
    expect(report).toMatchObject({ judged: 3, overdue: 1, complete: true });
    expect(backlog.reads()).toBeLessThanOrEqual(3 + YOUNG_COUNTED_MAX + PAGE);
    expect(report.young?.more).toBe(true);
    expect(report.young?.open).toBeGreaterThanOrEqual(YOUNG_COUNTED_MAX);
    expect(report.young?.open).toBeLessThan(3 * YOUNG_COUNTED_MAX);
    // The first of those read: the first of all is judged then at the latest.
    expect(report.young?.firstJudgedAtMs).toBeLessThanOrEqual(nowMs + 10 * 60_000 + 3 * YOUNG_COUNTED_MAX);
  });

  // The watch's stalled-step resend (`resend`: liquidation-watch's function), not the CLI's --resend, which resends the
  // listed liquidations and reads as without it: with `resend`, the open ones 15 minutes old and more are all read.
  it("with the watch's stalled-step resend too: past the ones it reads (15 min old and more), the bound", async () => {
    const backlog = await open(3 * YOUNG_COUNTED_MAX, 10 * 60_000);
    const adapters = createEmbeddedAdapters();
    const report = await watchLiquidations(
      backlog.liquidations,
      DEFAULT_RISK_CONFIG,
      nowMs,
      new RecordingTelemetry(),
      20,
      {
        young: true,
        resend: {
          auctions: adapters.auctions,
          markets: adapters.markets,
          auctionQueue: { send: async () => {} },
        },
      },
    );
    expect(report).toMatchObject({ judged: 3, overdue: 1 });
    expect(backlog.reads()).toBeLessThanOrEqual(3 + YOUNG_COUNTED_MAX + PAGE);
    expect(report.young?.more).toBe(true);
  });

  it('under the bound: all of them, exactly, the first exactly', async () => {
    const backlog = await open(250);
    const report = await watchLiquidations(
      backlog.liquidations,
      DEFAULT_RISK_CONFIG,
      nowMs,
      new RecordingTelemetry(),
      20,
      {
        young: true,
      },
    );
    expect(report.young).toEqual({ open: 250, more: false, firstJudgedAtMs: nowMs + 10 * 60_000 });
    expect(backlog.reads()).toBe(3 + 250);
  });
});
