import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Why a handler set a failed record's visibility itself: `wait`, it cannot be processed before then (another
 * delivery's order lease); `backoff`, its queue's retry schedule after a failure (sooner than the whole visibility
 * timeout, and later each time).
 */
export type DeferralKind = 'wait' | 'backoff';

/**
 * Records a handler deferred itself, by receipt handle. Lambda leaves a failed record's visibility as the handler
 * set it; a local runner that retries failures at once must leave waits be too (and may retry a backoff at once),
 * so it runs each invocation under a map that collects them.
 */
const deferred = new AsyncLocalStorage<Map<string, DeferralKind>>();

/** Runs one invocation, adding to `into` the records it deferred itself. */
export const recordingDeferrals = <T>(into: Map<string, DeferralKind>, run: () => T): T =>
  deferred.run(into, run);

/** Notes that the current invocation set this record's visibility itself (nothing outside a local runner). */
export const noteDeferred = (receiptHandle: string, kind: DeferralKind): void => {
  deferred.getStore()?.set(receiptHandle, kind);
};
