import { BatchWriteItemCommand, GetItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import type { AwsClients } from '../../shared/adapters/aws/index.ts';
import { parseQuote } from '../../shared/domain/units.ts';
import { collectStatus, LAST_ENTRIES } from '../../shared/local/status.ts';
import { silentTelemetry } from '../../shared/ports/index.ts';
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
      kind: 'fee',
      reference: 'p1',
      atMs: 1_000,
      floor: 0n,
    });
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
    for (let from = 2; from <= LONG; from += 25) {
      const batch = Array.from({ length: Math.min(25, LONG - from + 1) }, (_, i) => copy(from + i));
      const out = await clients.dynamo.send(
        new BatchWriteItemCommand({
          RequestItems: { [table]: batch.map((Item) => ({ PutRequest: { Item } })) },
        }),
      );
      expect(out.UnprocessedItems ?? {}).toEqual({});
    }
    const balance = { N: String(LONG * 1_000_000) };
    await clients.dynamo.send(
      new UpdateItemCommand({
        TableName: table,
        Key: { pk, sk: { S: 'BALANCE' } },
        UpdateExpression: 'SET balance = :b, #seq = :s',
        ExpressionAttributeNames: { '#seq': 'sequence' },
        ExpressionAttributeValues: { ':b': balance, ':s': { N: String(LONG) } },
      }),
    );
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
        kind: 'fee',
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
});
