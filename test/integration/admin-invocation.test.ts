import { GetItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import type { Context } from 'aws-lambda';
import { describe, expect, it, vi } from 'vitest';
import { createAwsAdapters } from '../../shared/adapters/aws/index.ts';
import { systemClock } from '../../shared/adapters/embedded/clock.ts';
import { DEFAULT_RISK_CONFIG } from '../../shared/domain/config.ts';
import type { Adapters } from '../../shared/ports/index.ts';
import { silentTelemetry } from '../../shared/ports/index.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { cli, useOperatorEmulator } from '../support/cli.ts';

/**
 * Who moved money through the admin function (admin51-invocation-journaled): Lambda hands a function no caller, and
 * its journal entries named nobody, with nothing that led to the CloudTrail event that does. The deployed handler
 * (middy and Powertools around it, as `lambdaHandler` wraps it) against moto with the real AWS ledger: each movement
 * journals its invocation's request id and the operator its request declared, and `fund statement` shows both.
 */

const emulator = useOperatorEmulator('admininv');
let adapters: Adapters | undefined;
vi.mock('../../shared/lambda/wiring.ts', () => ({
  wiring: () => ({ adapters, config: DEFAULT_RISK_CONFIG, telemetry: silentTelemetry }),
}));

/** The Lambda context of one invocation, as Lambda hands it to the handler. */
const invocation = (awsRequestId: string) =>
  ({
    awsRequestId,
    functionName: 'admin',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:Backstop-dev-Admin',
    memoryLimitInMB: '512',
    logGroupName: '/aws/lambda/admin',
    logStreamName: 'stream',
    callbackWaitsForEmptyEventLoop: false,
    getRemainingTimeInMillis: () => 30_000,
    done: () => {},
    fail: () => {},
    succeed: () => {},
  }) as Context;

describe('a fund movement through the admin function (moto, the real AWS ledger)', () => {
  it("journals the invocation's request id and the declared operator, keeps the first on a replay, and the statement shows both", async () => {
    const { names, at } = await emulator.newStage('inv');
    adapters = createAwsAdapters({ clients: emulator.clients, names, clock: systemClock });
    const { handler } = await import('../../functions/admin/index.ts');
    // Its "admin request" lines (each with the same request id, function_request_id) are not this test's.
    const { logger } = await import('../../shared/lambda/runtime.ts');
    vi.spyOn(logger, 'info').mockImplementation(() => {});
    const invoke = (event: unknown, requestId: string) =>
      (handler as (e: unknown, c: Context) => Promise<{ ok: boolean }>)(event, invocation(requestId));
    const DEPOSIT_ID = '3f1c9a2e-5b7d-4e8f-9a01-b2c3d4e5f601';
    const WITHDRAW_ID = '3f1c9a2e-5b7d-4e8f-9a01-b2c3d4e5f602';
    const deposit = { action: 'deposit', amount: '100', idempotencyKey: 'd1', operator: ' jane@treasury ' };
    expect(await invoke(deposit, DEPOSIT_ID)).toMatchObject({ ok: true, alreadyApplied: false });
    expect(
      await invoke(
        {
          action: 'withdraw',
          amount: '40',
          idempotencyKey: 'w1',
          operator: 'arn:aws:iam::123456789012:role/ops',
        },
        WITHDRAW_ID,
      ),
    ).toMatchObject({ ok: true });
    // The deposit's key again from another invocation (its answer lost): nothing moves, the first stays journaled.
    expect(await invoke({ ...deposit, operator: 'mallory' }, 'another-invocation')).toMatchObject({
      ok: true,
      alreadyApplied: true,
    });
    // Refused without an operator, naming it; nothing moved.
    expect(await invoke({ action: 'deposit', amount: '1', idempotencyKey: 'd2' }, 'no-operator')).toEqual({
      ok: false,
      reason:
        'admin/invalid: operator: required for a deposit or withdrawal: who asks (a name or an IAM ARN, journaled as declared, unverified)',
    });
    // merge51-admin-books: a wrong sign is refused before anything is journaled, with the invocation and operator
    // given: by the request's schema (a deposit's amount is positive, the action signs it), and by the ledger itself.
    expect(
      await invoke({ action: 'deposit', amount: '-5', idempotencyKey: 'd3', operator: 'jane' }, 'negative'),
    ).toEqual({ ok: false, reason: 'admin/invalid-value: amount: must not be negative ("-5")' });
    await expect(
      adapters.ledger.apply({
        account: INSURANCE_ACCOUNT,
        idempotencyKey: 'admin:d4',
        amount: -5_000_000n,
        kind: 'deposit',
        reference: 'admin',
        atMs: Date.now(),
        floor: 0n,
        invocationId: 'wrong-sign',
        declaredOperator: 'jane',
      }),
    ).rejects.toThrow('ledger/sign-against-kind: deposit of -5.00 under key admin:d4');

    const journal = await adapters.ledger.journal(INSURANCE_ACCOUNT);
    expect(journal.map((e) => [e.idempotencyKey, e.actor, e.invocationId, e.declaredOperator])).toEqual([
      ['admin:d1', undefined, DEPOSIT_ID, 'jane@treasury'],
      ['admin:w1', undefined, WITHDRAW_ID, 'arn:aws:iam::123456789012:role/ops'],
    ]);
    // As stored: attributes of the journal item, beside (not in) `actor`.
    const item = await emulator.clients.dynamo.send(
      new GetItemCommand({
        TableName: names.tables.ledger,
        Key: { pk: { S: `ACCOUNT#${INSURANCE_ACCOUNT}` }, sk: { S: 'J#admin:d1' } },
        ConsistentRead: true,
      }),
    );
    expect(item.Item).toMatchObject({
      invocationId: { S: DEPOSIT_ID },
      declaredOperator: { S: 'jane@treasury' },
    });
    expect(item.Item).not.toHaveProperty('actor');

    const csv = await cli('fund', 'statement', '--csv', ...at);
    expect([csv.code, csv.stderr]).toEqual([0, '']);
    const rows = csv.stdout
      .trimEnd()
      .split('\r\n')
      .map((line) => line.split(','));
    expect(rows[0]!.slice(-4)).toEqual(['actor', 'fundBalanceAfter', 'invocationId', 'declaredOperator']);
    const column = (name: string) => rows[0]!.indexOf(name);
    expect(
      rows.slice(1).map((r) => [r[column('key')], r[column('invocationId')], r[column('declaredOperator')]]),
    ).toEqual([
      ['admin:d1', DEPOSIT_ID, 'jane@treasury'],
      ['admin:d1', DEPOSIT_ID, 'jane@treasury'],
      ['admin:w1', WITHDRAW_ID, 'arn:aws:iam::123456789012:role/ops'],
      ['admin:w1', WITHDRAW_ID, 'arn:aws:iam::123456789012:role/ops'],
    ]);
    const json = JSON.parse((await cli('fund', 'statement', '--json', ...at)).stdout);
    expect([json.unnamedMovements, json.invokedMovements]).toEqual([
      [],
      [
        { sequence: 1, invocationId: DEPOSIT_ID, declaredOperator: 'jane@treasury' },
        { sequence: 2, invocationId: WITHDRAW_ID, declaredOperator: 'arn:aws:iam::123456789012:role/ops' },
      ],
    ]);
    const text = await cli('fund', 'statement', ...at);
    expect(text.stdout).toContain(
      "\n  2 deposits or withdrawals moved through the admin function, who invoked it named by CloudTrail's Invoke " +
        "data event of the invocation id (a declared operator is the request's word, unverified): " +
        `entry 1 invocation ${DEPOSIT_ID} (declared operator "jane@treasury"), ` +
        `entry 2 invocation ${WITHDRAW_ID} (declared operator "arn:aws:iam::123456789012:role/ops")\n`,
    );
    expect(text.stdout).not.toContain('name nobody');

    // An entry both moved through the admin function and against its kind (the withdrawal's item rewritten by hand to
    // a deposit): --json lists it under both keys, and the text says both lines (merge51-admin-books).
    await emulator.clients.dynamo.send(
      new UpdateItemCommand({
        TableName: names.tables.ledger,
        Key: { pk: { S: `ACCOUNT#${INSURANCE_ACCOUNT}` }, sk: { S: 'J#admin:w1' } },
        UpdateExpression: 'SET kind = :k',
        ExpressionAttributeValues: { ':k': { S: 'deposit' } },
      }),
    );
    const both = JSON.parse((await cli('fund', 'statement', '--json', ...at)).stdout);
    expect([both.unnamedMovements, both.againstKind, both.invokedMovements]).toEqual([
      [],
      [2],
      json.invokedMovements,
    ]);
    const bothText = (await cli('fund', 'statement', ...at)).stdout;
    expect(bothText).toContain('\n  1 entry moves the fund against its kind: 2 (');
    expect(bothText).toContain('\n  2 deposits or withdrawals moved through the admin function, ');
  }, 60_000);
});
