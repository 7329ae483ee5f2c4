import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createAwsAdapters, type ResourceNames } from '../../shared/adapters/aws/index.ts';
import { liquidationItem } from '../../shared/adapters/aws/liquidations.ts';
import { systemClock } from '../../shared/adapters/embedded/clock.ts';
import { parsePrice } from '../../shared/domain/units.ts';
import { eachInFlight } from '../../shared/in-flight.ts';
import type { StatusReport } from '../../shared/local/status.ts';
import type { LiquidationRecord } from '../../shared/ports/index.ts';
import { YOUNG_COUNTED_MAX } from '../../shared/services/liquidation-watch.ts';
import { cli, publishStackOutputs, useOperatorEmulator } from '../support/cli.ts';

/**
 * Found by the second review of session 38's changes: `status` called stranded the liquidations a tick was still
 * starting, and `liquidations overdue --all --resend` resent 100 of them (its --max default) where the runbook says
 * every one.
 */
const emulator = useOperatorEmulator('opwatch');
const adapters = (names: ResourceNames) =>
  createAwsAdapters({ clients: emulator.clients, names, clock: systemClock });

const queued = (id: string, atMs: number): LiquidationRecord => ({
  id,
  positionId: id.split(':')[0]!,
  symbol: 'ETH-USD',
  side: 'LONG',
  state: 'QUEUED',
  tickKey: 'ETH-USD#7',
  triggerMark: parsePrice('1440'),
  remainingSize: 100_000_000n,
  marketFills: [],
  history: [{ atMs, state: 'QUEUED' }],
  version: 0,
});

async function put(names: ResourceNames, l: LiquidationRecord) {
  await emulator.clients.dynamo.send(
    new PutItemCommand({ TableName: names.tables.liquidations, Item: liquidationItem(l) }),
  );
}

describe('status stranded', () => {
  it('does not call stranded the liquidations a tick is still starting (pending sequence, deployed stack)', async () => {
    const { stage, names } = await emulator.newStage('st');
    await publishStackOutputs(emulator.moto.endpoint, stage, names);
    // margin-check wrote the market's pending sequence and the QUEUED record; its message is sent after the record
    // (or by Lambda's retry of the invocation / the continuation): something will move it.
    await adapters(names).markets.acceptTick(
      'ETH-USD',
      { sequence: 7, markPrice: parsePrice('1440'), timestampMs: Date.now() },
      undefined,
      true,
    );
    await put(names, queued('p1:0', Date.now()));
    const target = ['--target', 'localstack', '--endpoint', emulator.moto.endpoint, '--stage', stage];
    const run = await cli('status', '--json', ...target);
    const report = JSON.parse(run.stdout) as StatusReport;
    expect(report.markets['ETH-USD']!.pendingSequence).toBe(7);
    expect(report.settled).toBe(false);
    // "nothing will move them": wrong while the tick's work is pending.
    expect(report.stranded).toBe(0);
  });
});

describe('liquidations overdue --all --resend', () => {
  it('resends every open liquidation, as DEPLOY.md and the status line say', async () => {
    const { names, at } = await emulator.newStage('al');
    const now = Date.now();
    for (let i = 0; i < 105; i++) await put(names, queued(`p${i}:0`, now - 1000 + i));
    const report = JSON.parse((await cli('status', '--json', ...at)).stdout) as StatusReport;
    expect(report.stranded).toBe(105);
    const run = await cli('liquidations', 'overdue', '--all', '--resend', '--json', ...at);
    expect(run.stderr).toBe('');
    const out = JSON.parse(run.stdout) as { overdue: number; resent: string[] };
    expect(out.overdue).toBe(105);
    expect(out.resent.length).toBe(105);
  });
});

// overdue46-more-unsent: `--resend` resent the first --max (100) and said nothing of the rest, so an operator after an
// outage took the overdue count for done, or ran it again and resent the same ones, still overdue until the consumer
// moved them.
// review49-cli-overdue-clock: the liquidations' stamps are the functions', by AWS's clock; `liquidations overdue` judged
// them by the machine's, so one 3 hours ahead (a clock kept in local time, say) resent work just queued as 3 hours quiet.
describe("liquidations overdue by AWS's clock", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("judges and resends by AWS's clock, on a machine 3 hours ahead", async () => {
    const { names, at } = await emulator.newStage('ok');
    const now = Date.now();
    await put(names, queued('fresh:0', now));
    await put(names, queued('old:0', now - 6 * 3_600_000));
    const trueNow = Date.now.bind(Date);
    vi.spyOn(Date, 'now').mockImplementation(() => trueNow() + 3 * 3_600_000);
    const run = await cli('liquidations', 'overdue', '--resend', '--json', ...at);
    expect(run.code, run.stderr).toBe(0);
    // Before: both, the one queued now 3 hours quiet by the machine's clock.
    expect(JSON.parse(run.stdout)).toMatchObject({ overdue: 1, resent: ['old:0'] });
  });
});

