import {
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { type AwsClients, createAwsClients, localClientConfig } from '../../shared/adapters/aws/index.ts';
import { DynamoLedger, indexJournal } from '../../shared/adapters/aws/ledger.ts';
import { DEFAULT_RISK_CONFIG } from '../../shared/domain/config.ts';
import { parseQuote } from '../../shared/domain/units.ts';
import { collectStatus } from '../../shared/local/status.ts';
import { silentTelemetry } from '../../shared/ports/index.ts';
import { type AdminDeps, handleAdmin, withdrawalChecker } from '../../shared/services/admin.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { reconcileAccount } from '../../shared/services/reconcile.ts';
import { motoStages } from '../support/moto.ts';

/**
 * A withdrawal is checked against the fund's journal, then written on exactly the balance it checked
 * (withdraw46-unreconciled): what changes the balance item between the check and the write, the real AWS SDK's
 * TransactWriteItems against moto must refuse. The change is made by a middleware just before the withdrawal's
 * transaction is sent.
 */

const moto = motoStages('withdraw');
const usd = (v: string) => parseQuote(v);

type Middleware = Parameters<AwsClients['dynamo']['middlewareStack']['add']>[0];

/** Runs `between` once, just before the first TransactWriteItems that journals `key` is sent. */
function beforeCommitOf(clients: AwsClients, key: string, between: () => Promise<void>) {
  const state = { fired: 0 };
  const middleware = ((
    next: (args: { input: unknown }) => Promise<unknown>,
    context: { commandName?: string },
  ) =>
    async (args: { input: unknown }) => {
      if (
        state.fired === 0 &&
        context.commandName === 'TransactWriteItemsCommand' &&
        JSON.stringify(args.input).includes(`"J#${key}"`)
      ) {
        state.fired += 1;
        await between();
      }
      return next(args);
    }) as unknown as Middleware;
  clients.dynamo.middlewareStack.add(middleware, { step: 'deserialize', name: 'beforeCommit' });
  return state;
}

async function setUp() {
  const { clients, names, adapters } = await moto.stage();
  const deps: AdminDeps = {
    ...adapters,
    config: DEFAULT_RISK_CONFIG,
    telemetry: silentTelemetry,
    nowMs: () => Date.now(),
    // The check's waits for the index's lag are real time; moto's index has none.
    pause: async () => {},
  };
  expect(
    await handleAdmin({ action: 'deposit', amount: '100', idempotencyKey: 'd1', operator: 'ops' }, deps),
  ).toMatchObject({
    ok: true,
  });
  const withdraw = (amount: string, key: string) =>
    handleAdmin({ action: 'withdraw', amount, idempotencyKey: key, operator: 'ops' }, deps);
  const fund = async () => ({
    balance: await adapters.ledger.balance(INSURANCE_ACCOUNT),
    journal: (await adapters.ledger.journal(INSURANCE_ACCOUNT)).map((e) => e.idempotencyKey),
  });
  const deposit = (amount: string, key: string) =>
    handleAdmin({ action: 'deposit', amount, idempotencyKey: key, operator: 'ops' }, deps);
  return { clients, names, adapters, withdraw, deposit, fund };
}

const pk = { S: `ACCOUNT#${INSURANCE_ACCOUNT}` };

/** The fund's journal items as the table holds them (keys and sequences), in key order. */
async function journalItems(clients: AwsClients, table: string) {
  const { Items } = await clients.dynamo.send(
    new QueryCommand({
      TableName: table,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :j)',
      ExpressionAttributeValues: { ':pk': pk, ':j': { S: 'J#' } },
    }),
  );
  return Items!.map((item) => ({ sk: item.sk!.S!, sequence: Number(item.sequence!.N) }));
}

/** Takes `journalSequence` off the entries of these sequences, as a version before session 27 wrote them. */
async function unindex(clients: AwsClients, table: string, sequences: readonly number[]) {
  for (const { sk, sequence } of await journalItems(clients, table))
    if (sequences.includes(sequence))
      await clients.dynamo.send(
        new UpdateItemCommand({
          TableName: table,
          Key: { pk, sk: { S: sk } },
          UpdateExpression: 'REMOVE journalSequence',
        }),
      );
}

