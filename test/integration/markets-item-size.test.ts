import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { itemBytes } from '../../shared/adapters/aws/item-size.ts';
import { REFUSAL_NOTES_PER_SECOND, TRACED_REFUSALS } from '../../shared/ports/index.ts';
import { motoStages } from '../support/moto.ts';

/**
 * review48-feed-trace-expiry: every accepted tick writes the market's item (an UpdateItem: a write unit a KB of the item
 * before or after, the larger), and each refusal trace adds to it. Measured on moto with the real adapter, values of
 * full width (13-digit sequences and stamps, 8-decimal prices); docs/PERFORMANCE.md gives these figures.
 */
const moto = motoStages('msize');

describe("the markets item's size, which every accepted tick's write is billed by", () => {
  it('a busy market passes 1 KB with two refusal traces, each about 90 bytes', async () => {
    const { clients, names, adapters } = await moto.stage();
    const m = adapters.markets;
    const sym = 'ETH-USD';
    const now = 1_796_609_377_191;
    const price = 176_412_345_678n;
    const seq = 1_796_609_377_178;
    const bytes = async () =>
      itemBytes(
        (
          await clients.dynamo.send(
            new GetItemCommand({ TableName: names.tables.markets, Key: { symbol: { S: sym } } }),
          )
        ).Item,
      );
    const print = (n: number) => ({
      sequence: seq + n,
      markPrice: price,
      indexPrice: price,
      timestampMs: now + n,
    });
    await m.acceptTick(sym, print(0), undefined, false);
    const plain = await bytes();
    let st = (await m.get(sym))!;
    // Liquidating (pending, a segment claimed), auctions asleep on both sides, providers, a last resort's fills.
    await m.acceptTick(sym, print(1), seq, true, {
      breakerTick: undefined,
      pendingSequence: undefined,
      lastTick: st.lastTick,
      bandAnchor: { markPrice: price, timestampMs: now },
    });
    st = (await m.get(sym))!;
    await m.claimSegment(sym, st.lastTick!, 1);
    for (const [side, d] of [
      ['BUY', -1n],
      ['SELL', 1n],
    ] as const) {
      await m.coverWakeMark(sym, side, price + d * 1_234_567n);
      await m.replaceWakeMark(sym, side, price + d * 1_234_567n, price + d * 2_345_678n, 1);
      await m.countLastResortFill(sym, side);
    }
    await m.bumpProvidersEpoch(sym);
    await m.markSpentWake(sym, 1);
    await m.recordRegistrationWake(
      sym,
      {
        epoch: 1,
        part: 3,
        wokenTo: { direction: 'SELL', id: 'auc-0123456789abcdef0123456789abcdef', step: 12, wakeMark: price },
      },
      undefined,
    );
    const busy = await bytes();
    const sizes = [busy];
    for (const [i, reason] of TRACED_REFUSALS.entries()) {
      await m.noteRefusal(sym, reason, {
        sequence: seq + 10 + i,
        timestampMs: now + 10,
        atMs: now + 11,
        count: 123,
        sinceMs: now - 86_400_000,
        notesInSecond: REFUSAL_NOTES_PER_SECOND,
      });
      sizes.push(await bytes());
    }
    const traces = sizes.slice(1).map((s, i) => s - sizes[i]!);
    expect(plain).toBe(159);
    expect(busy).toBe(890);
    expect(Math.min(...traces)).toBeGreaterThanOrEqual(85);
    expect(Math.max(...traces)).toBeLessThanOrEqual(100);
    // One trace keeps it under 1 KB; two make every accepted tick 2 write units instead of 1, as all nine do.
    expect(sizes[1]).toBeLessThan(1024);
    expect(sizes[2]).toBeGreaterThan(1024);
    expect(sizes[9]).toBe(1712);
  });
});
