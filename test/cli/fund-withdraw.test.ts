import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { GetItemCommand, QueryCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { STSClient } from '@aws-sdk/client-sts';
import { describe, expect, it, vi } from 'vitest';
import { OUTPUT_KEYS, riskConfigDigest } from '../../infra/outputs.ts';
import { createAwsAdapters, createLocalResources } from '../../shared/adapters/aws/index.ts';
import { systemClock } from '../../shared/adapters/embedded/clock.ts';
import { DEFAULT_RISK_CONFIG_INPUT, parseRiskConfig } from '../../shared/domain/config.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { JOURNAL_SEQUENCE_INDEX } from '../../shared/topology.ts';
import { cli, publishStackOutputs, useOperatorEmulator } from '../support/cli.ts';

const emulator = useOperatorEmulator('withdraw');

describe('backstop fund withdraw', () => {
  it('never judges a withdrawal against the built-in floor by omission (no --config, none recorded)', async () => {
    await createLocalResources(emulator.clients, 'floor1');
    const at = ['--endpoint', emulator.moto.endpoint, '--stage', 'floor1'];
    expect((await cli('fund', 'deposit', '--amount', '1000', '--key', 'd1', ...at)).code).toBe(0);
    // The deployed floor (the riskConfig context, built into the functions' code) is unknown to this shell: the
    // withdrawal would be judged against DEFAULT_RISK_CONFIG's floor of 0, as `positions reindex` refuses to do.
    const run = await cli('fund', 'withdraw', '--amount', '1000', '--key', 'w1', ...at);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--config is required/);
    // Refused before anything moved; with the configuration given it goes through.
    const config = path.join(emulator.dir, 'risk.json');
    writeFileSync(config, JSON.stringify(DEFAULT_RISK_CONFIG_INPUT));
    const withConfig = await cli(
      'fund',
      'withdraw',
      '--amount',
      '400',
      '--key',
      'w2',
      '--config',
      config,
      ...at,
    );
    expect(withConfig.code).toBe(0);
    expect(withConfig.stdout).toMatch(/balance 600\.00 USD/);
  });

  it('deposits on a deployed stack of other rules without --config (a deposit needs none)', async () => {
    // 9b1cd3e made riskConfigFor refuse to assume the built-in rules on such a stack, for status, inject and replay;
    // a deposit asked it too, so recapitalising the fund in a crash needed the deployed file (session 40 review).
    const { stage, names } = await emulator.newStage('dep');
    const input = {
      ...DEFAULT_RISK_CONFIG_INPUT,
      insurance: { ...DEFAULT_RISK_CONFIG_INPUT.insurance, floor: '500' },
    };
    await publishStackOutputs(emulator.moto.endpoint, stage, names, {
      [OUTPUT_KEYS.riskConfigDigest]: riskConfigDigest(parseRiskConfig(input)),
    });
    const at = ['--target', 'localstack', '--endpoint', emulator.moto.endpoint, '--stage', stage];
    const deposit = await cli('fund', 'deposit', '--amount', '1000', '--key', 'd1', ...at);
    expect(deposit.stderr).not.toMatch(/--config/);
    expect(deposit.code).toBe(0);
    expect(deposit.stdout).toMatch(/balance 1,000\.00 USD/);
    // A withdrawal still needs the deployed file, checked against the stack's digest.
    expect((await cli('fund', 'withdraw', '--amount', '100', '--key', 'w1', ...at)).stderr).toMatch(
      /--config is required/,
    );
  });

  it('says the key it made before the money moves; run again with it, the money moves once', async () => {
    await createLocalResources(emulator.clients, 'keyed');
    const at = ['--endpoint', emulator.moto.endpoint, '--stage', 'keyed'];
    const first = await cli('fund', 'deposit', '--amount', '250', ...at);
    expect(first.code).toBe(0);
    const key = /under idempotency key (\S+); if it does not finish, run it again with --key \1$/m.exec(
      first.stderr,
    )?.[1];
    expect(key).toBeDefined();
    // As after a run that timed out once its write was done: the same key moves nothing more.
    const again = await cli('fund', 'deposit', '--amount', '250', '--key', key!, ...at);
    expect(again.code).toBe(0);
    expect(again.stderr).toBe('');
    expect(again.stdout).toMatch(
      /already applied \(journal entry 1, \S+\): nothing moved now; balance 250\.00 USD\n$/,
    );
  });
  // Session 41 (fund-journal-actor): the CLI writes the ledger directly under the operator's credentials, and the
  // journal said `admin`, never who.
  it("journals a withdrawal with the caller's ARN, as STS answers for the CLI's credentials", async () => {
    const names = await createLocalResources(emulator.clients, 'actor1');
    const at = ['--endpoint', emulator.moto.endpoint, '--stage', 'actor1'];
    const config = path.join(emulator.dir, 'risk-actor.json');
    writeFileSync(config, JSON.stringify(DEFAULT_RISK_CONFIG_INPUT));
    expect((await cli('fund', 'deposit', '--amount', '1000', '--key', 'd1', ...at)).code).toBe(0);
    const run = await cli(
      'fund',
      'withdraw',
      '--amount',
      '400',
      '--key',
      'w1',
      '--config',
      config,
      '--json',
      ...at,
    );
    expect(run.code).toBe(0);
    // moto's answer to GetCallerIdentity for credentials no IAM user of it holds.
    const moto = 'arn:aws:sts::123456789012:user/moto';
    expect(JSON.parse(run.stdout).entry).toMatchObject({ amount: '-400', actor: moto });
    // As stored: the journal entry read back from the ledger table.
    const { ledger } = createAwsAdapters({ clients: emulator.clients, names, clock: systemClock });
    const journal = await ledger.journal(INSURANCE_ACCOUNT);
    expect(journal.map((e) => [e.kind, e.actor])).toEqual([
      ['deposit', moto],
      ['withdraw', moto],
    ]);
    // And shown where the journal is printed.
    const status = await cli('status', ...at);
    expect(status.stdout).toMatch(
      / withdraw -400\.00 -> 600\.00 \(admin by arn:aws:sts::123456789012:user\/moto\)/,
    );
  });

  // admin51-declared-operator: every fund movement's request declares who asks (the admin function's schema requires
  // it); the CLI sends its caller's ARN, or --operator, journaled apart from the actor STS named.
  it('declares its caller as the operator by default, --operator otherwise, and refuses a bad one before anything moves', async () => {
    const { names, at } = await emulator.newStage('oper');
    const config = path.join(emulator.dir, 'risk-oper.json');
    writeFileSync(config, JSON.stringify(DEFAULT_RISK_CONFIG_INPUT));
    const moto = 'arn:aws:sts::123456789012:user/moto';
    expect((await cli('fund', 'deposit', '--amount', '100', '--key', 'd1', ...at)).stdout).toBe(
      `fund deposit 100.00 USD: balance 100.00 USD (journal entry 1, key d1, by ${moto})\n`,
    );
    const declared = await cli(
      'fund',
      'withdraw',
      '--amount',
      '40',
      '--key',
      'w1',
      '--operator',
      '  Jane Doe (treasury)  ',
      '--config',
      config,
      ...at,
    );
    expect([declared.code, declared.stdout]).toEqual([
      0,
      `fund withdraw 40.00 USD: balance 60.00 USD (journal entry 2, key w1, by ${moto}, declared operator Jane Doe (treasury) (unverified))\n`,
    ]);
    const json = await cli(
      'fund',
      'deposit',
      '--amount',
      '1',
      '--key',
      'd2',
      '--operator',
      'ops-7',
      '--json',
      ...at,
    );
    expect(JSON.parse(json.stdout).entry).toMatchObject({ actor: moto, declaredOperator: 'ops-7' });
    const { ledger } = createAwsAdapters({ clients: emulator.clients, names, clock: systemClock });
    const who = async () =>
      (await ledger.journal(INSURANCE_ACCOUNT)).map((e) => [e.actor, e.declaredOperator, e.invocationId]);
    const journaled = [
      [moto, moto, undefined],
      [moto, 'Jane Doe (treasury)', undefined],
      [moto, 'ops-7', undefined],
    ];
    expect(await who()).toEqual(journaled);
    // Refused as usage (exit 2) before the target is opened: nothing moved.
    for (const [operator, why] of [
      ['   ', 'blank: say who asks (a name or an IAM ARN)'],
      ['x'.repeat(2049), 'at most 2048 characters'],
      ['jane\u001b[2J', 'printable characters only (no control, format or separator character)'],
      [
        '=HYPERLINK("https://example.com")',
        'must begin with a letter or a digit (a spreadsheet reads a cell beginning with = + - @ as a formula)',
      ],
    ] as const) {
      const refused = await cli(
        'fund',
        'deposit',
        '--amount',
        '5',
        '--key',
        'd9',
        '--operator',
        operator,
        ...at,
      );
      expect([refused.code, refused.stderr]).toEqual([2, `backstop: --operator: ${why}\n`]);
    }
    expect(await who()).toEqual(journaled);
    // Not an option of the subcommands that move no money.
    const index = await cli('fund', 'index-journal', '--operator', 'jane', ...at);
    expect(index.code).toBe(2);
  });

  // review51-admin-operator-arn: the default operator, the caller's ARN, was refused past 128 characters.
  it("declares an assumed role's ARN at its longest (175 characters) by default, and refuses one past any ARN before anything moves", async () => {
    const { names, at } = await emulator.newStage('longarn');
    // STS's longest assumed-role ARN: the longest partition, a 64-character role name, a 64-character session name.
    const longest = `arn:aws-us-gov:sts::123456789012:assumed-role/${'r'.repeat(64)}/${'s'.repeat(64)}`;
    expect(longest).toHaveLength(175);
    let arn = longest;
    const spy = vi
      .spyOn(STSClient.prototype, 'send')
      .mockImplementation((async () => ({ Arn: arn })) as never);
    try {
      const { ledger } = createAwsAdapters({ clients: emulator.clients, names, clock: systemClock });
      const taken = await cli('fund', 'deposit', '--amount', '5', '--key', 'd1', '--json', ...at);
      expect(taken.code, taken.stderr).toBe(0);
      expect(JSON.parse(taken.stdout).entry).toMatchObject({ actor: longest, declaredOperator: longest });
      // STS answers no ARN past an IAM ARN's longest; were it to, the default is refused before anything moves.
      arn = `arn:aws:iam::123456789012:user/${'u'.repeat(2048)}`;
      const refused = await cli('fund', 'deposit', '--amount', '5', '--key', 'd2', ...at);
      expect([refused.code, refused.stderr]).toEqual([
        2,
        `backstop: fund deposit refused: the caller's ARN (${arn.length} characters) cannot be the declared operator (at most 2048 characters): say who asks with --operator; nothing moved\n`,
      ]);
      expect((await ledger.journal(INSURANCE_ACCOUNT)).map((e) => [e.actor, e.declaredOperator])).toEqual([
        [longest, longest],
      ]);
    } finally {
      spy.mockRestore();
    }
  });

  // Session 46 (withdraw46-unreconciled): a drill of the runbook withdrew from a fund whose balance item had been
  // written by hand, liquidations settled since; nothing refused it.
  it('refuses a withdrawal while the fund does not reconcile, and still takes a deposit', async () => {
    const { names, at } = await emulator.newStage('unrec');
    const config = path.join(emulator.dir, 'risk-unrec.json');
    writeFileSync(config, JSON.stringify(DEFAULT_RISK_CONFIG_INPUT));
    expect((await cli('fund', 'deposit', '--amount', '100', '--key', 'd1', ...at)).code).toBe(0);
    // By hand, as the runbook's case: 10 USD more in the balance item, no journal entry; then the fund moves on.
    await emulator.clients.dynamo.send(
      new UpdateItemCommand({
        TableName: names.tables.ledger,
        Key: { pk: { S: `ACCOUNT#${INSURANCE_ACCOUNT}` }, sk: { S: 'BALANCE' } },
        UpdateExpression: 'SET balance = :n',
        ConditionExpression: 'balance = :o',
        ExpressionAttributeValues: { ':n': { N: '110000000' }, ':o': { N: '100000000' } },
      }),
    );
    expect((await cli('fund', 'deposit', '--amount', '5', '--key', 'd2', ...at)).code).toBe(0);
    const refused = await cli('fund', 'withdraw', '--amount', '30', '--key', 'w1', '--config', config, ...at);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe(
      "backstop: fund withdraw refused: admin/fund-not-reconciled: the fund's balance does not reconcile with its " +
        "journal (balance 115.00 USD at entry 2; difference +10.00 USD from the journal's sum; entry 2: balanceBefore " +
        '110.00 != 100.00, the sum of the entries before it (+10.00)); nothing moved. Withdrawals are refused until it ' +
        'does: do not move money to cover the difference (it would hide it); escalate (docs/DEPLOY.md, "Ledger ' +
        'difference"). Deposits are still taken\n',
    );
    const { ledger } = createAwsAdapters({ clients: emulator.clients, names, clock: systemClock });
    expect((await ledger.journal(INSURANCE_ACCOUNT)).map((e) => e.idempotencyKey)).toEqual([
      'admin:d1',
      'admin:d2',
    ]);
    expect((await ledger.balance(INSURANCE_ACCOUNT)).balance).toBe(115_000_000n);
    // Adding money in a crisis is never held.
    const deposit = await cli('fund', 'deposit', '--amount', '50', '--key', 'd3', ...at);
    expect([deposit.code, deposit.stdout]).toEqual([
      0,
      expect.stringMatching(/^fund deposit 50\.00 USD: balance 165\.00 USD/),
    ]);
    // The usage says so.
    expect((await cli('fund', '--help')).stdout).toMatch(
      /withdraw is refused, and moves nothing, while the fund's balance does not reconcile with its journal[\s\S]*A deposit is never held for it\./,
    );
  });

  // withdraw46-status-refused: status showed the fund NOT RECONCILED but not whether withdrawals are refused, which
  // was not the same thing: a draw window above a lowered cap is a reconcile problem no withdrawal is refused for.
  // Since status46-journal-bounded the fund's line is the withdrawal's check, and the cap its draw window's problem.
  it("status says whether withdrawals are refused, by the withdrawal's own check and in its words", async () => {
    const { names, at } = await emulator.newStage('wstat');
    const lowered = path.join(emulator.dir, 'risk-wstat.json');
    writeFileSync(
      lowered,
      JSON.stringify({
        ...DEFAULT_RISK_CONFIG_INPUT,
        insurance: { drawCapPerWindow: '50', windowSeconds: 3600, floor: '0' },
      }),
    );
    expect((await cli('fund', 'deposit', '--amount', '1000', '--key', 'd1', ...at)).code).toBe(0);
    // A shortfall payout drew 100 in this window under the cap of then; the cap is now 50.
    const { ledger } = createAwsAdapters({ clients: emulator.clients, names, clock: systemClock });
    await ledger.apply({
      account: INSURANCE_ACCOUNT,
      idempotencyKey: 'p1:0:payout',
      amount: -100_000_000n,
      kind: 'shortfall-payout',
      reference: 'p1:0',
      atMs: Date.now(),
      floor: 0n,
      drawWindow: { windowStartMs: Date.now(), cap: 1_000_000_000n },
    });
    const status = async () => {
      const shown = await cli('status', '--config', lowered, ...at);
      const json = await cli('status', '--json', '--config', lowered, ...at);
      return { text: shown.stdout, fund: JSON.parse(json.stdout).insuranceFund };
    };
    const drawn = await status();
    expect(drawn.fund).toMatchObject({
      reconciled: true,
      problems: [],
      drawWindow: { problem: 'window drawn 100.00 is above the draw cap 50.00' },
      withdrawals: { refused: false, code: null, reason: null },
    });
    expect(drawn.text).toContain(
      '  problem: window drawn 100.00 is above the draw cap 50.00 (a cap lowered within the window: ledger-reconcile alarms until it ends; no withdrawal is refused for it)\n',
    );
    expect(drawn.text).not.toMatch(/WITHDRAWALS REFUSED|NOT RECONCILED/);
    // As status says: the withdrawal goes.
    const goes = await cli('fund', 'withdraw', '--amount', '10', '--key', 'w1', '--config', lowered, ...at);
    expect(goes.code).toBe(0);

    // The balance item written by hand: refused, and status says so in the refusal's own words.
    await emulator.clients.dynamo.send(
      new UpdateItemCommand({
        TableName: names.tables.ledger,
        Key: { pk: { S: `ACCOUNT#${INSURANCE_ACCOUNT}` }, sk: { S: 'BALANCE' } },
        UpdateExpression: 'SET balance = balance + :gap',
        ExpressionAttributeValues: { ':gap': { N: '10000000' } },
      }),
    );
    const refused = await cli(
      'fund',
      'withdraw',
      '--amount',
      '10',
      '--key',
      'w2',
      '--config',
      lowered,
      ...at,
    );
    expect(refused.code).toBe(2);
    const reason = refused.stderr.replace(/^backstop: fund withdraw refused: /, '').replace(/\n$/, '');
    expect(reason).toMatch(/^admin\/fund-not-reconciled: .*difference \+10\.00 USD/);
    const broken = await status();
    expect(broken.fund.withdrawals).toEqual({ refused: true, code: 'admin/fund-not-reconciled', reason });
    expect(broken.fund).toMatchObject({ reconciled: false, verdict: 'unreconciled', difference: '10' });
    expect(broken.text).toContain(`  WITHDRAWALS REFUSED: ${reason}\n`);
    expect(broken.text).toContain('NOT RECONCILED (difference 10.00 USD)');
  });

  // review46-repair-conditional: DEPLOY.md's repair said "the balance item put back as the journal says" and the
  // entries from N "and every later one" fixed, with no word of the fund moving meanwhile (fees and payouts are never
  // held): a put of a balance read before a fee committed loses the fee (a new difference), and entries fixed before
  // the balance leave those written in between chained from the old one. The repair as the runbook now says it,
  // with a fee landing between the operator's read and write.
  it('repairs a balance written by hand as the runbook says, while the fund moves, and withdrawals go again', async () => {
    const deploy = readFileSync(path.join(import.meta.dirname, '../../docs/DEPLOY.md'), 'utf8');
    const entry = deploy.slice(deploy.indexOf('- Ledger difference (`LedgerReconcileAlarm`)'));
    const runbook = entry.slice(0, entry.indexOf('\n- ')).replace(/\s+/g, ' ');
    for (const said of [
      'first the balance item put back as the journal says (the balance less the gap) by one `UpdateItem` conditioned on the sequence and balance just read',
      '`ConditionExpression "#seq = :seq AND balance = :read"`',
      'a refused update means the fund moved, so read it again',
      "every later one up to the sequence the update was conditioned on (the ledger table's index `journalBySequence`), less the gap",
    ])
      expect(runbook).toContain(said);

    const { names, at } = await emulator.newStage('repair');
    const config = path.join(emulator.dir, 'risk-repair.json');
    writeFileSync(config, JSON.stringify(DEFAULT_RISK_CONFIG_INPUT));
    const dynamo = emulator.clients.dynamo;
    const TableName = names.tables.ledger;
    const pk = { S: `ACCOUNT#${INSURANCE_ACCOUNT}` };
    const deposit = async (amount: string, key: string) =>
      expect((await cli('fund', 'deposit', '--amount', amount, '--key', key, ...at)).code).toBe(0);
    await deposit('100', 'd1');
    // The write by hand (+10 USD, no entry), then the fund moves on: entry 2 reads the gap (+10.00).
    await dynamo.send(
      new UpdateItemCommand({
        TableName,
        Key: { pk, sk: { S: 'BALANCE' } },
        UpdateExpression: 'SET balance = :n',
        ExpressionAttributeValues: { ':n': { N: '110000000' } },
      }),
    );
    await deposit('5', 'd2');
    const gap = 10_000_000n;

    const read = async () => {
      const { Item } = await dynamo.send(
        new GetItemCommand({ TableName, Key: { pk, sk: { S: 'BALANCE' } }, ConsistentRead: true }),
      );
      return { sequence: Item!.sequence!.N!, balance: BigInt(Item!.balance!.N!) };
    };
    const putBack = (seen: { sequence: string; balance: bigint }) =>
      dynamo.send(
        new UpdateItemCommand({
          TableName,
          Key: { pk, sk: { S: 'BALANCE' } },
          UpdateExpression: 'SET balance = :fixed',
          ConditionExpression: '#seq = :seq AND balance = :read',
          ExpressionAttributeNames: { '#seq': 'sequence' },
          ExpressionAttributeValues: {
            ':fixed': { N: String(seen.balance - gap) },
            ':seq': { N: seen.sequence },
            ':read': { N: String(seen.balance) },
          },
        }),
      );
    const stale = await read();
    // A settlement's fee commits between the operator's read and write: the update is refused, nothing lost.
    await deposit('1', 'fee');
    await expect(putBack(stale)).rejects.toMatchObject({ name: 'ConditionalCheckFailedException' });
    const seen = await read();
    await putBack(seen);
    // Entry 2 (the first with the gap) up to the sequence the update was conditioned on, less the gap.
    const { Items } = await dynamo.send(
      new QueryCommand({
        TableName,
        IndexName: JOURNAL_SEQUENCE_INDEX,
        KeyConditionExpression: 'pk = :pk AND journalSequence BETWEEN :n AND :m',
        ExpressionAttributeValues: { ':pk': pk, ':n': { N: '2' }, ':m': { N: seen.sequence } },
      }),
    );
    expect(Items!.map((i) => i.sequence!.N)).toEqual(['2', '3']);
    for (const item of Items!)
      await dynamo.send(
        new UpdateItemCommand({
          TableName,
          Key: { pk, sk: item.sk! },
          UpdateExpression: 'SET balanceBefore = balanceBefore - :gap, balanceAfter = balanceAfter - :gap',
          ExpressionAttributeValues: { ':gap': { N: String(gap) } },
        }),
      );
    // A movement after the update chains from the balance put back; the write meant, if real money, deposited.
    await deposit('10', 'meant');

    const status = await cli('status', '--json', ...at);
    const fund = JSON.parse(status.stdout).insuranceFund;
    expect([fund.reconciled, fund.difference, fund.problems]).toEqual([true, '0', []]);
    expect(fund.withdrawals).toEqual({ refused: false, code: null, reason: null });
    const withdraw = await cli(
      'fund',
      'withdraw',
      '--amount',
      '30',
      '--key',
      'w1',
      '--config',
      config,
      ...at,
    );
    expect([withdraw.code, withdraw.stdout]).toEqual([
      0,
      expect.stringMatching(/^fund withdraw 30\.00 USD: balance 86\.00 USD/),
    ]);
  });
});
