import { createHash } from 'node:crypto';
import type { RiskConfig } from './domain/config.ts';

/**
 * A risk configuration as the functions read it (markets are found by symbol: their order means nothing), hashed:
 * the stack's RiskConfigDigest output (infra/outputs.ts), which the operator commands, which cannot read the
 * functions' RISK_CONFIG, check their --config against, and what a claim records of the rules it applied.
 * Markets sorted by code unit, not localeCompare: that follows the process's locale (LANG), and synth and an
 * operator's shell need not share one (Danish sorts AAVE-USD after ZEC-USD: the right file was refused).
 */
export const riskConfigDigest = (config: RiskConfig): string =>
  createHash('sha256')
    .update(
      JSON.stringify(
        { ...config, markets: [...config.markets].sort((a, b) => (a.symbol < b.symbol ? -1 : 1)) },
        (_, value) => (typeof value === 'bigint' ? value.toString() : value),
      ),
    )
    .digest('hex');

// A function's configuration is one object for its life: hashed once, not at every claim.
const digests = new WeakMap<RiskConfig, string>();

/** riskConfigDigest, kept per configuration object. */
export function riskConfigDigestOf(config: RiskConfig): string {
  let digest = digests.get(config);
  if (digest === undefined) {
    digest = riskConfigDigest(config);
    digests.set(config, digest);
  }
  return digest;
}
