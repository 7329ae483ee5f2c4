import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { describe, expect, it } from 'vitest';
import { parsePrice } from '../../shared/domain/units.ts';
import { replayPrices } from '../../shared/local/ticks.ts';

const T0 = Date.UTC(2020, 2, 12);
const points = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    timestampMs: T0 + i * 60_000,
    price: parsePrice(String(130 - i / 10)),
  }));

describe('replay flow control', () => {
  it('never has more than `limit` ticks sent and not handled (docs: "at most 20")', async () => {
    let clock = 0;
    let handled = 0; // the stack handles one tick per poll
    let lastSent = 0;
    let maxUnhandled = 0;
    const events = {
      send: async (command: { input: { Entries: { Detail?: string }[] } }) => {
        const entries = command.input.Entries;
        lastSent = JSON.parse(entries[entries.length - 1]!.Detail!).sequence as number;
        maxUnhandled = Math.max(maxUnhandled, lastSent - handled);
        return { Entries: entries.map(() => ({ EventId: 'x' })) };
      },
    } as unknown as EventBridgeClient;
    await replayPrices({
      points: points(100),
      symbol: 'ETH-USD',
      busName: 'bus',
      events,
      speed: { kind: 'max' },
      firstSequence: 1,
      now: () => clock,
      sleep: async (ms) => {
        clock += ms;
      },
      backlog: {
        limit: 20,
        handled: async () => {
          handled = Math.min(handled + 1, lastSent);
          return handled === 0 ? undefined : handled;
        },
        stallMs: 60_000,
        pollMs: 250,
      },
    });
    // Before: a batch of 10 went whenever fewer than 20 were unhandled, up to 29 at once.
    expect(maxUnhandled).toBeLessThanOrEqual(20);
  });
});
