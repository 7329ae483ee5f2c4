/**
 * Deep copy of plain data (objects, arrays, primitives including bigint), frozen at every level. Undefined
 * properties are dropped, as DynamoDB's marshaller drops them, so a read never shows `key: undefined`. A frozen
 * value is kept as it is, not copied: only this function freezes data (the embedded stores, the AWS adapter's
 * cache of liquidation contexts), so a frozen value is frozen at every level, and a record built from a stored one
 * (its history, its fills) shares those parts.
 */
export function frozenCopy<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  if (Array.isArray(value)) return Object.freeze(value.map(frozenCopy)) as T;
  // A spread is the engine's fast clone; only nested objects not yet frozen are copied in turn.
  const out = { ...value } as Record<string, unknown>;
  for (const key in out) {
    const v = out[key];
    if (v === undefined) return withoutUndefined(value);
    if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) out[key] = frozenCopy(v);
  }
  return Object.freeze(out) as T;
}

/** frozenCopy of an object with undefined properties, which it leaves out (rare: built without deletes). */
function withoutUndefined<T>(value: T): T {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value as object)) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined) out[key] = frozenCopy(v);
  }
  return Object.freeze(out) as T;
}
