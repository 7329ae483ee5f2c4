import { describe, expect, it } from 'vitest';
import { type AuctionDirection, auctionStatus } from '../../shared/domain/auction.ts';
import { DEFAULT_RISK_CONFIG_INPUT, parseRiskConfig } from '../../shared/domain/config.ts';
import { parseBase, parsePrice, parseQuote } from '../../shared/domain/units.ts';
import type { ProviderRecord } from '../../shared/ports/index.ts';
import { bestBid } from '../../shared/services/sleeping.ts';

const NO_DUST = parseRiskConfig({
  ...DEFAULT_RISK_CONFIG_INPUT,
  markets: DEFAULT_RISK_CONFIG_INPUT.markets.map((m) => ({ ...m, dustSize: '0' })),
});
const MARK = parsePrice('100');

const provider = (id: string, capital: string): ProviderRecord => ({
  id,
  capital: parseQuote(capital),
  maxDiscountPpm: 20_000n,
  maxLot: parseBase('100'),
  symbols: ['ETH-USD'],
  version: 0,
});

describe('bestBid', () => {
  it.each<AuctionDirection>(['SELL', 'BUY'])(
    'counts no provider without capital on a market without dust (%s)',
    (direction) => {
      const auction = {
        direction,
        symbol: 'ETH-USD',
        top: parsePrice(direction === 'SELL' ? '102' : '98'),
        startedAtMs: 0,
      };
      const status = auctionStatus(auction, MARK, 0, NO_DUST.auction);
      const lot = parseBase('5');
      expect(bestBid(auction, status, [provider('spent', '0')], NO_DUST, lot, MARK)).toBeUndefined();
      const both = [provider('spent', '0'), provider('lp', '1000')];
      expect(bestBid(auction, status, both, NO_DUST, lot, MARK)).toBe(20_000n);
    },
  );
});
