import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ProvisionedThroughputExceededException } from '@aws-sdk/client-dynamodb';
import type { EventBridgeClient, PutEventsCommandInput } from '@aws-sdk/client-eventbridge';
import {
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  InvalidAttributeName,
  InvalidSecurity,
  KmsThrottled,
  ReceiveMessageCommand,
  RequestThrottled,
} from '@aws-sdk/client-sqs';
import fc from 'fast-check';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { UsageError } from '../../cli/args.ts';
import { environmentFailure, parseCommand, refreshFailure, riskConfigFor } from '../../cli/ops/common.ts';
import {
  holdFailuresAllowed,
  holdLooks,
  replayedLine,
  replayUnknownFateLine,
  unknownLine,
} from '../../cli/ops/events.ts';
import { renderStatement, statementJson } from '../../cli/ops/fund-statement.ts';
import { notResentLine, overdueHeadline } from '../../cli/ops/liquidations.ts';
import { emulatorOf, upIndexShards, venueKeyOption } from '../../cli/ops/local.ts';
import { pricesOption, renderFund } from '../../cli/ops/seed.ts';
import {
  type FailedRefresh,
  failedRefreshLine,
  renderStatus,
  STATUS_USAGE,
  watchStatus,
} from '../../cli/ops/status.ts';
import { readRiskConfig } from '../../cli/risk-config.ts';
import { resolveSymbol } from '../../cli/simulate.ts';
import {
  deadLetterQueueUrlKey,
  OUTPUT_KEYS,
  queueUrlKey,
  riskConfigDigest,
  stackName,
  tableNameKey,
} from '../../infra/outputs.ts';
import { createAwsClients, localClientConfig } from '../../shared/adapters/aws/index.ts';
import { UnprocessedKeysError } from '../../shared/adapters/aws/reader.ts';
import { EmbeddedLedger } from '../../shared/adapters/embedded/ledger.ts';
import { EmbeddedMarketRepository } from '../../shared/adapters/embedded/markets.ts';
import { adviceTargetFromEnv, LOCAL_RUNNER_ENV } from '../../shared/advice.ts';
import {
  DEFAULT_RISK_CONFIG,
  DEFAULT_RISK_CONFIG_INPUT,
  marketConfig,
  parseRiskConfig,
  type RiskConfig,
} from '../../shared/domain/config.ts';
import { SETTLED_AFTER_MS } from '../../shared/domain/fund-statement.ts';
import { evaluateTick, rebasedTickState, withinSequenceJump } from '../../shared/domain/tick.ts';
import { formatQuoteGrouped, parsePrice, usd } from '../../shared/domain/units.ts';
import { TickInputError, tickDetail } from '../../shared/feed/publisher.ts';
import {
  backstopCommand,
  DEFAULT_DEPLOYED_STAGE,
  type Deployment,
  localstackEndpoint,
  namesFromOutputs,
  shellWord,
  TargetError,
  targetFlags,
  withTargetFlags,
} from '../../shared/local/deployment.ts';
import { MOTO_IMPORTS, MotoNotInstalledError, motoCommand, startMoto } from '../../shared/local/moto.ts';
import { positionsFromFile, refuseUnopenable, SeedFileError } from '../../shared/local/seed.ts';
import {
  acquireLock,
  claimSequences,
  continuesSent,
  lastSentSequence,
  recordSentSequence,
  resetSentSequence,
  SEQUENCES_FILE,
} from '../../shared/local/sent-sequences.ts';
import { readLocalRecord, removeLocalRecord, writeLocalRecord } from '../../shared/local/state.ts';
import {
  drawWindowStatus,
  fundStatus,
  type LiquidationWork,
  lookSpans,
  progressMoved,
  STATUS_COUNT_EVERY_MS,
  STRANDED_CONFIRM_MS,
  type StatusReport,
  strandedAdvice,
  strandedRuns,
} from '../../shared/local/status.ts';
import {
  dueOffsets,
  type HandledTicks,
  nextSequence,
  parseSpeed,
  type ReplayOptions,
  replayBatches,
  replayPrices,
} from '../../shared/local/ticks.ts';
import { metricsService } from '../../shared/metrics.ts';
import {
  type LiquidationRecord,
  type MarketRepository,
  type MarketState,
  silentTelemetry,
} from '../../shared/ports/index.ts';
import { type PriceTickDetail, parseTickDetail } from '../../shared/schemas/tick.ts';
import { WITHDRAWAL_AUDIT_MAX_ENTRIES, withdrawalRefusal } from '../../shared/services/admin.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { readFundStatement } from '../../shared/services/fund-statement.ts';
import { OVERDUE_SLACK_MS, watchLiquidations } from '../../shared/services/liquidation-watch.ts';
import { reconcileAccount } from '../../shared/services/reconcile.ts';
import { physicalName, QUEUES, TABLES, TICK_BUS } from '../../shared/topology.ts';
import { cli, useOperatorEmulator } from '../support/cli.ts';
import { liquidation } from '../support/records.ts';

const made: string[] = [];
const tempDir = (prefix: string): string => {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  made.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const MINUTE = 60_000;
const T0 = Date.UTC(2020, 2, 12, 21, 54);
const points = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    timestampMs: T0 + i * MINUTE,
    price: parsePrice(String(130 - i / 10)),
  }));

describe('parseCommand: positional words and strict options', () => {
  const spec = { price: { type: 'string' }, json: { type: 'boolean' } } as const;
  it('separates the subcommand and file from options, in any order', () => {
    const { positionals, values } = parseCommand(['up', '--price', '5', 'file.csv', '--json'], spec);
    expect(positionals).toEqual(['up', 'file.csv']);
    expect(values).toEqual({ price: '5', json: true });
  });
  it('keeps a negative value for the option to refuse, and "--" ends the options', () => {
    expect(parseCommand(['--price', '-1'], spec).values.price).toBe('-1');
    expect(parseCommand(['--price=7', '--', '--json'], spec)).toEqual({
      positionals: ['--json'],
      values: { price: '7' },
    });
  });
});

