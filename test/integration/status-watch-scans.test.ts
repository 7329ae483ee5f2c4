import { DeleteTableCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  type FailedRefresh,
  failedRefreshLine,
  renderStatus,
  sleepUnlessAborted,
  watchStatus,
} from '../../cli/ops/status.ts';
import { type AwsClients, createAwsAdapters, type ResourceNames } from '../../shared/adapters/aws/index.ts';
import { liquidationItem } from '../../shared/adapters/aws/liquidations.ts';
import { systemClock } from '../../shared/adapters/embedded/clock.ts';
import { openShardOf } from '../../shared/adapters/shards.ts';
import { parsePrice } from '../../shared/domain/units.ts';
import {
  collectLiquidationWork,
  collectStatus,
  LOOK_PROBE_TRIES,
  progressMoved,
  STATUS_COUNT_EVERY_MS,
  STRANDED_CONFIRM_MS,
  STRANDED_LOOK_MAX,
  type StatusReport,
  statusWatcher,
} from '../../shared/local/status.ts';
import type { LiquidationRecord } from '../../shared/ports/index.ts';
import { withdrawalChecker } from '../../shared/services/admin.ts';
import { auctionRecord } from '../support/auction-records.ts';
import { motoStages } from '../support/moto.ts';

/**
 * status46-watch-scans: `status --watch` counted positions, liquidations and auctions by state on every refresh (every
 * 2 s), each count a Scan of those tables whole: on a book of 1,000,000 positions, ~60,000 read units (DEPLOY.md) and
 * hundreds of Scan pages a refresh, while the on-call watches a crash. It now counts every STATUS_COUNT_EVERY_MS and
 * shows the last counts, with their age, in between; the queues, markets and fund stay live. `replay --hold` scanned
 * the positions and auctions on every held tick for nothing it used. The Scans are counted by a middleware of the real
 * SDK, on moto.
 */

const moto = motoStages('sws');

/**
 * A watch that says work stranded at the first refresh that finds it (stranded48-confirm: a watch waits
 * STRANDED_CONFIRM_MS of refreshes for SQS's approximate counts), for the tests of the judgment itself.
 */
const atOnce = { confirmMs: 0 };

/** The Scan calls sent, by table. */
function countScans(clients: AwsClients) {
  const scans: Record<string, number> = {};
  const middleware =
    (next: (args: { input: unknown }) => Promise<unknown>, context: { commandName?: string }) =>
    async (args: { input: { TableName?: string } }) => {
      if (context.commandName === 'ScanCommand') {
        const table = args.input.TableName ?? '?';
        scans[table] = (scans[table] ?? 0) + 1;
      }
      return next(args);
    };
  clients.dynamo.middlewareStack.add(middleware as never, { step: 'initialize', name: 'countScans' });
  return scans;
}

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

/** A stage on moto, its clients destroyed at the test's end. */
async function setUp() {
  const { clients, names } = await moto.stage();
  onTestFinished(() => clients.destroy());
  const adapters = createAwsAdapters({ clients, names, clock: systemClock });
  const deployment = {
    kind: 'local' as const,
    stage: 'watch',
    region: 'us-east-1',
    endpoint: moto.endpoint(),
    clients,
    names,
    close: () => {},
  };
  const put = (l: LiquidationRecord) =>
    clients.dynamo.send(
      new PutItemCommand({ TableName: names.tables.liquidations, Item: liquidationItem(l) }),
    );
  /** ETH-USD's tick 7 accepted at `atMs`, its market pending: margin-check is starting the tick's liquidations. */
  const tickStarting = (atMs: number) =>
    adapters.markets.acceptTick(
      'ETH-USD',
      { sequence: 7, markPrice: parsePrice('1500'), timestampMs: atMs },
      undefined,
      true,
    );
  /** A message in the liquidations' queue: what moves the work. */
  const workMessage = () =>
    clients.sqs.send(new SendMessageCommand({ QueueUrl: names.queues.liquidations.url, MessageBody: '{}' }));
  return { clients, names, deployment, adapters, put, tickStarting, workMessage, scans: countScans(clients) };
}

/** `count` liquidation ids `<prefix><n>:0` of open index shard `shard`, the lowest n first. */
function idsInShard(shard: number, count: number, prefix: string): string[] {
  const ids: string[] = [];
  for (let i = 0; ids.length < count; i++)
    if (openShardOf(`${prefix}${i}:0`) === `open#${shard}`) ids.push(`${prefix}${i}:0`);
  return ids;
}

/** The Scans of the three counted tables (the markets' is live, a handful of items). */
const counted = (scans: Record<string, number>, names: ResourceNames) => ({
  positions: scans[names.tables.positions] ?? 0,
  liquidations: scans[names.tables.liquidations] ?? 0,
  auctions: scans[names.tables.auctions] ?? 0,
  markets: scans[names.tables.markets] ?? 0,
});

