import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient, PutItemCommand, QueryCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { STSClient } from '@aws-sdk/client-sts';
import { describe, expect, it, vi } from 'vitest';
import { statementTime } from '../../cli/ops/fund-statement.ts';
import { OUTPUT_KEYS, riskConfigDigest } from '../../infra/outputs.ts';
import type { ResourceNames } from '../../shared/adapters/aws/index.ts';
import { DynamoLedger } from '../../shared/adapters/aws/ledger.ts';
import { DEFAULT_RISK_CONFIG_INPUT, parseRiskConfig } from '../../shared/domain/config.ts';
import { usd } from '../../shared/domain/units.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { gapRereadDelayMs, STATEMENT_GAP_REREADS } from '../../shared/services/fund-statement.ts';
import { cli, cliWith, publishStackOutputs, useOperatorEmulator } from '../support/cli.ts';

const emulator = useOperatorEmulator('statement');

/** 2026-01-31T23:59:00Z: a month-end. */
const T0 = Date.UTC(2026, 0, 31, 23, 59, 0);
const JANUARY = ['--from', '2026-01-01', '--to', '2026-02-01'];

/**
 * The CLI's waits for a statement over a gap, recorded and not waited (cli49-statement-pause: each run waited about 3 s
 * of real time): `reread()` checks the gap was read again STATEMENT_GAP_REREADS times, each after its backoff's wait.
 */
const gapPauses = () => {
  const waited: number[] = [];
  return {
    pause: async (ms: number) => {
      waited.push(ms);
    },
    reread: () => {
      expect(waited).toHaveLength(STATEMENT_GAP_REREADS);
      for (const [i, ms] of waited.entries()) {
        expect(ms).toBeGreaterThanOrEqual(gapRereadDelayMs(i + 1, () => 0));
        expect(ms).toBeLessThanOrEqual(gapRereadDelayMs(i + 1, () => 1));
      }
    },
  };
};

const ledgerOf = (names: ResourceNames) => new DynamoLedger(emulator.clients.dynamo, names.tables.ledger);

const move = (
  names: ResourceNames,
  key: string,
  kind: string,
  amount: string,
  atMs: number,
  more: { reference?: string; actor?: string; invocationId?: string; declaredOperator?: string } = {},
) =>
  ledgerOf(names).apply({
    account: INSURANCE_ACCOUNT,
    idempotencyKey: key,
    amount: usd(amount),
    kind,
    reference: more.reference ?? key.split(':')[0]!,
    atMs,
    floor: 0n,
    ...(more.actor ? { actor: more.actor } : {}),
    ...(more.invocationId ? { invocationId: more.invocationId } : {}),
    ...(more.declaredOperator ? { declaredOperator: more.declaredOperator } : {}),
  });

/**
 * January's last minutes and February's first: a deposit, a fee, a payout, a fee given back; a fee stamped in
 * January that committed after February's first entry (a plan frozen before it, applied after).
 */
async function monthEnd(names: ResourceNames): Promise<void> {
  await move(names, 'admin:d1', 'deposit', '1000', Date.UTC(2026, 0, 5), {
    reference: 'admin',
    actor: 'arn:aws:sts::123456789012:assumed-role/treasury/jane',
  }); // 1
  await move(names, 'p1:0:fee', 'liquidation-fee', '10.5', T0); // 2
  await move(names, 'p2:0:shortfall', 'shortfall-payout', '-50.25', T0 + 30_000); // 3
  await move(names, 'p1:0:fee:r1', 'liquidation-fee', '-0.5', T0 + 31_000); // 4
  await move(names, 'p3:0:fee', 'liquidation-fee', '5', T0 + 61_000); // 5: February's first
  await move(names, 'p4:0:fee', 'liquidation-fee', '2', T0 + 59_000); // 6: stamped in January, after 5
}

