import { describe, expect, it } from 'vitest';
import { itemBytes, MAX_ITEM_BYTES } from '../../shared/adapters/aws/item-size.ts';
import { SINGLE_SHARD_LAYOUT } from '../../shared/adapters/aws/position-layout.ts';
import { positionFromItem, positionItem } from '../../shared/adapters/aws/positions.ts';
import { SIZED_WRITER, withWriter } from '../../shared/adapters/aws/record-items.ts';
import { MAX_ADL_EVENTS_KEPT, recordAdlEvent, withAdlEvent } from '../../shared/domain/adl.ts';
import type { AdlEvent, AdlEvents } from '../../shared/domain/model.ts';
import { base, price, usd } from '../../shared/domain/units.ts';
import type { PositionRecord } from '../../shared/ports/index.ts';
import { position } from '../support/records.ts';

/**
 * Who deleveraged a position (adl47-who-closed): domain/adl.ts withAdlEvent keeps the latest MAX_ADL_EVENTS_KEPT of
 * a counterparty's ADL events and counts them all, so its item stays bounded however often ADL takes from it.
 */

const event = (n: number, over: Partial<AdlEvent> = {}): AdlEvent => ({
  liquidationId: `long-${n}:1`,
  round: 0,
  size: base('0.5'),
  price: price('1812.34'),
  mark: price('1800'),
  given: usd('6.17'),
  haircut: 0n,
  atMs: 1_584_050_040_000 + n,
  ...over,
});

const recorded = (n: number, from?: AdlEvents): AdlEvents => {
  let events = from;
  for (let i = 1; i <= n; i++) events = withAdlEvent(events, event(i));
  return events!;
};

describe('ADL events on a position (withAdlEvent)', () => {
  it('records the first event on a record that has none (an older one reads as none)', () => {
    expect(withAdlEvent(undefined, event(1))).toEqual({ total: 1, recent: [event(1)] });
  });

  it('keeps the latest, oldest first, and counts every event: a truncated list says so', () => {
    expect(recorded(3)).toEqual({ total: 3, recent: [event(1), event(2), event(3)] });
    const many = recorded(MAX_ADL_EVENTS_KEPT + 7);
    expect(many.total).toBe(MAX_ADL_EVENTS_KEPT + 7);
    expect(many.recent).toHaveLength(MAX_ADL_EVENTS_KEPT);
    expect(many.recent.map((e) => e.liquidationId)).toEqual(
      Array.from({ length: MAX_ADL_EVENTS_KEPT }, (_, i) => `long-${i + 8}:1`),
    );
  });

  it('records an event of the same liquidation and round once; another round of it is another event', () => {
    const once = recorded(2);
    expect(withAdlEvent(once, event(2, { atMs: 9 }))).toBe(once);
    expect(withAdlEvent(once, event(2, { round: 1 }))).toEqual({
      total: 3,
      recent: [event(1), event(2), event(2, { round: 1 })],
    });
  });

  it('never counts fewer than it keeps (a total a foreign writer left short)', () => {
    expect(withAdlEvent({ total: 0, recent: [event(1)] }, event(2)).total).toBe(2);
  });
});

describe("a deleveraged position's item stays small (DynamoDB's 400 KB, and its 1 KB write unit)", () => {
  it('a typical position keeping the most events stays within one write unit when put alone', () => {
    const typical: PositionRecord = {
      ...position({ id: 'pos-004711', traderId: 'trader-004711', side: 'SHORT', version: 12 }),
      collateralOverE16: 1_234_567_890n,
      adlProfitGiven: usd('12.34'),
      adlEvents: recorded(MAX_ADL_EVENTS_KEPT + 3),
    };
    expect(itemBytes(withWriter(positionItem(typical, SINGLE_SHARD_LAYOUT), SIZED_WRITER))).toBeLessThan(
      1024,
    );
  });

  it('the largest position item (longest ids, widest numbers, every event kept) is a few KB', () => {
    const id = 'x'.repeat(100);
    const widest = 10n ** 37n;
    const largest: PositionRecord = {
      ...position({ id, traderId: id, size: widest, entryPrice: widest, collateral: -widest }),
      liquidationPrice: widest,
      collateralOverE16: widest,
      adlProfitGiven: widest,
      closedPayout: widest,
      version: Number.MAX_SAFE_INTEGER,
      adlEvents: {
        total: Number.MAX_SAFE_INTEGER,
        recent: Array.from({ length: MAX_ADL_EVENTS_KEPT }, () => ({
          liquidationId: `${id}:${Number.MAX_SAFE_INTEGER}`,
          round: Number.MAX_SAFE_INTEGER,
          size: widest,
          price: widest,
          mark: widest,
          given: widest,
          haircut: widest,
          atMs: Number.MAX_SAFE_INTEGER,
        })),
      },
    };
    const bytes = itemBytes(withWriter(positionItem(largest, SINGLE_SHARD_LAYOUT), SIZED_WRITER));
    expect(bytes).toBeLessThan(4 * 1024);
    expect(bytes).toBeLessThan(MAX_ITEM_BYTES / 100);
  });
});

