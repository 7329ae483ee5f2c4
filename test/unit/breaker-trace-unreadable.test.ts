import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import type { Item } from '../../shared/adapters/aws/codec.ts';
import { marketFromItem, refusalAttr } from '../../shared/adapters/aws/markets.ts';

/**
 * final47-breaker-trace-unreadable: `breaker.confirming` is a trace no rule of margin-check reads (feed47-replay-breaker,
 * its write best effort: follow47-breaker-trace-best-effort), yet marketFromItem read it strictly, so a trace that does
 * not read (a later version's shape met after a rollback, an edit by hand) failed every read of the market: every tick
 * of it failed to the dead letters while its breaker held, as a position's unreadable ADL events once failed the
 * margin checks (follow47-adl-events-unreadable).
 */
const tick = (sequence: number) => ({
  M: { sequence: { N: String(sequence) }, markPrice: { N: '150000000000' }, timestampMs: { N: '1000' } },
});

const market = (confirming?: AttributeValue): Item => ({
  symbol: { S: 'ETH-USD' },
  lastSequence: { N: '8' },
  lastTick: tick(8),
  breaker: {
    M: {
      reason: { S: 'tick/price-band' },
      trippedAtMs: { N: '2000' },
      tick: tick(9),
      ...(confirming === undefined ? {} : { confirming }),
    },
  },
});

describe('a breaker whose confirming trace does not read', () => {
  it('reads the market without the trace, everything else as stored', () => {
    const plain = marketFromItem(market());
    const unreadable: AttributeValue[] = [
      { M: { sequence: { S: 'twelve' }, atMs: { N: '3000' } } },
      { M: { atMs: { N: '3000' } } },
      { S: '12' },
    ];
    for (const confirming of unreadable) expect(marketFromItem(market(confirming))).toEqual(plain);
    expect(
      marketFromItem(market({ M: { sequence: { N: '12' }, atMs: { N: '3000' } } })).breaker?.confirming,
    ).toEqual({ sequence: 12, atMs: 3000 });
  });
});

// feed48-refusal-trace: the refusal traces are traces no rule reads either, read as leniently; one that does not read
// is kept opaque, as stored, for the note that replaces it and the drop that removes it (feed48c-trace-unreadable).
describe('a refusal trace that does not read', () => {
  it('reads the market with it apart and opaque, the others as stored', () => {
    const plain = marketFromItem(market());
    const trace = {
      M: {
        seq: { N: '12' },
        stamp: { N: '2500' },
        at: { N: '3000' },
        count: { N: '1' },
        since: { N: '3000' },
      },
    };
    for (const unreadable of [{ S: '12' }, { M: { ...trace.M, count: { S: 'one' } } }])
      expect(
        marketFromItem({
          ...market(),
          [refusalAttr('tick/duplicate')]: unreadable,
          'refusal:tick/nonsense': trace,
        }),
      ).toEqual({
        ...plain,
        unreadableRefusals: { 'tick/duplicate': { unreadable: expect.any(String), stored: unreadable } },
        // A kind this version does not know: opaque too, for an accepted tick to remove (more48b-trace-unknown-kind),
        // with when it was noted, as it says it (feed49-unknown-kind-kept).
        unknownRefusals: {
          'tick/nonsense': { unreadable: expect.any(String), stored: trace, noted: { atMs: 3000 } },
        },
      });
    const both = marketFromItem({
      ...market(),
      [refusalAttr('tick/duplicate')]: trace,
      [refusalAttr('tick/too-old')]: { S: '' },
    });
    expect(both.unreadableRefusals).toEqual({
      'tick/too-old': { unreadable: expect.stringContaining('refusal:tick/too-old'), stored: { S: '' } },
    });
    expect(both.refusals).toEqual({
      'tick/duplicate': {
        sequence: 12,
        timestampMs: 2500,
        atMs: 3000,
        count: 1,
        sinceMs: 3000,
        // Absent on the item: one note in its second.
        notesInSecond: 1,
      },
    });
  });
});
