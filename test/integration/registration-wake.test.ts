import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BenchStage } from '../../bench/stage.ts';
import { price } from '../../shared/domain/units.ts';
import type { AuctionRecord } from '../../shared/ports/index.ts';
import { lambdaContext, sqsEvent, sqsRecord } from '../../shared/runner/lambda-events.ts';
import { auctionRecord } from '../support/auction-records.ts';
import { type MotoServer, startMoto } from '../support/moto.ts';

/**
 * A registration's wake going on in a continuation (registration-wake-unbounded), through the real auction function
 * (functions/auction: its parse of the queue's messages, its wiring) and the AWS adapters on moto: the continuation
 * wakes the sleepers after the recorded cursor, records the wake done, and a duplicate of it wakes nobody.
 */

let moto: MotoServer;

beforeAll(async () => {
  moto = await startMoto();
});
afterAll(async () => {
  await moto?.stop();
});

const sleeperOf = (id: string, direction: 'BUY' | 'SELL', wakeMark: string): AuctionRecord =>
  auctionRecord(id, { direction, wakeMark: price(wakeMark) });

const IDENTITY = { region: 'us-east-1', accountId: '000000000000' };

describe("a registration's wake continued by the auction function (moto, real handler)", () => {
  it('wakes the sleepers after the cursor once; its duplicate wakes nobody', async () => {
    const stage = await BenchStage.open(moto.endpoint, 'regwake');
    try {
      const { adapters } = stage;
      for (const [id, direction, mark] of [
        ['s-0', 'SELL', '150'],
        ['s-1', 'SELL', '151'],
        ['s-2', 'SELL', '151'],
        ['b-0', 'BUY', '250'],
      ] as const)
        await adapters.auctions.create(sleeperOf(id, direction, mark));
      // As an admin call that woke s-0 and ran out of its part leaves it.
      expect(
        await adapters.markets.recordRegistrationWake(
          'ETH-USD',
          { epoch: 1, part: 1, wokenTo: { direction: 'SELL', id: 's-0', step: 3, wakeMark: price('150') } },
          undefined,
        ),
      ).toBe(true);
      const body = JSON.stringify({ registrationWake: { symbol: 'ETH-USD', epoch: 1 } });
      const invoke = async () => {
        await adapters.auctionQueue.send(body);
        const [message] = await adapters.auctionQueue.receive(1, 30);
        expect(message?.body).toBe(body);
        const event = sqsEvent([
          sqsRecord(message!, 'arn:aws:sqs:us-east-1:000000000000:auction-steps', IDENTITY, Date.now()),
        ]);
        const call = stage.handlers.auction as unknown as (e: unknown, c: unknown) => Promise<unknown>;
        const response = await call(event, lambdaContext('auction', 1024, 60_000, IDENTITY));
        expect(response).toEqual({ batchItemFailures: [] });
        await adapters.auctionQueue.delete(message!.receiptHandle);
        const sent: { auctionId?: string; woken?: boolean }[] = [];
        for (;;) {
          const batch = await adapters.auctionQueue.receive(10, 30);
          if (batch.length === 0) return sent;
          for (const m of batch) {
            sent.push(JSON.parse(m.body));
            await adapters.auctionQueue.delete(m.receiptHandle);
          }
        }
      };
      const first = await invoke();
      // Parsed as a registration's wake (an auction step's schema would dead-letter it), no continuation left.
      expect(first.map((m) => [m.auctionId, m.woken]).sort()).toEqual([
        ['b-0', true],
        ['s-1', true],
        ['s-2', true],
      ]);
      expect((await adapters.markets.get('ETH-USD'))?.registrationWake).toEqual({
        epoch: 1,
        part: 2,
        wokenTo: { direction: 'BUY', id: 'b-0', step: 3, wakeMark: price('250') },
        done: true,
      });
      // Delivered again (at-least-once): the wake is done.
      expect(await invoke()).toEqual([]);
    } finally {
      await stage.close();
    }
  });
});
