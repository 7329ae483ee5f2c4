import { describe, expect, it } from 'vitest';
import { base, price } from '../../shared/domain/units.ts';
import type { AuctionRecord, AuctionStepMessage } from '../../shared/ports/index.ts';
import { parseAuctionStepMessage } from '../../shared/schemas/messages.ts';
import { SPENT_WAKES_PER_DELIVERY, wakeSpent } from '../../shared/services/sleeping.ts';
import { createPipeline, type Pipeline } from '../support/pipeline.ts';

const auctionOf = (id: string, direction: 'BUY' | 'SELL', extra: Partial<AuctionRecord>): AuctionRecord => ({
  id,
  liquidationId: `${id}:liq`,
  symbol: 'ETH-USD',
  direction,
  lot: base('1'),
  remainingLot: base('1'),
  top: price('200'),
  startedAtMs: 1,
  resets: 0,
  step: 3,
  state: 'RUNNING',
  fills: [],
  version: 0,
  ...extra,
});

/** Every message on the auction queue now, taken off it. */
async function takeAll(p: Pipeline): Promise<{ body: string; message: AuctionStepMessage }[]> {
  const taken: { body: string; message: AuctionStepMessage }[] = [];
  for (;;) {
    const batch = await p.adapters.auctionQueue.receive(10, 300);
    if (batch.length === 0) return taken;
    for (const m of batch) {
      await p.adapters.auctionQueue.delete(m.receiptHandle);
      taken.push({ body: m.body, message: parseAuctionStepMessage(m.body) });
    }
  }
}

describe('a spent provider wakes its sleepers a bounded number per delivery (spent-wake-unbounded)', () => {
  it('one delivery wakes at most SPENT_WAKES_PER_DELIVERY; continuations wake every other sleeper once, then drop the debt', async () => {
    const p = createPipeline();
    const sleepers = SPENT_WAKES_PER_DELIVERY * 2 + 500;
    for (let i = 0; i < sleepers; i++) {
      // Wake marks in groups of 7 sleepers each: a continuation goes on after a sleeper among equals.
      const direction = i % 3 === 0 ? 'BUY' : 'SELL';
      await p.adapters.auctions.create(
        auctionOf(`s-${i}`, direction, { wakeMark: price(String(150 + Math.floor(i / 7))) }),
      );
    }
    const payer = auctionOf('payer', 'SELL', { spentIn: ['ETH-USD'] });
    await p.adapters.auctions.create(payer);

    await wakeSpent(payer, p.deps);
    const first = await takeAll(p);
    const woken = new Map<string, number>();
    const count = (taken: typeof first) => {
      for (const { message } of taken)
        if (message.woken && message.auctionId !== 'payer')
          woken.set(message.auctionId, (woken.get(message.auctionId) ?? 0) + 1);
    };
    count(first);
    // Before: all 2,500 at once, in the step's delivery, and the debt dropped.
    expect(woken.size).toBeLessThanOrEqual(SPENT_WAKES_PER_DELIVERY);
    const owed = await p.adapters.auctions.get('payer');
    expect(owed?.spentIn).toEqual(['ETH-USD']);
    expect(owed?.spentWokenTo).toBeDefined();
    let continuations = first.filter(({ message }) => message.auctionId === 'payer');
    expect(continuations).toHaveLength(1);

    let deliveries = 1;
    while (continuations.length > 0) {
      const [next] = continuations;
      // The continuation is a stale message of the payer: the auction function pays the wake and changes nothing else.
      const outcome = await p.handlers.auction({
        messageId: `c${deliveries}`,
        body: next!.body,
        receiptHandle: '',
        receiveCount: 1,
        sentAtMs: 0,
      });
      expect(outcome).toEqual({ status: 'stale' });
      deliveries += 1;
      const taken = await takeAll(p);
      count(taken);
      continuations = taken.filter(({ message }) => message.auctionId === 'payer');
      expect(deliveries).toBeLessThan(10);
    }
    expect(deliveries).toBe(Math.ceil(sleepers / SPENT_WAKES_PER_DELIVERY));
    expect(woken.size).toBe(sleepers);
    expect([...woken.values()].every((n) => n === 1)).toBe(true);
    const paid = await p.adapters.auctions.get('payer');
    expect(paid?.spentIn).toBeUndefined();
    expect(paid?.spentWokenTo).toBeUndefined();
    expect(paid).toMatchObject({ state: 'RUNNING', step: 3, fills: [] });
  });
});
