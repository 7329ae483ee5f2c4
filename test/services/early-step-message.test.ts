import { describe, expect, it } from 'vitest';
import { DEFAULT_RISK_CONFIG_INPUT, parseRiskConfig } from '../../shared/domain/config.ts';
import { METRICS } from '../../shared/metrics.ts';
import type { AuctionRecord, ReceivedMessage } from '../../shared/ports/index.ts';
import { parseAuctionStepMessage } from '../../shared/schemas/messages.ts';
import { MAX_EARLY_STEP_WAITS } from '../../shared/services/auction.ts';
import { auctionOf, auctionRecord, liquidationOf } from '../support/auction-records.ts';
import { createPipeline, type Pipeline } from '../support/pipeline.ts';

/**
 * early43: a step's next-step message is sent before the step's commit and is due after the step's delay. A commit
 * that takes longer (DynamoDB retrying a conflicted or throttled transaction, a step planned close to its next
 * boundary) let the message come first: its delivery found the auction a step behind, took it for a stale twin and
 * ended, and once the commit landed the auction was RUNNING with no message for its step (its liquidation in AUCTION
 * until the overdue watch, an hour later). Now such a message comes back to look again, a bounded number of times.
 *
 * A 10 ETH long bankrupt at 180, crossed at 175 over an empty book, a curve of 4 s steps: lp-1 takes at 5 % under the
 * mark with the capital for about 2 ETH, lp-2 at 7 % all the rest. The step that reaches lp-1's bid fills it and
 * sleeps until lp-2's, two steps (8 s) later, which clears the lot.
 */
async function partlyFilled(): Promise<{ p: Pipeline; positionId: string }> {
  const config = parseRiskConfig({
    ...DEFAULT_RISK_CONFIG_INPUT,
    auction: {
      ...DEFAULT_RISK_CONFIG_INPUT.auction,
      curve: { kind: 'stairstep', cut: '0.99', stepSeconds: 4 },
    },
  });
  const p = createPipeline({ config });
  await p.fund('10000');
  await p.tick('ETH-USD', '200'); // a market's first print waits for a second
  await p.tick('ETH-USD', '200');
  const long = await p.open('LONG', '10', '200', '200');
  await p.provider('lp-1', '340', '0.05', '100');
  await p.provider('lp-2', '100000', '0.07', '100');
  p.venue.faults.emptyBooks.add('ETH-USD');
  await p.tick('ETH-USD', '175');
  return { p, positionId: long.id };
}

/**
 * The commit of the step that fills lp-1 takes `seconds`: meanwhile the messages that fall due are delivered, second
 * by second, as SQS would. Returns each such delivery's step and outcome.
 */
function slowFillCommit(p: Pipeline, seconds: number, consumerFrom = 0): string[] {
  return slowCommit(
    p,
    (record) => record.state === 'RUNNING' && record.fills.length > 0,
    seconds,
    consumerFrom,
  );
}

/**
 * The first commit of an auction record `slow` picks takes `seconds`: meanwhile the messages that fall due are
 * delivered second by second, from `consumerFrom` s into it (a consumer behind until then). Returns each such
 * delivery's step and outcome.
 */
function slowCommit(
  p: Pipeline,
  slow: (record: AuctionRecord) => boolean,
  seconds: number,
  consumerFrom = 0,
): string[] {
  const seen: string[] = [];
  const transactor = p.adapters.transactor;
  const commit = transactor.commit.bind(transactor);
  let armed = true;
  transactor.commit = async (writes, providersUnchanged) => {
    const auction = writes.find((w) => w.kind === 'auction');
    if (armed && auction && slow(auction.record)) {
      armed = false;
      const queue = p.adapters.auctionQueue;
      for (let s = 1; s <= seconds; s++) {
        p.clock.advance(1000);
        if (s < consumerFrom) continue;
        for (const m of await queue.receive(10, 30)) {
          const outcome = await p.handlers.auction(m as ReceivedMessage);
          seen.push(`${parseAuctionStepMessage(m.body).step}: ${outcome.status}`);
          await queue.delete(m.receiptHandle);
        }
      }
    }
    return commit(writes, providersUnchanged);
  };
  return seen;
}

