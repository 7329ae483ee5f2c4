/** A settled liquidation's metrics, for the alarms: the layers that acted, the fund's draws and refusals, ADL, bad debt. */

import { formatQuote } from '../../domain/units.ts';
import type { WaterfallDecision } from '../../domain/waterfall.ts';
import { METRICS } from '../../metrics.ts';
import type { LiquidationRecord } from '../../ports/index.ts';
import type { SettlementDeps } from '../context.ts';

/** A settled record's ADL and bad debt, for their alarms (AdlEvents counts one event for the settlement). */
export function reportSettledLoss(liquidation: LiquidationRecord, deps: SettlementDeps): void {
  const s = liquidation.settlement;
  if (!s) return;
  const market = { Market: liquidation.symbol };
  if (s.adlClosedSize > 0n || s.adlCovered > 0n) deps.telemetry.count(METRICS.AdlEvents.name, 1, market);
  if (s.badDebt > 0n) deps.telemetry.observe(METRICS.BadDebt.name, Number(formatQuote(s.badDebt)), market);
}

export function recordSettlementMetrics(
  symbol: string,
  decision: WaterfallDecision,
  fundBalance: bigint | undefined,
  deps: SettlementDeps,
  /** ADL runs more rounds: the bad debt is known when they end (adlRound). */
  roundsFollow: boolean,
): void {
  const { telemetry } = deps;
  const market = { Market: symbol };
  for (const layer of decision.acted)
    telemetry.count(METRICS.LiquidationsSettled.name, 1, { Layer: layer, Market: symbol });
  // Counted once committed: a commit that fails (planned again, or lost to a duplicate) deleveraged nobody.
  const deleveraged = decision.adl?.fills.length ?? 0;
  if (deleveraged > 0) telemetry.count(METRICS.AdlEvents.name, deleveraged, market);
  const { insurance, adl } = decision.layers;
  if (insurance.shortfallPaid > 0n) {
    telemetry.count(METRICS.InsuranceFundDraws.name, 1, market);
  }
  // A fund at its floor or its window's cap pages for itself, before ADL's or bad debt's alarms say why.
  if (insurance.refused > 0n && insurance.refusal) {
    telemetry.count(METRICS.InsuranceFundRefusals.name, 1, { Reason: insurance.refusal, Market: symbol });
  }
  if (adl.uncovered > 0n && !roundsFollow) {
    telemetry.observe(METRICS.BadDebt.name, Number(formatQuote(adl.uncovered)), market);
  }
  // The fund is shared by every market: its balance is one gauge.
  if (fundBalance !== undefined) {
    telemetry.observe(METRICS.InsuranceFundBalance.name, Number(formatQuote(fundBalance)));
  }
}
