import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { ListQueuesCommand } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../cli/main.ts';
import { type FailedRefresh, failedRefreshLine, watchStatus } from '../../cli/ops/status.ts';
import { createAwsAdapters } from '../../shared/adapters/aws/index.ts';
import { DynamoLedger } from '../../shared/adapters/aws/ledger.ts';
import { systemClock } from '../../shared/adapters/embedded/clock.ts';
import { DEFAULT_RISK_CONFIG, DEFAULT_RISK_CONFIG_INPUT } from '../../shared/domain/config.ts';
import { windowStartFor } from '../../shared/domain/insurance.ts';
import { parsePrice, usd } from '../../shared/domain/units.ts';
import { AwsClock, durationClock } from '../../shared/local/aws-clock.ts';
import type { StatusReport } from '../../shared/local/status.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { cli, useOperatorEmulator } from '../support/cli.ts';
import { answerPutEvents, failScans, NOT_FOUND } from '../support/client-sends.ts';

/**
 * cli49-aws-clock: what the operator's CLI decides or stamps by the clock follows AWS's, as its answers' Date headers
 * tell it, not the machine's. The machine's clock is skewed here by a stub of Date.now (the CLI's clock, the SDK's and
 * the test's own reads alike); moto, another process, answers by the true one.
 */

const emulator = useOperatorEmulator('awsclock');
const trueNow = Date.now.bind(Date);
const MINUTE = 60_000;
const iso = (ms: number) => new Date(ms).toISOString();

/** The machine's clock `skewMs` off the true one. */
const skewed = (skewMs: number) => vi.spyOn(Date, 'now').mockImplementation(() => trueNow() + skewMs);
afterEach(() => {
  vi.restoreAllMocks();
});