// follow47-adl-events-unreadable: the list is display only (liquidations show --position), yet a list positionFromItem
// could not read failed the read of the whole position: margin checks and ADL's ranking read it too.
describe('a list of ADL events this version cannot read', () => {
  const stored = positionItem(position({ id: 'pos-9', side: 'SHORT' }), SINGLE_SHARD_LAYOUT);
  const later = { M: { version: { N: '2' }, events: { L: [] } } };
  const edited = { M: { total: { N: '1' }, recent: { L: [{ M: { liquidationId: { S: 'a:0' } } }] } } };

  it('reads as unreadable with why, the position read whole, and is written back as it was', () => {
    // Before: CorruptItemError (adapter/missing-attribute: recent) for the whole position.
    const read = positionFromItem({ ...stored, adlEvents: later });
    expect(read).toEqual({
      ...positionFromItem(stored),
      adlEvents: { unreadable: 'adapter/missing-attribute: recent', stored: later },
    });
    expect(positionItem(read, SINGLE_SHARD_LAYOUT).adlEvents).toEqual(later);
    expect(positionFromItem({ ...stored, adlEvents: edited }).adlEvents).toEqual({
      unreadable: 'recent[0]: adapter/missing-attribute: round',
      stored: edited,
    });
    expect(positionFromItem({ ...stored, adlEvents: { S: 'x' } }).adlEvents).toMatchObject({
      unreadable: 'adapter/not-a-map: adlEvents',
    });
  });

  it('the next event sets it aside as it was and starts a new list; a readable list keeps what was set aside', () => {
    const read = positionFromItem({ ...stored, adlEvents: later });
    const first = recordAdlEvent(read, event(1));
    expect(first).toEqual({
      adlEvents: { total: 1, recent: [event(1)] },
      adlEventsSetAside: [{ unreadable: 'adapter/missing-attribute: recent', stored: later }],
    });
    const item = positionItem({ ...read, ...first }, SINGLE_SHARD_LAYOUT);
    expect(item.adlEventsSetAside).toEqual({ L: [later] });
    const again = positionFromItem(item);
    expect(again.adlEventsSetAside).toEqual(first.adlEventsSetAside);
    expect(recordAdlEvent(again, event(2))).toEqual({
      adlEvents: { total: 2, recent: [event(1), event(2)] },
      adlEventsSetAside: first.adlEventsSetAside,
    });
    // A second list that does not read joins the first, both as they were.
    const twice = recordAdlEvent(
      { ...again, adlEvents: positionFromItem({ ...item, adlEvents: edited }).adlEvents },
      event(3),
    );
    expect(positionItem({ ...again, ...twice }, SINGLE_SHARD_LAYOUT).adlEventsSetAside).toEqual({
      L: [later, edited],
    });
  });

  // providers49-set-aside-not-a-list: a set-aside stored as something other than a list was read as a list of one, so
  // the position's first write (an ADL event that set nothing aside, a tick's, a settlement's) wrote it wrapped in a
  // list of one.
  it('a set-aside that is not a list is written back as it was, and kept whole as the first when one more is', () => {
    const notAList = { M: { from: { S: 'a later version' } } };
    const read = positionFromItem({ ...stored, adlEventsSetAside: notAList });
    expect(read.adlEventsSetAside).toEqual({
      unreadable: 'adapter/not-a-list: adlEventsSetAside',
      stored: notAList,
    });
    expect(positionItem(read, SINGLE_SHARD_LAYOUT).adlEventsSetAside).toEqual(notAList);
    // An event that sets nothing aside, twice over: unchanged.
    const once = positionFromItem(
      positionItem({ ...read, ...recordAdlEvent(read, event(1)) }, SINGLE_SHARD_LAYOUT),
    );
    const again = positionItem({ ...once, ...recordAdlEvent(once, event(2)) }, SINGLE_SHARD_LAYOUT);
    expect(again.adlEventsSetAside).toEqual(notAList);
    // One more set aside: a list, the one kept whole first, as stored.
    const unread = positionFromItem({ ...stored, adlEvents: later, adlEventsSetAside: notAList });
    expect(
      positionItem({ ...unread, ...recordAdlEvent(unread, event(3)) }, SINGLE_SHARD_LAYOUT).adlEventsSetAside,
    ).toEqual({ L: [notAList, later] });
  });
});