// ops47-hold-retry: a hold ended on its first look at the stack that failed (a throttle, a blip), losing its place.
describe('replay --hold: its looks at the stack', () => {
  const throttled = () =>
    Object.assign(new Error('Rate exceeded'), {
      name: 'ThrottlingException',
      $metadata: { httpStatusCode: 400 },
    });
  const work = (nonTerminal: number, stranded = 0) =>
    ({
      liquidations: { total: 1, nonTerminal },
      stranded,
      dlqMessages: 0,
      progress: new Map(),
    }) as unknown as LiquidationWork;
  const aws = { kind: 'aws', stage: 'prod', region: 'eu-west-1' };
  /**
   * Looks whose reads answer `answers` in turn (an Error is thrown); the lines they warn with. Work left with no message
   * is judged on two looks running, with no minute to confirm it (confirmMs 0: its own test has a clock).
   */
  function looksAt(answers: (LiquidationWork | Error)[], everyMs = 30_000) {
    const warned: string[] = [];
    const looks = holdLooks({
      collect: async () => {
        const answer = answers.shift()!;
        if (answer instanceof Error) throw answer;
        return answer;
      },
      everyMs,
      target: aws,
      warn: (line) => warned.push(line),
      confirmMs: 0,
      nowMs: () => 0,
    });
    return { looks, warned };
  }

  it('holds on through failed looks that may heal, said each time, the count starting again after a read', async () => {
    const { looks, warned } = looksAt([throttled(), throttled(), work(1), throttled(), work(0)]);
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await looks.pending());
    expect(answers).toEqual([true, true, true, true, false]);
    expect(looks.ended()).toBeUndefined();
    expect(warned).toEqual([
      "hold: the stack's status could not be read (ThrottlingException: Rate exceeded): its last price is sent again, and it is read again in 30 s (1 of 10 failures in a row before the hold ends)",
      "hold: the stack's status could not be read (ThrottlingException: Rate exceeded): its last price is sent again, and it is read again in 30 s (2 of 10 failures in a row before the hold ends)",
      "hold: the stack's status could not be read (ThrottlingException: Rate exceeded): its last price is sent again, and it is read again in 30 s (1 of 10 failures in a row before the hold ends)",
    ]);
    expect(looks.work()).toEqual({ total: 1, nonTerminal: 0 });
  });

  it('ends after five minutes of failed looks in a row, and at once on one that cannot heal', async () => {
    expect([1_000, 30_000, 119_000].map(holdFailuresAllowed)).toEqual([300, 10, 3]);
    const { looks } = looksAt(Array.from({ length: 11 }, throttled));
    const answers = [];
    for (let i = 0; i < 11; i++) answers.push(await looks.pending());
    expect(answers).toEqual([...Array(10).fill(true), false]);
    expect(looks.ended()).toBe(
      "hold ended: the stack's status could not be read 11 times in a row, over 300 s (ThrottlingException: Rate exceeded)",
    );
    expect(looks.work()).toBeUndefined();
    const denied = Object.assign(new Error('User is not authorized'), {
      name: 'AccessDeniedException',
      $metadata: { httpStatusCode: 400 },
    });
    const gone = looksAt([work(1), denied]);
    expect([await gone.looks.pending(), await gone.looks.pending()]).toEqual([true, false]);
    expect(gone.looks.ended()).toBe(
      "hold ended: the stack's status could not be read (AccessDeniedException: User is not authorized)",
    );
    expect(gone.warned).toEqual([]);
  });

  // stranded48-hold-confirm: the hold ended once two looks running (30 s apart by default) found work left with no
  // message to move it, and SQS's approximate counts may read 0 for a minute while a message moves it.
  it('ends on work left with no message only once its looks have found none for a minute', async () => {
    let now = 0;
    const answers = [work(1, 1), work(1, 1), work(1, 0), work(1, 1), work(1, 1), work(1, 1)];
    const looks = holdLooks({
      collect: async () => answers.shift()!,
      everyMs: 30_000,
      target: aws,
      warn: () => {},
      nowMs: () => now,
    });
    const lookAt = (ms: number) => {
      now = ms;
      return looks.pending();
    };
    // None seen moving it at 0 and 30 s, then a message: it holds on (before: it ended at 30 s, the second look).
    expect([await lookAt(0), await lookAt(30_000), await lookAt(60_000)]).toEqual([true, true, true]);
    expect(looks.ended()).toBeUndefined();
    // None from 90 s on: it holds on 59.999 s later, and ends at the look a minute after the first.
    expect([await lookAt(90_000), await lookAt(149_999)]).toEqual([true, true]);
    expect(await lookAt(150_000)).toBe(false);
    // follow48-hold-looked: and says how long it looked, the looks from 90 s to 150 s.
    expect(looks.ended()).toBe(
      'hold ended: 1 liquidation is not terminal and no message is left to move it (none seen by 3 looks over 60 s): no dead letter holds it (a purged queue, an expired dead letter): backstop liquidations overdue --all --resend --config risk.json --target aws --stage prod --region eu-west-1 sends each a message',
    );
    // Judged at once (confirmMs 0): two looks running still, as SQS's counts are approximate.
    const atOnce = holdLooks({
      collect: async () => work(1, 1),
      everyMs: 30_000,
      target: aws,
      warn: () => {},
      nowMs: () => 0,
      confirmMs: 0,
    });
    expect([await atOnce.pending(), await atOnce.pending()]).toEqual([true, false]);
  });

  // review50-cli2-hold-clock: the looks were timed by the machine's wall clock: stepped forward two minutes between two
  // looks (NTP, an operator's date), work the counts read with no message was confirmed stranded, the hold ended.
  it("times its looks by a clock no step of the machine's moves: two looks a moment apart confirm nothing", async () => {
    const trueNow = Date.now.bind(Date);
    let stepMs = 0;
    vi.spyOn(Date, 'now').mockImplementation(() => trueNow() + stepMs);
    try {
      const looks = holdLooks({
        collect: async () => work(1, 1),
        everyMs: 30_000,
        target: aws,
        warn: () => {},
      });
      expect(await looks.pending()).toBe(true);
      stepMs = 2 * 60_000;
      // Before: false, "none seen by 2 looks over 120 s".
      expect(await looks.pending()).toBe(true);
      expect(looks.ended()).toBeUndefined();
    } finally {
      vi.restoreAllMocks();
    }
  });

  // review48-stranded-moved: the run went on while its looks saw the work move (a liquidation's state changed), so
  // long as some was left with no message counted: counts reading 0 while messages moved it ended the hold a minute on.
  it('starts the minute again when its looks see the liquidations move, though the counts read 0', async () => {
    let now = 0;
    const states = (byState: Record<string, number>) =>
      ({
        liquidations: { total: 2, nonTerminal: 2, byState, owingAdlRounds: 0 },
        stranded: 2,
        dlqMessages: 0,
        progress: new Map(),
      }) as unknown as LiquidationWork;
    const answers = [
      states({ QUEUED: 2 }),
      states({ QUEUED: 2 }),
      states({ QUEUED: 1, EXECUTING: 1 }),
      states({ QUEUED: 1, EXECUTING: 1 }),
      states({ QUEUED: 1, EXECUTING: 1 }),
    ];
    const looks = holdLooks({
      collect: async () => answers.shift()!,
      everyMs: 30_000,
      target: aws,
      warn: () => {},
      nowMs: () => now,
    });
    const lookAt = (ms: number) => {
      now = ms;
      return looks.pending();
    };
    // One moved between 30 and 60 s: it holds on at 60 s (before: ended, its looks a minute apart).
    expect([await lookAt(0), await lookAt(30_000), await lookAt(60_000), await lookAt(90_000)]).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect(looks.ended()).toBeUndefined();
    // None moved from 60 s: it ends a minute later.
    expect(await lookAt(120_000)).toBe(false);
    expect(looks.ended()).toMatch(
      /^hold ended: 2 liquidations are not terminal and no message is left to move them/,
    );
  });

  // status49-auction-moved: the looks compared the liquidations' counts by state only, and an auction's steps move
  // its own record, its liquidation staying in AUCTION: a step moving it while the counts read 0 was no movement, and
  // the hold ended a minute on.
  it("starts the minute again when its looks see a liquidation's version or its auction's step move", async () => {
    let now = 0;
    const progress = (p1: string, p2: string) =>
      ({
        liquidations: { total: 2, nonTerminal: 2, byState: { AUCTION: 2 }, owingAdlRounds: 0 },
        stranded: 2,
        dlqMessages: 0,
        progress: new Map([
          ['p1:0', p1],
          ['p2:0', p2],
        ]),
      }) as unknown as LiquidationWork;
    const asleep = 'AUCTION v3, auction RUNNING step 3 v4';
    const answers = [
      progress(asleep, 'AUCTION v1, auction RUNNING step 1 v1'),
      // Its auction stepped (woken by a tick), its liquidation's record the same.
      progress('AUCTION v3, auction RUNNING step 5 v5', 'AUCTION v1, auction RUNNING step 1 v1'),
      // The other liquidation's record moved, in the same state.
      progress('AUCTION v3, auction RUNNING step 5 v5', 'AUCTION v2, auction RUNNING step 1 v1'),
      progress('AUCTION v3, auction RUNNING step 5 v5', 'AUCTION v2, auction RUNNING step 1 v1'),
      progress('AUCTION v3, auction RUNNING step 5 v5', 'AUCTION v2, auction RUNNING step 1 v1'),
    ];
    const looks = holdLooks({
      collect: async () => answers.shift()!,
      everyMs: 30_000,
      target: aws,
      warn: () => {},
      nowMs: () => now,
    });
    const lookAt = (ms: number) => {
      now = ms;
      return looks.pending();
    };
    // Moved at 30 s and at 60 s: it holds on at 90 s (before: ended at 60 s, the counts by state the same).
    expect([await lookAt(0), await lookAt(30_000), await lookAt(60_000), await lookAt(90_000)]).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect(looks.ended()).toBeUndefined();
    // None moved from 60 s: it ends a minute later.
    expect(await lookAt(120_000)).toBe(false);
    expect(progressMoved(new Map([['a', 'x']]), new Map([['b', 'y']]))).toBe(false);
  });

  // status49-look-past-starting: the spans of the open index a look Queries, a pending tick's start stamp alone.
  it("splits the open index's start stamps around the pending ticks'", () => {
    const { MIN_SAFE_INTEGER: min, MAX_SAFE_INTEGER: max } = Number;
    expect(lookSpans([])).toEqual([{ from: min, to: max, starting: false }]);
    expect(lookSpans([7, 3, 7, 4])).toEqual([
      { from: min, to: 2, starting: false },
      { from: 3, to: 3, starting: true },
      { from: 4, to: 4, starting: true },
      { from: 5, to: 6, starting: false },
      { from: 7, to: 7, starting: true },
      { from: 8, to: max, starting: false },
    ]);
  });

  it('follows reads that find work stranded one after another, a read finding none or a clock set back ending the run', () => {
    const see = strandedRuns();
    expect([see(2, 1_000), see(1, 31_000), see(3, 61_000)]).toEqual([
      { forMs: 0, reads: 1 },
      { forMs: 30_000, reads: 2 },
      { forMs: 60_000, reads: 3 },
    ]);
    expect(see(0, 62_000)).toBeUndefined();
    expect(see(1, 63_000)).toEqual({ forMs: 0, reads: 1 });
    expect(see(1, 10_000)).toEqual({ forMs: 0, reads: 1 });
    // Work seen moving since the last read (review48-stranded-moved): the run starts again.
    expect(see(1, 40_000)).toEqual({ forMs: 30_000, reads: 2 });
    expect(see(1, 70_000, true)).toEqual({ forMs: 0, reads: 1 });
  });

  // final47-plurals: "then its last price 1 times"; a fund statement of one entry, "entries 5 to 5 (1 entry)".
  it("says a replay's one held tick, and a statement's one entry, in the singular", async () => {
    const replay = {
      file: 'eth.csv',
      symbol: 'ETH-USD',
      speed: 'max',
      total: 2,
      sent: 2,
      held: 1,
      accepted: 3,
      rejected: 0,
      firstSequence: 1,
      lastSequence: 3,
    };
    expect(replayedLine(replay)).toBe(
      'replayed 2 of 2 prices of eth.csv as ETH-USD ticks (sequences 1..3, speed max, then its last price once): 3 taken by the bus, 0 refused by it',
    );
    expect(replayedLine({ ...replay, held: 2, accepted: 4, lastSequence: 4 })).toContain(
      ', then its last price 2 times)',
    );
    expect(replayedLine({ ...replay, held: 0, accepted: 2, lastSequence: 2 })).toContain(
      '(sequences 1..2, speed max): ',
    );
    const ledger = new EmbeddedLedger();
    for (const [key, atMs] of [
      ['a', 1],
      ['b', 2],
    ] as const)
      await ledger.apply({
        account: INSURANCE_ACCOUNT,
        idempotencyKey: key,
        amount: usd('1'),
        kind: 'deposit',
        reference: key,
        atMs,
        floor: 0n,
      });
    const period = (first: number, last: number) =>
      readFundStatement(ledger, INSURANCE_ACCOUNT, { from: { sequence: first }, to: { sequence: last } });
    const line = async (first: number, last: number) =>
      renderStatement(await period(first, last), 'USD', aws).split('\n')[1];
    expect(await line(2, 2)).toMatch(/^period {5}entry 2: from entry 2 to entry 2,/);
    expect(await line(1, 2)).toMatch(/^period {5}entries 1 to 2 \(2 entries\): from entry 1 to entry 2,/);
  });

  // statement48-closed-by-time, statement48-empty-opening, statement48-index-lag: what the text says of each.
  // feed48-unknown-sequences: a replay's ticks of unknown fate by sequence, the first 20 of a longer list.
  it("says a replay's ticks of unknown fate by sequence and code, one in the singular, past 20 as how many more", () => {
    const unknown = (n: number) =>
      Array.from({ length: n }, (_, i) => ({
        index: i,
        code: 'TimeoutError',
        message: 'no answer',
        attempts: 3,
        sequence: 41 + i,
      }));
    expect(unknownLine(unknown(1))).toBe(
      '1 tick of unknown fate, on the bus or not: sequence 41 (TimeoutError)',
    );
    expect(unknownLine(unknown(2))).toBe(
      '2 ticks of unknown fate, on the bus or not: sequences 41 (TimeoutError), 42 (TimeoutError)',
    );
    const many = unknownLine(unknown(23));
    expect(many).toMatch(/^23 ticks of unknown fate, on the bus or not: sequences 41 \(TimeoutError\), /);
    expect(many).toMatch(/, 60 \(TimeoutError\), \.\.\. 3 more$/);
    expect(many).not.toContain('61 (');
    expect(unknownLine(unknown(20))).toMatch(/, 60 \(TimeoutError\)$/);
  });

  // cli50-replay-unknown-fate: what to do about a replay's ticks of unknown fate, as inject says it of its own.
  it("says how to find out and resend a replay's last tick of unknown fate, and why the earlier ones are past it", () => {
    const target = { kind: 'aws', stage: 'prod', region: 'eu-west-1' } as const;
    const tick = (sequence: number, index: number) => ({
      index,
      code: 'NoResult',
      message: 'no result for the entry',
      attempts: 5,
      sequence,
    });
    const price = (index: number) => [parsePrice('150'), parsePrice('151.5')][index];
    const flags = '--target aws --stage prod --region eu-west-1';
    // A file of four ticks (prices for the first two here).
    const fates = (unknown: ReturnType<typeof tick>[], lastMaybeOnBus: number, lastTaken?: number) => ({
      unknown,
      total: 4,
      lastMaybeOnBus,
      ...(lastTaken === undefined ? {} : { lastTaken }),
    });
    expect(
      replayUnknownFateLine('ETH-USD', fates([tick(42, 1)], 42), price, target, ' --source feed-a'),
    ).toBe(
      'replay/unknown-fate: ETH-USD: 1 tick of unknown fate, on the bus or not: sequence 42 (NoResult). ' +
        `\`backstop status ${flags}\` shows ETH-USD's last sequence and any print its breaker holds: 42 there is this ` +
        `tick, on the bus; sending it again (\`backstop inject tick --symbol ETH-USD --price 151.5 --sequence 42 --source ` +
        `feed-a ${flags}\`) is safe (margin-check takes a sequence once)`,
    );
    expect(replayUnknownFateLine('ETH-USD', fates([tick(41, 0), tick(42, 1)], 42), price, target)).toMatch(
      /--sequence 42 --target aws .*\(margin-check takes a sequence once\); the other was followed by later ticks of the replay: once the market takes one, a tick sent again behind it is never taken \(refused as out of order, or held as tick\/sequence-behind when stamped more than maxClockSkewSeconds after the market's last print, as one sent again now may be: harmless, but it pages FeedNumberingAlarm\), so it is, if not on the bus, prices of the file the market did not see$/,
    );
    // venue50-resend-behind: what the line says of a tick sent again behind the market's last is margin-check's verdict.
    const market = marketConfig(DEFAULT_RISK_CONFIG, 'ETH-USD');
    const lastAt = 1_767_225_600_000;
    const state = { lastTick: { sequence: 43, markPrice: parsePrice('151'), timestampMs: lastAt } };
    const again = (stampedAt: number, nowMs: number) =>
      evaluateTick(
        {
          symbol: 'ETH-USD',
          markPrice: parsePrice('150'),
          timestampMs: stampedAt,
          sequence: 41,
          source: 'replay',
        },
        state,
        market,
        nowMs,
      );
    const skewMs = market.maxClockSkewSeconds * 1000;
    expect(again(lastAt - 1_000, lastAt + 60_000)).toMatchObject({
      verdict: 'reject',
      reason: 'tick/out-of-order',
    });
    expect(again(lastAt + skewMs, lastAt + skewMs)).toMatchObject({ reason: 'tick/out-of-order' });
    // Sent again a minute on, stamped then (inject's stamp is now).
    expect(again(lastAt + 60_000, lastAt + 60_000)).toMatchObject({
      verdict: 'reject',
      reason: 'tick/sequence-behind',
      holdJump: true,
    });
    const past = replayUnknownFateLine('ETH-USD', fates([tick(40, 0), tick(41, 1)], 43, 43), price, target);
    expect(past).toMatch(/sequences 40 \(NoResult\), 41 \(NoResult\)\. They were followed by later ticks/);
    expect(past).not.toContain('inject tick');
    // review50-venue-resend-several: two of them sent again in order, the second breakerConfirmSeconds after the
    // first, once the market's mark is stale (no feed after the replay), move the market back onto their numbering,
    // and the second is judged as a mark: taken, an old price of the file. The line says so of two or more, not harmless.
    expect(past).toContain(
      'once the market takes one, each sent again behind it is refused as out of order or held as tick/sequence-behind (paging FeedNumberingAlarm), but two or more in order on a stale mark, breakerConfirmSeconds apart, move the market back onto their numbering, an old price taken as its mark: never send them again. They are, if not on the bus, prices of the file the market did not see',
    );
    expect(past).not.toContain('harmless');
    const staleMs = lastAt + market.maxMarkAgeSeconds * 1000 + 60_000;
    const resent = (sequence: number, nowMs: number, on: Parameters<typeof evaluateTick>[1]) =>
      evaluateTick(
        { symbol: 'ETH-USD', markPrice: parsePrice('150'), timestampMs: nowMs, sequence, source: 'replay' },
        on,
        market,
        nowMs,
      );
    expect(resent(40, staleMs, state)).toMatchObject({ reason: 'tick/sequence-behind', holdJump: true });
    const holding = {
      ...state,
      heldJump: {
        tick: { sequence: 40, markPrice: parsePrice('150'), timestampMs: staleMs },
        heldAtMs: staleMs,
      },
    };
    const nextAt = staleMs + market.breakerConfirmSeconds * 1000;
    const moved = resent(41, nextAt, holding);
    expect(moved).toMatchObject({ reason: 'tick/sequence-behind', rebase: { sequence: 40 } });
    if (moved.verdict !== 'reject' || !moved.rebase) throw new Error('no rebase');
    expect(resent(41, nextAt, rebasedTickState(holding, moved.rebase))).toMatchObject({ verdict: 'accept' });
    // One alone is held and goes nowhere: the line keeps its word for it.
    expect(
      replayUnknownFateLine('ETH-USD', fates([tick(41, 0), tick(42, 1)], 42), price, target),
    ).not.toContain('two or more');
    // cli50b-held-unknown-fate: held ticks (a file of one tick, 40) of unknown fate, none taken after them: the earlier
    // one's price is the last one's, in its resend.
    const held = { unknown: [tick(41, 1), tick(42, 2)], total: 1, lastMaybeOnBus: 42, lastTaken: 40 };
    expect(replayUnknownFateLine('ETH-USD', held, () => parsePrice('150'), target)).toMatch(
      /--sequence 42 --target aws .*\(margin-check takes a sequence once\); sequence 41 sent the file's last price, which sending 42 again sends: past resending, later ticks following it$/,
    );
    // review50-cli2-held-claim: two held ticks the bus took a later one after, said of both, no more than the bus told.
    const repeated = { unknown: [tick(41, 1), tick(42, 2)], total: 1, lastMaybeOnBus: 43, lastTaken: 43 };
    expect(replayUnknownFateLine('ETH-USD', repeated, () => parsePrice('150'), target)).toMatch(
      /\(NoResult\)\. Sequences 41, 42 sent the file's last price, which the bus took after them in held tick 43: nothing to resend, they are behind 43; if not on the bus, they left the market without that print until 43, and the bus taking 43 is not margin-check taking it \(`backstop status --target aws --stage prod --region eu-west-1` shows ETH-USD's last sequence\)$/,
    );
    // final50b-unknown-fate-sequences-bounded: each group named by at most 20 sequences, as unknownLine names them (a
    // file of 1,000 ticks whose 500 from 101 and 300 held ticks after it were of unknown fate, a later held tick taken).
    const flaky = {
      unknown: [
        ...Array.from({ length: 500 }, (_, i) => tick(101 + i, 100 + i)),
        ...Array.from({ length: 300 }, (_, i) => tick(1001 + i, 1000 + i)),
      ],
      total: 1000,
      lastMaybeOnBus: 1400,
      lastTaken: 1400,
    };
    const bounded = replayUnknownFateLine('ETH-USD', flaky, () => parsePrice('150'), target);
    expect(bounded).toContain('Sequences 1001, 1002, ');
    expect(bounded).toContain(', 1020, ... 280 more sent the file');
    expect(bounded).toContain('; sequences 101, 102, ');
    expect(bounded).toContain(', 120, ... 480 more were followed by later ticks');
    expect(bounded).not.toContain('1021');
    expect(bounded).not.toContain('121,');
    expect(bounded.length).toBeLessThan(1500);
  });

  it("says a period closed by time and why, an empty journal's opening, and a statement the index's lag holds back", async () => {
    const ledger = new EmbeddedLedger();
    for (const [key, atMs] of [
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ] as const)
      await ledger.apply({
        account: INSURANCE_ACCOUNT,
        idempotencyKey: key,
        amount: usd('1'),
        kind: 'deposit',
        reference: key,
        atMs,
        floor: 0n,
      });
    const quiet = { pause: async () => {} };
    const closed = await readFundStatement(
      ledger,
      INSURANCE_ACCOUNT,
      { from: undefined, to: { atMs: 10 } },
      { ...quiet, nowMs: () => 10 + SETTLED_AFTER_MS },
    );
    const text = renderStatement(closed, 'USD', aws);
    expect(text.split('\n')[1]).toBe(
      "period     entries 1 to 3 (3 entries): from the journal's first entry up to, not including, the first stamped at or after 1970-01-01T00:00:00.010Z, closed (its end passed 10 minutes and more before the fund's balance was read, at entry 3, the last read: nothing stamped before it can still commit); the next statement goes on from entry 4 (--from-sequence 4)",
    );
    expect(text).not.toContain('open:');
    const empty = await readFundStatement(
      new EmbeddedLedger(),
      INSURANCE_ACCOUNT,
      { from: { sequence: 5 }, to: undefined },
      quiet,
    );
    expect(renderStatement(empty, 'USD', aws)).toContain(
      'opening balance                0.00  (the journal holds no entry: the fund holds 0)\n',
    );
    ledger.lagJournalIndex(INSURANCE_ACCOUNT, [2], Number.POSITIVE_INFINITY);
    const lagging = await readFundStatement(
      ledger,
      INSURANCE_ACCOUNT,
      { from: undefined, to: undefined },
      quiet,
    );
    expect(renderStatement(lagging, 'USD', aws)).toContain(
      'INDEX LAGGING, DOES NOT RECONCILE YET: opening + movements = 2.00, closing 3.00 (difference +1.00); 1 break\n  index lagging: entry 2 missing between entry 1 and entry 3',
    );
  });

  // more48c-statement-closed-breaks: a period ended by time that lists a break said `closed` (and where to go on).
  it('says a period ended with a break not closed, and why, in the text and --json', async () => {
    const ledger = new EmbeddedLedger();
    for (const [key, atMs] of [
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ] as const)
      await ledger.apply({
        account: INSURANCE_ACCOUNT,
        idempotencyKey: key,
        amount: usd('1'),
        kind: 'deposit',
        reference: key,
        atMs,
        floor: 0n,
      });
    ledger.lagJournalIndex(INSURANCE_ACCOUNT, [2], Number.POSITIVE_INFINITY);
    const read = await readFundStatement(
      ledger,
      INSURANCE_ACCOUNT,
      { from: undefined, to: { atMs: 10 } },
      { pause: async () => {}, nowMs: () => 10 + SETTLED_AFTER_MS },
    );
    const text = renderStatement(read, 'USD', aws);
    expect(text.split('\n')[1]).toBe(
      "period     entries 1 to 3 (2 entries): from the journal's first entry up to, not including, the first stamped at or after 1970-01-01T00:00:00.010Z, not closed: it does not reconcile (below), and an entry missing may be of this period: not final, a run once the breaks are resolved may differ",
    );
    expect(text).not.toContain('open:');
    expect(text).not.toContain('--from-sequence');
    expect(statementJson(read, 'USD').period).toMatchObject({
      closed: false,
      openBecause: 'breaks',
      continueFrom: null,
    });
  });

  // final47-plurals: "1 liquidations are not terminal and no message is left to move them".
  it('ends on work no message moves, said for one as for several', async () => {
    const one = looksAt([work(1, 1), work(1, 1)]);
    expect([await one.looks.pending(), await one.looks.pending()]).toEqual([true, false]);
    expect(one.looks.ended()).toBe(
      'hold ended: 1 liquidation is not terminal and no message is left to move it (none seen by 2 looks over 0 s): no dead letter holds it (a purged queue, an expired dead letter): backstop liquidations overdue --all --resend --config risk.json --target aws --stage prod --region eu-west-1 sends each a message',
    );
    const two = looksAt([work(1, 2), work(1, 2)]);
    await two.looks.pending();
    await two.looks.pending();
    expect(two.looks.ended()).toMatch(
      /^hold ended: 2 liquidations are not terminal and no message is left to move them \(none seen by 2 looks over 0 s\): no dead letter holds them /,
    );
  });
});

describe('replay pacing', () => {
  it.each([
    ['max', { kind: 'max' }],
    ['60x', { kind: 'factor', factor: 60 }],
    ['1x', { kind: 'factor', factor: 1 }],
    ['0.5x', { kind: 'factor', factor: 0.5 }],
    ['1000000x', { kind: 'factor', factor: 1_000_000 }],
  ])('accepts %s', (text, speed) => {
    expect(parseSpeed(text)).toEqual(speed);
  });
  it.each(['0x', 'x', '60', 'fast', '1000001x', '-2x', '1e3x'])('refuses %s', (text) => {
    expect(() => parseSpeed(text)).toThrow(TickInputError);
  });

  it("caps a batch at the replay's backlog limit (a larger one could never be sent)", () => {
    const max = replayBatches(dueOffsets(points(7), { kind: 'max' }), 5, 2);
    expect(max.map((b) => [b.start, b.end])).toEqual([
      [0, 2],
      [2, 4],
      [4, 6],
      [6, 7],
    ]);
    expect(replayBatches(dueOffsets(points(7), { kind: 'max' }), 5, 50)).toHaveLength(1);
  });

  it('sends max speed in batches of 10 and a paced 1-minute file one tick per due time', () => {
    const max = replayBatches(dueOffsets(points(287), { kind: 'max' }));
    expect(max).toHaveLength(29);
    expect(max.at(-1)).toEqual({ start: 280, end: 287, dueMs: 0 });
    const paced = replayBatches(dueOffsets(points(5), { kind: 'factor', factor: 60 }), 5);
    expect(paced.map((b) => [b.start, b.end, b.dueMs])).toEqual([
      [0, 1, 0],
      [1, 2, 1000],
      [2, 3, 2000],
      [3, 4, 3000],
      [4, 5, 4000],
    ]);
  });

  it.each([
    [
      'under the window',
      [0, 4, 9],
      [
        [0, 2],
        [2, 3],
      ],
    ],
    [
      'at the window',
      [0, 5, 9],
      [
        [0, 2],
        [2, 3],
      ],
    ],
    [
      'over the window',
      [0, 6, 9],
      [
        [0, 1],
        [1, 3],
      ],
    ],
  ])('groups ticks due within 5 ms: %s', (_name, offsets, expected) => {
    expect(replayBatches(offsets as number[], 5).map((b) => [b.start, b.end])).toEqual(expected);
  });

  // final50b-replay-pace-clock: the pacing and the stall's 60 s were durations read off the machine's wall clock.
  describe('times its pacing and its stall by a clock no step of the machine moves', () => {
    /** A bus that takes every tick, and the machine's wall clock, stepped by `stepMs` at `step()`. */
    function steppedRun(stepMs: number, stepOnPut: boolean) {
      const realNow = Date.now.bind(Date);
      let offsetMs = 0;
      const spy = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + offsetMs);
      const step = () => {
        offsetMs = stepMs;
      };
      const events = {
        send: async (command: { input: PutEventsCommandInput }) => {
          if (stepOnPut) step();
          return {
            FailedEntryCount: 0,
            Entries: (command.input.Entries ?? []).map((entry) => {
              const { sequence } = JSON.parse(entry.Detail!) as { sequence: number };
              return { EventId: `e${sequence}` };
            }),
          };
        },
      } as unknown as EventBridgeClient;
      const sleeps: number[] = [];
      return {
        spy,
        events,
        step,
        sleeps,
        sleep: async (ms: number) => {
          sleeps.push(ms);
        },
      };
    }

    it('a step back of an hour does not hold the next tick an hour', async () => {
      const run = steppedRun(-3_600_000, true);
      try {
        const outcome = await replayPrices({
          points: points(3),
          symbol: 'ETH-USD',
          busName: 'bus',
          events: run.events,
          speed: { kind: 'factor', factor: 60 },
          firstSequence: 1,
          sleep: run.sleep,
        });
        expect(outcome).toMatchObject({ total: 3, sent: 3, accepted: 3 });
        // Due 1 s and 2 s after the first at 60x (the fake sleeps move no clock): before, the second tick waited the
        // hour the clock went back too.
        expect(run.sleeps).toHaveLength(2);
        expect(run.sleeps[0]).toBeLessThanOrEqual(1000);
        expect(run.sleeps[1]).toBeLessThanOrEqual(2000);
      } finally {
        run.spy.mockRestore();
      }
    });

    it('a step forward of two minutes is no stall: the stack handles the ticks at its next looks', async () => {
      const run = steppedRun(120_000, false);
      let looks = 0;
      try {
        const outcome = await replayPrices({
          points: points(3),
          symbol: 'ETH-USD',
          busName: 'bus',
          events: run.events,
          speed: { kind: 'max' },
          firstSequence: 1,
          sleep: run.sleep,
          backlog: {
            limit: 1,
            stallMs: 60_000,
            pollMs: 250,
            handled: async () => {
              looks += 1;
              // The clock steps between the first two looks; each tick is handled at every third look.
              if (looks === 2) run.step();
              return { upTo: looks >= 3 ? Math.floor(looks / 3) : undefined, notTaken: [] };
            },
          },
        });
        // Before: `replay/stalled: ETH-USD handled no tick for 60 s`, the clock's two minutes taken for the stack's.
        expect(outcome.stalled).toBeUndefined();
        expect(outcome).toMatchObject({ total: 3, sent: 3, accepted: 3 });
      } finally {
        run.spy.mockRestore();
      }
    });
  });

  it('covers every point exactly once, in order, at most 10 per batch (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(10_000), { maxLength: 200 }), fc.nat(50), (raw, window) => {
        const offsets = [...raw].sort((a, b) => a - b);
        const batches = replayBatches(offsets, window);
        let next = 0;
        for (const b of batches) {
          expect(b.start).toBe(next);
          expect(b.end - b.start).toBeGreaterThanOrEqual(1);
          expect(b.end - b.start).toBeLessThanOrEqual(10);
          next = b.end;
        }
        expect(next).toBe(offsets.length);
      }),
      { numRuns: 300 },
    );
  });
});

