import { describe, expect, it } from 'vitest';
import { type PriceE8, price } from '../../shared/domain/units.ts';
import type { QueueTransport, Sleeper } from '../../shared/ports/index.ts';
import { parseAuctionStepMessage } from '../../shared/schemas/messages.ts';
import { sendSettled, sidesOf, wakeInOrder, wakeSleepers } from '../../shared/services/wake.ts';

/** `count` sleepers of one side, in wake order: s-000, s-001, ... */
const sleepersOf = (prefix: string, count: number): Sleeper[] =>
  Array.from({ length: count }, (_, i) => ({
    id: `${prefix}-${String(i).padStart(3, '0')}`,
    step: 3,
    wakeMark: price(String(150 + Math.floor(i / 7))),
  }));

/** The sleepers index, as the repository reads it: in wake order, after `after`, at most `limit`. */
const auctionsOf = (sides: Record<string, readonly Sleeper[]>) => ({
  sleepers: async (
    symbol: string,
    direction: 'BUY' | 'SELL',
    _mark: PriceE8 | undefined,
    limit: number,
    after?: Sleeper,
  ) => {
    const all = sides[`${symbol} ${direction}`] ?? [];
    const from = after ? all.findIndex((s) => s.id === after.id) + 1 : 0;
    return { due: all.slice(from, from + limit), next: all[from + limit]?.wakeMark };
  },
});

/** A queue whose SendMessageBatch calls fail (sending nothing) when `fails` says so; the rest it keeps. */
function failingQueue(fails: (bodies: readonly string[], call: number) => boolean) {
  const sent: string[] = [];
  let calls = 0;
  const queue: QueueTransport = {
    name: 'auctions',
    send: async () => {},
    sendBatch: async (bodies) => {
      calls += 1;
      if (fails(bodies, calls)) throw new Error('ServiceUnavailable');
      sent.push(...bodies);
    },
    receive: async () => [],
    delete: async () => {},
    changeVisibility: async () => {},
    depth: async () => ({ visible: 0, inFlight: 0, delayed: 0 }),
  };
  return {
    queue,
    sent,
    woken: () => sent.map((b) => parseAuctionStepMessage(b).auctionId),
    calls: () => calls,
  };
}

const holding =
  (...ids: string[]) =>
  (bodies: readonly string[]): boolean =>
    bodies.some((b) => ids.includes(parseAuctionStepMessage(b).auctionId));