describe('status --watch: the Scanned counts (moto, real SDK)', () => {
  it('scans the positions, liquidations and auctions once per STATUS_COUNT_EVERY_MS, the rest on every refresh', async () => {
    const { names, deployment, put, scans, workMessage } = await setUp();
    const t0 = Date.now();
    await put(queued('p1:0', t0));
    const watch = statusWatcher(deployment, undefined, withdrawalChecker());
    const first = await watch(t0);
    expect(first.counted).toEqual({ at: first.at, ageSeconds: 0 });
    expect(first.liquidations.nonTerminal).toBe(1);
    // One count: one Scan of each table (status47-one-scan: the liquidations' was two, the totals and the ADL rounds
    // owed).
    expect(counted(scans, names)).toEqual({ positions: 1, liquidations: 1, auctions: 1, markets: 1 });

    // Refreshes every 2 s within the five minutes: no Scan of the counted tables; the queues read live.
    await put(queued('p2:0', t0));
    await workMessage();
    const lastBefore = STATUS_COUNT_EVERY_MS - 2_000;
    await watch(t0 + 2_000);
    await watch(t0 + 4_000);
    const last = await watch(t0 + lastBefore);
    // Before: a count on each of the three refreshes, 4 in all.
    expect(counted(scans, names)).toEqual({ positions: 1, liquidations: 1, auctions: 1, markets: 4 });
    expect(last.liquidations.nonTerminal).toBe(1);
    expect(last.counted).toEqual({ at: first.at, ageSeconds: lastBefore / 1000 });
    expect(last.queues.liquidations!.depth).toBe(1);
    expect(last.drained).toBe(false);

    // Five minutes after the count: counted again, the new liquidation in it.
    const recount = await watch(t0 + STATUS_COUNT_EVERY_MS);
    expect(counted(scans, names)).toEqual({ positions: 2, liquidations: 2, auctions: 2, markets: 5 });
    expect(recount.liquidations.nonTerminal).toBe(2);
    expect(recount.counted).toEqual({ at: recount.at, ageSeconds: 0 });
    // A clock set back counts again rather than showing a count from the future.
    await watch(t0 + STATUS_COUNT_EVERY_MS - 1_000);
    expect(counted(scans, names).positions).toBe(3);
  });

  // ops49b-status-clock: a look's report is stamped by AWS's time, re-read from each answer's Date header (a second's
  // jitter); the durations between looks are the machine's clock's, which compares no stored stamp.
  it("times the counts and stranded work by the machine's clock, and stamps the report by AWS's", async () => {
    const { deployment, put, scans, names } = await setUp();
    const t0 = Date.now();
    // AWS's time 3 hours past the machine's, its estimate a second lower at the second look.
    const aws0 = t0 + 3 * 3_600_000;
    await put(queued('p1:0', t0));
    const watch = statusWatcher(deployment, undefined, withdrawalChecker(), { confirmMs: 60_000 });
    const first = await watch(t0, aws0);
    expect(first.at).toBe(new Date(aws0).toISOString());
    expect(first.strandedUnconfirmed).toBe(1);
    const second = await watch(t0 + 2_000, aws0 - 1_000);
    // Not counted again for a clock that seemed set back, the count 2 s old, the stranded run 2 s long.
    expect(counted(scans, names).liquidations).toBe(1);
    expect(second.at).toBe(new Date(aws0 - 1_000).toISOString());
    expect(second.counted).toEqual({ at: first.at, ageSeconds: 2 });
    expect(second).toMatchObject({ strandedUnconfirmed: 1, strandedForSeconds: 2 });
    // Confirmed a minute after the first look by the machine's clock, whatever AWS's estimate says.
    const third = await watch(t0 + 60_000, aws0 + 50_000);
    expect(third).toMatchObject({ stranded: 1, strandedUnconfirmed: 0, strandedForSeconds: 60 });
  });

  // review46-watch-stale-judgements: `stranded` and `settled` are judged from the counts and shown with them, but the
  // queues and markets beside them are live; what those say now clears a judgement they contradict (never raises one).
  it('clears a counted stranded once a message moves the work', async () => {
    const { names, deployment, put, scans, workMessage } = await setUp();
    const t0 = Date.now();
    await put(queued('p1:0', t0));
    const watch = statusWatcher(deployment, undefined, withdrawalChecker(), atOnce);
    expect(await watch(t0)).toMatchObject({ drained: true, stranded: 1, settled: false });
    // The resend the stranded line advises: a message moves it now.
    await workMessage();
    const resent = await watch(t0 + 2_000);
    expect(counted(scans, names).liquidations).toBe(1);
    // Before: stranded 1 beside a queue holding its message, the line advising the resend again for 5 minutes.
    expect(resent).toMatchObject({ drained: false, stranded: 0 });
    expect(renderStatus(resent)).not.toContain('no message moving them');
  });

  it('is not settled on a count taken before a tick queued work, or while a tick is starting it', async () => {
    const { names, deployment, put, scans, tickStarting, workMessage, adapters } = await setUp();
    const t0 = Date.now();
    const watch = statusWatcher(deployment, undefined, withdrawalChecker());
    expect(await watch(t0)).toMatchObject({ drained: true, settled: true });
    // A tick crosses a position: margin-check marks its market pending, then writes and queues the liquidation.
    await tickStarting(t0);
    const starting = await watch(t0 + 2_000);
    expect(starting.markets['ETH-USD']!.pendingSequence).toBe(7);
    // Before: settled, counted before the tick.
    expect(starting.settled).toBe(false);
    await put(queued('p1:0', t0));
    await workMessage();
    // Its work started, the next tick clears the pending mark.
    await adapters.markets.acceptTick(
      'ETH-USD',
      { sequence: 8, markPrice: parsePrice('1500'), timestampMs: t0 + 1 },
      7,
      false,
    );
    const queuedWork = await watch(t0 + 4_000);
    expect(counted(scans, names).liquidations).toBe(1);
    expect(queuedWork.markets['ETH-USD']!.pendingSequence).toBeNull();
    // Before: settled beside the queued message, the queues line calling it a no-op.
    expect(queuedWork).toMatchObject({ drained: false, settled: false });
    expect(renderStatus(queuedWork)).not.toContain('(settled:');
  });

  // review48-auctions-scan-dropped: the auctions table was Scanned only once the liquidations' Scan found a context
  // naming an auction (status48-auctions-scan), so an auction no liquidation names (its liquidation's table restored
  // alone, or either written by hand) counted 0 and its stack was said settled while it ran.
  it('counts the auctions the table holds, whatever the liquidations name', async () => {
    const { names, deployment, put, scans, adapters } = await setUp();
    const t0 = Date.now();
    await put(queued('p1:0', t0));
    const single = await collectStatus(deployment, t0);
    expect(counted(scans, names)).toEqual({ positions: 1, liquidations: 1, auctions: 1, markets: 1 });
    expect(single.auctions).toEqual({ byState: { RUNNING: 0, CLEARED: 0, EXHAUSTED: 0 }, open: 0 });
    // A running auction whose liquidation's record does not name it (settled, as a table restored alone has it).
    const { auctions } = adapters;
    await put({ ...queued('p1:0', t0), state: 'SETTLED_MARKET', version: 1 });
    await auctions.create(auctionRecord('p2:0:auction', { liquidationId: 'p2:0' }));
    const withAuction = await collectStatus(deployment, t0);
    expect(counted(scans, names)).toEqual({ positions: 2, liquidations: 2, auctions: 2, markets: 2 });
    // Before: RUNNING 0, open 0 and settled.
    expect(withAuction.auctions).toEqual({ byState: { RUNNING: 1, CLEARED: 0, EXHAUSTED: 0 }, open: 1 });
    expect(withAuction.settled).toBe(false);
  });

  it("replay --hold's look scans the liquidations only, once, and judges the work as status does", async () => {
    const { names, deployment, put, scans } = await setUp();
    await put(queued('p1:0', Date.now()));
    // Settled, ADL still owing rounds on its deficit: open work, found by the same Scan (status47-hold-one-scan).
    await put({
      ...queued('p2:0', Date.now()),
      state: 'SETTLED_ADL',
      remainingSize: 0n,
      context: { plannedSize: 100_000_000n, executionMark: parsePrice('1440'), adlRound: { round: 0 } },
    });
    const work = await collectLiquidationWork(deployment);
    // Before: collectStatus, the positions (a whole book) and the auctions scanned on every held tick too; and the
    // liquidations twice (the totals, then the ADL rounds owed).
    expect(counted(scans, names)).toEqual({ positions: 0, liquidations: 1, auctions: 0, markets: 1 });
    expect(work).toMatchObject({
      liquidations: { total: 2, nonTerminal: 2, owingAdlRounds: 1 },
      stranded: 2,
      dlqMessages: 0,
    });
  });
});

