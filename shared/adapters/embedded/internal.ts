import { type CrashHook, type ProcessingFailure, processingFailureProblem } from '../../ports/index.ts';

/**
 * Helpers shared by the embedded adapters: the crash hook they fire after each side effect, deep frozen
 * copies (a caller mutating its object must not change stored state, as with DynamoDB) and input checks.
 */

/** Bad input to an embedded adapter (a caller bug, not a failed condition): reason like 'positions/bad-limit'. */
export class EmbeddedInputError extends Error {
  override readonly name = 'EmbeddedInputError';
}

/** Mutable holder so every adapter of one bundle sees the hook a test installs later. */
export interface HookRef {
  current?: CrashHook | undefined;
}

/** Fires the crash hook right after a side effect; an InjectedCrash it throws propagates to the caller. */
export function fire(hook: HookRef, point: string): void {
  hook.current?.(point);
}

/**
 * Deep copy of plain data (objects, arrays, primitives including bigint), frozen at every level. Undefined
 * properties are dropped, as DynamoDB's marshaller drops them, so a read never shows `key: undefined`. A frozen
 * value is kept as it is, not copied: the stores only ever hold values frozen at every level by this function,
 * so a record built from a stored one (its history, its fills) shares those parts.
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

export function requireId(id: unknown, what: string): asserts id is string {
  if (typeof id !== 'string' || id.length === 0)
    throw new EmbeddedInputError(`${what}: id must be a non-empty string`);
}

/** Versions are positive integers (or zero) and a replacement carries exactly `expectedVersion + 1`. */
export function requireVersionBump(
  next: { readonly version: number },
  expectedVersion: number,
  what: string,
): void {
  if (!Number.isSafeInteger(expectedVersion) || expectedVersion < 0) {
    throw new EmbeddedInputError(`${what}/bad-version: expectedVersion ${expectedVersion} is not a version`);
  }
  if (next.version !== expectedVersion + 1) {
    throw new EmbeddedInputError(
      `${what}/bad-version: the new record must carry version ${expectedVersion + 1}, got ${next.version}`,
    );
  }
}

export function requireFailure(failure: ProcessingFailure, what: string): void {
  const problem = processingFailureProblem(failure);
  if (problem) throw new EmbeddedInputError(`${what}/bad-failure: ${problem}`);
}

/** map.get(key), first storing make() when absent. */
export function getOrCreate<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = make();
    map.set(key, value);
  }
  return value;
}
