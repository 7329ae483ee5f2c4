import { Readable } from 'node:stream';
import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { describe, expect, it } from 'vitest';
import {
  heldNotPutLine,
  heldPutMayHeal,
  replayUnknownFateLine,
  unknownFateMatters,
} from '../../cli/ops/events.ts';
import { parsePrice } from '../../shared/domain/units.ts';
import {
  PutEntriesError,
  publishTicks,
  putEntries,
  refusedForEveryCall,
  retryableBySdk,
  type TickFields,
  TickPublishError,
} from '../../shared/feed/publisher.ts';
import { type ReplayHold, type ReplayOptions, replayPrices } from '../../shared/local/ticks.ts';

/**
 * The publisher (shared/feed/publisher.ts) against answers moto never gives: an EventBridge client whose HTTP handler
 * answers as EventBridge does (the SDK parses the answer, classifies and retries it as on AWS), and records what each
 * request carried. docs/FEED.md, "Who may publish": a bus policy's refusal comes per entry (PutEventsResultEntry's
 * AccessDeniedException, NotAuthorizedForSourceException, NotAuthorizedForDetailTypeException) or, for the call, as an
 * AccessDeniedException error; which one AWS gives for a Deny in a bus policy is not documented, so both are handled.
 */

/** What the bus makes of one request: per-entry results, an error answer, or no answer at all. */
type Answer =
  | { readonly results: readonly ({ EventId: string } | { ErrorCode: string; ErrorMessage: string })[] }
  | { readonly status: number; readonly type: string; readonly message: string }
  | { readonly fail: Error };

const keyOf = (entry: PutEventsRequestEntry): string => {
  const { symbol, sequence } = JSON.parse(entry.Detail ?? '{}') as { symbol: string; sequence: number };
  return `${symbol} ${sequence}`;
};

/**
 * A client of a bus answering request n (1, 2, ...) with `answer(n, keys)`. `maxAttempts`: the SDK's own attempts per
 * call (1: none again, so no test waits on the SDK's backoff). Returns each request's keys as sent.
 */
function fakeBus(answer: (request: number, keys: string[]) => Answer, maxAttempts = 1) {
  const requests: string[][] = [];
  const events = new EventBridgeClient({
    region: 'eu-west-1',
    credentials: { accessKeyId: 'feed', secretAccessKey: 'feed' },
    maxAttempts,
    requestHandler: {
      handle: async (request: { body?: string | Uint8Array }) => {
        const text = typeof request.body === 'string' ? request.body : new TextDecoder().decode(request.body);
        const entries = (JSON.parse(text) as { Entries: PutEventsRequestEntry[] }).Entries;
        const keys = entries.map(keyOf);
        const a = answer(requests.push(keys), keys);
        if ('fail' in a) throw a.fail;
        const [status, body] =
          'results' in a
            ? [
                200,
                { FailedEntryCount: a.results.filter((r) => 'ErrorCode' in r).length, Entries: a.results },
              ]
            : [a.status, { __type: a.type, message: a.message }];
        return {
          response: {
            statusCode: status,
            headers: {
              'content-type': 'application/x-amz-json-1.1',
              'x-amzn-requestid': `r${requests.length}`,
            },
            body: Readable.from([Buffer.from(JSON.stringify(body))]),
          },
        };
      },
    } as never,
  });
  return { events, requests };
}

const tickOf = (symbol: string, sequence = 7): TickFields => ({
  symbol,
  markPrice: '1520.5',
  timestampMs: 1_767_225_600_000,
  sequence,
  source: 'exchange-a',
});
const markets = (n: number) => Array.from({ length: n }, (_, i) => tickOf(`M${i}-USD`));
const BUS = 'arn:aws:events:eu-west-1:111122223333:event-bus/backstop-prod-ticks';
const noWait = { sleep: async () => {} };
const denial =
  'User: arn:aws:sts::444455556666:assumed-role/other/s is not authorized to perform: events:PutEvents on resource: ' +
  `${BUS} with an explicit deny in a resource-based policy`;
const ok = (keys: string[]) => ({ results: keys.map((k) => ({ EventId: `id ${k}` })) });

const caught = <T>(promise: Promise<unknown>): Promise<T> =>
  promise.then(
    () => {
      throw new Error('resolved');
    },
    (e: unknown) => e as T,
  );

/** `n` prices of 150, a minute apart. */
const prices = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    timestampMs: 1_584_000_000_000 + i * 60_000,
    price: parsePrice('150'),
  }));

/** A replay of `n` such prices as ETH-USD from sequence 41, at full speed, no waits; `more` adds to or overrides it. */
const replay = (events: EventBridgeClient, n: number, more: Partial<ReplayOptions> = {}) =>
  replayPrices({
    points: prices(n),
    symbol: 'ETH-USD',
    busName: BUS,
    events,
    speed: { kind: 'max' },
    firstSequence: 41,
    sleep: async () => {},
    ...more,
  });

/** A hold with work left for `ticks` held ticks: its first `ticks` looks at the stack find some, the next none. */
const holdFor = (ticks: number, more: Partial<ReplayHold> = {}): ReplayHold => {
  let looks = 0;
  return { everyMs: 1000, pending: async () => ++looks <= ticks, ...more };
};

