import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createAwsAdapters } from '../../shared/adapters/aws/index.ts';
import { systemClock } from '../../shared/adapters/embedded/clock.ts';
import { parsePrice } from '../../shared/domain/units.ts';
import { publishTicks, TickPublishError } from '../../shared/feed/publisher.ts';
import { type LocalStack, startLocalStack } from '../../shared/local/stack.ts';
import { nextSequence } from '../../shared/local/ticks.ts';
import { type MotoServer, startMoto } from '../support/moto.ts';

/**
 * A feed's engineer's first day, from docs/FEED.md alone (session 50): its publisher ("The publisher", copied as the
 * page gives it) and a raw PutEvents built from its tables ("The event", as a publisher in another language would),
 * against the local stack the page says to test on ("Testing a publisher locally": stage `local`, its bus
 * `backstop-local-ticks` in us-east-1, any credentials), whose real margin-check judges what the bus delivers. The page's
 * snippets are held to this file by test/unit/feed-doc.test.ts.
 */

/** FEED.md's publisher: the page's lines from `const next` to the end of `publish`, on the test's client and bus. */
function docPublisher(events: EventBridgeClient, BUS: string) {
  const next = new Map<string, number>(); // each market's next sequence: persist it, or start from nextSequence

  // Every second, one tick per market per call; a price that did not move is sent again, observed now.
  // Awaited: the next call starts once this one has returned (two ticks of a market in flight may land out of order).
  async function publish(prices: ReadonlyMap<string, { price: string; observedAtMs: number }>) {
    const ticks = [...prices].map(([symbol, { price, observedAtMs }]) => {
      const sequence = next.get(symbol)!;
      next.set(symbol, sequence + 1); // a number is spent once sent, put or not: never reused for another price
      return { symbol, markPrice: price, timestampMs: observedAtMs, sequence, source: 'exchange-a' };
    });
    try {
      await publishTicks(events, BUS, ticks);
    } catch (error) {
      if (!(error instanceof TickPublishError)) throw error; // malformed ticks: a bug
      // Alert on it (refused: the policy, a bad entry, throttled to the end; unknown: the network or the service);
      // the next second's ticks supersede these.
      console.error(error.message);
    }
  }

  return { next, publish };
}

let moto: MotoServer | undefined;
let stack: LocalStack | undefined;
let events: EventBridgeClient;

beforeAll(async () => {
  moto = await startMoto();
  // The page's client, on this emulator's port (`local up` listens on 4599).
  events = new EventBridgeClient({
    region: 'us-east-1',
    endpoint: moto.endpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
});

// Each test on a stack of its own, its markets never ticked: the stage's names are the page's, so the emulator is
// emptied between (venue50-feed-doc-alone: the second test read the market the first had opened).
beforeEach(async () => {
  await moto!.reset();
  // What `backstop local up` starts: the stage `local`, in us-east-1, the built-in markets.
  stack = await startLocalStack({ endpoint: moto!.endpoint, stage: 'local' });
});

afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

afterAll(async () => {
  events?.destroy();
  await moto?.stop();
});

const markets = () =>
  createAwsAdapters({ clients: stack!.clients, names: stack!.names, clock: systemClock }).markets;

// One after another whatever the run's settings (--sequence.concurrent): each test's stack is the file's one `stack`,
// and its start empties the emulator under the other (review50-venue-feed-doc-sequential).
describe('a publisher written from docs/FEED.md, on the local stack', { concurrent: false }, () => {
  it("puts ticks margin-check accepts: two to open a market, then one a second, a heartbeat's included", async () => {
    expect(stack!.names.busName).toBe('backstop-local-ticks');
    const errors = vi.spyOn(console, 'error');
    const { next, publish } = docPublisher(events, 'backstop-local-ticks');
    // "A publisher that lost its count resumes from the market's own": nextSequence, as `backstop status --json` says it.
    for (const symbol of ['ETH-USD', 'BTC-USD'])
      next.set(symbol, await nextSequence(markets(), symbol, Date.now()));
    const first = { eth: next.get('ETH-USD')!, btc: next.get('BTC-USD')! };
    const second = (prices: [string, string]) =>
      new Map([
        ['ETH-USD', { price: prices[0], observedAtMs: Date.now() }],
        ['BTC-USD', { price: prices[1], observedAtMs: Date.now() }],
      ]);
    // "A market's first print is never trusted alone": held until a second within the band.
    await publish(second(['1520.5', '68000.12345678']));
    await stack!.runner.runUntilIdle({ deadlineMs: 30_000 });
    expect((await markets().get('ETH-USD'))?.lastTick).toBeUndefined();
    expect((await markets().get('ETH-USD'))?.breaker?.reason).toBe('tick/unconfirmed');
    await publish(second(['1520.75', '68001']));
    await stack!.runner.runUntilIdle({ deadlineMs: 30_000 });
    // The price is exact end to end: the page's decimal strings, in units of 1e-8.
    expect((await markets().get('ETH-USD'))?.lastTick).toMatchObject({
      sequence: first.eth + 1,
      markPrice: parsePrice('1520.75'),
    });
    expect((await markets().get('BTC-USD'))?.lastTick).toMatchObject({ sequence: first.btc + 1 });
    // "Keep ticking while the price stands still": the last price again, under a new sequence, observed now.
    await publish(second(['1520.75', '68001']));
    await stack!.runner.runUntilIdle({ deadlineMs: 30_000 });
    expect((await markets().get('ETH-USD'))?.lastTick?.sequence).toBe(first.eth + 2);
    expect((await markets().get('BTC-USD'))?.lastTick?.sequence).toBe(first.btc + 2);
    expect(errors).not.toHaveBeenCalled();
    errors.mockRestore();
    expect(stack!.runner.errors).toEqual([]);
  });

  it('a raw PutEvents entry built from "The event" alone (a publisher in another language) is accepted', async () => {
    // The ISO form of the stamp, with a zone, and an index within indexBand of the mark.
    const entry = (sequence: number, markPrice: string, indexPrice: string) => ({
      EventBusName: 'backstop-local-ticks',
      Source: 'backstop.prices',
      DetailType: 'PriceTick',
      Detail: JSON.stringify({
        symbol: 'ETH-USD',
        markPrice,
        indexPrice,
        timestamp: new Date().toISOString(),
        sequence,
        source: 'exchange-b',
      }),
    });
    const put = async (sequence: number, markPrice: string, indexPrice: string) => {
      const answer = await events.send(
        new PutEventsCommand({ Entries: [entry(sequence, markPrice, indexPrice)] }),
      );
      expect(answer.FailedEntryCount).toBe(0);
      await stack!.runner.runUntilIdle({ deadlineMs: 30_000 });
    };
    const sequence = await nextSequence(markets(), 'ETH-USD', Date.now());
    // Its market's first print, held until a second agrees; then the second, taken.
    await put(sequence, '1520.8', '1520.7');
    expect((await markets().get('ETH-USD'))?.breaker?.reason).toBe('tick/unconfirmed');
    await put(sequence + 1, '1521', '1520.9');
    expect((await markets().get('ETH-USD'))?.lastTick).toMatchObject({
      sequence: sequence + 1,
      markPrice: parsePrice('1521'),
    });
    expect(stack!.runner.errors).toEqual([]);
  });
});