describe('liquidations overdue --resend, more than --max', () => {
  it('says how many were not resent and how to send them', async () => {
    const { names, at } = await emulator.newStage('mx');
    const now = Date.now();
    for (let i = 0; i < 5; i++) await put(names, queued(`m${i}:0`, now - 3 * 3_600_000 + i));
    const run = await cli('liquidations', 'overdue', '--resend', '--max', '2', ...at);
    expect(run.stderr).toBe('');
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(
      /^5 overdue of 5 open liquidations old enough to judge \(the 2 longest overdue below\)/,
    );
    expect(lines.at(-2)).toBe('resent 2');
    expect(lines.at(-1)).toBe(
      // ux46-advice-target: as commands for this stage.
      `3 more overdue not resent (--max 2): run backstop liquidations overdue --resend --max 2 ${at.join(' ')} again once these have moved, or backstop liquidations overdue --resend --max 5 ${at.join(' ')}`,
    );
  });

  // ops47-overdue-json-advice: --json had `overdue` beside `resent`, and no run again: a script had to rebuild the
  // command, target flags and all, that the text names.
  it('says it in --json too, with the commands as the text names them, runnable as printed', async () => {
    const { names, at } = await emulator.newStage('mj');
    const now = Date.now();
    for (let i = 0; i < 5; i++) await put(names, queued(`m${i}:0`, now - 3 * 3_600_000 + i));
    const run = await cli('liquidations', 'overdue', '--resend', '--max', '2', '--json', ...at);
    expect(run.stderr).toBe('');
    const out = JSON.parse(run.stdout) as { resent: string[]; notResent: unknown };
    expect(out.resent).toHaveLength(2);
    const again = `backstop liquidations overdue --resend --max 2 ${at.join(' ')}`;
    const higher = `backstop liquidations overdue --resend --max 5 ${at.join(' ')}`;
    expect(out.notResent).toEqual({
      count: 3,
      advice: `3 more overdue not resent (--max 2): run ${again} again once these have moved, or ${higher}`,
      commands: [again, higher],
    });
    // The higher one, run as printed, resends every one on this stage.
    const rest = await cli(...higher.split(' ').slice(1), '--json');
    expect(rest.stderr).toBe('');
    const all = JSON.parse(rest.stdout) as { overdue: number; resent: string[] };
    expect(all.overdue).toBe(5);
    expect(all.resent).toHaveLength(5);
    expect(all).not.toHaveProperty('notResent');
  });
});

// Checked in session 46 (overdue46-young-resend): `overdue --resend` was thought to read every open liquidation 15 to 60
// minutes old, as the watch's stalled-step resend does. It does not: the CLI's --resend resends the liquidations listed
// and reads as `overdue` does, the young ones counted up to YOUNG_COUNTED_MAX (ux45-young-read-bounded).
describe('liquidations overdue --resend after a crash: the young ones', () => {
  it('reads a bounded part of those 15 to 60 minutes old, says at least, and resends none of them', async () => {
    const { names, at } = await emulator.newStage('yr');
    const now = Date.now();
    const open = YOUNG_COUNTED_MAX + 300;
    await eachInFlight(
      Array.from({ length: open }, (_, i) => i),
      16,
      (i) => put(names, queued(`y${i}:0`, now - 45 * 60_000 + i)),
    );
    const run = await cli('liquidations', 'overdue', '--resend', '--json', ...at);
    expect(run.stderr).toBe('');
    const out = JSON.parse(run.stdout) as { tooYoung: number };
    expect(out).toMatchObject({ judged: 0, overdue: 0, tooYoungAtLeast: true, resent: [] });
    expect(out.tooYoung).toBeGreaterThanOrEqual(YOUNG_COUNTED_MAX);
    expect(out.tooYoung).toBeLessThan(open);
  });
});
