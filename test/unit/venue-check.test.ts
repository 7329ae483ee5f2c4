import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isLiquidatable } from '../../shared/domain/margin.ts';
import type { Side } from '../../shared/domain/model.ts';
import { parseBase, parsePpm, parseQuote, price } from '../../shared/domain/units.ts';
import { venueDisputesMark } from '../../shared/domain/venue-check.ts';

const MM = parsePpm('0.025');
const BAND = parsePpm('0.05');
/** 10 at 100 with 100 of collateral: a long is liquidatable below about 92.3, a short above about 107.3. */
const position = (side: Side) => ({
  side,
  size: parseBase('10'),
  entryPrice: price('100'),
  collateral: parseQuote('100'),
});

describe('venueDisputesMark', () => {
  it("disputes a long's mark when the venue's bid is beyond the band and the long is healthy there", () => {
    const long = position('LONG');
    expect(venueDisputesMark(long, price('91'), price('100'), MM, BAND)).toBe(true);
    // Within the band of the mark (5 % of 91 is 4.55): no dispute, whatever the health there.
    expect(venueDisputesMark(long, price('91'), price('95.55'), MM, BAND)).toBe(false);
    expect(venueDisputesMark(long, price('91'), price('95.56'), MM, BAND)).toBe(true);
    // Beyond the band but liquidatable there too (the bid 87, below the mark): it confirms the mark.
    expect(venueDisputesMark(long, price('91.7'), price('87'), MM, BAND)).toBe(false);
  });

  it("mirrors for a short and the venue's ask", () => {
    const short = position('SHORT');
    expect(venueDisputesMark(short, price('108'), price('100'), MM, BAND)).toBe(true);
    expect(venueDisputesMark(short, price('108'), price('115'), MM, BAND)).toBe(false);
  });

  it('an empty side is no evidence', () => {
    expect(venueDisputesMark(position('LONG'), price('91'), undefined, MM, BAND)).toBe(false);
  });

  it('never disputes where the position is liquidatable at the venue, and always beyond the band where it is not', () => {
    // Both rules judged on many draws, not on whichever the generator happened to hit.
    const judged = { liquidatable: 0, beyondBand: 0 };
    fc.assert(
      fc.property(
        fc.constantFrom<Side>('LONG', 'SHORT'),
        fc.integer({ min: 50_00, max: 150_00 }),
        fc.integer({ min: 50_00, max: 150_00 }),
        (side, markCents, venueCents) => {
          const p = position(side);
          const mark = price((markCents / 100).toFixed(2));
          const venue = price((venueCents / 100).toFixed(2));
          const disputed = venueDisputesMark(p, mark, venue, MM, BAND);
          if (isLiquidatable(p, venue, MM)) {
            judged.liquidatable += 1;
            expect(disputed).toBe(false);
          }
          const diff = venue > mark ? venue - mark : mark - venue;
          if (diff * 1_000_000n > BAND * mark && !isLiquidatable(p, venue, MM)) {
            judged.beyondBand += 1;
            expect(disputed).toBe(true);
          }
        },
      ),
      { numRuns: 500 },
    );
    expect(judged.liquidatable).toBeGreaterThan(50);
    expect(judged.beyondBand).toBeGreaterThan(50);
  });
});
