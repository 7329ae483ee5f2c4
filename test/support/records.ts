import { base, price, usd } from '../../shared/domain/units.ts';
import type { LiquidationRecord, PositionRecord } from '../../shared/ports/index.ts';

/** An OPEN long of 1.5 ETH at 2,000 with 150 USD, liquidated at 1,900: the adapters' tests' position. */
export const position = (over: Partial<PositionRecord> = {}): PositionRecord => ({
  id: 'pos-1',
  traderId: 'trader-1',
  symbol: 'ETH-USD',
  side: 'LONG',
  size: base('1.5'),
  entryPrice: price('2000'),
  collateral: usd('150'),
  state: 'OPEN',
  version: 1,
  liquidationPrice: price('1900'),
  ...over,
});

/** Its liquidation, QUEUED by tick 7 at 1,890. */
export const liquidation = (over: Partial<LiquidationRecord> = {}): LiquidationRecord => ({
  id: 'pos-1:1',
  positionId: 'pos-1',
  symbol: 'ETH-USD',
  side: 'LONG',
  state: 'QUEUED',
  tickKey: 'ETH-USD#7',
  triggerMark: price('1890'),
  remainingSize: base('1.5'),
  marketFills: [],
  history: [{ atMs: 1_000, state: 'QUEUED' }],
  version: 1,
  ...over,
});
