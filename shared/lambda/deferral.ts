import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Records a handler deferred itself: it set their visibility timeout to when to retry them. Lambda leaves a failed
 * record's visibility as it is; a local runner that retries failures at once must leave these be too, so it runs
 * each invocation under a set that collects their receipt handles.
 */
const deferred = new AsyncLocalStorage<Set<string>>();

/** Runs one invocation, adding to `into` the receipt handles of the records it deferred itself. */
export const recordingDeferrals = <T>(into: Set<string>, run: () => T): T => deferred.run(into, run);

/** Notes that the current invocation set this record's visibility itself (nothing outside a local runner). */
export const noteDeferred = (receiptHandle: string): void => {
  deferred.getStore()?.add(receiptHandle);
};