describe("a bus policy's refusal, in either of the shapes AWS documents (feed47-policy-refusal)", () => {
  it('per entry: each refused entry reported, not sent again, the others put', async () => {
    const { events, requests } = fakeBus((_n, keys) => ({
      results: keys.map((k) =>
        k === 'M1-USD 7'
          ? {
              ErrorCode: 'NotAuthorizedForDetailTypeException',
              ErrorMessage: 'Not authorized for the detail type',
            }
          : k === 'M2-USD 7'
            ? { ErrorCode: 'AccessDeniedException', ErrorMessage: denial }
            : { EventId: `id ${k}` },
      ),
    }));
    const error = await caught<TickPublishError>(publishTicks(events, BUS, markets(3), noWait));
    expect(error).toBeInstanceOf(TickPublishError);
    expect(requests).toEqual([['M0-USD 7', 'M1-USD 7', 'M2-USD 7']]);
    expect(error.refused).toEqual([
      expect.objectContaining({
        symbol: 'M1-USD',
        code: 'NotAuthorizedForDetailTypeException',
        scope: 'entry',
        attempts: 1,
      }),
      expect.objectContaining({
        symbol: 'M2-USD',
        code: 'AccessDeniedException',
        scope: 'entry',
        attempts: 1,
      }),
    ]);
    expect(error.unknown).toEqual([]);
    expect(error.unsent).toEqual([]);
    expect(error.outcome.eventIds).toEqual(['id M0-USD 7']);
  });

  it('for the call: each of its entries refused (none on the bus), not sent again, the next call still sent', async () => {
    // Before: the SDK's AccessDeniedException thrown as it came, the first call's 10 ticks, put, unreported.
    const { events, requests } = fakeBus(
      (n, keys) => (n === 2 ? { status: 400, type: 'AccessDeniedException', message: denial } : ok(keys)),
      3,
    );
    const error = await caught<TickPublishError>(publishTicks(events, BUS, markets(12), noWait));
    expect(error).toBeInstanceOf(TickPublishError);
    // The SDK does not send a denied call again, nor does the publisher.
    expect(requests.map((r) => r.length)).toEqual([10, 2]);
    expect(error.outcome.accepted).toBe(10);
    expect(error.refused).toEqual(
      ['M10-USD', 'M11-USD'].map((symbol, k) => ({
        index: 10 + k,
        symbol,
        sequence: 7,
        code: 'AccessDeniedException',
        message: denial,
        attempts: 1,
        retryable: false,
        scope: 'call',
      })),
    );
    expect(error.unknown).toEqual([]);
    expect(error.message).toBe(
      `tick/not-published: of 12 ticks 10 put; 2 refused by EventBridge, not on the bus: M10-USD 7: AccessDeniedException (${denial}), the whole call refused; M11-USD 7: AccessDeniedException (${denial}), the whole call refused`,
    );
    // putEntries reports it as it reports an entry refused, and goes on with the next call.
    const { events: again, requests: sent } = fakeBus((n, keys) =>
      n === 1 ? { status: 400, type: 'AccessDeniedException', message: denial } : ok(keys),
    );
    const entries = markets(11).map((t) => ({
      EventBusName: BUS,
      Source: 'backstop.prices',
      DetailType: 'PriceTick',
      Detail: JSON.stringify({ symbol: t.symbol, sequence: t.sequence }),
    }));
    const outcome = await putEntries(again, entries, noWait);
    expect(sent.map((r) => r.length)).toEqual([10, 1]);
    expect(outcome.eventIds).toEqual(['id M10-USD 7']);
    expect(outcome.rejected.map((r) => [r.index, r.code, r.scope])).toEqual(
      Array.from({ length: 10 }, (_, i) => [i, 'AccessDeniedException', 'call']),
    );
  });
});

describe('TickPublishError says which ticks are not on the bus and which may be (feed47-publish-error-fates)', () => {
  it('a call that fails without an answer: its ticks of unknown fate, the later ones not sent, the earlier put', async () => {
    // The bus takes the second request's entries, and the answer is lost: the SDK sees the connection reset.
    const delivered: string[] = [];
    const { events, requests } = fakeBus((n, keys) => {
      if (n === 2) {
        delivered.push(...keys);
        return { fail: Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }) };
      }
      return ok(keys);
    });
    const error = await caught<TickPublishError>(publishTicks(events, BUS, markets(25), noWait));
    expect(error).toBeInstanceOf(TickPublishError);
    expect(requests.map((r) => r.length)).toEqual([10, 10]);
    expect(error.outcome.accepted).toBe(10);
    expect(error.refused).toEqual([]);
    // Before: "not on the bus" would have been said of these ten, which are.
    expect(error.unknown.map((u) => u.symbol)).toEqual(delivered.map((k) => k.split(' ')[0]));
    expect(error.unknown[0]).toEqual({
      index: 10,
      symbol: 'M10-USD',
      sequence: 7,
      code: 'Error',
      message: 'socket hang up',
      attempts: 1,
    });
    expect(error.unsent.map((u) => u.index)).toEqual([20, 21, 22, 23, 24]);
    expect(error.cause).toBeInstanceOf(Error);
    expect(error.message).toMatch(
      /^tick\/not-published: of 25 ticks 10 put; 10 of unknown fate, on the bus or not \(sending again is safe\): M10-USD 7: Error \(socket hang up\); .*; 5 not sent, not on the bus: M20-USD 7; M21-USD 7; M22-USD 7; M23-USD 7; M24-USD 7$/,
    );
    expect(error.message).not.toMatch(/M1\d-USD 7[^;]*not on the bus/);
  });

  it('a 5xx after the SDK sent the call is of unknown fate too, and a retry that fails so leaves its entries so', async () => {
    // The first call: one entry throttled; its retry answered 500 (the SDK sent it, and may have been taken).
    const { events, requests } = fakeBus((n, keys) =>
      n === 1
        ? {
            results: keys.map((k) =>
              k === 'M1-USD 7'
                ? { ErrorCode: 'ThrottlingException', ErrorMessage: 'Rate exceeded' }
                : { EventId: `id ${k}` },
            ),
          }
        : { status: 500, type: 'InternalException', message: 'internal' },
    );
    const error = await caught<TickPublishError>(publishTicks(events, BUS, markets(3), noWait));
    expect(requests).toEqual([['M0-USD 7', 'M1-USD 7', 'M2-USD 7'], ['M1-USD 7']]);
    expect(error.outcome.eventIds).toEqual(['id M0-USD 7', 'id M2-USD 7']);
    expect(error.refused).toEqual([]);
    expect(error.unknown).toEqual([
      expect.objectContaining({ symbol: 'M1-USD', code: 'InternalException', attempts: 2 }),
    ]);
    // putEntries itself throws PutEntriesError with the same account.
    const thrown = await caught<PutEntriesError>(
      putEntries(fakeBus(() => ({ status: 500, type: 'InternalException', message: 'internal' })).events, [
        { EventBusName: BUS, Source: 'backstop.prices', DetailType: 'PriceTick', Detail: '{}' },
      ]),
    );
    expect(thrown).toBeInstanceOf(PutEntriesError);
    expect(thrown.unknown.map((u) => u.index)).toEqual([0]);
    expect(thrown.unsent).toEqual([]);
  });

  it('an error answer the SDK got after sending the call again is of unknown fate: an earlier attempt may have been taken', async () => {
    // The first attempt times out (the bus may have taken it); the SDK's retry is throttled, and gives up.
    const { events, requests } = fakeBus(
      (n) =>
        n === 1
          ? { fail: Object.assign(new Error('timed out'), { name: 'TimeoutError' }) }
          : { status: 400, type: 'ThrottlingException', message: 'Rate exceeded' },
      2,
    );
    const error = await caught<TickPublishError>(publishTicks(events, BUS, [tickOf('ETH-USD')], noWait));
    expect(requests).toHaveLength(2);
    expect(error.refused).toEqual([]);
    expect(error.unknown).toEqual([
      expect.objectContaining({ symbol: 'ETH-USD', code: 'ThrottlingException' }),
    ]);
  });

  it('an entry answered with neither an id nor a code, after its attempts, is of unknown fate', async () => {
    const { events, requests } = fakeBus(() => ({ results: [{} as { EventId: string }] }));
    const error = await caught<TickPublishError>(publishTicks(events, BUS, [tickOf('ETH-USD')], noWait));
    expect(requests).toHaveLength(5);
    expect(error.refused).toEqual([]);
    expect(error.unknown).toEqual([
      {
        index: 0,
        symbol: 'ETH-USD',
        sequence: 7,
        code: 'NoResult',
        message: 'no result for the entry',
        attempts: 5,
      },
    ]);
  });
});

