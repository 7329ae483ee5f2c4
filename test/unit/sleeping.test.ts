import { describe, expect, it } from 'vitest';
import {
  type AuctionDirection,
  auctionStatus,
  startPrice,
  stepSeconds,
} from '../../shared/domain/auction.ts';
import { clearAuctionStep } from '../../shared/domain/clearing.ts';
import { DEFAULT_RISK_CONFIG_INPUT, marketConfig, parseRiskConfig } from '../../shared/domain/config.ts';
import {
  div,
  NOTIONAL_TO_QUOTE,
  PPM_SCALE,
  parseBase,
  parsePrice,
  parseQuote,
} from '../../shared/domain/units.ts';
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
        resets: 0,
      };
      const status = auctionStatus(auction, MARK, 0, NO_DUST.auction);
      const lot = parseBase('5');
      expect(bestBid(auction, status, [provider('spent', '0')], NO_DUST, lot, MARK)).toBeUndefined();
      const both = [provider('spent', '0'), provider('lp', '1000')];
      expect(bestBid(auction, status, both, NO_DUST, lot, MARK)).toBe(20_000n);
    },
  );
});

// Session 28 (a review of the money arithmetic) had a SELL provider whose capital paid for dust only below its own bid
// bid lower, at the price it could pay, since everyone filled at the auction's price. Each bid fills at its own price
// since session 44 (auction44-pay-as-bid): such a provider never fills (a crumb at its bid), so it is no bidder, and
// a provider counts when its capital pays for dust at the price it fills at, its bid, however far past it the price.
describe('bestBid counts the capital at the price a provider fills at: its own bid', () => {
  const config = parseRiskConfig(DEFAULT_RISK_CONFIG_INPUT);
  const dust = marketConfig(config, 'ETH-USD').dustSize;
  const mark = 200_000_001_003n;
  const lot = parseBase('1');
  const sellAuction = {
    direction: 'SELL' as const,
    top: startPrice(mark, 'SELL', config.auction.buf),
    startedAtMs: 0,
    symbol: 'ETH-USD',
    resets: 0,
  };
  const ownBid = div(mark * (PPM_SCALE - 20_000n), PPM_SCALE, 'ceil');
  const clearsAt = (p: ProviderRecord, at: bigint, direction: AuctionDirection) =>
    clearAuctionStep({
      direction,
      remainingLot: lot,
      price: at,
      mark,
      debt: parseQuote('1000000'),
      dust,
      providers: [p],
    });

  it('SELL: capital for dust only below its bid is no bid, and the clearing agrees (it fills nothing)', () => {
    const stepMs = stepSeconds(config.auction) * 1000;
    const priceLater = auctionStatus(sellAuction, mark, 10 * stepMs, config.auction).price;
    const short = div(priceLater * dust, NOTIONAL_TO_QUOTE, 'ceil'); // dust at step 10's price, not at its bid
    const lp: ProviderRecord = { ...provider('lp', '0'), capital: short };
    expect(clearsAt(lp, priceLater, 'SELL').fills).toEqual([]);
    const status = auctionStatus(sellAuction, mark, 0, config.auction);
    expect(bestBid(sellAuction, status, [lp], config, lot, mark)).toBeUndefined();
  });

  it('SELL: capital for dust at its bid, rounded up, is a bid at its discount, and fills there', () => {
    const enough = div(ownBid * dust, NOTIONAL_TO_QUOTE, 'ceil');
    const lp: ProviderRecord = { ...provider('lp', '0'), capital: enough };
    const status = auctionStatus(sellAuction, mark, 0, config.auction);
    expect(bestBid(sellAuction, status, [lp], config, lot, mark)).toBe(20_000n);
    const fills = clearsAt(lp, ownBid - 1_000_000n, 'SELL').fills;
    expect(fills.map((f) => [f.price, f.size])).toEqual([[ownBid, dust]]);
    // A unit of capital less pays for dust only below its bid: no bid.
    const less = { ...lp, capital: enough - 1n };
    expect(bestBid(sellAuction, status, [less], config, lot, mark)).toBeUndefined();
  });

  it('BUY: capital for dust at its ask counts once the price has passed the ask (it fills at the ask)', () => {
    const buyAuction = {
      ...sellAuction,
      direction: 'BUY' as const,
      top: startPrice(mark, 'BUY', config.auction.buf),
    };
    const ask = div(mark * (PPM_SCALE + 20_000n), PPM_SCALE, 'floor');
    const capital = div(ask * dust, NOTIONAL_TO_QUOTE, 'ceil');
    const lp: ProviderRecord = { ...provider('lp', '0'), capital };
    // The price well past the ask: dust at it costs more than the capital, dust at the ask does not.
    const stepMs = stepSeconds(config.auction) * 1000;
    const status = auctionStatus(buyAuction, mark, 8 * stepMs, config.auction);
    expect(status.price * dust).toBeGreaterThan(capital * NOTIONAL_TO_QUOTE);
    expect(bestBid(buyAuction, status, [lp], config, lot, mark)).toBe(20_000n);
    expect(clearsAt(lp, status.price, 'BUY').fills.map((f) => [f.price, f.size])).toEqual([[ask, dust]]);
  });
});

// lot51-auction-whole-lots: a provider counts as the clearing fills it, in whole lots of the market's lot.
describe("bestBid counts a provider's room as the clearing fills it, in whole lots", () => {
  const config = parseRiskConfig({
    ...DEFAULT_RISK_CONFIG_INPUT,
    markets: DEFAULT_RISK_CONFIG_INPUT.markets.map((m) =>
      m.symbol === 'ETH-USD' ? { ...m, lotSize: '0.001', dustSize: '0.002' } : m,
    ),
  });
  const auction = { direction: 'SELL' as const, symbol: 'ETH-USD', top: parsePrice('102'), startedAtMs: 0 };
  const status = auctionStatus(auction, MARK, 0, config.auction);
  const withRoom = (maxLot: string): ProviderRecord => ({
    ...provider('lp', '1000'),
    maxLot: parseBase(maxLot),
  });

  it('a rest with a part under a lot needs room for dust and that part: the first fill takes both', () => {
    const rest = parseBase('6.0005');
    expect(bestBid(auction, status, [withRoom('0.002')], config, rest, MARK)).toBeUndefined();
    expect(bestBid(auction, status, [withRoom('0.0025')], config, rest, MARK)).toBe(20_000n);
    // The clearing agrees: 0.002 of room fills nothing of 6.0005, 0.0025 fills 0.0025.
    const fills = (maxLot: string) =>
      clearAuctionStep({
        direction: 'SELL',
        remainingLot: rest,
        price: parsePrice('98'),
        mark: MARK,
        debt: parseQuote('1000000'),
        dust: parseBase('0.002'),
        lot: parseBase('0.001'),
        providers: [withRoom(maxLot)],
      }).fills.map((f) => f.size);
    expect(fills('0.002')).toEqual([]);
    expect(fills('0.0025')).toEqual([parseBase('0.0025')]);
  });
});
