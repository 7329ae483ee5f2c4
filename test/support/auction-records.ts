import { base, price } from '../../shared/domain/units.ts';
import type { AuctionRecord, CrashHook, LiquidationRecord } from '../../shared/ports/index.ts';
import { createPipeline, type Pipeline } from './pipeline.ts';

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

/**
 * An auction that ends EXHAUSTED into its last resort's wait: no bid left when its planned step comes (lp's capital
 * gone), no fund, no counterparty, an empty book. `armAtDue` is called as that step lists the providers (once, while
 * it answers true): to crash that delivery at a point of the caller's choosing.
 */
export async function auctionEndingIntoWait(crash: {
  readonly hook: CrashHook;
  readonly arm: () => void;
  readonly crashed: () => boolean;
}) {
  const p = createPipeline({ crashHook: crash.hook });
  await p.tick('ETH-USD', '200'); // a market's first print waits for a second
  await p.tick('ETH-USD', '200');
  const long = await p.open('LONG', '10', '200', '200');
  await p.provider('lp', '1000000', '0.05', '100');
  p.venue.faults.emptyBooks.add('ETH-USD');
  await p.tick('ETH-USD', '184');
  await p.runUntil(p.clock.nowMs() + 1000);
  const due = (await auctionOf(p, long.id)).stepDueAtMs!;
  const lp = (await p.adapters.providers.get('lp'))!;
  await p.adapters.providers.put({ ...lp, capital: 0n, version: lp.version + 1 }, lp.version);
  const providers = p.adapters.providers;
  const list = providers.list.bind(providers);
  providers.list = async (symbol) => {
    const listed = await list(symbol);
    if (p.clock.nowMs() === due && !crash.crashed()) crash.arm();
    return listed;
  };
  return { p, long, due };
}
