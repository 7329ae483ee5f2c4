import { describe, expect, it } from 'vitest';
import { parseRiskConfig } from '../../shared/domain/config.ts';
import { encodeMessage, parseLiquidationMessage } from '../../shared/schemas/messages.ts';
import { LAST_RESORT_WAITS } from '../../shared/services/liquidation.ts';
import { auctionEndingIntoWait, auctionOf, liquidationOf } from '../support/auction-records.ts';
import { crashOnceAt, createPipeline, type Pipeline, type PipelineOptions } from '../support/pipeline.ts';
import { AUCTION_ONLY } from '../support/risk-configs.ts';

/**
 * A last resort waiting for the book is carried by one message at a time: each look asks the venue for a quote and
 * sends the next one (60 s, then 120 s, 240 s... up to 900 s). A copy of that message (a delivery that died after
 * sending the next wait, SQS's duplicate delivery, an ended auction's step delivered again) went on to send its own
 * next wait, and each copy after it: chains in parallel, each quoting the venue, counting its waits and, at the
 * last, dead-lettering the liquidation while the others went on (waits43-one-chain).
 */

/** A long liquidated into an empty book, no bidder, fund or counterparty: its first order filled nothing. */
async function waiting(options: PipelineOptions = {}) {
  const p = createPipeline({ config: parseRiskConfig(AUCTION_ONLY), ...options });
  await p.tick('ETH-USD', '200');
  await p.open('LONG', '10', '200', '200');
  p.venue.faults.emptyBooks.add('ETH-USD');
  await p.tick('ETH-USD', '184');
  await p.runUntil(p.clock.nowMs() + 1000);
  const [liquidation] = p.adapters.liquidations.all();
  expect(liquidation?.context?.lastResortAttempt).toBe(1);
  expect(waitsOf(p, liquidation!.id)).toHaveLength(1);
  return { p, id: liquidation!.id };
}

/** The liquidation's messages on its queue (delayed, visible or in flight). */
const waitsOf = (p: Pipeline, id: string) =>
  p.adapters.liquidationQueue
    .pending()
    .map((m) => parseLiquidationMessage(m.body))
    .filter((m) => m.liquidationId === id);

/** Receives the wait message due now (the clock moved to it), as the consumer does. */
async function receiveWait(p: Pipeline, id: string) {
  const due = Math.min(...waitsOf(p, id).map((m) => m.dueAtMs!));
  p.clock.set(Math.max(p.clock.nowMs(), due));
  const [message] = await p.adapters.liquidationQueue.receive(10, 30);
  expect(parseLiquidationMessage(message!.body).liquidationId).toBe(id);
  return message!;
}

/** The client order ids of the liquidation's last-resort orders. */
const lastResortOrders = (p: Pipeline, id: string) =>
  [...p.orders.orders.keys()].filter((o) => o.startsWith(`${id}:last-resort`));

/**
 * Runs `minutes` on and says how the waits went: the quotes asked and the waits the liquidation's messages counted,
 * and its messages left (after every copy due meanwhile has been delivered).
 */
async function waitOn(p: Pipeline, id: string, minutes: number) {
  const quotes = p.orders.quotes;
  await p.runUntil(p.clock.nowMs() + minutes * 60_000);
  return { quotes: p.orders.quotes - quotes, left: waitsOf(p, id).length };
}

