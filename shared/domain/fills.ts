import { AccountingError } from './accounting.ts';
import type { Fill } from './model.ts';

/**
 * An order's market fills in at most `max` entries that settle exactly as they do: a close counts only their
 * total size and total price x size (accounting.ts), and a venue may answer one IOC with thousands of trades,
 * each of which would otherwise be stored on the liquidation's item (DynamoDB refuses one over 400 KB).
 *
 * At most `max` fills come back as they are (records of older versions read the same). Else neighbours at one
 * price merge, and past the first `max - 2` the rest fold into two fills at adjacent prices:
 *   size = sum size_i, notional = sum size_i price_i, low = floor(notional / size), high = notional - low size
 *   (low, size - high) and (low + 1, high), either left out when its size is 0
 * so size and notional are the folded fills' to the unit, and both prices lie within the folded ones' (so
 * within the order's limit). Folding a folded list changes nothing.
 */
export function boundedFills(fills: readonly Fill[], max: number): readonly Fill[] {
  if (fills.length <= max) return fills;
  if (!Number.isSafeInteger(max) || max < 2)
    throw new AccountingError('accounting/bad-fill', `at most ${max} fills: keep at least 2`);
  const merged: Fill[] = [];
  for (const [i, f] of fills.entries()) {
    // A cost settles instead of price x size (an auction's): such fills cannot fold into price and size.
    if (f.size <= 0n || f.price <= 0n || f.cost !== undefined)
      throw new AccountingError(
        'accounting/bad-fill',
        `fill ${i}: size ${f.size} and price ${f.price} must be > 0, and no cost`,
      );
    const last = merged[merged.length - 1];
    if (last?.price === f.price) merged[merged.length - 1] = { price: f.price, size: last.size + f.size };
    else merged.push({ price: f.price, size: f.size });
  }
  if (merged.length <= max) return merged;
  const kept = merged.slice(0, max - 2);
  let size = 0n;
  let notional = 0n;
  for (let i = max - 2; i < merged.length; i++) {
    const f = merged[i]!;
    size += f.size;
    notional += f.size * f.price;
  }
  const low = notional / size;
  const high = notional - low * size;
  if (size > high) kept.push({ price: low, size: size - high });
  if (high > 0n) kept.push({ price: low + 1n, size: high });
  return kept;
}