/** The calls of one command sent, by table (BatchGetItem: by the tables it reads). */
function countCalls(clients: AwsClients, command: string) {
  const calls: Record<string, number> = {};
  const middleware =
    (next: (args: { input: unknown }) => Promise<unknown>, context: { commandName?: string }) =>
    async (args: { input: { TableName?: string; RequestItems?: Record<string, unknown> } }) => {
      if (context.commandName === command)
        for (const table of args.input.TableName
          ? [args.input.TableName]
          : Object.keys(args.input.RequestItems ?? {}))
          calls[table] = (calls[table] ?? 0) + 1;
      return next(args);
    };
  clients.dynamo.middlewareStack.add(middleware as never, { step: 'initialize', name: `count${command}` });
  return calls;
}

// status47-stranded-live: between counts, `stranded` was the count's (cleared by a waiting message, never raised), so
// work stranded after a count (a purged queue, a message gone) showed only at the next count, up to 5 minutes on. A
// refresh with the work queues drained now reads the open liquidations' index, bounded by the open work, no Scan.
describe('status --watch: stranded work between counts (moto, real SDK)', () => {
  it('shows a liquidation stranded after the count on the next refresh, without a Scan', async () => {
    const { clients, names, deployment, put, scans, workMessage } = await setUp();
    const queries = countCalls(clients, 'QueryCommand');
    const t0 = Date.now();
    const watch = statusWatcher(deployment, undefined, withdrawalChecker(), atOnce);
    expect(await watch(t0)).toMatchObject({ drained: true, stranded: 0, settled: true });
    // Written with no message (its message lost, the queue purged): nothing moves it.
    await put(queued('p1:0', t0));
    const later = await watch(t0 + 2_000);
    // Before: stranded 0 and settled, as counted, until the count at 5 minutes.
    expect(later).toMatchObject({ drained: true, stranded: 1, strandedAtLeast: false, settled: false });
    expect(later.counted.ageSeconds).toBe(2);
    expect(counted(scans, names)).toMatchObject({ positions: 1, liquidations: 1, auctions: 1 });
    // The look: a Query of each of the open index's 16 shards.
    expect(queries[names.tables.liquidations]).toBe(16);
    const text = renderStatus(later);
    expect(text).toContain(
      '\n  1 liquidation not terminal and no message moving it (none seen for 0 s): no dead letter',
    );
    expect(text).toContain('auctions and settled counted 2 s ago');
    // A message sent (the resend the line advises): no look while one waits.
    await workMessage();
    expect(await watch(t0 + 4_000)).toMatchObject({ drained: false, stranded: 0, settled: false });
    expect(queries[names.tables.liquidations]).toBe(16);
  });

  it("judges the look as a count does: an ended one the index still lists and a pending tick's are not stranded", async () => {
    const { clients, names, deployment, put, tickStarting } = await setUp();
    const t0 = Date.now();
    const watch = statusWatcher(deployment, undefined, withdrawalChecker(), atOnce);
    await watch(t0);
    // Ended, but still listed by the open index (AWS's index lags the table): its record says it ended.
    const ended = liquidationItem({ ...queued('p1:0', t0), state: 'CANCELLED' });
    await clients.dynamo.send(
      new PutItemCommand({
        TableName: names.tables.liquidations,
        Item: { ...ended, openShard: { S: openShardOf('p1:0') }, startedAtMs: { N: String(t0) } },
      }),
    );
    expect(await watch(t0 + 2_000)).toMatchObject({ drained: true, stranded: 0, settled: true });
    // A tick still starting its liquidations (its market pending): it sends their messages yet.
    await tickStarting(t0);
    await put(queued('p2:0', t0));
    expect(await watch(t0 + 4_000)).toMatchObject({ drained: true, stranded: 0, settled: false });
    // Another tick's: stranded.
    await put({ ...queued('p3:0', t0), tickKey: 'ETH-USD#6' });
    expect(await watch(t0 + 6_000)).toMatchObject({ drained: true, stranded: 1, settled: false });
  });

  it('judges again on the queues read after the look: work a tick started meanwhile is not stranded', async () => {
    const { clients, deployment, put, workMessage } = await setUp();
    const t0 = Date.now();
    const watch = statusWatcher(deployment, undefined, withdrawalChecker(), atOnce);
    await watch(t0);
    await put(queued('p1:0', t0));
    // Its message is sent while the look reads the record (after the refresh read the queues drained).
    let sent = false;
    const middleware =
      (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) =>
      async (args: unknown) => {
        const out = await next(args);
        if (context.commandName === 'BatchGetItemCommand' && !sent) {
          sent = true;
          await workMessage();
        }
        return out;
      };
    clients.dynamo.middlewareStack.add(middleware as never, { step: 'initialize', name: 'sendDuringLook' });
    const report = await watch(t0 + 2_000);
    expect(sent).toBe(true);
    // Before: stranded 1, judged on the queues read before the look, beside no queue at all.
    expect(report).toMatchObject({ drained: false, stranded: 0 });
    expect(report.queues.liquidations!.depth).toBe(1);
  });

  // review47-stranded-unindexed: an open record written before the open index (session 38) is not in it until its next
  // write or `backstop liquidations index`; the count found it stranded and every refresh in between said 0.
  it('keeps judging between counts the open records the count found outside the open index', async () => {
    const { clients, names, deployment, put } = await setUp();
    const t0 = Date.now();
    const { openShard: _, startedAtMs: __, ...unlisted } = liquidationItem(queued('p1:0', t0));
    await clients.dynamo.send(new PutItemCommand({ TableName: names.tables.liquidations, Item: unlisted }));
    const watch = statusWatcher(deployment, undefined, withdrawalChecker(), atOnce);
    expect(await watch(t0)).toMatchObject({ drained: true, stranded: 1 });
    // Before: 0 between counts, 1 again at the next.
    expect(await watch(t0 + 2_000)).toMatchObject({ drained: true, stranded: 1, strandedAtLeast: false });
    // Listed since (its next write, or the backfill): read once, not twice.
    await put(queued('p1:0', t0));
    expect(await watch(t0 + 4_000)).toMatchObject({ stranded: 1 });
    // Ended: its record says so.
    await put({ ...queued('p1:0', t0), state: 'CANCELLED' });
    expect(await watch(t0 + 6_000)).toMatchObject({ stranded: 0 });
  });

  it('reads at most STRANDED_LOOK_MAX records and says the figure is a lower bound', async () => {
    const { clients, names, deployment, put } = await setUp();
    const batchGets = countCalls(clients, 'BatchGetItemCommand');
    const t0 = Date.now();
    const watch = statusWatcher(deployment, undefined, withdrawalChecker(), atOnce);
    await watch(t0);
    for (let i = 0; i <= STRANDED_LOOK_MAX; i++) await put(queued(`p${i}:0`, t0));
    const report = await watch(t0 + 2_000);
    expect(report).toMatchObject({ stranded: STRANDED_LOOK_MAX, strandedAtLeast: true });
    expect(batchGets[names.tables.liquidations]).toBe(1);
    expect(renderStatus(report)).toContain(`\n  at least ${STRANDED_LOOK_MAX} liquidations not terminal`);
    // The count's is exact.
    expect(await watch(t0 + STATUS_COUNT_EVERY_MS)).toMatchObject({
      stranded: STRANDED_LOOK_MAX + 1,
      strandedAtLeast: false,
    });
  });

  // review48-stranded-at-least-unconfirmed: while a watch confirmed a look's lower bound, `--json` said `stranded: 0`
  // with `strandedAtLeast: true` ("at least 0", what status48-at-least-zero had ended).
  it('says a lower bound being confirmed in its text, never beside a stranded of 0', async () => {
    const { deployment, put } = await setUp();
    const t0 = Date.now();
    const watch = statusWatcher(deployment, undefined, withdrawalChecker());
    await watch(t0);
    for (let i = 0; i <= STRANDED_LOOK_MAX; i++) await put(queued(`p${i}:0`, t0));
    const confirming = await watch(t0 + 2_000);
    expect(confirming).toMatchObject({
      stranded: 0,
      strandedUnconfirmed: STRANDED_LOOK_MAX,
      strandedAtLeast: false,
      strandedForSeconds: 0,
    });
    expect(renderStatus(confirming)).toContain(
      `\n  confirming (0 of 60 s): at least ${STRANDED_LOOK_MAX} liquidations not terminal`,
    );
    expect(await watch(t0 + 2_000 + STRANDED_CONFIRM_MS)).toMatchObject({
      stranded: STRANDED_LOOK_MAX,
      strandedAtLeast: true,
      strandedUnconfirmed: 0,
    });
  });
});

