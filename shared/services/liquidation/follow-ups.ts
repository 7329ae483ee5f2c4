/** The messages a terminal slice leaves: its next slice's, and its own while ADL owes it rounds. */

import { marketConfig } from '../../domain/config.ts';
import { isTerminal } from '../../domain/model.ts';
import { nextSliceDelaySeconds } from '../../domain/waterfall.ts';
import type { LiquidationRecord } from '../../ports/index.ts';
import { dueLiquidationMessage } from '../../schemas/messages.ts';
import type { SettlementDeps } from '../context.ts';

/**
 * The messages a terminal slice leaves, re-sent by a redelivery: the next slice's, while it is QUEUED, and its
 * own while ADL owes it rounds (a delivery that ran them died or lost a race; `roundsHere`: the caller runs them).
 */
export async function sendFollowUps(
  liquidation: LiquidationRecord,
  deps: SettlementDeps,
  { roundsHere = false }: { readonly roundsHere?: boolean } = {},
): Promise<void> {
  if (!isTerminal(liquidation.state)) return;
  const next = liquidation.context?.nextLiquidationId;
  if (next && (await deps.liquidations.get(next))?.state === 'QUEUED')
    await sendNextSlice(next, liquidation, deps);
  if (liquidation.context?.adlRound && !roundsHere)
    await deps.liquidationQueue.sendBatch([
      dueLiquidationMessage({ liquidationId: liquidation.id }, deps.clock.nowMs()),
    ]);
}

/** The next slice's message: at once, or after the market's cooldown when this slice spent the liquidity. */
export async function sendNextSlice(
  nextId: string,
  settled: LiquidationRecord,
  deps: SettlementDeps,
): Promise<void> {
  const cooldown = marketConfig(deps.config, settled.symbol).lastResortCooldownSeconds;
  const delaySeconds = nextSliceDelaySeconds(settled.settlement, cooldown);
  const body = dueLiquidationMessage({ liquidationId: nextId }, deps.clock.nowMs(), delaySeconds);
  if (delaySeconds === 0) await deps.liquidationQueue.sendBatch([body]);
  else await deps.liquidationQueue.send(body, delaySeconds);
}
