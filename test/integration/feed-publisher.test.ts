import type {
  EventBridgeClient,
  PutEventsCommandInput,
  PutEventsCommandOutput,
  PutEventsRequestEntry,
} from '@aws-sdk/client-eventbridge';
import { describe, expect, it } from 'vitest';
import { createAwsQueueTransports } from '../../shared/adapters/aws/index.ts';
import { DEFAULT_RISK_CONFIG } from '../../shared/domain/config.ts';
import { parseBase, parsePrice, parseQuote } from '../../shared/domain/units.ts';
import {
  DEFAULT_RETRY,
  publishTicks,
  putEntries,
  retryDelayMs,
  type TickFields,
  TickInputError,
  TickPublishError,
} from '../../shared/feed/publisher.ts';
import { METRICS } from '../../shared/metrics.ts';
import { parseLiquidationMessage } from '../../shared/schemas/messages.ts';
import { parseTickDetail } from '../../shared/schemas/tick.ts';
import {
  handleTick,
  type MarginCheckDeps,
  type TickOutcome,
  withLiquidationPrice,
} from '../../shared/services/margin-check.ts';
import { TICK_BUS } from '../../shared/topology.ts';
import { motoStages } from '../support/moto.ts';
import { RecordingTelemetry } from '../support/pipeline.ts';

/**
 * The feed's publisher (shared/feed/publisher.ts, docs/FEED.md) with the real AWS SDK against moto's EventBridge: the
 * stage's bus and the rule that delivers its ticks to an SQS queue (what margin-check reads locally). PutEvents'
 * partial failures are made by an SDK middleware, which answers chosen entries with an error code, either without
 * sending them (EventBridge did not take them) or after sending them (it did, and the answer says otherwise).
 */

const moto = motoStages('feed');

/** What a middleware makes of an entry: refused with `code`, and put anyway when `put` (a lost answer). */
interface Fault {
  readonly code: string;
  readonly put?: boolean;
}

const symbolAndSequence = (entry: PutEventsRequestEntry): string => {
  const detail = JSON.parse(entry.Detail ?? '{}') as { symbol: string; sequence: number };
  return `${detail.symbol} ${detail.sequence}`;
};

/**
 * Answers PutEvents' entries as `fault` says (call: 1 for the first PutEvents, ...; key: "ETH-USD 7"), the others as
 * the bus does. Returns each call's entries as sent by the publisher.
 */
function faultyBus(
  events: EventBridgeClient,
  fault: (call: number, key: string) => Fault | undefined,
): PutEventsRequestEntry[][] {
  const calls: PutEventsRequestEntry[][] = [];
  type Args = { input: PutEventsCommandInput };
  type Result = { output: PutEventsCommandOutput; response: unknown };
  const middleware =
    (next: (args: Args) => Promise<Result>, context: { commandName?: string }) =>
    async (args: Args): Promise<Result> => {
      if (context.commandName !== 'PutEventsCommand') return next(args);
      const entries = args.input.Entries ?? [];
      const call = calls.push(entries.map((e) => ({ ...e })));
      const faults = entries.map((e) => fault(call, symbolAndSequence(e)));
      const sent = entries.filter((_, i) => faults[i] === undefined || faults[i]?.put);
      const result: Result =
        sent.length > 0
          ? await next({ ...args, input: { ...args.input, Entries: sent } })
          : { output: { $metadata: {}, FailedEntryCount: 0, Entries: [] }, response: {} };
      const answers = [...(result.output.Entries ?? [])];
      const merged = entries.map((_, i) => {
        const f = faults[i];
        const answer = f === undefined || f.put ? answers.shift() : undefined;
        return f ? { ErrorCode: f.code, ErrorMessage: `injected ${f.code}` } : answer!;
      });
      return {
        ...result,
        output: {
          ...result.output,
          Entries: merged,
          FailedEntryCount: merged.filter((m) => m.ErrorCode).length,
        },
      };
    };
  events.middlewareStack.add(middleware as never, { step: 'initialize', name: 'faultyBus' });
  return calls;
}

interface Arrived {
  readonly eventId: string;
  readonly detail: unknown;
}