describe('backstop fund statement (moto)', () => {
  it("states January: balances, movements by kind, double entry; February takes the fee stamped in January's last second", async () => {
    const { names, at } = await emulator.newStage('month');
    await monthEnd(names);
    const run = await cli('fund', 'statement', ...JANUARY, ...at);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const stage = at[at.indexOf('--stage') + 1];
    expect(run.stdout).toBe(
      [
        `fund statement: insurance-fund, local stage ${stage}, amounts in USD`,
        'period     entries 1 to 4 (4 entries): from the first entry stamped at or after 2026-01-01T00:00:00.000Z up to, not including, the first stamped at or after 2026-02-01T00:00:00.000Z, closed; the next statement goes on from entry 5 (--from-sequence 5)',
        '  (by time, a period is a range of entries by sequence: from the first entry, in sequence order, stamped at or after --from, up to, not including, the first entry from there on stamped at or after --to)',
        'opening balance                0.00  (balanceBefore of entry 1)',
        '  fees earned                 10.00  (liquidation-fee, 2 entries: 10.50 in, 0.50 out)',
        '  shortfalls paid            -50.25  (shortfall-payout, 1 entry: 0.00 in, 50.25 out)',
        '  deposited                1,000.00  (deposit, 1 entry: 1,000.00 in, 0.00 out)',
        '  withdrawn                    0.00  (withdraw: none)',
        'movements                    959.75',
        'closing balance              959.75  (balanceAfter of entry 4)',
        'reconciles: opening + movements = closing, and every entry chains on the one before it',
        'double entry (the fund an asset: a debit raises it, a credit lowers it)',
        '  account                        debit          credit',
        '  insurance-fund              1,010.50           50.75',
        '  fees:liquidation                0.50           10.50',
        '  bad-debt:shortfall             50.25            0.00',
        '  treasury                        0.00        1,000.00',
        '  total                       1,061.25        1,061.25  debits = credits',
        '',
      ].join('\n'),
    );
    // February from January's next entry: its opening is January's closing, entry 6 is its own. Its end long past
    // and the journal read to the balance's entry, it is closed (statement48-closed-by-time).
    const february = await cli(
      'fund',
      'statement',
      '--from-sequence',
      '5',
      '--to',
      '2026-03-01',
      '--json',
      ...at,
    );
    expect(february.code).toBe(0);
    const json = JSON.parse(february.stdout);
    expect(json).toEqual({
      account: 'insurance-fund',
      currency: 'USD',
      period: {
        from: { sequence: 5 },
        to: { time: '2026-03-01T00:00:00.000Z' },
        firstSequence: 5,
        lastSequence: 6,
        entries: 2,
        closed: true,
        openBecause: null,
        next: null,
        continueFrom: 7,
        stampedBeforeFrom: [],
      },
      unnamedMovements: [],
      againstKind: [],
      invokedMovements: [],
      read: 3,
      max: 100_000,
      complete: true,
      stoppedAt: null,
      stoppedBeforeStart: false,
      opening: '959.75',
      movements: '7',
      closing: '966.75',
      difference: '0',
      reconciles: true,
      breaks: [],
      unindexed: null,
      kinds: [
        { kind: 'liquidation-fee', contra: 'fees:liquidation', entries: 2, in: '7', out: '0', net: '7' },
        { kind: 'shortfall-payout', contra: 'bad-debt:shortfall', entries: 0, in: '0', out: '0', net: '0' },
        { kind: 'deposit', contra: 'treasury', entries: 0, in: '0', out: '0', net: '0' },
        { kind: 'withdraw', contra: 'treasury', entries: 0, in: '0', out: '0', net: '0' },
      ],
      accounts: [
        { account: 'insurance-fund', debit: '7', credit: '0' },
        { account: 'fees:liquidation', debit: '0', credit: '7' },
        { account: 'bad-debt:shortfall', debit: '0', credit: '0' },
        { account: 'treasury', debit: '0', credit: '0' },
      ],
      totals: { debit: '7', credit: '7', balanced: true },
    });
    // By time, February says which of its entries were stamped before it began.
    const byTime = JSON.parse(
      (await cli('fund', 'statement', '--from', '2026-02-01', '--json', ...at)).stdout,
    );
    expect(byTime.period).toMatchObject({ firstSequence: 5, lastSequence: 6, stampedBeforeFrom: [6] });
    expect(byTime.opening).toBe(json.opening);
  });

  it("runs as README writes it, and as docs/DEPLOY.md's month-end close does", async () => {
    const { names, at } = await emulator.newStage('readme');
    await monthEnd(names);
    const readme = readFileSync(path.join(process.cwd(), 'README.md'), 'utf8');
    const line = readme.split('\n').find((l) => l.startsWith('npx backstop fund statement'));
    const words = line!
      .replace(/\s+#.*$/, '')
      .split(/\s+/)
      .slice(2);
    expect(words.pop()).toBe('[--json|--csv]');
    const run = await cli(...words, ...at);
    expect([run.code, run.stderr]).toEqual([0, '']);
    expect(run.stdout).toContain('period     entries 1 to 4 (4 entries)');
    for (const format of ['--json', '--csv']) expect((await cli(...words, format, ...at)).code).toBe(0);
    const deploy = readFileSync(path.join(process.cwd(), 'docs/DEPLOY.md'), 'utf8');
    const runbook = deploy
      .split('\n')
      .filter((l) => l.startsWith('npx backstop fund statement --target aws --stage prod'))
      .map((l) =>
        l
          .replace(/ --target aws --stage prod/, '')
          .replace(/ > \S+$/, '')
          .split(/\s+/)
          .slice(2),
      );
    expect(runbook).toHaveLength(2);
    expect((await cli(...runbook[0]!, ...at)).code).toBe(0);
    // The second goes on from a sequence: this journal's February.
    const onward = runbook[1]!.map((w) => (w === '48213' ? '5' : w));
    expect((await cli(...onward, ...at)).stdout).toMatch(/^sequence,posting,/);
  });

  it('--csv: one posting per line, RFC 4180 quoting, CRLF, exact amounts', async () => {
    const { names, at } = await emulator.newStage('csv');
    await monthEnd(names);
    await move(names, 'odd:1', 'liquidation-fee', '0.000001', T0 + 62_000, {
      reference: 'a "quoted", reference\nline',
    });
    const run = await cli('fund', 'statement', '--from-sequence', '6', '--csv', ...at);
    expect([run.code, run.stderr]).toEqual([0, '']);
    expect(run.stdout).toBe(
      'sequence,posting,time,account,debit,credit,currency,kind,reference,key,actor,fundBalanceAfter,invocationId,declaredOperator\r\n' +
        '6,1,2026-01-31T23:59:59.000Z,insurance-fund,2,,USD,liquidation-fee,p4,p4:0:fee,,966.75,,\r\n' +
        '6,2,2026-01-31T23:59:59.000Z,fees:liquidation,,2,USD,liquidation-fee,p4,p4:0:fee,,966.75,,\r\n' +
        '7,1,2026-02-01T00:00:02.000Z,insurance-fund,0.000001,,USD,liquidation-fee,"a ""quoted"", reference\nline",odd:1,,966.750001,,\r\n' +
        '7,2,2026-02-01T00:00:02.000Z,fees:liquidation,,0.000001,USD,liquidation-fee,"a ""quoted"", reference\nline",odd:1,,966.750001,,\r\n',
    );
    const january = await cli('fund', 'statement', ...JANUARY, '--csv', ...at);
    const lines = january.stdout.split('\r\n');
    expect(lines).toHaveLength(1 + 2 * 4 + 1);
    expect(lines[1]).toBe(
      '1,1,2026-01-05T00:00:00.000Z,insurance-fund,1000,,USD,deposit,admin,admin:d1,arn:aws:sts::123456789012:assumed-role/treasury/jane,1000,,',
    );
    expect(lines[7]).toBe(
      '4,1,2026-01-31T23:59:31.000Z,fees:liquidation,0.5,,USD,liquidation-fee,p1,p1:0:fee:r1,,959.75,,',
    );
  });

  // audit50-csv-balance: the CSV carried no balance: a spreadsheet could not tie it to the opening and closing, nor
  // check one entry's chain on the next.
  it('--csv alone reconciles in a spreadsheet: each entry carries the fund balance after it, chained by its postings', async () => {
    const { names, at } = await emulator.newStage('csvbal');
    await monthEnd(names);
    const csv = await cli('fund', 'statement', '--from-sequence', '2', '--to-sequence', '5', '--csv', ...at);
    expect(csv.code).toBe(0);
    const rows = csv.stdout
      .trimEnd()
      .split('\r\n')
      .map((l) => l.split(','));
    const column = (name: string) => rows[0]!.indexOf(name);
    // Where it was put (last, then), the columns of session 51 after it (admin51-statement-invocations).
    expect(rows[0]!.slice(column('fundBalanceAfter'))).toEqual([
      'fundBalanceAfter',
      'invocationId',
      'declaredOperator',
    ]);
    const value = (row: string[], name: string) => usd(row[column(name)] || '0');
    // The fund's balance before the period: the first entry's balance less what it moved (the fund's side).
    const fundMove = (row: string[]) =>
      row[column('account')] === INSURANCE_ACCOUNT ? value(row, 'debit') - value(row, 'credit') : 0n;
    let balance: bigint | undefined;
    for (let i = 1; i < rows.length; i += 2) {
      const [debit, credit] = [rows[i]!, rows[i + 1]!];
      expect(value(debit, 'fundBalanceAfter')).toBe(value(credit, 'fundBalanceAfter'));
      const moved = fundMove(debit) + fundMove(credit);
      if (balance !== undefined) expect(value(debit, 'fundBalanceAfter')).toBe(balance + moved);
      balance = value(debit, 'fundBalanceAfter');
    }
    // Entry 5's balance: January's closing 959.75, plus February's first fee.
    expect(balance).toBe(usd('964.75'));
  });

  // audit50-csv-open-period: the CSV, what finance books, said nothing of a period entries may still join.
  it('--csv of a period whose end has not come says on stderr that it is open, not final (exit 0)', async () => {
    const { names, at } = await emulator.newStage('csvopen');
    const now = Date.now();
    await move(names, 'p1:0:fee', 'liquidation-fee', '1.25', now);
    const tomorrow = new Date(now + 86_400_000).toISOString();
    const csv = await cli('fund', 'statement', '--from-sequence', '1', '--to', tomorrow, '--csv', ...at);
    expect(csv.code).toBe(0);
    expect(csv.stdout.split('\r\n')).toHaveLength(1 + 2 + 1);
    expect(csv.stderr).toBe(
      `backstop: fund statement: open: the journal's last entry read is 1, none stamped at or after ${tomorrow} yet; ` +
        'entries written from now on may fall in this period; not closed, not final: book it once a run says closed ' +
        '(the text\'s "closed", --json\'s period.closed)\n',
    );
    // By sequence, its last entry not written yet: the same.
    const bySequence = await cli('fund', 'statement', '--to-sequence', '2', '--csv', ...at);
    expect(bySequence.code).toBe(0);
    expect(bySequence.stderr).toMatch(
      /^backstop: fund statement: open: .*entry 2 not written yet; .*not final/,
    );
    // Closed, or with no end asked for (to the journal's end, as asked), nothing is said.
    expect((await cli('fund', 'statement', '--to-sequence', '1', '--csv', ...at)).stderr).toBe('');
    expect((await cli('fund', 'statement', '--csv', ...at)).stderr).toBe('');
  });

  // audit50-statement-unnamed-movements: a deposit or withdrawal naming nobody (the admin function's; a deposit STS did
  // not name) was booked with an empty actor, nothing said.
  it('names the deposits and withdrawals that say nobody moved them, in the text, --json and on --csv stderr', async () => {
    const { names, at } = await emulator.newStage('unnamed');
    await monthEnd(names);
    await move(names, 'admin:lambda-1', 'deposit', '20', Date.UTC(2026, 0, 20), { reference: 'admin' }); // 7
    await move(names, 'admin:lambda-2', 'withdraw', '-5', Date.UTC(2026, 0, 21), { reference: 'admin' }); // 8
    // Which trail says who, for each of the two (review51-admin-unnamed-advice: a deposit STS could not name was
    // sent to CloudTrail's admin function events, which never held the CLI's write).
    const said =
      "2 deposits or withdrawals name nobody (no actor, no invocation id): 7, 8; the admin function's before session 51, " +
      "whose invoker CloudTrail's data events for the admin function name by time alone, and a deposit whose caller " +
      "STS could not name, which no trail of the stack records (its declaredOperator, in --csv, is the operator's word " +
      'alone)';
    const text = await cli('fund', 'statement', '--from-sequence', '1', ...at);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`\n  ${said}\n`);
    const json = JSON.parse((await cli('fund', 'statement', '--from-sequence', '1', '--json', ...at)).stdout);
    expect(json.unnamedMovements).toEqual([7, 8]);
    const csv = await cli('fund', 'statement', '--from-sequence', '1', '--csv', ...at);
    expect([csv.code, csv.stderr]).toEqual([0, `backstop: fund statement: ${said}\n`]);
    // The deposit with its actor (entry 1) is not named; a period of none says nothing.
    const named = await cli('fund', 'statement', '--to-sequence', '6', '--json', ...at);
    expect(JSON.parse(named.stdout).unnamedMovements).toEqual([]);
    // admin51-statement-invocations: one through the admin function since session 51 journals its invocation: it is
    // not unnamed (CloudTrail names who, by that id), and the statement lists it with its declared operator.
    await move(names, 'admin:lambda-3', 'deposit', '1', Date.UTC(2026, 0, 22), {
      reference: 'admin',
      invocationId: 'req-9',
      declaredOperator: 'jane',
    }); // 9
    const since = JSON.parse(
      (await cli('fund', 'statement', '--from-sequence', '7', '--json', ...at)).stdout,
    );
    expect([since.unnamedMovements, since.invokedMovements]).toEqual([
      [7, 8],
      [{ sequence: 9, invocationId: 'req-9', declaredOperator: 'jane' }],
    ]);
    const sinceText = await cli('fund', 'statement', '--from-sequence', '7', ...at);
    expect(sinceText.stdout).toContain(
      "\n  1 deposit or withdrawal moved through the admin function, who invoked it named by CloudTrail's Invoke data " +
        "event of the invocation id (a declared operator is the request's word, unverified): entry 9 invocation req-9 " +
        '(declared operator "jane")\n',
    );
    // On --csv its columns say it; stderr names only the unnamed.
    const sinceCsv = await cli('fund', 'statement', '--from-sequence', '9', '--csv', ...at);
    expect([sinceCsv.code, sinceCsv.stderr]).toEqual([0, '']);
    expect(sinceCsv.stdout.split('\r\n')[1]).toMatch(/,admin:lambda-3,,\d+(\.\d+)?,req-9,jane$/);
  });

  // review51-books-statement-against-kind: a withdrawal that raised the fund (its kind rewritten by hand; the ledger
  // refuses such a movement) was booked as withdrawn money coming back, nothing said; ledger-reconcile paged once.
  it('names the entries that move the fund against their kind, in the text, --json and on --csv stderr', async () => {
    const { names, at } = await emulator.newStage('against');
    await monthEnd(names);
    await move(names, 'admin:d2', 'deposit', '20', Date.UTC(2026, 0, 20), {
      reference: 'admin',
      actor: 'arn:aws:sts::123456789012:assumed-role/treasury/jane',
    }); // 7
    await emulator.clients.dynamo.send(
      new UpdateItemCommand({
        TableName: names.tables.ledger,
        Key: { pk: { S: `ACCOUNT#${INSURANCE_ACCOUNT}` }, sk: { S: 'J#admin:d2' } },
        UpdateExpression: 'SET kind = :k',
        ExpressionAttributeValues: { ':k': { S: 'withdraw' } },
      }),
    );
    const said =
      '1 entry moves the fund against its kind: 7 (a deposit or a fee that lowers it, a withdrawal or a draw that ' +
      'raises it, none given back by a settlement planned again: keyed :r<n>, within what its plan moved before it), ' +
      "booked as it moved the fund (a deposit's out, a withdrawal's in): the ledger refuses such a movement, so one in " +
      'the journal was written by hand; escalate before booking the period (docs/DEPLOY.md, "An entry the fund\'s ' +
      'chart of accounts refuses")';
    const text = await cli('fund', 'statement', '--from-sequence', '1', ...at);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`\n  ${said}\n`);
    expect(text.stdout).toContain(
      '  withdrawn                   20.00  (withdraw, 1 entry: 20.00 in, 0.00 out)\n',
    );
    const json = JSON.parse((await cli('fund', 'statement', '--from-sequence', '1', '--json', ...at)).stdout);
    expect(json.againstKind).toEqual([7]);
    const csv = await cli('fund', 'statement', '--from-sequence', '1', '--csv', ...at);
    expect([csv.code, csv.stderr]).toEqual([0, `backstop: fund statement: ${said}\n`]);
    // Entry 4, a fee given back under p1:0:fee:r1, is not named; a period without entry 7 says nothing.
    const before = await cli('fund', 'statement', '--to-sequence', '6', '--csv', ...at);
    expect([before.code, before.stderr]).toEqual([0, '']);
    // books52-given-back-proved: a fee "given back" under p9:0:fee:r1, written by hand (its journal item and the
    // balance's), with no fee of p9 behind it: named, where its `:r1` excused it.
    const handWritten = {
      pk: { S: `ACCOUNT#${INSURANCE_ACCOUNT}` },
      sk: { S: 'J#p9:0:fee:r1' },
      account: { S: INSURANCE_ACCOUNT },
      idempotencyKey: { S: 'p9:0:fee:r1' },
      amount: { N: String(-usd('1')) },
      balanceBefore: { N: String(usd('986.75')) },
      balanceAfter: { N: String(usd('985.75')) },
      kind: { S: 'liquidation-fee' },
      reference: { S: 'p9' },
      atMs: { N: String(Date.UTC(2026, 0, 21)) },
      sequence: { N: '8' },
      journalSequence: { N: '8' },
    };
    await emulator.clients.dynamo.send(
      new PutItemCommand({ TableName: names.tables.ledger, Item: handWritten }),
    );
    await emulator.clients.dynamo.send(
      new UpdateItemCommand({
        TableName: names.tables.ledger,
        Key: { pk: { S: `ACCOUNT#${INSURANCE_ACCOUNT}` }, sk: { S: 'BALANCE' } },
        UpdateExpression: 'SET balance = :after, #seq = :seq',
        ExpressionAttributeNames: { '#seq': 'sequence' },
        ExpressionAttributeValues: { ':after': { N: String(usd('985.75')) }, ':seq': { N: '8' } },
      }),
    );
    const withIt = JSON.parse(
      (await cli('fund', 'statement', '--from-sequence', '1', '--json', ...at)).stdout,
    );
    expect([withIt.reconciles, withIt.againstKind]).toEqual([true, [7, 8]]);
  });

  it('a period with a break: named, the identity shown, exit 1; the CSV says so on stderr', async () => {
    const { names, at } = await emulator.newStage('brk');
    await monthEnd(names);
    // The balance item written by hand, +10, then the fund moves on: entry 7 chains from the written balance.
    await emulator.clients.dynamo.send(
      new UpdateItemCommand({
        TableName: names.tables.ledger,
        Key: { pk: { S: `ACCOUNT#${INSURANCE_ACCOUNT}` }, sk: { S: 'BALANCE' } },
        UpdateExpression: 'SET balance = balance + :gap',
        ExpressionAttributeValues: { ':gap': { N: '10000000' } },
      }),
    );
    expect((await cli('fund', 'deposit', '--amount', '5', '--key', 'd2', ...at)).code).toBe(0);
    const run = await cli('fund', 'statement', '--from-sequence', '5', ...at);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(
      'DOES NOT RECONCILE: opening + movements = 971.75, closing 981.75 (difference +10.00); 1 break\n' +
        "  entry 7: balanceBefore 976.75 != entry 6's balanceAfter 966.75 (+10.00)\n",
    );
    const json = JSON.parse((await cli('fund', 'statement', '--from-sequence', '5', '--json', ...at)).stdout);
    expect(json).toMatchObject({
      reconciles: false,
      difference: '10',
      breaks: [{ type: 'chain', sequence: 7, previous: 6, amount: '10' }],
    });
    const csv = await cli('fund', 'statement', '--from-sequence', '5', '--csv', ...at);
    expect(csv.code).toBe(1);
    expect(csv.stdout.split('\r\n')).toHaveLength(1 + 2 * 3 + 1);
    expect(csv.stderr).toBe(
      "backstop: fund statement: DOES NOT RECONCILE (1 break, difference 10.00): entry 7: balanceBefore 976.75 != entry 6's balanceAfter 966.75 (+10.00)\n",
    );
    // Its end read (--to-sequence 7), the break in it: not closed, and no next statement to go on to
    // (more48c-statement-closed-breaks).
    const ended = await cli(
      'fund',
      'statement',
      '--from-sequence',
      '5',
      '--to-sequence',
      '7',
      '--json',
      ...at,
    );
    expect(ended.code).toBe(1);
    expect(JSON.parse(ended.stdout)).toMatchObject({
      reconciles: false,
      period: { lastSequence: 7, closed: false, openBecause: 'breaks', continueFrom: null },
    });
    // January, before the write, still reconciles.
    expect((await cli('fund', 'statement', ...JANUARY, ...at)).code).toBe(0);
  });

  it('a journal its index does not list (deployed before session 27): the gap, and the command that indexes it', async () => {
    const { names, at } = await emulator.newStage('unidx');
    await monthEnd(names);
    const { Items } = await emulator.clients.dynamo.send(
      new QueryCommand({
        TableName: names.tables.ledger,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :j)',
        ExpressionAttributeValues: { ':pk': { S: `ACCOUNT#${INSURANCE_ACCOUNT}` }, ':j': { S: 'J#' } },
      }),
    );
    for (const item of Items!)
      if (Number(item.sequence!.N) <= 2)
        await emulator.clients.dynamo.send(
          new UpdateItemCommand({
            TableName: names.tables.ledger,
            Key: { pk: item.pk!, sk: item.sk! },
            UpdateExpression: 'REMOVE journalSequence',
          }),
        );
    const gap = gapPauses();
    const run = await cliWith(gap, 'fund', 'statement', ...JANUARY, ...at);
    gap.reread();
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(
      "  entries 1 to 2 missing: the journal's first entry is 3 (balance 1,010.50 before it: +1,010.50 in no statement)\n" +
        `  the journal holds entries its index by sequence does not list (2 of its 6 entries, from entry 1): a stack deployed before session 27; run \`backstop fund index-journal ${at.join(' ')}\` (docs/DEPLOY.md, "Journal not indexed"), then this statement again\n`,
    );
    expect((await cli('fund', 'index-journal', ...at)).code).toBe(0);
    expect((await cli('fund', 'statement', ...JANUARY, ...at)).code).toBe(0);
  });

  it("needs no AWS action docs/DEPLOY.md does not name for it: every call it makes on a stack, a gap's look too", async () => {
    const { stage, names } = await emulator.newStage('iam');
    await publishStackOutputs(emulator.moto.endpoint, stage, names);
    await monthEnd(names);
    // Entry 2 left out of the index: the look for entries it does not list Queries the table.
    const { Items } = await emulator.clients.dynamo.send(
      new QueryCommand({
        TableName: names.tables.ledger,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :j)',
        ExpressionAttributeValues: { ':pk': { S: `ACCOUNT#${INSURANCE_ACCOUNT}` }, ':j': { S: 'J#' } },
      }),
    );
    const second = Items!.find((item) => item.sequence!.N === '2')!;
    await emulator.clients.dynamo.send(
      new UpdateItemCommand({
        TableName: names.tables.ledger,
        Key: { pk: second.pk!, sk: second.sk! },
        UpdateExpression: 'REMOVE journalSequence',
      }),
    );
    // Each call as IAM names its action: the client's service and the command.
    const actions = new Set<string>();
    const spies = (
      [
        [DynamoDBClient, 'dynamodb'],
        [CloudFormationClient, 'cloudformation'],
        [STSClient, 'sts'],
      ] as const
    ).map(([client, service]) => {
      const send = client.prototype.send as (...a: unknown[]) => Promise<unknown>;
      return vi.spyOn(client.prototype, 'send').mockImplementation(function (
        this: unknown,
        ...args: unknown[]
      ) {
        actions.add(`${service}:${(args[0] as object).constructor.name.replace(/Command$/, '')}`);
        return send.apply(this, args);
      } as never);
    });
    try {
      const deployed = ['--target', 'localstack', '--endpoint', emulator.moto.endpoint, '--stage', stage];
      const gap = gapPauses();
      const run = await cliWith(gap, 'fund', 'statement', ...JANUARY, ...deployed);
      gap.reread();
      expect(run.stdout).toContain('the journal holds entries its index by sequence does not list');
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
    expect([...actions].sort()).toEqual([
      'cloudformation:DescribeStacks',
      'dynamodb:GetItem',
      'dynamodb:Query',
    ]);
    const deploy = readFileSync(path.join(process.cwd(), 'docs/DEPLOY.md'), 'utf8');
    const note = deploy.slice(deploy.indexOf('A new operator command, `backstop fund statement`'));
    const close = deploy.slice(deploy.indexOf("**Month-end close: the insurance fund's statement**"));
    const iam = [
      note.slice(0, note.indexOf('\n\n')),
      close.slice(close.indexOf("An operator's IAM needs"), close.indexOf('**When an alarm fires**')),
    ];
    for (const text of iam) for (const action of actions) expect(text, action).toContain(`\`${action}\``);
  });

  it('an empty period, and --max cut short (exit 3) before the end and before the start', async () => {
    const { names, at } = await emulator.newStage('short');
    await monthEnd(names);
    const empty = await cli('fund', 'statement', '--from', '2026-01-10', '--to', '2026-01-20', ...at);
    expect(empty.code).toBe(0);
    expect(empty.stdout).toContain(
      'period     no entries: from the first entry stamped at or after 2026-01-10T00:00:00.000Z up to, not including, the first stamped at or after 2026-01-20T00:00:00.000Z, closed; the next statement goes on from entry 2 (--from-sequence 2)\n',
    );
    expect(empty.stdout).toContain(
      'opening balance            1,000.00  (balanceAfter of entry 1, the last before the period)\n',
    );
    expect(empty.stdout).toContain(
      'closing balance            1,000.00  (the opening: no entry)\nreconciles: no movement\n',
    );

    const short = await cli('fund', 'statement', ...JANUARY, '--max', '2', ...at);
    expect(short.code).toBe(3);
    expect(short.stdout).toContain(
      "CUT SHORT after 2 entries read (--max 2) at entry 2 (2026-01-31T23:59:00.000Z), before the period's end: this statement covers the entries read; the rest: --from-sequence 3 with the same end, or a larger --max\n",
    );
    expect(short.stdout).toContain('closing balance            1,010.50  (balanceAfter of entry 2)\n');
    const shortJson = JSON.parse(
      (await cli('fund', 'statement', ...JANUARY, '--max', '2', '--json', ...at)).stdout,
    );
    expect(shortJson).toMatchObject({
      complete: false,
      stoppedAt: { sequence: 2 },
      stoppedBeforeStart: false,
      period: { closed: false, lastSequence: 2 },
      reconciles: true,
    });
    // statement48-max-exact: January's 4 entries and the one past it within --max 4, the journal's 6 within --max 6.
    const exact = JSON.parse(
      (await cli('fund', 'statement', ...JANUARY, '--max', '4', '--json', ...at)).stdout,
    );
    expect(exact).toMatchObject({ complete: true, read: 5, period: { closed: true, continueFrom: 5 } });
    expect((await cli('fund', 'statement', '--max', '6', ...at)).code).toBe(0);
    expect((await cli('fund', 'statement', '--max', '5', ...at)).code).toBe(3);
    const before = await cli('fund', 'statement', '--from', '2026-02-01', '--max', '3', ...at);
    expect(before.code).toBe(3);
    expect(before.stdout).toMatch(
      /STOPPED after 3 entries read \(--max 3\) at entry 3 \(.*\), before the period's start: nothing of it read/,
    );
    expect(before.stdout).not.toContain('opening balance');
    // The CSV cut short: the postings read, and stderr says so.
    const csv = await cli('fund', 'statement', ...JANUARY, '--max', '2', '--csv', ...at);
    expect(csv.code).toBe(3);
    expect(csv.stderr).toMatch(/^backstop: fund statement: CUT SHORT after 2 entries read/);
  });

  it('refuses a bad period with its reason before reading anything (no target reached)', async () => {
    // Nothing listens there: a command that reached the target would fail on it (exit 1), not with its reason.
    const nowhere = ['--endpoint', 'http://127.0.0.1:9', '--stage', 'nowhere'];
    const refused = async (...argv: string[]) => {
      const run = await cli('fund', 'statement', ...argv, ...nowhere);
      expect(run.code, run.stderr).toBe(2);
      expect(run.stdout).toBe('');
      return run.stderr;
    };
    expect(await refused('--from', '2026-02-01', '--to', '2026-01-01')).toBe(
      'backstop: fund statement: --from 2026-02-01T00:00:00.000Z is not before --to 2026-01-01T00:00:00.000Z (the end is excluded: the period would hold nothing)\n',
    );
    expect(await refused('--from', '2026-01-01', '--to', '2026-01-01T00:00:00Z')).toMatch(
      /is not before --to/,
    );
    expect(await refused('--from', 'yesterday')).toBe(
      'backstop: --from: "yesterday" is not a date or date-time (ISO 8601: 2026-01-31, 2026-01-31T00:00:00Z, 2026-01-31T01:00:00+01:00)\n',
    );
    expect(await refused('--to', '2026-02-30')).toMatch(/--to: "2026-02-30" is not a calendar date-time/);
    expect(await refused('--to', '2026-02-01T24:00:00+01:00')).toMatch(/not a calendar date-time/);
    expect(await refused('--from', '1767225600000')).toMatch(/is not a date or date-time/);
    expect(await refused('--from', '1969-12-31')).toMatch(
      /is not a date-time after 1970, to the millisecond/,
    );
    expect(await refused('--from', '2026-01-01T00:00:00.0001Z')).toMatch(/to the millisecond/);
    expect(await refused('--from-sequence', '9', '--to-sequence', '3')).toMatch(
      /--from-sequence 9 is after --to-sequence 3/,
    );
    expect(await refused('--from-sequence', '0')).toMatch(/--from-sequence: 0 is outside 1\.\./);
    expect(await refused('--from', '2026-01-01', '--from-sequence', '3')).toMatch(
      /--from or --from-sequence, not both/,
    );
    expect(await refused('--json', '--csv')).toMatch(/--json or --csv, not both/);
    expect(await refused('--max', '0')).toMatch(/--max: 0 is outside 1\.\.1000000/);
    expect(await refused('--amount', '5')).toMatch(/--amount is an option of fund deposit and withdraw/);
    const deposit = await cli('fund', 'deposit', '--amount', '5', '--from', '2026-01-01', ...nowhere);
    expect([deposit.code, deposit.stderr]).toEqual([
      2,
      'backstop: fund deposit: --from is an option of fund statement\n',
    ]);
  });

  it('reads a date as its midnight UTC, a date-time without an offset as UTC, one with an offset as it says', () => {
    const midnight = Date.UTC(2026, 0, 1);
    expect(statementTime('from', '2026-01-01')).toBe(midnight);
    expect(statementTime('from', '2026-01-01T00:00')).toBe(midnight);
    expect(statementTime('from', ' 2026-01-01T01:00:00+01:00 ')).toBe(midnight);
    expect(statementTime('to', '2025-12-31T19:00:00.000-0500')).toBe(midnight);
  });

  it('refuses a journal holding a kind its chart does not name (exit 1), and names the stack of other rules its currency', async () => {
    const { stage, names } = await emulator.newStage('kind');
    // Its kind rewritten by hand: the ledger refuses a kind its chart does not name (books52-uncharted-kind).
    await move(names, 'x:1', 'deposit', '1', T0);
    await emulator.clients.dynamo.send(
      new UpdateItemCommand({
        TableName: names.tables.ledger,
        Key: { pk: { S: `ACCOUNT#${INSURANCE_ACCOUNT}` }, sk: { S: 'J#x:1' } },
        UpdateExpression: 'SET kind = :k',
        ExpressionAttributeValues: { ':k': { S: 'rebate' } },
      }),
    );
    const at = ['--endpoint', emulator.moto.endpoint, '--stage', stage];
    const run = await cli('fund', 'statement', ...at);
    expect([run.code, run.stdout]).toEqual([1, '']);
    expect(run.stderr).toBe(
      'backstop: fund statement: statement/unknown-kind: entry 1 (key x:1) has kind "rebate", which the fund\'s chart of accounts does not name (liquidation-fee, shortfall-payout, deposit, withdraw, fund-start): nothing is booked for an unknown kind\n',
    );
    // A deployed stack of USDT markets: its statement in USDT, with the deployed file.
    const { stage: usdt, names: usdtNames } = await emulator.newStage('usdt');
    const input = {
      ...DEFAULT_RISK_CONFIG_INPUT,
      markets: DEFAULT_RISK_CONFIG_INPUT.markets.map((m) => ({
        ...m,
        symbol: m.symbol.replace(/-USD$/, '-USDT'),
      })),
    };
    await publishStackOutputs(emulator.moto.endpoint, usdt, usdtNames, {
      [OUTPUT_KEYS.riskConfigDigest]: riskConfigDigest(parseRiskConfig(input)),
    });
    const deployed = ['--target', 'localstack', '--endpoint', emulator.moto.endpoint, '--stage', usdt];
    await move(usdtNames, 'admin:d1', 'deposit', '25', T0);
    expect((await cli('fund', 'statement', ...deployed)).stderr).toMatch(/--config is required/);
    const file = path.join(emulator.dir, 'usdt.json');
    writeFileSync(file, JSON.stringify(input));
    const json = JSON.parse((await cli('fund', 'statement', '--json', '--config', file, ...deployed)).stdout);
    expect(json).toMatchObject({ currency: 'USDT', closing: '25', reconciles: true });
  });
});
