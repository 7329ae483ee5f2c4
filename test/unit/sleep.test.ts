import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type AuctionDirection,
  auctionStatus,
  nextStepDelaySeconds,
  startPrice,
  stepSeconds,
} from '../../shared/domain/auction.ts';
import { accepts } from '../../shared/domain/clearing.ts';
import { type AuctionConfig, DEFAULT_RISK_CONFIG } from '../../shared/domain/config.ts';
import { earlierWake, firstTrue, planSleep, wakes } from '../../shared/domain/sleep.ts';
import { div, PPM_SCALE, ppm, price } from '../../shared/domain/units.ts';

const config = (over: Partial<AuctionConfig> = {}): AuctionConfig => ({
  ...DEFAULT_RISK_CONFIG.auction,
  ...over,
});
const stair = config({ curve: { kind: 'stairstep', cut: ppm('0.99'), stepSeconds: 90 }, tailSeconds: 3600 });
const MARK = price('1000');
const sellAt = (mark: bigint, startedAtMs = 0) => ({
  direction: 'SELL' as const,
  top: startPrice(mark, 'SELL', stair.buf),
  startedAtMs,
});

describe('planSleep: the next step worth taking at this mark, and the mark that wakes the auction sooner', () => {
  it('a SELL lot sleeps until the stairstep reaches the best bid; its wake mark is the bid of the step before', () => {
    // top 1020 (buf 1.02); bid at 950 (5 %): 1020 * 0.99^7 = 951.1 > 950 >= 1020 * 0.99^8 = 941.6.
    const auction = sellAt(MARK);
    const sleep = planSleep(auction, MARK, 0, stair, ppm('0.05'));
    expect(sleep.delaySeconds).toBe(8 * 90);
    const curveAt7 = div(auction.top * ppm('0.99') ** 7n, PPM_SCALE ** 7n, 'ceil');
    expect(sleep.wakeMark).toBe(div(curveAt7 * PPM_SCALE, ppm('0.95'), 'ceil'));
    // Just below it the bid does not reach step 7's price; at it, it does.
    const priceAt7 = auctionStatus(auction, MARK, 7 * 90_000, stair).price;
    expect(priceAt7).toBe(curveAt7);
    expect(accepts({ maxDiscountPpm: ppm('0.05') }, 'SELL', priceAt7, sleep.wakeMark as bigint)).toBe(true);
    expect(accepts({ maxDiscountPpm: ppm('0.05') }, 'SELL', priceAt7, (sleep.wakeMark as bigint) - 1n)).toBe(
      false,
    );
  });

  it('a bid reached at the next step: the plain step delay, nothing to wake', () => {
    // Seven steps in, step 8 is the one the 5 % bid takes (see above).
    const sleep = planSleep(sellAt(MARK), MARK, 7 * 90_000, stair, ppm('0.05'));
    expect(sleep).toEqual({ delaySeconds: 90, wakeMark: undefined });
  });

  it('no bidder left (this step spent the last): the next step, which ends the auction; nothing to wake', () => {
    expect(planSleep(sellAt(MARK), MARK, 0, stair, undefined)).toEqual({
      delaySeconds: 90,
      wakeMark: undefined,
    });
    // Ten seconds before tail: the step at 3,600 s.
    expect(planSleep(sellAt(MARK), MARK, 3_590_000, stair, undefined)).toEqual({
      delaySeconds: 10,
      wakeMark: undefined,
    });
  });

  it('a reset (cusp) ends the sleep even when no bid is near', () => {
    // cusp 0.97: 0.99^3 = 0.9703 >= 0.97 > 0.99^4, so step 4 must reset.
    const cfg = config({ ...stair, cusp: ppm('0.97') });
    const sleep = planSleep(sellAt(MARK), MARK, 0, cfg, ppm('0.5'));
    expect(sleep.delaySeconds).toBe(4 * 90);
  });

  it('a BUY lot mirrors it: sleeps until the rising price reaches mark * (1 + d), woken by a lower mark', () => {
    const auction = { direction: 'BUY' as const, top: startPrice(MARK, 'BUY', stair.buf), startedAtMs: 0 };
    const sleep = planSleep(auction, MARK, 0, stair, ppm('0.05'));
    expect(sleep.delaySeconds).toBeGreaterThan(90);
    expect(sleep.wakeMark).toBeLessThan(MARK);
    expect(wakes('BUY', sleep.wakeMark as bigint, MARK)).toBe(false);
    expect(wakes('BUY', sleep.wakeMark as bigint, sleep.wakeMark as bigint)).toBe(true);
  });

  it('earlierWake keeps the mark that wakes first: the lower SELL, the higher BUY', () => {
    expect(earlierWake('SELL', 5n, 7n)).toBe(5n);
    expect(earlierWake('BUY', 5n, 7n)).toBe(7n);
  });

  it('property: wakes at the first step due at this mark, and every mark that takes a skipped step wakes it', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<AuctionDirection>('SELL', 'BUY'),
        fc.integer({ min: 900_000, max: 999_000 }),
        fc.integer({ min: 1, max: 300 }),
        fc.integer({ min: 60, max: 7_200 }),
        fc.integer({ min: 0, max: 200_000 }),
        fc.integer({ min: 500, max: 2_000 }),
        fc.nat(8_000_000),
        fc.integer({ min: 1, max: 3_000 }),
        (direction, cut, step, tail, discount, markPermille, elapsed, otherPermille) => {
          const cfg = config({
            curve: { kind: 'stairstep', cut: BigInt(cut), stepSeconds: step },
            tailSeconds: tail,
            cusp: ppm('0.3'),
            floor: ppm('0.1'),
          });
          const start = price('1000');
          const auction = { direction, top: startPrice(start, direction, cfg.buf), startedAtMs: 0 };
          const mark = (start * BigInt(markPermille)) / 1000n;
          const d = BigInt(discount);
          const sleep = planSleep(auction, mark, elapsed, cfg, d);
          expect(sleep.delaySeconds).toBeGreaterThanOrEqual(nextStepDelaySeconds(auction, elapsed, cfg));
          expect(sleep.delaySeconds).toBeLessThanOrEqual(900);

          // Reference: walk every boundary up to the wake.
          const due = (k: number, m: bigint) => {
            const s = auctionStatus(auction, m, k * step * 1000, cfg);
            return s.needsReset || accepts({ maxDiscountPpm: d }, direction, s.price, m);
          };
          const stepMs = step * 1000;
          const first = Math.floor(elapsed / stepMs) + 1;
          const wakeAt = elapsed + sleep.delaySeconds * 1000;
          // The message lands in step wakeStep: it sleeps through every boundary before that one.
          const wakeStep = Math.floor(wakeAt / stepMs);
          const skipped: number[] = [];
          for (let k = first; k < wakeStep; k++) skipped.push(k);
          for (const k of skipped) expect(due(k, mark)).toBe(false);
          // It sleeps to a due step, or as long as a message can wait, or to the first second past tail.
          const byTime = sleep.delaySeconds === 900 || Math.floor(wakeAt / 1000) === tail + 1;
          if (!byTime) expect(due(wakeStep, mark)).toBe(true);

          const takes = (m: bigint) =>
            skipped.some((k) => {
              const s = auctionStatus(auction, m, k * stepMs, cfg);
              return accepts({ maxDiscountPpm: d }, direction, s.price, m);
            });
          // Exact (the floor is far below the bids here): at the wake mark a skipped step is taken, one unit short not.
          if (sleep.wakeMark !== undefined) {
            expect(takes(sleep.wakeMark)).toBe(true);
            expect(takes(sleep.wakeMark + (direction === 'SELL' ? -1n : 1n))).toBe(false);
          }
          // Soundness of the wake mark: any other mark that would take a skipped step reaches it.
          const other = (start * BigInt(otherPermille)) / 1000n;
          if (other <= 0n) return;
          if (takes(other)) {
            expect(sleep.wakeMark).toBeDefined();
            expect(wakes(direction, sleep.wakeMark as bigint, other)).toBe(true);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('firstTrue: the first k where a monotone predicate holds, whatever the guess (right, wrong or out of range)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 50 }),
        fc.integer({ min: 0, max: 50 }),
        fc.integer({ min: -5, max: 110 }),
        fc.option(fc.integer({ min: -5, max: 110 }), { nil: undefined }),
        (lo, width, threshold, guess) => {
          const hi = lo + width;
          const looked: number[] = [];
          const pred = (k: number) => {
            expect(k >= lo && k < hi).toBe(true);
            looked.push(k);
            return k >= threshold;
          };
          expect(firstTrue(lo, hi, pred, guess)).toBe(Math.min(Math.max(threshold, lo), hi));
          // A right guess settles it in at most two looks.
          if (guess === threshold && threshold > lo && threshold < hi) expect(looked.length).toBe(2);
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('property: the first due step whatever the floor, cusp and curve (its guess in doubles is only a guess)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<AuctionDirection>('SELL', 'BUY'),
        fc.oneof(
          fc.integer({ min: 500_000, max: 999_999 }).map((cut) => ({ kind: 'stairstep' as const, cut })),
          fc.integer({ min: 60, max: 20_000 }).map((tau) => ({ kind: 'linear' as const, tau })),
        ),
        fc.integer({ min: 1, max: 300 }),
        fc.integer({ min: 0, max: 990_000 }),
        fc.integer({ min: 0, max: 990_000 }),
        fc.integer({ min: 0, max: 500_000 }),
        fc.integer({ min: 200, max: 3_000 }),
        fc.nat(3_000_000),
        (direction, shape, step, floor, cusp, discount, markPermille, elapsed) => {
          const cfg = config({
            curve:
              shape.kind === 'stairstep'
                ? { kind: 'stairstep', cut: BigInt(shape.cut), stepSeconds: step }
                : { kind: 'linear', tauSeconds: shape.tau },
            tailSeconds: 3_600,
            cusp: BigInt(cusp),
            floor: BigInt(floor),
          });
          const start = price('1000');
          const auction = { direction, top: startPrice(start, direction, cfg.buf), startedAtMs: 0 };
          const mark = (start * BigInt(markPermille)) / 1000n;
          const d = BigInt(discount);
          const sleep = planSleep(auction, mark, elapsed, cfg, d);
          const stepMs = stepSeconds(cfg) * 1000;
          const due = (k: number) => {
            const s = auctionStatus(auction, mark, k * stepMs, cfg);
            return s.needsReset || accepts({ maxDiscountPpm: d }, direction, s.price, mark);
          };
          const wakeAt = elapsed + sleep.delaySeconds * 1000;
          const wakeStep = Math.floor(wakeAt / stepMs);
          for (let k = Math.floor(elapsed / stepMs) + 1; k < wakeStep; k++) expect(due(k)).toBe(false);
          const byTime = sleep.delaySeconds === 900 || Math.floor(wakeAt / 1000) === cfg.tailSeconds + 1;
          if (!byTime) expect(due(wakeStep)).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });
});