// status48-at-least-zero: a look that read STRANDED_LOOK_MAX open liquidations, none stranded (a tick is starting them),
// with more listed said `stranded: 0` and `strandedAtLeast: true`, "at least 0".
describe('status --watch: a look that finds none stranded among those it read (moto, real SDK)', () => {
  it('says 0, not a lower bound of 0', async () => {
    const { deployment, put, tickStarting } = await setUp();
    const t0 = Date.now();
    const watch = statusWatcher(deployment, undefined, withdrawalChecker());
    await watch(t0);
    await tickStarting(t0);
    for (let i = 0; i <= STRANDED_LOOK_MAX; i++) await put(queued(`p${i}:0`, t0));
    const report = await watch(t0 + 2_000);
    // Before: strandedAtLeast true beside stranded 0.
    expect(report).toMatchObject({ drained: true, stranded: 0, strandedAtLeast: false, settled: false });
    expect(renderStatus(report)).not.toContain('not terminal and no message');
  });
});

// stranded48-confirm: the work queues' counts are SQS's approximate ones, which AWS says "may not achieve consistency
// until at least 1 minute after the producers stop sending messages" (GetQueueAttributes): while a message moves the
// work a refresh may count none, and --watch said that work stranded, with the resend to run, for that refresh.
describe('status --watch: stranded once its refreshes have found no message for a minute (moto, real SDK)', () => {
  /** Every queue's counts read 0 while `on`, as SQS's approximate counts may with a message in the queue. */
  function flashingCounts(clients: AwsClients) {
    const flash = { on: false };
    const middleware =
      (
        next: (args: unknown) => Promise<{ output: { Attributes?: Record<string, string> } }>,
        context: { commandName?: string },
      ) =>
      async (args: unknown) => {
        const out = await next(args);
        const counts = out.output.Attributes;
        if (flash.on && context.commandName === 'GetQueueAttributesCommand' && counts)
          for (const key of Object.keys(counts))
            if (key.startsWith('ApproximateNumberOfMessages')) counts[key] = '0';
        return out;
      };
    clients.sqs.middlewareStack.add(middleware as never, { step: 'initialize', name: 'flashingCounts' });
    return flash;
  }

  it('says confirming while the counts read 0 for less than a minute, and stranded once they have for a minute', async () => {
    const { clients, names, deployment, put } = await setUp();
    const flash = flashingCounts(clients);
    const t0 = Date.now();
    await put(queued('p1:0', t0));
    // Its message waits in the queue: the work moves.
    await clients.sqs.send(
      new SendMessageCommand({
        QueueUrl: names.queues.liquidations.url,
        MessageBody: '{"liquidationId":"p1:0"}',
      }),
    );
    const watch = statusWatcher(deployment, undefined, withdrawalChecker());
    const moving = { drained: false, stranded: 0, strandedUnconfirmed: 0, strandedForSeconds: null };
    expect(await watch(t0)).toMatchObject(moving);
    // The counts read 0 on refreshes just short of a minute apart, the message there all along.
    const read = async (atMs: number) => {
      flash.on = true;
      try {
        return await watch(atMs);
      } finally {
        flash.on = false;
      }
    };
    const first = await read(t0 + 2_000);
    // Before: stranded 1, the line telling the on-call to resend work its message was moving.
    expect(first).toMatchObject({
      drained: true,
      stranded: 0,
      strandedUnconfirmed: 1,
      strandedForSeconds: 0,
    });
    const text = renderStatus(first);
    expect(text).toContain(
      "\n  confirming (0 of 60 s): 1 liquidation not terminal and no message seen moving it; stranded once refreshes see none for 60 s (SQS's queue counts are approximate: a moment of 0 is not enough)\n",
    );
    expect(text).not.toContain('overdue');
    const last = await read(t0 + 2_000 + STRANDED_CONFIRM_MS - 1);
    expect(last).toMatchObject({ stranded: 0, strandedUnconfirmed: 1, strandedForSeconds: 59 });
    // The counts catch up: the run ends.
    expect(await watch(t0 + 64_000)).toMatchObject(moving);

    // The message gone (lost, the queue purged): nothing moves the work, refresh after refresh.
    const { Messages } = await clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: names.queues.liquidations.url, WaitTimeSeconds: 1 }),
    );
    await clients.sqs.send(
      new DeleteMessageCommand({
        QueueUrl: names.queues.liquidations.url,
        ReceiptHandle: Messages![0]!.ReceiptHandle!,
      }),
    );
    const lost = t0 + 66_000;
    expect(await watch(lost)).toMatchObject({ stranded: 0, strandedUnconfirmed: 1, strandedForSeconds: 0 });
    expect(await watch(lost + 30_000)).toMatchObject({
      stranded: 0,
      strandedUnconfirmed: 1,
      strandedForSeconds: 30,
    });
    const confirmed = await watch(lost + STRANDED_CONFIRM_MS);
    expect(confirmed).toMatchObject({
      drained: true,
      stranded: 1,
      strandedUnconfirmed: 0,
      strandedForSeconds: 60,
      strandedAtLeast: false,
    });
    expect(renderStatus(confirmed)).toContain(
      '\n  1 liquidation not terminal and no message moving it (none seen for 60 s): no dead letter holds it',
    );
    // Still no count since t0: every refresh judged the open index.
    expect(confirmed.counted.ageSeconds).toBe((lost + STRANDED_CONFIRM_MS - t0) / 1000);
  });

  // review48-stranded-moved: a run went on while the work it found moved, so long as some was found stranded on each
  // refresh: counts reading 0 while messages moved one liquidation, then another, called the rest stranded a minute on.
  it('starts the minute again when work a refresh found has moved since, though the counts read 0', async () => {
    const { deployment, put } = await setUp();
    const t0 = Date.now();
    await put(queued('p1:0', t0));
    await put(queued('p2:0', t0));
    const watch = statusWatcher(deployment, undefined, withdrawalChecker());
    expect(await watch(t0)).toMatchObject({ stranded: 0, strandedUnconfirmed: 2, strandedForSeconds: 0 });
    expect(await watch(t0 + 2_000)).toMatchObject({ strandedUnconfirmed: 2, strandedForSeconds: 2 });
    // A message moved p1:0 (its record's state and version), none counted: the minute starts again (before: 32 s).
    await put({ ...queued('p1:0', t0), state: 'EXECUTING', version: 1 });
    expect(await watch(t0 + 32_000)).toMatchObject({ strandedUnconfirmed: 2, strandedForSeconds: 0 });
    // One ended, gone from the open index: again (before: stranded at 62 s, a minute after the first look).
    await put({ ...queued('p2:0', t0), state: 'CANCELLED', version: 1 });
    expect(await watch(t0 + 62_000)).toMatchObject({
      stranded: 0,
      strandedUnconfirmed: 1,
      strandedForSeconds: 0,
    });
    expect(await watch(t0 + 92_000)).toMatchObject({ strandedUnconfirmed: 1, strandedForSeconds: 30 });
    // Nothing moves it for a minute: stranded.
    expect(await watch(t0 + 122_000)).toMatchObject({
      stranded: 1,
      strandedUnconfirmed: 0,
      strandedForSeconds: 60,
    });
  });

  it('judges a single read from its one look, and says so', async () => {
    const { deployment, put } = await setUp();
    await put(queued('p1:0', Date.now()));
    const report = await collectStatus(deployment);
    expect(report).toMatchObject({ stranded: 1, strandedUnconfirmed: 0, strandedForSeconds: null });
    expect(renderStatus(report)).toContain(
      "\n  1 liquidation not terminal and no message moving it (from one look: SQS's queue counts are approximate, status --watch confirms it over 60 s): no dead letter holds it",
    );
  });
});