/** Every event the bus's rule delivered to the stage's tick queue (moto queues them before PutEvents returns). */
async function arrivals(stage: Awaited<ReturnType<typeof moto.stage>>): Promise<Arrived[]> {
  const { tickQueue } = createAwsQueueTransports(stage.clients, stage.names);
  const { visible, inFlight } = await tickQueue.depth();
  expect(inFlight).toBe(0);
  const taken: Arrived[] = [];
  while (taken.length < visible) {
    const messages = await tickQueue.receive(10, 600);
    expect(messages.length).toBeGreaterThan(0);
    for (const m of messages) {
      const event = JSON.parse(m.body) as {
        id: string;
        source: string;
        'detail-type': string;
        detail: unknown;
      };
      expect(event).toMatchObject({ source: TICK_BUS.source, 'detail-type': TICK_BUS.detailType });
      taken.push({ eventId: event.id, detail: event.detail });
      await tickQueue.delete(m.receiptHandle);
    }
  }
  return taken;
}

const keyOf = (detail: unknown): string => {
  const { symbol, sequence } = detail as { symbol: string; sequence: number };
  return `${symbol} ${sequence}`;
};

/** The waits asked of the publisher, recorded, never waited; jitter fixed at its top. */
const recordedWaits = () => {
  const waits: number[] = [];
  return { waits, options: { sleep: async (ms: number) => void waits.push(ms), random: () => 0.999999 } };
};

const tickOf = (symbol: string, sequence: number, markPrice = '1520.12345678'): TickFields => ({
  symbol,
  markPrice,
  timestampMs: Date.now(),
  sequence,
  source: 'exchange-a',
});

/** n markets' ticks, one each (a feed's second's worth). */
const markets = (n: number, sequence: number) =>
  Array.from({ length: n }, (_, i) => tickOf(`M${i}-USD`, sequence));

