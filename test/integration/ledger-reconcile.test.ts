import {
  type AttributeValue,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DynamoLedger, indexJournal } from '../../shared/adapters/aws/ledger.ts';
import { RECORD_SCHEMA, SCHEMA_ATTR } from '../../shared/adapters/aws/writer-schema.ts';
import { DEFAULT_RISK_CONFIG } from '../../shared/domain/config.ts';
import { logger } from '../../shared/lambda/runtime.ts';
import { type LocalStack, startLocalStack } from '../../shared/local/stack.ts';
import { collectStatus } from '../../shared/local/status.ts';
import type { JournalEntry } from '../../shared/ports/index.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { type MotoServer, startMoto } from '../support/moto.ts';

/**
 * The scheduled ledger-reconcile read the fund's whole journal every 5 minutes (about 580k entries fit its
 * 512 MB). It now reads the journal's index by sequence from the checkpoint the last run stored. Real handler,
 * DynamoDB on moto.
 */

let moto: MotoServer;
let stack: LocalStack;
let ledger: DynamoLedger;

const context = {
  functionName: 'ledger-reconcile',
  awsRequestId: 'reconcile-test',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:ledger-reconcile',
  getRemainingTimeInMillis: () => 300_000,
};

interface Summary {
  readonly reconciled: boolean;
  readonly entries: number;
  readonly auditedThrough: number;
  readonly difference: string | null;
  readonly problems: readonly string[];
  readonly journalSum: string;
}

const reconcile = (event: unknown) =>
  (stack.handlers.ledgerReconcile as (e: unknown, c: unknown) => Promise<Summary>)(event, context);

const deposit = async (n: number) => {
  const admin = stack.handlers.admin as (e: unknown, c: unknown) => Promise<{ ok: boolean }>;
  for (let i = 0; i < n; i++) {
    const key = `dep-${(await ledger.balance(INSURANCE_ACCOUNT)).sequence + 1}`;
    expect(
      await admin({ action: 'deposit', amount: '10', idempotencyKey: key, operator: 'ops' }, context),
    ).toMatchObject({
      ok: true,
    });
  }
};

/** The stack as the status command sees it. */
const deployment = () => ({
  kind: 'local' as const,
  stage: 'reconcile',
  region: 'us-east-1',
  endpoint: moto.endpoint,
  clients: stack.clients,
  names: stack.names,
  close: () => {},
});

const scheduledEvent = {
  version: '0',
  id: 'e1',
  'detail-type': 'Scheduled Event',
  source: 'aws.events',
  account: '000000000000',
  time: '2026-12-05T00:00:00Z',
  region: 'us-east-1',
  resources: [],
  detail: {},
};

/** Rewrites journal entry `sequence` to say it moved 1,000 USD; returns what puts it back. */
async function forge(sequence: number): Promise<() => Promise<void>> {
  const table = stack.names.tables.ledger;
  const key = (await ledger.journal(INSURANCE_ACCOUNT))[sequence - 1]!.idempotencyKey;
  const { Item } = await stack.clients.dynamo.send(
    new GetItemCommand({
      TableName: table,
      Key: { pk: { S: `ACCOUNT#${INSURANCE_ACCOUNT}` }, sk: { S: `J#${key}` } },
    }),
  );
  expect(Item).toBeDefined();
  await stack.clients.dynamo.send(
    new PutItemCommand({ TableName: table, Item: { ...Item!, amount: { N: '1000000000' } } }),
  );
  return async () => {
    await stack.clients.dynamo.send(new PutItemCommand({ TableName: table, Item: Item! }));
  };
}

beforeAll(async () => {
  moto = await startMoto();
  stack = await startLocalStack({ endpoint: moto.endpoint, stage: 'reconcile' });
  ledger = new DynamoLedger(stack.clients.dynamo, stack.names.tables.ledger);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  await moto?.stop();
});

