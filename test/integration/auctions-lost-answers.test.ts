import { describe, expect, it } from 'vitest';
import { DEFAULT_RISK_CONFIG } from '../../shared/domain/config.ts';
import { price } from '../../shared/domain/units.ts';
import { ConditionFailedError } from '../../shared/ports/index.ts';
import type { SettlementDeps } from '../../shared/services/context.ts';
import { wakeSpent } from '../../shared/services/sleeping.ts';
import { auctionRecord } from '../support/auction-records.ts';
import { loseNextAnswer } from '../support/lost-answer.ts';
import { motoStages } from '../support/moto.ts';
import { RecordingTelemetry } from '../support/pipeline.ts';

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
  const { clients, adapters } = await moto.stage();
  return { clients, adapters };
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
    const deps: SettlementDeps = {
      ...adapters,
      venue: {
        placeIoc: () => Promise.reject(new Error('no venue in this test')),
        quote: () => Promise.resolve({}),
      },
      config: DEFAULT_RISK_CONFIG,
      telemetry: new RecordingTelemetry(),
      strategy: 'waterfall',
      insuranceAccount: 'fund',
      venueAttempts: 1,
    };
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
    const sent: { auctionId: string; step: number; woken?: boolean }[] = [];
    for (;;) {
      const batch = await adapters.auctionQueue.receive(10, 30);
      if (batch.length === 0) break;
      sent.push(...batch.map((m) => JSON.parse(m.body)));
    }
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
    const claims: [number, number][] = [
      [1_000, 0],
      [0, 1_000],
      [2_000, 0],
    ];
    type Args = { input: { TableName?: string; Item?: { id?: { S?: string } } } };
    clients.dynamo.middlewareStack.add(
      ((next: (args: Args) => Promise<unknown>, context: { commandName?: string }) => async (args: Args) => {
        const claim =
          context.commandName === 'PutItemCommand' && args.input.Item?.id?.S === 'a' && claims.shift();
        if (claim) expect(await adapters.auctions.claimStepResend('a', 3, ...claim)).toBe(true);
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
      stepResent: { step: 3, atMs: 2_000 },
    });
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
