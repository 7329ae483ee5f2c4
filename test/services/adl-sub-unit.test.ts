import { describe, expect, it } from 'vitest';
import { marginE16 } from '../../shared/domain/margin.ts';
import type { PositionRecord } from '../../shared/ports/index.ts';
import { withLiquidationPrice } from '../../shared/services/margin-check.ts';
import { createPipeline, type Pipeline } from '../support/pipeline.ts';

/**
 * Found by the review of slice-rounding-carry (session 35): a slice's rest carries the sub-unit its collateral
 * overstates its exact margin by (collateralOverE16). ADL ranked, haircut and bounded its counterparties on the
 * stored collateral, so it took that sub-unit, which the position did not have: a rest haircut to collateral 0 held
 * an exact margin of -0.99 units, counted as covered. ADL now sees a position's exact margin floored.
 */
/** A short sliced at 216 whose next slice the mark's return to 200 cancelled as healthy: its rest stays OPEN. */
async function slicedShortRest() {
  const p = createPipeline();
  await p.tick('ETH-USD', '200');
  await p.tick('ETH-USD', '200');
  const short = await p.open('SHORT', '100', '200', '2000');
  await p.tick('ETH-USD', '216');
  await p.runUntil(p.clock.nowMs() + 5_000);
  await p.tick('ETH-USD', '200');
  await p.drain();
  const rest = (await p.adapters.positions.get(short.id))!;
  expect(rest.state).toBe('OPEN');
  expect(rest.collateralOverE16 ?? 0n).toBeGreaterThan(0n);
  return { p, short };
}

/** A long that goes bankrupt at 168 with the fund spent: ADL haircuts the short's rest (in profit), closing no size. */
async function bankruptLong(p: Pipeline) {
  const long = await p.open('LONG', '100', '200', '2800');
  await p.tick('ETH-USD', '184');
  await p.drain();
  await p.tick('ETH-USD', '168');
  await p.drain();
  return long;
}

describe("ADL on a slice's rest whose collateral overstates its exact margin", () => {
  it('haircuts no more than the exact margin: the rest is left at or above zero', async () => {
    const { p, short } = await slicedShortRest();
    const long = await bankruptLong(p);
    const deleveraged = p.adapters.liquidations
      .all()
      .filter((l) => l.positionId === long.id && (l.settlement?.adlCovered ?? 0n) > 0n);
    expect(deleveraged.length).toBeGreaterThan(0);
    const after = (await p.adapters.positions.get(short.id))!;
    expect(after.adlProfitGiven ?? 0n).toBeGreaterThan(0n);
    expect(marginE16(after)).toBeGreaterThanOrEqual(0n);
    expect((await p.check()).violations).toEqual([]);
  });

  it('ranks and writes the same copy of a counterparty another writer moved between the two orders it reads (review, session 35)', async () => {
    const { p, short } = await slicedShortRest();
    // Another container haircuts the short's rest to its last whole unit between this ranking's entry page and its
    // leverage page: left an exact margin below a unit, it has nothing more to give.
    const positions = p.adapters.positions;
    const read = positions.queryAdlOrder.bind(positions);
    let moved: PositionRecord | undefined;
    positions.queryAdlOrder = async (symbol, side, order, limit, cursor) => {
      const current = positions.peek(short.id)!;
      if (order === 'leverage' && !moved && current.state === 'OPEN') {
        moved = withLiquidationPrice(
          {
            ...current,
            collateral: 0n,
            adlProfitGiven: (current.adlProfitGiven ?? 0n) + current.collateral,
            version: current.version + 1,
          },
          p.config,
        );
        await positions.replace(moved, current.version);
      }
      return read(symbol, side, order, limit, cursor);
    };
    await bankruptLong(p);
    expect(moved).toBeDefined();
    // Its haircut, ranked on the copy before the move, was not written on the copy after it. (The move is no
    // settlement of the pipeline's, so the conservation check would count it: the position is checked instead.)
    expect(await positions.get(short.id)).toEqual(moved);
  });
});