/**
 * replayPrices on moto's EventBridge: real PutEvents on a stage's bus, read back from the queue its rule delivers
 * to. Time goes through replayPrices' `now`/`sleep` seam: the delays it asks for are recorded, never waited.
 */
describe('replay to the bus (moto)', () => {
  const emulator = useOperatorEmulator('replay');

  interface Arrived {
    readonly eventId: string;
    readonly sequence: number;
    readonly timestamp: number;
    readonly markPrice: string;
  }

  /** Takes `count` tick events off a tick queue (long polls: a receive may return fewer than asked). */
  async function takeTicks(queueUrl: string, count: number): Promise<Arrived[]> {
    const { sqs } = emulator.clients;
    const taken: Arrived[] = [];
    while (taken.length < count) {
      const out = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: Math.min(10, count - taken.length),
          WaitTimeSeconds: 5,
          VisibilityTimeout: 600,
        }),
      );
      if (!out.Messages?.length) throw new Error(`only ${taken.length} of ${count} ticks on the queue`);
      for (const m of out.Messages) {
        // The rule delivers the whole EventBridge event; replayPrices' details have number timestamps.
        const event = JSON.parse(m.Body!) as Record<string, unknown> & {
          id: string;
          detail: Omit<PriceTickDetail, 'timestamp'> & { timestamp: number };
        };
        expect(event).toMatchObject({ source: TICK_BUS.source, 'detail-type': TICK_BUS.detailType });
        const { sequence, timestamp, markPrice } = event.detail;
        taken.push({ eventId: event.id, sequence, timestamp, markPrice });
        await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle }));
      }
    }
    return taken;
  }

  /** Every tick still on the queue (moto puts an event's messages on the queue before PutEvents returns). */
  async function remainingTicks(queueUrl: string): Promise<Arrived[]> {
    const { Attributes } = await emulator.clients.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: queueUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    expect(Attributes?.ApproximateNumberOfMessagesNotVisible).toBe('0');
    return takeTicks(queueUrl, Number(Attributes?.ApproximateNumberOfMessages));
  }

  const sequencesOf = (ticks: readonly Arrived[]) => ticks.map((t) => t.sequence).sort((a, b) => a - b);
  const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

  /** A fake clock that only `sleep` moves, and the delays asked of it. */
  function fakeTime(start: number) {
    const time = { clock: start, sleeps: [] as number[] };
    return {
      time,
      now: () => time.clock,
      sleep: async (ms: number) => {
        time.sleeps.push(ms);
        time.clock += ms;
      },
    };
  }

  /** A replay of ETH-USD at max speed onto `busName` (the emulator's bus), with the options a test sets. */
  const replayAtMax = (
    busName: string,
    options: Pick<ReplayOptions, 'points'> & Partial<Omit<ReplayOptions, 'busName'>>,
  ) =>
    replayPrices({
      symbol: 'ETH-USD',
      busName,
      events: emulator.clients.events,
      speed: { kind: 'max' },
      firstSequence: 1,
      ...options,
    });

  /**
   * A stack that handles up to `perPoll` ticks whenever the replay asks how far it got, taking them off the tick
   * queue: the replay can only get ahead of what really left the bus. Handled: the ticks taken, in order from
   * the first sequence (margin-check handles a market's ticks one after another).
   */
  function stackHandling(queueUrl: string, perPoll: number, firstSequence: number) {
    const stack = { sent: 0, taken: [] as Arrived[] };
    return {
      stack,
      unhandled: () => stack.sent - stack.taken.length,
      handled: async (): Promise<HandledTicks> => {
        const n = Math.min(perPoll, stack.sent - stack.taken.length);
        if (n > 0) stack.taken.push(...(await takeTicks(queueUrl, n)));
        return {
          upTo: stack.taken.length === 0 ? undefined : firstSequence - 1 + stack.taken.length,
          notTaken: [],
        };
      },
    };
  }

  /**
   * Makes the bus refuse the first entry of the `call`-th PutEvents: it goes out with a Detail that is not JSON,
   * which EventBridge refuses entry by entry (moto cannot throttle one entry; the refusal is the emulator's own).
   */
  function refuseFirstEntryOf(events: EventBridgeClient, call: number): void {
    let calls = 0;
    type Args = { input: PutEventsCommandInput };
    const middleware =
      (next: (args: Args) => Promise<unknown>, context: { commandName?: string }) => async (args: Args) => {
        if (context.commandName !== 'PutEventsCommand' || ++calls !== call) return next(args);
        const [first, ...rest] = args.input.Entries ?? [];
        return next({
          ...args,
          input: { ...args.input, Entries: [{ ...first, Detail: '{not json' }, ...rest] },
        });
      };
    events.middlewareStack.add(middleware as never, { step: 'initialize', name: 'refuseFirstEntry' });
  }

  it('stamps ticks with the send time, numbers them in order and reports refused entries', async () => {
    const { names } = await emulator.newStage('paced');
    const clients = createAwsClients(localClientConfig(emulator.moto.endpoint));
    refuseFirstEntryOf(clients.events, 2);
    const time = fakeTime(1_000_000);
    try {
      const outcome = await replayPrices({
        points: points(3),
        symbol: 'ETH-USD',
        busName: names.busName,
        events: clients.events,
        speed: { kind: 'factor', factor: 60 },
        firstSequence: 41,
        now: time.now,
        sleep: time.sleep,
      });
      // A minute of the file per second at 60x: each next tick is due a second after the one before.
      expect(time.time.sleeps).toEqual([1000, 1000]);
      expect(outcome).toMatchObject({ total: 3, sent: 3, accepted: 2, firstSequence: 41, lastSequence: 43 });
      expect(outcome.rejected).toEqual([
        // Refused for good: not sent again.
        {
          index: 1,
          sequence: 42,
          code: 'MalformedDetail',
          message: 'Detail is malformed.',
          attempts: 1,
          retryable: false,
          scope: 'entry',
        },
      ]);
      // What the bus's rule delivered: the accepted ticks, stamped when they were sent; the refused one never.
      const arrived = await remainingTicks(names.tickQueueUrl);
      expect(
        arrived.sort((a, b) => a.sequence - b.sequence).map((t) => [t.sequence, t.timestamp, t.markPrice]),
      ).toEqual([
        [41, 1_000_000, '130'],
        [43, 1_002_000, '129.8'],
      ]);
      expect(arrived.map((t) => t.eventId).sort()).toEqual([...outcome.eventIds].sort());
    } finally {
      clients.destroy();
    }
  });

  it('sends a tick the bus throttled again, the same entry, instead of reporting it refused (feed46-cli-retries)', async () => {
    const { names } = await emulator.newStage('throttled');
    const clients = createAwsClients(localClientConfig(emulator.moto.endpoint));
    // The second PutEvents (sequence 12) is answered ThrottlingException, without putting it (as EventBridge does).
    const sent: string[][] = [];
    type Args = { input: PutEventsCommandInput };
    type Out = { output: { Entries?: { EventId?: string; ErrorCode?: string }[] } };
    const middleware =
      (next: (args: Args) => Promise<Out>, context: { commandName?: string }) => async (args: Args) => {
        if (context.commandName !== 'PutEventsCommand') return next(args);
        const entries = args.input.Entries ?? [];
        sent.push(entries.map((e) => e.Detail ?? ''));
        if (sent.length !== 2) return next(args);
        return {
          output: { $metadata: {}, FailedEntryCount: 1, Entries: [{ ErrorCode: 'ThrottlingException' }] },
        };
      };
    clients.events.middlewareStack.add(middleware as never, { step: 'initialize', name: 'throttleSecond' });
    const time = fakeTime(2_000_000);
    try {
      const outcome = await replayPrices({
        points: points(3),
        symbol: 'ETH-USD',
        busName: names.busName,
        events: clients.events,
        speed: { kind: 'max' },
        firstSequence: 11,
        now: time.now,
        sleep: time.sleep,
      });
      // Before: { accepted: 2, rejected: [sequence 12, ThrottlingException] }, a gap in what the market saw.
      expect(outcome).toMatchObject({ total: 3, sent: 3, accepted: 3, rejected: [] });
      // Sent again before the next tick, alone in its call (review46-replay-order: sent again after 13, put with it
      // in one call, it landed after it on AWS and was refused as out of order).
      const sequenceOf = (detail: string) => (JSON.parse(detail) as { sequence: number }).sequence;
      expect(sent.map((call) => call.map(sequenceOf))).toEqual([[11], [12], [12], [13]]);
      expect(sent[2]).toEqual(sent[1]);
      // One retry's wait, within the publisher's first delay.
      expect(time.time.sleeps).toHaveLength(1);
      expect(time.time.sleeps[0]).toBeLessThanOrEqual(100);
      expect(sequencesOf(await remainingTicks(names.tickQueueUrl))).toEqual([11, 12, 13]);
    } finally {
      clients.destroy();
    }
  });

  it('holds the last price after the file, stamped when sent and numbered on, while work is pending', async () => {
    const { names } = await emulator.newStage('hold');
    const time = fakeTime(5_000_000);
    const pendingAnswers = [true, true, false];
    const onSent: number[] = [];
    const outcome = await replayAtMax(names.busName, {
      points: points(2),
      firstSequence: 7,
      now: time.now,
      sleep: time.sleep,
      hold: { everyMs: 2500, pending: async () => pendingAnswers.shift()!, onSent: (s) => onSent.push(s) },
    });
    expect(outcome).toMatchObject({
      total: 2,
      sent: 2,
      held: 2,
      accepted: 4,
      firstSequence: 7,
      lastSequence: 10,
    });
    expect(pendingAnswers).toEqual([]);
    expect(onSent).toEqual([9, 10]);
    // Waits in steps of a second (Ctrl-C ends a hold at once).
    expect(time.time.sleeps).toEqual([1000, 1000, 500, 1000, 1000, 500, 1000, 1000, 500]);
    const arrived = await remainingTicks(names.tickQueueUrl);
    expect(
      arrived.sort((a, b) => a.sequence - b.sequence).map((t) => [t.sequence, t.timestamp, t.markPrice]),
    ).toEqual([
      [7, 5_000_000, '130'],
      [8, 5_000_000, '129.9'],
      [9, 5_002_500, '129.9'],
      [10, 5_005_000, '129.9'],
    ]);
  });

  it('does not hold after a replay stopped early (Ctrl-C)', async () => {
    const { names } = await emulator.newStage('hold-abort');
    const abort = new AbortController();
    let asked = 0;
    const outcome = await replayAtMax(names.busName, {
      points: points(3),
      onProgress: () => abort.abort(),
      signal: abort.signal,
      hold: {
        everyMs: 1000,
        pending: async () => {
          asked += 1;
          return true;
        },
      },
    });
    expect(outcome.held).toBe(0);
    expect(asked).toBe(0);
  });

  it('keeps at most `limit` ticks ahead of what the stack has handled (a slow stack would refuse them as too old)', async () => {
    const { names } = await emulator.newStage('ahead');
    const time = fakeTime(0);
    const { stack, unhandled, handled } = stackHandling(names.tickQueueUrl, 3, 1);
    const behindAtSend: number[] = [];
    const outcome = await replayAtMax(names.busName, {
      points: points(45),
      now: time.now,
      sleep: time.sleep,
      // Called as each batch is on the bus: what is unhandled once it is.
      onProgress: (sent) => {
        stack.sent = sent;
        behindAtSend.push(unhandled());
      },
      backlog: { limit: 10, handled, stallMs: 60_000, pollMs: 250 },
    });
    expect(outcome).toMatchObject({ total: 45, sent: 45, accepted: 45, rejected: [] });
    expect(outcome.stalled).toBeUndefined();
    // A tick a call (review46-replay-order).
    expect(behindAtSend).toHaveLength(45);
    for (const behind of behindAtSend) expect(behind).toBeLessThanOrEqual(10);
    // Max speed: the only waits are the backlog's polls.
    for (const ms of time.time.sleeps) expect(ms).toBe(250);
    // Every tick reached the bus's queue once.
    expect(sequencesOf([...stack.taken, ...(await remainingTicks(names.tickQueueUrl))])).toEqual(
      range(1, 45),
    );
  });

  it('never has more than `limit` ticks sent and not handled (docs: "at most 20")', async () => {
    const { names } = await emulator.newStage('limit');
    const time = fakeTime(0);
    // The stack handles one tick per poll.
    const { stack, unhandled, handled } = stackHandling(names.tickQueueUrl, 1, 1);
    let maxUnhandled = 0;
    const outcome = await replayAtMax(names.busName, {
      points: points(100),
      now: time.now,
      sleep: time.sleep,
      onProgress: (sent) => {
        stack.sent = sent;
        maxUnhandled = Math.max(maxUnhandled, unhandled());
      },
      backlog: { limit: 20, handled, stallMs: 60_000, pollMs: 250 },
    });
    expect(outcome).toMatchObject({ total: 100, sent: 100, accepted: 100 });
    // Before: a batch of 10 went whenever fewer than 20 were unhandled, up to 29 at once.
    expect(maxUnhandled).toBeLessThanOrEqual(20);
    expect(sequencesOf([...stack.taken, ...(await remainingTicks(names.tickQueueUrl))])).toEqual(
      range(1, 100),
    );
  });

  it('stops with the reason when the stack handles nothing for stallMs', async () => {
    const { names } = await emulator.newStage('stall');
    const time = fakeTime(0);
    const outcome = await replayAtMax(names.busName, {
      points: points(25),
      firstSequence: 7,
      now: time.now,
      sleep: time.sleep,
      backlog: {
        limit: 10,
        handled: async () => ({ upTo: undefined, notTaken: [] }),
        stallMs: 60_000,
        pollMs: 250,
      },
    });
    expect(outcome).toMatchObject({ sent: 10, lastSequence: 16 });
    expect(outcome.stalled).toMatch(
      /^replay\/stalled: ETH-USD handled no tick for 60 s \(last handled none, sent up to 16\)/,
    );
    expect(time.time.clock).toBe(60_000);
    expect(sequencesOf(await remainingTicks(names.tickQueueUrl))).toEqual(range(7, 16));
  });

  it('does not wait on a tick the bus refused: a batch ending with one goes on, the refusal reported (seq43-refused-backlog)', async () => {
    const time = fakeTime(0);
    // A bus that throttles sequence 10 every time; the stack handles every tick the bus took at once.
    let handledUpTo: number | undefined;
    const events = {
      send: async (command: { input: PutEventsCommandInput }) => ({
        FailedEntryCount: 0,
        Entries: (command.input.Entries ?? []).map((entry) => {
          const { sequence } = JSON.parse(entry.Detail!) as { sequence: number };
          if (sequence === 10) return { ErrorCode: 'ThrottlingException', ErrorMessage: 'Rate exceeded' };
          handledUpTo = Math.max(handledUpTo ?? 0, sequence);
          return { EventId: `e${sequence}` };
        }),
      }),
    } as unknown as EventBridgeClient;
    const outcome = await replayAtMax('bus', {
      points: points(20),
      events,
      now: time.now,
      sleep: time.sleep,
      backlog: {
        limit: 10,
        handled: async () => ({ upTo: handledUpTo, notTaken: [] }),
        stallMs: 60_000,
        pollMs: 250,
      },
    });
    // Before: 10 counted as unhandled, so the next ticks waited 60 s and the replay stopped as stalled.
    expect(outcome.stalled).toBeUndefined();
    expect(outcome).toMatchObject({ total: 20, sent: 20, accepted: 19, lastSequence: 20 });
    // Throttled on every attempt: given up after the publisher's retries (their waits the only sleeps).
    expect(outcome.rejected).toEqual([
      {
        index: 9,
        sequence: 10,
        code: 'ThrottlingException',
        message: 'Rate exceeded',
        attempts: 5,
        retryable: true,
        scope: 'entry',
      },
    ]);
    expect(time.time.sleeps).toHaveLength(4);
  });

  it('stops at once when aborted and says how far it got', async () => {
    const { names } = await emulator.newStage('abort');
    const time = fakeTime(0);
    const abort = new AbortController();
    const outcome = await replayAtMax(names.busName, {
      points: points(25),
      now: time.now,
      sleep: time.sleep,
      // Ctrl-C once the first tick is on the bus.
      onProgress: () => abort.abort(),
      signal: abort.signal,
    });
    expect(outcome).toMatchObject({ total: 25, sent: 1, accepted: 1, lastSequence: 1 });
    expect(time.time.sleeps).toEqual([]);
    expect(sequencesOf(await remainingTicks(names.tickQueueUrl))).toEqual([1]);
  });
});