// wake-part-restarts (session 42): one failed SendMessageBatch failed the whole call, which kept no progress and
// counted no message, though the others had gone: a wake in parts restarted its part from its first sleeper.
describe('a wake whose sends partly fail keeps the prefix that went (wake-part-restarts)', () => {
  it('the cursor stops before the first batch that failed; woken counts the messages sent', async () => {
    const side = sleepersOf('s', 95);
    const q = failingQueue(holding('s-042'));
    const deps = { auctions: auctionsOf({ 'ETH-USD SELL': side }), auctionQueue: q.queue };
    const out = await wakeSleepers(deps, 'ETH-USD', 'SELL', undefined, 1);
    // s-040 to s-049 went in one batch, which failed; the batches after it were in flight and went.
    expect(out.last).toEqual(side[39]);
    expect(out.woken).toBe(85);
    expect(out.passed).toBe(40);
    expect(q.sent).toHaveLength(85);
    expect(q.woken()).not.toContain('s-040');
    expect(out.failure).toBe('ServiceUnavailable');
    expect(out.read).toBe(95);
  });

  it('no batch failing: woken and last as before; the first batch failing: no cursor', async () => {
    const side = sleepersOf('s', 95);
    const ok = failingQueue(() => false);
    const all = await wakeSleepers(
      { auctions: auctionsOf({ 'ETH-USD SELL': side }), auctionQueue: ok.queue },
      'ETH-USD',
      'SELL',
      undefined,
      1,
    );
    expect(all).toEqual({ woken: 95, passed: 95, next: undefined, read: 95, last: side[94] });
    const first = failingQueue(holding('s-003'));
    const none = await wakeSleepers(
      { auctions: auctionsOf({ 'ETH-USD SELL': side }), auctionQueue: first.queue },
      'ETH-USD',
      'SELL',
      undefined,
      1,
    );
    expect(none.last).toBeUndefined();
    expect(none.woken).toBe(85);
    expect(first.sent).toHaveLength(85);
  });

  it('the excepted auction just before the batch that failed: the cursor goes past it', async () => {
    const side = sleepersOf('s', 60);
    const q = failingQueue(holding('s-045'));
    const deps = { auctions: auctionsOf({ 'ETH-USD SELL': side }), auctionQueue: q.queue };
    const out = await wakeSleepers(deps, 'ETH-USD', 'SELL', undefined, 1, undefined, 's-040');
    // Sent: s-000..s-039, then s-041..s-050 (failed), then s-051..s-059.
    expect(out.last).toEqual(side[40]);
    expect(out.woken).toBe(49);
    expect(q.sent).toHaveLength(49);
  });

  it('a part keeps the prefix of the side that failed; its retry goes on from there and wakes the rest', async () => {
    const sell = sleepersOf('sell', 30);
    const buy = sleepersOf('buy', 200);
    const auctions = auctionsOf({ 'ETH-USD SELL': sell, 'ETH-USD BUY': buy });
    let failing = true;
    const q = failingQueue((bodies) => failing && holding('buy-120')(bodies));
    const deps = { auctions, auctionQueue: q.queue };
    const part = await wakeInOrder(deps, sidesOf(['ETH-USD']), undefined, 1_000, () => 1);
    expect(part.failure).toEqual({ symbol: 'ETH-USD', error: 'ETH-USD BUY sleepers: ServiceUnavailable' });
    expect(part.wokenTo).toEqual({ symbol: 'ETH-USD', direction: 'BUY', ...buy[119] });
    expect(part.more).toBe(true);
    // The 30 SELL and 190 BUY messages that went (before: 0, and no cursor past the SELL side).
    expect(part.wokenIn.get('ETH-USD')).toBe(220);
    expect(q.sent).toHaveLength(220);
    // Up to the cursor: the 30 SELL and the first 120 BUY.
    expect(part.passedIn.get('ETH-USD')).toBe(150);
    failing = false;
    const retry = await wakeInOrder(deps, sidesOf(['ETH-USD']), part.wokenTo, 1_000, () => 1);
    expect(retry).toMatchObject({ more: false, wokenTo: { direction: 'BUY', ...buy[199] } });
    // From buy-120: its failed batch, and the batches sent past it again (deduped by their step numbers).
    expect(retry.wokenIn.get('ETH-USD')).toBe(80);
    expect(new Set(q.woken())).toEqual(new Set([...sell, ...buy].map((s) => s.id)));
    // Counted up to each cursor, each sleeper is counted once (wakes43-count-once); the messages sent, 300 of 230.
    expect(part.passedIn.get('ETH-USD')! + retry.passedIn.get('ETH-USD')!).toBe(230);
  });

  it('a failure begins no more batches; those in flight finish and are counted', async () => {
    const bodies = sleepersOf('s', 400).map((s) =>
      JSON.stringify({ auctionId: s.id, step: s.step, symbol: 'ETH-USD', woken: true }),
    );
    const q = failingQueue(holding('s-000'));
    const out = await sendSettled(q.queue, bodies);
    // 25 in flight at once: the first fails, the other 24 go, and none of the 15 after them is begun.
    expect(q.calls()).toBe(25);
    expect(out).toMatchObject({ sent: 240, prefix: 0 });
    expect(out.failure?.error).toBeInstanceOf(Error);
    const ok = failingQueue(() => false);
    expect(await sendSettled(ok.queue, bodies.slice(0, 95))).toEqual({ sent: 95, prefix: 95 });
    expect(ok.calls()).toBe(10);
  });

  it('one in flight (the part after a failed one, wakes43b): nothing past the failed batch goes', async () => {
    const bodies = sleepersOf('s', 400).map((s) =>
      JSON.stringify({ auctionId: s.id, step: s.step, symbol: 'ETH-USD', woken: true }),
    );
    const q = failingQueue(holding('s-050'));
    const out = await sendSettled(q.queue, bodies, 1);
    // Before (25 in flight): the 24 batches begun with it went too, past the prefix, and went again with the next part.
    expect(q.calls()).toBe(6);
    expect(out).toMatchObject({ sent: 50, prefix: 50 });
    const part = await wakeInOrder(
      {
        auctions: auctionsOf({ 'ETH-USD SELL': sleepersOf('s', 400) }),
        auctionQueue: failingQueue(holding('s-050')).queue,
      },
      sidesOf(['ETH-USD']),
      undefined,
      1000,
      () => 0,
      { inOrder: true },
    );
    expect(part).toMatchObject({ wokenTo: { id: 's-049' }, more: true });
    expect(part.wokenIn.get('ETH-USD')).toBe(50);
  });
});

/** A queue whose SendMessageBatch calls leave out the entries `unsent` says, naming them in their error (the port's). */
function partlyFailingQueue(unsent: (bodies: readonly string[]) => number[]) {
  const sent: string[] = [];
  const queue: QueueTransport = {
    ...failingQueue(() => false).queue,
    sendBatch: async (bodies) => {
      const left = unsent(bodies);
      sent.push(...bodies.filter((_, i) => !left.includes(i)));
      if (left.length > 0) throw Object.assign(new Error('InternalError'), { unsent: left });
    },
  };
  return { queue, sent };
}

// wakes43-count-once: a failed SendMessageBatch counted none of its entries, though SQS's answer said which went.
describe('a SendMessageBatch that names the entries it did not send (wakes43-count-once)', () => {
  it('counts the others, and the prefix goes on to the first entry not sent', async () => {
    const side = sleepersOf('s', 95);
    // The batch s-040..s-049: s-043 and s-047 not sent.
    const q = partlyFailingQueue((bodies) =>
      bodies.flatMap((b, i) =>
        ['s-043', 's-047'].includes(parseAuctionStepMessage(b).auctionId) ? [i] : [],
      ),
    );
    const deps = { auctions: auctionsOf({ 'ETH-USD SELL': side }), auctionQueue: q.queue };
    const out = await wakeSleepers(deps, 'ETH-USD', 'SELL', undefined, 1);
    // Before: 85 counted and the cursor at s-039.
    expect(out).toMatchObject({ woken: 93, passed: 43, last: side[42], failure: 'InternalError' });
    expect(q.sent).toHaveLength(93);
  });

  it('an error that names nothing (a lost answer) counts none of its batch', async () => {
    const bodies = sleepersOf('s', 30).map((s) => JSON.stringify({ auctionId: s.id, step: s.step }));
    const q = failingQueue(holding('s-015'));
    expect(await sendSettled(q.queue, bodies)).toMatchObject({ sent: 20, prefix: 10 });
    const named = partlyFailingQueue((batch) => (batch.some((b) => b.includes('s-015')) ? [5] : []));
    expect(await sendSettled(named.queue, bodies)).toMatchObject({ sent: 29, prefix: 15 });
  });
});
