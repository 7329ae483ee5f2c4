import { base, price } from '../../shared/domain/units.ts';
import type { AuctionRecord, LiquidationRecord } from '../../shared/ports/index.ts';
import type { Pipeline } from './pipeline.ts';

/** The liquidation of a position (its first, the only one in these scenarios). */
export const liquidationOf = (p: Pipeline, positionId: string): LiquidationRecord => {
  const liquidation = p.adapters.liquidations.all().find((l) => l.positionId === positionId);
  if (!liquidation) throw new Error(`no liquidation of ${positionId}`);
  return liquidation;
};

export const auctionOf = async (p: Pipeline, positionId: string): Promise<AuctionRecord> => {
  const auction = await p.adapters.auctions.get(`${liquidationOf(p, positionId).id}:auction`);
  if (!auction) throw new Error(`no auction of ${positionId}`);
  return auction;
};

/** When the position's liquidation left its auction for the fund and ADL (undefined: not yet). */
export const leftAuctionAt = (p: Pipeline, positionId: string): number | undefined => {
  const { history } = liquidationOf(p, positionId);
  const at = history.findIndex((h) => h.state === 'AUCTION');
  return at < 0 ? undefined : history.slice(at).find((h) => h.state !== 'AUCTION')?.atMs;
};

/** A SELL auction of 1 ETH-USD at step 3, running: a sleeper or payer of the wake tests (`extra` overrides). */
export const auctionRecord = (id: string, extra: Partial<AuctionRecord> = {}): AuctionRecord => ({
  id,
  liquidationId: `${id}:liq`,
  symbol: 'ETH-USD',
  direction: 'SELL',
  lot: base('1'),
  remainingLot: base('1'),
  top: price('200'),
  startedAtMs: 1,
  resets: 0,
  step: 3,
  state: 'RUNNING',
  fills: [],
  version: 0,
  ...extra,
});