describe('ticks', () => {
  it('refuses a detail margin-check would refuse, with the reason', () => {
    expect(() =>
      tickDetail({ symbol: 'ETH USD', markPrice: '1', timestampMs: 0, sequence: 1, source: 't' }),
    ).toThrow(/tick\/malformed: symbol/);
    expect(() =>
      tickDetail({ symbol: 'ETH-USD', markPrice: ' 1', timestampMs: 0, sequence: 1, source: 't' }),
    ).toThrow(/markPrice/);
    const detail = tickDetail({
      symbol: 'ETH-USD',
      markPrice: '1520.5',
      indexPrice: '1520',
      timestampMs: 5,
      sequence: 9,
      source: 't',
    });
    expect(parseTickDetail(detail).ok).toBe(true);
  });

  const market = (state: Partial<MarketState> | undefined): MarketRepository =>
    ({
      get: async () => (state ? { symbol: 'ETH-USD', ...state } : undefined),
    }) as unknown as MarketRepository;
  const tick = (sequence: number) => ({ sequence, markPrice: 1n, timestampMs: 0 });
  it.each([
    ['a new market starts at epoch ms', undefined, 1_700_000_000_000],
    ['after the last accepted tick', { lastTick: tick(5) }, 6],
    [
      'after a breaker tick beyond it',
      { lastTick: tick(5), breaker: { reason: 'x', trippedAtMs: 0, tick: tick(9) } },
      10,
    ],
    ['after a pending tick', { lastTick: tick(5), pendingSequence: 7 }, 8],
    // follow47-next-after-confirming: before, 10, a sequence a replay counts handled at once (handledOnRecord).
    [
      'after the print the breaker refused last while confirming',
      {
        lastTick: tick(5),
        breaker: { reason: 'x', trippedAtMs: 0, tick: tick(9), confirming: { sequence: 12, atMs: 0 } },
      },
      13,
    ],
  ])('next sequence: %s', async (_name, state, expected) => {
    expect(await nextSequence(market(state), 'ETH-USD', 1_700_000_000_000)).toBe(expected);
  });

  it("README's examples/tick.json recipe numbers the tick by the market's nextSequence, not the clock (feed46-readme-sequence)", () => {
    const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    const recipe = readme.split('\n').find((line) => line.includes('examples/tick.json > /tmp/tick.json'));
    // Before: `--argjson seq "$(date +%s%3N)"`, a jump past maxSequenceJump on any market numbered otherwise (a feed
    // counting from 1, a stage a replay numbered more than 1,000,000 ms ago): held as tick/sequence-jump and paged.
    // A market with no tick yet is absent from status without --config: null would be put as the sequence and refused
    // as tick/malformed, unseen by PutEvents; the clock in ms then, as inject numbers it (final46-readme-first-tick).
    expect(recipe).toContain(`jq '.markets["ETH-USD"].nextSequence // (now * 1000 | floor)'`);
    expect(recipe).toContain('--argjson seq "$seq"');
    expect(recipe).not.toMatch(/date \+%s/);
    // Stamped in epoch ms by jq (portable): `date -u +%FT%TZ` stamped whole seconds, so a tick put within the second
    // after an `inject` (stamped in ms) was older than it, refused as tick/out-of-order and paged.
    expect(recipe).toContain('.timestamp=(now * 1000 | floor)');
    expect(recipe).not.toContain('date -u');
    // The field it reads is status's own (the moto test of status shows it past a breaker's tick).
    const field: keyof StatusReport['markets'][string] = 'nextSequence';
    expect(recipe).toContain(field);
  });

  it('examples/tick.json is a ready PutEvents entries file for the dev stack', () => {
    const entries = JSON.parse(readFileSync(path.join(repoRoot, 'examples', 'tick.json'), 'utf8'));
    expect(entries).toHaveLength(1);
    const [entry] = entries;
    expect(entry).toMatchObject({
      EventBusName: physicalName(DEFAULT_DEPLOYED_STAGE, TICK_BUS.name),
      Source: TICK_BUS.source,
      DetailType: TICK_BUS.detailType,
    });
    expect(parseTickDetail(JSON.parse(entry.Detail))).toMatchObject({
      ok: true,
      tick: { symbol: 'ETH-USD' },
    });
  });
});

describe('seed files', () => {
  const header = 'id,traderId,symbol,side,size,entryPrice,collateral';
  it('reads CSV rows (any column order, traderId optional) and JSON arrays', () => {
    const csv = positionsFromFile(
      `symbol,id,side,size,entryPrice,collateral\nETH-USD,a1,LONG,1.5,1500,300\n\n# note\nETH-USD,a2,SHORT,2,1490.5,400\n`,
      'csv',
      'f.csv',
    );
    expect(csv.map((r) => [r.id, r.traderId, r.side, r.size])).toEqual([
      ['a1', 'trader-a1', 'LONG', '1.5'],
      ['a2', 'trader-a2', 'SHORT', '2'],
    ]);
    const json = positionsFromFile(
      JSON.stringify([
        {
          id: 'j1',
          traderId: 't',
          symbol: 'BTC-USD',
          side: 'LONG',
          size: '0.1',
          entryPrice: '60000',
          collateral: '600',
        },
      ]),
      'json',
      'f.json',
    );
    expect(json[0]).toMatchObject({ action: 'openPosition', id: 'j1', traderId: 't' });
  });
  it.each([
    [
      'a missing column (follow48-seed-columns: "column(s)", one word for one)',
      'id,symbol,side,size,entryPrice\nx,ETH-USD,LONG,1,1',
      'csv',
      /seed\/no-header: f: line 1: missing 1 column: collateral$/,
    ],
    [
      'two missing columns',
      'id,symbol,side,size\nx,ETH-USD,LONG,1',
      'csv',
      /seed\/no-header: f: line 1: missing 2 columns: entryPrice, collateral$/,
    ],
    [
      'a short row',
      `${header}\na,t,ETH-USD,LONG,1,1500,300\nb,t,ETH-USD,LONG,1`,
      'csv',
      /seed\/bad-row: f: line 3: 5 columns, expected 7/,
    ],
    ['a bad side', `${header}\na,t,ETH-USD,UP,1,1500,300`, 'csv', /f: line 2: side: /],
    // Parsed before any row is written: the good rows above it are not written either.
    [
      'a malformed amount',
      `${header}\na,t,ETH-USD,LONG,1,1500,300\nb,t,ETH-USD,LONG,1.5.5,1500,300`,
      'csv',
      /f: line 3: .*size/,
    ],
    ['a zero collateral', `${header}\na,t,ETH-USD,LONG,1,1500,0`, 'csv', /f: line 2: .*collateral/],
    ['no rows', `${header}\n`, 'csv', /seed\/empty/],
    ['not JSON', '[{', 'json', /seed\/not-json/],
    ['not a list', '{}', 'json', /seed\/not-a-list/],
    [
      'a bad entry',
      '[{"id":"a","symbol":"ETH-USD","side":"LONG","size":"1","entryPrice":"1","collateral":"1"}, 5]',
      'json',
      /f: entry 2: not an object/,
    ],
  ])('refuses %s with where it is', (_name, text, format, pattern) => {
    expect(() => positionsFromFile(text, format as 'csv' | 'json', 'f')).toThrow(SeedFileError);
    expect(() => positionsFromFile(text, format as 'csv' | 'json', 'f')).toThrow(pattern);
  });
  it('--price: one price, or one per market', () => {
    expect(pricesOption('1500', ['ETH-USD']).get('ETH-USD')).toBe(parsePrice('1500'));
    const both = pricesOption('eth-usd=1500, BTC-USD=60000', ['ETH-USD', 'BTC-USD']);
    expect([...both.entries()]).toEqual([
      ['ETH-USD', parsePrice('1500')],
      ['BTC-USD', parsePrice('60000')],
    ]);
  });
});

