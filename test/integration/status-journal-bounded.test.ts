import {
  BatchWriteItemCommand,
  DeleteItemCommand,
  GetItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import type { AwsClients } from '../../shared/adapters/aws/index.ts';
import { parseQuote } from '../../shared/domain/units.ts';
import { collectStatus, LAST_ENTRIES } from '../../shared/local/status.ts';
import { silentTelemetry } from '../../shared/ports/index.ts';
import { withdrawalChecker } from '../../shared/services/admin.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { reconcileAccount } from '../../shared/services/reconcile.ts';
import { motoStages } from '../support/moto.ts';

/**
 * status46-journal-bounded: `backstop status` read the insurance fund's whole journal (strongly consistent) on every
 * read, `--watch` every 2 s: after a crash of 100,000 liquidations, hundreds of thousands of items a refresh. It now
 * judges the fund from ledger-reconcile's checkpoint, as a withdrawal does, and reads the last entries it shows
 * newest first. The items read are counted by a middleware of the real SDK, on moto.
 */

const moto = motoStages('sjb');
const usd = (v: string) => parseQuote(v);
const pk = { S: `ACCOUNT#${INSURANCE_ACCOUNT}` };
/** Entries of the long journal (a crash's worth would be far more; enough to tell a bounded read from the whole). */
const LONG = 2_000;
/** A shorter journal, and the entry of it lost. */
const SHORT = 300;
const LOST_AT = 250;

/** Counts the items each read of `table` returns (Query and Scan: those read before any filter), by command. */
function countItemsRead(clients: AwsClients, table: string) {
  const read = { items: 0, calls: [] as string[] };
  const middleware =
    (
      next: (args: { input: unknown }) => Promise<{ output: Record<string, unknown> }>,
      context: { commandName?: string },
    ) =>
    async (args: { input: { TableName?: string; IndexName?: string } }) => {
      const result = await next(args);
      if (args.input.TableName === table) {
        const out = result.output as { Item?: unknown; Items?: unknown[]; ScannedCount?: number };
        read.items += out.ScannedCount ?? out.Items?.length ?? (out.Item ? 1 : 0);
        read.calls.push(`${context.commandName}${args.input.IndexName ? ` ${args.input.IndexName}` : ''}`);
      }
      return result;
    };
  // Initialize: around the whole send, its output deserialized.
  clients.dynamo.middlewareStack.add(middleware as never, { step: 'initialize', name: 'countItemsRead' });
  return read;
}

/**
 * Entries 2..last as copies of entry 1 (a fee of 1 USD each), written in batches, and the balance item at `last`.
 */
async function copiesOfFirst(clients: AwsClients, table: string, last: number) {
  const { Item: template } = await clients.dynamo.send(
    new GetItemCommand({ TableName: table, Key: { pk, sk: { S: 'J#fee-1' } } }),
  );
  const copy = (n: number) => ({
    ...template!,
    sk: { S: `J#fee-${n}` },
    idempotencyKey: { S: `fee-${n}` },
    reference: { S: `p${n}` },
    sequence: { N: String(n) },
    journalSequence: { N: String(n) },
    balanceBefore: { N: String((n - 1) * 1_000_000) },
    balanceAfter: { N: String(n * 1_000_000) },
    atMs: { N: String(1_000 + n) },
  });
  for (let from = 2; from <= last; from += 25) {
    const batch = Array.from({ length: Math.min(25, last - from + 1) }, (_, i) => copy(from + i));
    const out = await clients.dynamo.send(
      new BatchWriteItemCommand({
        RequestItems: { [table]: batch.map((Item) => ({ PutRequest: { Item } })) },
      }),
    );
    expect(out.UnprocessedItems ?? {}).toEqual({});
  }
  await clients.dynamo.send(
    new UpdateItemCommand({
      TableName: table,
      Key: { pk, sk: { S: 'BALANCE' } },
      UpdateExpression: 'SET balance = :b, #seq = :s',
      ExpressionAttributeNames: { '#seq': 'sequence' },
      ExpressionAttributeValues: { ':b': { N: String(last * 1_000_000) }, ':s': { N: String(last) } },
    }),
  );
}

describe('backstop status on a long journal (moto, real SDK)', () => {
  it('reads the entries past the checkpoint and the last few, not the journal, and still finds a break past it', async () => {
    const { clients, names, adapters } = await moto.stage();
    const table = names.tables.ledger;
    const ledger = adapters.ledger;
    // Entry 1 by the ledger itself; entries 2..LONG as its copies (a fee of 1 USD each), written in batches.
    const first = await ledger.apply({
      account: INSURANCE_ACCOUNT,
      idempotencyKey: 'fee-1',
      amount: usd('1'),
      kind: 'liquidation-fee',
      reference: 'p1',
      atMs: 1_000,
      floor: 0n,
    });
    await copiesOfFirst(clients, table, LONG);
    expect(first.sequence).toBe(1);
    // ledger-reconcile's scheduled run: the whole journal audited once, its checkpoint stored at LONG.
    const run = await reconcileAccount(ledger, INSURANCE_ACCOUNT, silentTelemetry, {
      from: 'checkpoint',
      saveCheckpoint: true,
    });
    expect([run.entries, run.difference, run.problems]).toEqual([LONG, 0n, []]);
    // Past the checkpoint: a fee, then the balance item written by hand (+10 USD, no entry), then a fee that chains
    // from it: the break and the difference are past the checkpoint, where status must find them.
    const fee = (n: number) =>
      ledger.apply({
        account: INSURANCE_ACCOUNT,
        idempotencyKey: `fee-${n}`,
        amount: usd('1'),
        kind: 'liquidation-fee',
        reference: `p${n}`,
        atMs: 1_000 + n,
        floor: 0n,
      });
    await fee(LONG + 1);
    await clients.dynamo.send(
      new UpdateItemCommand({
        TableName: table,
        Key: { pk, sk: { S: 'BALANCE' } },
        UpdateExpression: 'SET balance = balance + :gap',
        ExpressionAttributeValues: { ':gap': { N: '10000000' } },
      }),
    );
    await fee(LONG + 2);

    const deployment = {
      kind: 'local' as const,
      stage: 'bounded',
      region: 'us-east-1',
      endpoint: moto.endpoint(),
      clients,
      names,
      close: () => {},
    };
    const read = countItemsRead(clients, table);
    const fund = (await collectStatus(deployment)).insuranceFund;
    // Before: the whole journal (LONG + 2 items, one Query of the table) on every read: 2,009 items. Now the checkpoint
    // and the balance (2 GetItems), the checkpoint's entry again and the 2 past it, the balance's entry again (a second
    // of its sequence), and the last LAST_ENTRIES.
    expect(read.items, read.calls.join(', ')).toBeLessThanOrEqual(2 + 3 + 1 + LAST_ENTRIES);
    expect(read.calls.filter((c) => c === 'QueryCommand')).toEqual([]);
    expect(fund).toMatchObject({
      balance: String(LONG + 2 + 10),
      sequence: LONG + 2,
      reconciled: false,
      verdict: 'unreconciled',
      difference: '10',
      problems: [
        `entry ${LONG + 2}: balanceBefore 2,011.00 != 2,001.00, the sum of the entries before it (+10.00)`,
      ],
      audit: { checkpoint: LONG, read: 2, through: LONG + 2 },
      minBalance: '0',
      withdrawals: { refused: true, code: 'admin/fund-not-reconciled' },
    });
    expect(fund.lastEntries.map((e) => e.sequence)).toEqual([LONG - 2, LONG - 1, LONG, LONG + 1, LONG + 2]);
    clients.destroy();
  });

  it('with no checkpoint stored yet, judges from the first entry and says so', async () => {
    const { clients, names, adapters } = await moto.stage();
    for (const [key, amount] of [
      ['d1', '100'],
      ['d2', '20'],
    ] as const)
      await adapters.ledger.apply({
        account: INSURANCE_ACCOUNT,
        idempotencyKey: key,
        amount: usd(amount),
        kind: 'deposit',
        reference: 'admin',
        atMs: 1_000,
        floor: 0n,
      });
    const deployment = {
      kind: 'local' as const,
      stage: 'nocheckpoint',
      region: 'us-east-1',
      endpoint: moto.endpoint(),
      clients,
      names,
      close: () => {},
    };
    const fund = (await collectStatus(deployment)).insuranceFund;
    expect(fund).toMatchObject({
      reconciled: true,
      verdict: 'reconciled',
      difference: '0',
      audit: { checkpoint: null, read: 2, through: 2 },
      problems: [],
    });
    clients.destroy();
  });

  // status48-journal-remembered: while an entry was missing, every `--watch` refresh read the journal's index from
  // ledger-reconcile's checkpoint up to it (which the checkpoint cannot pass either), 20,000 entries at most.
  it('while an entry is missing, a refresh reads only from where the last one stopped', async () => {
    const { clients, names, adapters } = await moto.stage();
    const table = names.tables.ledger;
    await adapters.ledger.apply({
      account: INSURANCE_ACCOUNT,
      idempotencyKey: 'fee-1',
      amount: usd('1'),
      kind: 'liquidation-fee',
      reference: 'p1',
      atMs: 1_000,
      floor: 0n,
    });
    await copiesOfFirst(clients, table, SHORT);
    // ledger-reconcile's checkpoint at entry 10, then entry LOST_AT lost from the table.
    await adapters.ledger.saveAuditCheckpoint(
      INSURANCE_ACCOUNT,
      { sequence: 10, sum: usd('10'), minBalance: 0n },
      'restart',
    );
    await clients.dynamo.send(
      new DeleteItemCommand({ TableName: table, Key: { pk, sk: { S: `J#fee-${LOST_AT}` } } }),
    );
    const deployment = {
      kind: 'local' as const,
      stage: 'remembered',
      region: 'us-east-1',
      endpoint: moto.endpoint(),
      clients,
      names,
      close: () => {},
    };
    const check = withdrawalChecker(async () => {});
    const read = countItemsRead(clients, table);
    const refresh = async () => {
      const before = read.items;
      const fund = (await collectStatus(deployment, Date.now(), undefined, check)).insuranceFund;
      return { fund, items: read.items - before };
    };
    const first = await refresh();
    const judged = {
      verdict: 'unreconciled',
      audit: { checkpoint: 10, read: LOST_AT - 1 - 10, through: LOST_AT - 1 },
      withdrawals: { refused: true, code: 'admin/fund-not-reconciled' },
    };
    expect(first.fund).toMatchObject(judged);
    expect(first.fund.withdrawals.reason).toContain(`entry ${LOST_AT} missing`);
    // The index from the checkpoint up to the lost entry and a page past it, and the look for entries left out of it.
    expect(first.items).toBeGreaterThan(LOST_AT);
    const second = await refresh();
    // The same judgement and figures; before: the index read again from the checkpoint (more than LOST_AT items).
    expect(second.fund).toEqual(first.fund);
    // The checkpoint and the balance, the last entry read and the one waited for (still not there), the look's one
    // entry of the index (lookStands), the last LAST_ENTRIES.
    expect(second.items, read.calls.slice(-8).join(', ')).toBeLessThanOrEqual(2 + 2 + 1 + LAST_ENTRIES);
    // Entries written since: read past the lost one as before, the judgement the same as a check from the checkpoint.
    await adapters.ledger.apply({
      account: INSURANCE_ACCOUNT,
      idempotencyKey: `fee-${SHORT + 1}`,
      amount: usd('1'),
      kind: 'liquidation-fee',
      reference: 'p',
      atMs: 2_000,
      floor: 0n,
    });
    const grown = await refresh();
    const fresh = (
      await collectStatus(
        deployment,
        Date.now(),
        undefined,
        withdrawalChecker(async () => {}),
      )
    ).insuranceFund;
    expect(grown.fund).toEqual(fresh);
    expect(grown.fund.sequence).toBe(SHORT + 1);
    clients.destroy();
  });
});