describe('a withdrawal racing a change of the fund between its check and its write (moto, real SDK)', () => {
  it('does not slip through when the balance item is written by hand in between', async () => {
    const { clients, names, withdraw, fund } = await setUp();
    // By hand, as the runbook's case: 10 USD more in the balance item, no journal entry.
    const race = beforeCommitOf(clients, 'admin:w1', async () => {
      await clients.dynamo.send(
        new UpdateItemCommand({
          TableName: names.tables.ledger,
          Key: { pk: { S: `ACCOUNT#${INSURANCE_ACCOUNT}` }, sk: { S: 'BALANCE' } },
          UpdateExpression: 'SET balance = :n',
          ConditionExpression: 'balance = :o',
          ExpressionAttributeValues: { ':n': { N: '110000000' }, ':o': { N: '100000000' } },
        }),
      );
    });
    const result = await withdraw('30', 'w1');
    expect(race.fired).toBe(1);
    expect(result).toMatchObject({
      ok: false,
      reason: expect.stringMatching(
        /^admin\/fund-not-reconciled: the fund's balance does not reconcile with its journal \(balance 110\.00 USD at entry 1; difference \+10\.00 USD from the journal's sum\); nothing moved\./,
      ),
    });
    expect(await fund()).toMatchObject({
      balance: { balance: usd('110'), sequence: 1 },
      journal: ['admin:d1'],
    });
    clients.destroy();
  });

  it('checks again on a movement another process committed in between, and moves once on the new balance', async () => {
    const { clients, names, adapters, withdraw, fund } = await setUp();
    // A settlement's fee from another container: its own client and ledger (no group commit with this one).
    const other = createAwsClients(localClientConfig(moto.endpoint()));
    const race = beforeCommitOf(clients, 'admin:w1', async () => {
      await new DynamoLedger(other.dynamo, names.tables.ledger).apply({
        account: INSURANCE_ACCOUNT,
        idempotencyKey: 'p1:0:fee',
        amount: usd('5'),
        kind: 'liquidation-fee',
        reference: 'p1:0',
        atMs: Date.now(),
        floor: 0n,
      });
    });
    expect(await withdraw('30', 'w1')).toMatchObject({
      ok: true,
      entry: { sequence: 3, balanceBefore: usd('105'), balanceAfter: usd('75') },
    });
    expect(race.fired).toBe(1);
    expect(await fund()).toMatchObject({
      balance: { balance: usd('75'), sequence: 3 },
      journal: ['admin:d1', 'p1:0:fee', 'admin:w1'],
    });
    const report = await reconcileAccount(adapters.ledger, INSURANCE_ACCOUNT, silentTelemetry);
    expect([report.difference, report.problems]).toEqual([0n, []]);
    other.destroy();
    clients.destroy();
  });
});

