import {
  type EventBridgeClient,
  PutEventsCommand,
  type PutEventsCommandOutput,
  type PutEventsRequestEntry,
} from '@aws-sdk/client-eventbridge';
import { equalJitterDelayMs, sleep as sleepMs } from '../backoff.ts';
import { counted } from '../domain/words.ts';
import { firstLine } from '../error-text.ts';
import { chunksOf } from '../in-flight.ts';
import { type PriceTickDetail, priceTickDetailSchema } from '../schemas/tick.ts';
import { TICK_BUS } from '../topology.ts';

/**
 * Publishing PriceTick events on the tick bus (docs/FEED.md): what an exchange's feed imports or copies, and what the
 * operator commands (`inject`, `replay`, `dlq redrive`) and the local stack put ticks with. The AWS SDK v3's
 * EventBridge client, the detail's schema and a few modules that import nothing more of Backstop: a copy takes them
 * along, so an import added here is named in docs/FEED.md ("The publisher"; test/unit/feed-doc.test.ts).
 *
 * - `tickDetail` checks a detail against the schema margin-check parses, so a tick it would refuse as
 *   tick/malformed is refused here, before it is sent, with the same reason.
 * - `putEntries` sends entries 10 per PutEvents (the API's most), in order, one call at a time, and sends again
 *   exactly the entries the bus answered with a retryable code (InternalFailure, ThrottlingException), unchanged,
 *   after a backoff, until they are put or their attempts run out. Never renumbered: a tick sent twice reaches
 *   margin-check as the same sequence, which it takes once (docs/FEED.md, "PutEvents: limits, partial failures, retries").
 * - `publishTicks` is the feed's call: ticks in, an error naming each tick not put, and each of unknown fate.
 */

/** Entries PutEvents takes in one call. */
export const PUT_EVENTS_BATCH = 10;

/**
 * PutEvents' per-entry codes worth another attempt (AWS's PutEventsResultEntry: the others, AccessDeniedException,
 * InvalidArgument, MalformedDetail, NotAuthorizedForSourceException, ..., refuse the entry itself).
 */
export const RETRYABLE_ENTRY_CODES: ReadonlySet<string> = new Set(['InternalFailure', 'ThrottlingException']);

export class TickInputError extends Error {
  override readonly name = 'TickInputError';
}

export interface TickFields {
  readonly symbol: string;
  /** A plain decimal string, at most 8 decimals ("1520.5"): never a JavaScript number, which rounds. */
  readonly markPrice: string;
  readonly indexPrice?: string;
  /** When the price was observed, epoch milliseconds (not seconds). */
  readonly timestampMs: number;
  /** The market's feed sequence: above the last one published for this market, never reused. */
  readonly sequence: number;
  /** The feed's id (1 to 64 characters): shown in logs, not judged. */
  readonly source: string;
}

/** A PriceTick detail, validated as margin-check will parse it (TickInputError with its reason if not). */
export function tickDetail(fields: TickFields): PriceTickDetail {
  const detail: PriceTickDetail = {
    symbol: fields.symbol,
    markPrice: fields.markPrice,
    ...(fields.indexPrice === undefined ? {} : { indexPrice: fields.indexPrice }),
    timestamp: fields.timestampMs,
    sequence: fields.sequence,
    source: fields.source,
  };
  const parsed = priceTickDetailSchema.safeParse(detail);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new TickInputError(`tick/malformed: ${issues.join('; ')}`);
  }
  return detail;
}

/** The PutEvents entry of a tick detail on `busName` (the bus's name in its own account, its ARN from another). */
export const tickEntry = (busName: string, detail: PriceTickDetail): PutEventsRequestEntry => ({
  EventBusName: busName,
  Source: TICK_BUS.source,
  DetailType: TICK_BUS.detailType,
  Detail: JSON.stringify(detail),
});