describe('targets', () => {
  const outputs: Record<string, string> = {
    [OUTPUT_KEYS.tickBusName]: 'bus',
    [OUTPUT_KEYS.dashboardName]: 'dash',
    [OUTPUT_KEYS.tickArchiveName]: 'archive',
  };
  for (const t of TABLES) outputs[tableNameKey(t.id)] = `table-${t.id}`;
  for (const q of QUEUES) {
    outputs[queueUrlKey(q.id)] = `url-${q.id}`;
    if (q.deadLetter) outputs[deadLetterQueueUrlKey(q.id)] = `dlq-${q.id}`;
  }

  it('names a deployed stack from its CloudFormation outputs', () => {
    const names = namesFromOutputs(outputs, 'dev');
    expect(names.tables.ledger).toBe('table-ledger');
    expect(names.queues.liquidations).toEqual({ url: 'url-liquidations', dlqUrl: 'dlq-liquidations' });
    expect(names.queues.tickDeadLetters).toEqual({ url: 'url-tickDeadLetters' });
    expect(names).toMatchObject({ busName: 'bus', dashboardName: 'dash', archiveName: 'archive' });
    expect(names.tickQueueUrl).toBeUndefined();
  });
  it('names the missing output when the stack lacks one', () => {
    const { [queueUrlKey('auctionSteps')]: _, ...missing } = outputs;
    expect(() => namesFromOutputs(missing, 'qa')).toThrow(TargetError);
    expect(() => namesFromOutputs(missing, 'qa')).toThrow(
      `stack ${stackName('qa')} has no output QueueAuctionStepsUrl`,
    );
  });
  it("refuses a --config whose digest is not the stack's RiskConfigDigest output", () => {
    // The CLI moves money with its own rules on a deployed stack: a stale file judged a withdrawal by another
    // floor than the functions' (a security review, session 40).
    const deployedInput = {
      ...DEFAULT_RISK_CONFIG_INPUT,
      insurance: { ...DEFAULT_RISK_CONFIG_INPUT.insurance, floor: '50000' },
    };
    const digest = riskConfigDigest(parseRiskConfig(deployedInput));
    const dir = mkdtempSync(path.join(tmpdir(), 'backstop-digest-'));
    try {
      const file = (name: string, input: unknown) => {
        writeFileSync(path.join(dir, name), JSON.stringify(input));
        return path.join(dir, name);
      };
      const deployment = (outputs: Record<string, string>): Deployment => ({
        kind: 'aws',
        stage: 'prod',
        region: 'eu-west-1',
        clients: undefined as never,
        names: namesFromOutputs(outputs, 'prod'),
        close: () => {},
      });
      const deployed = deployment({ ...outputs, [OUTPUT_KEYS.riskConfigDigest]: digest });
      expect(deployed.names.riskConfigDigest).toBe(digest);
      expect(() => riskConfigFor(deployed, file('stale.json', DEFAULT_RISK_CONFIG_INPUT))).toThrow(
        `stale.json is not the risk configuration stack ${stackName('prod')} runs with`,
      );
      // The same rules, markets in another order: the functions find markets by symbol.
      const reordered = { ...deployedInput, markets: [...deployedInput.markets].reverse() };
      expect(riskConfigFor(deployed, file('same.json', reordered)).insurance.floor).toBe(50_000_000_000n);
      // No file: the built-in rules only where the stack says it runs them (status, inject, replay assume them).
      expect(() => riskConfigFor(deployed, undefined)).toThrow(
        `--config is required: stack ${stackName('prod')} does not run this CLI's built-in risk configuration`,
      );
      const builtIn = deployment({
        ...outputs,
        [OUTPUT_KEYS.riskConfigDigest]: riskConfigDigest(DEFAULT_RISK_CONFIG),
      });
      expect(riskConfigFor(builtIn, undefined)).toBe(DEFAULT_RISK_CONFIG);
      // A stack deployed before the output: the file is taken as given.
      const older = deployment(outputs);
      expect(riskConfigFor(older, path.join(dir, 'stale.json')).insurance.floor).toBe(0n);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it("digests a configuration the same whatever the shell's locale (synth's and the operator's may differ)", () => {
    // localeCompare sorted the markets by the process's locale: Danish puts AAVE-USD last, so a stack synthesized
    // in one locale refused the very file it was deployed with from a shell in another (session 40 review).
    const [eth] = DEFAULT_RISK_CONFIG_INPUT.markets;
    const input = {
      ...DEFAULT_RISK_CONFIG_INPUT,
      markets: [...DEFAULT_RISK_CONFIG_INPUT.markets, { ...eth!, symbol: 'AAVE-USD' }],
    };
    const digestIn = (locale: string) => {
      const run = spawnSync(
        process.execPath,
        [
          '--import',
          'tsx',
          '--input-type=module',
          '-e',
          "const { riskConfigDigest } = await import('./infra/outputs.ts');" +
            "const { parseRiskConfig } = await import('./shared/domain/config.ts');" +
            'console.log(riskConfigDigest(parseRiskConfig(JSON.parse(process.env.RISK_INPUT))));',
        ],
        {
          cwd: repoRoot,
          env: { PATH: process.env.PATH, LANG: locale, LC_ALL: locale, RISK_INPUT: JSON.stringify(input) },
          encoding: 'utf8',
        },
      );
      expect(run.status, run.stderr).toBe(0);
      return run.stdout.trim();
    };
    const digest = riskConfigDigest(parseRiskConfig(input));
    expect(digestIn('C.UTF-8')).toBe(digest);
    expect(digestIn('da_DK.UTF-8')).toBe(digest);
  });
  it('finds LocalStack at --endpoint, else AWS_ENDPOINT_URL, else localhost:4566', () => {
    expect(localstackEndpoint('http://h:1', { AWS_ENDPOINT_URL: 'http://e:2' })).toBe('http://h:1');
    expect(localstackEndpoint(undefined, { AWS_ENDPOINT_URL: 'http://e:2' })).toBe('http://e:2');
    expect(localstackEndpoint(undefined, {})).toBe('http://localhost:4566');
  });

  it('localstack-deploy.sh points the CDK CLI at LocalStack with fake credentials (dry run)', () => {
    const run = spawnSync(
      'bash',
      ['scripts/localstack-deploy.sh', '--dry-run', '--stage', 'qa', '--hotswap'],
      {
        cwd: repoRoot,
        env: { PATH: process.env.PATH, AWS_PROFILE: 'production', AWS_SESSION_TOKEN: 'secret' },
        encoding: 'utf8',
      },
    );
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout.trim().split('\n')).toEqual([
      'AWS_ENDPOINT_URL=http://localhost:4566',
      'AWS_ENDPOINT_URL_S3=http://s3.localhost.localstack.cloud:4566',
      'AWS_ACCESS_KEY_ID=test',
      'AWS_SECRET_ACCESS_KEY=test',
      'AWS_REGION=us-east-1',
      'AWS_DEFAULT_REGION=us-east-1',
      'CDK_DEFAULT_ACCOUNT=000000000000',
      'CDK_DEFAULT_REGION=us-east-1',
      'node_modules/.bin/cdk bootstrap aws://000000000000/us-east-1',
      'node_modules/.bin/cdk deploy Backstop-qa -c backstop:stage=qa --require-approval never --hotswap',
    ]);
    expect(run.stdout).not.toContain('production');
    const custom = spawnSync('bash', ['scripts/localstack-deploy.sh', '--dry-run'], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH, LOCALSTACK_ENDPOINT: 'http://ls:4566', AWS_REGION: 'eu-west-1' },
      encoding: 'utf8',
    });
    expect(custom.stdout).toContain('AWS_ENDPOINT_URL=http://ls:4566\n');
    expect(custom.stdout).toContain(`cdk deploy ${stackName(DEFAULT_DEPLOYED_STAGE)} `);
    expect(custom.stdout).toContain('bootstrap aws://000000000000/eu-west-1');
    const bad = spawnSync('bash', ['scripts/localstack-deploy.sh', '--stage', 'Prod'], {
      cwd: repoRoot,
      encoding: 'utf8',
    });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--stage "Prod"/);
  });

  it('says how to install the emulator when there is none', () => {
    const path = process.env.PATH;
    process.env.PATH = tempDir('empty-');
    try {
      expect(() => motoCommand(tempDir('root-'))).toThrow(MotoNotInstalledError);
      expect(() => motoCommand(tempDir('root-'))).toThrow(/run: bash scripts\/setup-emulator\.sh/);
    } finally {
      process.env.PATH = path;
    }
  });

  // onboard49-moto-probe: a machine's moto that imports (5.2.1) but lacks what the launcher imports passed the probe,
  // and a .venv of such a moto got as far as the launch; both then failed as `internal error: moto server exited (1):
  // ImportError: ...`, with no word of the setup.
  it("says how to install the emulator when the machine's moto, or .venv's, cannot run it", async () => {
    const fakes = tempDir('old-moto-');
    // A python3 whose moto imports, but not the launcher's names.
    writeFileSync(
      path.join(fakes, 'python3'),
      `#!/usr/bin/env bash
case "$2" in *MotoRequestHandler*) echo "ImportError: cannot import name 'MotoRequestHandler'" >&2; exit 1 ;; esac
case "$2" in *print*) echo 5.2.1 ;; esac
exit 0
`,
      { mode: 0o755 },
    );
    const pathBefore = process.env.PATH;
    process.env.PATH = `${fakes}:${pathBefore}`;
    try {
      expect(() => motoCommand(tempDir('root-'))).toThrow(
        "the local AWS emulator (moto[server]) is not installed, and the machine's moto 5.2.1 cannot run it: run: bash scripts/setup-emulator.sh",
      );
    } finally {
      process.env.PATH = pathBefore;
    }
    const root = tempDir('root-');
    mkdirSync(path.join(root, '.venv', 'bin'), { recursive: true });
    writeFileSync(path.join(root, '.venv', 'bin', 'moto_server'), '', { mode: 0o755 });
    writeFileSync(
      path.join(root, '.venv', 'bin', 'python'),
      `#!/usr/bin/env bash\necho "ImportError: cannot import name 'MotoRequestHandler'" >&2\nexit 1\n`,
      { mode: 0o755 },
    );
    // setup-emulator.sh, PyPI out of reach: it said the machine's moto would run (exit 0).
    const checkout = tempDir('checkout-');
    mkdirSync(path.join(checkout, 'scripts'));
    copyFileSync(
      path.join(repoRoot, 'scripts', 'setup-emulator.sh'),
      path.join(checkout, 'scripts', 'setup-emulator.sh'),
    );
    writeFileSync(
      path.join(fakes, 'python3'),
      `#!/usr/bin/env bash
if [ "$1" = -m ]; then mkdir -p "$3/bin" && printf '#!/usr/bin/env bash\\nexit 1\\n' > "$3/bin/pip" && chmod +x "$3/bin/pip"; exit 0; fi
case "$2" in *MotoRequestHandler*) exit 1 ;; *print*) echo 5.2.1 ;; esac
exit 0
`,
      { mode: 0o755 },
    );
    const setup = spawnSync('bash', [path.join(checkout, 'scripts', 'setup-emulator.sh')], {
      env: { PATH: `${fakes}:${pathBefore}` },
      encoding: 'utf8',
    });
    expect(setup.status).toBe(1);
    expect(setup.stderr).toContain(
      "error: moto[server] 5.2.5 could not be installed, and the machine's moto 5.2.1 cannot run the emulator; run: ",
    );
    expect(existsSync(path.join(checkout, '.venv'))).toBe(false);
    const started = startMoto({ root, startDeadlineMs: 10_000 });
    await expect(started).rejects.toThrow(MotoNotInstalledError);
    await expect(started).rejects.toThrow(
      "the local AWS emulator (moto[server]) cannot start: ImportError: cannot import name 'MotoRequestHandler': run: bash scripts/setup-emulator.sh",
    );
  });

  // cli50-moto-probe-once: local up found the python that runs moto (its early check, python3 importing the launcher's
  // names when there is no .venv: a second or so), then startMoto found it again, once more for each port it tried.
  it('probes the machine for moto once when there is no .venv: the early check, given to the start', async () => {
    const fakes = tempDir('probe-count-');
    const probes = path.join(fakes, 'probes.log');
    // A python3 whose moto passes the probe, and whose launcher then fails to import (the start ends at once).
    writeFileSync(
      path.join(fakes, 'python3'),
      `#!/usr/bin/env bash
case "$2" in *"run_simple(sys.argv"*) echo "ImportError: cannot import name 'x'" >&2; exit 1 ;; esac
echo probe >> ${JSON.stringify(probes)}
exit 0
`,
      { mode: 0o755 },
    );
    const root = tempDir('root-');
    const pathBefore = process.env.PATH;
    process.env.PATH = `${fakes}:${pathBefore}`;
    try {
      // As local up does: the early check (which fails with the setup hint), then the start with what it found.
      const command = motoCommand(root);
      expect(command.command).toBe('python3');
      await expect(startMoto({ root, command, startDeadlineMs: 10_000 })).rejects.toThrow(
        "the local AWS emulator (moto[server]) cannot start: ImportError: cannot import name 'x': run: bash scripts/setup-emulator.sh",
      );
      expect(readFileSync(probes, 'utf8')).toBe('probe\n');
      // A start without it finds it itself, once.
      await expect(startMoto({ root, startDeadlineMs: 10_000 })).rejects.toThrow(MotoNotInstalledError);
      expect(readFileSync(probes, 'utf8')).toBe('probe\nprobe\n');
    } finally {
      process.env.PATH = pathBefore;
    }
  });

  // review50-cli-detach-probe: `local up --detach` probed in the parent (its early check) and again in the background
  // child, another process that found its own python: the parent's answer is given to the child with its log.
  it("runs a detached local up's emulator with the python its parent found, not probing again", async () => {
    const fakes = tempDir('child-python-');
    const calls = path.join(fakes, 'calls.log');
    const python = path.join(fakes, 'python');
    // Its launch fails at once, in its own words; a probe would be logged too.
    writeFileSync(
      python,
      `#!/usr/bin/env bash
case "$2" in *"run_simple(sys.argv"*) echo launch >> ${JSON.stringify(calls)}; echo "ImportError: cannot import name 'child'" >&2; exit 1 ;; esac
echo probe >> ${JSON.stringify(calls)}
exit 0
`,
      { mode: 0o755 },
    );
    // A port that is taken, not by moto: the .venv's moto (the child's own find, before) fails there too, in other words.
    const taken = createServer();
    await new Promise<void>((resolveListen) => taken.listen(0, '127.0.0.1', resolveListen));
    const port = (taken.address() as AddressInfo).port;
    const state = tempDir('child-state-');
    const saved = { ...process.env };
    // As detach starts its child: the state folder, the log, the python.
    process.env.BACKSTOP_STATE_DIR = state;
    process.env.BACKSTOP_LOCAL_LOG = path.join(state, 'local.log');
    process.env.BACKSTOP_LOCAL_MOTO_PYTHON = python;
    const writes = [process.stdout.write, process.stderr.write];
    try {
      const run = await cli('local', 'up', '--port', String(port));
      expect(run.stderr).toContain("ImportError: cannot import name 'child'");
      // A start that failed undid its escaping of the process's output (cli50-foreground-log-text) and its diversion.
      expect([process.stdout.write, process.stderr.write]).toEqual(writes);
      expect(run.code).toBe(1);
      expect(readFileSync(calls, 'utf8')).toBe('launch\n');
    } finally {
      process.env = saved;
      taken.close();
    }
    // Only a detached child's (its log variable set) is taken: any other run finds its own.
    expect(emulatorOf({ BACKSTOP_LOCAL_MOTO_PYTHON: python }).command).not.toBe(python);
    expect(emulatorOf({ BACKSTOP_LOCAL_LOG: 'l', BACKSTOP_LOCAL_MOTO_PYTHON: python }).command).toBe(python);
  });

  // tidy50-local-deadline-clock: moto's start deadline was timed by the wall clock (Date.now), which a step of the machine's
  // (NTP, an operator's date) moves: forward, the start gave up at its first look; back, it waited an hour.
  it('times the emulator start by a clock no step of the machine moves', async () => {
    const realNow = Date.now.bind(Date);
    let stepped = 0;
    // The machine's clock an hour on at every read.
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() + 3_600_000 * ++stepped);
    let moto: Awaited<ReturnType<typeof startMoto>> | undefined;
    try {
      // Before: "moto server did not answer on ... within 20000 ms", at its first look.
      moto = await startMoto();
      expect(moto.running()).toBe(true);
    } finally {
      vi.restoreAllMocks();
      await moto?.stop();
    }
  }, 60_000);

  // review49-onboard-setup-imports: the script's check was a hand copy of the launcher's imports, in other words
  // (`import flask, werkzeug.serving`): an import the launcher gains would pass the script and fail at `local up`.
  it("setup-emulator.sh checks the machine's moto with the launcher's own imports", () => {
    const script = readFileSync(path.join(repoRoot, 'scripts', 'setup-emulator.sh'), 'utf8');
    expect(script).toContain(`RUNS_EMULATOR="${MOTO_IMPORTS.split('\n').join('; ')}"\n`);
    expect(script).toContain('python3 -c "$RUNS_EMULATOR"');
  });

  // Noted in session 42: git worktrees link .venv to the main checkout's; a failed moto check rebuilt the linked venv
  // (python3 -m venv and pip through the link), and a failed install deleted whatever .venv was there before.
  it('setup-emulator.sh never rebuilds a linked .venv nor deletes one it did not make', () => {
    // A python3 whose pip install fails (PyPI unreachable) and which has a moto of its own; it logs its calls.
    const fakes = tempDir('fake-python-');
    const log = path.join(fakes, 'calls.log');
    writeFileSync(
      path.join(fakes, 'python3'),
      `#!/usr/bin/env bash
echo "$*" >> "${log}"
if [ "$1" = -m ]; then mkdir -p "$3/bin" && printf '#!/usr/bin/env bash\nexit 1\n' > "$3/bin/pip" && chmod +x "$3/bin/pip"; exit 0; fi
case "$2" in *print*) echo 5.0.0 ;; esac
exit 0
`,
      { mode: 0o755 },
    );
    // A venv with another moto: its python fails the check.
    const venvWithOtherMoto = (dir: string) => {
      mkdirSync(path.join(dir, 'bin'), { recursive: true });
      writeFileSync(path.join(dir, 'bin', 'python'), '#!/usr/bin/env bash\nexit 1\n', { mode: 0o755 });
      writeFileSync(path.join(dir, 'other-work'), 'kept');
    };
    const checkout = () => {
      const root = tempDir('checkout-');
      mkdirSync(path.join(root, 'scripts'));
      copyFileSync(
        path.join(repoRoot, 'scripts', 'setup-emulator.sh'),
        path.join(root, 'scripts', 'setup-emulator.sh'),
      );
      return root;
    };
    const setup = (root: string) => {
      writeFileSync(log, '');
      return spawnSync('bash', [path.join(root, 'scripts', 'setup-emulator.sh')], {
        env: { PATH: `${fakes}:${process.env.PATH}` },
        encoding: 'utf8',
      });
    };

    const shared = tempDir('main-checkout-venv-');
    venvWithOtherMoto(shared);
    const worktree = checkout();
    symlinkSync(shared, path.join(worktree, '.venv'));
    const linked = setup(worktree);
    expect(linked.status).toBe(1);
    expect(linked.stderr).toBe(
      `error: .venv is a link to ${shared} (another checkout's environment) without moto 5.2.5; not rebuilding it through the link: run this script in the checkout it belongs to, or remove the link (rm .venv) to build this checkout's own\n`,
    );
    expect(readFileSync(log, 'utf8')).toBe('');
    expect(readdirSync(shared).sort()).toEqual(['bin', 'other-work']);
    expect(readdirSync(path.join(shared, 'bin'))).toEqual(['python']);

    const own = checkout();
    venvWithOtherMoto(path.join(own, '.venv'));
    const before = setup(own);
    expect(before.status).toBe(0);
    expect(before.stderr).toContain(
      "warning: could not install moto 5.2.5 into .venv, which was here before (left as it is); using the machine's moto 5.0.0",
    );
    expect(readFileSync(path.join(own, '.venv', 'other-work'), 'utf8')).toBe('kept');

    // One this run made is removed, as before: the machine's moto runs.
    const fresh = checkout();
    const ranFresh = setup(fresh);
    expect(ranFresh.status).toBe(0);
    expect(ranFresh.stderr).toContain(
      "warning: could not install moto 5.2.5 into .venv; using the machine's moto 5.0.0",
    );
    expect(existsSync(path.join(fresh, '.venv'))).toBe(false);
    expect(readFileSync(log, 'utf8')).toMatch(/^-m venv \.venv\n/);
  });

  it('maps environment failures to one line and leaves bugs alone', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
    expect(environmentFailure(refused)).toBe(
      'cannot reach the target (ECONNREFUSED): connect ECONNREFUSED 127.0.0.1:9',
    );
    const denied = Object.assign(new Error('User is not authorized\nmore'), {
      name: 'AccessDeniedException',
      $metadata: { httpStatusCode: 400 },
    });
    expect(environmentFailure(denied)).toBe('AWS AccessDeniedException: User is not authorized');
    expect(environmentFailure(new TypeError('x is undefined'))).toBeUndefined();
  });

  // ops47-watch-retry: what a watch (status --watch, replay --hold) reads again, and what ends it.
  it('tells a failed refresh that may heal from one that cannot, in one line', () => {
    const aws = (name: string, message: string, httpStatusCode = 400) =>
      Object.assign(new Error(message), { name, $metadata: { httpStatusCode } });
    const heals = [
      aws('ThrottlingException', 'Rate exceeded'),
      aws(
        'ProvisionedThroughputExceededException',
        'The level of configured provisioned throughput was exceeded',
      ),
      aws('ExpiredTokenException', 'The security token included in the request is expired'),
      aws('InternalServerError', 'Internal server error', 500),
      Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }),
      Object.assign(new Error('socket hang up'), { name: 'TimeoutError' }),
      Object.assign(new Error('Token is expired'), { name: 'CredentialsProviderError' }),
      new UnprocessedKeysError('dynamodb/batch-get-unprocessed: keys still unprocessed'),
    ];
    expect(heals.map((e) => refreshFailure(e))).toEqual([
      { line: 'ThrottlingException: Rate exceeded', lasting: false },
      {
        line: 'ProvisionedThroughputExceededException: The level of configured provisioned throughput was exceeded',
        lasting: false,
      },
      {
        line: 'ExpiredTokenException: The security token included in the request is expired',
        lasting: false,
      },
      { line: 'InternalServerError: Internal server error', lasting: false },
      { line: 'Error (ECONNRESET): read ECONNRESET', lasting: false },
      { line: 'TimeoutError: socket hang up', lasting: false },
      { line: 'CredentialsProviderError: Token is expired', lasting: false },
      {
        line: 'UnprocessedKeysError: dynamodb/batch-get-unprocessed: keys still unprocessed',
        lasting: false,
      },
    ]);
    const lasting = [
      aws('ResourceNotFoundException', 'Requested resource not found'),
      aws('QueueDoesNotExist', 'The specified queue does not exist.'),
      aws('AccessDeniedException', 'User is not authorized\nmore'),
      aws('UnrecognizedClientException', 'The security token included in the request is invalid.'),
      new TargetError('stack backstop-dev not found in eu-west-1'),
    ];
    expect(lasting.map((e) => refreshFailure(e))).toEqual([
      { line: 'ResourceNotFoundException: Requested resource not found', lasting: true },
      { line: 'QueueDoesNotExist: The specified queue does not exist.', lasting: true },
      { line: 'AccessDeniedException: User is not authorized', lasting: true },
      {
        line: 'UnrecognizedClientException: The security token included in the request is invalid.',
        lasting: true,
      },
      { line: 'TargetError: stack backstop-dev not found in eu-west-1', lasting: true },
    ]);
    // A bug is no failure of the environment: it ends the watch as any command's.
    expect(refreshFailure(new TypeError('x is undefined'))).toBeUndefined();
  });

  // cli50b-stale-age-jitter: the stale figures' age was the difference of two readings of AWS's clock, each a Date
  // header's second floored plus the machine's time since: figures read a second and more before said "0 s ago".
  it("says the stale figures' age by the machine's clock, not AWS's time set again between the reads", async () => {
    const t0 = Date.parse('2026-03-01T10:00:00.100Z');
    let now = t0;
    // AWS's time by the answers: the first read's last answer came in its second's start, the second's at its end.
    const offsets = [0, -999];
    let reads = 0;
    const failures: FailedRefresh[] = [];
    const stop = new AbortController();
    await watchStatus({
      read: async (_nowMs, awsNowMs) => {
        reads += 1;
        if (reads === 2)
          throw Object.assign(new Error('Rate exceeded'), {
            name: 'ThrottlingException',
            $metadata: { httpStatusCode: 400 },
          });
        return { at: new Date(awsNowMs).toISOString() } as StatusReport;
      },
      write: () => {},
      writeFailure: (failed) => {
        failures.push(failed);
        stop.abort();
      },
      intervalMs: 1_000,
      nowMs: () => now,
      awsNowMs: () => now + offsets[reads]!,
      sleep: async (ms) => {
        now += ms;
      },
      signal: stop.signal,
    });
    expect(failures).toHaveLength(1);
    expect(failures[0]!.lastAgeMs).toBe(1_000);
    // AWS's time moved by 1 ms between the reads, the machine's by the interval: the refresh said a second after the
    // figures, as their age (ops50b-failed-refresh-at: it was AWS's time as read, 10:00:00.101).
    expect(failedRefreshLine(failures[0]!)).toBe(
      'backstop status: the refresh at 2026-03-01T10:00:01.100Z failed: ThrottlingException: Rate exceeded; STALE: the figures shown were read at 2026-03-01T10:00:00.100Z, 1 s ago; read again in 1 s (Ctrl-C ends the watch)',
    );
  });

  // review47-refresh-client-errors: only ten names were lasting, so any other error AWS answered as the caller's (a code
  // bug's SerializationException, a wrong attribute, a 403 of SQS's) was read again at every interval, forever.
  it("ends a watch on any error AWS answers as the caller's, and reads again through a throttle of any status", () => {
    const $metadata = (httpStatusCode: number) => ({ $metadata: { httpStatusCode } });
    const lasting = [
      Object.assign(new Error('Start of structure or map found where not expected.'), {
        name: 'SerializationException',
        ...$metadata(400),
      }),
      new InvalidAttributeName({ message: 'Unknown Attribute Bogus.', ...$metadata(400) }),
      new InvalidSecurity({ message: 'The request was not made over HTTPS', ...$metadata(403) }),
      // No status: the SDK's word for whose fault it is.
      Object.assign(new Error('Requested resource not found'), {
        name: 'ResourceNotFoundException',
        $metadata: {},
        $fault: 'client',
      }),
    ];
    expect(lasting.map((e) => refreshFailure(e)?.lasting)).toEqual([true, true, true, true]);
    const heals = [
      // SQS's throttle is a 403, KMS's a 400.
      new RequestThrottled({ message: 'Request is throttled.', ...$metadata(403) }),
      new KmsThrottled({ message: 'KMS throttled', ...$metadata(400) }),
      new ProvisionedThroughputExceededException({ message: 'Throughput exceeded', ...$metadata(400) }),
      Object.assign(new Error('Too many requests'), { name: 'TooManyRequests', ...$metadata(429) }),
      Object.assign(new Error('Service Unavailable'), { name: 'ServiceUnavailable', ...$metadata(503) }),
      Object.assign(new Error('The security token included in the request is expired'), {
        name: 'ExpiredToken',
        ...$metadata(403),
      }),
      Object.assign(new Error('Signature expired'), { name: 'RequestExpired', ...$metadata(400) }),
    ];
    expect(heals.map((e) => refreshFailure(e)?.lasting)).toEqual(Array(heals.length).fill(false));
  });
});

