import { QueryCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { createLocalResources } from '../../shared/adapters/aws/index.ts';
import { DynamoLedger } from '../../shared/adapters/aws/ledger.ts';
import { silentTelemetry } from '../../shared/ports/index.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { reconcileAccount } from '../../shared/services/reconcile.ts';
import { cli, useOperatorEmulator } from '../support/cli.ts';

const emulator = useOperatorEmulator('index-journal');

/**
 * A stack deployed before session 27 holds journal entries without `journalSequence`: the reconcile's index by
 * sequence cannot see them, and the reconcile reports entry 1 missing from that index, naming this command. `fund
 * index-journal` gives them their place.
 */
/** Removes `journalSequence` from the fund's journal entries of `table`, as an earlier version wrote them. */
async function unindexJournal(table: string): Promise<void> {
  const dynamo = emulator.clients.dynamo;
  const { Items } = await dynamo.send(
    new QueryCommand({
      TableName: table,
      KeyConditionExpression: 'pk = :pk AND begins_with(sk, :j)',
      ExpressionAttributeValues: { ':pk': { S: `ACCOUNT#${INSURANCE_ACCOUNT}` }, ':j': { S: 'J#' } },
    }),
  );
  for (const item of Items ?? []) {
    await dynamo.send(
      new UpdateItemCommand({
        TableName: table,
        Key: { pk: item.pk!, sk: item.sk! },
        UpdateExpression: 'REMOVE journalSequence',
      }),
    );
  }
}

describe('backstop fund index-journal', () => {
  it('is named with the target flags in status --json as in the text, and runs as printed (ops47-json-advice)', async () => {
    // Found by the review of session 46: ux46-advice-target gave the text's WITHDRAWALS REFUSED line the target's
    // flags, while status --json's withdrawals.reason kept the bare `backstop fund index-journal`: a script running it
    // acted on the default target.
    const names = await createLocalResources(emulator.clients, 'idx2');
    const at = ['--endpoint', emulator.moto.endpoint, '--stage', 'idx2'];
    expect((await cli('fund', 'deposit', '--amount', '100', '--key', 'd1', ...at)).code).toBe(0);
    await unindexJournal(names.tables.ledger);
    const json = await cli('status', '--json', ...at);
    expect(json.code, json.stderr).toBe(0);
    const { withdrawals } = JSON.parse(json.stdout).insuranceFund as {
      withdrawals: { refused: boolean; code: string; reason: string };
    };
    expect(withdrawals).toMatchObject({ refused: true, code: 'admin/fund-not-indexed' });
    const command = /`(backstop fund index-journal[^`]*)`/.exec(withdrawals.reason)?.[1];
    expect(command).toBe(`backstop fund index-journal ${at.join(' ')}`);
    // The same words as the text's.
    expect((await cli('status', ...at)).stdout).toContain(`  WITHDRAWALS REFUSED: ${withdrawals.reason}\n`);
    // Run as printed, it indexes this stage's journal: withdrawals go.
    expect((await cli(...command!.split(' ').slice(1))).stdout).toMatch(/1 of 1 journal entries indexed/);
    const after = JSON.parse((await cli('status', '--json', ...at)).stdout).insuranceFund;
    expect(after.withdrawals).toEqual({ refused: false, code: null, reason: null });
  });

  it('indexes the entries written before the index, once, and the reconcile then reads the whole journal', async () => {
    const names = await createLocalResources(emulator.clients, 'idx1');
    const at = ['--endpoint', emulator.moto.endpoint, '--stage', 'idx1'];
    for (const key of ['d1', 'd2', 'd3']) {
      expect((await cli('fund', 'deposit', '--amount', '100', '--key', key, ...at)).code).toBe(0);
    }
    // As an earlier version wrote them: no journalSequence.
    const dynamo = emulator.clients.dynamo;
    const table = names.tables.ledger;
    const { Items } = await dynamo.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :j)',
        ExpressionAttributeValues: { ':pk': { S: `ACCOUNT#${INSURANCE_ACCOUNT}` }, ':j': { S: 'J#' } },
      }),
    );
    expect(Items).toHaveLength(3);
    for (const item of Items!) {
      await dynamo.send(
        new UpdateItemCommand({
          TableName: table,
          Key: { pk: item.pk!, sk: item.sk! },
          UpdateExpression: 'REMOVE journalSequence',
        }),
      );
    }
    const ledger = new DynamoLedger(dynamo, table);
    const check = () =>
      reconcileAccount(ledger, INSURANCE_ACCOUNT, silentTelemetry, {
        from: 'checkpoint',
        missingRetriesMs: [],
      });
    // Named as the index's, with the command (reconcile47-not-indexed-log), not as a lost entry.
    expect(await check()).toMatchObject({
      problems: [
        expect.stringMatching(
          /^entry 1 missing .* \(3 of its 3 entries, from entry 1\): .*run `backstop fund index-journal`/,
        ),
      ],
      verdict: { reconciled: false, reason: 'not-indexed', lowest: 1 },
    });

    const run = await cli('fund', 'index-journal', ...at);
    expect(run).toMatchObject({ code: 0 });
    expect(run.stdout).toMatch(/3 of 3 journal entries indexed/);
    expect(await check()).toMatchObject({ auditedThrough: 3, difference: 0n, problems: [] });
    // Once: a re-run changes nothing.
    expect((await cli('fund', 'index-journal', ...at)).stdout).toMatch(/0 of 3 journal entries indexed/);
    expect(JSON.parse((await cli('fund', 'index-journal', '--json', ...at)).stdout)).toEqual({
      action: 'index-journal',
      entries: 3,
      indexed: 0,
    });
  });
});