// follow47-replay-call-refused: since feed47-policy-refusal a call refused whole is reported entry by entry, and
// `backstop replay` (one tick a call) went on through the whole file, every next call refused the same. It stopped
// at the first such refusal before (the SDK's error thrown), and does again, saying so.
describe('a replay stops at a call refused whole for a reason every next call meets (follow47-replay-call-refused)', () => {
  it('an AccessDeniedException for the call: the replay stops there, its tick refused, the rest not sent', async () => {
    // The bus's policy refuses the caller from the second call on.
    const { events, requests } = fakeBus((n, keys) =>
      n >= 2 ? { status: 400, type: 'AccessDeniedException', message: denial } : ok(keys),
    );
    const outcome = await replay(events, 5);
    // Before: 5 calls, every one from the second refused the same.
    expect(requests).toEqual([['ETH-USD 41'], ['ETH-USD 42']]);
    expect(outcome).toMatchObject({ total: 5, sent: 2, accepted: 1, lastSequence: 42 });
    const refused = {
      index: 1,
      sequence: 42,
      code: 'AccessDeniedException',
      message: denial,
      attempts: 1,
      retryable: false,
      scope: 'call',
    };
    expect(outcome.rejected).toEqual([refused]);
    expect(outcome.refusedWhole).toEqual(refused);
  });

  it('a held tick refused so ends the hold', async () => {
    const { events, requests } = fakeBus((n, keys) =>
      n >= 2 ? { status: 400, type: 'AccessDeniedException', message: denial } : ok(keys),
    );
    const outcome = await replay(events, 1, {
      // Work left for three more held ticks.
      hold: holdFor(3),
    });
    // Before: the three held ticks sent, each refused the same.
    expect(requests).toEqual([['ETH-USD 41'], ['ETH-USD 42']]);
    expect(outcome).toMatchObject({ sent: 1, held: 1, accepted: 1 });
    expect(outcome.refusedWhole).toMatchObject({
      sequence: 42,
      code: 'AccessDeniedException',
      scope: 'call',
    });
  });

  // cli50b-held-unknown-fate: a held tick of unknown fate, the bus taking the next held tick, of the same price, was said
  // "prices of the file the market did not see", exit 4.
  it('a held tick of unknown fate, the next held tick taken: its price got through, nothing to do', async () => {
    // The file's tick 41 taken; held tick 42 answered with no result through its five calls; held tick 43 taken.
    const { events, requests } = fakeBus((n, keys) =>
      n >= 2 && n <= 6 ? { results: [{} as { EventId: string }] } : ok(keys),
    );
    const outcome = await replay(events, 1, { hold: holdFor(2) });
    expect(requests.map((r) => r[0])).toEqual(['ETH-USD 41', ...Array(5).fill('ETH-USD 42'), 'ETH-USD 43']);
    expect(outcome).toMatchObject({ sent: 1, held: 2, lastMaybeOnBus: 43, lastTaken: 43 });
    expect(outcome.unknown.map((u) => [u.sequence, u.index])).toEqual([[42, 1]]);
    const target = { kind: 'aws', stage: 'prod', region: 'eu-west-1' } as const;
    // review50-cli2-held-claim: only what the bus told. It was "the market's mark missed nothing, on the bus or not":
    // not on the bus, 42 left the market without a print until 43, and margin-check may refuse 43 (too old, ...).
    expect(replayUnknownFateLine('ETH-USD', outcome, () => parsePrice('150'), target)).toBe(
      'replay/unknown-fate: ETH-USD: 1 tick of unknown fate, on the bus or not: sequence 42 (NoResult). Sequence 42 ' +
        "sent the file's last price, which the bus took after it in held tick 43: nothing to resend, it is behind 43; " +
        'if not on the bus, it left the market without that print until 43, and the bus taking 43 is not ' +
        "margin-check taking it (`backstop status --target aws --stage prod --region eu-west-1` shows ETH-USD's " +
        'last sequence)',
    );
    // Exit 4 asks to find out and perhaps resend: there is nothing to resend.
    expect(unknownFateMatters(outcome)).toBe(false);
    // The last held tick of unknown fate: found out and resent, exit 4.
    const lastUnknown = {
      ...outcome,
      lastMaybeOnBus: 44,
      lastTaken: 43,
      unknown: [...outcome.unknown, { ...outcome.unknown[0]!, index: 3, sequence: 44 }],
    };
    expect(unknownFateMatters(lastUnknown)).toBe(true);
    expect(replayUnknownFateLine('ETH-USD', lastUnknown, () => parsePrice('150'), target)).toMatch(
      /--sequence 44 --target aws .*\(margin-check takes a sequence once\); sequence 42 sent the file's last price, which the bus took after it in held tick 43: /,
    );
  });

  it('goes on past an entry refused for itself and a throttled call, which say nothing of the next', async () => {
    // Refused for what it carries (review47-replay-entry-policy: an entry refused by policy stops it, below).
    const { events, requests } = fakeBus((n, keys) =>
      n === 1
        ? { results: [{ ErrorCode: 'MalformedDetail', ErrorMessage: 'Detail is malformed.' }] }
        : n === 2
          ? { status: 400, type: 'ThrottlingException', message: 'Rate exceeded' }
          : ok(keys),
    );
    const outcome = await replay(events, 3);
    expect(requests).toHaveLength(3);
    expect(outcome).toMatchObject({ total: 3, sent: 3, accepted: 1 });
    expect(outcome.rejected.map((r) => [r.sequence, r.code, r.scope])).toEqual([
      [41, 'MalformedDetail', 'entry'],
      [42, 'ThrottlingException', 'call'],
    ]);
    expect(outcome.refusedWhole).toBeUndefined();
  });
});

// review47-replay-entry-policy: the bus's policy conditions on the ticks' source and detail type are answered per
// entry (docs/FEED.md, "Who may publish"), in a call that succeeds; follow47-replay-call-refused stopped the replay at
// a call refused whole only, and one refused so went on through the whole file and its hold, every tick refused.
describe('a replay stops at a tick refused by policy in its entry result (review47-replay-entry-policy)', () => {
  const POLICY_CODES = [
    'AccessDeniedException',
    'NotAuthorizedForSourceException',
    'NotAuthorizedForDetailTypeException',
  ];

  it.each(POLICY_CODES)('%s for the entry: the replay stops there, the rest not sent', async (code) => {
    const { events, requests } = fakeBus((n, keys) =>
      n >= 2 ? { results: [{ ErrorCode: code, ErrorMessage: denial }] } : ok(keys),
    );
    const outcome = await replay(events, 5);
    // Before: 5 calls, every one from the second refused the same.
    expect(requests).toEqual([['ETH-USD 41'], ['ETH-USD 42']]);
    expect(outcome).toMatchObject({ total: 5, sent: 2, accepted: 1, lastSequence: 42 });
    const refused = {
      index: 1,
      sequence: 42,
      code,
      message: denial,
      attempts: 1,
      retryable: false,
      scope: 'entry',
    };
    expect(outcome.rejected).toEqual([refused]);
    expect(outcome.refusedWhole).toEqual(refused);
  });

  it('a held tick refused so ends the hold', async () => {
    const { events, requests } = fakeBus((n, keys) =>
      n >= 2
        ? { results: [{ ErrorCode: 'NotAuthorizedForSourceException', ErrorMessage: denial }] }
        : ok(keys),
    );
    const outcome = await replay(events, 1, { hold: holdFor(3) });
    // Before: the three held ticks sent, each refused the same.
    expect(requests).toEqual([['ETH-USD 41'], ['ETH-USD 42']]);
    expect(outcome).toMatchObject({ sent: 1, held: 1, accepted: 1 });
    expect(outcome.refusedWhole).toMatchObject({
      sequence: 42,
      code: 'NotAuthorizedForSourceException',
      scope: 'entry',
    });
  });
});

