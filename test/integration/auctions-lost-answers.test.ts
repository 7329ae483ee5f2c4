import { PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import type { AwsClients } from '../../shared/adapters/aws/index.ts';
import { auctionItem } from '../../shared/adapters/aws/record-items.ts';
import { fencedPut } from '../../shared/adapters/aws/writer-schema.ts';
import { DEFAULT_RISK_CONFIG } from '../../shared/domain/config.ts';
import { price } from '../../shared/domain/units.ts';
import { METRICS } from '../../shared/metrics.ts';
import {
  type AuctionRecord,
  ConditionFailedError,
  type MarketState,
  silentTelemetry,
} from '../../shared/ports/index.ts';
import type { SettlementDeps } from '../../shared/services/context.ts';
import { STEP_STALL_MARGIN_MS, watchLiquidations } from '../../shared/services/liquidation-watch.ts';
import { wakeSpent } from '../../shared/services/sleeping.ts';
import { auctionRecord } from '../support/auction-records.ts';
import { loseNextAnswer } from '../support/lost-answer.ts';
import { motoStages } from '../support/moto.ts';
import { RecordingTelemetry } from '../support/pipeline.ts';
import { liquidation } from '../support/records.ts';

/**
 * A version-conditional PutItem of an auction that DynamoDB applied but whose answer was lost (a timeout, a reset
 * connection): the SDK sends it again, and the retry's condition fails on the write it made itself (PutItem has no
 * idempotency token). Found in session 41 (auction-write-lost-answer): the adapter said ConditionFailedError, which
 * a spent provider's wake (wakeSpent) reads as another delivery's move, so it sent no continuation and an ended
 * auction's sleepers past the first part slept out their plan (up to 900 s). The adapter now writes a token of the
 * call with the item and knows its own write, as the markets adapter does (markets-lost-answers.test.ts).
 */

const moto = motoStages('alost');

const auctionOf = auctionRecord;

async function setUp() {
  const { clients, adapters, names } = await moto.stage();
  return { clients, adapters, table: names.tables.auctions };
}

type Adapters = Awaited<ReturnType<typeof setUp>>['adapters'];

const settlementDeps = (adapters: Adapters, telemetry = new RecordingTelemetry()): SettlementDeps => ({
  ...adapters,
  venue: {
    placeIoc: () => Promise.reject(new Error('no venue in this test')),
    quote: () => Promise.resolve({}),
  },
  config: DEFAULT_RISK_CONFIG,
  telemetry,
  strategy: 'waterfall',
  insuranceAccount: 'fund',
  venueAttempts: 1,
});

/** Every message on the auction queue, as sent. */
async function drained(adapters: Adapters): Promise<{ auctionId: string; step: number }[]> {
  const sent: { auctionId: string; step: number }[] = [];
  for (;;) {
    const batch = await adapters.auctionQueue.receive(10, 30);
    if (batch.length === 0) return sent;
    sent.push(...batch.map((m) => JSON.parse(m.body)));
  }
}

/**
 * One run of liquidation-watch at `nowMs`, its resend alone on these adapters: liquidation l-1:0 listed in AUCTION
 * (begun 20 minutes before), ETH-USD's mark fresh, its step messages to `auctionQueue`.
 */
const watchOf =
  (adapters: Adapters) =>
  (nowMs: number, auctionQueue: { send: (body: string, delaySeconds?: number) => Promise<void> }) =>
    watchLiquidations(
      {
        async *openStartedBefore() {
          const history = [{ atMs: nowMs - 1_200_000, state: 'AUCTION' as const }];
          yield { records: [liquidation({ id: 'l-1:0', state: 'AUCTION', history })], next: { shard: 0 } };
        },
      },
      DEFAULT_RISK_CONFIG,
      nowMs,
      silentTelemetry,
      20,
      {
        resend: {
          auctions: adapters.auctions,
          markets: {
            get: async () => ({ lastTick: { markPrice: price('175'), timestampMs: nowMs } }) as MarketState,
          },
          auctionQueue,
        },
      },
    );

type Args = { input: { Item?: { id?: { S?: string } }; Key?: { id?: { S?: string } } } };

/** Runs `before` ahead of the `attempt`th attempt (the SDK's retries included) of `command` on auction `id`. */
function beforeAttempt(
  clients: AwsClients,
  command: 'PutItemCommand' | 'UpdateItemCommand',
  id: string,
  attempt: number,
  before: () => Promise<void>,
): { attempts: number } {
  const seen = { attempts: 0 };
  clients.dynamo.middlewareStack.add(
    ((next: (args: Args) => Promise<unknown>, context: { commandName?: string }) => async (args: Args) => {
      if (context.commandName === command && (args.input.Item ?? args.input.Key)?.id?.S === id) {
        seen.attempts += 1;
        if (seen.attempts === attempt) await before();
      }
      return next(args);
    }) as unknown as Parameters<typeof clients.dynamo.middlewareStack.add>[0],
    { step: 'deserialize', name: `before${command}${attempt}` },
  );
  return seen;
}

describe('lost answers of conditional writes on the auctions table (moto, real adapters)', () => {
  it("a replace whose answer was lost is the call's own write; another replace on the same read is a race it lost", async () => {
    const { clients, adapters } = await setUp();
    await adapters.auctions.create(auctionOf('a'));
    const fault = loseNextAnswer(clients, 'PutItemCommand');
    const next = auctionOf('a', { step: 4, version: 1 });
    fault.armed = true;
    await adapters.auctions.replace(next, 0);
    expect(fault.lost).toBe(1);
    expect(fault.bodies).toHaveLength(2);
    expect(await adapters.auctions.get('a')).toEqual(next);
    // A duplicate delivery that read version 0 writes on the same expectation, the same record even.
    await expect(adapters.auctions.replace(next, 0)).rejects.toBeInstanceOf(ConditionFailedError);
    await expect(
      adapters.auctions.replace(auctionOf('a', { step: 5, version: 1 }), 0),
    ).rejects.toBeInstanceOf(ConditionFailedError);
    expect(await adapters.auctions.get('a')).toEqual(next);
    clients.destroy();
  });

  it("a create whose answer was lost is the call's own write; another create of the id is refused", async () => {
    const { clients, adapters } = await setUp();
    const fault = loseNextAnswer(clients, 'PutItemCommand');
    fault.armed = true;
    await adapters.auctions.create(auctionOf('a'));
    expect(fault.lost).toBe(1);
    expect(await adapters.auctions.get('a')).toEqual(auctionOf('a'));
    await expect(adapters.auctions.create(auctionOf('a'))).rejects.toBeInstanceOf(ConditionFailedError);
    clients.destroy();
  });

  it("an ended auction's wake part whose record lost its answer sends the rest on (auction-write-lost-answer)", async () => {
    const { clients, adapters } = await setUp();
    for (const [id, mark] of [
      ['s-0', '150'],
      ['s-1', '151'],
    ] as const)
      await adapters.auctions.create(auctionOf(id, { wakeMark: price(mark) }));
    const payer = auctionOf('payer', {
      state: 'EXHAUSTED',
      endedBy: 'plan',
      endedAtMark: price('180'),
      step: 5,
      spentIn: ['ETH-USD'],
    });
    await adapters.auctions.create(payer);
    const deps = settlementDeps(adapters);
    const fault = loseNextAnswer(clients, 'PutItemCommand');
    fault.armed = true;
    // One sleeper a part: s-0 now, s-1 in the continuation.
    expect(await wakeSpent(payer, deps, 1)).toBe(true);
    expect(fault.lost).toBe(1);
    expect(await adapters.auctions.get('payer')).toMatchObject({
      spentIn: ['ETH-USD'],
      spentWokenTo: { id: 's-0' },
      version: 1,
    });
    const sent = await drained(adapters);
    // s-0 woken, and the continuation of the payer's wake: before, the lost answer read as another delivery's
    // write sent none, and s-1 slept out its plan.
    expect(
      sent
        .map((m) => ({ auctionId: m.auctionId, step: m.step }))
        .sort((x, y) => (x.auctionId < y.auctionId ? -1 : 1)),
    ).toEqual([
      { auctionId: 'payer', step: 0 },
      { auctionId: 's-0', step: 3 },
    ]);
    clients.destroy();
  });

  it('a replace whose every put meets the resend claim changed since fails as no conflict: the version never moved (review45-watch-claim-churn)', async () => {
    const { clients, adapters } = await setUp();
    await adapters.auctions.create(auctionOf('a'));
    // Before each put of the replace, liquidation-watch claims the step, gives it back, claims it again.
    let claimer: string | undefined;
    const claims = [
      async () => (claimer = await adapters.auctions.claimStepResend('a', 3, 1_000, 0)),
      () => adapters.auctions.giveBackStepResend('a', claimer!),
      () => adapters.auctions.claimStepResend('a', 3, 2_000, 0),
    ];
    clients.dynamo.middlewareStack.add(
      ((next: (args: Args) => Promise<unknown>, context: { commandName?: string }) => async (args: Args) => {
        const claim =
          context.commandName === 'PutItemCommand' && args.input.Item?.id?.S === 'a' && claims.shift();
        if (claim) expect(await claim()).toBeTruthy();
        return next(args);
      }) as unknown as Parameters<typeof clients.dynamo.middlewareStack.add>[0],
      { step: 'deserialize', name: 'claimBeforePut' },
    );
    const owing = auctionOf('a', { spentIn: ['ETH-USD'], version: 1 });
    const refused = await adapters.auctions.replace(owing, 0).catch((error: unknown) => error);
    expect(claims).toEqual([]);
    // A conflict tells a spent provider's wake that another delivery moved the auction on, and it ends sending no
    // continuation (wakeSpent): nobody did. An error of its own fails the delivery, whose retry reads the claim.
    expect(refused).toBeInstanceOf(Error);
    expect(refused).not.toBeInstanceOf(ConditionFailedError);
    expect(String(refused)).toContain('auctions/claim-moved');
    expect(await adapters.auctions.get('a')).toEqual({
      ...auctionOf('a'),
      stepResent: { step: 3, atMs: 2_000, claimer: expect.any(String) },
    });
    clients.destroy();
  });

  it("a wake debt's write whose answer was lost stays its own when a resend claim lands before the retry (claim45-own-token)", async () => {
    const { clients, adapters } = await setUp();
    for (const [id, mark] of [
      ['s-0', '150'],
      ['s-1', '151'],
    ] as const)
      await adapters.auctions.create(auctionOf(id, { wakeMark: price(mark) }));
    // Running at step 3 (no wake mark of its own: only the sleepers are woken), owing its market a wake.
    const payer = auctionOf('payer', { spentIn: ['ETH-USD'] });
    await adapters.auctions.create(payer);
    const telemetry = new RecordingTelemetry();
    const fault = loseNextAnswer(
      clients,
      'PutItemCommand',
      (input) => (input as Args['input']).Item?.id?.S === 'payer',
    );
    // Between the put DynamoDB applied and the SDK's retry, liquidation-watch claims the payer's stalled step.
    const put = beforeAttempt(clients, 'PutItemCommand', 'payer', 2, async () => {
      expect(await adapters.auctions.claimStepResend('payer', 3, 5_000, 0)).toEqual(expect.any(String));
    });
    fault.armed = true;
    expect(await wakeSpent(payer, settlementDeps(adapters, telemetry), 1)).toBe(true);
    expect(fault.lost).toBe(1);
    expect(put.attempts).toBe(2);
    expect(await adapters.auctions.get('payer')).toMatchObject({
      spentWokenTo: { id: 's-0' },
      stepResent: { step: 3, atMs: 5_000 },
      version: 1,
    });
    // Its own write: s-0 counted and the rest sent on. Before, the claim had written over the replace's token, the
    // retry took the write for another delivery's, and the wake ended quietly: no count, no continuation.
    expect(telemetry.marketCounts.get(`${METRICS.AuctionsWoken.name}@ETH-USD`)).toBe(1);
    expect((await drained(adapters)).map((m) => m.auctionId).sort()).toEqual(['payer', 's-0']);
    clients.destroy();
  });

  for (const read of ['after', 'before'] as const)
    it(`a resend claim whose answer was lost stays its own when a replace of its step, read ${read} the claim, lands before the retry (claim45-own-token)`, async () => {
      const { clients, adapters } = await setUp();
      await adapters.auctions.create(auctionOf('a'));
      // Read before: the replace's first put meets the claim and puts again with the stored one.
      const early = read === 'before' ? await adapters.auctions.get('a') : undefined;
      const fault = loseNextAnswer(clients, 'UpdateItemCommand');
      // Between the claim DynamoDB applied and the SDK's retry, a wake debt is written at the same step.
      const claim = beforeAttempt(clients, 'UpdateItemCommand', 'a', 2, async () => {
        const record = early ?? (await adapters.auctions.get('a'))!;
        await adapters.auctions.replace(
          { ...record, spentIn: ['ETH-USD'], version: record.version + 1 },
          record.version,
        );
      });
      fault.armed = true;
      // Before, the replace carried the claim but wrote its own token over the claim's: the retry answered false,
      // its claim standing, and the watch sent nothing (the next run refused too, for the hour).
      expect(await adapters.auctions.claimStepResend('a', 3, 5_000, 0)).toEqual(expect.any(String));
      expect(fault.lost).toBe(1);
      expect(claim.attempts).toBe(2);
      expect(await adapters.auctions.get('a')).toEqual({
        ...auctionOf('a'),
        spentIn: ['ETH-USD'],
        stepResent: { step: 3, atMs: 5_000, claimer: expect.any(String) },
        version: 1,
      });
      // Another run's claim in the hour is still refused.
      expect(await adapters.auctions.claimStepResend('a', 3, 6_000, 4_000)).toBeUndefined();
      clients.destroy();
    });

  // Why a step's commit needs no token of its own: TransactWriteItems is idempotent on its ClientRequestToken for
  // ten minutes, which the SDK makes once per call when none is given, so DynamoDB answers the retry of an applied
  // commit with success. (moto ignores the token: the retry fails there, which this test does not assert.)
  it("the retries of a transactor's commit carry one ClientRequestToken", async () => {
    const { clients, adapters } = await setUp();
    await adapters.auctions.create(auctionOf('a'));
    const fault = loseNextAnswer(clients, 'TransactWriteItemsCommand');
    fault.armed = true;
    await adapters.transactor
      .commit([{ kind: 'auction', record: auctionOf('a', { step: 4, version: 1 }), expectedVersion: 0 }])
      .catch(() => undefined);
    expect(fault.lost).toBe(1);
    const tokens = fault.bodies.map(
      (body) => (JSON.parse(body) as { ClientRequestToken?: string }).ClientRequestToken,
    );
    expect(tokens).toHaveLength(2);
    expect(tokens[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(tokens[1]).toBe(tokens[0]);
    clients.destroy();
  });
});

describe('a rolling deploy: the resend claims of the previous version and of this one on one item (claim45-own-token)', () => {
  /**
   * The previous version's claim (as at watch45-auctions-permission; session 44's wrote the item the same way, asking
   * it back instead of the `writer` clause): its call's token in `writer`, none in the claim.
   */
  const previousClaim = (
    table: string,
    step: number,
    atMs: number,
    lastBeforeMs: number,
    token: string,
    id = 'a',
  ) =>
    new UpdateItemCommand({
      TableName: table,
      Key: { id: { S: id } },
      UpdateExpression: 'SET #ownedWriter = :ownedWriter, stepResent = :resent',
      ConditionExpression:
        '(#state = :running AND step = :step AND (attribute_not_exists(stepResent) OR stepResent.step <> :step OR stepResent.atMs <= :before)) OR #ownedWriter = :ownedWriter',
      ExpressionAttributeNames: { '#state': 'state', '#ownedWriter': 'writer' },
      ExpressionAttributeValues: {
        ':resent': { M: { step: { N: String(step) }, atMs: { N: String(atMs) } } },
        ':running': { S: 'RUNNING' },
        ':step': { N: String(step) },
        ':before': { N: String(lastBeforeMs) },
        ':ownedWriter': { S: token },
      },
    });
  /**
   * The previous version's replace (as at watch45-resend-claim-kept): the record as it decodes it (the claim's step and
   * time, no more of the map), on them and the version. Session 44's, on the version alone, dropped any claim made since
   * its read, as before.
   */
  const previousReplace = (table: string, next: AuctionRecord, expectedVersion: number) => {
    const claim = next.stepResent && { step: next.stepResent.step, atMs: next.stepResent.atMs };
    const { stepResent: _read, ...rest } = next;
    return new PutItemCommand(
      fencedPut({
        TableName: table,
        Item: {
          ...auctionItem(claim ? { ...rest, stepResent: claim } : rest),
          writer: { S: 'previous-put' },
        },
        ConditionExpression: claim
          ? 'version = :expected AND stepResent.step = :claimStep AND stepResent.atMs = :claimAt'
          : 'version = :expected AND attribute_not_exists(stepResent)',
        ExpressionAttributeValues: {
          ':expected': { N: String(expectedVersion) },
          ...(claim
            ? { ':claimStep': { N: String(claim.step) }, ':claimAt': { N: String(claim.atMs) } }
            : {}),
        },
      }),
    );
  };

  it('an item the previous version claimed (no token in the claim): read, kept, refused and claimed again as before', async () => {
    const { clients, adapters, table } = await setUp();
    await adapters.auctions.create(auctionOf('a'));
    await clients.dynamo.send(previousClaim(table, 3, 1_000, 0, 'previous-claim'));
    const claimed = (await adapters.auctions.get('a'))!;
    expect(claimed.stepResent).toEqual({ step: 3, atMs: 1_000 });
    expect(await adapters.auctions.claimStepResend('a', 3, 2_000, 999)).toBeUndefined();
    // A wake debt's write keeps the claim as it stands.
    await adapters.auctions.replace({ ...claimed, spentIn: ['ETH-USD'], version: 1 }, 0);
    expect((await adapters.auctions.get('a'))?.stepResent).toEqual({ step: 3, atMs: 1_000 });
    // An hour on, claimed again, with its own token.
    expect(await adapters.auctions.claimStepResend('a', 3, 5_000, 1_000)).toEqual(expect.any(String));
    expect((await adapters.auctions.get('a'))?.stepResent).toEqual({
      step: 3,
      atMs: 5_000,
      claimer: expect.any(String),
    });
    clients.destroy();
  });

  it("the previous version's claim and replace on an item this one claimed: as before, the token dropped", async () => {
    const { clients, adapters, table } = await setUp();
    await adapters.auctions.create(auctionOf('a'));
    expect(await adapters.auctions.claimStepResend('a', 3, 1_000, 0)).toEqual(expect.any(String));
    const claimed = (await adapters.auctions.get('a'))!;
    // Its claim in the hour is refused (the token is no `writer` of its own).
    await expect(clients.dynamo.send(previousClaim(table, 3, 2_000, 999, 'p-1'))).rejects.toMatchObject({
      name: 'ConditionalCheckFailedException',
    });
    // Its replace holds on the claim's step and time, and puts the claim back without the token.
    await clients.dynamo.send(previousReplace(table, { ...claimed, spentIn: ['ETH-USD'], version: 1 }, 0));
    expect((await adapters.auctions.get('a'))?.stepResent).toEqual({ step: 3, atMs: 1_000 });
    expect(await adapters.auctions.claimStepResend('a', 3, 2_000, 999)).toBeUndefined();
    // An hour on, its claim holds, and this version's replace keeps that one.
    await clients.dynamo.send(previousClaim(table, 3, 5_000, 1_000, 'p-2'));
    const reclaimed = (await adapters.auctions.get('a'))!;
    expect(reclaimed.stepResent).toEqual({ step: 3, atMs: 5_000 });
    await adapters.auctions.replace({ ...reclaimed, spentIn: [], version: 2 }, 1);
    expect(await adapters.auctions.get('a')).toEqual({ ...reclaimed, spentIn: [], version: 2 });
    clients.destroy();
  });

  // watch46-give-back-own: a send that failed gave the claim back by a claim at 0 over any claim of the step made at or
  // before the run's time, so a claim another run had made since (here the previous version's, its put having dropped
  // this run's, in a rolling deploy) was erased, and the next run sent a twin of its resend.
  it("a failed send gives back this run's own claim only: the previous version's, landed since, stands (watch46-give-back-own)", async () => {
    const { clients, adapters, table } = await setUp();
    const nowMs = Date.now();
    const id = 'l-1:0:auction';
    await adapters.auctions.create(auctionOf(id, { stepDueAtMs: nowMs - STEP_STALL_MARGIN_MS - 60_000 }));
    const watch = watchOf(adapters);
    const failing = {
      send: async () => {
        // While the send fails: the previous version's write of the step (on the version alone, as session 44's
        // replace) drops this run's claim, and its watch, a run begun a minute earlier, claims the step.
        const read = (await adapters.auctions.get(id))!;
        const { stepResent: _dropped, ...rest } = read;
        await clients.dynamo.send(
          new PutItemCommand({
            TableName: table,
            Item: { ...auctionItem({ ...rest, version: read.version + 1 }), writer: { S: 'previous-put' } },
            ConditionExpression: 'version = :expected',
            ExpressionAttributeValues: { ':expected': { N: String(read.version) } },
          }),
        );
        await clients.dynamo.send(previousClaim(table, 3, nowMs - 60_000, 0, 'previous-run', id));
        throw new Error('sqs unavailable');
      },
    };
    expect((await watch(nowMs, failing)).resent).toBe(0);
    // Before: given back (time 0), and the next run sent the step again, a twin of the previous version's resend.
    expect((await adapters.auctions.get(id))?.stepResent).toEqual({ step: 3, atMs: nowMs - 60_000 });
    const sent: string[] = [];
    const later = await watch(nowMs + 300_000, { send: async (body: string) => void sent.push(body) });
    expect(later.resent).toBe(0);
    expect(sent).toEqual([]);
    clients.destroy();
  });
});

describe('the resend claim and its give-back, their answers lost (moto, the real SDK)', () => {
  it("a give-back whose answer was lost is its own on the retry; one retried after another run's claim leaves it (watch46-give-back-own)", async () => {
    const { clients, adapters } = await setUp();
    await adapters.auctions.create(auctionOf('a'));
    const claimer = (await adapters.auctions.claimStepResend('a', 3, 1_000, 0))!;
    const fault = loseNextAnswer(clients, 'UpdateItemCommand');
    fault.armed = true;
    expect(await adapters.auctions.giveBackStepResend('a', claimer)).toBe(true);
    expect(fault.lost).toBe(1);
    expect(fault.bodies).toHaveLength(2);
    expect((await adapters.auctions.get('a'))?.stepResent).toEqual({ step: 3, atMs: 0, claimer });
    // Between a give-back DynamoDB applied and its retry, the next run claims the step: the retry leaves that claim.
    const theirs: (string | undefined)[] = [];
    const giveBack = beforeAttempt(clients, 'UpdateItemCommand', 'a', 2, async () => {
      theirs.push(await adapters.auctions.claimStepResend('a', 3, 2_000, 1_000));
    });
    fault.armed = true;
    expect(await adapters.auctions.giveBackStepResend('a', claimer)).toBe(false);
    expect(fault.lost).toBe(2);
    expect(giveBack.attempts).toBe(3);
    expect(theirs).toEqual([expect.any(String)]);
    expect((await adapters.auctions.get('a'))?.stepResent).toEqual({
      step: 3,
      atMs: 2_000,
      claimer: theirs[0],
    });
    clients.destroy();
  });

  // watch46-retry-moved-on: a claim's retry after a lost answer held on its own token alone, whatever the auction had
  // done since: the step taken (or the auction ended) between the applied claim and the retry, it still answered
  // claimed, and the watch sent the step again, a twin of a step already taken, logged as a stalled step sent again.
  for (const since of ['taken', 'ended'] as const)
    it(`a claim whose answer was lost, the step ${since} before the retry, answers no claim and the watch sends nothing (watch46-retry-moved-on)`, async () => {
      const { clients, adapters } = await setUp();
      const nowMs = Date.now();
      const id = 'l-1:0:auction';
      await adapters.auctions.create(auctionOf(id, { stepDueAtMs: nowMs - STEP_STALL_MARGIN_MS - 60_000 }));
      const fault = loseNextAnswer(clients, 'UpdateItemCommand');
      // Between the claim DynamoDB applied and the SDK's retry, the step's own message (late) takes it.
      const claim = beforeAttempt(clients, 'UpdateItemCommand', id, 2, async () => {
        const record = (await adapters.auctions.get(id))!;
        await adapters.auctions.replace(
          since === 'taken'
            ? { ...record, step: 4, stepDueAtMs: nowMs + 60_000, version: record.version + 1 }
            : { ...record, state: 'CLEARED', endedBy: 'plan', version: record.version + 1 },
          record.version,
        );
      });
      fault.armed = true;
      const sent: string[] = [];
      const report = await watchOf(adapters)(nowMs, { send: async (body: string) => void sent.push(body) });
      expect(fault.lost).toBe(1);
      expect(claim.attempts).toBe(2);
      // Before: resent 1, the message of step 3 sent to an auction past it.
      expect(report.resent).toBe(0);
      expect(sent).toEqual([]);
      // The claim it made stays behind, of the step taken: moot.
      expect((await adapters.auctions.get(id))?.stepResent).toEqual({
        step: 3,
        atMs: nowMs,
        claimer: expect.any(String),
      });
      clients.destroy();
    });
});
