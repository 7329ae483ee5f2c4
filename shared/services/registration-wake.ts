import { MARKET_DIMENSION, METRICS } from '../metrics.ts';
import type {
  MarketRepository,
  RegistrationWake,
  RegistrationWakeMessage,
  SpentWakeCursor,
  Telemetry,
} from '../ports/index.ts';
import { encodeMessage } from '../schemas/messages.ts';
import { countingOncePer } from './telemetry-counts.ts';
import { movedOn, sendWakeContinuation, sidesOf, type WakeDeps, wakeInOrder } from './wake.ts';

/**
 * Sleepers a registration wakes in the admin call, and each continuation after it. A wake of every sleeper of the
 * provider's markets (up to 50,000 a side each) in one call was unbounded by the admin function's time, or the
 * operator's shell (registration-wake-unbounded, session 41); 1,000 are 100 SendMessageBatch calls, 25 in flight.
 */
export const REGISTRATION_WAKES_PER_PART = 1_000;

export interface RegistrationWakeDeps extends WakeDeps {
  readonly markets: Pick<
    MarketRepository,
    'get' | 'bumpProvidersEpoch' | 'recordRegistrationWake' | 'markSpentWake'
  >;
  readonly telemetry: Telemetry;
  readonly nowMs: () => number;
}

/** What a registration's wake answers (AdminResult). */
export interface NewBidsWake {
  /**
   * Sleepers woken in the call, as AuctionsWoken counts them: in a market whose wake goes on from the cursor its
   * record keeps, those up to it (messages sent past it, after a failed send, go again and are counted with the
   * continuation's part).
   */
  readonly woken: number;
  /** Markets whose other sleepers are woken by continuations the auction function handles. */
  readonly wakeContinues?: readonly string[];
  /** What failed (the provider is registered either way). */
  readonly wakeError?: string;
}

export const registrationWakeMessage = (symbol: string, epoch: number): RegistrationWakeMessage => ({
  registrationWake: { symbol, epoch },
});

const cursorOf = (symbol: string, wake: RegistrationWake): SpentWakeCursor | undefined =>
  wake.wokenTo && { symbol, ...wake.wokenTo };

/** How far a part went, as the market's record keeps it, and whether it met a failed send (the next sends in order). */
function recordOf(
  epoch: number,
  part: number,
  at: SpentWakeCursor | undefined,
  more: boolean,
  sendFailed = false,
): RegistrationWake {
  return {
    epoch,
    part,
    ...(at ? { wokenTo: { direction: at.direction, id: at.id, step: at.step, wakeMark: at.wakeMark } } : {}),
    ...(more ? {} : { done: true }),
    ...(more && sendFailed ? { sendFailed: true } : {}),
  };
}

/** A registration's continuation (sendWakeContinuation: later after a part that met a failed send, wakes43b). */
async function sendContinuation(
  symbol: string,
  epoch: number,
  afterFailure: boolean,
  deps: RegistrationWakeDeps,
): Promise<void> {
  await sendWakeContinuation(
    deps.auctionQueue,
    encodeMessage(registrationWakeMessage(symbol, epoch)),
    afterFailure,
  );
}

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * Marks the market's latest wake of every sleeper (spentWakeEpoch) with a registration's, once it is sure to go on
 * (done, or its rest recorded and carried by a message that SQS retries): it began after the bump of any spent
 * provider's wake marked lower and wakes every sleeper from the first, so that one stops at its next part
 * (sleeping.ts wakeSpent) instead of waking them all again (registration-bump-covers-spent, session 42). Marked
 * before, a wake whose continuation was never sent would stop that one for nothing. Unmarked (a failure here),
 * only extra wakes.
 */
async function markCovers(symbol: string, epoch: number, deps: RegistrationWakeDeps): Promise<void> {
  try {
    await deps.markets.markSpentWake(symbol, epoch);
  } catch (error) {
    deps.telemetry.warn("a registration's wake not marked; a spent provider's wake of its market goes on", {
      symbol,
      epoch,
      error: messageOf(error),
    });
  }
}

