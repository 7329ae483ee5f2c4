import { describe, expect, it } from 'vitest';
import {
  encodeMessage,
  PoisonMessageError,
  parseAuctionQueueMessage,
  parseAuctionStepMessage,
  parseLiquidationMessage,
  stepMessageOf,
} from '../../shared/schemas/messages.ts';

describe('auction step messages', () => {
  it('name the auction, its step, its market and when it is due; a message without the market still parses', () => {
    const sent = stepMessageOf({ id: 'l-1:auction', step: 4, symbol: 'ETH-USD' }, 1_700_000_000_000);
    expect(parseAuctionStepMessage(encodeMessage(sent))).toEqual({
      auctionId: 'l-1:auction',
      step: 4,
      symbol: 'ETH-USD',
      dueAtMs: 1_700_000_000_000,
    });
    expect(parseAuctionStepMessage('{"auctionId":"l-1:auction","step":4}')).toEqual({
      auctionId: 'l-1:auction',
      step: 4,
    });
  });

  it("drop fields this version does not know: a next version's writer must not poison this reader mid-deploy", () => {
    expect(parseAuctionStepMessage('{"auctionId":"l-1:auction","step":4,"market":"ETH-USD"}')).toEqual({
      auctionId: 'l-1:auction',
      step: 4,
    });
    expect(parseLiquidationMessage('{"liquidationId":"p-1:1","attempt":3}')).toEqual({
      liquidationId: 'p-1:1',
    });
  });

  it("say when a tick's wake sent them", () => {
    const woken = { ...stepMessageOf({ id: 'l-1:auction', step: 4, symbol: 'ETH-USD' }, 5), woken: true };
    expect(parseAuctionStepMessage(encodeMessage(woken))).toEqual(woken);
  });

  it.each([
    ['an empty market', '{"auctionId":"l-1:auction","step":4,"symbol":""}', /malformed: symbol/],
    ['a market that is not a string', '{"auctionId":"l-1:auction","step":4,"symbol":7}', /malformed: symbol/],
    ['a negative step', '{"auctionId":"l-1:auction","step":-1}', /malformed: step/],
    ['a wake that is not a flag', '{"auctionId":"l-1:auction","step":4,"woken":"yes"}', /malformed: woken/],
    [
      'a due time that is not a time',
      '{"auctionId":"l-1:auction","step":4,"dueAtMs":1.5}',
      /malformed: dueAtMs/,
    ],
    ['no JSON', 'step 4', /auction-step-message\/not-json/],
  ])('refuses %s as poison, with the reason', (_what, body, reason) => {
    expect(() => parseAuctionStepMessage(body)).toThrow(PoisonMessageError);
    expect(() => parseAuctionStepMessage(body)).toThrow(reason);
  });
});

describe('liquidation messages', () => {
  it("name the liquidation, and a last resort's waits so far when it waits for the book", () => {
    expect(parseLiquidationMessage('{"liquidationId":"p-1:1"}')).toEqual({ liquidationId: 'p-1:1' });
    const waiting = { liquidationId: 'p-1:1', lastResortWaits: 3 };
    expect(parseLiquidationMessage(encodeMessage(waiting))).toEqual(waiting);
    const outraced = { ...waiting, lastResortWaitsOutraced: 2, lastResortFillsSeen: 0 };
    expect(parseLiquidationMessage(encodeMessage(outraced))).toEqual(outraced);
    // The wait it carries on (waits43-one-chain).
    const named = { ...waiting, lastResortWaitId: 'f3a1c2d4-0b5e-4c6f-9a7b-8c9d0e1f2a3b' };
    expect(parseLiquidationMessage(encodeMessage(named))).toEqual(named);
    // And the one it followed, which it takes over from while the record still names it (review43b-wait-before-named).
    const after = { ...named, lastResortWaitAfter: '0b5e4c6f-f3a1-c2d4-9a7b-8c9d0e1f2a3b' };
    expect(parseLiquidationMessage(encodeMessage(after))).toEqual(after);
  });

  it.each([
    ['no waits', '{"liquidationId":"p-1:1","lastResortWaits":0}', /malformed: lastResortWaits/],
    ['a fraction of a wait', '{"liquidationId":"p-1:1","lastResortWaits":1.5}', /malformed: lastResortWaits/],
    ['waits as text', '{"liquidationId":"p-1:1","lastResortWaits":"3"}', /malformed: lastResortWaits/],
    [
      'no outraced waits',
      '{"liquidationId":"p-1:1","lastResortWaitsOutraced":0}',
      /malformed: lastResortWaitsOutraced/,
    ],
    [
      'a negative fill count',
      '{"liquidationId":"p-1:1","lastResortFillsSeen":-1}',
      /malformed: lastResortFillsSeen/,
    ],
    ['an empty wait id', '{"liquidationId":"p-1:1","lastResortWaitId":""}', /malformed: lastResortWaitId/],
    [
      'an empty followed wait',
      '{"liquidationId":"p-1:1","lastResortWaitAfter":""}',
      /malformed: lastResortWaitAfter/,
    ],
    ['no JSON', 'p-1:1', /liquidation-message\/not-json/],
  ])('refuses %s as poison, with the reason', (_what, body, reason) => {
    expect(() => parseLiquidationMessage(body)).toThrow(PoisonMessageError);
    expect(() => parseLiquidationMessage(body)).toThrow(reason);
  });
});

describe("the auction queue's messages (registration-wake-unbounded)", () => {
  it("a registration's wake by its field, a step otherwise; each refused by its own schema", () => {
    const wake = { registrationWake: { symbol: 'ETH-USD', epoch: 3 } };
    expect(parseAuctionQueueMessage(encodeMessage(wake))).toEqual(wake);
    expect(parseAuctionQueueMessage('{"auctionId":"l-1:auction","step":4}')).toEqual({
      auctionId: 'l-1:auction',
      step: 4,
    });
    expect(() => parseAuctionQueueMessage('{"registrationWake":{"symbol":"ETH-USD"}}')).toThrow(
      /registration-wake-message\/malformed: registrationWake.epoch/,
    );
    expect(() => parseAuctionQueueMessage('{"step":4}')).toThrow(
      /auction-step-message\/malformed: auctionId/,
    );
    expect(() => parseAuctionQueueMessage('nope')).toThrow(PoisonMessageError);
  });
});
