import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { DynamoDBClient, GetItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { STSClient } from '@aws-sdk/client-sts';
import { describe, expect, it, vi } from 'vitest';
import { main } from '../../cli/main.ts';
import { reportFate } from '../../cli/ops/events.ts';
import { statementText } from '../../cli/ops/fund-statement.ts';
import { renderFund } from '../../cli/ops/seed.ts';
import { createAwsAdapters, type ResourceNames } from '../../shared/adapters/aws/index.ts';
import { DynamoLedger } from '../../shared/adapters/aws/ledger.ts';
import { systemClock } from '../../shared/adapters/embedded/clock.ts';
import { EmbeddedLedger } from '../../shared/adapters/embedded/ledger.ts';
import { parsePrice, usd } from '../../shared/domain/units.ts';
import type { StatusReport } from '../../shared/local/status.ts';
import type { JournalEntry, Ledger } from '../../shared/ports/index.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { readFundStatement } from '../../shared/services/fund-statement.ts';
import { cli, useOperatorEmulator } from '../support/cli.ts';

/**
 * Stored and remote text in the operator commands' blocks and lines (terminal49-*): a line feed in it is escaped, never
 * the start of a line that could pass for one the command printed (as providers49-forged-lines for show and list).
 */

const emulator = useOperatorEmulator('terminal-lines');

/** What a record's text tries to pass off as the command's own line. */
const FORGED = '\n  #99 1970-01-01T00:00:00.000Z withdraw 0.00 -> 0.00 (forged)';
const SHOWN = '\\u000a  #99 1970-01-01T00:00:00.000Z withdraw 0.00 -> 0.00 (forged)';
/** No line of `text` begins as the forged one does. */
const noForgedLine = (text: string) => expect(text).not.toMatch(/^ {2}#99 /m);

const marketsOf = (names: ResourceNames) =>
  createAwsAdapters({ clients: emulator.clients, names, clock: systemClock }).markets;

describe('status', () => {
  // terminal49-status-lines: renderStatus's block was escaped whole with its line feeds kept, so a journal entry's
  // reference or actor (a deposit's caller), a breaker's reason, printed a line of their own.
  it("prints a line feed in a journal entry's reference and actor, and in a breaker's reason, escaped", async () => {
    const { names, at } = await emulator.newStage('tstat');
    await new DynamoLedger(emulator.clients.dynamo, names.tables.ledger).apply({
      account: INSURANCE_ACCOUNT,
      idempotencyKey: 'admin:d1',
      amount: usd('1000'),
      kind: 'deposit',
      reference: `admin${FORGED}`,
      actor: `arn:aws:sts::123456789012:assumed-role/treasury/jane${FORGED}`,
      atMs: Date.now(),
      floor: 0n,
    });
    const markets = marketsOf(names);
    const last = { sequence: 1, markPrice: parsePrice('130'), timestampMs: Date.now() };
    await markets.acceptTick('ETH-USD', last, undefined, false);
    await markets.tripBreaker(
      'ETH-USD',
      `tick/price-band${FORGED}`,
      { sequence: 2, markPrice: parsePrice('200'), timestampMs: Date.now() },
      Date.now(),
      { lastTick: last, breakerTick: undefined },
    );
    const run = await cli('status', ...at);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(
      `(admin${SHOWN} by arn:aws:sts::123456789012:assumed-role/treasury/jane${SHOWN})\n`,
    );
    expect(run.stdout).toContain(`(tick/price-band${SHOWN}, 200)`);
    noForgedLine(run.stdout);
    // --json: the same data.
    const json = JSON.parse((await cli('status', '--json', ...at)).stdout) as StatusReport;
    expect(json.insuranceFund.lastEntries.at(-1)?.reference).toBe(`admin${FORGED}`);
    expect(json.markets['ETH-USD']?.breaker?.reason).toBe(`tick/price-band${FORGED}`);
  });

  // review49-terminal-untested: the stale figures a failed refresh leaves on a terminal, and its line, were escaped as
  // before (line feeds kept); no test said otherwise.
  it('--watch on a terminal escapes the stale figures under a failed refresh, and the line saying it, one line', async () => {
    const { names, at } = await emulator.newStage('twatch');
    const markets = marketsOf(names);
    const last = { sequence: 1, markPrice: parsePrice('130'), timestampMs: Date.now() };
    await markets.acceptTick('ETH-USD', last, undefined, false);
    await markets.tripBreaker(
      'ETH-USD',
      `tick/price-band${FORGED}`,
      { sequence: 2, markPrice: parsePrice('200'), timestampMs: Date.now() },
      Date.now(),
      { lastTick: last, breakerTick: undefined },
    );
    // The second refresh fails as a server's error may heal (an endpoint's name for it holding a line feed), the
    // third ends the watch.
    const send = DynamoDBClient.prototype.send;
    let scans = 0;
    const spy = vi.spyOn(DynamoDBClient.prototype, 'send').mockImplementation(function (
      this: DynamoDBClient,
      ...args: Parameters<DynamoDBClient['send']>
    ) {
      const [command] = args;
      if (command instanceof ScanCommand && command.input.TableName === names.tables.markets) {
        scans += 1;
        const fault =
          scans === 2
            ? { name: `InternalError${FORGED}`, status: 500 }
            : scans >= 3
              ? { name: 'ResourceNotFoundException', status: 400 }
              : undefined;
        if (fault)
          return Promise.reject(
            Object.assign(new Error('failed'), {
              name: fault.name,
              $metadata: { httpStatusCode: fault.status },
            }),
          );
      }
      return (send as (...a: unknown[]) => Promise<unknown>).apply(this, args);
    } as DynamoDBClient['send']);
    let stdout = '';
    // A terminal, as runStatus tells one (an io's stdout saying isTTY).
    const terminal = { isTTY: true, write: (t: string) => (stdout += t) };
    try {
      const code = await main(['status', '--watch', '--interval', '1', ...at], {
        stdout: terminal,
        stderr: { write: () => true },
      });
      expect(code).toBe(1);
    } finally {
      spy.mockRestore();
    }
    const screens = stdout.split('\x1b[2J\x1b[H').slice(1);
    expect(screens).toHaveLength(2);
    expect(screens[1]).toContain(`(tick/price-band${SHOWN}, 200)`);
    expect(screens[1]).toContain(`failed: InternalError${SHOWN}: failed; STALE`);
    noForgedLine(stdout);
  });
});

describe('replay', () => {
  // terminal49-command-lines: the line naming the breaker that holds the market's print printed its reason raw.
  it("prints a line feed in the market's breaker reason escaped", async () => {
    const { names, at } = await emulator.newStage('trep');
    const markets = marketsOf(names);
    const last = { sequence: 1, markPrice: parsePrice('130'), timestampMs: Date.now() };
    await markets.acceptTick('ETH-USD', last, undefined, false);
    await markets.tripBreaker(
      'ETH-USD',
      `tick/price-band${FORGED}`,
      { sequence: 3, markPrice: parsePrice('200'), timestampMs: Date.now() },
      Date.now(),
      { lastTick: last, breakerTick: undefined },
    );
    const file = path.join(emulator.dir, 'eth-one.csv');
    writeFileSync(file, 'timestamp,close\n2020-03-12T10:01:00Z,200\n');
    const run = await cli('replay', file, '--symbol', 'ETH-USD', '--speed', 'max', ...at);
    expect(run.stderr).toContain(`holds tick 3 (tick/price-band${SHOWN}, 200): it liquidated nothing`);
    noForgedLine(run.stderr);
    expect(run.stderr.split('\n').filter((l) => l !== '')).toHaveLength(1);
  });
});

// terminal49-command-lines: inject tick's fate line, its reason the market record's breaker's.
it("inject tick's fate line prints a line feed in the breaker's reason escaped", () => {
  let stderr = '';
  const out = { write: (t: string) => (stderr += t) };
  expect(reportFate({ outcome: 'held', reason: `tick/price-band${FORGED}` }, 'ETH-USD', 7, out)).toBe(3);
  expect(
    reportFate({ outcome: 'refused', reason: 'tick/duplicate', detail: `seen${FORGED}` }, 'ETH-USD', 7, out),
  ).toBe(3);
  expect(stderr).toBe(
    `backstop: the circuit breaker holds tick 7 (tick/price-band${SHOWN}): it liquidates nothing\n` +
      `backstop: margin-check refuses tick 7: tick/duplicate (seen${SHOWN})\n`,
  );
});

// review49-terminal-untested: inject tick's JSON escaped the record's reason as JSON does (the same data), untested.
it("inject tick's JSON escapes the separators and C1 in the breaker's reason it reads, the same data", async () => {
  const { names, at } = await emulator.newStage('tinj');
  const markets = marketsOf(names);
  const last = { sequence: 1, markPrice: parsePrice('130'), timestampMs: Date.now() };
  await markets.acceptTick('ETH-USD', last, undefined, false);
  const reason = 'tick/price-band\u2028forged line\u009b31m';
  // No stack runs here: inject's first look at the market (its fate) finds the tick held, as margin-check would
  // leave it, with a reason of the record's.
  const send = DynamoDBClient.prototype.send;
  let reads = 0;
  let tripping = false;
  const spy = vi.spyOn(DynamoDBClient.prototype, 'send').mockImplementation(async function (
    this: DynamoDBClient,
    ...args: Parameters<DynamoDBClient['send']>
  ) {
    const [command] = args;
    if (!tripping && command instanceof GetItemCommand && command.input.TableName === names.tables.markets) {
      reads += 1;
      if (reads === 2) {
        tripping = true;
        await markets.tripBreaker(
          'ETH-USD',
          reason,
          { sequence: 2, markPrice: parsePrice('131'), timestampMs: Date.now() },
          Date.now(),
          { lastTick: last, breakerTick: undefined },
        );
        tripping = false;
      }
    }
    return (send as (...a: unknown[]) => Promise<unknown>).apply(this, args);
  } as DynamoDBClient['send']);
  let run: Awaited<ReturnType<typeof cli>>;
  try {
    run = await cli(
      'inject',
      'tick',
      '--symbol',
      'ETH-USD',
      '--price',
      '131',
      '--sequence',
      '2',
      '--wait',
      '5',
      ...at,
    );
  } finally {
    spy.mockRestore();
  }
  expect(run.code, run.stderr).toBe(3);
  expect(run.stdout).not.toMatch(/[\u2028\u0080-\u009f]/);
  expect((JSON.parse(run.stdout) as { fate: unknown }).fate).toEqual({ outcome: 'held', reason });
  expect(run.stderr).toBe(
    'backstop: the circuit breaker holds tick 2 (tick/price-band\\u2028forged line\\u009b31m): it liquidates nothing\n',
  );
});

// review49-terminal-untested: fund deposit's --json and line with the caller STS names, through the command.
it('fund deposit escapes the caller STS names, in --json as JSON does (the same data), and on its line', async () => {
  const { at } = await emulator.newStage('tfund');
  const arn = `arn:aws:sts::123456789012:assumed-role/treasury/jane\u2028forged\u009b31m${FORGED}`;
  const spy = vi.spyOn(STSClient.prototype, 'send').mockImplementation((async () => ({ Arn: arn })) as never);
  let json: Awaited<ReturnType<typeof cli>>;
  let text: Awaited<ReturnType<typeof cli>>;
  try {
    // Declared apart: an ARN of such characters is no operator a request may declare (admin51-declared-operator).
    json = await cli('fund', 'deposit', '--amount', '5', '--key', 'd1', '--operator', 'ops', '--json', ...at);
    text = await cli('fund', 'deposit', '--amount', '5', '--key', 'd2', '--operator', 'ops', ...at);
  } finally {
    spy.mockRestore();
  }
  expect(json.code, json.stderr).toBe(0);
  expect(json.stdout).not.toMatch(/[\u2028\u0080-\u009f]/);
  expect((JSON.parse(json.stdout) as { entry: { actor: string } }).entry.actor).toBe(arn);
  expect(text.code, text.stderr).toBe(0);
  expect(text.stdout).toContain(
    `by arn:aws:sts::123456789012:assumed-role/treasury/jane\\u2028forged\\u009b31m${SHOWN}, declared operator ops (unverified))\n`,
  );
  noForgedLine(text.stdout);
});

// terminal49-command-lines: fund deposit's line names the caller STS answered with.
it("fund deposit's line prints a line feed in the caller's name escaped", () => {
  const line = renderFund(
    'deposit',
    usd('5'),
    'k1',
    'USD',
    false,
    { sequence: 2, atMs: 0, actor: `jane${FORGED}` },
    usd('5'),
  );
  expect(line).toBe(`fund deposit 5.00 USD: balance 5.00 USD (journal entry 2, key k1, by jane${SHOWN})\n`);
});

describe('fund statement', () => {
  // terminal49-statement-lines: a break names entries' keys; the block kept every line feed, a key's too.
  it("prints a line feed in an entry's key escaped in a break it names", async () => {
    const ledger = new EmbeddedLedger();
    for (const key of ['a', 'b'])
      await ledger.apply({
        account: INSURANCE_ACCOUNT,
        idempotencyKey: key,
        amount: usd('1'),
        kind: 'deposit',
        reference: key,
        atMs: 1,
        floor: 0n,
      });
    // Entry 2 listed twice by the journal's index, the second under another key (an item written by hand).
    const twice: Pick<Ledger, 'balance' | 'journalAfter' | 'unindexedEntries' | 'entriesOf'> = {
      balance: (account) => ledger.balance(account),
      entriesOf: (account, reference) => ledger.entriesOf(account, reference),
      unindexedEntries: (account, max) => ledger.unindexedEntries(account, max),
      journalAfter: async (account, after, limit) => {
        const entries = await ledger.journalAfter(account, after, limit);
        const second = entries.find((e) => e.sequence === 2);
        const copy: JournalEntry[] = second ? [{ ...second, idempotencyKey: `b${FORGED}` }] : [];
        return [...entries, ...copy].slice(0, limit);
      },
    };
    const read = await readFundStatement(
      twice,
      INSURANCE_ACCOUNT,
      { from: { sequence: 1 }, to: { sequence: 2 } },
      { pause: async () => {} },
    );
    expect(read.statement.breaks.map((b) => b.type)).toContain('duplicate');
    const text = statementText(read, 'USD', { kind: 'local', stage: 'dev', region: 'us-east-1' });
    expect(text).toContain(`(keys b and b${SHOWN})`);
    noForgedLine(text);
  });
});