/** A watch that should not fail a refresh. */
const unexpected = (failed: FailedRefresh) => {
  throw new Error(`a refresh failed: ${failed.error}`);
};

// status47-watch-loop: the loop of `status --watch` (its timer, Ctrl-C) was driven by no test, only the reads it makes.
describe("status --watch: the loop (moto, real SDK; its clock and sleep the test's)", () => {
  it('refreshes every interval, counting only every STATUS_COUNT_EVERY_MS, until aborted', async () => {
    const { names, deployment, put, scans, workMessage } = await setUp();
    const t0 = Date.now();
    let now = t0;
    const stop = new AbortController();
    const written: StatusReport[] = [];
    const slept: number[] = [];
    const scansAtWrite: ReturnType<typeof counted>[] = [];
    const intervalMs = 60_000;
    await watchStatus({
      read: statusWatcher(deployment, undefined, withdrawalChecker()),
      write: (report) => {
        written.push(report);
        scansAtWrite.push(counted(scans, names));
      },
      writeFailure: unexpected,
      intervalMs,
      nowMs: () => now,
      sleep: async (ms) => {
        slept.push(ms);
        now += ms;
        // A liquidation started (and still moving: its message waits) between the first two refreshes.
        if (written.length === 1) {
          await put(queued('p1:0', t0));
          await workMessage();
        }
        // Ctrl-C once the refresh after the second count is written.
        if (written.length === 7) stop.abort();
      },
      signal: stop.signal,
    });
    // Refreshes at 0, 1, 2, 3, 4 min (the first count's), 5 (counted again) and 6 min: then aborted.
    expect(written.map((r) => r.at)).toEqual(
      [0, 1, 2, 3, 4, 5, 6].map((m) => new Date(t0 + m * 60_000).toISOString()),
    );
    expect(slept).toEqual(Array(7).fill(intervalMs));
    // The Scanned tables once per count, the markets on every refresh.
    expect(scansAtWrite.map((c) => c.liquidations)).toEqual([1, 1, 1, 1, 1, 2, 2]);
    expect(scansAtWrite.map((c) => c.positions)).toEqual([1, 1, 1, 1, 1, 2, 2]);
    expect(scansAtWrite.map((c) => c.markets)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(written.map((r) => r.counted.ageSeconds)).toEqual([0, 60, 120, 180, 240, 0, 60]);
    // The liquidation started after the first count is in the second.
    expect(written.map((r) => r.liquidations.total)).toEqual([0, 0, 0, 0, 0, 1, 1]);
  });

  it('ends on Ctrl-C during a read at once, not an interval later', async () => {
    const { deployment } = await setUp();
    const stop = new AbortController();
    const watcher = statusWatcher(deployment, undefined, withdrawalChecker());
    let reads = 0;
    await watchStatus({
      read: async (nowMs) => {
        reads += 1;
        const report = await watcher(nowMs);
        stop.abort();
        return report;
      },
      write: () => {},
      writeFailure: unexpected,
      // An hour (--interval 3600): the test would time out on a wait the abort does not end.
      intervalMs: 3_600_000,
      nowMs: Date.now,
      sleep: sleepUnlessAborted,
      signal: stop.signal,
    });
    expect(reads).toBe(1);
  });

  // ops47-watch-retry: the first read that failed (a throttle, an expired credential, a network blip) ended the
  // watch, when a crash makes the on-call need it most.
  it('writes a failed refresh with the age of the last figures, reads again at the next interval, and ends on a table not there', async () => {
    const { clients, names, deployment } = await setUp();
    const t0 = Date.now();
    let now = t0;
    let throttled = false;
    // Each refresh Scans the markets: throttled, as DynamoDB throttles, below the SDK's retries (its own were spent).
    clients.dynamo.middlewareStack.add(
      ((next: (args: { input: unknown }) => Promise<unknown>, context: { commandName?: string }) =>
        async (args: { input: { TableName?: string } }) => {
          if (
            throttled &&
            context.commandName === 'ScanCommand' &&
            args.input.TableName === names.tables.markets
          )
            throw Object.assign(new Error('Rate of requests exceeds the allowed throughput.\nmore'), {
              name: 'ThrottlingException',
              $metadata: { httpStatusCode: 400 },
            });
          return next(args);
        }) as never,
      { step: 'initialize', name: 'throttleMarkets' },
    );
    const written: StatusReport[] = [];
    const failures: FailedRefresh[] = [];
    const slept: number[] = [];
    const intervalMs = 60_000;
    const watching = watchStatus({
      read: statusWatcher(deployment, undefined, withdrawalChecker()),
      write: (report) => written.push(report),
      writeFailure: (failed) => failures.push(failed),
      intervalMs,
      nowMs: () => now,
      sleep: async (ms) => {
        slept.push(ms);
        now += ms;
        const refreshes = written.length + failures.length;
        // The second and third refreshes throttled; the fourth reads; the markets' table is gone for the fifth.
        throttled = refreshes === 1 || refreshes === 2;
        if (refreshes === 4)
          await clients.dynamo.send(new DeleteTableCommand({ TableName: names.tables.markets }));
      },
      signal: new AbortController().signal,
    });
    await expect(watching).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    expect(written.map((r) => r.at)).toEqual([t0, t0 + 180_000].map((ms) => new Date(ms).toISOString()));
    expect(failures).toEqual([
      {
        atMs: t0 + 60_000,
        error: 'ThrottlingException: Rate of requests exceeds the allowed throughput.',
        last: written[0],
        lastAgeMs: 60_000,
        inARow: 1,
        intervalMs,
      },
      {
        atMs: t0 + 120_000,
        error: 'ThrottlingException: Rate of requests exceeds the allowed throughput.',
        last: written[0],
        lastAgeMs: 120_000,
        inARow: 2,
        intervalMs,
      },
    ]);
    expect(failedRefreshLine(failures[1]!)).toBe(
      `backstop status: the refresh at ${new Date(t0 + 120_000).toISOString()} failed (2 in a row): ThrottlingException: Rate of requests exceeds the allowed throughput.; STALE: the figures shown were read at ${written[0]!.at}, 120 s ago; read again in 60 s (Ctrl-C ends the watch)`,
    );
    // One interval between refreshes, failed or not; none after the lasting error.
    expect(slept).toEqual(Array(4).fill(intervalMs));
  });

  it('reads again after a failed first refresh, with no figures yet to show', async () => {
    const { deployment } = await setUp();
    const stop = new AbortController();
    const watcher = statusWatcher(deployment, undefined, withdrawalChecker());
    const failures: FailedRefresh[] = [];
    const written: StatusReport[] = [];
    let reads = 0;
    await watchStatus({
      read: async (nowMs) => {
        reads += 1;
        // A network blip, as Node reports one (no AWS metadata: the request never got an answer).
        if (reads === 1) throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
        return watcher(nowMs);
      },
      write: (report) => {
        written.push(report);
        stop.abort();
      },
      writeFailure: (failed) => failures.push(failed),
      intervalMs: 2_000,
      nowMs: Date.now,
      sleep: async () => {},
      signal: stop.signal,
    });
    expect(failures).toHaveLength(1);
    expect(failures[0]).not.toHaveProperty('last');
    expect(failedRefreshLine(failures[0]!)).toMatch(
      /^backstop status: the refresh at \S+ failed: Error \(ECONNRESET\): read ECONNRESET; no figures yet; read again in 2 s/,
    );
    expect(written).toHaveLength(1);
  });
});

// Session 49: what a look takes for movement, and what it reads past.
describe('status --watch and replay --hold: the stranded look (moto, real SDK)', () => {
  // status49-auction-moved: a look compared the open liquidations' records only; an auction's steps move its own
  // record, its liquidation staying in AUCTION, so a step moving it while SQS's counts read 0 was no movement, and
  // the work was said stranded a minute after the first refresh that found it.
  it("starts the minute again when an auction steps, its liquidation's record the same", async () => {
    const { clients, names, deployment, put, adapters } = await setUp();
    const t0 = Date.now();
    await put({ ...queued('p1:0', t0), state: 'AUCTION', version: 2 });
    const { auctions } = adapters;
    const asleep = auctionRecord('p1:0:auction', { liquidationId: 'p1:0' });
    await auctions.create(asleep);
    const watch = statusWatcher(deployment, undefined, withdrawalChecker());
    expect(await watch(t0)).toMatchObject({ stranded: 0, strandedUnconfirmed: 1, strandedForSeconds: 0 });
    expect(await watch(t0 + 2_000)).toMatchObject({ strandedUnconfirmed: 1, strandedForSeconds: 2 });
    // Woken, it steps: its record moves, its liquidation's does not.
    await auctions.replace({ ...asleep, step: 5, version: 1 }, 0);
    // Before: 30 s, and stranded at 62 s.
    expect(await watch(t0 + 30_000)).toMatchObject({ strandedUnconfirmed: 1, strandedForSeconds: 0 });
    expect(await watch(t0 + 62_000)).toMatchObject({ stranded: 0, strandedForSeconds: 32 });
    // Not moved since: stranded a minute after it last moved.
    expect(await watch(t0 + 90_000)).toMatchObject({ stranded: 1, strandedForSeconds: 60 });
    // A hold's look reads the auction too, once work is stranded (a BatchGetItem of the auctions table).
    const batchGets = countCalls(clients, 'BatchGetItemCommand');
    const before = await collectLiquidationWork(deployment);
    expect(before.progress.get('p1:0')).toBe('AUCTION v2, auction RUNNING step 5 v1');
    expect(batchGets[names.tables.auctions]).toBe(1);
    await auctions.replace({ ...asleep, step: 6, version: 2 }, 1);
    const after = await collectLiquidationWork(deployment);
    expect(progressMoved(before.progress, after.progress)).toBe(true);
  });

  // status49-look-past-starting: a look reads STRANDED_LOOK_MAX records, the first page of each shard in turn; a tick
  // still starting (its market pending) with that many QUEUED liquidations in front filled it, none of them stranded,
  // and work stranded elsewhere was said 0 on every refresh between counts (and its run of refreshes ended each time).
  it("finds work stranded behind a pending tick's liquidations, not calling the tick's stranded", async () => {
    const { deployment, put, tickStarting } = await setUp();
    const t0 = Date.now();
    const watch = statusWatcher(deployment, undefined, withdrawalChecker(), atOnce);
    await watch(t0);
    await tickStarting(t0);
    // The tick's liquidations, STRANDED_LOOK_MAX of them in the first shard (their messages not sent yet).
    for (const id of idsInShard(0, STRANDED_LOOK_MAX, 'p')) await put(queued(id, t0));
    // Another tick's, nothing moving them: one in the same shard started after the tick, one in the last shard
    // started before it.
    const [after] = idsInShard(0, 1, 'later');
    const [before] = idsInShard(15, 1, 'earlier');
    await put({ ...queued(after!, t0 + 1), tickKey: 'ETH-USD#6' });
    await put({ ...queued(before!, t0 - 1), tickKey: 'ETH-USD#6' });
    const report = await watch(t0 + 2_000);
    // Before: stranded 0, the look reading the tick's 100 alone.
    expect(report).toMatchObject({ drained: true, stranded: 2, strandedAtLeast: true, settled: false });
    // The count's is exact: the tick's are not stranded.
    expect(await watch(t0 + STATUS_COUNT_EVERY_MS)).toMatchObject({ stranded: 2, strandedAtLeast: false });
  });

  // status49-tick-queue: locally the tick queue is a work queue, and a message in it made `stranded` 0 like any other:
  // a feed's ticks, or a hold's held ones, ended every run of refreshes, though a tick moves none of that work.
  it('judges stranded on the queues that move the work, not the local tick queue', async () => {
    const { clients, names, deployment, put, workMessage } = await setUp();
    const t0 = Date.now();
    await put({ ...queued('p1:0', t0), tickKey: 'ETH-USD#6' });
    const watch = statusWatcher(deployment, undefined, withdrawalChecker());
    expect(await watch(t0)).toMatchObject({ strandedUnconfirmed: 1, strandedForSeconds: 0 });
    // A feed's tick waits in the local tick queue.
    await clients.sqs.send(new SendMessageCommand({ QueueUrl: names.tickQueueUrl, MessageBody: '{}' }));
    const ticking = await watch(t0 + 30_000);
    expect(ticking.queues.ticks!.depth).toBe(1);
    // Before: stranded 0 and the run ended; drained and settled still count the tick (it may start work).
    expect(ticking).toMatchObject({
      drained: false,
      settled: false,
      strandedUnconfirmed: 1,
      strandedForSeconds: 30,
    });
    expect(await watch(t0 + 60_000)).toMatchObject({ stranded: 1, strandedForSeconds: 60 });
    // A count, and a hold's look, judge it so too.
    expect(await watch(t0 + STATUS_COUNT_EVERY_MS)).toMatchObject({ stranded: 1, drained: false });
    expect(await collectLiquidationWork(deployment)).toMatchObject({ stranded: 1 });
    // A message in the liquidations' queue still moves it.
    await workMessage();
    expect(await watch(t0 + STATUS_COUNT_EVERY_MS + 2_000)).toMatchObject({
      stranded: 0,
      strandedForSeconds: null,
    });
  });
});

// Session 49's review of the stranded look.
describe('status --watch and replay --hold: what a pending tick leaves out (moto, real SDK)', () => {
  // review49-status-next-slice: a pending tick's QUEUED liquidations were all left out as starting, its next slices too
  // (a slice after the first carries its first slice's tickKey). A tick re-sends none of those (resendStarted: they are
  // their previous slice's to send), so one whose message was lost was never stranded while the tick stayed pending.
  it("calls a pending tick's next slice with no message stranded, its own QUEUED ones not", async () => {
    const { deployment, put, tickStarting } = await setUp();
    const t0 = Date.now();
    await tickStarting(t0);
    // Tick 7's own, still starting; and the next slice of one of them it settled, listed under tick 7 too.
    await put(queued('p1:0', t0));
    await put({
      ...queued('p2:1', t0 + 5_000),
      history: [{ atMs: t0 + 5_000, state: 'QUEUED', note: 'next slice of p2:0' }],
    });
    const watch = statusWatcher(deployment, undefined, withdrawalChecker(), atOnce);
    // Before: 0 at the count and at the look between counts, and on the hold's look.
    expect(await watch(t0 + 6_000)).toMatchObject({ stranded: 1 });
    expect(await watch(t0 + 8_000)).toMatchObject({ stranded: 1, strandedAtLeast: false });
    expect(await collectLiquidationWork(deployment)).toMatchObject({ stranded: 1 });
  });
});

// Session 50: what the look reads last.
describe('status --watch: work sharing a pending tick stamp (moto, real SDK)', () => {
  // ops50-look-stamp-shared: a look read every liquidation started at a pending tick's stamp last, another market's
  // (its tick of the same stamp) too: behind the pending tick's STRANDED_LOOK_MAX QUEUED ones, one of them stranded was
  // never read, said 0 on every refresh between counts.
  it("reads another market's work started at a pending tick's stamp before the tick's own", async () => {
    const { deployment, put, tickStarting } = await setUp();
    const t0 = Date.now();
    await tickStarting(t0);
    // Tick 7's QUEUED ones, STRANDED_LOOK_MAX of them in the first shard; then BTC-USD's tick of the same stamp, done,
    // left one nothing moves, listed after them (moto lists one stamp's keys by id).
    for (const id of idsInShard(0, STRANDED_LOOK_MAX, 'p')) await put(queued(id, t0));
    const [btc] = idsInShard(0, 1, 'zbtc');
    await put({ ...queued(btc!, t0), symbol: 'BTC-USD', tickKey: 'BTC-USD#3' });
    const watch = statusWatcher(deployment, undefined, withdrawalChecker(), atOnce);
    // The count's is exact.
    expect(await watch(t0 + 1_000)).toMatchObject({ stranded: 1, strandedAtLeast: false });
    // Before: 0, the look reading tick 7's 100 alone.
    expect(await watch(t0 + 2_000)).toMatchObject({ stranded: 1, strandedAtLeast: true });
  });

  // review50-ops-probe-bounded: the permission probe (ops50-watch-permission) that failed otherwise than refused failed
  // the whole refresh, and was made again at every refresh: a throttled auctions table showed no report at all.
  it('goes on without the permission probe when it fails otherwise than refused, tried a bounded number of times', async () => {
    const { clients, names, deployment } = await setUp();
    let probes = 0;
    const throttle =
      (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) =>
      async (args: { input: { RequestItems?: Record<string, unknown> } }) => {
        if (
          context.commandName === 'BatchGetItemCommand' &&
          names.tables.auctions in (args.input.RequestItems ?? {})
        ) {
          probes += 1;
          throw Object.assign(new Error('Rate of requests exceeds the allowed throughput.'), {
            name: 'ThrottlingException',
            $metadata: { httpStatusCode: 400 },
          });
        }
        return next(args);
      };
    clients.dynamo.middlewareStack.add(throttle as never, {
      step: 'initialize',
      name: 'throttleAuctionsReads',
    });
    const watch = statusWatcher(deployment, undefined, withdrawalChecker());
    const t0 = Date.now();
    // Before: the first refresh failed on the probe's throttle, as every one after it.
    for (let i = 0; i < LOOK_PROBE_TRIES + 2; i++)
      expect(await watch(t0 + i * 2_000)).toMatchObject({ stranded: 0, auctions: { open: 0 } });
    expect(probes).toBe(LOOK_PROBE_TRIES);
  });

  // review50-ops-count-waits-live: the count's Scan waited for the live reads (the markets' pending ticks, which it
  // needs from its first page on: ops50-look-stamp-shared) before asking for its first page, where it ran beside them.
  it("asks for the count's first page of liquidations beside the live reads, not after them", async () => {
    const { clients, names, deployment } = await setUp();
    const order: string[] = [];
    const record =
      (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) =>
      async (args: { input: { TableName?: string } }) => {
        const scan = context.commandName === 'ScanCommand' ? args.input.TableName : undefined;
        if (scan === names.tables.liquidations) order.push('liquidations asked');
        const out = await next(args);
        if (scan === names.tables.markets) order.push('markets answered');
        return out;
      };
    clients.dynamo.middlewareStack.add(record as never, { step: 'initialize', name: 'recordOrder' });
    await collectStatus(deployment, Date.now());
    // Before: the markets answered (and every live read) first.
    expect(order).toEqual(['liquidations asked', 'markets answered']);
  });
});