describe('ledger-reconcile on DynamoDB, from its checkpoint', () => {
  it('each run reads only the entries since the last, judges the whole balance, and a full run reads all', async () => {
    await deposit(3);
    expect(await reconcile(scheduledEvent)).toMatchObject({
      reconciled: true,
      entries: 3,
      auditedThrough: 3,
      difference: '0',
      journalSum: '30',
    });
    expect(await ledger.auditCheckpoint(INSURANCE_ACCOUNT)).toMatchObject({
      sequence: 3,
      sum: 30_000_000n,
      minBalance: 0n,
    });
    await deposit(2);
    expect(await reconcile(scheduledEvent)).toMatchObject({
      reconciled: true,
      entries: 2,
      auditedThrough: 5,
    });
    expect(await reconcile(scheduledEvent)).toMatchObject({ reconciled: true, entries: 0, journalSum: '50' });
    expect(await reconcile({ full: true })).toMatchObject({
      reconciled: true,
      entries: 5,
      auditedThrough: 5,
    });
  });

  it('a forged entry is reported by every run (no checkpoint past it), and so is the balance it makes differ', async () => {
    const before = await ledger.balance(INSURANCE_ACCOUNT);
    await deposit(1);
    // Someone rewrites the last entry to say it deposited 1,000 USD: it no longer chains, and the sum differs.
    const restore = await forge(before.sequence + 1);
    const expected = {
      reconciled: false,
      difference: '-990',
      problems: [`entry ${before.sequence + 1}: balanceAfter != balanceBefore + amount`],
    };
    expect(await reconcile(scheduledEvent)).toMatchObject(expected);
    expect(await reconcile(scheduledEvent)).toMatchObject({ ...expected, entries: 1 });
    expect((await ledger.auditCheckpoint(INSURANCE_ACCOUNT))?.sequence).toBe(before.sequence);
    await restore();
    expect(await reconcile(scheduledEvent)).toMatchObject({
      reconciled: true,
      auditedThrough: before.sequence + 1,
    });
  });

  // Found by the review of session 27's diff: a full run is the only one that sees an entry behind the checkpoint,
  // and it could not lower the checkpoint, so the next scheduled run started past the entry and the alarm cleared.
  it('a broken entry a full run finds behind the checkpoint is reported by every scheduled run after it', async () => {
    const restore = await forge(2);
    const problem = 'entry 2: balanceAfter != balanceBefore + amount';
    // Behind the checkpoint: the scheduled run does not see it.
    expect(await reconcile(scheduledEvent)).toMatchObject({ problems: [] });
    expect((await reconcile({ full: true })).problems).toContain(problem);
    // Back before the page that holds it.
    expect((await ledger.auditCheckpoint(INSURANCE_ACCOUNT))?.sequence).toBeLessThan(2);
    expect((await reconcile(scheduledEvent)).problems).toContain(problem);
    await restore();
  });

  it('refuses a request it does not understand, with the reason, and changes nothing', async () => {
    const checkpoint = await ledger.auditCheckpoint(INSURANCE_ACCOUNT);
    await expect(reconcile({ full: 'yes' })).rejects.toThrow(/reconcile\/invalid-request/);
    expect(await ledger.auditCheckpoint(INSURANCE_ACCOUNT)).toEqual(checkpoint);
  });

  // Session 37: a run saves its checkpoint only within the epoch it read (reconcile-checkpoint-race); a stack
  // deployed before stores a checkpoint without one.
  it('a checkpoint stored before epochs is carried on by the scheduled runs, and a full run begins an epoch', async () => {
    expect(await reconcile(scheduledEvent)).toMatchObject({ reconciled: true });
    const { epoch: _epoch, chart: _chart, ...stored } = (await ledger.auditCheckpoint(INSURANCE_ACCOUNT))!;
    await stack.clients.dynamo.send(
      new PutItemCommand({
        TableName: stack.names.tables.ledger,
        Item: {
          pk: { S: `AUDIT#${INSURANCE_ACCOUNT}` },
          sk: { S: 'JOURNAL' },
          sequence: { N: String(stored.sequence) },
          sum: { N: String(stored.sum) },
          minBalance: { N: String(stored.minBalance) },
        },
      }),
    );
    expect(await ledger.auditCheckpoint(INSURANCE_ACCOUNT)).toEqual({ ...stored, epoch: '' });
    await deposit(1);
    expect(await reconcile(scheduledEvent)).toMatchObject({ reconciled: true, entries: 1 });
    expect(await ledger.auditCheckpoint(INSURANCE_ACCOUNT)).toMatchObject({
      sequence: stored.sequence + 1,
      epoch: '',
    });
    expect(await reconcile({ full: true })).toMatchObject({ reconciled: true });
    const restarted = await ledger.auditCheckpoint(INSURANCE_ACCOUNT);
    expect(restarted?.epoch).not.toBe('');
    // A run that read the old checkpoint, ending after the restart, leaves the restart's.
    await ledger.saveAuditCheckpoint(
      INSURANCE_ACCOUNT,
      { ...stored, sequence: stored.sequence + 1 },
      {
        ...stored,
        epoch: '',
      },
    );
    expect(await ledger.auditCheckpoint(INSURANCE_ACCOUNT)).toEqual(restarted);
  });

  // small44-reconcile-newer-checkpoint: an old and a new scheduled run overlapping during a rolling deploy.
  it('an older run meeting a checkpoint a newer Backstop wrote warns, reports its audit and ends without an error', async () => {
    await deposit(1);
    expect(await reconcile(scheduledEvent)).toMatchObject({ reconciled: true });
    const table = stack.names.tables.ledger;
    const key = { pk: { S: `AUDIT#${INSURANCE_ACCOUNT}` }, sk: { S: 'JOURNAL' } };
    const { Item: ours } = await stack.clients.dynamo.send(
      new GetItemCommand({ TableName: table, Key: key }),
    );
    const newer = { ...ours!, [SCHEMA_ATTR]: { N: String(RECORD_SCHEMA + 1) } };
    await stack.clients.dynamo.send(new PutItemCommand({ TableName: table, Item: newer }));
    await deposit(1);
    const warn = vi.spyOn(logger, 'warn');
    const error = vi.spyOn(logger, 'error');
    try {
      expect(await reconcile(scheduledEvent)).toMatchObject({ reconciled: true, entries: 1 });
      expect(await reconcile({ full: true })).toMatchObject({ reconciled: true });
      const warned = warn.mock.calls.map((c) => String(c[0]));
      expect(warned.filter((m) => m.includes('newer Backstop'))).toHaveLength(2);
      expect(error).not.toHaveBeenCalled();
      // Left to the newer code, as it stood.
      const { Item: after } = await stack.clients.dynamo.send(
        new GetItemCommand({ TableName: table, Key: key }),
      );
      expect(after).toEqual(newer);
    } finally {
      warn.mockRestore();
      error.mockRestore();
      await stack.clients.dynamo.send(new PutItemCommand({ TableName: table, Item: ours! }));
    }
    expect(await reconcile(scheduledEvent)).toMatchObject({ reconciled: true, entries: 1 });
  });

  // reconcile47-not-indexed-log: a stack deployed before session 27 holds journal entries its index by sequence does
  // not list; a withdrawal's check named `backstop fund index-journal` (withdraw46-not-indexed), and this run's own
  // line said "entry 1 missing" alone, as for a lost entry. ops47-reconcile-advice: the command named was bare, without
  // the stack's target flags, so pasted it ran against the default target; it is now the command for this stage.
  it('on a journal its index does not wholly list, its lines name index-journal for this stage; indexed, it reconciles', async () => {
    await deposit(2);
    expect(await reconcile(scheduledEvent)).toMatchObject({ reconciled: true });
    const table = stack.names.tables.ledger;
    const journal = await ledger.journal(INSURANCE_ACCOUNT);
    // Entries 1 and 2 as a version before session 27 wrote them: no journalSequence.
    for (const e of journal.filter((entry) => entry.sequence <= 2)) {
      await stack.clients.dynamo.send(
        new UpdateItemCommand({
          TableName: table,
          Key: { pk: { S: `ACCOUNT#${INSURANCE_ACCOUNT}` }, sk: { S: `J#${e.idempotencyKey}` } },
          UpdateExpression: 'REMOVE journalSequence',
        }),
      );
    }
    const warn = vi.spyOn(logger, 'warn');
    try {
      const named = expect.stringMatching(
        new RegExp(
          `^entry 1 missing \\(the balance is at sequence ${journal.length}\\) from the journal's index by sequence, which does not list entries the journal holds \\(2 of its ${journal.length} entries, from entry 1\\): .*run \`backstop fund index-journal --stage reconcile --region us-east-1\` \\(a re-run`,
        ),
      );
      expect(await reconcile({ full: true })).toMatchObject({
        reconciled: false,
        verdict: 'not-indexed',
        problems: [named],
      });
      const lines = warn.mock.calls.filter((c) => c[0] === 'ledger not reconciled');
      expect(lines).toHaveLength(1);
      expect(lines[0]![1]).toMatchObject({ verdict: 'not-indexed', problems: [named] });
      // The service's own warning names it alike.
      const service = warn.mock.calls.filter((c) => c[0] === 'ledger does not reconcile');
      expect(service).toHaveLength(1);
      expect(service[0]![1]).toMatchObject({ verdict: 'not-indexed', problems: [named] });
    } finally {
      warn.mockRestore();
    }
    expect(await indexJournal(stack.clients.dynamo, table, INSURANCE_ACCOUNT)).toMatchObject({ indexed: 2 });
    expect(await reconcile({ full: true })).toMatchObject({ reconciled: true, verdict: 'reconciled' });
  });

  // Session 37: the window's accounting was never reconciled (reconcile-draw-window).
  it("a window's drawn amount above the configured cap is reported", async () => {
    const balanceKey = { pk: { S: `ACCOUNT#${INSURANCE_ACCOUNT}` }, sk: { S: 'BALANCE' } };
    const setDrawn = (drawn: string, windowStartMs: number) =>
      stack.clients.dynamo.send(
        new UpdateItemCommand({
          TableName: stack.names.tables.ledger,
          Key: balanceKey,
          UpdateExpression: 'SET windowDrawn = :d, windowStartMs = :w',
          ExpressionAttributeValues: { ':d': { N: drawn }, ':w': { N: String(windowStartMs) } },
        }),
      );
    const { windowDrawn, windowStartMs } = await ledger.balance(INSURANCE_ACCOUNT);
    // A window that began a second ago.
    await setDrawn(String(10n ** 18n), Date.now() - 1_000);
    const report = await reconcile(scheduledEvent);
    expect(report.reconciled).toBe(false);
    expect(report.problems).toEqual([
      expect.stringMatching(/^window drawn 1,000,000,000,000\.00 is above the draw cap [\d,]+\.\d{2,}$/),
    ]);
    // The same window once it has ended: what it drew no longer counts (the next draw opens a new one).
    const windowMs = DEFAULT_RISK_CONFIG.insurance.windowSeconds * 1000;
    await setDrawn(String(10n ** 18n), Date.now() - windowMs - 1_000);
    expect(await reconcile(scheduledEvent)).toMatchObject({ reconciled: true });
    await setDrawn(String(windowDrawn), windowStartMs);
    expect(await reconcile(scheduledEvent)).toMatchObject({ reconciled: true });
  });

  // books51-kind-not-charted: an entry of a kind the chart of accounts does not name passed every run.
  it('an entry whose kind or sign the chart of accounts refuses pages once, in a warning naming it; withdrawals go', async () => {
    await deposit(2);
    expect(await reconcile(scheduledEvent)).toMatchObject({ reconciled: true, problemCount: 0 });
    const table = stack.names.tables.ledger;
    const journal = await ledger.journal(INSURANCE_ACCOUNT);
    const [a, b] = journal.slice(-2) as [JournalEntry, JournalEntry];
    // Both rewritten by hand, their money as it was: one of a kind no version wrote, one a deposit that lowers the fund.
    const rewrite = (e: JournalEntry, set: string, values: Record<string, AttributeValue>) =>
      stack.clients.dynamo.send(
        new UpdateItemCommand({
          TableName: table,
          Key: { pk: { S: `ACCOUNT#${INSURANCE_ACCOUNT}` }, sk: { S: `J#${e.idempotencyKey}` } },
          UpdateExpression: `SET ${set}`,
          ExpressionAttributeValues: values,
        }),
      );
    await rewrite(a, 'kind = :k', { ':k': { S: 'fee' } });
    await rewrite(b, 'amount = :a, balanceBefore = :b, balanceAfter = :f, kind = :k', {
      ':a': { N: '-1' },
      ':b': { N: String(b.balanceBefore) },
      ':f': { N: String(b.balanceBefore - 1n) },
      ':k': { S: 'deposit' },
    });
    // The balance item as the hand's movement left it.
    await stack.clients.dynamo.send(
      new UpdateItemCommand({
        TableName: table,
        Key: { pk: { S: `ACCOUNT#${INSURANCE_ACCOUNT}` }, sk: { S: 'BALANCE' } },
        UpdateExpression: 'SET balance = :f',
        ExpressionAttributeValues: { ':f': { N: String(b.balanceBefore - 1n) } },
      }),
    );
    const problems = [
      `entry ${a.sequence} (key ${a.idempotencyKey}): kind "fee" is not in the fund's chart of accounts (liquidation-fee, shortfall-payout, deposit, withdraw, fund-start): written by another version or by hand; \`fund statement\` refuses it`,
      `entry ${b.sequence}: deposit of -0.000001 under key ${b.idempotencyKey}: kind deposit raises the fund, never lowers it`,
    ];
    const warn = vi.spyOn(logger, 'warn');
    try {
      expect(await reconcile({ full: true })).toMatchObject({
        reconciled: true,
        verdict: 'reconciled',
        difference: '0',
        problemCount: 2,
        chartProblems: 2,
        problems,
      });
      const lines = warn.mock.calls.filter(
        (c) => c[0] === "ledger reconciled; journal entries the fund's chart of accounts refuses",
      );
      expect(lines.map((c) => c[1])).toEqual([expect.objectContaining({ problemCount: 2, problems })]);
    } finally {
      warn.mockRestore();
    }
    // The checkpoint goes past them: the next run reports nothing new, and a withdrawal goes.
    expect(await reconcile(scheduledEvent)).toMatchObject({ reconciled: true, problemCount: 0 });
    // books52-status-chart: the checkpoint keeps them, and `backstop status` says them without a read of the journal.
    const chartRefused = { count: 2, firstSequence: a.sequence, lastSequence: b.sequence, countedAfter: 0 };
    expect((await collectStatus(deployment())).insuranceFund.chartRefused).toEqual(chartRefused);
    const admin = stack.handlers.admin as (e: unknown, c: unknown) => Promise<{ ok: boolean }>;
    expect(
      await admin({ action: 'withdraw', amount: '1', idempotencyKey: 'books51-w', operator: 'ops' }, context),
    ).toMatchObject({
      ok: true,
    });
    expect(await reconcile(scheduledEvent)).toMatchObject({ reconciled: true, problemCount: 0 });
    // Their kinds repaired by hand (the money stands): a full run finds nothing.
    await rewrite(a, 'kind = :k', { ':k': { S: 'deposit' } });
    await rewrite(b, 'kind = :k', { ':k': { S: 'withdraw' } });
    expect(await reconcile({ full: true })).toMatchObject({ reconciled: true, problemCount: 0 });
    expect((await collectStatus(deployment())).insuranceFund.chartRefused).toBeNull();
  });

  // Session 37: a lost balance item read as 0 at sequence 0, the next movement numbered 1 again, and a full run
  // reconciled it clean, then every run after it (reconcile-balance-behind). Last: the fund stays broken.
  it('a lost balance item alarms on every run, the full run and the status too', async () => {
    const { sequence } = await ledger.balance(INSURANCE_ACCOUNT);
    await stack.clients.dynamo.send(
      new DeleteItemCommand({
        TableName: stack.names.tables.ledger,
        Key: { pk: { S: `ACCOUNT#${INSURANCE_ACCOUNT}` }, sk: { S: 'BALANCE' } },
      }),
    );
    const status = (await collectStatus(deployment())).insuranceFund;
    // Judged from ledger-reconcile's checkpoint (status46-journal-bounded); the entries shown are the newest, not the
    // first five from the balance's sequence 0.
    expect(status).toMatchObject({
      reconciled: false,
      problems: [`balance at sequence 0 is behind the audited journal (${sequence})`],
    });
    expect(status.lastEntries.map((e) => e.sequence)).toEqual([4, 3, 2, 1, 0].map((back) => sequence - back));
    const admin = stack.handlers.admin as (e: unknown, c: unknown) => Promise<unknown>;
    expect(
      await admin(
        { action: 'deposit', amount: '10', idempotencyKey: 'after-loss', operator: 'ops' },
        context,
      ),
    ).toMatchObject({
      ok: true,
      sequence: 1,
    });
    const scheduled = await reconcile(scheduledEvent);
    expect(scheduled.problems).toEqual([`balance at sequence 1 is behind the audited journal (${sequence})`]);
    const full = await reconcile({ full: true });
    expect(full.problems).toEqual(['entry 1 appears twice', "entry 2 is past the balance's sequence 1"]);
    expect((await ledger.auditCheckpoint(INSURANCE_ACCOUNT))?.sequence).toBeLessThanOrEqual(1);
    for (let run = 0; run < 2; run++) {
      expect((await reconcile(scheduledEvent)).problems).toContain(
        "entry 2 is past the balance's sequence 1",
      );
    }
  });
});