/**
 * After a record write of the market's wake that lost to a later registration's: that wake covers this one's rest,
 * but its own continuation may never have been sent (its call's answer says so), and nothing else carried it
 * (review42-registration-record-overwritten). Sends a continuation of it unless it is done; returns its epoch when
 * sent. A loss to another delivery of this wake (the same epoch) sends nothing: that one goes on. Throws when the
 * read or the send fails.
 */
async function carryLater(
  symbol: string,
  epoch: number,
  deps: RegistrationWakeDeps,
): Promise<number | undefined> {
  const later = (await deps.markets.get(symbol))?.registrationWake;
  if (later === undefined || later.done || later.epoch <= epoch) return undefined;
  await deps.auctionQueue.send(encodeMessage(registrationWakeMessage(symbol, later.epoch)));
  return later.epoch;
}

/**
 * A sleeping auction planned its wake on the bids it saw (domain/sleep.ts): new or changed terms must reach it
 * now, not at its planned step (up to 900 s). Every sleeper of the provider's markets steps once and plans again;
 * the market's providers epoch, bumped first, catches the auctions that are planning a sleep meanwhile.
 * The provider is registered either way. Each market on its own: one that fails costs no other its bump or its wake
 * (found by a review of two markets at once, session 28); a side that fails ends its market's part in the call, and
 * the continuation retries it.
 *
 * At most `budget` sleepers are woken in the call, markets in order, each side SELL then BUY. A market with more
 * left (or whose part failed) records how far its wake went (MarketState.registrationWake, named by the epoch its
 * bump left) and sends a continuation to the auction function, which goes on from there (continueRegistrationWake):
 * a failure there is retried by SQS and dead-lettered (alarmed). After a part that failed, the record says so and
 * the continuation comes WAKE_RETRY_DELAY_SECONDS later, sending a batch at a time (wakes43b). A market whose bump,
 * record or continuation fails is in `wakeError` (AuctionWakeFailures): its sleepers see the provider when they step.
 * A market whose wake is done in the call or goes on is marked its latest wake of every sleeper (markCovers).
 */
