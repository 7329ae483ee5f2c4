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

export { frozenCopy } from '../../frozen.ts';

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
