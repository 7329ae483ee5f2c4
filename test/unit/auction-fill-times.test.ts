import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { auctionFromItem } from '../../shared/adapters/aws/auctions.ts';
import { itemBytes } from '../../shared/adapters/aws/item-size.ts';
import { auctionItem } from '../../shared/adapters/aws/record-items.ts';
import { base, price, usd } from '../../shared/domain/units.ts';
import type { AuctionFill, AuctionRecord } from '../../shared/ports/index.ts';

/**
 * When each auction fill was made, on the auction's item (review52-support-fill-times-on-auction): its step, that step's
 * clock and mark, display only. Read whole or not at all, so a hand edit never fails an auction step.
 */

const fill: AuctionFill = {
  providerId: 'lp-0000000001',
  price: price('1847.12345678'),
  size: base('0.12345678'),
  cost: usd('228.036242'),
};
const timed: AuctionFill = { ...fill, step: 17, atMs: 1_765_000_000_000, mark: price('1866.78901234') };

const auction = (fills: readonly AuctionFill[]): AuctionRecord => ({
  id: 'ETH-USD-position-00000001:3:auction',
  liquidationId: 'ETH-USD-position-00000001:3',
  symbol: 'ETH-USD',
  direction: 'SELL',
  lot: base('200'),
  remainingLot: base('100'),
  top: price('1900'),
  startedAtMs: 1_765_000_000_000,
  resets: 0,
  step: 40,
  state: 'RUNNING',
  fills,
  version: 41,
});

describe('an auction fill made since session 52 keeps when it was made, on the auction item', () => {
  it('round-trips its step, time and mark; a fill without them reads as before', () => {
    const read = auctionFromItem(auctionItem(auction([fill, timed])));
    expect(read.fills).toEqual([fill, timed]);
  });

  it.each([
    ['a mark that is not an integer', { mark: { N: '1.5' } }, []],
    ['a step that is not a number', { step: { S: 'x' } }, []],
    ['no time beside its step', {}, ['atMs']],
  ])(
    'a fill whose time does not read (%s) reads without it, never failing the auction',
    (_name, edit, left) => {
      const item = auctionItem(auction([timed]));
      const edited: Record<string, AttributeValue> = { ...item.fills!.L![0]!.M!, ...edit };
      for (const name of left) delete edited[name];
      const read = auctionFromItem({ ...item, fills: { L: [{ M: edited }] } });
      expect(read.fills).toEqual([fill]);
    },
  );

  it('costs 27 bytes a fill of full-width amounts (62 to 89), as DynamoDB counts an item (a write unit a KB)', () => {
    const bytes = (fills: readonly AuctionFill[]) => itemBytes(auctionItem(auction(fills)));
    const each = (f: AuctionFill) => (bytes(Array(100).fill(f)) - bytes([])) / 100;
    expect(each(fill)).toBe(62);
    expect(each(timed)).toBe(89);
    // An auction at its most fills (MAX_FILLS_PER_AUCTION, 1,000) stays far under DynamoDB's 400 KB.
    expect(bytes(Array(1_000).fill(timed))).toBeLessThan(100_000);
  });
});
