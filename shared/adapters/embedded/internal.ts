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

/** Values frozenCopy made: frozen at every level already, so a record built from them shares them. */
const deeplyFrozen = new WeakSet<object>();

/**
 * Deep copy of plain data (objects, arrays, primitives including bigint), frozen at every level. Undefined
 * properties are dropped, as DynamoDB's marshaller drops them, so a read never shows `key: undefined`. Parts
 * that are themselves results of frozenCopy (a stored record's history, its fills) are shared, not copied.
 */
export function frozenCopy<T>(value: T): T {
  if (typeof value !== 'object' || value === null || deeplyFrozen.has(value)) return value;
  let out: object;
  if (Array.isArray(value)) out = Object.freeze(value.map(frozenCopy));
  else {
    const copy: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) copy[key] = frozenCopy(v);
    }
    out = Object.freeze(copy);
  }
  deeplyFrozen.add(out);
  return out as T;
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