describe("the CLI's clock of AWS's time (cli49-aws-clock)", () => {
  it("moves the machine's clock by the last answer's Date header: a lower bound of AWS's time", async () => {
    let local = 1_000_000;
    const clock = new AwsClock(() => local);
    expect(clock.synced).toBe(false);
    expect(clock.nowMs()).toBe(local);
    // AWS answered in 12:00:00 (floored); the answer arrived at local 1_000_000: AWS is at least 12:00:00 then.
    clock.note('Tue, 05 Aug 2025 12:00:00 GMT', local);
    local += 1_500;
    expect(clock.nowMs()).toBe(Date.UTC(2025, 7, 5, 12, 0, 0) + 1_500);
    // One that does not parse leaves it.
    clock.note('not a date', local);
    clock.note(undefined, local);
    expect(clock.nowMs()).toBe(Date.UTC(2025, 7, 5, 12, 0, 0) + 1_500);

    // A real answer (moto's): the machine 20 minutes slow, AWS's time within the second the header floors, never ahead.
    skewed(-20 * MINUTE);
    const watched = new AwsClock();
    watched.watch(emulator.clients.sqs as never);
    await emulator.clients.sqs.send(new ListQueuesCommand({}));
    const before = trueNow();
    const aws = watched.nowMs();
    expect(aws).toBeLessThanOrEqual(trueNow());
    expect(aws).toBeGreaterThan(before - 2_000);
  });

  // review50-cli2-stale-age-clock: status --watch timed its durations (the stale figures' age, the counts', stranded work's
  // minute) by the machine's wall clock: one set back an hour between two reads said figures a second old "0 s ago".
  it("times durations by the monotonic clock, never going back, and no less than AWS's time says, less its second", () => {
    let wall = Date.UTC(2026, 2, 1, 10, 0, 0, 400);
    let mono = 5_000;
    const aws = new AwsClock(() => wall);
    const elapsed = durationClock(() => mono, aws);
    const answer = (offsetMs: number) =>
      aws.note(new Date(Math.floor((wall + offsetMs) / 1_000) * 1_000).toUTCString(), wall);
    mono += 300;
    wall += 300;
    // The first answer: the machine 10 minutes slow. AWS's time moving by it is no time elapsed.
    answer(10 * MINUTE);
    expect(elapsed()).toBe(300);
    // A second, by both clocks.
    mono += 1_000;
    wall += 1_000;
    answer(10 * MINUTE);
    expect(elapsed()).toBe(1_300);
    // The machine's clock stepped back an hour (NTP), no answer since: a second more, not an hour less.
    mono += 1_000;
    wall += 1_000 - 60 * MINUTE;
    expect(elapsed()).toBe(2_300);
    answer(70 * MINUTE);
    expect(elapsed()).toBe(2_300);
    // The machine slept an hour: its monotonic clock stood still, its wall clock and AWS's did not. An hour, within
    // the second a Date header floors.
    mono += 500;
    wall += 60 * MINUTE + 500;
    answer(70 * MINUTE);
    const slept = elapsed();
    expect(slept).toBeGreaterThanOrEqual(60 * MINUTE + 2_800 - 1_000);
    expect(slept).toBeLessThanOrEqual(60 * MINUTE + 2_800);
    // Never back, though AWS's time, set again, says less.
    answer(70 * MINUTE - 900);
    expect(elapsed()).toBe(slept);
  });

  // ops50b-failed-refresh-at: a failed refresh's "the refresh at X" was AWS's time read before its answers, the machine's
  // clock moved by the last answer: stepped back an hour with no answer since, X was an hour before the figures' "read at"
  // that the line says are a second old.
  it("says a failed refresh's time a duration after the figures' read, whatever the machine's clock did", async () => {
    let wall = Date.UTC(2026, 2, 1, 10, 0, 0, 400);
    let mono = 5_000;
    const aws = new AwsClock(() => wall);
    let reads = 0;
    const failures: FailedRefresh[] = [];
    const stop = new AbortController();
    await watchStatus({
      read: async (_nowMs, awsNowMs) => {
        reads += 1;
        if (reads === 1) {
          // The read's answers: AWS agrees with the machine.
          aws.note(new Date(Math.floor(wall / 1_000) * 1_000).toUTCString(), wall);
          return { at: iso(awsNowMs) } as StatusReport;
        }
        // No answer: a network blip.
        throw Object.assign(new Error('connect ETIMEDOUT'), { name: 'TimeoutError', code: 'ETIMEDOUT' });
      },
      write: () => {},
      writeFailure: (failed) => {
        failures.push(failed);
        stop.abort();
      },
      intervalMs: 1_000,
      nowMs: durationClock(() => mono, aws),
      awsNowMs: () => aws.nowMs(),
      sleep: async (ms) => {
        mono += ms;
        // The machine's clock set back an hour (NTP, an operator's date) during the sleep.
        wall += ms - 60 * MINUTE;
      },
      signal: stop.signal,
    });
    expect(failures).toHaveLength(1);
    const failed = failures[0]!;
    expect(failed.lastAgeMs).toBe(1_000);
    // A second after the figures' read, as their age says; before, an hour less a second before it.
    expect(failed.atMs).toBe(Date.parse(failed.last!.at) + 1_000);
    expect(failedRefreshLine(failed)).toMatch(
      /^backstop status: the refresh at 2026-03-01T10:00:01\.\d{3}Z failed: .*; STALE: the figures shown were read at 2026-03-01T10:00:00\.\d{3}Z, 1 s ago;/,
    );
  });

  // ops49b-clock-watch-twice: the middleware's name was fixed, so a second watch of a client threw (a duplicate name).
  it('watches a client once per clock, and two clocks watch one client each for itself', async () => {
    const sqs = emulator.clients.sqs as never;
    const one = new AwsClock();
    const two = new AwsClock();
    one.watch(sqs);
    one.watch(sqs);
    two.watch(sqs);
    skewed(-20 * MINUTE);
    const noted: AwsClock[] = [];
    const note = AwsClock.prototype.note;
    vi.spyOn(AwsClock.prototype, 'note').mockImplementation(function (this: AwsClock, ...args) {
      noted.push(this);
      return note.apply(this, args);
    });
    await emulator.clients.sqs.send(new ListQueuesCommand({}));
    // One answer noted once by each clock (other tests' clocks watch the client too): the second watch added nothing.
    expect(noted.filter((c) => c === one)).toHaveLength(1);
    expect(noted.filter((c) => c === two)).toHaveLength(1);
    for (const clock of [one, two]) {
      expect(clock.synced).toBe(true);
      expect(clock.nowMs()).toBeGreaterThan(trueNow() - 2_000);
      expect(clock.nowMs()).toBeLessThanOrEqual(trueNow());
    }
  });

  it("takes the machine's clock for a cut to the millisecond while the answers say it agrees with AWS's (review49-cli-redrive-clock)", () => {
    let local = Date.UTC(2025, 7, 5, 12, 0, 0, 400);
    const clock = new AwsClock(() => local);
    // Sent at .400, answered within 12:00:00, arrived at .450: AWS's time minus the machine's is in [-450, 600) ms.
    clock.note('Tue, 05 Aug 2025 12:00:00 GMT', local + 50, local);
    local += 100;
    expect(clock.agreedNowMs()).toBe(local);
    // nowMs, a lower bound, is 450 ms behind it: a dead letter sent in those 450 ms would be left as come in during
    // the run (the answers of moto, on this machine, are so: dlq-polling.test.ts's redrives).
    expect(clock.nowMs()).toBe(local - 450);
    // The machine 20 minutes slow: AWS's lower bound, as nowMs.
    clock.note('Tue, 05 Aug 2025 12:20:00 GMT', local + 50, local);
    expect(clock.agreedNowMs()).toBe(clock.nowMs());
    expect(clock.nowMs()).toBe(Date.UTC(2025, 7, 5, 12, 20, 0) - 50);
    // 20 minutes fast: the same.
    clock.note('Tue, 05 Aug 2025 11:40:00 GMT', local + 50, local);
    expect(clock.agreedNowMs()).toBe(clock.nowMs());
    expect(clock.nowMs()).toBe(Date.UTC(2025, 7, 5, 11, 40, 0) - 50);
    // The second after the one answered in has begun by the machine's clock when sent: it is ahead, the lower bound.
    clock.note(
      'Tue, 05 Aug 2025 12:00:00 GMT',
      Date.UTC(2025, 7, 5, 12, 0, 1, 50),
      Date.UTC(2025, 7, 5, 12, 0, 1),
    );
    expect(clock.agreedNowMs()).toBe(clock.nowMs());
    expect(clock.agreedNowMs()).toBe(local - 1_050);
  });

  it('closes a period by time 10 minutes after its end by AWS: not sooner on a machine ahead, nor later on one behind', async () => {
    const { names, at } = await emulator.newStage('clk');
    const ledger = new DynamoLedger(emulator.clients.dynamo, names.tables.ledger);
    await ledger.apply({
      account: INSURANCE_ACCOUNT,
      idempotencyKey: 'admin:d1',
      amount: usd('1000'),
      kind: 'deposit',
      reference: 'admin',
      atMs: trueNow() - 60 * MINUTE,
      floor: 0n,
    });
    const statement = async (toMs: number) => {
      const run = await cli(
        'fund',
        'statement',
        '--from',
        iso(toMs - 2 * 60 * MINUTE),
        '--to',
        iso(toMs),
        '--json',
        ...at,
      );
      expect(run.code, run.stderr).toBe(0);
      return (JSON.parse(run.stdout) as { period: { closed: boolean; openBecause: string | null } }).period;
    };
    // Ended 5 minutes ago by AWS, on a machine 20 minutes ahead: entries stamped before the end may still commit.
    // Before, closed (25 minutes by the machine's clock).
    skewed(20 * MINUTE);
    expect(await statement(trueNow() - 5 * MINUTE)).toMatchObject({ closed: false, openBecause: 'journal' });
    // Ended 15 minutes ago by AWS, on a machine 20 minutes behind: closed. Before, open (its end 5 minutes ahead).
    skewed(-20 * MINUTE);
    expect(await statement(trueNow() - 15 * MINUTE)).toMatchObject({ closed: true });
  });

  it("stamps a deposit by AWS's clock on a machine 20 minutes behind", async () => {
    const { at } = await emulator.newStage('clkdep');
    skewed(-20 * MINUTE);
    const before = trueNow();
    const run = await cli('fund', 'deposit', '--amount', '5', '--key', 'd1', '--json', ...at);
    const after = trueNow();
    expect(run.code, run.stderr).toBe(0);
    const stamped = Date.parse((JSON.parse(run.stdout) as { entry: { at: string } }).entry.at);
    // Within the second the Date header floors (and the answer's way) before it; before, 20 minutes behind.
    expect(stamped).toBeGreaterThan(before - 2_000);
    expect(stamped).toBeLessThanOrEqual(after);
  });

  // review50-audit-stamp-cutoff: a deposit was stamped by AWS's lower bound, a second behind at worst, so one made just
  // after a period's end by time (midnight of the 1st) was booked in the period before it.
  it("stamps a deposit and a withdrawal by AWS's best estimate, to the millisecond while the machine's clock agrees", async () => {
    const { at } = await emulator.newStage('clkcut');
    // The clocks agree (moto answers by this machine's): agreedNowMs is the machine's clock; the lower bound at its worst.
    vi.spyOn(AwsClock.prototype, 'agreedNowMs').mockImplementation(() => trueNow());
    vi.spyOn(AwsClock.prototype, 'nowMs').mockImplementation(() => trueNow() - 999);
    const config = path.join(emulator.dir, 'clkcut-risk.json');
    writeFileSync(config, JSON.stringify(DEFAULT_RISK_CONFIG_INPUT));
    for (const action of ['deposit', 'withdraw'] as const) {
      const cut = trueNow();
      const run = await cli(
        'fund',
        action,
        '--amount',
        '1',
        '--key',
        action,
        '--json',
        '--config',
        config,
        ...at,
      );
      expect(run.code, run.stderr).toBe(0);
      const stamped = Date.parse((JSON.parse(run.stdout) as { entry: { at: string } }).entry.at);
      // Made after the cut, stamped at or after it: the next period's. Before, up to a second before it.
      expect(stamped, action).toBeGreaterThanOrEqual(cut);
      expect(stamped, action).toBeLessThanOrEqual(trueNow());
    }
  });

  // ops49b-status-clock: status judged a mark's age and the draw window by the machine's clock.
  describe('status', () => {
    /** A mark stamped now and a draw in the current window, both by AWS's clock (margin-check's, the ledger's). */
    const stampedNow = async (prefix: string) => {
      const stage = await emulator.newStage(prefix);
      const { markets } = createAwsAdapters({
        clients: emulator.clients,
        names: stage.names,
        clock: systemClock,
      });
      await markets.acceptTick(
        'ETH-USD',
        { sequence: 1, markPrice: parsePrice('130'), timestampMs: trueNow() },
        undefined,
        false,
      );
      const { insurance } = DEFAULT_RISK_CONFIG;
      const ledger = new DynamoLedger(emulator.clients.dynamo, stage.names.tables.ledger);
      const windowStartMs = windowStartFor(trueNow(), insurance);
      const entry = { account: INSURANCE_ACCOUNT, reference: 'test', atMs: trueNow(), floor: 0n };
      await ledger.apply({ ...entry, idempotencyKey: 'd', amount: usd('1000'), kind: 'deposit' });
      await ledger.apply({
        ...entry,
        idempotencyKey: 'p',
        amount: -usd('10'),
        kind: 'shortfall-payout',
        drawWindow: { windowStartMs, cap: insurance.drawCapPerWindow },
      });
      return { ...stage, windowStartMs };
    };
    /** What status says of the mark and the window, by AWS's clock. */
    const byAws = (report: StatusReport, windowStartMs: number) => {
      const mark = report.markets['ETH-USD']!;
      expect(mark.markStale).toBe(false);
      expect(mark.markAgeSeconds).toBeLessThanOrEqual(2);
      expect(report.insuranceFund.drawWindow).toMatchObject({ drawn: '10', since: iso(windowStartMs) });
      expect(Math.abs(Date.parse(report.at) - trueNow())).toBeLessThan(3_000);
    };

    it("judges a mark and the draw window by AWS's clock, on a machine an hour ahead", async () => {
      const { at, windowStartMs } = await stampedNow('stclk');
      skewed(60 * MINUTE);
      const run = await cli('status', '--json', ...at);
      expect(run.code, run.stderr).toBe(0);
      // Before: the mark 3600 s old and STALE (over 120 s), the window ended, its draws shown as none.
      byAws(JSON.parse(run.stdout) as StatusReport, windowStartMs);
    });

    it("--watch judges them by AWS's clock too", async () => {
      const { names, at, windowStartMs } = await stampedNow('stwclk');
      skewed(60 * MINUTE);
      // The second refresh's Scan of the markets finds the table gone: the watch ends (exit 1) after one report.
      const spy = failScans(names.tables.markets, (scan) => (scan >= 2 ? NOT_FOUND : undefined));
      let stdout = '';
      try {
        const code = await main(['status', '--watch', '--json', '--interval', '1', ...at], {
          stdout: { write: (t: string) => (stdout += t) },
          stderr: { write: () => true },
        });
        expect(code).toBe(1);
      } finally {
        spy.mockRestore();
      }
      const reports = stdout.trimEnd().split('\n');
      expect(reports).toHaveLength(1);
      byAws(JSON.parse(reports[0]!) as StatusReport, windowStartMs);
    });
  });

  // ops50-next-sequence: a market with no sequence yet had its nextSequence by the report's time, AWS's lower bound
  // (up to a second behind AWS's), where inject numbers such a market's first tick by agreedNowMs.
  it('gives a market with no sequence the nextSequence inject would number its first tick by', async () => {
    const { names, at } = await emulator.newStage('stseq');
    const agreed = 1_900_000_000_000;
    vi.spyOn(AwsClock.prototype, 'agreedNowMs').mockReturnValue(agreed);
    const run = await cli('status', '--json', ...at);
    expect(run.code, run.stderr).toBe(0);
    // Before: the report's time (nowMs), not the clock inject numbers by.
    const report = JSON.parse(run.stdout) as StatusReport;
    expect(report.markets['ETH-USD']!.nextSequence).toBe(agreed);
    expect(Math.abs(Date.parse(report.at) - trueNow())).toBeLessThan(3_000);
    // --watch too: its second refresh finds the markets' table gone, ending it after one report.
    failScans(names.tables.markets, (scan) => (scan >= 2 ? NOT_FOUND : undefined));
    let stdout = '';
    const code = await main(['status', '--watch', '--json', '--interval', '1', ...at], {
      stdout: { write: (t: string) => (stdout += t) },
      stderr: { write: () => true },
    });
    expect(code).toBe(1);
    const watched = JSON.parse(stdout.trimEnd().split('\n')[0]!) as StatusReport;
    expect(watched.markets['ETH-USD']!.nextSequence).toBe(agreed);
  });

  // ops49b-tick-clock: inject tick and replay stamped ticks, foretold margin-check's verdict and numbered a market's
  // first tick by the machine's clock; margin-check judges by its Lambda's, AWS's.
  describe('ticks', () => {
    const marketsOf = (names: Parameters<typeof createAwsAdapters>[0]['names']) =>
      createAwsAdapters({ clients: emulator.clients, names, clock: systemClock }).markets;
    type Detail = { timestamp: number; sequence: number };

    it('foretells a tick stamped now by AWS accepted, on a machine 10 minutes behind', async () => {
      const { names, at } = await emulator.newStage('tkpre');
      await marketsOf(names).acceptTick(
        'ETH-USD',
        { sequence: 5, markPrice: parsePrice('1500'), timestampMs: trueNow() - 1_000 },
        undefined,
        false,
      );
      skewed(-10 * MINUTE);
      const run = await cli(
        'inject',
        'tick',
        '--symbol',
        'ETH-USD',
        '--price',
        '1510',
        '--ts',
        iso(trueNow()),
        '--wait',
        '0',
        ...at,
      );
      // Before: tick/future (10 minutes ahead of the machine), exit 3.
      expect(run.code, run.stderr).toBe(0);
      expect(JSON.parse(run.stdout).fate).toEqual({ outcome: 'sent', expected: 'accept' });
    });

    it("stamps and numbers a market's first tick by AWS's clock, on a machine 10 minutes ahead", async () => {
      const { at } = await emulator.newStage('tkstamp');
      skewed(10 * MINUTE);
      const before = trueNow();
      const run = await cli('inject', 'tick', '--symbol', 'ETH-USD', '--price', '1510', '--wait', '0', ...at);
      const after = trueNow();
      expect(run.code, run.stderr).toBe(0);
      const detail = JSON.parse(run.stdout).entry.Detail as Detail;
      // Before: both 10 minutes ahead (margin-check refuses such a tick as tick/future).
      for (const ms of [detail.timestamp, detail.sequence]) {
        expect(ms).toBeGreaterThan(before - 2_000);
        expect(ms).toBeLessThanOrEqual(after);
      }
    });

    it("replay stamps and numbers its ticks by AWS's clock, on a machine 10 minutes ahead", async () => {
      const { at } = await emulator.newStage('tkreplay');
      const file = path.join(emulator.dir, 'clock-one.csv');
      writeFileSync(file, 'timestamp,close\n1584000000000,150\n');
      const put: Detail[] = [];
      answerPutEvents((command, _call, forward) => {
        for (const e of command.input.Entries ?? []) put.push(JSON.parse(e.Detail ?? '{}') as Detail);
        return forward();
      });
      skewed(10 * MINUTE);
      const before = trueNow();
      const run = await cli('replay', file, '--symbol', 'ETH-USD', '--speed', 'max', '--json', ...at);
      const after = trueNow();
      expect(run.code, run.stderr).toBe(0);
      expect(put).toHaveLength(1);
      for (const ms of [put[0]!.timestamp, put[0]!.sequence]) {
        expect(ms).toBeGreaterThan(before - 2_000);
        expect(ms).toBeLessThanOrEqual(after);
      }
    });
  });
});