// withdraw46-not-indexed: a stack deployed before session 27 that never ran `backstop fund index-journal` holds
// journal entries without `journalSequence`; the check reads the journal through that index and refused with
// "entry 1 missing ... escalate". The entries are looked for in the table itself, with the real SDK.
describe('a withdrawal from a fund whose journal entries its index does not list (moto, real SDK)', () => {
  it('says to run index-journal; once it has, the withdrawal goes', async () => {
    const { clients, names, withdraw, deposit, fund } = await setUp();
    await deposit('100', 'd2');
    await deposit('100', 'd3');
    await unindex(clients, names.tables.ledger, [1, 2, 3]);
    // The first movement since the upgrade, indexed.
    await deposit('5', 'd4');
    const before = await fund();
    expect(await withdraw('30', 'w1')).toEqual({
      ok: false,
      reason: expect.stringMatching(
        /^admin\/fund-not-indexed: the fund's journal holds entries its index by sequence does not list \(3 of its 4 entries, from entry 1\), so a withdrawal's check, which reads the journal through that index, found entry 1 missing and cannot judge the fund; nothing moved\. .*run `backstop fund index-journal`/,
      ),
    });
    expect(await fund()).toEqual(before);
    expect(await indexJournal(clients.dynamo, names.tables.ledger, INSURANCE_ACCOUNT)).toEqual({
      entries: 4,
      indexed: 3,
    });
    expect(await withdraw('30', 'w1')).toMatchObject({
      ok: true,
      entry: { sequence: 5, balanceAfter: usd('275') },
    });
    clients.destroy();
  });

  it('refuses an entry lost from the table as a break, having read every entry of it', async () => {
    const { clients, names, withdraw, deposit } = await setUp();
    await deposit('20', 'd2');
    // Entry 2's item deleted (a restore without it): in neither the index nor the table.
    const lost = (await journalItems(clients, names.tables.ledger)).find((e) => e.sequence === 2)!;
    await clients.dynamo.send(
      new DeleteItemCommand({ TableName: names.tables.ledger, Key: { pk, sk: { S: lost.sk } } }),
    );
    await deposit('5', 'd3');
    expect(await withdraw('30', 'w1')).toMatchObject({
      ok: false,
      reason: expect.stringContaining(
        "admin/fund-not-reconciled: the fund's balance does not reconcile with its journal (balance 125.00 USD at " +
          "entry 3; entry 2 missing (the balance is at sequence 3); each of the journal's 2 entries is in its index " +
          'by sequence: the missing entry is not one left out of it); nothing moved.',
      ),
    });
    clients.destroy();
  });

  it('reads at most the entries it is given, counting those its filter leaves out, and stops at the first found', async () => {
    const { clients, names, adapters, deposit } = await setUp();
    for (const key of ['d2', 'd3', 'd4', 'd5']) await deposit('1', key);
    // In key order admin:d1 .. admin:d5: only the last is left out of the index.
    await unindex(clients, names.tables.ledger, [5]);
    const ledger = adapters.ledger;
    expect(await ledger.unindexedEntries(INSURANCE_ACCOUNT, 2)).toEqual({
      read: 2,
      found: 0,
      complete: false,
    });
    expect(await ledger.unindexedEntries(INSURANCE_ACCOUNT, 20_000)).toEqual({
      read: 5,
      found: 1,
      lowest: 5,
      complete: true,
    });
    await unindex(clients, names.tables.ledger, [1, 2, 3, 4]);
    // Found on the first read of 2 (admin:d1, admin:d2): the rest is not read.
    expect(await ledger.unindexedEntries(INSURANCE_ACCOUNT, 2)).toEqual({
      read: 2,
      found: 2,
      lowest: 1,
      complete: false,
    });
    await expect(ledger.unindexedEntries(INSURANCE_ACCOUNT, 0)).rejects.toThrow(/ledger\/bad-look/);
    clients.destroy();
  });
});