export interface RetryPolicy {
  /** Calls an entry gets in all, the first included (1: no retry). */
  readonly attempts: number;
  /** The wait before the first retry; each next one doubles it, up to maxDelayMs, less a random part of it. */
  readonly firstDelayMs: number;
  readonly maxDelayMs: number;
}

/**
 * 5 calls over about 1.5 s at most: far within a tick's life (margin-check refuses one older than the market's
 * maxTickAgeSeconds, 60 s by default), and short enough that a feed's next tick is not held behind it.
 */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, firstDelayMs: 100, maxDelayMs: 1000 };

export interface PutOptions {
  readonly retry?: Partial<RetryPolicy>;
  /** The wait between attempts (tests record it instead). */
  readonly sleep?: (ms: number) => Promise<void>;
  /** In [0, 1): the jitter of each wait (tests fix it). */
  readonly random?: () => number;
  /**
   * Whether a call that failed without an answer (the SDK's own retries spent) is sent again, its entries unchanged,
   * after the policy's backoff and within its attempts, rather than ending the put: its error may heal (a timeout,
   * the network, a throttle, a 5xx). Absent: never (a feed's next tick is not held behind a dead connection). Each
   * such call can take the SDK's attempts, so a tick may be sent again past its life: margin-check refuses it as too
   * old, nothing changes. Asked too of a call refused whole with a code the SDK's retry classes as a throttle or
   * transient (retryableBySdk: a ThrottlingException the SDK sent once, its retry quota spent), whose entries are not
   * on the bus: sent again so, they are refused only once their attempts run out (feed49c-call-refused-retryable).
   */
  readonly callMayHeal?: (error: unknown) => boolean;
}

/** An entry EventBridge refused: its answer carried an error code, so the entry is not on the bus. */
export interface RefusedEntry {
  /** The entry's index in the input. */
  readonly index: number;
  readonly code: string;
  readonly message: string;
  /** Calls that carried it. */
  readonly attempts: number;
  /**
   * Whether its last code was a retryable one (its attempts ran out) rather than a refusal of the entry: for a call
   * refused whole, also one the SDK's retry classes a throttle or transient (retryableBySdk).
   */
  readonly retryable: boolean;
  /**
   * 'entry': the code came in the entry's result (PutEventsResultEntry); 'call': EventBridge refused the whole call
   * (an error answer, such as AccessDeniedException, to a request the SDK sent once), so none of its entries was put.
   */
  readonly scope: 'entry' | 'call';
}

/**
 * An entry EventBridge did not answer for: its call failed without an answer (the network, a timeout, a 5xx), or the
 * answer held no result for it. It may be on the bus or not; sending it again is safe (margin-check takes a sequence
 * once).
 */
export interface UnknownEntry {
  readonly index: number;
  /** The call's error (its name, as the SDK gives it) and message. */
  readonly code: string;
  readonly message: string;
  readonly attempts: number;
  /**
   * Set when the last call's answer refused the entry (`code`, `message`: its refusal) after an earlier call of it got
   * no answer, or an answer that said nothing of it: that refusal says nothing of the earlier call, which the bus may
   * have taken (feed49b-held-refused-unknown). As the refusal came: for the entry or its whole call, and whether its
   * code was a retryable one.
   */
  readonly refusedAfter?: Pick<RefusedEntry, 'scope' | 'retryable'>;
}

export interface PutOutcome {
  readonly accepted: number;
  /** The entries EventBridge refused (not on the bus), in input order. */
  readonly rejected: readonly RefusedEntry[];
  /**
   * Entries an answer held no result for after their attempts (AWS answers one per entry: none, normally), and those
   * refused after an earlier call of them got no answer (UnknownEntry.refusedAfter).
   */
  readonly unknown: readonly UnknownEntry[];
  /** The accepted entries' event ids, in input order. */
  readonly eventIds: readonly string[];
}