describe('local.json', () => {
  it('round-trips and is removed only by the process it names', () => {
    const dir = tempDir('state-');
    const record = {
      pid: 4242,
      motoPid: 4243,
      endpoint: 'http://127.0.0.1:4599',
      stage: 'local',
      region: 'us-east-1',
      startedAt: '2026-01-01T00:00:00.000Z',
      riskConfig: { markets: [] },
    };
    writeLocalRecord(dir, record);
    expect(readLocalRecord(dir)).toEqual(record);
    removeLocalRecord(dir, 1);
    expect(readLocalRecord(dir)).toEqual(record);
    removeLocalRecord(dir, 4242);
    expect(readLocalRecord(dir)).toBeUndefined();
  });
});

// Found by running 40 markets in session 40: --symbol and a price file's name chose a market by its base asset, the
// first configured of those sharing it, so with BTC-USD and BTC-USDT listed `replay btc-usdt-perp-....csv` sent
// its ticks to BTC-USD, and `inject`, `feed resume` or `positions reindex --symbol btc` acted on BTC-USD unasked.
// Since session 41 parseRiskConfig refuses markets of several quote currencies (config-mixed-quotes), so the
// configuration is built whole: resolveSymbol must still not take a base for a market once a fund per quote exists.
describe('markets of one base asset (BTC-USD and BTC-USDT)', () => {
  const config: RiskConfig = {
    ...DEFAULT_RISK_CONFIG,
    markets: ['BTC-USD', 'BTC-USDT', 'ETH-USD', '1INCH-USD', '1000PEPE-USDT', '10000SATS-USD'].map(
      (symbol) => ({ ...DEFAULT_RISK_CONFIG.markets[0]!, symbol }),
    ),
  };
  it('takes the market a file name or --symbol names whole, whatever its place in the configuration', () => {
    const cases: [string | undefined, string | undefined, string][] = [
      [undefined, '/data/btc-usdt-perp-2020-03-12-leg1-1m.csv', 'BTC-USDT'],
      [undefined, 'BTCUSDT-1m-2020-03-12.csv', 'BTC-USDT'],
      [undefined, 'btc_usd.csv', 'BTC-USD'],
      [undefined, 'btc-usd-crash.csv', 'BTC-USD'],
      [undefined, 'eth-usdt-perp-2020-03-12-leg2-1m.csv', 'ETH-USD'],
      [undefined, '1inch-usd-crash.csv', '1INCH-USD'],
      [undefined, '1000pepe-usdt-crash.csv', '1000PEPE-USDT'],
      [undefined, '10000sats.csv', '10000SATS-USD'],
      ['btc-usdt', 'btc-usd.csv', 'BTC-USDT'],
      ['btc-usd', undefined, 'BTC-USD'],
      ['1inch', undefined, '1INCH-USD'],
    ];
    for (const [given, file, expected] of cases)
      expect(resolveSymbol(config, given, file, true), `${given} ${file}`).toBe(expected);
  });
  it('refuses a base several markets share, naming them, instead of taking the first', () => {
    expect(() => resolveSymbol(config, 'btc', undefined, true)).toThrow(UsageError);
    expect(() => resolveSymbol(config, 'btc', undefined)).toThrow(
      /--symbol: "btc" could be any of BTC-USD, BTC-USDT/,
    );
    expect(() => resolveSymbol(config, undefined, 'btc-1m.csv', true)).toThrow(
      /the file name "btc-1m.csv" could be any of BTC-USD, BTC-USDT/,
    );
    expect(() => resolveSymbol(config, undefined, 'btcusdc.csv', true)).toThrow(/could be any of/);
  });
});

describe('status rendering', () => {
  const zero = { depth: 0, inFlight: 0, delayed: 0 };
  const report: StatusReport = {
    target: { kind: 'local', stage: 'local', region: 'us-east-1', endpoint: 'http://127.0.0.1:4599' },
    at: '2026-01-01T00:00:00.000Z',
    positions: { OPEN: 7, LIQUIDATING: 1, CLOSED: 2 },
    liquidations: {
      byState: {
        QUEUED: 0,
        EXECUTING: 0,
        MARKET_EXECUTED: 0,
        AUCTION: 1,
        SETTLING: 0,
        SETTLED_MARKET: 2,
        SETTLED_AUCTION: 0,
        SETTLED_INSURANCE: 0,
        SETTLED_ADL: 0,
        CANCELLED: 0,
      },
      total: 3,
      nonTerminal: 1,
      owingAdlRounds: 0,
      losses: {
        fees: '120.5',
        shortfall: '1500',
        fundPaid: '1000',
        adlCovered: '400',
        uncoveredBadDebt: '100',
        unreadable: 0,
      },
    },
    auctions: { byState: { RUNNING: 1, CLEARED: 0, EXHAUSTED: 0 }, open: 1 },
    queues: {
      ticks: zero,
      liquidations: zero,
      auctionSteps: { depth: 0, inFlight: 0, delayed: 1 },
      liquidationsDlq: { depth: 2, inFlight: 0, delayed: 0 },
      auctionStepsDlq: zero,
      tickDeadLetters: zero,
    },
    dlqMessages: 2,
    drained: false,
    stranded: 0,
    settled: false,
    insuranceFund: {
      account: 'insurance-fund',
      balance: '250000.5',
      sequence: 1,
      reconciled: true,
      verdict: 'reconciled',
      difference: '0',
      audit: { checkpoint: 0, read: 1, through: 1 },
      minBalance: '0',
      problems: [],
      chartRefused: null,
      withdrawals: { refused: false, code: null, reason: null },
      lastEntries: [
        {
          sequence: 1,
          kind: 'deposit',
          amount: '250000.5',
          balanceAfter: '250000.5',
          reference: 'admin',
          at: '2026-01-01T00:00:00.000Z',
        },
      ],
    },
    markets: {
      'ETH-USD': {
        lastSequence: 12,
        nextSequence: 13,
        mark: '1520.5',
        at: '2026-01-01T00:00:00.000Z',
        markAgeSeconds: 150,
        maxMarkAgeSeconds: 120,
        markStale: true,
        pendingSequence: null,
        breaker: { reason: 'tick/price-band', trippedAt: '2026-01-01T00:00:00.000Z', mark: '900' },
        heldJump: { sequence: 9_007_199_254_740_991, heldAt: '2026-01-01T00:00:01.000Z' },
      },
    },
    breakersOpen: 1,
    quote: null,
    counted: { at: '2026-01-01T00:00:00.000Z', ageSeconds: 0 },
    strandedAtLeast: false,
    strandedUnconfirmed: 0,
    strandedForSeconds: null,
  };
  // books52-status-chart: the entries the fund's chart refuses, as ledger-reconcile's checkpoint counted them.
  it("says the entries the fund's chart refuses and the statement that names them, only when there are some", () => {
    expect(renderStatus(report)).not.toContain('chart of accounts');
    const withChart = (chartRefused: StatusReport['insuranceFund']['chartRefused']) =>
      renderStatus({ ...report, insuranceFund: { ...report.insuranceFund, chartRefused } });
    expect(withChart({ count: 3, firstSequence: 12, lastSequence: 57, countedAfter: 0 })).toContain(
      "\n  chart of accounts: 3 entries the fund's chart refuses (entries 12 to 57): backstop fund statement " +
        '--from-sequence 12 --to-sequence 57 names them (docs/DEPLOY.md, "An entry ' +
        'the fund\'s chart of accounts refuses"); no withdrawal is refused for them\n',
    );
    expect(withChart({ count: 1, firstSequence: 9, lastSequence: 9, countedAfter: 8 })).toContain(
      "chart of accounts: 1 entry the fund's chart refuses (entry 9; counted after entry 8): backstop fund " +
        'statement --from-sequence 9 --to-sequence 9 names it',
    );
  });
  /** What a single read's stranded line says of its judgment (stranded48-confirm). */
  const oneLook = "(from one look: SQS's queue counts are approximate, status --watch confirms it over 60 s)";
  it('shows every part on its own line', () => {
    const text = renderStatus(report);
    expect(text).toContain('positions       OPEN 7, LIQUIDATING 1, CLOSED 2');
    expect(text).toContain('liquidations    3 total, 1 not terminal: AUCTION 1, SETTLED_MARKET 2');
    expect(text).toContain('auctionSteps 0 +1 delayed');
    // Who bore the shortfalls, bad debt left uncovered in capitals (a review of the mechanisms, session 39).
    expect(text).toContain(
      'losses          fees 120.50 USD earned; shortfalls 1,500.00 USD: fund 1,000.00, ADL 400.00, UNCOVERED BAD DEBT 100.00',
    );
    expect(
      renderStatus({
        ...report,
        liquidations: {
          ...report.liquidations,
          losses: { ...report.liquidations.losses, uncoveredBadDebt: '0' },
        },
      }),
    ).toContain('ADL 400.00, none uncovered');
    expect(
      renderStatus({
        ...report,
        liquidations: { ...report.liquidations, losses: { ...report.liquidations.losses, unreadable: 2 } },
      }),
    ).toContain('UNCOVERED BAD DEBT 100.00 (2 settlements unreadable, left out)');
    expect(text).toContain('dead letters    2 (liquidationsDlq 2,');
    // What it judged, from the checkpoint (status46-journal-bounded: it read the whole journal for it).
    expect(text).toContain(
      "insurance fund  250,000.50 USD at entry 1, reconciled, never below zero (journal audited through entry 1: from ledger-reconcile's checkpoint at entry 0, 1 entry read past it)\n",
    );
    const unchecked = renderStatus({
      ...report,
      insuranceFund: { ...report.insuranceFund, audit: { checkpoint: null, read: 1, through: 1 } },
    });
    expect(unchecked).toContain(
      'never below zero (journal audited through entry 1: ledger-reconcile has stored no checkpoint: 1 entry read from the first, 20,000 entries at most)\n',
    );
    // The report's quote currency (the configuration's, session 41: config-mixed-quotes), not a fixed USD.
    const usdt = renderStatus({
      ...report,
      quote: 'USDT',
      insuranceFund: { ...report.insuranceFund, minBalance: '-5' },
      markets: {},
    });
    expect(usdt).toContain(
      'insurance fund  250,000.50 USDT at entry 1, reconciled, BELOW ZERO at -5.00 USDT (journal audited through entry 1:',
    );
    expect(usdt).toContain('losses          fees 120.50 USDT earned; shortfalls 1,500.00 USDT:');
    expect(usdt).not.toMatch(/\bUSD\b/);
    expect(text).toContain(
      'BREAKER OPEN since 2026-01-01T00:00:00.000Z (tick/price-band, 900), sequence jump',
    );
    // The print it refused last while confirming, as margin-check noted it (follow47-breaker-trace-best-effort).
    const confirming = structuredClone(report);
    const open = confirming.markets['ETH-USD']!;
    confirming.markets['ETH-USD'] = {
      ...open,
      breaker: { ...open.breaker!, confirming: { sequence: 14, at: '2026-01-01T00:00:02.000Z' } },
    };
    expect(renderStatus(confirming)).toContain(
      'BREAKER OPEN since 2026-01-01T00:00:00.000Z (tick/price-band, 900), print 14 refused at 2026-01-01T00:00:02.000Z as too soon to confirm it, sequence jump',
    );
    expect(text).toContain(
      'sequence jump to 9007199254740991 held since 2026-01-01T00:00:01.000Z (followed once the feed continues from it and the mark is stale)',
    );
    // A print numbered behind the last (the market's numbering ahead of its feed).
    const behind = structuredClone(report);
    const market = behind.markets['ETH-USD'];
    if (!market?.heldJump) throw new Error('no held jump');
    behind.markets['ETH-USD'] = { ...market, heldJump: { ...market.heldJump, sequence: 3, behind: true } };
    expect(renderStatus(behind)).toContain(
      'sequence behind at 3 held since 2026-01-01T00:00:01.000Z (followed once the feed continues from it and the mark is stale)',
    );
    // Its age, against which the work waits for a fresh mark (maxMarkAgeSeconds), when the configuration is known.
    expect(text).toContain(
      'mark 1520.5 (sequence 12 at 2026-01-01T00:00:00.000Z, 150 s old: STALE, over 120 s (liquidations and auctions wait for a tick))',
    );
    const eth = report.markets['ETH-USD']!;
    const unknown = renderStatus({
      ...report,
      markets: { 'ETH-USD': { ...eth, maxMarkAgeSeconds: null, markStale: null } },
    });
    expect(unknown).toContain(
      'mark 1520.5 (sequence 12 at 2026-01-01T00:00:00.000Z, 150 s old), BREAKER OPEN',
    );
    const fresh = renderStatus({
      ...report,
      markets: { 'ETH-USD': { ...eth, markAgeSeconds: 120, markStale: false } },
    });
    expect(fresh).toContain('120 s old), BREAKER OPEN');
    expect(text).not.toContain('no message moving them');
    // Open work and no message to move it (a drill of the runbook, session 38: a purged queue).
    // Five problems shown, the rest counted (the reconcile lists up to 20 and how many more).
    const broken = renderStatus({
      ...report,
      insuranceFund: {
        ...report.insuranceFund,
        problems: Array.from({ length: 8 }, (_, i) => `entry ${i + 2}: balanceBefore wrong`),
      },
    });
    expect(broken.match(/^ {2}problem: /gm)).toHaveLength(5);
    expect(broken).toContain('  ... 3 more lines of problems: backstop status --json');
    expect(renderStatus({ ...report, drained: true, stranded: 1, dlqMessages: 0 })).toContain(
      // final47-plurals: "1 liquidations not terminal and no message moving them: no dead letter holds them".
      `  1 liquidation not terminal and no message moving it ${oneLook}: no dead letter holds it (a purged queue, an expired dead letter): backstop liquidations overdue --all --resend sends each a message`,
    );
    // drill45-stranded-advice: dead-lettered ones have their own way first (the resend alone sent them to fail again).
    // review45-drill-stranded-order: and the resend after it, which cannot leave them out (it sends every open one).
    expect(renderStatus({ ...report, drained: true, stranded: 2, dlqMessages: 1 })).toContain(
      `  2 liquidations not terminal and no message moving them ${oneLook}: 1 in the dead-letter queues (backstop dlq list says why, backstop dlq redrive sends them back once the cause is fixed); then, for those no dead letter held, backstop liquidations overdue --all --resend (not before: it sends the dead-lettered ones a message too, to fail again)`,
    );
    // ux45-advice-config: overdue refuses to run without --config on aws and localstack (local has its recorded one).
    for (const kind of ['aws', 'localstack'])
      expect(
        renderStatus({
          ...report,
          target: { ...report.target, kind },
          drained: true,
          stranded: 2,
          dlqMessages: 0,
        }),
      ).toContain(
        `no dead letter holds them (a purged queue, an expired dead letter): backstop liquidations overdue --all --resend --config risk.json --target ${kind} --stage ${report.target.stage}`,
      );
    // ops46-advice-config-name: the command an operator copies is DEPLOY.md's, file name included (it said FILE.json).
    const deploy = readFileSync(path.join(process.cwd(), 'docs', 'DEPLOY.md'), 'utf8').replace(/\s+/g, ' ');
    for (const dlqMessages of [0, 1]) {
      const advice = strandedAdvice(dlqMessages, { kind: 'aws', stage: 'prod', region: 'eu-west-1' });
      const resend = advice.match(/backstop liquidations overdue [^()]*?--config \S+/)?.[0];
      expect(resend, advice).toBe('backstop liquidations overdue --all --resend --config risk.json');
      expect(deploy).toContain(resend);
    }
  });
  // status46-watch-scans: --watch shows the counts that Scan their tables from up to 5 minutes back, with their age.
  it('says how old the counts are when --watch shows earlier ones, and nothing of it for a single read', () => {
    expect(renderStatus(report)).not.toContain('counted');
    const reused = renderStatus({
      ...report,
      at: '2026-01-01T00:02:00.000Z',
      counted: { at: '2026-01-01T00:00:00.000Z', ageSeconds: 120 },
      drained: true,
      stranded: 1,
      strandedForSeconds: 64,
      dlqMessages: 0,
    });
    expect(reused).toContain(
      'auctions        1 open (RUNNING 1)\n  (positions, liquidations, auctions and settled counted 120 s ago at 2026-01-01T00:00:00.000Z: they Scan their tables, --watch counts again every 5 min; stranded and the rest are read now)\n',
    );
    // status47-stranded-live: stranded is judged on every refresh (the open index between counts), not counted.
    expect(reused).toContain(
      '\n  1 liquidation not terminal and no message moving it (none seen for 64 s): no dead letter',
    );
    expect(
      renderStatus({ ...report, drained: true, stranded: 100, strandedAtLeast: true, dlqMessages: 0 }),
    ).toContain(
      `\n  at least 100 liquidations not terminal and no message moving them ${oneLook}: no dead letter`,
    );
    expect(STATUS_USAGE).toContain('every 5 minutes');
    expect(STATUS_COUNT_EVERY_MS).toBe(5 * 60_000);
  });
  // stranded48-confirm: SQS's counts may read 0 for a moment while a message moves the work; --watch said it stranded,
  // the resend advised, on that refresh.
  it('says work a watch has found stranded for less than a minute as confirming, without the way on', () => {
    const confirming = renderStatus({
      ...report,
      drained: true,
      strandedUnconfirmed: 2,
      strandedForSeconds: 14,
      dlqMessages: 0,
    });
    expect(confirming).toContain(
      "\n  confirming (14 of 60 s): 2 liquidations not terminal and no message seen moving them; stranded once refreshes see none for 60 s (SQS's queue counts are approximate: a moment of 0 is not enough)\n",
    );
    expect(confirming).not.toContain('overdue');
    expect(
      renderStatus({
        ...report,
        drained: true,
        strandedUnconfirmed: 1,
        strandedForSeconds: 0,
        dlqMessages: 0,
      }),
    ).toContain('\n  confirming (0 of 60 s): 1 liquidation not terminal and no message seen moving it;');
    // A look between counts that found as many as it reads: at least that (strandedAtLeast false while confirming,
    // review48-stranded-at-least-unconfirmed); a count's figure is exact.
    const between = { at: '2026-01-01T00:00:00.000Z', ageSeconds: 30 };
    expect(
      renderStatus({
        ...report,
        at: '2026-01-01T00:00:30.000Z',
        counted: between,
        drained: true,
        strandedUnconfirmed: 100,
        strandedForSeconds: 2,
      }),
    ).toContain(': at least 100 liquidations not terminal and no message seen moving them;');
    expect(
      renderStatus({ ...report, drained: true, strandedUnconfirmed: 100, strandedForSeconds: 2 }),
    ).toContain(': 100 liquidations not terminal and no message seen moving them;');
    expect(STRANDED_CONFIRM_MS).toBe(60_000);
    expect(STATUS_USAGE).toContain('"confirming"');
    // --stranded-after (review48-stranded-seam): the watch's own minute, said as it is.
    expect(
      renderStatus(
        { ...report, drained: true, strandedUnconfirmed: 2, strandedForSeconds: 14, dlqMessages: 0 },
        report.target,
        30_000,
      ),
    ).toContain(
      '\n  confirming (14 of 30 s): 2 liquidations not terminal and no message seen moving them; stranded once refreshes see none for 30 s',
    );
  });
  // review47-upgrade-notes: session 47's new key of status --json and the reads --watch makes now (its credentials need
  // them) were told only under "What backstop status reads", not in the upgrade notes a script's or a role's owner reads.
  it("names status's session 47 changes in DEPLOY.md's upgrade notes", () => {
    const deploy = readFileSync(path.join(process.cwd(), 'docs', 'DEPLOY.md'), 'utf8').replace(/\s+/g, ' ');
    const notes = deploy.slice(
      deploy.indexOf('**Upgrading to session 47**'),
      deploy.indexOf('**Changing a provider'),
    );
    expect(notes).toContain('`strandedAtLeast`');
    expect(notes).toMatch(
      /`status --watch`[^*]*`dynamodb:Query` on the `liquidations` table's `openByStart` index and `dynamodb:BatchGetItem`/,
    );
  });
  // Found in session 43's notes: status rounded the fund to cents where fund shows it exactly (250,000.004 read as
  // 250,000.00 beside fund's 250,000.004); both now use formatQuoteGrouped, and --json keeps its exact decimal strings.
  it('status44-fund-exact: shows the fund and its journal exactly, as fund does', () => {
    const fund = usd('250000.004');
    const exact = renderStatus({
      ...report,
      insuranceFund: {
        ...report.insuranceFund,
        balance: '250000.004',
        minBalance: '-0.000001',
        lastEntries: [
          { ...report.insuranceFund.lastEntries[0]!, amount: '0.005', balanceAfter: '250000.004' },
        ],
      },
      liquidations: { ...report.liquidations, losses: { ...report.liquidations.losses, fees: '0.004' } },
    });
    expect(exact).toContain(`insurance fund  ${formatQuoteGrouped(fund)} USD at entry 1, reconciled`);
    expect(exact).toContain('insurance fund  250,000.004 USD at entry 1, reconciled');
    expect(exact).toContain('BELOW ZERO at -0.000001 USD');
    expect(exact).toContain('  #1 2026-01-01T00:00:00.000Z deposit 0.005 -> 250,000.004 (admin)');
    expect(exact).toContain('losses          fees 0.004 USD earned');
    // The same amount as the fund command's receipt prints it.
    expect(renderFund('deposit', usd('0.005'), 'k', 'USD', false, { sequence: 1, atMs: 0 }, fund)).toContain(
      'balance 250,000.004 USD',
    );
  });

  // ux45-status-draw-window (a drill of the runbook): status showed no draw window, so a payout refused at the draw
  // cap could not be told from one refused at the floor.
  it("shows the current window's draws against the draw cap, and the floor, exactly", () => {
    const config = parseRiskConfig({
      ...DEFAULT_RISK_CONFIG_INPUT,
      insurance: { drawCapPerWindow: '50000', windowSeconds: 3600, floor: '1000.5' },
    });
    const startMs = Date.parse('2026-01-01T00:00:00.000Z');
    const balance = {
      account: 'insurance-fund',
      balance: usd('250000'),
      sequence: 3,
      windowStartMs: startMs,
      windowDrawn: usd('49999.000001'),
    };
    const within = drawWindowStatus(balance, startMs + 3_599_999, config);
    const shown = renderStatus({ ...report, insuranceFund: { ...report.insuranceFund, drawWindow: within } });
    expect(shown).toContain(
      '  draws 49,999.000001 of the 50,000.00 USD draw cap in the window from 2026-01-01T00:00:00.000Z (3600 s); floor 1,000.50 USD',
    );
    // The window ended: a debit now counts against a new one, nothing drawn in it yet.
    expect(drawWindowStatus(balance, startMs + 3_600_000, config)).toMatchObject({
      drawn: '0',
      since: '2026-01-01T01:00:00.000Z',
    });
    // The configuration unknown (a deployed stack, no --config): the stored window's, and where cap and floor are.
    const unknown = drawWindowStatus(balance, startMs + 3_600_000);
    expect(
      renderStatus({ ...report, insuranceFund: { ...report.insuranceFund, drawWindow: unknown } }),
    ).toContain(
      '  draws 49,999.000001 USD in the window from 2026-01-01T00:00:00.000Z (the draw cap and floor: with --config)',
    );
    const never = drawWindowStatus({ ...balance, windowStartMs: 0, windowDrawn: 0n }, startMs);
    expect(
      renderStatus({ ...report, insuranceFund: { ...report.insuranceFund, drawWindow: never } }),
    ).toContain('  draws none yet (the draw cap and floor: with --config)');
  });

  it('review44-status-difference: a NOT RECONCILED difference and a window problem read as amounts, grouped', () => {
    const shown = renderStatus({
      ...report,
      insuranceFund: {
        ...report.insuranceFund,
        reconciled: false,
        verdict: 'unreconciled',
        difference: '-1234567.000001',
        drawWindow: {
          drawn: '60000.5',
          since: '2026-01-01T00:00:00.000Z',
          cap: '50000',
          windowSeconds: 3600,
          floor: '0',
          problem: `window drawn ${formatQuoteGrouped(usd('60000.5'))} is above the draw cap 50,000.00`,
        },
      },
    });
    // Before: "difference -1234567.000001", beside a balance shown grouped and with its currency.
    expect(shown).toContain('NOT RECONCILED (difference -1,234,567.000001 USD)');
    // status46-journal-bounded: the cap is no withdrawal's, and not the reconciliation's status judges (the check's).
    expect(shown).toContain(
      '  problem: window drawn 60,000.50 is above the draw cap 50,000.00 (a cap lowered within the window: ledger-reconcile alarms until it ends; no withdrawal is refused for it)\n',
    );
    const unjudged = renderStatus({
      ...report,
      insuranceFund: {
        ...report.insuranceFund,
        reconciled: false,
        verdict: 'unreconciled',
        difference: 'not judged',
      },
    });
    expect(unjudged).toContain('NOT RECONCILED (difference not judged)');
    // Not audited up to the balance (more past the checkpoint than a check reads), or entries not indexed: not judged.
    const short = renderStatus({
      ...report,
      insuranceFund: {
        ...report.insuranceFund,
        sequence: 25_008,
        reconciled: false,
        verdict: 'not-audited',
        difference: 'not judged',
        audit: { checkpoint: 5_000, read: 20_000, through: 25_000 },
      },
    });
    expect(short).toContain(
      "at entry 25008, NOT JUDGED (ledger-reconcile's checkpoint 20,008 entries behind it, more than the 20,000 entries a check reads), never below zero (journal audited through entry 25000: from ledger-reconcile's checkpoint at entry 5000, 20,000 entries read past it)\n",
    );
    const none = renderStatus({
      ...report,
      insuranceFund: {
        ...report.insuranceFund,
        sequence: 20_008,
        reconciled: false,
        verdict: 'not-audited',
        difference: 'not judged',
        audit: { checkpoint: null, read: 20_000, through: 20_000 },
      },
    });
    expect(none).toContain(
      'at entry 20008, NOT JUDGED (20,008 entries and no checkpoint stored by ledger-reconcile, more than the 20,000 entries a check reads)',
    );
    const unindexed = renderStatus({
      ...report,
      insuranceFund: {
        ...report.insuranceFund,
        reconciled: false,
        verdict: 'not-indexed',
        difference: 'not judged',
      },
    });
    expect(unindexed).toContain("NOT JUDGED (entries left out of the journal's index)");
  });

  // withdraw46-status-refused: status says whether a withdrawal is refused, in the refusal's own words; since
  // status46-journal-bounded the fund's line is judged by the same check, so they never disagree.
  it("says withdrawals are refused under the fund's line, in the refusal's words, and nothing when they go", () => {
    const reason =
      "admin/fund-not-indexed: the fund's journal holds entries its index by sequence does not list ...";
    const refused = renderStatus({
      ...report,
      insuranceFund: {
        ...report.insuranceFund,
        reconciled: false,
        verdict: 'not-indexed',
        difference: 'not judged',
        withdrawals: { refused: true, code: 'admin/fund-not-indexed', reason },
      },
    });
    expect(refused).toContain(
      `insurance fund  250,000.50 USD at entry 1, NOT JUDGED (entries left out of the journal's index), never below zero (journal audited through entry 1: from ledger-reconcile's checkpoint at entry 0, 1 entry read past it)\n  WITHDRAWALS REFUSED: ${reason}\n`,
    );
    expect(renderStatus(report)).not.toMatch(/withdrawals/i);
  });

  // review46-status-not-audited: a fund not audited up to its balance said "the journal audited 8 entries short of
  // it" (those past the 20,000 this read audited, which nothing keeps) above a refusal saying 20,008 short of it.
  it('counts a fund not judged from where its audit stands, as the withdrawal refused under it does', async () => {
    const ledger = new EmbeddedLedger();
    const fee = (n: number) =>
      ledger.apply({
        account: INSURANCE_ACCOUNT,
        idempotencyKey: `fee-${n}`,
        amount: usd('1'),
        kind: 'liquidation-fee',
        reference: `p${n}`,
        atMs: n,
        floor: 0n,
      });
    const total = 5_000 + WITHDRAWAL_AUDIT_MAX_ENTRIES + 8;
    for (let n = 1; n <= total; n++) {
      await fee(n);
      // ledger-reconcile's last run: its checkpoint at 5,000.
      if (n === 5_000)
        await reconcileAccount(ledger, INSURANCE_ACCOUNT, silentTelemetry, {
          from: 'checkpoint',
          saveCheckpoint: true,
        });
    }
    const { fund, check } = await fundStatus(ledger, 0);
    const refusal = withdrawalRefusal(check, 'USD')!;
    const text = renderStatus({
      ...report,
      insuranceFund: { ...fund, withdrawals: { refused: true, ...refusal } },
    });
    expect(refusal.reason).toContain(
      "audited through entry 5000 (ledger-reconcile's checkpoint), 20,008 entries short",
    );
    const line = text.split('\n').find((l) => l.startsWith('insurance fund'));
    expect(line).toContain(
      "at entry 25008, NOT JUDGED (ledger-reconcile's checkpoint 20,008 entries behind it, more than the 20,000 entries a check reads)",
    );
    expect(line).not.toContain('short');
  });
});