// review46-status-watch: status runs the withdrawal's check on every read, and `status --watch` reads every 2 s; on
// an entry missing from the index the check waits 6.35 s for the index's lag, so a lost entry (or a journal not
// indexed) held every refresh of the operator's screen that long, for as long as it lasted.
describe("the status read again and again (--watch): the withdrawal's check (moto, real SDK)", () => {
  it('waits for a missing entry once, not on every read, and again for another one', async () => {
    const { clients, names, deposit } = await setUp();
    await deposit('20', 'd2');
    await deposit('5', 'd3');
    const deployment = {
      kind: 'local' as const,
      stage: 'watch',
      region: 'us-east-1',
      endpoint: moto.endpoint(),
      clients,
      names,
      close: () => {},
    };
    const itemOf = async (sequence: number) => {
      const { sk } = (await journalItems(clients, names.tables.ledger)).find((e) => e.sequence === sequence)!;
      const Key = { pk, sk: { S: sk } };
      const { Item } = await clients.dynamo.send(new GetItemCommand({ TableName: names.tables.ledger, Key }));
      return { Key, Item: Item! };
    };
    const lose = (Key: Awaited<ReturnType<typeof itemOf>>['Key']) =>
      clients.dynamo.send(new DeleteItemCommand({ TableName: names.tables.ledger, Key }));
    const second = await itemOf(2);
    await lose(second.Key);
    const waits: number[] = [];
    const check = withdrawalChecker(async (ms) => {
      waits.push(ms);
    });
    const read = async () => (await collectStatus(deployment, Date.now(), undefined, check)).insuranceFund;
    const first = await read();
    expect(first.withdrawals).toMatchObject({ refused: true, code: 'admin/fund-not-reconciled' });
    expect(first.withdrawals.reason).toContain('entry 2 missing');
    expect(waits).toEqual([50, 100, 200, 400, 800, 1_600, 3_200]);
    // The same entry missing on the next reads: the same refusal, no wait.
    for (let i = 0; i < 2; i++) expect((await read()).withdrawals).toEqual(first.withdrawals);
    expect(waits).toHaveLength(7);
    // Restored: judged at once and reconciled; then another entry lost is waited for, as a withdrawal waits.
    await clients.dynamo.send(new PutItemCommand({ TableName: names.tables.ledger, Item: second.Item }));
    expect((await read()).withdrawals).toEqual({ refused: false, code: null, reason: null });
    expect(waits).toHaveLength(7);
    await lose((await itemOf(3)).Key);
    expect((await read()).withdrawals.reason).toContain('entry 3 missing');
    expect(waits).toHaveLength(14);
    clients.destroy();
  });

  // status47-look-remembered: the look for entries left out of the index (a read of the journal itself, strongly
  // consistent, up to 20,000 entries) was made on every refresh while an entry was missing.
  it('looks for entries left out of the index once while the journal stays as it is', async () => {
    const { clients, names, deposit } = await setUp();
    await deposit('20', 'd2');
    await deposit('5', 'd3');
    const looks = countLooks(clients, names.tables.ledger);
    const check = withdrawalChecker(async () => {});
    const read = async () =>
      (await collectStatus(watchedDeployment(clients, names), Date.now(), undefined, check)).insuranceFund;
    // Entry 2 lost, entry 3 not indexed (a stack deployed before session 27): both the index reads as missing.
    const lost = (await journalItems(clients, names.tables.ledger)).find((e) => e.sequence === 2)!;
    await clients.dynamo.send(
      new DeleteItemCommand({ TableName: names.tables.ledger, Key: { pk, sk: { S: lost.sk } } }),
    );
    await unindex(clients, names.tables.ledger, [3]);
    const first = await read();
    expect(first.withdrawals.reason).toMatch(
      /^admin\/fund-not-indexed: .*\(1 of its 2 entries, from entry 3\)/,
    );
    expect(looks.count).toBe(1);
    // Read again and again, the journal as it was: the look stands.
    for (let i = 0; i < 3; i++) expect((await read()).withdrawals).toEqual(first.withdrawals);
    // Before: a look on each read, 4 by now.
    expect(looks.count).toBe(1);
    // index-journal lists entry 3: looked at again, and the break is entry 2's alone.
    await indexJournal(clients.dynamo, names.tables.ledger, INSURANCE_ACCOUNT);
    expect((await read()).withdrawals.reason).toContain(
      "entry 2 missing (the balance is at sequence 3); each of the journal's 2 entries is in its index by sequence",
    );
    expect(looks.count).toBe(2);
    expect((await read()).withdrawals.code).toBe('admin/fund-not-reconciled');
    expect(looks.count).toBe(2);
    // An entry written: the journal changed, looked at again.
    await deposit('1', 'd4');
    expect((await read()).withdrawals.reason).toContain("each of the journal's 3 entries is in its index");
    expect(looks.count).toBe(3);
    clients.destroy();
  });

  // status47-look-remembered's re-check: a look reused while the journal stays as it is was made for the entry missing
  // then; a refresh that finds another one missing (the first back, the next left out of the index since) looks again.
  it('looks again when the entry missing is another than the one the look was made for', async () => {
    const { clients, names, deposit } = await setUp();
    for (const n of [2, 3, 4]) await deposit('1', `d${n}`);
    const looks = countLooks(clients, names.tables.ledger);
    const check = withdrawalChecker(async () => {});
    const read = async () =>
      (await collectStatus(watchedDeployment(clients, names), Date.now(), undefined, check)).insuranceFund;
    const table = names.tables.ledger;
    const lost = (await journalItems(clients, table)).find((e) => e.sequence === 2)!;
    const Key = { pk, sk: { S: lost.sk } };
    const { Item } = await clients.dynamo.send(new GetItemCommand({ TableName: table, Key }));
    await clients.dynamo.send(new DeleteItemCommand({ TableName: table, Key }));
    const first = await read();
    expect(first.withdrawals).toMatchObject({ refused: true, code: 'admin/fund-not-reconciled' });
    expect(first.withdrawals.reason).toContain('entry 2 missing');
    expect(looks.count).toBe(1);
    // Entry 2 back, entry 3 left out of the index: no entry written, so the look for entry 2 would stand.
    await clients.dynamo.send(new PutItemCommand({ TableName: table, Item: Item! }));
    await unindex(clients, table, [3]);
    const second = await read();
    // Without the re-check: the look made for entry 2 (none left out) says entry 3 lost, not-reconciled.
    expect(second.withdrawals.code).toBe('admin/fund-not-indexed');
    expect(second.withdrawals.reason).toMatch(/\(1 of its 4 entries, from entry 3\)/);
    expect(looks.count).toBe(2);
    clients.destroy();
  });

  // review48-resumed-reconciled: a refresh went on from the clean prefix the last one audited while an entry was
  // missing (status48-journal-remembered); the entry back, it judged the journal past that prefix alone and said it
  // reconciled though an entry behind it had gone missing meanwhile, which a withdrawal's check refuses.
  it('judges from the checkpoint once the entry missing is back, finding one lost behind meanwhile', async () => {
    const { clients, names, deposit } = await setUp();
    for (const n of [2, 3, 4]) await deposit('1', `d${n}`);
    const check = withdrawalChecker(async () => {});
    const read = async () =>
      (await collectStatus(watchedDeployment(clients, names), Date.now(), undefined, check)).insuranceFund;
    const table = names.tables.ledger;
    const keyOf = async (sequence: number) => ({
      pk,
      sk: { S: (await journalItems(clients, table)).find((e) => e.sequence === sequence)!.sk },
    });
    const fourth = await keyOf(4);
    const { Item } = await clients.dynamo.send(new GetItemCommand({ TableName: table, Key: fourth }));
    await clients.dynamo.send(new DeleteItemCommand({ TableName: table, Key: fourth }));
    expect((await read()).withdrawals.reason).toContain('entry 4 missing');
    // Entry 2 lost, behind the prefix the refresh remembers (entries 1 to 3), then entry 4 back.
    await clients.dynamo.send(new DeleteItemCommand({ TableName: table, Key: await keyOf(2) }));
    await clients.dynamo.send(new PutItemCommand({ TableName: table, Item: Item! }));
    const fund = await read();
    // Before: reconciled, withdrawals not refused.
    expect(fund.withdrawals).toMatchObject({ refused: true, code: 'admin/fund-not-reconciled' });
    expect(fund.withdrawals.reason).toContain('entry 2 missing');
    clients.destroy();
  });
});

/** A deployment of the stage, as the CLI's --watch reads it. */
const watchedDeployment = (clients: AwsClients, names: Awaited<ReturnType<typeof setUp>>['names']) => ({
  kind: 'local' as const,
  stage: 'watch',
  region: 'us-east-1',
  endpoint: moto.endpoint(),
  clients,
  names,
  close: () => {},
});

/** The looks for entries left out of the index sent (Ledger.unindexedEntries' Query of the journal). */
function countLooks(clients: AwsClients, table: string) {
  const looks = { count: 0 };
  const middleware =
    (next: (args: { input: unknown }) => Promise<unknown>, context: { commandName?: string }) =>
    async (args: { input: { TableName?: string; FilterExpression?: string } }) => {
      if (
        context.commandName === 'QueryCommand' &&
        args.input.TableName === table &&
        args.input.FilterExpression === 'attribute_not_exists(journalSequence)'
      )
        looks.count += 1;
      return next(args);
    };
  clients.dynamo.middlewareStack.add(middleware as never, { step: 'initialize', name: 'countLooks' });
  return looks;
}