/**
 * A call that failed without EventBridge answering it (the SDK's own retries spent): `putEntries` stops there.
 * `outcome` is what the calls before it put and refused; `unknown` the entries that call carried, which may be on
 * the bus (sending them again is safe: margin-check takes a sequence once); `unsent` the later entries, never sent.
 * `notSent`: why the failed call itself left no request (its credentials could not be resolved: notSentReason), its
 * entries then among `unsent`, not `unknown`, but for those an earlier call of which got no answer.
 */
export class PutEntriesError extends Error {
  override readonly name = 'PutEntriesError';
  constructor(
    readonly outcome: PutOutcome,
    readonly unknown: readonly UnknownEntry[],
    readonly unsent: readonly number[],
    override readonly cause: unknown,
    readonly notSent?: string,
  ) {
    const before = `${outcome.accepted} put and ${outcome.rejected.length} refused before it`;
    super(
      notSent === undefined
        ? `events/put-failed: a PutEvents call failed after ${attempts(Math.max(1, ...unknown.map((u) => u.attempts)))} (${errorName(cause)}: ${firstLine(errorMessage(cause))}): ${counted(unknown.length, 'entry', 'entries')} may be on the bus or not, ${unsent.length} not sent; ${before}`
        : `events/not-sent: a PutEvents call was NOT sent, ${notSent} (${errorName(cause)}: ${firstLine(errorMessage(cause))}): ${counted(unsent.length, 'entry', 'entries')} not sent, none on the bus${
            unknown.length > 0
              ? `, ${counted(unknown.length, 'entry', 'entries')} of it may be on the bus or not (an earlier call of ${unknown.length === 1 ? 'it' : 'them'} got no answer)`
              : ''
          }; ${before}`,
    );
  }
}

