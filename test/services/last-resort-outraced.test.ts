import { describe, expect, it } from 'vitest';
import { marketConfig, parseRiskConfig } from '../../shared/domain/config.ts';
import { parseLiquidationMessage } from '../../shared/schemas/messages.ts';
import {
  LAST_RESORT_MAX_WAIT_MS,
  LAST_RESORT_WAITS,
  LiquidationStuckError,
  lastResortWaitSeconds,
  processLiquidation,
} from '../../shared/services/liquidation.ts';
import { createPipeline, type Pipeline } from '../support/pipeline.ts';
import { AUCTION_ONLY } from '../support/risk-configs.ts';

/**
 * A slice that has waited long for the book looks at it least often (its waits double up to 900 s), so siblings
 * that look more often take the book each time it comes back. Those waits must not count towards its dead letter:
 * it would page an operator while the book refills (found by the pipeline fuzz, ADL-heavy seed 684129).
 */
describe('a last resort outraced by its siblings', () => {
  /** Two longs liquidated into an empty book: both first orders filled nothing, both wait. */
  async function twoWaiting() {
    const p = createPipeline({ config: parseRiskConfig(AUCTION_ONLY) });
    await p.tick('ETH-USD', '200');
    const a = await p.open('LONG', '10', '200', '200');
    const b = await p.open('LONG', '10', '200', '200');
    p.venue.faults.emptyBooks.add('ETH-USD');
    await p.tick('ETH-USD', '184');
    for (const m of await p.adapters.liquidationQueue.receive(10, 30)) {
      await p.handlers.liquidation(m);
      await p.adapters.liquidationQueue.delete(m.receiptHandle);
    }
    const of = (positionId: string) =>
      p.adapters.liquidations.all().find((l) => l.positionId === positionId)!.id;
    const waiting = p.adapters.liquidations.all();
    expect(waiting.map((l) => l.context?.lastResortAttempt)).toEqual([1, 1]);
    return { p, older: of(a.id), sibling: of(b.id) };
  }

  /** The message the liquidation `id` waits with on the queue (the last sent). */
  function waitMessageOf(p: Pipeline, id: string) {
    const bodies = p.adapters.liquidationQueue
      .pending()
      .map((m) => parseLiquidationMessage(m.body))
      .filter((m) => m.liquidationId === id);
    return bodies.at(-1);
  }

  it('does not count a wait after which a sibling took the book towards the dead letter; one without does', async () => {
    const { p, older, sibling } = await twoWaiting();
    const lastWait = LAST_RESORT_WAITS - 1;
    const fillsBefore = (await p.adapters.markets.get('ETH-USD'))?.lastResortFills?.SELL ?? 0;

    // The book comes back for the sibling's look only: its last resort sells, and the market counts the fill.
    p.venue.faults.emptyBooks.delete('ETH-USD');
    await processLiquidation({ liquidationId: sibling, lastResortWaits: 1 }, p.deps);
    p.venue.faults.emptyBooks.add('ETH-USD');
    expect(p.adapters.liquidations.all().find((l) => l.id === sibling)?.settlement).toBeDefined();
    const fillsAfter = (await p.adapters.markets.get('ETH-USD'))?.lastResortFills?.SELL;
    expect(fillsAfter).toBe(fillsBefore + 1);

    // The older slice looks on its last counted wait, having seen the count before the sibling's fill: no dead
    // letter; its message counts that wait as outraced, and the count it saw. It waits longer, as after any wait.
    const before = p.telemetry.total('LastResortWaitsOutraced');
    const sentBefore = p.adapters.liquidationQueue.pending().length;
    await expect(
      processLiquidation(
        { liquidationId: older, lastResortWaits: lastWait, lastResortFillsSeen: fillsBefore },
        p.deps,
      ),
    ).resolves.toMatchObject({ liquidationId: older });
    expect(p.telemetry.total('LastResortWaitsOutraced')).toBe(before + 1);
    expect(p.adapters.liquidationQueue.pending()).toHaveLength(sentBefore + 1);
    const next = waitMessageOf(p, older);
    expect(next).toEqual({
      liquidationId: older,
      lastResortWaits: lastWait + 1,
      // The wait the record names (a copy of this message ends: waits43-one-chain).
      lastResortWaitId: expect.any(String),
      // The wait it followed, named until this one is (review43b-wait-before-named).
      lastResortWaitAfter: expect.any(String),
      lastResortWaitsOutraced: 1,
      lastResortFillsSeen: fillsAfter,
      // Sent without it (judged at no mark): planned again at the mark of now, then waiting on.
      adlJudgedAtE8: '18400000000',
      dueAtMs: expect.any(Number),
    });
    const firstWait = marketConfig(p.deps.config, 'ETH-USD').lastResortWaitSeconds;
    expect(next!.dueAtMs! - p.clock.nowMs()).toBe(lastResortWaitSeconds(firstWait, lastWait) * 1000);

    // Its next look finds no fill since: that wait counts, and was its last.
    await expect(processLiquidation(next!, p.deps)).rejects.toThrow(LiquidationStuckError);
    await expect(processLiquidation(next!, p.deps)).rejects.toThrow(/waterfall\/no-liquidity/);
    expect(p.telemetry.total('LastResortWaitsOutraced')).toBe(before + 1);
    expect((await p.check()).violations).toEqual([]);
  });

  it('still dead-letters a slice that has waited a day, however often siblings took the book', async () => {
    const { p, older, sibling } = await twoWaiting();
    p.venue.faults.emptyBooks.delete('ETH-USD');
    await processLiquidation({ liquidationId: sibling, lastResortWaits: 1 }, p.deps);
    p.venue.faults.emptyBooks.add('ETH-USD');
    const message = { liquidationId: older, lastResortWaits: 2, lastResortFillsSeen: 0 };

    // A day less a second after its first empty order: outraced, it waits on.
    const firstEmpty = p.adapters.liquidations
      .all()
      .find((l) => l.id === older)!
      .history.find((e) => e.note === 'last resort 0 filled nothing')!.atMs;
    p.clock.advance(firstEmpty + LAST_RESORT_MAX_WAIT_MS - 1_000 - p.clock.nowMs());
    await p.tick('ETH-USD', '184');
    await expect(processLiquidation(message, p.deps)).resolves.toMatchObject({ liquidationId: older });

    // A day after it: the outrace no longer holds it; the wait it sent fails with the reason, for a retry and the
    // dead letter.
    p.clock.advance(1_000);
    await expect(processLiquidation(waitMessageOf(p, older)!, p.deps)).rejects.toThrow(
      /waterfall\/no-liquidity: .* \(nothing within the bound after 3 waits, 1 of them outraced, 1440 min\)/,
    );
  });

  it("a delivery without its message's counts knows the outraced waits from the record (review, session 33)", async () => {
    const { p, older } = await twoWaiting();
    // Each look finds the book back within the bound, but a sibling's last resort takes it first: the quote
    // reaches, the order fills nothing (an attempt more), and the market had counted a fill since the last look.
    let message = waitMessageOf(p, older)!;
    for (let look = 0; look < LAST_RESORT_WAITS + 2; look++) {
      await p.adapters.markets.countLastResortFill('ETH-USD', 'SELL');
      p.venue.faults.emptyBooks.delete('ETH-USD');
      p.orders.afterQuote = () => p.venue.faults.emptyBooks.add('ETH-USD');
      await processLiquidation(message, p.deps);
      message = waitMessageOf(p, older)!;
    }
    p.orders.afterQuote = undefined;
    const record = p.adapters.liquidations.all().find((l) => l.id === older)!;
    expect(record.context?.lastResortAttempt).toBeGreaterThan(LAST_RESORT_WAITS);
    expect(record.context?.lastResortOutraced).toBe(LAST_RESORT_WAITS + 2);
    expect(message.lastResortWaitsOutraced).toBe(LAST_RESORT_WAITS + 2);

    // The auction's end delivered again, or a copy of the start, carries no counts: it waits on, not dead-letters.
    await expect(processLiquidation({ liquidationId: older }, p.deps)).resolves.toMatchObject({
      liquidationId: older,
    });
    expect(waitMessageOf(p, older)?.lastResortWaitsOutraced).toBe(LAST_RESORT_WAITS + 2);
  });
});
