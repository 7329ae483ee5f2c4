import { describe, expect, it } from 'vitest';
import {
  type AuctionDirection,
  auctionStatus,
  startPrice,
  stepSeconds,
} from '../../shared/domain/auction.ts';
import { clearAuctionStep } from '../../shared/domain/clearing.ts';
import { DEFAULT_RISK_CONFIG_INPUT, marketConfig, parseRiskConfig } from '../../shared/domain/config.ts';
import { planSleep } from '../../shared/domain/sleep.ts';
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

// Found by a review of the money arithmetic in session 28: the bid of a SELL provider whose capital pays only below
// its own bid was rounded down to the ppm of the mark, so an auction slept through a step whose price the provider
// could pay (the clearing fills it there) and sold a step (about 1 %) lower.
describe('bestBid of a SELL provider limited by its capital', () => {
  it('wakes the auction at the first step the provider can pay, not a step later', () => {
    const config = parseRiskConfig(DEFAULT_RISK_CONFIG_INPUT);
    const dust = marketConfig(config, 'ETH-USD').dustSize;
    const stepMs = stepSeconds(config.auction) * 1000;
    const mark = 200_000_001_003n;
    const k = 5;
    const auction = {
      direction: 'SELL' as const,
      top: startPrice(mark, 'SELL', config.auction.buf),
      startedAtMs: 0,
      symbol: 'ETH-USD',
      resets: 0,
    };
    const priceAtK = auctionStatus(auction, mark, k * stepMs, config.auction).price;
    // Capital for a dust-sized piece at step k's price, and not a unit more.
    const capital = div(priceAtK * dust, NOTIONAL_TO_QUOTE, 'ceil');
    const payable = div(capital * NOTIONAL_TO_QUOTE, dust, 'floor');
    // The case: a bid rounded down to the ppm of the mark falls below step k's price.
    expect(mark * div(payable * PPM_SCALE, mark, 'floor')).toBeLessThan(priceAtK * PPM_SCALE);
    const lp: ProviderRecord = { ...provider('lp', '0'), capital, maxDiscountPpm: 0n };
    const lot = parseBase('1');
    const filledAtK = clearAuctionStep({
      direction: 'SELL',
      remainingLot: lot,
      price: priceAtK,
      mark,
      debt: parseQuote('1000000'),
      dust,
      providers: [lp],
    }).filledSize;
    expect(filledAtK).toBeGreaterThan(0n);

    const nowMs = (k - 1) * stepMs + 1_000;
    const status = auctionStatus(auction, mark, nowMs, config.auction);
    const sleep = planSleep(
      auction,
      mark,
      nowMs,
      config.auction,
      bestBid(auction, status, [lp], config, lot, mark),
    );
    expect(Math.floor((nowMs + sleep.delaySeconds * 1000) / stepMs)).toBe(k);
  });
});