export async function wakeForNewBids(
  symbols: readonly string[],
  deps: RegistrationWakeDeps,
  budget: number = REGISTRATION_WAKES_PER_PART,
): Promise<NewBidsWake> {
  const errors: string[] = [];
  // Per market, as a tick's wake and a spent provider's count theirs.
  const failedIn = new Set<string>();
  const fail = (symbol: string, error: string): void => {
    failedIn.add(symbol);
    errors.push(error);
  };
  // Before the wakes: an auction planning its sleep meanwhile, on the providers before this change, is not among
  // the sleepers woken, and its commit fails on the epoch instead (sleeping.ts providersUnchangedSince).
  const epochs = new Map<string, number>();
  for (const symbol of symbols) {
    try {
      epochs.set(symbol, await deps.markets.bumpProvidersEpoch(symbol));
    } catch (error) {
      // No epoch, no name for a continuation: its sleepers see the provider when they step.
      fail(symbol, `${symbol} providers epoch: ${messageOf(error)}`);
    }
  }
  let left = budget;
  let woken = 0;
  const continues: string[] = [];
  // Each sleeper once a wake (wakes43-count-once): what the call sent, or, its cursor recorded for the continuation
  // to go on from, the sleepers up to it (the continuation sends those past it again, and counts them).
  const tally = (symbol: string, count: number): void => {
    if (count > 0) deps.telemetry.count(METRICS.AuctionsWoken.name, count, { Market: symbol });
    woken += count;
  };
  for (const symbol of symbols) {
    const epoch = epochs.get(symbol);
    if (epoch === undefined) continue;
    const part = await wakeInOrder(deps, sidesOf([symbol]), undefined, left, deps.nowMs);
    left -= part.read;
    const sent = part.wokenIn.get(symbol) ?? 0;
    // A side that failed goes on in the continuation too: its retry is SQS's.
    if (part.failure) fail(symbol, part.failure.error);
    if (!part.more) {
      tally(symbol, sent);
      await markCovers(symbol, epoch, deps);
      continue;
    }
    let goesOn = epoch;
    let recorded = false;
    try {
      // False: a later registration's wake began, which wakes every sleeper from the first (carried on here, its own
      // continuation may not have been sent).
      recorded = await deps.markets.recordRegistrationWake(
        symbol,
        recordOf(epoch, 1, part.wokenTo, true, part.failure !== undefined),
        undefined,
      );
      if (recorded) await sendContinuation(symbol, epoch, part.failure !== undefined, deps);
      else {
        const later = await carryLater(symbol, epoch, deps);
        if (later === undefined) continue;
        goesOn = later;
      }
      continues.push(symbol);
    } catch (error) {
      fail(symbol, `${symbol} the rest of the wake not sent on: ${messageOf(error)}`);
      continue;
    } finally {
      tally(symbol, recorded ? (part.passedIn.get(symbol) ?? 0) : sent);
    }
    // Recorded and sent on: it goes on (the continuation's failures are SQS's retries, then its dead letter).
    await markCovers(symbol, goesOn, deps);
  }
  const answer = { woken, ...(continues.length > 0 ? { wakeContinues: continues } : {}) };
  if (errors.length === 0) return answer;
  for (const symbol of failedIn)
    deps.telemetry.count(METRICS.AuctionWakeFailures.name, 1, { Market: symbol });
  const wakeError = errors.join('; ');
  // A market whose wake goes on is retried by the auction function; the others' sleepers wait for their steps.
  const retried = [...failedIn].filter((symbol) => continues.includes(symbol));
  deps.telemetry.warn(
    retried.length === 0
      ? 'provider registered; sleeping auctions not woken, they see it when they step'
      : `provider registered; the auction function retries the wake of the sleeping auctions of ${retried.join(', ')}${
          retried.length < failedIn.size ? ', the others see it when they step' : ''
        }`,
    { error: wakeError },
  );
  return { ...answer, wakeError };
}

export type RegistrationWakeOutcome =
  /** The market's wake is done, or another delivery of this part moved it on. */
  { readonly status: 'stale' } | { readonly status: 'woken'; readonly woken: number; readonly more: boolean };

/** A continuation of a wake its market does not record (a read before the write that preceded its send). */
export class RegistrationWakeNotRecordedError extends Error {
  override readonly name = 'RegistrationWakeNotRecordedError';
}

/** A part of a registration's wake that failed: SQS retries the delivery, which goes on from the record. */
export class RegistrationWakeFailedError extends Error {
  override readonly name = 'RegistrationWakeFailedError';
}

/**
 * The auction function's part of a registration's wake (its continuation message): wakes at most `budget` sleepers
 * after the last the market's record says, records how far it went (conditional on the part it read) and, with
 * more left, sends the next continuation. A later registration's wake recorded since covers this one (it wakes every
 * sleeper from the first): the message goes on with that one, whose own continuation may never have been sent (its
 * answer said so), or that one's rest was woken by neither (fuzz41-registration-wake-stranded). The record, not the message, says where to go on: a duplicate delivered
 * after this one goes on from where this one stopped (two wakes of one part need two deliveries at once, and the
 * later record write fails for one of them, which sends nothing on). A part whose sends failed after some went is
 * counted (AuctionWakeFailures), recorded as far as they went and goes on in the next continuation, which comes
 * WAKE_RETRY_DELAY_SECONDS later and sends a batch at a time, stopping at its first failure (wakes43b). Any other
 * failure throws after counting (once a delivery): SQS redelivers the message, which goes on from the record, and
 * dead-letters it (alarmed).
 * AuctionsWoken counts the sleepers the recorded cursor passed, each once a wake (wakes43-count-once).
 */
