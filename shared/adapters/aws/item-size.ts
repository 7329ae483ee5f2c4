import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import type { Item } from './codec.ts';

/** DynamoDB refuses an item over 400 KB (names and values, as itemBytes counts them). */
export const MAX_ITEM_BYTES = 400 * 1024;

const utf8 = (text: string): number => Buffer.byteLength(text, 'utf8');

/** A number's bytes: 1 per two significant digits (leading and trailing zeros trimmed), plus 1. */
function numberBytes(text: string): number {
  const digits = text.replace(/^-/, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
  return Math.ceil(Math.max(1, digits.length) / 2) + 1;
}

/** A value's bytes by DynamoDB's rules (CapacityUnitCalculations): lists and maps 3, and 1 per element. */
function valueBytes(v: AttributeValue): number {
  if (v.S !== undefined) return utf8(v.S);
  if (v.N !== undefined) return numberBytes(v.N);
  if (v.B !== undefined) return v.B.byteLength;
  if (v.BOOL !== undefined || v.NULL !== undefined) return 1;
  if (v.SS !== undefined) return v.SS.reduce((total, s) => total + utf8(s), 0);
  if (v.NS !== undefined) return v.NS.reduce((total, n) => total + numberBytes(n), 0);
  if (v.BS !== undefined) return v.BS.reduce((total, b) => total + b.byteLength, 0);
  if (v.L !== undefined) return v.L.reduce((total, e) => total + 1 + valueBytes(e), 3);
  if (v.M !== undefined) return 3 + Object.keys(v.M).length + itemBytes(v.M);
  throw new Error(`item-size: unknown attribute value ${Object.keys(v).join(',')}`);
}

/**
 * An item's size as DynamoDB counts it against MAX_ITEM_BYTES and for capacity units: each attribute's name and
 * value (the tests' check of items, the benchmark's units).
 */
export function itemBytes(item: Item | undefined): number {
  if (!item) return 0;
  let total = 0;
  for (const [name, value] of Object.entries(item)) total += utf8(name) + valueBytes(value);
  return total;
}