// ux45-overdue-none-judged (a drill of the runbook): with 13 open liquidations all younger than an hour, `overdue` said
// "0 overdue of 0 open liquidations old enough to judge", which read as none open.
describe('liquidations overdue: the open ones too young to judge', () => {
  const nowMs = Date.parse('2026-01-01T12:00:00.000Z');
  const queued = (id: string, atMs: number): LiquidationRecord =>
    liquidation({ id, positionId: id.split(':')[0]!, history: [{ atMs, state: 'QUEUED' }] });
  // The listing as both adapters answer it: the open ones started within the range.
  const listing = (records: LiquidationRecord[]) => ({
    async *openStartedBefore(before: number, _from?: unknown, startedFrom = Number.MIN_SAFE_INTEGER) {
      const within = (l: LiquidationRecord) =>
        l.history[0]!.atMs >= startedFrom && l.history[0]!.atMs < before;
      yield { records: records.filter(within), next: { shard: 0 } };
    },
  });
  const headline = async (records: LiquidationRecord[]) => {
    const report = await watchLiquidations(
      listing(records),
      DEFAULT_RISK_CONFIG,
      nowMs,
      silentTelemetry,
      100,
      {
        young: true,
      },
    );
    return overdueHeadline(report, report.sample.length, nowMs);
  };
  // 13 started 45 to 33 minutes ago: the oldest is judged in 15 minutes.
  const young = Array.from({ length: 13 }, (_, i) =>
    queued(`y${i}:0`, nowMs - OVERDUE_SLACK_MS + (15 + i) * 60_000),
  );

  it('says how many are open and when the first is judged, none judged yet', async () => {
    expect(await headline(young)).toBe(
      '0 overdue; 13 open, none old enough to judge yet (the first in 15 min)',
    );
  });

  it('counts them beside the ones judged, and says as before when none is open', async () => {
    const old = queued('o1:0', nowMs - 3 * OVERDUE_SLACK_MS);
    expect(await headline([old, ...young])).toBe(
      '1 overdue of 1 open liquidations old enough to judge; 13 more open, too young to judge (the first in 15 min)',
    );
    expect(await headline([])).toBe('0 overdue of 0 open liquidations old enough to judge');
  });

  it('ux45-young-read-bounded: counted up to a bound, says at least, and the first within the time', () => {
    const report = { judged: 0, overdue: 0, sample: [], resent: 0, complete: true };
    const young = { open: 1_000, more: true, firstJudgedAtMs: nowMs + 15 * 60_000 };
    expect(overdueHeadline({ ...report, young }, 0, nowMs)).toBe(
      '0 overdue; at least 1000 open, none old enough to judge yet (the first within 15 min)',
    );
    expect(overdueHeadline({ ...report, judged: 2, young }, 0, nowMs)).toBe(
      '0 overdue of 2 open liquidations old enough to judge; at least 1000 more open, too young to judge (the first within 15 min)',
    );
  });
});

// final46-resend-max-bound: past 100,000 overdue (a purged queue under a crash of a large book) the last line of
// `overdue --resend` advised `--max` with the whole count, which --max refuses above 100,000.
describe('overdue --resend: the line on the ones not resent', () => {
  it('advises a --max the option takes, and none when the run already used the most', () => {
    const again = (n: number) => `CMD --max ${n}`;
    expect(notResentLine(5, 2, 2, false, again)).toBe(
      '3 more overdue not resent (--max 2): run CMD --max 2 again once these have moved, or CMD --max 5',
    );
    expect(notResentLine(150_000, 100, 100, false, again)).toBe(
      '149900 more overdue not resent (--max 100): run CMD --max 100 again once these have moved, or CMD --max 100000',
    );
    expect(notResentLine(150_000, 100_000, 100_000, true, again)).toBe(
      '50000 more open not resent (--max 100000): run CMD --max 100000 again once these have moved',
    );
    expect(notResentLine(5, 5, 100, false, again)).toBeUndefined();
  });
});

// Found by running 40 markets in session 40: a market whose providers were seeded before its first tick has an item
// and no mark, and status called it "breaker closed" like a live one; symbols past 8 characters (1000PEPE-USDT)
// pushed their row out of the column.
describe('status rendering of many markets', () => {
  const market = (mark: string | null): StatusReport['markets'][string] => ({
    lastSequence: mark === null ? null : 7,
    nextSequence: mark === null ? 1_767_225_600_000 : 8,
    mark,
    at: mark === null ? null : '2026-01-01T00:00:00.000Z',
    markAgeSeconds: mark === null ? null : 3,
    maxMarkAgeSeconds: 120,
    markStale: mark === null ? null : false,
    pendingSequence: null,
    breaker: null,
    heldJump: null,
  });
  const report = {
    target: { kind: 'local', stage: 'ops40', region: 'us-east-1', endpoint: null },
    at: '2026-01-01T00:00:00.000Z',
    positions: {},
    liquidations: {
      byState: {},
      total: 0,
      nonTerminal: 0,
      owingAdlRounds: 0,
      losses: {
        fees: '0',
        shortfall: '0',
        fundPaid: '0',
        adlCovered: '0',
        uncoveredBadDebt: '0',
        unreadable: 0,
      },
    },
    auctions: { byState: {}, open: 0 },
    queues: {},
    dlqMessages: 0,
    drained: true,
    stranded: 0,
    settled: true,
    insuranceFund: {
      account: 'insurance-fund',
      balance: '0',
      sequence: 0,
      reconciled: true,
      verdict: 'reconciled',
      difference: '0',
      audit: { checkpoint: null, read: 0, through: 0 },
      minBalance: '0',
      problems: [],
      lastEntries: [],
      withdrawals: { refused: false, code: null, reason: null },
    },
    markets: { '1000PEPE-USDT': market('0.0100933'), 'AAVE-USD': market(null), 'ETH-USD': market('2965') },
    breakersOpen: 0,
    counted: { at: '2026-01-01T00:00:00.000Z', ageSeconds: 0 },
  } as unknown as StatusReport;
  it('says a market has no tick yet, and keeps every row in one column', () => {
    const rows = renderStatus(report)
      .split('\n')
      .filter((line) => line.startsWith('market '));
    expect(rows).toHaveLength(3);
    expect(rows[1]).toContain('AAVE-USD      mark - (sequence - at -), no tick accepted yet');
    expect(rows[1]).not.toContain('breaker closed');
    expect(rows[2]).toContain('breaker closed');
    expect(new Set(rows.map((row) => row.indexOf(' mark ')))).toEqual(new Set([20]));
  });
});