// final47-plurals: "of 1 ticks", "1 entries may be on the bus", "still failing after 1 attempts".
describe("the publisher's errors, for one as for several", () => {
  const none = { accepted: 0, rejected: [], unknown: [], eventIds: [] };
  it('says one tick, one entry and one attempt in the singular', () => {
    const throttled = {
      index: 0,
      symbol: 'ETH-USD',
      sequence: 7,
      code: 'ThrottlingException',
      message: 'slow down',
      attempts: 1,
      retryable: true,
      scope: 'entry' as const,
    };
    expect(new TickPublishError([throttled], [], [], none).message).toBe(
      'tick/not-published: of 1 tick 0 put; 1 refused by EventBridge, not on the bus: ETH-USD 7: ThrottlingException (slow down), still failing after 1 attempt',
    );
    expect(new TickPublishError([{ ...throttled, attempts: 5 }, throttled], [], [], none).message).toMatch(
      /^tick\/not-published: of 2 ticks 0 put; .*still failing after 5 attempts; .*still failing after 1 attempt$/,
    );
    const unknown = { index: 0, code: 'Error', message: 'socket hang up', attempts: 1 };
    expect(new PutEntriesError(none, [unknown], [], new Error('socket hang up')).message).toContain(
      '1 entry may be on the bus or not, 0 not sent',
    );
    expect(
      new PutEntriesError(none, [unknown, { ...unknown, index: 1 }], [], new Error('x')).message,
    ).toContain('2 entries may be on the bus or not, 0 not sent');
  });
});