const errorName = (error: unknown): string => (error instanceof Error ? error.name : 'Error');
/** `n attempts`, one `attempt`: the words of the messages that say how often an entry was sent. */
export const attempts = (n: number): string => counted(n, 'attempt', 'attempts');
const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * The code of a call EventBridge refused as a whole: an error it answered (a 4xx, the client's fault) to a request
 * the SDK sent once. Its entries are not on the bus. A request sent more than once may have been taken by an earlier
 * attempt whose answer was lost; an error without an answer (the network, a timeout) or a 5xx says nothing of them.
 */
function callRefusal(error: unknown): string | undefined {
  const e = error as {
    name?: unknown;
    $fault?: unknown;
    $metadata?: { httpStatusCode?: unknown; attempts?: unknown };
  };
  const status = e?.$metadata?.httpStatusCode;
  if (e?.$fault !== 'client' || typeof status !== 'number' || status >= 500) return undefined;
  if (e.$metadata?.attempts !== 1 || typeof e.name !== 'string') return undefined;
  return e.name;
}

/**
 * The error names the SDK's standard retry strategy takes for a throttle (@smithy/core's retry `isThrottlingError`) or
 * as transient (its `isTransientError`), copied from its lists: the publisher imports no more than the client
 * (test/unit/feed-publisher-answers.test.ts checks them against the SDK's own classification, through a client).
 */
const SDK_THROTTLING_CODES: ReadonlySet<string> = new Set([
  'BandwidthLimitExceeded',
  'EC2ThrottledException',
  'LimitExceededException',
  'PriorRequestNotComplete',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
  'ThrottledException',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'TransactionInProgressException',
]);
const SDK_TRANSIENT_CODES: ReadonlySet<string> = new Set([
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
]);

/**
 * Whether the SDK's retry classes an error answer as worth another attempt (a throttle, or transient: a 429, a name of
 * its lists, a `$retryable` trait, a clock skew it corrected, a signature expired, a 5xx it retries): what the SDK would
 * have sent again had its attempts, or its retry quota, not run out. Of an answer only: a call without one (the network,
 * a timeout) is judged by the caller (`callMayHeal`).
 */
export function retryableBySdk(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as {
    name?: unknown;
    message?: unknown;
    $retryable?: unknown;
    $metadata?: { httpStatusCode?: unknown; clockSkewCorrected?: unknown };
  };
  const name = typeof e.name === 'string' ? e.name : '';
  const status = e.$metadata?.httpStatusCode;
  return (
    status === 429 ||
    SDK_THROTTLING_CODES.has(name) ||
    e.$retryable !== undefined ||
    e.$metadata?.clockSkewCorrected === true ||
    (name === 'InvalidSignatureException' &&
      typeof e.message === 'string' &&
      e.message.includes('Signature expired')) ||
    SDK_TRANSIENT_CODES.has(name) ||
    (typeof status === 'number' && [500, 502, 503, 504].includes(status))
  );
}

/**
 * What the SDK throws when it cannot resolve the caller's credentials (@smithy/property-provider's ProviderError and its
 * kin: none configured, an SSO session expired), before it signs a request: none of it leaves.
 */
const CREDENTIALS_ERRORS: ReadonlySet<string> = new Set([
  'CredentialsProviderError',
  'TokenProviderError',
  'ProviderError',
]);

/**
 * Why a call that failed left no request at all, or undefined when it may have: its credentials could not be resolved
 * (CREDENTIALS_ERRORS) and none of its SDK attempts reached the HTTP handler (`requests`: requestsOf's count). Not the
 * error's `$metadata.attempts`: the SDK's credential provider hands one rejection to every call resolving at the time
 * (memoized), and each call's retry stamps its own attempts on that one error (feed50-credentials-shared-error).
 */
function notSentReason(error: unknown, requests: number): string | undefined {
  const e = error as { name?: unknown };
  if (typeof e?.name !== 'string' || !CREDENTIALS_ERRORS.has(e.name) || requests > 0) return undefined;
  return "no request left: the SDK could not resolve the caller's credentials";
}

/**
 * Counts the requests of `command` that reach the HTTP handler (one an SDK attempt, signed and leaving): a middleware of
 * the command's own, so each call counts its own.
 */
function requestsOf(command: PutEventsCommand): { count: number } {
  const requests = { count: 0 };
  command.middlewareStack.add(
    (next) => async (args) => {
      requests.count += 1;
      return next(args);
    },
    { step: 'deserialize', name: 'backstopRequestsSent', priority: 'low' },
  );
  return requests;
}

/** The wait before retry `retry` (1, 2, ...): exponential, capped, with the upper half jittered. */
export const retryDelayMs = (retry: number, policy: RetryPolicy, random: () => number): number =>
  equalJitterDelayMs(retry, policy.firstDelayMs, policy.maxDelayMs, random);

/**
 * PutEvents in calls of at most 10 entries, one after another in input order. The entries of a call the bus answered
 * with InternalFailure or ThrottlingException are sent again, exactly those and unchanged, before the next call's
 * entries; any other code refuses the entry for good. A call EventBridge refuses as a whole (AccessDeniedException
 * from the bus's policy, for one) refuses each of its entries, and the next call goes on; one refused with a code the
 * SDK would retry (a throttle it sent once) is sent again first where `callMayHeal` says so. A call that fails without
 * an answer (the SDK's own retries spent: the network, a timeout, a 5xx) ends it: PutEntriesError says what was put,
 * refused, of unknown fate (sending those again is safe: margin-check takes a sequence once) and not sent. An
 * entry sent again after a call that got no answer, or an answer that said nothing of it (a held tick's, with
 * `callMayHeal`), stays of unknown fate whatever a later call says of it but put: a refusal then, of the entry or of its
 * call, says nothing of the earlier call (UnknownEntry.refusedAfter).
 */
export async function putEntries(
  events: EventBridgeClient,
  entries: readonly PutEventsRequestEntry[],
  options: PutOptions = {},
): Promise<PutOutcome> {
  const policy = { ...DEFAULT_RETRY, ...options.retry };
  if (!Number.isInteger(policy.attempts) || policy.attempts < 1)
    throw new RangeError(`retry.attempts must be a whole number of at least 1, got ${policy.attempts}`);
  const sleep = options.sleep ?? sleepMs;
  const random = options.random ?? Math.random;
  const ids: (string | undefined)[] = [];
  const rejected: RefusedEntry[] = [];
  const unknown: UnknownEntry[] = [];
  const byIndex = <T extends { index: number }>(list: T[]) => [...list].sort((a, b) => a.index - b.index);
  const outcome = (): PutOutcome => {
    const eventIds = ids.filter((id): id is string => id !== undefined);
    return { accepted: eventIds.length, rejected: byIndex(rejected), unknown: byIndex(unknown), eventIds };
  };
  const batches = chunksOf(
    entries.map((_, i) => i),
    PUT_EVENTS_BATCH,
  );
  // The entries a call of which failed without an answer, or got an answer that said nothing of them, with why: they may
  // be on the bus whatever a later call says, unless a later answer says one was put (feed49b-held-refused-unknown).
  const unanswered = new Map<number, string>();
  /** Refused by `code` (the entry's or its call's), or of unknown fate when an earlier call of it went unanswered. */
  const refuse = (index: number, refusal: Omit<RefusedEntry, 'index'>) => {
    const earlier = unanswered.get(index);
    if (earlier === undefined) rejected.push({ index, ...refusal });
    else
      unknown.push({
        index,
        code: refusal.code,
        message: `${refusal.message ? `${refusal.message}; ` : ''}an earlier call of it got ${earlier}: it may be on the bus`,
        attempts: refusal.attempts,
        refusedAfter: { scope: refusal.scope, retryable: refusal.retryable },
      });
  };
  for (const [b, batch] of batches.entries()) {
    let pending = batch;
    for (let attempt = 1; pending.length > 0; attempt++) {
      if (attempt > 1) await sleep(retryDelayMs(attempt - 1, policy, random));
      let out: PutEventsCommandOutput;
      const command = new PutEventsCommand({ Entries: pending.map((i) => entries[i]!) });
      const requests = requestsOf(command);
      try {
        out = await events.send(command);
      } catch (error) {
        const code = callRefusal(error);
        if (code === undefined) {
          // No request left (no credentials): not on the bus, not of unknown fate (feed49-put-not-sent), unless an
          // earlier call of the entry went unanswered (review49-feed-no-result-not-sent).
          const reason = notSentReason(error, requests.count);
          const left = reason === undefined ? [] : pending.filter((i) => !unanswered.has(i));
          const notSent = left.length > 0 ? reason : undefined;
          const mayBeOnBus = pending.filter((i) => !left.includes(i));
          // Sending them again is safe: margin-check takes a sequence once.
          if (attempt < policy.attempts && options.callMayHeal?.(error)) {
            for (const i of mayBeOnBus)
              if (!unanswered.has(i)) unanswered.set(i, `no answer (${errorName(error)})`);
            continue;
          }
          const message = errorMessage(error);
          const fateUnknown = mayBeOnBus.map((index) => ({
            index,
            code: errorName(error),
            message,
            attempts: attempt,
          }));
          if (notSent !== undefined)
            throw new PutEntriesError(
              outcome(),
              fateUnknown,
              [...left, ...batches.slice(b + 1).flat()],
              error,
              notSent,
            );
          throw new PutEntriesError(outcome(), fateUnknown, batches.slice(b + 1).flat(), error);
        }
        // Refused as a whole: none of its entries is on the bus by this call. A code the SDK's retry takes for a throttle
        // or transient, sent once (its retry quota spent, or maxAttempts 1), may heal: sent again as a call that got no
        // answer is, where the caller says so (feed49c-call-refused-retryable); any other, never.
        const message = errorMessage(error);
        const retryable = RETRYABLE_ENTRY_CODES.has(code) || retryableBySdk(error);
        if (retryable && attempt < policy.attempts && options.callMayHeal?.(error)) continue;
        for (const index of pending)
          refuse(index, { code, message, attempts: attempt, retryable, scope: 'call' });
        break;
      }
      const again: number[] = [];
      pending.forEach((index, k) => {
        // One result per entry, in order (AWS): an id, or an error code. One with neither, or none, says nothing of
        // the entry: sent again as InternalFailure is, then of unknown fate.
        const result = out.Entries?.[k];
        if (result?.EventId && !result.ErrorCode) {
          ids[index] = result.EventId;
          return;
        }
        const code = result?.ErrorCode ?? 'InternalFailure';
        const retryable = RETRYABLE_ENTRY_CODES.has(code);
        if (retryable && attempt < policy.attempts) {
          again.push(index);
          // Said nothing of it: it may be on the bus, whatever a later call says (review49-feed-no-result-not-sent).
          if (!result?.ErrorCode && !unanswered.has(index))
            unanswered.set(index, 'an answer with no result for it');
        } else if (!result?.ErrorCode)
          unknown.push({ index, code: 'NoResult', message: 'no result for the entry', attempts: attempt });
        else
          refuse(index, {
            code,
            message: result.ErrorMessage ?? '',
            attempts: attempt,
            retryable,
            scope: 'entry',
          });
      });
      pending = again;
    }
  }
  return outcome();
}

/**
 * PutEvents' per-entry codes of a refusal by policy (the caller's IAM policy or the bus's, on the entry's source and
 * detail type, judged per event: docs/FEED.md, "Who may publish"): every tick a sender puts carries the same.
 */
export const POLICY_ENTRY_CODES: ReadonlySet<string> = new Set([
  'AccessDeniedException',
  'NotAuthorizedForSourceException',
  'NotAuthorizedForDetailTypeException',
]);

/**
 * The refusal among `rejected` that every next call would meet too: a call refused whole (scope 'call') with a code
 * not worth another attempt (AccessDeniedException: the caller's credentials, or the bus's policy refusing it; a bus
 * that does not exist), or an entry refused by policy (POLICY_ENTRY_CODES, in a call that succeeds), which every
 * next tick, of the same source and detail type, meets too (review47-replay-entry-policy). A sender of one call
 * after another stops at it (`backstop replay`); a throttled call, or an entry refused for what it carries, says
 * nothing of the next.
 */
export const refusedForEveryCall = <T extends RefusedEntry>(rejected: readonly T[]): T | undefined =>
  rejected.find((r) => (r.scope === 'call' ? !r.retryable : POLICY_ENTRY_CODES.has(r.code)));

/** How an entry was refused, in words: its whole call, a retryable code through its attempts, or the entry itself. */
export const howRefused = (r: Pick<RefusedEntry, 'scope' | 'retryable' | 'attempts'>): string =>
  r.scope === 'call'
    ? `the whole call refused${r.retryable && r.attempts > 1 ? ` ${counted(r.attempts, 'time', 'times')}` : ''}`
    : r.retryable
      ? `still failing after ${attempts(r.attempts)}`
      : 'refused';

/** A tick EventBridge refused (its answer carried an error code): not on the bus. */
export interface RefusedTick extends RefusedEntry {
  readonly symbol: string;
  readonly sequence: number;
}

/** A tick EventBridge did not answer for (its call failed without an answer, or no result): on the bus or not. */
export interface UnknownTick extends UnknownEntry {
  readonly symbol: string;
  readonly sequence: number;
}

/** A tick never sent (a call before it failed): not on the bus. */
export interface UnsentTick {
  readonly index: number;
  readonly symbol: string;
  readonly sequence: number;
}

/**
 * Ticks not known to be on the bus, each said as it stands: `refused` by EventBridge (its answer carried an error code,
 * for the entry or for its whole call: not on the bus), of `unknown` fate (their call failed without an answer: on
 * the bus or not; sending them again is safe, margin-check takes a sequence once), or `unsent` (after that failure:
 * not on the bus). The ticks not named were put (`outcome.eventIds`). `cause`: the failed call's error, if one failed.
 */
export class TickPublishError extends Error {
  override readonly name = 'TickPublishError';
  constructor(
    readonly refused: readonly RefusedTick[],
    readonly unknown: readonly UnknownTick[],
    readonly unsent: readonly UnsentTick[],
    readonly outcome: PutOutcome,
    override readonly cause?: unknown,
    /** Why the failed call left no request (PutEntriesError.notSent): its ticks are among `unsent`. */
    readonly notSent?: string,
  ) {
    const total = outcome.accepted + refused.length + unknown.length + unsent.length;
    const parts = [
      refused.length > 0 &&
        `${refused.length} refused by EventBridge, not on the bus: ${refused
          .map(
            (r) =>
              `${r.symbol} ${r.sequence}: ${r.code}${r.message ? ` (${r.message})` : ''}, ${howRefused(r)}`,
          )
          .join('; ')}`,
      unknown.length > 0 &&
        `${unknown.length} of unknown fate, on the bus or not (sending again is safe): ${unknown
          .map((u) => `${u.symbol} ${u.sequence}: ${u.code}${u.message ? ` (${u.message})` : ''}`)
          .join('; ')}`,
      unsent.length > 0 &&
        `${unsent.length} not sent, not on the bus${
          notSent === undefined ? '' : ` (${notSent}: ${errorName(cause)}: ${firstLine(errorMessage(cause))})`
        }: ${unsent.map((u) => `${u.symbol} ${u.sequence}`).join('; ')}`,
    ].filter((p): p is string => typeof p === 'string');
    super(
      `tick/not-published: of ${counted(total, 'tick', 'ticks')} ${outcome.accepted} put; ${parts.join('; ')}`,
    );
  }
}

/**
 * Publishes ticks on the bus `busName`: each checked as margin-check parses it, at most one a market (EventBridge
 * keeps no order between events: two of one market in flight together may reach margin-check in either order, the
 * older then refused as out of order), retried as `putEntries` retries them. Resolves to the event ids in input
 * order once every tick is on the bus; throws TickInputError before sending anything when a tick is malformed, and
 * otherwise TickPublishError naming each tick refused, of unknown fate or not sent (the others were put).
 */
export async function publishTicks(
  events: EventBridgeClient,
  busName: string,
  ticks: readonly TickFields[],
  options: PutOptions = {},
): Promise<readonly string[]> {
  const seen = new Set<string>();
  const entries = ticks.map((tick, i) => {
    if (seen.has(tick.symbol))
      throw new TickInputError(
        `tick ${i}: a second tick of ${tick.symbol} in one call: EventBridge keeps no order between them, and the older is refused as out of order if it lands second; publish the latest`,
      );
    seen.add(tick.symbol);
    try {
      return tickEntry(busName, tickDetail(tick));
    } catch (error) {
      throw new TickInputError(`tick ${i} (${tick.symbol} ${tick.sequence}): ${(error as Error).message}`);
    }
  });
  const named = <T extends { index: number }>(e: T) => ({
    ...e,
    symbol: ticks[e.index]!.symbol,
    sequence: ticks[e.index]!.sequence,
  });
  let outcome: PutOutcome;
  try {
    outcome = await putEntries(events, entries, options);
  } catch (error) {
    if (!(error instanceof PutEntriesError)) throw error;
    throw new TickPublishError(
      error.outcome.rejected.map(named),
      [...error.outcome.unknown, ...error.unknown].map(named).sort((a, b) => a.index - b.index),
      error.unsent.map((index) => named({ index })),
      error.outcome,
      error.cause,
      error.notSent,
    );
  }
  if (outcome.rejected.length > 0 || outcome.unknown.length > 0)
    throw new TickPublishError(outcome.rejected.map(named), outcome.unknown.map(named), [], outcome);
  return outcome.eventIds;
}
