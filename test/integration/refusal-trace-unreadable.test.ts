import { type AttributeValue, GetItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import type { AwsClients } from '../../shared/adapters/aws/index.ts';
import { refusalAttr } from '../../shared/adapters/aws/markets.ts';
import { DEFAULT_RISK_CONFIG } from '../../shared/domain/config.ts';
import { parsePrice } from '../../shared/domain/units.ts';
import { METRICS } from '../../shared/metrics.ts';
import type { RefusalTrace } from '../../shared/ports/index.ts';
import { handleTick, type MarginCheckDeps } from '../../shared/services/margin-check.ts';
import { motoStages } from '../support/moto.ts';
import { RecordingTelemetry } from '../support/pipeline.ts';

/**
 * feed48c-trace-unreadable: a refusal trace stored in a shape this version cannot read (a later version's, an edit by
 * hand) was read as absent, so every refusal of its kind wrote a note whose condition failed on it (a write unit each,
 * past the notes' rate limit, which counts the notes stored), and no accepted tick's expiry removed it. It is now read
 * as unreadable, kept opaque: the kind's next note replaces it only while it is still exactly as read, once, and the
 * next accepted tick removes it so.
 */

const moto = motoStages('unread');

type Middleware = Parameters<AwsClients['dynamo']['middlewareStack']['add']>[0];

/** Counts the UpdateItems on the markets table whose expression is `expression`, whatever their outcome. */
function countUpdates(clients: AwsClients, name: string, expression: (e: string) => boolean) {
  const seen = { count: 0 };
  const middleware = ((
    next: (args: { input: unknown }) => Promise<unknown>,
    context: { commandName?: string },
  ) =>
    async (args: { input: unknown }) => {
      const input = args.input as { UpdateExpression?: string };
      if (context.commandName === 'UpdateItemCommand' && expression(input.UpdateExpression ?? ''))
        seen.count += 1;
      return next(args);
    }) as unknown as Middleware;
  clients.dynamo.middlewareStack.add(middleware, { step: 'deserialize', name });
  return seen;
}

/** A trace of a shape this version does not read: its number a string. */
const MALFORMED: AttributeValue = {
  M: {
    seq: { S: 'twelve' },
    stamp: { N: '1000' },
    at: { N: '2000' },
    count: { N: '1' },
    since: { N: '2000' },
  },
};

async function setUp() {
  const { clients, names, adapters } = await moto.stage();
  const telemetry = new RecordingTelemetry();
  const deps: MarginCheckDeps = {
    ...adapters,
    config: DEFAULT_RISK_CONFIG,
    telemetry,
    maxPositionsPerInvocation: 500,
  };
  const base = Date.now();
  const tick = (sequence: number, stampMs: number, nowMs: number) =>
    handleTick(
      { symbol: 'ETH-USD', markPrice: parsePrice('200'), timestampMs: stampMs, sequence, source: 'test' },
      deps,
      nowMs,
    );
  // A market's first print waits for a second that agrees.
  await tick(1, base, base);
  expect(await tick(2, base + 1, base + 1)).toMatchObject({ status: 'accepted' });
  const store = async (reason: Parameters<typeof refusalAttr>[0], value: AttributeValue) =>
    clients.dynamo.send(
      new UpdateItemCommand({
        TableName: names.tables.markets,
        Key: { symbol: { S: 'ETH-USD' } },
        UpdateExpression: 'SET #t = :v',
        ExpressionAttributeNames: { '#t': refusalAttr(reason) },
        ExpressionAttributeValues: { ':v': value },
      }),
    );
  const stored = async (reason: Parameters<typeof refusalAttr>[0]) =>
    (
      await clients.dynamo.send(
        new GetItemCommand({ TableName: names.tables.markets, Key: { symbol: { S: 'ETH-USD' } } }),
      )
    ).Item?.[refusalAttr(reason)];
  return { clients, adapters, telemetry, tick, base, store, stored };
}

describe('a refusal trace stored in a shape this version cannot read (moto, real adapters)', () => {
  it('is replaced by one write, not one a refusal, and the next accepted tick removes one again', async () => {
    const { clients, adapters, telemetry, tick, base, store, stored } = await setUp();
    await store('tick/too-old', MALFORMED);
    const read = await adapters.markets.get('ETH-USD');
    expect(read?.refusals).toBeUndefined();
    expect(read?.unreadableRefusals?.['tick/too-old']).toEqual({
      unreadable: expect.any(String),
      stored: MALFORMED,
    });
    const notes = countUpdates(clients, 'notes', (e) => e === 'SET #trace = :trace');
    // Five copies of one print, reaching margin-check 61 s after its stamp: too old (maxTickAgeSeconds 60).
    const stamp = base + 2;
    for (let i = 0; i < 5; i++)
      expect(await tick(3, stamp, stamp + 61_000 + i)).toMatchObject({ reason: 'tick/too-old' });
    // Before: five notes, each failing on the trace read as absent, and the trace stayed.
    expect(notes.count).toBe(1);
    expect((await adapters.markets.get('ETH-USD'))?.refusals?.['tick/too-old']).toMatchObject({
      sequence: 3,
      timestampMs: stamp,
      count: 1,
    });
    expect((await adapters.markets.get('ETH-USD'))?.unreadableRefusals).toBeUndefined();
    expect(telemetry.total(METRICS.RefusalTraceFailures.name)).toBe(0);

    // Another kind's, stored so again: the next accepted tick removes it at once (its age does not read), and leaves
    // the readable one noted within the hour.
    await store('tick/duplicate', { S: 'a later shape' });
    const drops = countUpdates(clients, 'drops', (e) => e.startsWith('REMOVE #t0'));
    expect(await tick(4, stamp + 61_000, stamp + 61_010)).toMatchObject({ status: 'accepted' });
    expect(drops.count).toBe(1);
    // Before: it stayed for good.
    expect(await stored('tick/duplicate')).toBeUndefined();
    const after = await adapters.markets.get('ETH-USD');
    expect(after?.unreadableRefusals).toBeUndefined();
    expect(after?.refusals?.['tick/too-old']?.sequence).toBe(3);
    expect(telemetry.total(METRICS.RefusalTraceFailures.name)).toBe(0);
    clients.destroy();
  });

  it('is replaced or removed only while still as read: a readable note since stays', async () => {
    const { clients, adapters, store, stored } = await setUp();
    await store('tick/too-old', MALFORMED);
    const read = (await adapters.markets.get('ETH-USD'))!;
    const unreadable = read.unreadableRefusals!['tick/too-old']!;
    // Another invocation's note lands between the read and this one's write, numbered higher.
    const since: AttributeValue = {
      M: {
        seq: { N: '9' },
        stamp: { N: '5000' },
        at: { N: '6000' },
        count: { N: '1' },
        since: { N: '6000' },
        n: { N: '1' },
      },
    };
    await store('tick/too-old', since);
    const trace: RefusalTrace = {
      sequence: 3,
      timestampMs: 4000,
      atMs: 7000,
      count: 1,
      sinceMs: 7000,
      notesInSecond: 1,
    };
    await adapters.markets.noteRefusal('ETH-USD', 'tick/too-old', trace, unreadable);
    expect(await stored('tick/too-old')).toEqual(since);
    await adapters.markets.dropRefusals('ETH-USD', [{ reason: 'tick/too-old', trace: unreadable }]);
    expect(await stored('tick/too-old')).toEqual(since);
    // Another unreadable value since: neither replaced nor removed either.
    await store('tick/too-old', { S: 'another' });
    await adapters.markets.noteRefusal('ETH-USD', 'tick/too-old', trace, unreadable);
    await adapters.markets.dropRefusals('ETH-USD', [{ reason: 'tick/too-old', trace: unreadable }]);
    expect(await stored('tick/too-old')).toEqual({ S: 'another' });
    // Nor after a rebase since it was judged (resumedAfterMs), though still as read.
    await store('tick/too-old', MALFORMED);
    const rebased = await adapters.markets.rebaseSequence('ETH-USD', 1, read, Date.now());
    expect(rebased.unreadableRefusals).toBeUndefined();
    await store('tick/too-old', MALFORMED);
    await adapters.markets.noteRefusal('ETH-USD', 'tick/too-old', trace, unreadable);
    expect(await stored('tick/too-old')).toEqual(MALFORMED);
    // As read and under the market's rebase: replaced.
    const resumed = { ...trace, resumedAfterMs: rebased.resumedAfterMs! };
    await adapters.markets.noteRefusal('ETH-USD', 'tick/too-old', resumed, unreadable);
    expect((await adapters.markets.get('ETH-USD'))?.refusals?.['tick/too-old']).toEqual(resumed);
    clients.destroy();
  });

  // more48b-trace-unknown-kind: a trace of a kind this version does not know (a later version's new reason, met after a
  // rollback) was read as nothing at all: nothing noted over it and no expiry removed it, so it kept a busy market's
  // item larger for good. It is now kept opaque, and the next accepted tick removes it, only while still as read: at
  // once when it does not say when it was noted (one that does is kept as a known kind's: feed49-unknown-kind-kept).
  it('of a kind this version does not know, is removed by the next accepted tick, only while still as read', async () => {
    const { clients, adapters, tick, base, store, stored } = await setUp();
    const later: AttributeValue = {
      M: {
        seq: { N: '7' },
        stamp: { N: '1000' },
        noted: { N: String(base) },
        count: { N: '1' },
        since: { N: '1' },
      },
    };
    await store('tick/later-reason', later);
    const read = (await adapters.markets.get('ETH-USD'))!;
    expect(read.refusals).toBeUndefined();
    expect(read.unreadableRefusals).toBeUndefined();
    const unknown = read.unknownRefusals!['tick/later-reason']!;
    expect(unknown).toEqual({ unreadable: expect.any(String), stored: later });
    // Changed since it was read (the later version, still running, noted again): left.
    const since: AttributeValue = { M: { ...later.M!, seq: { N: '8' } } };
    await store('tick/later-reason', since);
    await adapters.markets.dropRefusals('ETH-USD', [{ reason: 'tick/later-reason', trace: unknown }]);
    expect(await stored('tick/later-reason')).toEqual(since);
    // The next accepted tick reads it and removes it, within the hour a trace saying its age would be kept.
    const drops = countUpdates(clients, 'drops', (e) => e.startsWith('REMOVE #t0'));
    expect(await tick(3, base + 2, base + 10)).toMatchObject({ status: 'accepted' });
    expect(drops.count).toBe(1);
    // Before: never read, so never removed.
    expect(await stored('tick/later-reason')).toBeUndefined();
    expect((await adapters.markets.get('ETH-USD'))?.unknownRefusals).toBeUndefined();
    clients.destroy();
  });
});
