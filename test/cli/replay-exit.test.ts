import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createAwsAdapters } from '../../shared/adapters/aws/index.ts';
import { liquidationItem } from '../../shared/adapters/aws/liquidations.ts';
import { systemClock } from '../../shared/adapters/embedded/clock.ts';
import { parsePrice } from '../../shared/domain/units.ts';
import type { LiquidationRecord } from '../../shared/ports/index.ts';
import { cli, cliWith, useOperatorEmulator } from '../support/cli.ts';
import { answerPutEvents, namedError, noResultFor, refusedOnce } from '../support/client-sends.ts';

const emulator = useOperatorEmulator('replay-exit');

/** A price file `<name>.csv` in the emulator's folder: `closes`, a minute apart from 2020-03-12T08:00:00Z. */
function pricesFile(name: string, ...closes: number[]): string {
  const file = path.join(emulator.dir, `${name}.csv`);
  const rows = closes.map((close, i) => `${1_584_000_000_000 + i * 60_000},${close}`);
  writeFileSync(file, `timestamp,close\n${rows.join('\n')}\n`);
  return file;
}

afterEach(() => {
  vi.restoreAllMocks();
});

// review47-replay-unknown-exit: feed47-publish-error-fates moved an entry answered with neither an id nor a code out
// of `rejected` into `unknown`, and replay's exit code counted `rejected` alone: such a tick, perhaps never on the
// bus, ended the run with exit 0 (it was 1). cli50-replay-unknown-fate: exit 1 said it as a failure, where inject tick
// says its own with exit 4 and what to do: replay says the same now.
describe('backstop replay: a tick of unknown fate', () => {
  it('ends with exit 4 and replay/unknown-fate, as inject tick does, naming the tick and what to do', async () => {
    const { at } = await emulator.newStage('unknown');
    // One price: nothing runs margin-check here, and a replay waits for the market to handle a tick before the next.
    const file = pricesFile('one', 150);
    // Every PutEvents answered with a result that carries neither an EventId nor an ErrorCode.
    answerPutEvents(noResultFor);
    const run = await cli('replay', file, '--symbol', 'ETH-USD', '--speed', 'max', '--json', ...at);
    const summary = JSON.parse(run.stdout);
    expect(summary).toMatchObject({ sent: 1, accepted: 0, rejected: 0, unknownFate: 1 });
    expect(run.code, run.stderr).toBe(4);
    // The tick by its sequence, how to find out and how to send it again: inject tick's words, its price and sequence.
    const s = summary.firstSequence;
    expect(run.stderr).toContain(
      `backstop: replay/unknown-fate: ETH-USD: 1 tick of unknown fate, on the bus or not: sequence ${s} (NoResult). ` +
        `\`backstop status${at.map((w) => ` ${w}`).join('')}\` shows ETH-USD's last sequence and any print its breaker ` +
        `holds: ${s} there is this tick, on the bus; sending it again (\`backstop inject tick --symbol ETH-USD --price 150 ` +
        `--sequence ${s}${at.map((w) => ` ${w}`).join('')}\`) is safe (margin-check takes a sequence once)\n`,
    );
    // feed48-unknown-sequences: by the sequence each tick carried, not by the code alone (before: no unknownTicks,
    // and the text listed "NoResult" once a tick).
    expect(summary.unknownTicks).toEqual([
      { sequence: summary.firstSequence, code: 'NoResult', message: 'no result for the entry' },
    ]);
    const text = await cli('replay', file, '--symbol', 'ETH-USD', '--speed', 'max', ...at);
    // A market with no tick numbers by the clock: the run's sequence, as its first line says.
    const sequence = /\(sequences (\d+)\.\./.exec(text.stdout)?.[1];
    expect(text.stdout).toContain(
      `\n  1 tick of unknown fate, on the bus or not: sequence ${sequence} (NoResult)\n`,
    );
    expect(text.code).toBe(4);
    expect(text.stderr).toContain(`backstop: replay/unknown-fate: ETH-USD: 1 tick of unknown fate`);
    // Listed where the exit codes are.
    expect((await cli('replay', '--help')).stdout).toMatch(/Exit 4 when ticks are of unknown fate/);
    expect((await cli('--help')).stdout).toMatch(/replay \(4\)/);
  });
});

// cli50b-held-unknown-fate, cli50b-replay-last-sent: what replay/unknown-fate says of a tick past which other ticks were
// numbered, and its exit.
describe('backstop replay: a tick of unknown fate followed by others', () => {
  /** PutEvents answered by `answer` for the n-th call (undefined: sent to moto). */
  const putEvents = (answer: (call: number) => 'no-result' | 'no-credentials' | undefined) =>
    answerPutEvents((command, call, forward) => {
      const said = answer(call);
      if (said === 'no-result') return noResultFor(command);
      if (said === 'no-credentials')
        throw namedError('CredentialsProviderError', 'Could not load credentials from any providers');
      return forward();
    });

  it('a held tick of unknown fate, the next held tick taken: its price got through, said so, exit 0', async () => {
    const { names, at } = await emulator.newStage('held-unknown');
    const file = pricesFile('one-held', 150);
    const pending: LiquidationRecord = {
      id: 'p1:0',
      positionId: 'p1',
      symbol: 'ETH-USD',
      side: 'LONG',
      state: 'QUEUED',
      tickKey: 'ETH-USD#1',
      triggerMark: parsePrice('150'),
      remainingSize: 100_000_000n,
      marketFills: [],
      history: [{ atMs: Date.now(), state: 'QUEUED' }],
      version: 0,
    };
    const put = (record: LiquidationRecord) =>
      emulator.clients.dynamo.send(
        new PutItemCommand({ TableName: names.tables.liquidations, Item: liquidationItem(record) }),
      );
    await put(pending);
    // The file's tick (call 1) taken; the first held tick's five calls answered with no result for it; the rest taken.
    putEvents((call) => (call >= 2 && call <= 6 ? 'no-result' : undefined));
    let settling: Promise<unknown> | undefined;
    const { code, stdout, stderr } = await cliWith(
      {
        // A held tick taken: the work settles, the hold's next look ends it.
        onStderrLine: (line) => {
          if (line.includes(' sent again as sequence '))
            settling ??= put({ ...pending, state: 'CANCELLED', version: 1 });
          return settling;
        },
      },
      'replay',
      file,
      '--symbol',
      'ETH-USD',
      '--speed',
      'max',
      '--hold',
      '--hold-every',
      '1',
      '--json',
      ...at,
    );
    const summary = JSON.parse(stdout);
    const s = summary.firstSequence;
    // Held ticks until a look finds the work settled: each after the first taken, the last of them too.
    expect(summary).toMatchObject({ sent: 1, unknownFate: 1, lastSequence: s + summary.held });
    expect(summary.held).toBeGreaterThanOrEqual(2);
    expect(summary.unknownTicks).toEqual([
      { sequence: s + 1, code: 'NoResult', message: 'no result for the entry' },
    ]);
    // Before: "It was followed by later ticks of the replay ... prices of the file the market did not see", exit 4; then
    // "the market's mark missed nothing", more than the bus told (review50-cli2-held-claim).
    const taken = summary.lastSequence;
    expect(stderr).toContain(
      `backstop: replay/unknown-fate: ETH-USD: 1 tick of unknown fate, on the bus or not: sequence ${s + 1} (NoResult). ` +
        `Sequence ${s + 1} sent the file's last price, which the bus took after it in held tick ${taken}: nothing to ` +
        `resend, it is behind ${taken}; if not on the bus, it left the market without that print until ${taken}, and ` +
        `the bus taking ${taken} is not margin-check taking it (\`backstop status${at.map((w) => ` ${w}`).join('')}\` ` +
        "shows ETH-USD's last sequence)\n",
    );
    expect(code, stderr).toBe(0);
  });

  it('a tick of unknown fate, the next one not sent: the last that may be on the bus, resent as inject does', async () => {
    const { at } = await emulator.newStage('unknown-unsent');
    const file = pricesFile('two-unsent', 150, 151);
    // The first tick's five calls answered with no result for it; the second's finds no credentials: no request.
    putEvents((call) => (call <= 5 ? 'no-result' : 'no-credentials'));
    const run = await cli('replay', file, '--symbol', 'ETH-USD', '--speed', 'max', '--json', ...at);
    const summary = JSON.parse(run.stdout);
    const s = summary.firstSequence;
    expect(summary).toMatchObject({ sent: 1, unknownFate: 1, notSent: 1, lastSequence: s + 1 });
    // Before: "It was followed by later ticks of the replay ...": the later tick never left.
    const flags = at.map((w) => ` ${w}`).join('');
    expect(run.stderr).toContain(
      `backstop: replay/unknown-fate: ETH-USD: 1 tick of unknown fate, on the bus or not: sequence ${s} (NoResult). ` +
        `\`backstop status${flags}\` shows ETH-USD's last sequence and any print its breaker holds: ${s} there is this ` +
        `tick, on the bus; sending it again (\`backstop inject tick --symbol ETH-USD --price 150 --sequence ${s}${flags}\`) ` +
        'is safe (margin-check takes a sequence once)\n',
    );
    // The call that made no request ended it.
    expect(run.code).toBe(1);
  });
});

// feed48-replay-outcome-on-error: a PutEvents call that failed without an answer (the network, a timeout, a 5xx once
// the SDK's retries were spent) threw out of the replay: the operator saw the error and not what was put before it, nor
// which tick's fate was unknown.
describe('backstop replay: a PutEvents call that fails without an answer', () => {
  it('prints the outcome so far, the tick of unknown fate by its sequence, and ends with exit 1', async () => {
    const { names, at } = await emulator.newStage('no-answer');
    const file = pricesFile('three-no-answer', 150, 151, 152);
    const { markets } = createAwsAdapters({ clients: emulator.clients, names, clock: systemClock });
    let calls = 0;
    answerPutEvents(async (command, call) => {
      calls = call;
      if (call === 1) {
        // Put, and handled as margin-check would (nothing runs it here): the replay sends the next.
        const detail = JSON.parse(command.input.Entries![0]!.Detail!);
        await markets.acceptTick(
          'ETH-USD',
          {
            sequence: detail.sequence,
            markPrice: parsePrice(detail.markPrice),
            timestampMs: detail.timestamp,
          },
          undefined,
          false,
        );
        return { FailedEntryCount: 0, Entries: [{ EventId: 'e1' }], $metadata: {} };
      }
      // As the SDK throws once its attempts are spent on a connection that never answered.
      throw namedError('TimeoutError', 'Connection timed out after 30000 ms');
    });
    const run = await cli('replay', file, '--symbol', 'ETH-USD', '--speed', 'max', '--json', ...at);
    // Before: nothing on stdout, the error alone on stderr.
    const summary = JSON.parse(run.stdout);
    const said =
      'events/put-failed: a PutEvents call failed after 1 attempt (TimeoutError: Connection timed out after 30000 ms): ' +
      '1 entry may be on the bus or not, 0 not sent; 0 put and 0 refused before it';
    expect(summary).toMatchObject({
      total: 3,
      sent: 2,
      accepted: 1,
      rejected: 0,
      unknownFate: 1,
      unknownTicks: [
        {
          sequence: summary.firstSequence + 1,
          code: 'TimeoutError',
          message: 'Connection timed out after 30000 ms',
        },
      ],
      // feed48b-put-failed-line: said as the publisher says it, how often the call was sent with its error; before,
      // the error alone ('the target did not answer in time: ...').
      failed: said,
    });
    expect(calls).toBe(2);
    expect(run.stderr).toContain(
      `backstop: replay/failed: ${said}; the replay stopped there, its outcome so far above\n`,
    );
    // Its tick of unknown fate said as at the end, what to do included; the failure's exit kept (cli50-replay-unknown-fate).
    expect(run.stderr).toContain(
      `backstop: replay/unknown-fate: ETH-USD: 1 tick of unknown fate, on the bus or not: sequence ${summary.firstSequence + 1} (TimeoutError). `,
    );
    expect(run.code).toBe(1);
  });
});

// more48c-replay-credentials-advice: feed48b-put-failed-line said a PutEntriesError by the publisher's message alone,
// so a call failed for want of credentials lost the advice environmentFailure gave it (configure them).
describe('backstop replay: a PutEvents call the SDK finds no credentials for', () => {
  it("says the publisher's message and the credentials advice", async () => {
    const { at } = await emulator.newStage('no-creds');
    const file = pricesFile('one-no-creds', 150);
    // As the SDK's SSO provider throws once the session expired (no answer: nothing was sent).
    answerPutEvents(() => {
      throw namedError(
        'CredentialsProviderError',
        'The SSO session associated with this profile has expired. To refresh this SSO session run aws sso login with the corresponding profile.',
      );
    });
    const run = await cli('replay', file, '--symbol', 'ETH-USD', '--speed', 'max', '--json', ...at);
    const expired =
      'CredentialsProviderError: The SSO session associated with this profile has expired. To refresh this SSO ' +
      'session run aws sso login with the corresponding profile.';
    // feed49-put-not-sent: before, "1 entry may be on the bus or not", the tick counted sent and of unknown fate.
    const said =
      "events/not-sent: a PutEvents call was NOT sent, no request left: the SDK could not resolve the caller's " +
      `credentials (${expired}): 1 entry not sent, none on the bus; 0 put and 0 refused before it; ` +
      'no AWS credentials (environment, profile, SSO or instance role): configure them or use --target local';
    const summary = JSON.parse(run.stdout);
    expect(summary).toMatchObject({ sent: 0, accepted: 0, failed: said, notSent: 1 });
    expect(summary.notSentTicks).toEqual([
      {
        sequence: summary.firstSequence,
        reason: `no request left: the SDK could not resolve the caller's credentials (${expired})`,
      },
    ]);
    expect(summary.unknownFate).toBeUndefined();
    expect(run.stderr).toContain(`backstop: replay/failed: ${said}; the replay stopped there`);
    expect(run.code).toBe(1);
    const text = await cli('replay', file, '--symbol', 'ETH-USD', '--speed', 'max', ...at);
    expect(text.stdout).toMatch(/^replayed 0 of 1 prices of one-no-creds\.csv/);
    expect(text.stdout).toContain('\n  1 tick NOT sent, not on the bus: sequence ');
    expect(text.stdout).not.toContain('unknown fate');
  });

  it('inject tick says the tick was NOT sent, and why', async () => {
    const { at } = await emulator.newStage('no-creds-inject');
    answerPutEvents(() => {
      throw namedError('CredentialsProviderError', 'Could not load credentials from any providers');
    });
    const run = await cli('inject', 'tick', '--symbol', 'ETH-USD', '--price', '150', '--wait', '0', ...at);
    // Before: the credentials advice alone, nothing said of the tick.
    expect(run.stderr).toContain(
      "events/not-sent: a PutEvents call was NOT sent, no request left: the SDK could not resolve the caller's " +
        'credentials (CredentialsProviderError: Could not load credentials from any providers): 1 entry not sent, ' +
        'none on the bus; 0 put and 0 refused before it; no AWS credentials',
    );
    expect(run.stderr).not.toContain('may be on the bus');
    expect(run.code).not.toBe(0);
  });
});

// feed49b-inject-unknown-fate: `inject tick` said a PutEvents call that got no answer by its cause alone ("the target
// did not answer in time: ..."), exit 1, nothing of its tick, which may be on the bus.
describe('backstop inject tick: a PutEvents call that gets no answer', () => {
  it('says the tick is of unknown fate, on the bus or not, how to find out, and exits 4', async () => {
    const { at } = await emulator.newStage('no-answer-inject');
    // As the SDK throws once its attempts are spent on a connection that never answered.
    answerPutEvents(() => {
      throw namedError('TimeoutError', 'Connection timed out after 30000 ms');
    });
    const run = await cli(
      'inject',
      'tick',
      '--symbol',
      'ETH-USD',
      '--price',
      '150',
      '--sequence',
      '77',
      ...at,
    );
    // Before: "backstop: the target did not answer in time: Connection timed out after 30000 ms", exit 1.
    expect(run.stderr).toContain(
      'backstop: inject/unknown-fate: ETH-USD tick 77 is of unknown fate, on the bus or not: its PutEvents call got ' +
        'no answer (TimeoutError: Connection timed out after 30000 ms). `backstop status',
    );
    expect(run.stderr).toContain(
      "` shows ETH-USD's last sequence and any print its breaker holds: 77 there is this tick, on the bus; sending " +
        'it again with --sequence 77 is safe (margin-check takes a sequence once)\n',
    );
    expect(run.stderr).not.toContain('the target did not answer in time');
    const printed = JSON.parse(run.stdout);
    expect(printed.eventId).toBeNull();
    expect(printed.entry.Detail.sequence).toBe(77);
    expect(printed.fate).toEqual({
      outcome: 'unknown',
      code: 'TimeoutError',
      message: 'Connection timed out after 30000 ms',
    });
    expect(run.code).toBe(4);
  });
});

// feed49c-inject-no-result: `inject tick` whose PutEvents answers held no result for its tick (neither an EventId nor an
// ErrorCode, through the publisher's attempts) went on to wait for the tick's fate and, at the end of its wait, asked
// whether the stack was running, nothing said of the bus's answer.
describe('backstop inject tick: PutEvents answers that say nothing of the tick', () => {
  const answering = (entries: () => object[]) =>
    answerPutEvents(() => ({ FailedEntryCount: 0, Entries: entries(), $metadata: {} }));
  const inject = (at: string[]) =>
    cli('inject', 'tick', '--symbol', 'ETH-USD', '--price', '150', '--sequence', '78', '--wait', '1', ...at);

  it('says the tick is of unknown fate, the answer holding no result for it, and exits 4', async () => {
    const { at } = await emulator.newStage('no-result-inject');
    answering(() => [{}]);
    const run = await inject(at);
    // Before: "backstop: ETH-USD shows neither accepted nor held tick 78 after 1 s: is the stack running ...", exit 4.
    expect(run.stderr).toContain(
      "backstop: inject/unknown-fate: ETH-USD tick 78 is of unknown fate, on the bus or not: the bus's answer to its " +
        'PutEvents call said nothing of it (no result for it: neither an event id nor an error code, after 5 ' +
        'attempts). `backstop status',
    );
    expect(run.stderr).toContain(
      "` shows ETH-USD's last sequence and any print its breaker holds: 78 there is this tick, on the bus; sending " +
        'it again with --sequence 78 is safe (margin-check takes a sequence once)\n',
    );
    expect(run.stderr).not.toContain('is the stack running');
    const printed = JSON.parse(run.stdout);
    expect(printed.eventId).toBeNull();
    expect(printed.fate).toEqual({
      outcome: 'unknown',
      code: 'NoResult',
      message: 'no result for the entry',
    });
    expect(run.code).toBe(4);
  });

  it('and when its next call is refused after such an answer: of unknown fate too, the refusal said', async () => {
    const { at } = await emulator.newStage('no-result-refused-inject');
    let calls = 0;
    answering(() =>
      ++calls === 1 ? [{}] : [{ ErrorCode: 'MalformedDetail', ErrorMessage: 'Detail is malformed.' }],
    );
    const run = await inject(at);
    // Before: the same wait, then the same question whether the stack runs.
    expect(run.stderr).toContain(
      'is of unknown fate, on the bus or not: its last PutEvents call was refused (MalformedDetail: Detail is ' +
        'malformed.; an earlier call of it got an answer with no result for it: it may be on the bus).',
    );
    expect(JSON.parse(run.stdout).fate).toMatchObject({ outcome: 'unknown', code: 'MalformedDetail' });
    expect(run.code).toBe(4);
  });
});

// follow47-replay-call-refused: a call refused whole (the caller's credentials, the bus's policy) is refused the same
// at every next call; since feed47-policy-refusal the replay went on through the whole file, each tick refused.
describe('backstop replay: a PutEvents call refused whole', () => {
  it('stops there with exit 1, naming the code and message and how many ticks were put before it', async () => {
    const { at } = await emulator.newStage('refused');
    const file = pricesFile('three', 150, 151, 152);
    const denial = 'User: arn:aws:sts::1:assumed-role/r/s is not authorized to perform: events:PutEvents';
    let calls = 0;
    answerPutEvents((_command, call) => {
      calls = call;
      throw refusedOnce('AccessDeniedException', denial);
    });
    const run = await cli('replay', file, '--symbol', 'ETH-USD', '--speed', 'max', '--json', ...at);
    const summary = JSON.parse(run.stdout);
    // Before: sent 3, rejected 3, one call each.
    expect(summary).toMatchObject({
      total: 3,
      sent: 1,
      accepted: 0,
      rejected: 1,
      refusedWhole: { sequence: summary.firstSequence, code: 'AccessDeniedException', message: denial },
    });
    expect(calls).toBe(1);
    expect(run.stderr).toContain(
      `backstop: replay/refused: EventBridge refused the whole PutEvents call of ETH-USD sequence ${summary.firstSequence}: AccessDeniedException (${denial}).`,
    );
    expect(run.stderr).toContain(
      "so the replay stopped there: 0 ticks put before it, 2 of the file's 3 prices not sent",
    );
    expect(run.code).toBe(1);
  });
});

// review47-replay-entry-policy: the bus's policy refuses a caller's ticks entry by entry, in a call that succeeds (its
// conditions on the source and the detail type are per event: docs/FEED.md); the replay went on through the file.
describe('backstop replay: a tick refused by policy in its entry result', () => {
  it('stops there with exit 1, naming the code and message', async () => {
    const { at } = await emulator.newStage('entry-policy');
    const file = pricesFile('three-more', 150, 151, 152);
    const denial = 'You do not have permissions to publish events with this source onto this event bus.';
    let calls = 0;
    answerPutEvents((_command, call) => {
      calls = call;
      return {
        FailedEntryCount: 1,
        Entries: [{ ErrorCode: 'NotAuthorizedForSourceException', ErrorMessage: denial }],
        $metadata: {},
      };
    });
    const run = await cli('replay', file, '--symbol', 'ETH-USD', '--speed', 'max', '--json', ...at);
    const summary = JSON.parse(run.stdout);
    // Before: sent 3, rejected 3, one call each, no refusedWhole.
    expect(summary).toMatchObject({
      total: 3,
      sent: 1,
      accepted: 0,
      rejected: 1,
      refusedWhole: {
        sequence: summary.firstSequence,
        code: 'NotAuthorizedForSourceException',
        message: denial,
        scope: 'entry',
      },
    });
    expect(calls).toBe(1);
    expect(run.stderr).toContain(
      `backstop: replay/refused: EventBridge refused ETH-USD sequence ${summary.firstSequence} by policy: NotAuthorizedForSourceException (${denial}).`,
    );
    expect(run.stderr).toContain(
      "so the replay stopped there: 0 ticks put before it, 2 of the file's 3 prices not sent",
    );
    expect(run.code).toBe(1);
  });
});

// more48-terminal-text: security48b-terminal-text escaped the bus's refusals entry by entry, not the lines that end a
// replay (a call refused whole, a call that failed), which hold AWS's text, nor --json.
describe("backstop replay: AWS's text in the lines that end it", () => {
  const hostile = 'denied\u009b2J\u202e\r\nforged line';
  const shown = 'denied\\u009b2J\\u202e\\u000d\\u000aforged line';
  const controls = /[\u007f-\u009f\u202a-\u202e\u2066-\u2069\r]/;

  const putEventsThrows = (error: Error) =>
    answerPutEvents(() => {
      throw error;
    });

  it('escapes a refusal of the whole call, in the text and in --json', async () => {
    const { at } = await emulator.newStage('hostile-refused');
    const file = pricesFile('hostile-refused', 150, 151);
    putEventsThrows(refusedOnce('AccessDeniedException', hostile));
    const run = await cli('replay', file, '--symbol', 'ETH-USD', '--speed', 'max', '--json', ...at);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`AccessDeniedException (${shown}).`);
    expect(run.stderr).not.toMatch(controls);
    expect(run.stdout).not.toMatch(controls);
    expect(JSON.parse(run.stdout).refusedWhole.message).toBe(hostile);
  });

  it('escapes the error of a call that failed', async () => {
    const { at } = await emulator.newStage('hostile-failed');
    const file = pricesFile('hostile-failed', 150);
    putEventsThrows(namedError('TimeoutError', `timed out ${hostile}`));
    const run = await cli('replay', file, '--symbol', 'ETH-USD', '--speed', 'max', ...at);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('backstop: replay/failed: ');
    expect(run.stderr).not.toMatch(controls);
    expect(run.stdout).not.toMatch(controls);
  });
});