describe('the feed publisher on moto (real SDK, EventBridge to SQS)', () => {
  it('puts each tick once, 10 entries a call, as margin-check parses it (exact decimal prices)', async () => {
    const stage = await moto.stage();
    const calls = faultyBus(stage.clients.events, () => undefined);
    const ticks = markets(12, 7);
    const ids = await publishTicks(stage.clients.events, stage.names.busName, ticks);
    expect(calls.map((c) => c.length)).toEqual([10, 2]);
    expect(ids).toHaveLength(12);
    const arrived = await arrivals(stage);
    expect(arrived.map((a) => a.eventId).sort()).toEqual([...ids].sort());
    for (const { detail } of arrived) {
      const parsed = parseTickDetail(detail);
      expect(parsed).toMatchObject({
        ok: true,
        tick: { markPrice: parsePrice('1520.12345678'), sequence: 7, source: 'exchange-a' },
      });
    }
    stage.clients.destroy();
  });

  it('sends again exactly the entries the bus failed (retryable codes), unchanged, after a backoff', async () => {
    const stage = await moto.stage();
    const failing: Record<string, string> = {
      'M2-USD 7': 'ThrottlingException',
      'M5-USD 7': 'InternalFailure',
      'M9-USD 7': 'ThrottlingException',
    };
    const calls = faultyBus(stage.clients.events, (call, key) =>
      call === 1 && failing[key] ? { code: failing[key] } : undefined,
    );
    const { waits, options } = recordedWaits();
    const ids = await publishTicks(stage.clients.events, stage.names.busName, markets(10, 7), options);
    expect(ids).toHaveLength(10);
    // The second call carries the three failed entries and nothing else, byte for byte as first sent.
    expect(calls).toHaveLength(2);
    expect(calls[1]).toEqual(calls[0]!.filter((e) => failing[symbolAndSequence(e)]));
    expect(waits).toEqual([retryDelayMs(1, DEFAULT_RETRY, () => 0.999999)]);
    expect(waits[0]).toBeLessThanOrEqual(DEFAULT_RETRY.firstDelayMs);
    // Each tick on the bus once, under its own sequence.
    const arrived = await arrivals(stage);
    expect(arrived.map((a) => keyOf(a.detail)).sort()).toEqual(
      markets(10, 7)
        .map((t) => `${t.symbol} 7`)
        .sort(),
    );
    stage.clients.destroy();
  });

  it('names the ticks that keep failing, after their attempts, the others put; refused ones are not sent again', async () => {
    const stage = await moto.stage();
    const calls = faultyBus(stage.clients.events, (_call, key) =>
      key === 'M1-USD 7'
        ? { code: 'ThrottlingException' }
        : key === 'M3-USD 7'
          ? { code: 'AccessDeniedException' }
          : undefined,
    );
    const { waits, options } = recordedWaits();
    const error = await publishTicks(stage.clients.events, stage.names.busName, markets(4, 7), options).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TickPublishError);
    const failure = error as TickPublishError;
    expect(failure.refused).toEqual([
      expect.objectContaining({
        symbol: 'M1-USD',
        sequence: 7,
        code: 'ThrottlingException',
        attempts: DEFAULT_RETRY.attempts,
        retryable: true,
        scope: 'entry',
      }),
      expect.objectContaining({
        symbol: 'M3-USD',
        sequence: 7,
        code: 'AccessDeniedException',
        attempts: 1,
        retryable: false,
        scope: 'entry',
      }),
    ]);
    expect(failure.unknown).toEqual([]);
    expect(failure.unsent).toEqual([]);
    expect(failure.message).toMatch(
      /^tick\/not-published: of 4 ticks 2 put; 2 refused by EventBridge, not on the bus: M1-USD 7: ThrottlingException \(injected ThrottlingException\), still failing after 5 attempts; M3-USD 7: AccessDeniedException .*refused$/,
    );
    expect(failure.outcome.accepted).toBe(2);
    // The throttled one alone went again, 4 times, on a doubling backoff capped at maxDelayMs.
    expect(calls.map((c) => c.map(symbolAndSequence))).toEqual([
      ['M0-USD 7', 'M1-USD 7', 'M2-USD 7', 'M3-USD 7'],
      ['M1-USD 7'],
      ['M1-USD 7'],
      ['M1-USD 7'],
      ['M1-USD 7'],
    ]);
    expect(waits).toEqual([100, 200, 400, 800]);
    expect((await arrivals(stage)).map((a) => keyOf(a.detail)).sort()).toEqual(['M0-USD 7', 'M2-USD 7']);
    stage.clients.destroy();
  });

  it('refuses a malformed tick, or two of one market in a call, before sending anything', async () => {
    const stage = await moto.stage();
    const calls = faultyBus(stage.clients.events, () => undefined);
    const publish = (ticks: TickFields[]) => publishTicks(stage.clients.events, stage.names.busName, ticks);
    await expect(publish([tickOf('ETH-USD', 1), tickOf('BTC-USD', 1, '1.5e3')])).rejects.toThrow(
      new TickInputError(
        'tick 1 (BTC-USD 1): tick/malformed: markPrice: exponent notation is not supported ("1.5e3")',
      ),
    );
    await expect(publish([tickOf('ETH-USD', 1, '1520.123456789')])).rejects.toThrow(/has 9 decimals/);
    await expect(publish([tickOf('ETH-USD', 1), tickOf('ETH-USD', 2)])).rejects.toThrow(
      /a second tick of ETH-USD in one call/,
    );
    expect(calls).toEqual([]);
    stage.clients.destroy();
  });

  it('a tick put twice (its answer lost, then retried) is taken once by margin-check: the second is a duplicate', async () => {
    const stage = await moto.stage();
    const telemetry = new RecordingTelemetry();
    const deps: MarginCheckDeps = {
      ...stage.adapters,
      config: DEFAULT_RISK_CONFIG,
      telemetry,
      maxPositionsPerInvocation: 500,
    };
    // margin-check as the function runs it on each event the rule delivered, in the order they came.
    const handleArrivals = async (): Promise<TickOutcome[]> => {
      const outcomes: TickOutcome[] = [];
      for (const { detail } of await arrivals(stage)) {
        const parsed = parseTickDetail(detail);
        if (!parsed.ok) throw new Error(parsed.reason);
        outcomes.push(await handleTick(parsed.tick, deps, Date.now()));
      }
      return outcomes;
    };
    // The bus takes ETH-USD 3 on the first call and answers InternalFailure: the publisher sends it again.
    const calls = faultyBus(stage.clients.events, (call, key) =>
      call === 3 && key === 'ETH-USD 3' ? { code: 'InternalFailure', put: true } : undefined,
    );
    const publish = (sequence: number, price: string) =>
      publishTicks(stage.clients.events, stage.names.busName, [tickOf('ETH-USD', sequence, price)], {
        sleep: async () => {},
      });
    // A market's first print waits for a second that agrees.
    await publish(1, '200');
    await publish(2, '200');
    expect((await handleArrivals()).map((o) => o.status)).toEqual(['rejected', 'accepted']);
    // A long of 10 ETH from 200 with 200 USD: 184 crosses it.
    await stage.adapters.positions.create(
      withLiquidationPrice(
        {
          id: 'p1',
          traderId: 't1',
          symbol: 'ETH-USD',
          side: 'LONG',
          size: parseBase('10'),
          entryPrice: parsePrice('200'),
          collateral: parseQuote('200'),
          state: 'OPEN',
          version: 0,
        },
        DEFAULT_RISK_CONFIG,
      ),
    );
    await publish(3, '184');
    expect(calls.map((c) => c.map(symbolAndSequence))).toEqual([
      ['ETH-USD 1'],
      ['ETH-USD 2'],
      ['ETH-USD 3'],
      ['ETH-USD 3'],
    ]);
    // Both on the bus, two events of one tick, byte for byte the same detail.
    const outcomes = await handleArrivals();
    expect(outcomes).toEqual([
      { status: 'accepted', checked: 1, enqueued: 1, needsContinuation: false },
      expect.objectContaining({ status: 'rejected', reason: 'tick/duplicate' }),
    ]);
    // One liquidation started, once; the duplicate only sent its message again, which the consumer takes once per
    // liquidation id (test/integration/pipeline.test.ts, "refuses a stale tick and a duplicate tick").
    const started = await stage.adapters.liquidations.listByTick('ETH-USD#3');
    expect(started.map((l) => l.id)).toEqual(['p1:0']);
    const { queues } = createAwsQueueTransports(stage.clients, stage.names);
    const messages = await queues.liquidations.receive(10, 600);
    expect(new Set(messages.map((m) => parseLiquidationMessage(m.body).liquidationId))).toEqual(
      new Set(['p1:0']),
    );
    expect(telemetry.total(METRICS.TicksAccepted.name)).toBe(2);
    expect(telemetry.counts.get(`${METRICS.TicksRejected.name}:tick/duplicate`)).toBe(1);
    expect((await stage.adapters.markets.get('ETH-USD'))?.lastTick?.sequence).toBe(3);
    stage.clients.destroy();
  });

  it('putEntries reports, never throws, for entries or a call the bus refuses', async () => {
    const stage = await moto.stage();
    faultyBus(stage.clients.events, (call) => (call === 1 ? { code: 'MalformedDetail' } : undefined));
    const entry = {
      EventBusName: stage.names.busName,
      Source: TICK_BUS.source,
      DetailType: TICK_BUS.detailType,
      Detail: JSON.stringify({ symbol: 'ETH-USD' }),
    };
    expect(await putEntries(stage.clients.events, [entry])).toEqual({
      accepted: 0,
      eventIds: [],
      rejected: [
        {
          index: 0,
          code: 'MalformedDetail',
          message: 'injected MalformedDetail',
          attempts: 1,
          retryable: false,
          scope: 'entry',
        },
      ],
      unknown: [],
    });
    // A call the bus answers with an error (here: no such bus) put none of its entries: each is refused with it.
    const missing = await putEntries(stage.clients.events, [{ ...entry, EventBusName: 'no-such-bus' }]);
    expect(missing).toMatchObject({ accepted: 0, unknown: [] });
    expect(missing.rejected).toEqual([
      expect.objectContaining({ index: 0, code: 'ResourceNotFoundException', attempts: 1, scope: 'call' }),
    ]);
    stage.clients.destroy();
  });
});
