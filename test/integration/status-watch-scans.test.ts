import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { renderStatus } from '../../cli/ops/status.ts';
import { type AwsClients, createAwsAdapters, type ResourceNames } from '../../shared/adapters/aws/index.ts';
import { liquidationItem } from '../../shared/adapters/aws/liquidations.ts';
import { systemClock } from '../../shared/adapters/embedded/clock.ts';
import { parsePrice } from '../../shared/domain/units.ts';
import { collectLiquidationWork, STATUS_COUNT_EVERY_MS, statusWatcher } from '../../shared/local/status.ts';
import type { LiquidationRecord } from '../../shared/ports/index.ts';
import { withdrawalChecker } from '../../shared/services/admin.ts';
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

async function setUp() {
  const { clients, names } = await moto.stage();
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
  return { clients, names, deployment, put, scans: countScans(clients) };
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
    const { clients, names, deployment, put, scans } = await setUp();
    const t0 = Date.now();
    await put(queued('p1:0', t0));
    const watch = statusWatcher(deployment, undefined, withdrawalChecker());
    const first = await watch(t0);
    expect(first.counted).toEqual({ at: first.at, ageSeconds: 0 });
    expect(first.liquidations.nonTerminal).toBe(1);
    // One count: positions and auctions one Scan each, liquidations two (the totals, the ADL rounds owed).
    expect(counted(scans, names)).toEqual({ positions: 1, liquidations: 2, auctions: 1, markets: 1 });

    // Refreshes every 2 s within the five minutes: no Scan of the counted tables; the queues read live.
    await put(queued('p2:0', t0));
    await clients.sqs.send(
      new SendMessageCommand({ QueueUrl: names.queues.liquidations.url, MessageBody: '{}' }),
    );
    const lastBefore = STATUS_COUNT_EVERY_MS - 2_000;
    await watch(t0 + 2_000);
    await watch(t0 + 4_000);
    const last = await watch(t0 + lastBefore);
    // Before: a count on each of the three refreshes, 4 in all.
    expect(counted(scans, names)).toEqual({ positions: 1, liquidations: 2, auctions: 1, markets: 4 });
    expect(last.liquidations.nonTerminal).toBe(1);
    expect(last.counted).toEqual({ at: first.at, ageSeconds: lastBefore / 1000 });
    expect(last.queues.liquidations!.depth).toBe(1);
    expect(last.drained).toBe(false);

    // Five minutes after the count: counted again, the new liquidation in it.
    const recount = await watch(t0 + STATUS_COUNT_EVERY_MS);
    expect(counted(scans, names)).toEqual({ positions: 2, liquidations: 4, auctions: 2, markets: 5 });
    expect(recount.liquidations.nonTerminal).toBe(2);
    expect(recount.counted).toEqual({ at: recount.at, ageSeconds: 0 });
    // A clock set back counts again rather than showing a count from the future.
    await watch(t0 + STATUS_COUNT_EVERY_MS - 1_000);
    expect(counted(scans, names).positions).toBe(3);
    clients.destroy();
  });

  // review46-watch-stale-judgements: `stranded` and `settled` are judged from the counts and shown with them, but the
  // queues and markets beside them are live; what those say now clears a judgement they contradict (never raises one).
  it('clears a counted stranded once a message moves the work', async () => {
    const { clients, names, deployment, put, scans } = await setUp();
    const t0 = Date.now();
    await put(queued('p1:0', t0));
    const watch = statusWatcher(deployment, undefined, withdrawalChecker());
    expect(await watch(t0)).toMatchObject({ drained: true, stranded: 1, settled: false });
    // The resend the stranded line advises: a message moves it now.
    await clients.sqs.send(
      new SendMessageCommand({ QueueUrl: names.queues.liquidations.url, MessageBody: '{}' }),
    );
    const resent = await watch(t0 + 2_000);
    expect(counted(scans, names).liquidations).toBe(2);
    // Before: stranded 1 beside a queue holding its message, the line advising the resend again for 5 minutes.
    expect(resent).toMatchObject({ drained: false, stranded: 0 });
    expect(renderStatus(resent)).not.toContain('no message moving them');
    clients.destroy();
  });

  it('is not settled on a count taken before a tick queued work, or while a tick is starting it', async () => {
    const { clients, names, deployment, put, scans } = await setUp();
    const t0 = Date.now();
    const watch = statusWatcher(deployment, undefined, withdrawalChecker());
    expect(await watch(t0)).toMatchObject({ drained: true, settled: true });
    // A tick crosses a position: margin-check marks its market pending, then writes and queues the liquidation.
    const { markets } = createAwsAdapters({ clients, names, clock: systemClock });
    await markets.acceptTick(
      'ETH-USD',
      { sequence: 7, markPrice: parsePrice('1500'), timestampMs: t0 },
      undefined,
      true,
    );
    const starting = await watch(t0 + 2_000);
    expect(starting.markets['ETH-USD']!.pendingSequence).toBe(7);
    // Before: settled, counted before the tick.
    expect(starting.settled).toBe(false);
    await put(queued('p1:0', t0));
    await clients.sqs.send(
      new SendMessageCommand({ QueueUrl: names.queues.liquidations.url, MessageBody: '{}' }),
    );
    // Its work started, the next tick clears the pending mark.
    await markets.acceptTick(
      'ETH-USD',
      { sequence: 8, markPrice: parsePrice('1500'), timestampMs: t0 + 1 },
      7,
      false,
    );
    const queuedWork = await watch(t0 + 4_000);
    expect(counted(scans, names).liquidations).toBe(2);
    expect(queuedWork.markets['ETH-USD']!.pendingSequence).toBeNull();
    // Before: settled beside the queued message, the queues line calling it a no-op.
    expect(queuedWork).toMatchObject({ drained: false, settled: false });
    expect(renderStatus(queuedWork)).not.toContain('(settled:');
    clients.destroy();
  });

  it("replay --hold's look scans the liquidations only, and judges the work as status does", async () => {
    const { clients, names, deployment, put, scans } = await setUp();
    await put(queued('p1:0', Date.now()));
    const work = await collectLiquidationWork(deployment);
    // Before: collectStatus, the positions (a whole book) and the auctions scanned on every held tick too.
    expect(counted(scans, names)).toEqual({ positions: 0, liquidations: 2, auctions: 0, markets: 1 });
    expect(work).toMatchObject({ liquidations: { total: 1, nonTerminal: 1 }, stranded: 1, dlqMessages: 0 });
    clients.destroy();
  });
});
