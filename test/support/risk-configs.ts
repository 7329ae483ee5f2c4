import { DEFAULT_RISK_CONFIG_INPUT, type RiskConfigInput } from '../../shared/domain/config.ts';

/** The default rules with 1 s auction steps starting at the mark: an auction clears within seconds in tests. */
export const FAST_AUCTION: RiskConfigInput = {
  ...DEFAULT_RISK_CONFIG_INPUT,
  auction: {
    ...DEFAULT_RISK_CONFIG_INPUT.auction,
    buf: '1',
    curve: { kind: 'stairstep', cut: '0.99', stepSeconds: 1 },
  },
};

/** FAST_AUCTION with a slippage bound that keeps the market out: every slice goes to the auction. */
export const AUCTION_ONLY: RiskConfigInput = {
  ...FAST_AUCTION,
  markets: FAST_AUCTION.markets.map((m) => ({ ...m, slippageBound: '0.000001' })),
};

/**
 * The default rules with the deepest auction they allow (a last resort bound of 50 %, so a floor of 0.67): the
 * curve's lowest price before a reset (0.682 of the mark SELL, 1.465 BUY) stays within the floor, so the auction
 * walks exactly as under the default floor of 0.5 before session 39. For tests of the curve's reach and of sleeping
 * auctions with bids 30 % from the mark.
 */
export const DEEP_AUCTION: RiskConfigInput = {
  ...DEFAULT_RISK_CONFIG_INPUT,
  markets: DEFAULT_RISK_CONFIG_INPUT.markets.map((m) => ({ ...m, lastResortSlippageBound: '0.5' })),
  auction: { ...DEFAULT_RISK_CONFIG_INPUT.auction, floor: '0.67' },
};
