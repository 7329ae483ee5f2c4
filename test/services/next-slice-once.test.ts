import { describe, expect, it } from 'vitest';
import { DEFAULT_RISK_CONFIG_INPUT, parseRiskConfig } from '../../shared/domain/config.ts';
import { parseBase } from '../../shared/domain/units.ts';
import { InjectedCrash } from '../../shared/ports/index.ts';
import { parseLiquidationMessage } from '../../shared/schemas/messages.ts';
import { createPipeline, type Pipeline } from '../support/pipeline.ts';

/**
 * Found by session 51's review of the lot (session 52, lot52-next-slice-once): an auction step that settled its slice
 * sent the next slice's message with the settlement (applySettlement), then found the slice terminal and sent its
 * follow-ups (sendFollowUps) as if an earlier delivery had died before them: the next slice, still QUEUED, got a
 * second message (a wasted delivery; for a slice under the lot, a second dead letter). The re-send is for a
 * redelivery after such a death only.
 */

/** The liquidation ids of every message sent to the liquidations' queue, in order. */
function countingSends(p: Pipeline): string[] {
  const sent: string[] = [];
  const queue = p.adapters.liquidationQueue;
  const send = queue.send.bind(queue);
  const sendBatch = queue.sendBatch.bind(queue);
  queue.send = async (body, delaySeconds) => {
    await send(body, delaySeconds);
    sent.push(parseLiquidationMessage(body).liquidationId);
  };
  queue.sendBatch = async (bodies) => {
    await sendBatch(bodies);
    for (const body of bodies) sent.push(parseLiquidationMessage(body).liquidationId);
  };
  return sent;
}

/**
 * A long of 1,000 ETH (sliced) on an empty book, a provider that takes the first slice in its auction: the auction
 * step settles it and the next slice starts. `dieAfterSettling`: that step's delivery dies right after the commit
 * that settles it, before the next slice's message.
 */
async function auctionSettledSlice(dieAfterSettling: boolean) {
  const config = parseRiskConfig({
    ...DEFAULT_RISK_CONFIG_INPUT,
    auction: {
      ...DEFAULT_RISK_CONFIG_INPUT.auction,
      curve: { kind: 'stairstep', cut: '0.99', stepSeconds: 30 },
      tailSeconds: 600,
      maxResets: 1,
    },
  });
  let armed = dieAfterSettling;
  const p: Pipeline = createPipeline({
    config,
    crashHook: (point) => {
      // The commit that settles the first slice creates the next one.
      if (armed && point === 'transactor.commit' && p.adapters.liquidations.all().length === 2) {
        armed = false;
        throw new InjectedCrash(point);
      }
    },
  });
  const sent = countingSends(p);
  await p.tick('ETH-USD', '200', { sequence: 1 });
  await p.fund('100000');
  await p.provider('lp-1', '10000000', '0.05', '10000');
  await p.open('LONG', '1000', '200', '20000');
  p.venue.faults.emptyBooks.add('ETH-USD');
  p.clock.advance(1000);
  await p.tick('ETH-USD', '184.4', { sequence: 2 });
  await p.drain();
  expect(armed).toBe(false);
  const [first, next] = p.adapters.liquidations.all();
  expect(first?.state).toBe('SETTLED_AUCTION');
  expect(next?.id).toBe(first?.context?.nextLiquidationId);
  expect(next?.state).toMatch(/^SETTLED_/);
  expect((await p.adapters.positions.get('p1'))?.state).toBe('CLOSED');
  expect((await p.check()).violations).toEqual([]);
  return { p, sent, next: next! };
}

describe("an auction-settled slice's next slice", () => {
  it('gets one message: the settling step sends it, and does not send it again as a follow-up', async () => {
    const { p, sent, next } = await auctionSettledSlice(false);
    // Before: two, the settlement's and the follow-up's, both delivered while the next slice was QUEUED.
    expect(sent.filter((id) => id === next.id)).toHaveLength(1);
    expect(p.errors).toEqual([]);
  });

  it('gets one message when the settling delivery died before sending it: its redelivery sends it', async () => {
    const { p, sent, next } = await auctionSettledSlice(true);
    expect(sent.filter((id) => id === next.id)).toHaveLength(1);
    // The one death: its step's delivery, redelivered after the visibility timeout.
    expect(p.errors).toEqual(['auctionSteps: transactor.commit']);
  });
});

describe('a slice settled at the end of its auction, its next slice under the lot', () => {
  it('leaves one dead letter for the next slice, not two', async () => {
    const p = createPipeline({
      config: parseRiskConfig({
        ...DEFAULT_RISK_CONFIG_INPUT,
        markets: DEFAULT_RISK_CONFIG_INPUT.markets.map((m) =>
          m.symbol === 'ETH-USD' ? { ...m, lotSize: '0.001' } : m,
        ),
      }),
      venue: { markets: { 'ETH-USD': { lotSize: parseBase('0.001') } } },
    });
    const sent = countingSends(p);
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    // A long of 6.0005 ETH, opened before the lot: its market order sells 6, and 0.0005 goes to the auction, which
    // opens for a provider whose bid the curve reaches only after some steps.
    const opened = await p.open('LONG', '6.0005', '200', '80');
    await p.provider('lp-1', '1000', '0.05', '1');
    await p.tick('ETH-USD', '190');
    await p.runUntil(p.clock.nowMs() + 5_000);
    const [first] = p.adapters.liquidations.all();
    expect(first?.state).toBe('AUCTION');
    // Its bids withdrawn while the auction sleeps: the auction ends with no fill, and its step settles the slice, the
    // 0.0005 carried to a next slice that nothing takes.
    await p.withdrawBids('lp-1');
    await p.drain(3600).catch(() => undefined);
    const [settled, next] = p.adapters.liquidations.all();
    expect(settled).toMatchObject({
      state: 'SETTLED_MARKET',
      settlement: { carriedSize: parseBase('0.0005') },
    });
    expect(next?.id).toBe(settled?.context?.nextLiquidationId);
    // Before: two messages, each dead-lettered with the reason.
    const letters = p.adapters.liquidationDeadLetters.pending();
    expect(letters.map((m) => parseLiquidationMessage(m.body).liquidationId)).toEqual([next!.id]);
    expect(sent.filter((id) => id === next!.id)).toHaveLength(1);
    expect(p.errors.at(-1)).toMatch(/waterfall\/sub-lot-remainder: /);
    expect(await p.adapters.positions.get(opened.id)).toMatchObject({
      state: 'LIQUIDATING',
      size: parseBase('0.0005'),
    });
  });
});
