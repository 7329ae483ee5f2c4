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