describe("a step's message that comes before its step's commit waits for it (early43)", () => {
  it("a step not capped whose commit takes longer than its next step's delay: the message finds its step after it", async () => {
    const { p, positionId } = await partlyFilled();
    const seen = slowFillCommit(p, 10);
    await p.drain();
    const auction = await auctionOf(p, positionId);
    // Before: the message came at 8 s, found the auction a step behind and ended ('stale'); the commit landed at 10 s
    // and the auction stayed RUNNING with no message for its step, its liquidation in AUCTION.
    expect(auction.state).toBe('CLEARED');
    expect(seen).toEqual(['1: early']);
    expect(auction.fills.map((f) => f.providerId)).toEqual(['lp-1', 'lp-2']);
    expect(liquidationOf(p, positionId).state).not.toBe('AUCTION');
    expect(p.errors).toEqual([]);
    expect(await p.check()).toMatchObject({ violations: [] });
    // It ran 3 s after its commit, 5 s after it was due: no lateness of the consumer's (counted from its wait).
    const lateness = p.telemetry.observations.filter((o) => o.metric === METRICS.AuctionStepLateness.name);
    expect(Math.max(...lateness.map((o) => o.value))).toBeLessThanOrEqual(1);
  });

  it("a commit that lands after the message's last look: the step's delivery sends the step again (review43c-slow-commit-resend)", async () => {
    const { p, positionId } = await partlyFilled();
    // Due at 8 s, the message looks at 8, 13, 18 and 23 s, then ends; the commit lands at 25 s.
    const seen = slowFillCommit(p, 25);
    await p.drain();
    expect(seen).toEqual(['1: early', '1: early', '1: early', '1: stale']);
    const auction = await auctionOf(p, positionId);
    // Before: RUNNING at step 1 with no message for it, its liquidation in AUCTION (the overdue watch, an hour later).
    expect(auction.state).toBe('CLEARED');
    expect(auction.fills.map((f) => f.providerId)).toEqual(['lp-1', 'lp-2']);
    expect(liquidationOf(p, positionId).state).not.toBe('AUCTION');
    expect(p.errors).toEqual([]);
    expect(await p.check()).toMatchObject({ violations: [] });
  });

  it("an early message's first delivery, late itself, reports that lateness once, when its step is taken (early44-lateness)", async () => {
    const { p, positionId } = await partlyFilled();
    const lateness = () =>
      p.telemetry.observations
        .filter((o) => o.metric === METRICS.AuctionStepLateness.name)
        .map((o) => o.value);
    await p.runUntil(p.clock.nowMs());
    const before = lateness().length;
    // Step 1's message is due 8 s into the 15 s commit; the consumer is behind and takes it only at 14 s (6 s late),
    // then it waits for the commit and takes its step at 19 s, on time after its wait.
    const seen = slowFillCommit(p, 15, 14);
    await p.drain();
    expect(seen).toEqual(['1: early']);
    expect((await auctionOf(p, positionId)).state).toBe('CLEARED');
    expect(p.errors).toEqual([]);
    // Step 0's (which fills lp-1) and step 1's (lp-2's, taken after its wait): the 6 s its first delivery came late,
    // once, with none of the commit's wait (before: 0, the first delivery reported nothing and its wait's was on time).
    expect(lateness().slice(before)).toEqual([0, 6]);
  });

  it("a reset's commit that lands after its next step's message's last look: the reset's delivery sends the step again (review43c-slow-commit-resend, reset44-resend-test)", async () => {
    // 2 s steps, a 12 s tail: lp-1's bid, 1 % under the mark, is reached 6 s into a curve begun at that mark.
    const config = parseRiskConfig({
      ...DEFAULT_RISK_CONFIG_INPUT,
      auction: {
        ...DEFAULT_RISK_CONFIG_INPUT.auction,
        curve: { kind: 'stairstep', cut: '0.99', stepSeconds: 2 },
        tailSeconds: 12,
      },
    });
    const p = createPipeline({ config });
    await p.fund('10000');
    await p.tick('ETH-USD', '200'); // a market's first print waits for a second
    await p.tick('ETH-USD', '200');
    const long = await p.open('LONG', '10', '200', '200');
    await p.provider('lp-1', '100000', '0.01', '100');
    p.venue.faults.emptyBooks.add('ETH-USD');
    await p.tick('ETH-USD', '184');
    await p.runUntil(p.clock.nowMs() + 1000);

    // The mark falls: the curve begun at 184 never reaches the bid before its tail, the one a reset begins at 175 does.
    await p.tick('ETH-USD', '175');
    const seen = slowCommit(p, (record) => record.resets === 1 && record.state === 'RUNNING', 25);
    await p.drain();

    // Its step's message looked four times and ended, before the reset's commit landed.
    expect(seen).toEqual(['1: early', '1: early', '1: early', '1: stale']);
    const auction = await auctionOf(p, long.id);
    // Without the reset's resend: RUNNING after its reset with no message for its step, its liquidation in AUCTION.
    expect(auction).toMatchObject({ state: 'CLEARED', resets: 1 });
    expect(liquidationOf(p, long.id).state).not.toBe('AUCTION');
    expect(p.errors).toEqual([]);
    expect(await p.check()).toMatchObject({ violations: [] });
  });

  it('a commit that never lands: the message ends after its waits, and the redelivery of the step plans it again', async () => {
    const { p, positionId } = await partlyFilled();
    const transactor = p.adapters.transactor;
    const commit = transactor.commit.bind(transactor);
    let dying = true;
    // The delivery of the filling step dies before its commit: SQS redelivers its message after the 30 s visibility.
    transactor.commit = async (writes, providersUnchanged) => {
      const auction = writes.find((w) => w.kind === 'auction');
      if (dying && auction?.record.state === 'RUNNING' && auction.record.fills.length > 0) {
        dying = false;
        throw new Error('the delivery died');
      }
      return commit(writes, providersUnchanged);
    };
    const sent: number[] = [];
    const queue = p.adapters.auctionQueue;
    const send = queue.send.bind(queue);
    queue.send = async (body, delaySeconds) => {
      const m = parseAuctionStepMessage(body);
      if (m.earlyWaits !== undefined) sent.push(m.earlyWaits);
      return send(body, delaySeconds);
    };
    await p.drain();
    // The orphan message looked 1 + 3 times, then ended; the redelivered step sent its own, which ran.
    expect(sent).toEqual([1, 2, 3]);
    expect(MAX_EARLY_STEP_WAITS).toBe(3);
    const auction = await auctionOf(p, positionId);
    expect(auction.state).toBe('CLEARED');
    expect(auction.fills.map((f) => f.providerId)).toEqual(['lp-1', 'lp-2']);
    expect(liquidationOf(p, positionId).state).not.toBe('AUCTION');
    expect(p.errors).toEqual(['auctionSteps: the delivery died']);
    expect(await p.check()).toMatchObject({ violations: [] });
  });

  it('a message ahead of an ended auction, or two steps ahead of a running one, ends at once: no wait', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '200');
    await p.adapters.auctions.create(
      auctionRecord('ended', { state: 'EXHAUSTED', endedBy: 'plan', step: 5 }),
    );
    await p.adapters.auctions.create(auctionRecord('running', { step: 5 }));
    const queue = p.adapters.auctionQueue;
    const sent: string[] = [];
    queue.send = async (body) => {
      sent.push(body);
    };
    const deliver = (message: object) =>
      p.handlers.auction({
        messageId: 'm',
        body: JSON.stringify({ symbol: 'ETH-USD', ...message }),
        receiptHandle: '',
        receiveCount: 1,
        sentAtMs: 0,
      });
    // A tick's wake of the ended auction's next step (a twin of no step): no commit moves an ended auction on.
    expect(await deliver({ auctionId: 'ended', step: 6, woken: true })).toEqual({ status: 'stale' });
    expect(await deliver({ auctionId: 'running', step: 7 })).toEqual({ status: 'stale' });
    // Behind: a stale twin, as before.
    expect(await deliver({ auctionId: 'running', step: 4 })).toEqual({ status: 'stale' });
    expect(sent).toEqual([]);
    // One step ahead, past its waits.
    expect(await deliver({ auctionId: 'running', step: 6, earlyWaits: MAX_EARLY_STEP_WAITS })).toEqual({
      status: 'stale',
    });
    expect(sent).toEqual([]);
  });
});
