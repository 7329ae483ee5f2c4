import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
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
    const twice: Pick<Ledger, 'balance' | 'journalAfter' | 'unindexedEntries'> = {
      balance: (account) => ledger.balance(account),
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
