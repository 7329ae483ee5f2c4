import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { describe, expect, it } from 'vitest';
import { REPLAY_AHEAD_LIMIT, REPLAY_POLL_MS } from '../../cli/ops/events.ts';
import { parsePrice } from '../../shared/domain/units.ts';
import { handledTicks, replayPrices } from '../../shared/local/ticks.ts';
import { parseTickDetail } from '../../shared/schemas/tick.ts';
import type { TickOutcome } from '../../shared/services/margin-check.ts';
import { createPipeline } from '../support/pipeline.ts';

/**
 * review46-replay-order: EventBridge keeps no order between events, so ticks of one market in flight together may
 * reach margin-check in either order, and the older, landing second, is refused as out of order. moto and the local
 * runner deliver in order, which hid it: here the bus delivers the ticks in flight newest first, EventBridge's worst
 * case, to the real margin-check on the embedded adapters.
 */
describe('backstop replay at max speed on a bus that delivers ticks in flight newest first', () => {
  it('loses no tick: one tick a PutEvents, each once the market has handled the one before', async () => {
    const p = createPipeline();
    await p.tick('ETH-USD', '130', { sequence: 0 }); // a market's first print waits for a second
    await p.tick('ETH-USD', '130', { sequence: 1 });
    const calls: number[][] = [];
    // What the bus took and when (the fake clock): a tick reaches margin-check once time has passed since.
    const inFlight: { detail: string; putAtMs: number }[] = [];
    const events = {
      send: async (command: { input: { Entries?: { Detail?: string }[] } }) => {
        const entries = command.input.Entries ?? [];
        calls.push(entries.map((e) => (JSON.parse(e.Detail!) as { sequence: number }).sequence));
        inFlight.push(...entries.map((e) => ({ detail: e.Detail!, putAtMs: p.clock.nowMs() })));
        return { Entries: entries.map((_, i) => ({ EventId: `e${calls.length}.${i}` })) };
      },
    } as unknown as EventBridgeClient;
    const outcomes: TickOutcome[] = [];
    // The stack, as the replay looks at the market: every tick put before now is delivered, newest first.
    const deliver = async (beforeMs: number) => {
      const due = inFlight.filter((t) => t.putAtMs < beforeMs);
      inFlight.splice(0, due.length);
      for (const { detail } of due.reverse()) {
        const parsed = parseTickDetail(JSON.parse(detail));
        if (!parsed.ok) throw new Error(parsed.reason);
        outcomes.push(await p.deliverTick(parsed.tick));
      }
    };
    const handled = async () => {
      await deliver(p.clock.nowMs());
      return handledTicks(p.adapters.markets, 'ETH-USD');
    };
    const prices = Array.from({ length: 12 }, (_, i) => (130 - i / 10).toFixed(1));
    const t0 = p.clock.nowMs();
    const outcome = await replayPrices({
      points: prices.map((price, i) => ({ timestampMs: t0 + i * 60_000, price: parsePrice(price) })),
      symbol: 'ETH-USD',
      busName: 'bus',
      events,
      speed: { kind: 'max' },
      firstSequence: 2,
      now: () => p.clock.nowMs(),
      sleep: async (ms) => p.clock.advance(ms),
      // As `backstop replay` runs it.
      backlog: { limit: REPLAY_AHEAD_LIMIT, stallMs: 60_000, pollMs: REPLAY_POLL_MS, handled },
    });
    await deliver(Number.POSITIVE_INFINITY);
    expect(outcome).toMatchObject({ sent: 12, accepted: 12, rejected: [] });
    // Before: two ticks a call (the replay kept 2 ahead), delivered newest first: every other one out of order.
    expect(outcomes.filter((o) => o.status === 'rejected')).toEqual([]);
    expect(outcomes).toHaveLength(12);
    expect(calls).toEqual(Array.from({ length: 12 }, (_, i) => [2 + i]));
    expect((await p.adapters.markets.get('ETH-USD'))?.lastTick).toMatchObject({
      sequence: 13,
      markPrice: parsePrice('128.9'),
    });
  });
});