// timeouts48-held-put: a held tick's PutEvents that failed without an answer (a dead connection through the SDK's
// attempts) ended `replay --hold`, exit 1, where a look at the stack failing so is made again.
describe("replay --hold sends a held tick again when its call's error may heal (timeouts48-held-put)", () => {
  const timedOut = () =>
    Object.assign(new Error('a request has exceeded the configured 10000 ms requestTimeout.'), {
      name: 'TimeoutError',
      code: 'ETIMEDOUT',
    });
  const holdOnce = (events: ReturnType<typeof fakeBus>['events'], waits: number[]) =>
    replay(events, 1, {
      sleep: async (ms) => {
        waits.push(ms);
      },
      // Work left for one held tick.
      hold: holdFor(1, { putMayHeal: heldPutMayHeal }),
    });

  it('a timeout, then a network error, then put: the same tick, the hold goes on', async () => {
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    const { events, requests } = fakeBus((n, keys) =>
      n === 2 ? { fail: timedOut() } : n === 3 ? { fail: reset } : ok(keys),
    );
    const waits: number[] = [];
    // Before: PutEntriesError (events/put-failed: ... TimeoutError), the replay ended.
    const outcome = await holdOnce(events, waits);
    expect(requests).toEqual([['ETH-USD 41'], ['ETH-USD 42'], ['ETH-USD 42'], ['ETH-USD 42']]);
    expect(outcome).toMatchObject({ sent: 1, held: 1, accepted: 2, rejected: [], unknown: [] });
    // The hold's wait, then the publisher's backoff between the held tick's calls.
    expect(waits.length).toBeGreaterThanOrEqual(3);
  });

  it("one failing so through the publisher's attempts ends the replay, saying how often it was sent", async () => {
    const { events, requests } = fakeBus((n, keys) => (n >= 2 ? { fail: timedOut() } : ok(keys)));
    // The replay ends with its outcome so far and the error (feed48-replay-outcome-on-error).
    const outcome = await holdOnce(events, []);
    const { error } = outcome;
    expect(error).toBeInstanceOf(PutEntriesError);
    expect(outcome.unknown).toEqual([expect.objectContaining({ sequence: 42, code: 'TimeoutError' })]);
    expect((error as PutEntriesError).unknown).toEqual([
      expect.objectContaining({ index: 0, code: 'TimeoutError', attempts: 5 }),
    ]);
    expect(requests.slice(1)).toEqual(Array.from({ length: 5 }, () => ['ETH-USD 42']));
    // As the row and DEPLOY.md say (feed48b-put-failed-line): its message names them, and its error.
    expect((error as Error).message).toMatch(
      /^events\/put-failed: a PutEvents call failed after 5 attempts \(TimeoutError: a request has exceeded/,
    );
  });

  // review48-timeouts-held-put-abort: the held tick's calls went on after Ctrl-C, up to 5 calls of the SDK's 3
  // attempts each on a dead connection (minutes), where a hold ends at once.
  it('Ctrl-C while a held tick is sent: its failed call is not sent again', async () => {
    const abort = new AbortController();
    const { events, requests } = fakeBus((n, keys) => {
      if (n < 2) return ok(keys);
      abort.abort();
      return { fail: timedOut() };
    });
    const running = replay(events, 1, {
      signal: abort.signal,
      hold: holdFor(1, { putMayHeal: heldPutMayHeal }),
    });
    // Its call failed: the put's error ends the replay with its outcome, the tick's fate unknown.
    expect((await running).error).toBeInstanceOf(PutEntriesError);
    // Before: sent 5 times.
    expect(requests).toEqual([['ETH-USD 41'], ['ETH-USD 42']]);
  });

  it("the file's own ticks are not held behind a dead connection: their call's failure ends the replay", async () => {
    const { events, requests } = fakeBus(() => ({ fail: timedOut() }));
    const outcome = await holdOnce(events, []);
    expect(outcome.error).toBeInstanceOf(PutEntriesError);
    expect(outcome).toMatchObject({ sent: 1, held: 0 });
    expect(requests).toEqual([['ETH-USD 41']]);
  });

  it('an error that heals by no retry is not retried', () => {
    expect(heldPutMayHeal(timedOut())).toBe(true);
    expect(
      heldPutMayHeal(
        Object.assign(new Error('no'), {
          name: 'AccessDeniedException',
          $fault: 'client',
          $metadata: { httpStatusCode: 403, attempts: 1 },
        }),
      ),
    ).toBe(false);
    expect(heldPutMayHeal(new TypeError('a bug'))).toBe(false);
  });
});

// feed49-put-not-sent: a PutEvents call the SDK could not resolve credentials for left no request, yet the publisher
// said its ticks "may be on the bus or not" (of unknown fate), and replay counted them sent.
describe('a PutEvents call the SDK finds no credentials for: nothing sent, said so', () => {
  /** As the SDK's credential chain throws when it finds none (@smithy/property-provider's CredentialsProviderError). */
  const noCredentials = () =>
    Object.assign(new Error('Could not load credentials from any providers'), {
      name: 'CredentialsProviderError',
      tryNextLink: false,
    });
  /**
   * A real client whose credentials resolve while `resolves(requests)` says so, given the requests sent so far (each
   * expires at once, so the SDK resolves them again for every call).
   */
  function busWithCredentials(
    resolves: (sent: number) => boolean,
    answer: (request: number) => Answer,
    maxAttempts = 1,
  ) {
    const requests: string[][] = [];
    const events = new EventBridgeClient({
      region: 'eu-west-1',
      maxAttempts,
      credentials: async () => {
        if (!resolves(requests.length)) throw noCredentials();
        return { accessKeyId: 'feed', secretAccessKey: 'feed', expiration: new Date(Date.now() - 1) };
      },
      requestHandler: {
        handle: async (request: { body?: string | Uint8Array }) => {
          const text =
            typeof request.body === 'string' ? request.body : new TextDecoder().decode(request.body);
          const keys = (JSON.parse(text) as { Entries: PutEventsRequestEntry[] }).Entries.map(keyOf);
          const a = answer(requests.push(keys));
          if ('fail' in a) throw a.fail;
          if (!('results' in a)) throw new Error('not used here');
          return {
            response: {
              statusCode: 200,
              headers: { 'content-type': 'application/x-amz-json-1.1' },
              body: Readable.from([Buffer.from(JSON.stringify({ FailedEntryCount: 0, Entries: a.results }))]),
            },
          };
        },
      } as never,
    });
    return { events, requests };
  }
  const okFor = (n: number) => ({
    results: Array.from({ length: n }, (_, i) => ({ EventId: `id ${i}` })),
  });

  it('putEntries: the entries not sent, none of unknown fate, the reason in the message', async () => {
    const { events, requests } = busWithCredentials(
      () => false,
      () => okFor(0),
    );
    const entries = markets(12).map((t) => ({
      EventBusName: BUS,
      Source: 'backstop.prices',
      DetailType: 'PriceTick',
      Detail: JSON.stringify({ symbol: t.symbol, sequence: t.sequence }),
    }));
    const error = await caught<PutEntriesError>(putEntries(events, entries, noWait));
    expect(error).toBeInstanceOf(PutEntriesError);
    expect(requests).toEqual([]);
    // Before: the first call's 10 of unknown fate ("may be on the bus or not").
    expect(error.unknown).toEqual([]);
    expect(error.unsent).toEqual(Array.from({ length: 12 }, (_, i) => i));
    expect(error.notSent).toBe("no request left: the SDK could not resolve the caller's credentials");
    expect(error.message).toBe(
      "events/not-sent: a PutEvents call was NOT sent, no request left: the SDK could not resolve the caller's " +
        'credentials (CredentialsProviderError: Could not load credentials from any providers): 12 entries not ' +
        'sent, none on the bus; 0 put and 0 refused before it',
    );
  });

  it('publishTicks: the ticks not sent, with why; those put before it put', async () => {
    // The first call's credentials resolve, the second's do not (an SSO session ending between them).
    const { events, requests } = busWithCredentials(
      (sent) => sent === 0,
      () => okFor(10),
    );
    const error = await caught<TickPublishError>(publishTicks(events, BUS, markets(12), noWait));
    expect(requests.map((r) => r.length)).toEqual([10]);
    expect(error.outcome.accepted).toBe(10);
    expect(error.unknown).toEqual([]);
    expect(error.unsent.map((u) => u.symbol)).toEqual(['M10-USD', 'M11-USD']);
    expect(error.message).toBe(
      'tick/not-published: of 12 ticks 10 put; 2 not sent, not on the bus (no request left: the SDK could not ' +
        "resolve the caller's credentials: CredentialsProviderError: Could not load credentials from any " +
        'providers): M10-USD 7; M11-USD 7',
    );
  });

  it('replay: its tick not sent, not counted sent nor of unknown fate', async () => {
    const { events } = busWithCredentials(
      () => false,
      () => okFor(1),
    );
    const outcome = await replay(events, 2);
    expect(outcome.error).toBeInstanceOf(PutEntriesError);
    // Before: sent 1, unknown [41].
    expect(outcome).toMatchObject({ sent: 0, accepted: 0, unknown: [] });
    expect(outcome.notSent).toEqual([
      {
        sequence: 41,
        reason:
          "no request left: the SDK could not resolve the caller's credentials (CredentialsProviderError: Could " +
          'not load credentials from any providers)',
      },
    ]);
  });

  // cli50b-replay-last-sent: the line of a replay's ticks of unknown fate called the last one past resending when a
  // later tick's call made no request: `lastSequence` counts it, and nothing of it is on the bus.
  it('replay: a tick of unknown fate, then one not sent: the last that may be on the bus, it is resent', async () => {
    // Tick 41's five calls answered with no result for it; tick 42's credentials did not resolve.
    const { events, requests } = busWithCredentials(
      (sent) => sent < 5,
      () => ({ results: [{} as { EventId: string }] }),
    );
    const outcome = await replay(events, 3);
    expect(requests).toHaveLength(5);
    expect(outcome.unknown.map((u) => [u.sequence, u.code])).toEqual([[41, 'NoResult']]);
    expect(outcome.notSent?.map((n) => n.sequence)).toEqual([42]);
    expect(outcome).toMatchObject({ lastSequence: 42, lastMaybeOnBus: 41 });
    expect(outcome.lastTaken).toBeUndefined();
    const target = { kind: 'aws', stage: 'prod', region: 'eu-west-1' } as const;
    // Before: "It was followed by later ticks of the replay ...", no resend.
    expect(replayUnknownFateLine('ETH-USD', outcome, () => parsePrice('150'), target)).toContain(
      'sending it again (`backstop inject tick --symbol ETH-USD --price 150 --sequence 41 --target aws --stage prod --region eu-west-1`) is safe',
    );
    expect(unknownFateMatters(outcome)).toBe(true);
  });

  it('after a call of the same entries that failed without an answer: of unknown fate still', async () => {
    // A held tick: its first call timed out (perhaps taken), its second found no credentials.
    const { events, requests } = busWithCredentials(
      (sent) => sent < 2,
      (n) =>
        n === 1
          ? okFor(1)
          : {
              fail: Object.assign(new Error('a request has exceeded the configured requestTimeout.'), {
                name: 'TimeoutError',
              }),
            },
    );
    const outcome = await replay(events, 1, { hold: holdFor(1, { putMayHeal: (e) => e instanceof Error }) });
    expect(requests).toEqual([['ETH-USD 41'], ['ETH-USD 42']]);
    expect(outcome.unknown).toEqual([
      expect.objectContaining({ sequence: 42, code: 'CredentialsProviderError' }),
    ]);
    expect(outcome.notSent).toBeUndefined();
    expect(outcome).toMatchObject({ sent: 1, held: 1 });
  });

  // review49-feed-no-result-not-sent: an entry an answer said nothing of may be on the bus; the next call's failing
  // to sign does not make it NOT sent.
  it('after an answer with no result for an entry, sent again: that entry of unknown fate still', async () => {
    const { events, requests } = busWithCredentials(
      (sent) => sent < 1,
      () => ({ results: [{ EventId: 'id 0' }, {} as { EventId: string }] }),
    );
    const error = await caught<PutEntriesError>(
      putEntries(
        events,
        markets(2).map((t, i) => tickEntryOf({ ...t, sequence: i })),
        noWait,
      ),
    );
    expect(requests).toEqual([['M0-USD 0', 'M1-USD 1']]);
    expect(error.outcome.accepted).toBe(1);
    // Before: unsent [1], "none on the bus".
    expect(error.notSent).toBeUndefined();
    expect(error.unsent).toEqual([]);
    expect(error.unknown).toEqual([expect.objectContaining({ index: 1, code: 'CredentialsProviderError' })]);
  });

  it("the SDK's own retry finding the credentials expired: of unknown fate (its first attempt was sent)", async () => {
    // The SDK signs each attempt anew: its second, after a timeout, finds them gone ($metadata.attempts 2).
    const { events, requests } = busWithCredentials(
      (sent) => sent < 1,
      () => ({ fail: Object.assign(new Error('timed out'), { name: 'TimeoutError' }) }),
      2,
    );
    const error = await caught<PutEntriesError>(putEntries(events, [tickEntryOf(tickOf('ETH-USD'))], noWait));
    expect(requests).toHaveLength(1);
    expect(error.notSent).toBeUndefined();
    expect(error.unknown).toEqual([expect.objectContaining({ code: 'CredentialsProviderError' })]);
  });

  // feed50-credentials-shared-error: the SDK's memoized credential provider hands one rejection to every call resolving
  // at the time, and each call's retry stamps its own attempts on that one error ($metadata.attempts): a call read
  // another's. Here every failing resolution throws one error, and the calls are ordered so that one call's stamp lands
  // before the other reads it, as it may when both await the one pending resolution.
  describe('two calls on one client, one credentials rejection between them: each call its own fate', () => {
    const timeout = () => Object.assign(new Error('timed out'), { name: 'TimeoutError' });
    function sharedRejection() {
      const shared = noCredentials();
      const state = { failing: false, requests: [] as string[][] };
      const events = new EventBridgeClient({
        region: 'eu-west-1',
        maxAttempts: 2,
        credentials: Object.assign(
          async () => {
            if (state.failing) throw shared;
            return { accessKeyId: 'feed', secretAccessKey: 'feed' };
          },
          { memoized: true },
        ),
        retryStrategy: noDelayRetry as never,
        requestHandler: {
          // Each request times out (perhaps taken), and the credentials expire.
          handle: async (request: { body?: string | Uint8Array }) => {
            const text =
              typeof request.body === 'string' ? request.body : new TextDecoder().decode(request.body);
            state.requests.push(
              (JSON.parse(text) as { Entries: PutEventsRequestEntry[] }).Entries.map(keyOf),
            );
            state.failing = true;
            throw timeout();
          },
        } as never,
      });
      return { events, state, shared };
    }
    const put = (events: EventBridgeClient, symbol: string) =>
      caught<PutEntriesError>(putEntries(events, [tickEntryOf(tickOf(symbol))], noWait));

    it('a call that sent nothing, after another stamped its second attempt on the error: NOT sent', async () => {
      const { events, state, shared } = sharedRejection();
      // ETH's first attempt left and timed out; its second found no credentials: stamped 2.
      const eth = await put(events, 'ETH-USD');
      expect(eth.unknown).toEqual([expect.objectContaining({ code: 'CredentialsProviderError' })]);
      expect(shared).toMatchObject({ $metadata: { attempts: 2 } });
      // BTC's call finds none before its first request.
      const btc = await put(events, 'BTC-USD');
      expect(state.requests).toEqual([['ETH-USD 7']]);
      // Before: of unknown fate (the attempts ETH's retry stamped).
      expect(btc.notSent).toBe("no request left: the SDK could not resolve the caller's credentials");
      expect(btc.unsent).toEqual([0]);
      expect(btc.unknown).toEqual([]);
    });

    it('a call whose request left, after another stamped its first attempt on the error: of unknown fate', async () => {
      const { events, state, shared } = sharedRejection();
      let btc: PutEntriesError | undefined;
      // BTC's call resolves its credentials, then its first attempt's signing finds none: BTC's retry stamps 1 on the
      // error after ETH's stamped 2, before ETH's call reads it.
      let armed = true;
      events.middlewareStack.add(
        ((next: (args: { input: unknown }) => Promise<unknown>) => async (args: { input: unknown }) => {
          try {
            return await next(args);
          } catch (error) {
            if (armed) {
              armed = false;
              state.failing = false;
              btc = await put(events, 'BTC-USD');
            }
            throw error;
          }
        }) as never,
        { step: 'initialize', name: 'otherCallBetween' },
      );
      events.middlewareStack.add(
        ((next: (args: unknown) => Promise<unknown>) => async (args: unknown) => {
          if (!armed) state.failing = true;
          return next(args);
        }) as never,
        { step: 'build', name: 'expireBeforeSigning' },
      );
      const eth = await put(events, 'ETH-USD');
      expect(state.requests).toEqual([['ETH-USD 7']]);
      expect(btc?.notSent).toBe("no request left: the SDK could not resolve the caller's credentials");
      expect(shared).toMatchObject({ $metadata: { attempts: 1 } });
      // Before: NOT sent, none on the bus (the attempts BTC's retry stamped), though its request left.
      expect(eth.notSent).toBeUndefined();
      expect(eth.unknown).toEqual([expect.objectContaining({ code: 'CredentialsProviderError' })]);
    });
  });
});

/**
 * Whether the SDK's retry would send a call failing with `error` again: its retry middleware's own classification of
 * the error (@smithy/core's, through the client: no import of @smithy/core here), THROTTLING or TRANSIENT being what
 * its standard strategy retries (the others, CLIENT_ERROR and SERVER_ERROR, it does not). The strategy records it and
 * ends the call, so nothing waits on a backoff.
 */
async function sdkWouldRetry(error: Error): Promise<boolean> {
  let type: string | undefined;
  const events = new EventBridgeClient({
    region: 'eu-west-1',
    credentials: { accessKeyId: 'feed', secretAccessKey: 'feed' },
    maxAttempts: 2,
    retryStrategy: {
      acquireInitialRetryToken: async () => ({ getRetryCount: () => 0, getRetryDelay: () => 0 }),
      refreshRetryTokenForRetry: async (_token: unknown, info: { errorType: string }) => {
        type = info.errorType;
        throw error;
      },
      recordSuccess: () => {},
    } as never,
    requestHandler: {
      handle: async () => {
        throw error;
      },
    } as never,
  });
  await expect(events.send(new PutEventsCommand({ Entries: [tickEntryOf(tickOf('ETH-USD'))] }))).rejects.toBe(
    error,
  );
  expect(type).toBeDefined();
  return type === 'THROTTLING' || type === 'TRANSIENT';
}

/**
 * The SDK's retry middleware with a strategy that sends a call again once, at once, after what it classes as transient
 * (no test waits on the standard strategy's backoff).
 */
const noDelayRetry = {
  acquireInitialRetryToken: async () => ({ getRetryCount: () => 0, getRetryDelay: () => 0 }),
  refreshRetryTokenForRetry: async (
    token: { getRetryCount(): number },
    info: { errorType: string; error: Error },
  ) => {
    if (info.errorType !== 'TRANSIENT' || token.getRetryCount() >= 1) throw info.error;
    return { getRetryCount: () => 1, getRetryDelay: () => 0 };
  },
  recordSuccess: () => {},
};

const tickEntryOf = (t: TickFields): PutEventsRequestEntry => ({
  EventBusName: BUS,
  Source: 'backstop.prices',
  DetailType: 'PriceTick',
  Detail: JSON.stringify({ symbol: t.symbol, sequence: t.sequence }),
});

// feed49b-held-refused-unknown: a held tick sent again after a call that got no answer (timeouts48-held-put), then
// refused whole (a 4xx) or answered with a retryable code through its attempts, was reported refused, "not on the bus",
// though the first call may have put it.
describe('an entry a call got no answer for stays of unknown fate whatever a later call refuses', () => {
  const timedOut = () =>
    Object.assign(new Error('a request has exceeded the configured 10000 ms requestTimeout.'), {
      name: 'TimeoutError',
    });
  const mayHeal = { ...noWait, callMayHeal: heldPutMayHeal };
  const holdOnce = (events: EventBridgeClient) =>
    replay(events, 1, {
      // Work left for three held ticks.
      hold: holdFor(3, { putMayHeal: heldPutMayHeal }),
    });

  it.each([
    ['AccessDeniedException', 400],
    ['ValidationException', 400],
  ])(
    'a held tick timed out, then its call refused whole (%s): of unknown fate, the hold ended',
    async (type, status) => {
      const { events, requests } = fakeBus((n, keys) =>
        n === 1 ? ok(keys) : n === 2 ? { fail: timedOut() } : { status, type, message: 'no' },
      );
      const outcome = await holdOnce(events);
      expect(requests).toEqual([['ETH-USD 41'], ['ETH-USD 42'], ['ETH-USD 42']]);
      // Before: rejected [42], "not on the bus".
      expect(outcome.rejected).toEqual([]);
      expect(outcome.unknown).toEqual([
        {
          index: 1,
          sequence: 42,
          code: type,
          message: 'no; an earlier call of it got no answer (TimeoutError): it may be on the bus',
          attempts: 2,
          refusedAfter: { scope: 'call', retryable: false },
        },
      ]);
      // Every next call would be refused the same: the hold still ends there.
      expect(outcome.refusedWhole).toMatchObject({ sequence: 42, code: type, scope: 'call' });
      expect(outcome).toMatchObject({ sent: 1, held: 1, accepted: 1 });
    },
  );

  it('a held tick timed out, then throttled through its attempts: of unknown fate', async () => {
    const { events, requests } = fakeBus((n, keys) =>
      n === 1
        ? ok(keys)
        : n === 2
          ? { fail: timedOut() }
          : { results: [{ ErrorCode: 'ThrottlingException', ErrorMessage: 'Rate exceeded' }] },
    );
    const outcome = await holdOnce(events);
    // The hold goes on: a throttle says nothing of the next call.
    expect(requests.filter((r) => r[0] === 'ETH-USD 42')).toHaveLength(5);
    expect(outcome.rejected.filter((r) => r.sequence === 42)).toEqual([]);
    expect(outcome.unknown.find((u) => u.sequence === 42)).toEqual({
      index: 1,
      sequence: 42,
      code: 'ThrottlingException',
      message: 'Rate exceeded; an earlier call of it got no answer (TimeoutError): it may be on the bus',
      attempts: 5,
      refusedAfter: { scope: 'entry', retryable: true },
    });
    expect(outcome.refusedWhole).toBeUndefined();
  });

  it('putEntries: refused for the entry after no answer, unknown; put after no answer, put', async () => {
    const { events } = fakeBus((n, keys) =>
      n === 1
        ? { fail: timedOut() }
        : {
            results: keys.map((k) =>
              k === 'M0-USD 0'
                ? { ErrorCode: 'MalformedDetail', ErrorMessage: 'Detail is malformed.' }
                : { EventId: `id ${k}` },
            ),
          },
    );
    const outcome = await putEntries(
      events,
      markets(2).map((t, i) => tickEntryOf({ ...t, sequence: i })),
      mayHeal,
    );
    expect(outcome.rejected).toEqual([]);
    expect(outcome.unknown).toEqual([
      expect.objectContaining({
        index: 0,
        code: 'MalformedDetail',
        refusedAfter: { scope: 'entry', retryable: false },
      }),
    ]);
    expect(outcome.eventIds).toEqual(['id M1-USD 1']);
  });

  it('an answer that said nothing of an entry, then its call refused whole: that entry unknown, a throttled one refused', async () => {
    // The first answer: no result for M0, a throttle for M1 (not on the bus); the second call is refused whole.
    const { events, requests } = fakeBus((n) =>
      n === 1
        ? { results: [{} as { EventId: string }, { ErrorCode: 'ThrottlingException', ErrorMessage: 'slow' }] }
        : { status: 400, type: 'AccessDeniedException', message: denial },
    );
    const error = await caught<TickPublishError>(
      publishTicks(
        events,
        BUS,
        markets(2).map((t, i) => ({ ...t, sequence: i })),
        noWait,
      ),
    );
    expect(requests).toEqual([
      ['M0-USD 0', 'M1-USD 1'],
      ['M0-USD 0', 'M1-USD 1'],
    ]);
    expect(error.refused).toEqual([
      expect.objectContaining({ symbol: 'M1-USD', code: 'AccessDeniedException', scope: 'call' }),
    ]);
    // Before: refused, "not on the bus".
    expect(error.unknown).toEqual([
      expect.objectContaining({
        symbol: 'M0-USD',
        code: 'AccessDeniedException',
        message: `${denial}; an earlier call of it got an answer with no result for it: it may be on the bus`,
      }),
    ]);
    expect(error.message).toContain('1 of unknown fate, on the bus or not (sending again is safe): M0-USD 0');
  });

  it('a later call with no credentials: the entries an earlier call got no answer for unknown, the others NOT sent', async () => {
    // M0's first answer said nothing of it, M1 was throttled; then the SDK finds no credentials.
    let calls = 0;
    const { events } = fakeBus(() => ({
      results: [{} as { EventId: string }, { ErrorCode: 'ThrottlingException', ErrorMessage: 'slow' }],
    }));
    events.middlewareStack.add(
      ((next: (args: unknown) => Promise<unknown>) => async (args: unknown) => {
        calls += 1;
        if (calls === 1) return next(args);
        throw Object.assign(new Error('Could not load credentials from any providers'), {
          name: 'CredentialsProviderError',
        });
      }) as never,
      { step: 'initialize', name: 'credentialsGone' },
    );
    const error = await caught<PutEntriesError>(
      putEntries(
        events,
        markets(2).map((t, i) => tickEntryOf({ ...t, sequence: i })),
        noWait,
      ),
    );
    expect(error.unknown).toEqual([expect.objectContaining({ index: 0, code: 'CredentialsProviderError' })]);
    expect(error.unsent).toEqual([1]);
    expect(error.notSent).toBe("no request left: the SDK could not resolve the caller's credentials");
    expect(error.message).toContain(
      ': 1 entry not sent, none on the bus, 1 entry of it may be on the bus or not (an earlier call of it got no answer); 0 put and 0 refused before it',
    );
  });
});

// feed49c-call-refused-retryable: a call refused whole with a code the SDK retries (a throttle it sent once, its retry
// quota spent) was never sent again, even where callMayHeal allowed it: a held tick was lost to one throttle.
describe('a call refused whole with a code the SDK would retry', () => {
  const throttled = { status: 400, type: 'ThrottlingException', message: 'Rate exceeded' } as const;

  it("is judged by the SDK's own retry classification", async () => {
    const answer = (name: string, status = 400, extra: object = {}) =>
      Object.assign(new Error(name === 'InvalidSignatureException' ? 'Signature expired: 20260101' : 'x'), {
        name,
        $fault: 'client',
        $metadata: { httpStatusCode: status, attempts: 1 },
        ...extra,
      });
    const cases = [
      answer('ThrottlingException'),
      answer('TooManyRequestsException'),
      answer('SlowDown', 503),
      answer('Anything', 429),
      answer('RequestTimeoutException', 408),
      answer('InvalidSignatureException', 403),
      answer('Throttled', 400, { $retryable: { throttling: true } }),
      answer('AccessDeniedException', 403, { $metadata: { httpStatusCode: 403, clockSkewCorrected: true } }),
      answer('AccessDeniedException', 403),
      answer('ValidationException'),
      answer('ResourceNotFoundException'),
      answer('InternalException', 500),
      answer('InternalException', 501),
    ];
    expect(cases.map(retryableBySdk)).toEqual(await Promise.all(cases.map(sdkWouldRetry)));
    expect(cases.map(retryableBySdk)).toEqual([
      ...[true, true, true, true, true, true, true, true],
      ...[false, false, false, true, false],
    ]);
  });

  it('a held tick: sent again within its 5 calls, put; the feed (no callMayHeal): refused once, as before', async () => {
    const { events, requests } = fakeBus((n, keys) => (n === 2 || n === 3 ? throttled : ok(keys)));
    const sent: number[] = [];
    const outcome = await replay(events, 1, {
      hold: holdFor(1, {
        putMayHeal: heldPutMayHeal,
        onSent: (s) => sent.push(s),
      }),
    });
    // Before: [41], [42], the held tick refused, never sent again.
    expect(requests).toEqual([['ETH-USD 41'], ['ETH-USD 42'], ['ETH-USD 42'], ['ETH-USD 42']]);
    expect(outcome).toMatchObject({ accepted: 2, rejected: [], unknown: [], held: 1 });
    expect(sent).toEqual([42]);
    // A feed's call is not held behind it.
    const feed = fakeBus(() => throttled);
    const refused = await putEntries(feed.events, [tickEntryOf(tickOf('ETH-USD'))], noWait);
    expect(feed.requests).toHaveLength(1);
    expect(refused.rejected).toEqual([
      expect.objectContaining({ code: 'ThrottlingException', scope: 'call', retryable: true, attempts: 1 }),
    ]);
  });

  it('throttled through its 5 calls: refused, retryable, the hold going on; one the SDK would not retry, once', async () => {
    const mayHeal = { ...noWait, callMayHeal: () => true };
    const always = fakeBus(() => ({ status: 429, type: 'TooManyRequestsException', message: 'slow down' }));
    const outcome = await putEntries(always.events, [tickEntryOf(tickOf('ETH-USD'))], mayHeal);
    expect(always.requests).toHaveLength(5);
    expect(outcome.rejected).toEqual([
      expect.objectContaining({
        code: 'TooManyRequestsException',
        scope: 'call',
        retryable: true,
        attempts: 5,
      }),
    ]);
    // Retryable: not one every next call meets (a replay goes on past it).
    expect(refusedForEveryCall(outcome.rejected)).toBeUndefined();
    const denied = fakeBus(() => ({ status: 400, type: 'AccessDeniedException', message: denial }));
    const refused = await putEntries(denied.events, [tickEntryOf(tickOf('ETH-USD'))], mayHeal);
    expect(denied.requests).toHaveLength(1);
    expect(refused.rejected).toEqual([
      expect.objectContaining({ code: 'AccessDeniedException', retryable: false, attempts: 1 }),
    ]);
  });
});

// feed49c-held-tick-line: `replay --hold` said "sent again as sequence N" of a held tick the bus refused or said nothing
// of: onSent was called for every held tick not refused by every call.
describe('a held tick the bus did not put is said as it went, not as sent', () => {
  it('refused (a throttle through its attempts) and of unknown fate (no result): onNotPut, not onSent', async () => {
    const { events } = fakeBus((_n, keys) => {
      const key = keys[0];
      if (key === 'ETH-USD 42')
        return { results: [{ ErrorCode: 'ThrottlingException', ErrorMessage: 'slow' }] };
      if (key === 'ETH-USD 43') return { results: [{} as { EventId: string }] };
      return ok(keys);
    });
    const said: string[] = [];
    const outcome = await replay(events, 1, {
      hold: holdFor(3, {
        onSent: (s) => said.push(`sent ${s}`),
        onNotPut: (s, notPut) =>
          said.push(
            `${notPut.fate} ${s}: ${notPut.fate === 'refused' ? notPut.refused.code : notPut.unknown.code}`,
          ),
      }),
    });
    // Before: sent 42, sent 43, sent 44.
    expect(said).toEqual(['refused 42: ThrottlingException', 'unknown 43: NoResult', 'sent 44']);
    expect(outcome).toMatchObject({ held: 3, accepted: 2 });
    expect(
      heldNotPutLine('ETH-USD', parsePrice('150'), 42, {
        fate: 'refused',
        refused: outcome.rejected[0]!,
      }),
    ).toBe(
      'ETH-USD 150 as sequence 42 refused by EventBridge, not on the bus: ThrottlingException (slow), still failing ' +
        'after 5 attempts; the hold goes on',
    );
    expect(
      heldNotPutLine('ETH-USD', parsePrice('150'), 43, { fate: 'unknown', unknown: outcome.unknown[0]! }),
    ).toBe(
      'ETH-USD 150 as sequence 43 of unknown fate, on the bus or not: NoResult (no result for the entry), after 5 ' +
        'attempts; the hold goes on',
    );
  });
});