// Noted in session 42: `fund` printed 250000.5 where `status` prints the same balance as 250,000.50.
describe('fund rendering', () => {
  const entry = {
    sequence: 3,
    atMs: Date.parse('2026-01-01T00:00:00.000Z'),
    actor: 'arn:aws:sts::1:user/op',
  };
  it('shows amounts as status does, and never rounds one away', () => {
    const fund = renderFund('deposit', usd('1000.5'), 'k1', 'USD', false, entry, usd('250000.5'));
    expect(fund).toBe(
      'fund deposit 1,000.50 USD: balance 250,000.50 USD (journal entry 3, key k1, by arn:aws:sts::1:user/op)\n',
    );
    // The same figure as status's insurance fund line.
    expect(fund).toContain(`balance ${formatQuoteGrouped(usd('250000.5'))} USD`);
    expect(renderFund('withdraw', usd('1234567'), 'k2', 'USDT', true, entry, usd('0.004'))).toBe(
      'fund withdraw 1,234,567.00 USDT under key k2 was already applied (journal entry 3, 2026-01-01T00:00:00.000Z): ' +
        'nothing moved now; balance 0.004 USDT\n',
    );
    const cases: [string, string][] = [
      ['0.004', '0.004'],
      ['1234.567891', '1,234.567891'],
      ['1234.56', '1,234.56'],
      ['-1000.000001', '-1,000.000001'],
      ['-0.5', '-0.50'],
    ];
    for (const [value, text] of cases) expect(formatQuoteGrouped(usd(value))).toBe(text);
  });
});

describe('seed files: what the admin service would refuse, before any write', () => {
  const header = 'id,traderId,symbol,side,size,entryPrice,collateral';
  const markets = new EmbeddedMarketRepository();
  const open = (rows: string) => positionsFromFile(`${header}\n${rows}`, 'csv', 'f.csv');
  it('refuses a position liquidatable at its market mark, naming it', async () => {
    await markets.acceptTick(
      'ETH-USD',
      { sequence: 1, markPrice: parsePrice('1000'), timestampMs: 1 },
      undefined,
      false,
    );
    // Healthy at its 1500 entry, liquidatable at the market's 1000.
    const rows = open('a,t,ETH-USD,LONG,1,1500,600\nb,t,ETH-USD,LONG,1,1500,200');
    await expect(refuseUnopenable(rows, DEFAULT_RISK_CONFIG, markets)).rejects.toThrow(
      /seed\/bad-row: b: admin\/liquidatable-at-open/,
    );
    await expect(refuseUnopenable(rows.slice(0, 1), DEFAULT_RISK_CONFIG, markets)).resolves.toBeUndefined();
  });
  it('refuses a market the configuration does not have, and an id listed twice', async () => {
    await expect(
      refuseUnopenable(open('a,t,DOGE-USD,LONG,1,1,1'), DEFAULT_RISK_CONFIG, markets),
    ).rejects.toThrow(/seed\/bad-row: a: .*DOGE-USD/);
    const twice = open('a,t,BTC-USD,LONG,1,60000,6000\na,t,BTC-USD,SHORT,1,60000,6000');
    await expect(refuseUnopenable(twice, DEFAULT_RISK_CONFIG, markets)).rejects.toThrow(
      /seed\/duplicate-id: a is listed twice/,
    );
  });
});

describe("sequences these commands sent (a replay's ticks may still be queued)", () => {
  // Found by running 40 markets in session 40: eight replays at once (one process per market) wrote the record
  // through one temporary file; a replay whose rename found it renamed by another died mid-crash ("internal error:
  // ENOENT ... rename sequences.json.tmp"), and a write from a record read before another's lost that market.
  it('keeps every market of replays run at once, in processes of their own, and none fails', async () => {
    const dir = tempDir('backstop-sequences-race-');
    const module = path.join(repoRoot, 'shared/local/sent-sequences.ts');
    const script = `import { recordSentSequence } from ${JSON.stringify(module)};
      const [dir, key] = process.argv.slice(-2);
      for (let i = 1; i <= 200; i++) recordSentSequence(dir, key, i);`;
    const markets = Array.from({ length: 6 }, (_, i) => `local|x|bus|M${i}-USD`);
    const { spawn } = await import('node:child_process');
    const codes = await Promise.all(
      markets.map(
        (key) =>
          new Promise<{ code: number | null; stderr: string }>((resolve) => {
            const child = spawn(
              process.execPath,
              ['--import', 'tsx', '--input-type=module', '-e', script, dir, key],
              {
                cwd: repoRoot,
              },
            );
            let stderr = '';
            child.stderr.on('data', (d: Buffer) => {
              stderr += d.toString();
            });
            child.on('close', (code) => resolve({ code, stderr }));
          }),
      ),
    );
    for (const run of codes) expect(run, run.stderr).toMatchObject({ code: 0 });
    for (const key of markets) expect(lastSentSequence(dir, key), key).toBe(200);
  }, 60_000);

  it('a claim past a far-off record takes its place: an inject claiming meanwhile never gets the same sequence', () => {
    // Found by a review of session 43 (walk43b-sequence-claim): a recorded sequence too far above the market's to be
    // continued (the market rebased down onto its feed's numbering) kept its place, so a replay's claim was never
    // recorded and an inject claiming during it took the replay's sequence again.
    const dir = tempDir('backstop-sequences-far-');
    const key = 'local|x|bus|ETH-USD';
    recordSentSequence(dir, key, 5_000_000);
    expect(claimSequences(dir, key, 101, 2, 1000)).toBe(101); // the replay's first batch: 101, 102
    // The inject reads the market before the replay's ticks are handled: it still shows 100.
    expect(claimSequences(dir, key, 101, 1, 1000)).toBe(103);
    expect(claimSequences(dir, key, 103, 2, 1000)).toBe(104); // the replay numbers on past it
    expect(lastSentSequence(dir, key)).toBe(105);
  });

  it("continues a record only while its next tick is no jump from the market's last, as margin-check measures (seq43-jump-bound)", () => {
    const dir = tempDir('backstop-sequences-bound-');
    const key = 'local|x|bus|ETH-USD';
    // The market's last is 100 (next 101): margin-check takes a tick up to 1000 above it, 1100, and holds 1101.
    expect(withinSequenceJump(1100, 100, 1000)).toBe(true);
    expect(withinSequenceJump(1101, 100, 1000)).toBe(false);
    recordSentSequence(dir, key, 1099);
    expect(continuesSent(1099, 101, 1000)).toBe(true);
    expect(claimSequences(dir, key, 101, 1, 1000)).toBe(1100);
    // The record is at the bound now: continued, its next tick (1101) would be held as tick/sequence-jump.
    expect(continuesSent(1100, 101, 1000)).toBe(false);
    expect(claimSequences(dir, key, 101, 1, 1000)).toBe(101);
    expect(lastSentSequence(dir, key)).toBe(101);
  });

  it("releases only its own lock: a writer paused past the takeover leaves the new owner's lock (seq43-lock-owner)", () => {
    const lock = path.join(tempDir('backstop-sequences-lock-'), `${SEQUENCES_FILE}.lock`);
    const paused = acquireLock(lock);
    // Another writer took the lock over as held past the wait (the takeover deletes it, then takes it).
    unlinkSync(lock);
    const owner = acquireLock(lock);
    paused(); // before: deleted the owner's lock, letting a third writer in beside it
    expect(existsSync(lock)).toBe(true);
    owner();
    expect(existsSync(lock)).toBe(false);
  });

  it('keeps the highest per key, survives a corrupt record as no hint, and lives in the state folder', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'backstop-sequences-'));
    try {
      expect(lastSentSequence(dir, 'local|x|bus|ETH-USD')).toBeUndefined();
      recordSentSequence(dir, 'local|x|bus|ETH-USD', 1440);
      recordSentSequence(dir, 'local|x|bus|ETH-USD', 12); // an older one changes nothing
      recordSentSequence(dir, 'local|x|bus|BTC-USD', 7);
      expect(lastSentSequence(dir, 'local|x|bus|ETH-USD')).toBe(1440);
      expect(lastSentSequence(dir, 'local|x|bus|BTC-USD')).toBe(7);
      writeFileSync(path.join(dir, SEQUENCES_FILE), '{not json');
      expect(lastSentSequence(dir, 'local|x|bus|ETH-USD')).toBeUndefined();
      recordSentSequence(dir, 'local|x|bus|ETH-USD', 3);
      expect(lastSentSequence(dir, 'local|x|bus|ETH-USD')).toBe(3);
      // Found by an audit in session 37: a feed resumed from 0 records -1, which made the whole record unreadable
      // (every market's hint lost); one entry that does not read loses only itself.
      recordSentSequence(dir, 'local|x|bus|BTC-USD', 5000);
      resetSentSequence(dir, 'local|x|bus|ETH-USD', -1);
      expect(lastSentSequence(dir, 'local|x|bus|ETH-USD')).toBe(-1);
      expect(lastSentSequence(dir, 'local|x|bus|BTC-USD')).toBe(5000);
      writeFileSync(path.join(dir, SEQUENCES_FILE), '{"a": 1.5, "b": 4}');
      expect(lastSentSequence(dir, 'a')).toBeUndefined();
      expect(lastSentSequence(dir, 'b')).toBe(4);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ux46-advice-target: on a deployed stack the advice named commands without the target's flags, so that copied as printed
// they ran against the default target, local (failing, or acting on a running local stack).
describe('advice names commands for the target that printed them', () => {
  const local = { kind: 'local', stage: 'local', region: 'us-east-1', endpoint: 'http://127.0.0.1:5000' };
  const aws = { kind: 'aws', stage: 'prod', region: 'eu-west-1' };
  const localstack = {
    kind: 'localstack',
    stage: 'dev',
    region: 'us-east-1',
    endpoint: 'http://localhost:4566',
  };
  it('renders the target flags: none for the default local target, the deployed target and stage always', () => {
    expect(targetFlags(local)).toBe('');
    expect(targetFlags({ ...local, given: { stage: 'drill', endpoint: 'http://127.0.0.1:5001' } })).toBe(
      ' --endpoint http://127.0.0.1:5001 --stage drill',
    );
    // ops47-advice-region: a deployed target's region always, given or resolved (AWS_REGION, the profile's): a shell
    // with another default ran the copy in another region.
    expect(targetFlags(aws)).toBe(' --target aws --stage prod --region eu-west-1');
    expect(targetFlags({ ...aws, given: { region: 'eu-west-1' } })).toBe(
      ' --target aws --stage prod --region eu-west-1',
    );
    expect(targetFlags(localstack)).toBe(
      ' --target localstack --stage dev --endpoint http://localhost:4566 --region us-east-1',
    );
    expect(backstopCommand(aws, 'dlq list')).toBe(
      'backstop dlq list --target aws --stage prod --region eu-west-1',
    );
    expect(shellWord("it's here")).toBe("'it'\\''s here'");
  });
  it('gives every command of the stranded advice, a refusal and the status the target flags', () => {
    expect(strandedAdvice(1, local)).toBe(
      '1 in the dead-letter queues (backstop dlq list says why, backstop dlq redrive sends them back once the cause is fixed); then, for those no dead letter held, backstop liquidations overdue --all --resend (not before: it sends the dead-lettered ones a message too, to fail again)',
    );
    expect(strandedAdvice(1, aws)).toBe(
      '1 in the dead-letter queues (backstop dlq list --target aws --stage prod --region eu-west-1 says why, backstop dlq redrive --target aws --stage prod --region eu-west-1 sends them back once the cause is fixed); then, for those no dead letter held, backstop liquidations overdue --all --resend --config risk.json --target aws --stage prod --region eu-west-1 (not before: it sends the dead-lettered ones a message too, to fail again)',
    );
    expect(strandedAdvice(0, localstack)).toBe(
      'no dead letter holds them (a purged queue, an expired dead letter): backstop liquidations overdue --all --resend --config risk.json --target localstack --stage dev --endpoint http://localhost:4566 --region us-east-1 sends each a message',
    );
    expect(withTargetFlags('run `backstop fund index-journal` first', aws)).toBe(
      'run `backstop fund index-journal --target aws --stage prod --region eu-west-1` first',
    );
    expect(
      withTargetFlags(
        '`backstop feed resume --symbol ETH-USD --from-sequence 1` drops it',
        localstack,
        ' --config risk.json',
      ),
    ).toBe(
      '`backstop feed resume --symbol ETH-USD --from-sequence 1 --config risk.json --target localstack --stage dev --endpoint http://localhost:4566 --region us-east-1` drops it',
    );
  });
  // ops47-reconcile-advice: ledger-reconcile's line named `backstop fund index-journal` bare, run as pasted against
  // the default target, local; the function names its own stack from its environment.
  it("names a function's command for its own stack, from the function's environment", () => {
    const problem = 'run `backstop fund index-journal` (a re-run changes nothing)';
    const lambda = { POWERTOOLS_SERVICE_NAME: metricsService('prod'), AWS_REGION: 'eu-west-1' };
    expect(withTargetFlags(problem, adviceTargetFromEnv(lambda)!)).toBe(
      'run `backstop fund index-journal --target aws --stage prod --region eu-west-1` (a re-run changes nothing)',
    );
    // A stack LocalStack runs: its endpoint, inside LocalStack's network, left to the operator's shell.
    expect(
      targetFlags(
        adviceTargetFromEnv({ ...lambda, AWS_ENDPOINT_URL: 'http://localhost.localstack.cloud:4566' })!,
      ),
    ).toBe(' --target localstack --stage prod --region eu-west-1');
    // The local runner's functions: a local stage, as local up runs it.
    expect(
      targetFlags(
        adviceTargetFromEnv({
          ...lambda,
          AWS_ENDPOINT_URL: 'http://127.0.0.1:5000',
          [LOCAL_RUNNER_ENV]: '1',
        })!,
      ),
    ).toBe(' --stage prod --region eu-west-1');
    // No stage named (code run outside a stage): none guessed.
    expect(
      adviceTargetFromEnv({ POWERTOOLS_SERVICE_NAME: 'backstop', AWS_REGION: 'eu-west-1' }),
    ).toBeUndefined();
    expect(adviceTargetFromEnv({ AWS_REGION: 'eu-west-1' })).toBeUndefined();
    expect(adviceTargetFromEnv({ POWERTOOLS_SERVICE_NAME: metricsService('prod') })).toBeUndefined();
  });
});

// more48c-local-up-context-shards: local up --config cdk.json ran the pair's backstop:riskConfig and not its
// backstop:positionIndexShards: a local stack of the deployed one's rules on one shard a market.
describe('local up --config cdk.json: the context names positionIndexShards', () => {
  const pair = (context: Record<string, unknown>): string => {
    const dir = tempDir('backstop-up-shards-');
    writeFileSync(path.join(dir, 'cdk.json'), JSON.stringify({ app: 'x', context: {} }));
    writeFileSync(path.join(dir, 'cdk.context.json'), JSON.stringify(context));
    return path.join(dir, 'cdk.json');
  };

  it("runs the context's shards, takes a flag that says the same, refuses one that differs", () => {
    const named = readRiskConfig(pair({ 'backstop:positionIndexShards': '{"ETH-USD": 2}' }));
    expect(upIndexShards(undefined, named)).toEqual({ 'ETH-USD': 2 });
    // The same counts in another form, or another market at its one shard: the same layout.
    expect(upIndexShards('{"ETH-USD": {"read": 2, "write": 2}, "BTC-USD": 1}', named)).toEqual({
      'ETH-USD': 2,
    });
    expect(() => upIndexShards('{"ETH-USD": 4}', named)).toThrow(UsageError);
    expect(() => upIndexShards('{"ETH-USD": {"read": 2, "write": 1}}', named)).toThrow(
      /^--index-shards \{"ETH-USD":\{"read":2,"write":1\}\} differs from backstop:positionIndexShards \{"ETH-USD":2\} of --config .*cdk\.json \(with .*cdk\.context\.json\) for ETH-USD: /,
    );
    // A context without the key, or a risk configuration's own file: the flag alone, as before.
    const unnamed = readRiskConfig(pair({}));
    expect(upIndexShards(undefined, unnamed)).toBeUndefined();
    expect(upIndexShards('{"ETH-USD": 4}', unnamed)).toEqual({ 'ETH-USD': 4 });
    const file = path.join(tempDir('backstop-up-risk-'), 'risk.json');
    writeFileSync(file, JSON.stringify(DEFAULT_RISK_CONFIG_INPUT));
    expect(upIndexShards('{"ETH-USD": 4}', readRiskConfig(file))).toEqual({ 'ETH-USD': 4 });
    expect(upIndexShards(undefined, readRiskConfig(undefined))).toBeUndefined();
  });
});

// venue47-local-key: `backstop local up` never set VENUE_KEY_ID, so an exchange adapter run on the local stack (against
// its stub or testnet) failed its key's first read, and every order with it; and a venue that reads a key is refused
// without one, as synth refuses it without backstop:venueSecret (venue47-secret-required).
describe('local up --venue-key', () => {
  it("reads the key's file, its last line break dropped, and requires one of a venue that reads a key", () => {
    const dir = tempDir('backstop-venue-key-');
    const file = path.join(dir, 'key.json');
    writeFileSync(file, '{"apiKey":"k","apiSecret":"s"}\n');
    expect(venueKeyOption(file, 'mark-following')).toBe('{"apiKey":"k","apiSecret":"s"}');
    expect(venueKeyOption(file, 'my-exchange')).toBe('{"apiKey":"k","apiSecret":"s"}');
    // The simulated venue reads none; an exchange adapter cannot start without it.
    expect(venueKeyOption(undefined, 'mark-following')).toBeUndefined();
    expect(() => venueKeyOption(undefined, 'my-exchange')).toThrow(
      /^--venue-key: the venue my-exchange \(VENUE, shared\/adapters\/venue\/index\.ts\) reads its API key from Secrets Manager: give it with --venue-key FILE/,
    );
    expect(() => venueKeyOption(undefined, 'my-exchange')).toThrow(UsageError);
    writeFileSync(file, '\n');
    expect(() => venueKeyOption(file, 'my-exchange')).toThrow(/--venue-key: .*key\.json is empty/);
    expect(() => venueKeyOption(path.join(dir, 'none.json'), 'my-exchange')).toThrow(
      /--venue-key: cannot read .*none\.json \(ENOENT\)/,
    );
  });
});
