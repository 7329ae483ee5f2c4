import {
  type EventBridgeClient,
  PutEventsCommand,
  type PutEventsRequestEntry,
} from '@aws-sdk/client-eventbridge';
import { chunksOf } from '../in-flight.ts';
import { type PriceTickDetail, priceTickDetailSchema } from '../schemas/tick.ts';
import { TICK_BUS } from '../topology.ts';

/**
 * Publishing PriceTick events on the tick bus (docs/FEED.md): what an exchange's feed imports or copies, and what the
 * operator commands (`inject`, `replay`, `dlq redrive`) and the local stack put ticks with. Only the AWS SDK v3's
 * EventBridge client and the detail's schema: no other part of Backstop.
 *
 * - `tickDetail` checks a detail against the schema margin-check parses, so a tick it would refuse as
 *   tick/malformed is refused here, before it is sent, with the same reason.
 * - `putEntries` sends entries 10 per PutEvents (the API's most), in order, one call at a time, and sends again
 *   exactly the entries the bus answered with a retryable code (InternalFailure, ThrottlingException), unchanged,
 *   after a backoff, until they are put or their attempts run out. Never renumbered: a tick sent twice reaches
 *   margin-check as the same sequence, which it takes once (docs/FEED.md, "PutEvents: limits, partial failures, retries").
 * - `publishTicks` is the feed's call: ticks in, an error naming each tick the bus did not take.
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
}

export interface RefusedEntry {
  /** The entry's index in the input. */
  readonly index: number;
  readonly code: string;
  readonly message: string;
  /** Calls that carried it. */
  readonly attempts: number;
  /** Whether its last code was a retryable one (its attempts ran out) rather than a refusal of the entry. */
  readonly retryable: boolean;
}

export interface PutOutcome {
  readonly accepted: number;
  /** The entries the bus did not take, in input order. */
  readonly rejected: readonly RefusedEntry[];
  /** The accepted entries' event ids, in input order. */
  readonly eventIds: readonly string[];
}

/** The wait before retry `retry` (1, 2, ...): exponential, capped, with the upper half jittered. */
export function retryDelayMs(retry: number, policy: RetryPolicy, random: () => number): number {
  const full = Math.min(policy.maxDelayMs, policy.firstDelayMs * 2 ** (retry - 1));
  return Math.round(full / 2 + (full / 2) * random());
}

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * PutEvents in calls of at most 10 entries, one after another in input order. The entries of a call the bus answered
 * with InternalFailure or ThrottlingException are sent again, exactly those and unchanged, before the next call's
 * entries; any other code refuses the entry for good. A call that throws (the SDK's own retries spent: the network,
 * the whole call throttled or denied) throws here: its entries may be on the bus or not, and sending them again is
 * safe (margin-check takes a sequence once).
 */
export async function putEntries(
  events: EventBridgeClient,
  entries: readonly PutEventsRequestEntry[],
  options: PutOptions = {},
): Promise<PutOutcome> {
  const policy = { ...DEFAULT_RETRY, ...options.retry };
  if (!Number.isInteger(policy.attempts) || policy.attempts < 1)
    throw new RangeError(`retry.attempts must be a whole number of at least 1, got ${policy.attempts}`);
  const sleep = options.sleep ?? realSleep;
  const random = options.random ?? Math.random;
  const ids: (string | undefined)[] = [];
  const rejected: RefusedEntry[] = [];
  for (const batch of chunksOf(
    entries.map((_, i) => i),
    PUT_EVENTS_BATCH,
  )) {
    let pending = batch;
    for (let attempt = 1; pending.length > 0; attempt++) {
      if (attempt > 1) await sleep(retryDelayMs(attempt - 1, policy, random));
      const out = await events.send(new PutEventsCommand({ Entries: pending.map((i) => entries[i]!) }));
      const again: number[] = [];
      pending.forEach((index, k) => {
        // One result per entry, in order (AWS); a result missing or without an id is taken as not put.
        const result = out.Entries?.[k];
        if (result?.EventId && !result.ErrorCode) {
          ids[index] = result.EventId;
          return;
        }
        const code = result?.ErrorCode ?? 'InternalFailure';
        const retryable = RETRYABLE_ENTRY_CODES.has(code);
        if (retryable && attempt < policy.attempts) again.push(index);
        else
          rejected.push({
            index,
            code,
            message: result?.ErrorMessage ?? (result ? '' : 'no result for the entry'),
            attempts: attempt,
            retryable,
          });
      });
      pending = again;
    }
  }
  rejected.sort((a, b) => a.index - b.index);
  const eventIds = ids.filter((id): id is string => id !== undefined);
  return { accepted: eventIds.length, rejected, eventIds };
}

/** A tick the bus did not take, named for the feed's log. */
export interface UnpublishedTick extends RefusedEntry {
  readonly symbol: string;
  readonly sequence: number;
}

/** Ticks the bus did not take: refused, or still failing after their attempts. Those not named were put. */
export class TickPublishError extends Error {
  override readonly name = 'TickPublishError';
  constructor(
    readonly unpublished: readonly UnpublishedTick[],
    readonly outcome: PutOutcome,
  ) {
    super(
      `tick/not-published: ${unpublished.length} of ${outcome.accepted + unpublished.length} ticks not on the bus: ${unpublished
        .map(
          (u) =>
            `${u.symbol} ${u.sequence}: ${u.code}${u.message ? ` (${u.message})` : ''}, ${
              u.retryable ? `still failing after ${u.attempts} attempts` : 'refused'
            }`,
        )
        .join('; ')}`,
    );
  }
}

/**
 * Publishes ticks on the bus `busName`: each checked as margin-check parses it, at most one a market (EventBridge
 * keeps no order between events: two of one market in flight together may reach margin-check in either order, the
 * older then refused as out of order), retried as `putEntries` retries them. Resolves to the event ids in input
 * order once every tick is on the bus; throws TickInputError before sending anything when a tick is malformed, and
 * TickPublishError naming each tick the bus did not take (the others were put).
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
  const outcome = await putEntries(events, entries, options);
  if (outcome.rejected.length > 0) {
    throw new TickPublishError(
      outcome.rejected.map((r) => ({
        ...r,
        symbol: ticks[r.index]!.symbol,
        sequence: ticks[r.index]!.sequence,
      })),
      outcome,
    );
  }
  return outcome.eventIds;
}
