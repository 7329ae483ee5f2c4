/**
 * AWS's time, for what the operator's CLI decides or stamps by the clock (cli49-aws-clock): whether a statement's period
 * by time has closed (SETTLED_AFTER_MS after its end, against stamps the functions write by AWS's clocks), the stamp
 * of a fund deposit or withdrawal, which the CLI writes itself (agreedNowMs: review50-audit-stamp-cutoff), which
 * liquidations are overdue (review49-cli-overdue-clock) and which dead letters came in during a redrive (agreedNowMs:
 * review49-cli-redrive-clock). The machine's clock may be minutes off.
 *
 * Each answer of the watched clients carries a Date header: the second AWS answered in, floored. AWS's time when the
 * answer arrived was at least that, so the local clock moved by (Date - local time at arrival) is a lower bound of
 * AWS's time: at most a second and the answer's way behind it, never ahead (a period is never closed early for it).
 * The SDK's own `systemClockOffset` is not used: it is per client (the CloudFormation client that answers first is
 * destroyed at once), and its rule differs by SDK version (earlier 3.x versions moved it only on a skew of minutes,
 * which would leave the 10-minute rule half its margin).
 */

type Handler = (args: unknown) => Promise<{ readonly response?: unknown }>;

export interface Watchable {
  readonly middlewareStack: {
    add(middleware: (next: Handler) => Handler, options: { step: 'deserialize'; name: string }): void;
  };
}

const headerOf = (response: unknown): string | undefined => {
  const headers = (response as { headers?: Record<string, string | undefined> } | undefined)?.headers;
  return headers?.date ?? headers?.Date;
};

/** Each clock's middleware name: a client's stack refuses a name twice (ops49b-clock-watch-twice). */
let clocks = 0;

export class AwsClock {
  readonly #name = `backstopAwsClock${++clocks}`;
  /** The clients it watches: a second watch of one adds nothing (its name would be a duplicate). */
  readonly #watched = new WeakSet<object>();
  /** AWS's time minus the local clock's, by the latest answer with a Date header; undefined before one. */
  #offsetMs: number | undefined;
  /** AWS's time minus the local clock's is below this, by the same answer (the header's second past its request). */
  #aheadAtMostMs = Number.POSITIVE_INFINITY;
  readonly #localNowMs: () => number;

  /** `localNowMs`: the machine's clock (read at each call, so a test's stub of Date.now is this clock too). */
  constructor(localNowMs: () => number = () => Date.now()) {
    this.#localNowMs = localNowMs;
  }

  /**
   * Notes the Date header of every answer `client` receives, an error's included: a deserialize-step middleware, inside
   * the SDK's retries, so each attempt's answer. Once per client: again, nothing; another clock watching it too, its own.
   */
  watch(client: Watchable): void {
    if (this.#watched.has(client)) return;
    this.#watched.add(client);
    client.middlewareStack.add(
      (next) => async (args) => {
        // Before the attempt is sent: AWS answered after it (agreedNowMs' upper bound).
        const sentAtMs = this.#localNowMs();
        try {
          const result = await next(args);
          this.note(headerOf(result.response), this.#localNowMs(), sentAtMs);
          return result;
        } catch (error) {
          // An error answer (the deserializer's error carries it), as AWS's time as any.
          const response = (error as { $response?: unknown } | undefined)?.$response;
          this.note(headerOf(response), this.#localNowMs(), sentAtMs);
          throw error;
        }
      },
      { step: 'deserialize', name: this.#name },
    );
  }

  /**
   * An answer's Date header, received at `receivedAtMs` by the local clock, its request sent at `sentAtMs` (unknown:
   * no upper bound); one that does not parse is ignored.
   */
  note(date: string | undefined, receivedAtMs: number, sentAtMs?: number): void {
    const atMs = date === undefined ? Number.NaN : Date.parse(date);
    if (!Number.isFinite(atMs)) return;
    this.#offsetMs = atMs - receivedAtMs;
    // AWS answered after the request left and within the header's second: its time as it left was before the second's end.
    this.#aheadAtMostMs = sentAtMs === undefined ? Number.POSITIVE_INFINITY : atMs + 1_000 - sentAtMs;
  }

  /** Whether an answer has set it. */
  get synced(): boolean {
    return this.#offsetMs !== undefined;
  }

  /** AWS's time now (a lower bound); the machine's clock before any answer, or where none carries a Date header. */
  nowMs(): number {
    return this.#localNowMs() + (this.#offsetMs ?? 0);
  }

  /**
   * AWS's time for a cut against AWS's own stamps to the millisecond (`dlq redrive`'s run start against SQS's
   * SentTimestamp: review49-cli-redrive-clock): the machine's clock while the latest answer says it agrees with AWS's
   * (within the header's second and the answer's way), which it tells to the millisecond where nowMs' lower bound may
   * be a second behind; else, the machine's clock off, nowMs.
   */
  agreedNowMs(): number {
    const offset = this.#offsetMs;
    if (offset === undefined || (offset <= 0 && this.#aheadAtMostMs > 0)) return this.#localNowMs();
    return this.#localNowMs() + offset;
  }

  /** Sets it, when no answer has yet, by `ask` (a read the command makes anyway). */
  async sync(ask: () => Promise<unknown>): Promise<void> {
    if (!this.synced) await ask();
  }
}

/**
 * A clock of durations, in ms from its first reading, never going back (review50-cli2-stale-age-clock): the machine's
 * monotonic clock (`monotonicMs`, performance.now: no NTP step moves it, a clock set back gives no negative age), and
 * no less than AWS's time elapsed since its first reading with an answer, less the second a Date header floors: Linux's
 * and macOS's monotonic clocks stop while the machine sleeps, and figures read before a laptop slept an hour are an
 * hour old. A lower bound of the time elapsed, within an answer's way, unless the machine's clock stepped forward with
 * no answer since (AWS's then moves with it, the sleep's case to the CLI: it says more, never less).
 */
export function durationClock(
  monotonicMs: () => number,
  aws: Pick<AwsClock, 'nowMs' | 'synced'>,
): () => number {
  const startMs = monotonicMs();
  let anchor: { readonly elapsedMs: number; readonly awsMs: number } | undefined;
  let latestMs = 0;
  return () => {
    const elapsedMs = monotonicMs() - startMs;
    let atLeastMs = elapsedMs;
    // AWS's time before its first answer is the machine's: the answer's correction is no time elapsed.
    if (aws.synced) {
      const awsMs = aws.nowMs();
      anchor ??= { elapsedMs, awsMs };
      atLeastMs = Math.max(elapsedMs, anchor.elapsedMs + awsMs - anchor.awsMs - 1_000);
    }
    latestMs = Math.max(latestMs, atLeastMs);
    return latestMs;
  };
}