describe('one wait for the book per liquidation, whatever copies of its message (waits43-one-chain)', () => {
  it('a wait message delivered twice sends one next wait', async () => {
    const { p, id } = await waiting();
    const message = await receiveWait(p, id);
    await p.handlers.liquidation(message);
    // SQS delivers a message at least once: the same one again, after the first sent the next wait.
    await p.handlers.liquidation(message);
    await p.adapters.liquidationQueue.delete(message.receiptHandle);
    // Before: two next waits, each sending its own from then on.
    expect(waitsOf(p, id)).toHaveLength(1);
    // Looks at 120 s and 240 s on: one quote each.
    expect(await waitOn(p, id, 7)).toEqual({ quotes: 2, left: 1 });
    expect(p.errors).toEqual([]);
    expect((await p.check()).violations).toEqual([]);
  });

  it('two copies delivered at once each send a next wait, and one of them ends at its look', async () => {
    const { p, id } = await waiting();
    const message = await receiveWait(p, id);
    await Promise.all([p.handlers.liquidation(message), p.handlers.liquidation(message)]);
    await p.adapters.liquidationQueue.delete(message.receiptHandle);
    // Neither can know of the other before it sends; the record names one of the two.
    expect(waitsOf(p, id).length).toBeLessThanOrEqual(2);
    // The other comes back 120 s on, with it, and ends without a quote. Before: both quoted, then at each look after.
    expect(await waitOn(p, id, 7)).toEqual({ quotes: 2, left: 1 });
    expect(p.errors).toEqual([]);
    expect((await p.check()).violations).toEqual([]);
  });

  it('a delivery that dies after its work, before its ack, comes back and sends nothing', async () => {
    const { p, id } = await waiting();
    const message = await receiveWait(p, id);
    // Its function timed out after it sent the next wait (or the ack was lost): redelivered 30 s later.
    await p.handlers.liquidation(message);
    expect(await waitOn(p, id, 1)).toEqual({ quotes: 0, left: 1 });
    expect(await waitOn(p, id, 7)).toEqual({ quotes: 2, left: 1 });
    expect((await p.check()).violations).toEqual([]);
  });

  it('a delivery that dies right after sending its next wait comes back; one of the two waits goes on', async () => {
    const crash = crashOnceAt('liquidationQueue.send');
    const { p, id } = await waiting({ crashHook: crash.hook });
    crash.arm();
    await p.runUntil(p.clock.nowMs() + 60_000);
    expect(crash.crashed()).toBe(true);
    expect(p.errors).toEqual(['liquidations: liquidationQueue.send']);
    // Its redelivery, 30 s on, looks again (it cannot know the wait was sent), and sends a wait of its own.
    expect(await waitOn(p, id, 1)).toMatchObject({ quotes: 1 });
    // The dead delivery's wait comes back first, and ends; the redelivery's looks on. Before: both did, ever after.
    expect(await waitOn(p, id, 15)).toEqual({ quotes: 3, left: 1 });
    expect((await p.check()).violations).toEqual([]);
  });

  it('dead-letters the liquidation once, after its waits, with no copy waiting on', async () => {
    const { p, id } = await waiting({ maxReceiveCount: { liquidations: 2 } });
    const message = await receiveWait(p, id);
    await p.handlers.liquidation(message);
    await p.handlers.liquidation(message);
    await p.adapters.liquidationQueue.delete(message.receiptHandle);
    await p.drain(8 * 3600);
    // Before: each copy counted its own waits to the dead letter (two of them), quoting the venue twice as often.
    expect(p.adapters.liquidationDeadLetters.pending()).toHaveLength(1);
    expect(waitsOf(p, id)).toEqual([]);
    // 18 looks that waited, and the last one's two receives (each looked, then failed).
    expect(p.orders.quotes).toBe(LAST_RESORT_WAITS);
    expect(p.telemetry.total('LastResortWaits')).toBe(LAST_RESORT_WAITS - 1);
  });

  it("an operator's re-send, naming no wait, takes the wait over: the one it replaces ends at its look", async () => {
    const { p, id } = await waiting();
    // `backstop liquidations overdue --resend` (messages lost, a purge): it must resume whatever it finds.
    await p.adapters.liquidationQueue.send(encodeMessage({ liquidationId: id }));
    expect(await waitOn(p, id, 0.5)).toEqual({ quotes: 1, left: 2 });
    // The replaced wait ends at 60 s; the re-send's looks at 150 s and 390 s.
    expect(await waitOn(p, id, 7)).toEqual({ quotes: 2, left: 1 });
    expect((await p.check()).violations).toEqual([]);
  });

  it('a wait that meets a stale mark comes back as the same wait, still the one the record names', async () => {
    const { p, id } = await waiting({ marks: 'as-configured' }); // maxMarkAgeSeconds 120
    // The look at 60 s waits 120 s more; at 180 s the mark is stale: the message comes back 30 s on, as it was.
    await p.runUntil(p.clock.nowMs() + 181_000);
    expect(p.telemetry.total('StaleMarkWaits')).toBe(1);
    const named = p.adapters.liquidations.all().find((l) => l.id === id)?.context?.lastResortWait;
    expect(named).toEqual({ id: expect.any(String), waits: 2 });
    expect(waitsOf(p, id)).toEqual([
      expect.objectContaining({ lastResortWaits: 2, lastResortWaitId: named!.id }),
    ]);
    await p.tick('ETH-USD', '184');
    expect(await waitOn(p, id, 1)).toEqual({ quotes: 1, left: 1 });
    expect((await p.check()).violations).toEqual([]);
  });

  it('a wait due before its sender names it (a slow write) carries the wait on: never a liquidation left with none', async () => {
    // Waits of 1 s (the least the config takes): the record's write after the send may well take that long (retried
    // conflicts, throttling).
    const config = {
      ...AUCTION_ONLY,
      markets: AUCTION_ONLY.markets.map((m) => ({ ...m, lastResortWaitSeconds: 1 })),
    };
    const { p, id } = await waiting({ config: parseRiskConfig(config) });
    const transactor = p.adapters.transactor;
    const commit = transactor.commit.bind(transactor);
    let slow = true;
    transactor.commit = async (writes, check) => {
      const named = writes.find((w) => w.kind === 'liquidation')?.record.context?.lastResortWait;
      if (slow && named) {
        slow = false;
        // The wait just sent falls due and is delivered while its sender's write is on its way.
        const [sent] = waitsOf(p, id).filter((m) => m.lastResortWaitId === named.id);
        await p.runUntil(sent!.dueAtMs!);
      }
      return commit(writes, check);
    };
    await p.runUntil(waitsOf(p, id)[0]!.dueAtMs!);
    expect(slow).toBe(false);
    // The early wait took it over (its predecessor was still named) and sent the next; the slow write then lost
    // its version and its sender ended. Before: the early wait ended as a copy, then the write named it, consumed:
    // the liquidation waited with no message (stranded).
    const [next] = waitsOf(p, id);
    expect(waitsOf(p, id)).toHaveLength(1);
    expect(p.adapters.liquidations.all()[0]?.context?.lastResortWait).toEqual({
      id: next!.lastResortWaitId,
      waits: next!.lastResortWaits,
    });
    // Each wait counted once (no look twice).
    expect(p.telemetry.total('LastResortWaits')).toBe(next!.lastResortWaits);
    expect((await p.check()).violations).toEqual([]);
    // One wait goes on: looks 8 s, 24 s and 56 s on (two chains: six).
    expect(await waitOn(p, id, 1)).toEqual({ quotes: 3, left: 1 });
    expect((await p.check()).violations).toEqual([]);
  });

  it('a look whose record write loses to another writer ends there: one quote, one count, one wait sent', async () => {
    const { p, id } = await waiting();
    // An operator's re-send (naming no wait, so never a copy), delivered twice: SQS's duplicate delivery.
    await p.adapters.liquidationQueue.send(encodeMessage({ liquidationId: id }));
    const [resend] = await p.adapters.liquidationQueue.receive(10, 30);
    expect(parseLiquidationMessage(resend!.body)).toEqual({ liquidationId: id });
    const transactor = p.adapters.transactor;
    const commit = transactor.commit.bind(transactor);
    let twin = true;
    transactor.commit = async (writes, check) => {
      if (twin && writes.some((w) => w.kind === 'liquidation' && w.record.context?.lastResortWait)) {
        twin = false;
        // The twin looks, sends and names its wait first: this write then loses the version it read.
        await p.handlers.liquidation(resend!);
      }
      return commit(writes, check);
    };
    const quotes = p.orders.quotes;
    const waits = p.telemetry.total('LastResortWaits');
    await p.handlers.liquidation(resend!);
    await p.adapters.liquidationQueue.delete(resend!.receiptHandle);
    expect(twin).toBe(false);
    // One look each. Before: the loser read the record again and, its message naming no wait, looked a second
    // time: a third quote and count, and a third wait sent that ended as a copy at its look.
    expect(p.orders.quotes - quotes).toBe(2);
    expect(p.telemetry.total('LastResortWaits') - waits).toBe(2);
    // The first wait, the twin's (named) and the loser's (ends at its look).
    const named = p.adapters.liquidations.all().find((l) => l.id === id)?.context?.lastResortWait;
    expect(waitsOf(p, id)).toHaveLength(3);
    expect(waitsOf(p, id).filter((m) => m.lastResortWaitId === named?.id)).toHaveLength(1);
    expect(p.errors).toEqual([]);
    expect((await p.check()).violations).toEqual([]);
    // The first wait and the loser's end at their looks; the twin's goes on.
    expect(await waitOn(p, id, 15)).toMatchObject({ left: 1 });
    expect((await p.check()).violations).toEqual([]);
  });

  it('a wait that took over and then lost its write to its sender naming it goes on: never a liquidation left with none', async () => {
    const config = {
      ...AUCTION_ONLY,
      markets: AUCTION_ONLY.markets.map((m) => ({ ...m, lastResortWaitSeconds: 1 })),
    };
    const { p, id } = await waiting({ config: parseRiskConfig(config) });
    const transactor = p.adapters.transactor;
    const commit = transactor.commit.bind(transactor);
    let stage: 'sender' | 'early' | 'done' = 'sender';
    let landSender = async () => {};
    transactor.commit = async (writes, check) => {
      const named = writes.find((w) => w.kind === 'liquidation')?.record.context?.lastResortWait;
      if (named && stage === 'sender') {
        stage = 'early';
        landSender = () => commit(writes, check);
        // The wait just sent falls due and is delivered (a take-over: its predecessor still named) while its
        // sender's write is on its way ...
        const [sent] = waitsOf(p, id).filter((m) => m.lastResortWaitId === named.id);
        await p.runUntil(sent!.dueAtMs!);
        expect(stage).toBe('done');
        return;
      }
      if (named && stage === 'early') {
        // ... and the sender's write, naming that very wait, lands before the early wait's own write.
        stage = 'done';
        await landSender();
      }
      return commit(writes, check);
    };
    await p.runUntil(waitsOf(p, id)[0]!.dueAtMs!);
    expect(stage).toBe('done');
    // The record names the early wait, whose delivery lost its write: it looks again rather than end. Ended, the
    // wait it sent (naming the one before as its predecessor) ended as a copy at its look: stranded, no message.
    expect((await p.check()).violations).toEqual([]);
    expect(await waitOn(p, id, 1)).toMatchObject({ left: 1 });
    expect((await p.check()).violations).toEqual([]);
  });

  it('a copy meeting the book back places no order twice: the slice sells once, by the wait the record names', async () => {
    const { p, id } = await waiting();
    const message = await receiveWait(p, id);
    await Promise.all([p.handlers.liquidation(message), p.handlers.liquidation(message)]);
    await p.adapters.liquidationQueue.delete(message.receiptHandle);
    p.venue.faults.emptyBooks.delete('ETH-USD');
    await p.drain();
    expect(p.adapters.liquidations.all().find((l) => l.id === id)?.state).toMatch(/^SETTLED_/);
    expect(lastResortOrders(p, id)).toEqual([`${id}:last-resort:0`, `${id}:last-resort:1`]);
    expect((await p.check()).violations).toEqual([]);
  });
});

