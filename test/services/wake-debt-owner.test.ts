import { describe, expect, it } from 'vitest';
import { price } from '../../shared/domain/units.ts';
import type { AuctionStepMessage } from '../../shared/ports/index.ts';
import { encodeMessage } from '../../shared/schemas/messages.ts';
import { auctionRecord } from '../support/auction-records.ts';
import { createPipeline, type Pipeline } from '../support/pipeline.ts';

/**
 * review44-debt-owner-lost: a spent wake's debt is failed (retried, dead-lettered) only by the delivery that owns it
 * (capped44-stale-run-quiet); another that finds it ends quietly unless its own try wrote the record. Its try's
 * write could beat the owner's: the owner, its write lost, took the debt for moved on and ended, while the other
 * failed once and its retry, owning nothing, ended quietly: the debt kept with no message alive to pay it.
 *
 * Auction `auc-a`, RUNNING at step 5, owes ETH-USD's sleepers a wake (its step 4's fills spent a provider); its next step
 * is 15 minutes away. Step 4's message (the owner, the retry of the delivery that could not pay) and a stale message
 * of step 2 (an SQS duplicate) are delivered at once, while every read of the sleepers index fails.
 */
async function owedWake(): Promise<{ p: Pipeline; deliver: (m: AuctionStepMessage) => Promise<boolean> }> {
  const p = createPipeline();
  await p.tick('ETH-USD', '200'); // a market's first print waits for a second
  await p.tick('ETH-USD', '200');
  const now = p.clock.nowMs();
  await p.adapters.auctions.create(
    auctionRecord('auc-a', {
      step: 5,
      startedAtMs: now - 60_000,
      stepDueAtMs: now + 900_000,
      spentIn: ['ETH-USD'],
    }),
  );
  await p.adapters.auctions.create(auctionRecord('s-1', { wakeMark: price('150') }));
  let delivery = 0;
  const deliver = (m: AuctionStepMessage) =>
    p.handlers
      .auction({
        messageId: `d${++delivery}`,
        body: encodeMessage(m),
        receiptHandle: '',
        receiveCount: 1,
        sentAtMs: 0,
      })
      .then(
        () => true,
        () => false,
      );
  return { p, deliver };
}

const stepMessage = (step: number, dueAtMs: number): AuctionStepMessage => ({
  auctionId: 'auc-a',
  step,
  symbol: 'ETH-USD',
  dueAtMs,
});

describe('a wake debt keeps an owner alive when a stale delivery wrote it before the owner (review44-debt-owner-lost)', () => {
  it("the stale delivery's retry owns the debt its write beat the owner's to: it fails until it pays", async () => {
    const { p, deliver } = await owedWake();
    const owner = stepMessage(4, p.clock.nowMs() - 30_000);
    const stale = stepMessage(2, p.clock.nowMs() - 200_000);
    let failing = true;
    let raced: boolean | undefined;
    const auctions = p.adapters.auctions;
    const sleepers = auctions.sleepers.bind(auctions);
    auctions.sleepers = async (...args) => {
      // The owner's delivery reads the sleepers: the stale one, which read the record as it did, runs meanwhile.
      if (raced === undefined) {
        raced = false;
        raced = await deliver(stale);
      }
      if (failing) throw new Error('ProvisionedThroughputExceededException');
      return sleepers(...args);
    };
    const ownerOk = await deliver(owner);
    // The stale delivery's try wrote the record (the wake's beginning) and failed; the owner's write lost to it.
    expect(raced).toBe(false);
    expect((await auctions.get('auc-a'))?.spentWakeBegan).toBeDefined();
    expect(ownerOk).toBe(true);
    // The stale message comes back: the wake still fails. Before: it ended quietly, and no message was left to pay.
    expect(await deliver(stale)).toBe(false);
    expect((await auctions.get('auc-a'))?.spentIn).toEqual(['ETH-USD']);
    // The fault gone, its next retry pays.
    failing = false;
    expect(await deliver(stale)).toBe(true);
    expect((await auctions.get('auc-a'))?.spentIn).toBeUndefined();
    // The owner's message, were it alive still, would end quietly: one owner.
    expect(await deliver(owner)).toBe(true);
  });
});