export async function continueRegistrationWake(
  message: RegistrationWakeMessage['registrationWake'],
  deps: RegistrationWakeDeps,
  budget: number = REGISTRATION_WAKES_PER_PART,
): Promise<RegistrationWakeOutcome> {
  const { symbol } = message;
  const market = await deps.markets.get(symbol);
  const wake = market?.registrationWake;
  // Recorded before its message was sent, and read consistently: a lower epoch cannot be this wake's.
  if (wake === undefined || wake.epoch < message.epoch)
    throw new RegistrationWakeNotRecordedError(
      `registration-wake/not-recorded: ${symbol} epoch ${message.epoch}`,
    );
  if (wake.done) return { status: 'stale' };
  // The market's wake, this message's or a later one that covers it.
  const { epoch } = wake;
  const from = cursorOf(symbol, wake);
  const part = await wakeInOrder(deps, sidesOf([symbol]), from, budget, deps.nowMs, {
    inOrder: wake.sendFailed === true,
  });
  // AuctionWakeFailures once a delivery: a part that failed after some sends and whose continuation then could not be
  // sent counted twice (wakes43b).
  const once = countingOncePer(deps.telemetry, METRICS.AuctionWakeFailures.name, MARKET_DIMENSION);
  const count = (): void => once.count(METRICS.AuctionWakeFailures.name, 1, { Market: symbol });
  const failed = (what: string): RegistrationWakeFailedError => {
    count();
    deps.telemetry.warn(`a registration's wake failed; its delivery is retried`, {
      symbol,
      epoch,
      error: what,
    });
    return new RegistrationWakeFailedError(`registration-wake/failed: ${symbol} epoch ${epoch}: ${what}`);
  };
  if (part.failure) {
    // Before its first send: the redelivery goes on from the record.
    if (!movedOn(part, from)) throw failed(part.failure.error);
    // Past it: recorded as far as its sends went (wake-part-restarts, session 42), and the rest goes on in the
    // continuation any part with more left sends. Failed instead, each delivery going further, a part failing at
    // every delivery was dead-lettered after its receives (wakes43-progress-retried).
    count();
    deps.telemetry.warn(`a registration's wake failed; a continuation goes on from the last sent`, {
      symbol,
      epoch,
      error: part.failure.error,
    });
  }
  const next = recordOf(epoch, wake.part + 1, part.wokenTo, part.more, part.failure !== undefined);
  if (!(await deps.markets.recordRegistrationWake(symbol, next, wake.part))) {
    // Moved on by another delivery of this part, which goes on, or by a later registration's record.
    try {
      await carryLater(symbol, epoch, deps);
    } catch (error) {
      throw failed(`a later wake not carried on: ${messageOf(error)}`);
    }
    return { status: 'stale' };
  }
  // Each sleeper once a wake: those the recorded cursor passed; those sent past it (a failed part's) go again, and
  // are counted, with the next part (wakes43-count-once). A delivery whose write lost counts none: the winner does.
  const woken = part.passedIn.get(symbol) ?? 0;
  if (woken > 0) deps.telemetry.count(METRICS.AuctionsWoken.name, woken, { Market: symbol });
  // Recorded: it goes on (this message's retries go on from the record). A later wake this message goes on with may
  // not be marked: its call's continuation was not sent.
  if ((market?.spentWakeEpoch ?? 0) < epoch) await markCovers(symbol, epoch, deps);
  if (part.more) {
    try {
      await sendContinuation(symbol, epoch, part.failure !== undefined, deps);
    } catch (error) {
      // The record went on: the redelivery wakes the next part, not this one again.
      throw failed(`the rest not sent on: ${messageOf(error)}`);
    }
  }
  return { status: 'woken', woken, more: part.more };
}