describe("an ended auction's step delivered again after its last resort began to wait (waits43-one-chain)", () => {
  /**
   * As lateness43-ended-settlement's: no bid left when the auction's planned step comes, no fund, no counterparty:
   * the auction ends EXHAUSTED and its settlement's last resort finds an empty book and waits. `lose` loses that
   * delivery at `crashAt` (a crash right after it), or its ack. (Not checked whole: the provider's capital is taken
   * out of the records, which the invariants count as used.)
   */
  async function endedIntoWait(lose: { crashAt: string } | 'ack') {
    const crash = crashOnceAt(typeof lose === 'string' ? 'none' : lose.crashAt);
    const { p, long, due } = await auctionEndingIntoWait(crash);
    const queue = p.adapters.auctionQueue;
    const remove = queue.delete.bind(queue);
    let lost = false;
    queue.delete = async (handle) => {
      if (lose === 'ack' && !lost && p.clock.nowMs() === due) {
        lost = true;
        return;
      }
      return remove(handle);
    };
    await p.runUntil(due);
    expect(crash.crashed() || lost).toBe(true);
    expect(await auctionOf(p, long.id)).toMatchObject({ state: 'EXHAUSTED', fills: [] });
    const id = liquidationOf(p, long.id).id;
    expect(liquidationOf(p, long.id).context?.lastResortAttempt).toBe(1);
    return { p, id };
  }

  it('its delivery died right after sending the wait: the redelivery sends one, and one of the two goes on', async () => {
    const { p, id } = await endedIntoWait({ crashAt: 'liquidationQueue.send' });
    // The redelivery, 30 s on, looks (the wait was not recorded sent): one quote, a wait of its own.
    expect(await waitOn(p, id, 1)).toMatchObject({ quotes: 1 });
    expect(p.errors).toEqual(['auctionSteps: liquidationQueue.send']);
    // The first wait comes back at 60 s and ends; the redelivery's looks at 150 s, 390 s, 870 s. Before: both did.
    expect(await waitOn(p, id, 15)).toEqual({ quotes: 3, left: 1 });
    expect(lastResortOrders(p, id)).toEqual([`${id}:last-resort:0`]);
  });

  it("its ack was lost: the step's redelivery finds the wait recorded and sends none", async () => {
    const { p, id } = await endedIntoWait('ack');
    // Before: the redelivery looked again and sent a second wait ("lastResortWaits: 2"), beside the first.
    expect(await waitOn(p, id, 0.5)).toEqual({ quotes: 0, left: 1 });
    // The looks at 60 s, 180 s, 420 s, 900 s on.
    expect(await waitOn(p, id, 15)).toEqual({ quotes: 4, left: 1 });
    expect(p.errors).toEqual([]);
    expect(lastResortOrders(p, id)).toEqual([`${id}:last-resort:0`]);
  });
});
