import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DeleteItemCommand, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { createAwsAdapters } from '../../shared/adapters/aws/index.ts';
import { SqsQueueTransport } from '../../shared/adapters/aws/sqs-queue.ts';
import { systemClock } from '../../shared/adapters/embedded/clock.ts';
import { DEFAULT_RISK_CONFIG_INPUT } from '../../shared/domain/config.ts';
import { parseBase, parsePrice, parseQuote } from '../../shared/domain/units.ts';
import { type LocalStack, startLocalStack } from '../../shared/local/stack.ts';
import { cli } from '../support/cli.ts';
import { type MotoServer, startMoto } from '../support/moto.ts';

/**
 * docs/DEPLOY.md's runbook ("When an alarm fires") followed as an on-call reads it, on the emulator with the real
 * functions: the dead-letter entry (`LiquidationsDlqAlarm`) on a liquidation its real consumer dead-lettered, the
 * overdue entry (`LiquidationsOverdueAlarm`) on one whose message was lost, the feed's (`FeedNumberingAlarm`,
 * `TicksOutOfOrderAlarm`) on a feed restarted lower and a stray behind it, the fund's (`InsuranceFundLowAlarm`) on a
 * deposit. Each command is taken from the entry's own
 * text (placeholders and risk.json filled, `--target aws` swapped for the emulator's flags) and run as the CLI, until
 * what the alarm reads is clear (oncall50-dlq-drill, oncall50-overdue-drill, oncall50-feed-drill). A command the entry stops naming, or one
 * that no longer does what the entry says, fails here.
 */

const WAIT = { timeout: 60_000, interval: 100 };
const deploy = readFileSync(path.resolve(import.meta.dirname, '../../docs/DEPLOY.md'), 'utf8');
const runbook = deploy.slice(deploy.indexOf('**When an alarm fires**'), deploy.indexOf('\nStack outputs'));
/** The runbook's entry for `alarm` (the bullet that names it earliest: its own, not one pointing to it), on one line. */
function runbookEntry(alarm: string): string {
  const named = runbook
    .split(/\n- /)
    .filter((b) => b.includes(`\`${alarm}\``))
    .sort((a, b) => a.indexOf(`\`${alarm}\``) - b.indexOf(`\`${alarm}\``));
  if (named[0] === undefined) throw new Error(`no runbook entry names ${alarm}`);
  return named[0].replace(/\s+/g, ' ');
}

/** The command the entry names, as it spells it (in backticks), as argv with `fill`'s values for its placeholders. */
function command(entry: string, spelled: string, fill: Record<string, string>, riskJson?: string): string[] {
  expect(entry, `the entry names \`${spelled}\``).toContain(`\`${spelled}\``);
  return spelled
    .replace(/<(\w+)>/g, (_, name: string) => fill[name] ?? `<${name}>`)
    .split(' ')
    .slice(1)
    .map((word) => (word === 'risk.json' && riskJson !== undefined ? riskJson : word));
}

let moto: MotoServer;
let stack: LocalStack;
const STAGE = 'oncall';
let target: string[];
/** The CLI's state folder (BACKSTOP_STATE_DIR), the test's own: not .backstop in the repository. */
let stateDir: string | undefined;

beforeAll(async () => {
  vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'CRITICAL'); // the failing deliveries' ERROR lines
  stateDir = mkdtempSync(path.join(tmpdir(), 'backstop-oncall-state-'));
  vi.stubEnv('BACKSTOP_STATE_DIR', stateDir);
  moto = await startMoto();
  stack = await startLocalStack({ endpoint: moto.endpoint, stage: STAGE, fastRetries: true });
  // What `--target aws` is on the emulator: the stage's resources at this endpoint.
  target = ['--target', 'local', '--endpoint', moto.endpoint, '--stage', STAGE];
  const a = createAwsAdapters({ clients: stack.clients, names: stack.names, clock: systemClock });
  // A fresh mark: the drills run within maxMarkAgeSeconds of it.
  await a.markets.acceptTick(
    'ETH-USD',
    { sequence: 1, markPrice: parsePrice('1500'), timestampMs: Date.now() },
    undefined,
    false,
  );
}, 60_000);
afterAll(async () => {
  try {
    await stack?.stop();
    await moto?.stop();
  } finally {
    vi.unstubAllEnvs();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  }
});

/** A position healthy at the mark (1,500) and its liquidation, queued as a tick left it: no message sent yet. */
async function queuedLiquidation(positionId: string): Promise<string> {
  const a = createAwsAdapters({ clients: stack.clients, names: stack.names, clock: systemClock });
  const position = {
    id: positionId,
    traderId: `t-${positionId}`,
    symbol: 'ETH-USD',
    side: 'LONG' as const,
    size: parseBase('1'),
    entryPrice: parsePrice('1500'),
    collateral: parseQuote('300'),
    state: 'OPEN' as const,
    liquidationPrice: parsePrice('1250'),
    version: 0,
  };
  await a.positions.create(position);
  const id = `${positionId}:0`;
  await a.liquidations.begin(position, {
    id,
    positionId,
    symbol: 'ETH-USD',
    side: 'LONG',
    state: 'QUEUED',
    tickKey: 'ETH-USD#1',
    triggerMark: parsePrice('1200'),
    remainingSize: position.size,
    marketFills: [],
    history: [{ atMs: Date.now(), state: 'QUEUED' }],
    version: 0,
  });
  return id;
}

it("follows the dead-letter entry's commands to an empty dead-letter queue: list, show, fix, redrive, discard (oncall50-dlq-drill)", async () => {
  const entry = runbookEntry('LiquidationsDlqAlarm');
  expect(runbook).toContain('`--target aws` on each command');
  const a = createAwsAdapters({ clients: stack.clients, names: stack.names, clock: systemClock });
  const { names, clients } = stack;
  // Its position's item is then lost (the cause), so every delivery of the liquidation fails until the consumer's
  // receives run out and SQS moves it to the dead-letter queue.
  await queuedLiquidation('p1');
  const key = { id: { S: 'p1' } };
  const lost = await clients.dynamo.send(new GetItemCommand({ TableName: names.tables.positions, Key: key }));
  await clients.dynamo.send(new DeleteItemCommand({ TableName: names.tables.positions, Key: key }));
  await clients.sqs.send(
    new SendMessageCommand({
      QueueUrl: names.queues.liquidations.url,
      MessageBody: '{"liquidationId":"p1:0"}',
    }),
  );
  const dlqUrl = names.queues.liquidations.dlqUrl!;
  const dlq = new SqsQueueTransport(clients.sqs, { url: dlqUrl });
  await vi.waitFor(async () => expect((await dlq.depth()).visible).toBe(1), WAIT);
  // A poison message beside it: the entry's other case.
  await clients.sqs.send(new SendMessageCommand({ QueueUrl: dlqUrl, MessageBody: 'not json' }));

  // What the alarm reads besides SQS's count: liquidation-watch's DeadLetters, by queue.
  const watched = async () =>
    ((await stack.runner.triggerSchedule('liquidationWatch')) as { deadLetters: Record<string, number> })
      .deadLetters.liquidations;
  expect(await watched()).toBe(2);

  // 1. `backstop dlq list`: why each failed.
  const list = await cli(...command(entry, 'backstop dlq list', {}), ...target);
  expect(list.code).toBe(0);
  expect(list.stdout).toContain('liquidation p1:0 in QUEUED');
  expect(list.stdout).toContain('liquidation/position-missing: p1');
  expect(list.stdout).toContain('poison: not a liquidation message');

  // 2. `backstop liquidations show <liquidationId>`: where it stands.
  const show = await cli(
    ...command(entry, 'backstop liquidations show <liquidationId>', { liquidationId: 'p1:0' }),
    ...target,
  );
  expect(show.code).toBe(0);
  expect(show.stdout).toContain('QUEUED');
  expect(show.stdout).toContain('liquidation/position-missing');

  // 3. Fix the cause (the item restored), then `backstop dlq redrive --queue <queue>`.
  await clients.dynamo.send(new PutItemCommand({ TableName: names.tables.positions, Item: lost.Item! }));
  const redrive = await cli(
    ...command(entry, 'backstop dlq redrive --queue <queue>', { queue: 'liquidations' }),
    '--json',
    ...target,
  );
  const { redriven } = JSON.parse(redrive.stdout) as {
    redriven: { queue: string; moved: number; failed: { reason: string }[] }[];
  };
  expect(redriven).toMatchObject([{ queue: 'liquidations', moved: 1 }]);
  // The poison message stays (nothing to resume), named with the discard that removes it: exit 1, as the entry says.
  expect(redriven[0]!.failed.map((f) => f.reason.split(';')[0])).toEqual([
    'poison: not a liquidation message',
  ]);
  expect(entry).toContain('`dlq redrive` exits 1 when it left a message it read');
  expect(redrive.code).toBe(1);
  await stack.runner.runUntilIdle({ deadlineMs: 60_000 });
  // Healthy at the mark: the consumer cancels it and the position goes back to the book.
  expect(await a.liquidations.get('p1:0')).toMatchObject({ state: 'CANCELLED' });
  expect(await a.positions.get('p1')).toMatchObject({ state: 'OPEN' });

  // 4. The poison message: `backstop dlq discard --queue <queue> --message-id <id>` prints its body and removes it.
  const again = await cli('dlq', 'list', '--json', ...target);
  const left = (
    JSON.parse(again.stdout) as { messages: { queue: string; messageId: string; body: string }[] }
  ).messages;
  expect(left.map((m) => [m.queue, m.body])).toEqual([['liquidations', 'not json']]);
  const discard = await cli(
    ...command(entry, 'backstop dlq discard --queue <queue> --message-id <id>', {
      queue: 'liquidations',
      id: left[0]!.messageId,
    }),
    ...target,
  );
  expect(discard.code).toBe(0);
  expect(discard.stdout).toContain('not json');

  // What the alarm reads is empty by both sources (`backstop status` says so at once): it returns to OK 15 minutes after the last minute it read one.
  expect(await watched()).toBe(0);
  const depth = await dlq.depth();
  expect([depth.visible, depth.inFlight, depth.delayed]).toEqual([0, 0, 0]);
  expect(entry).toContain('`backstop status --target aws` shows the dead-letter queue empty');
  expect((await cli('status', ...target)).stdout).toMatch(/^dead letters {4}0 /m);
  expect(stack.runner.errors.map((e) => e.functionId)).not.toContain('liquidationWatch');
}, 180_000);

it("resumes with the overdue entry's command a liquidation whose message was lost, not waiting an hour (oncall50-overdue-drill)", async () => {
  const entry = runbookEntry('LiquidationsOverdueAlarm');
  const a = createAwsAdapters({ clients: stack.clients, names: stack.names, clock: systemClock });
  // Its message lost (a purged queue): nothing moves it.
  const id = await queuedLiquidation('p2');
  const config = path.join(mkdtempSync(path.join(tmpdir(), 'backstop-oncall-')), 'risk.json');
  writeFileSync(config, JSON.stringify(DEFAULT_RISK_CONFIG_INPUT));
  try {
    // Too young to judge: the entry's own words for it.
    const young = await cli(
      ...command(entry, 'backstop liquidations overdue --config risk.json', {}, config),
      ...target,
    );
    expect(young.code).toBe(0);
    expect(entry).toContain('`0 overdue; 13 open, none old enough to judge yet (the first in 15 min)`');
    expect(young.stdout).toMatch(
      /^0 overdue; 1 open, none old enough to judge yet \(the first in \d+ min\)$/m,
    );
    const resend = await cli(
      ...command(entry, 'backstop liquidations overdue --all --resend --config risk.json', {}, config),
      ...target,
    );
    expect(resend.code).toBe(0);
    expect(resend.stdout).toContain(`  ${id} ETH-USD QUEUED, started `);
    expect(resend.stdout).toContain('resent 1');
    await stack.runner.runUntilIdle({ deadlineMs: 60_000 });
    // Healthy at the mark: the consumer cancels it. Its OK's proof: the list holds none.
    expect(await a.liquidations.get(id)).toMatchObject({ state: 'CANCELLED' });
    const after = await cli('liquidations', 'overdue', '--all', '--config', config, ...target);
    expect(after.stdout).not.toContain(id);
  } finally {
    rmSync(path.dirname(config), { recursive: true, force: true });
  }
}, 120_000);

it("moves a market onto a feed restarted lower with the numbering entry's commands, and tells it from ticks out of order (oncall50-feed-drill)", async () => {
  const numbering = runbookEntry('FeedNumberingAlarm');
  const outOfOrder = runbookEntry('TicksOutOfOrderAlarm');
  const start = Date.now() - 30_000;
  const tick = async (sequence: number, timestamp: number) => {
    const detail = { symbol: 'BTC-USD', markPrice: '60000', timestamp, sequence, source: 'oncall' };
    expect(await stack.putTicks([detail])).toEqual([]);
    await stack.runner.runUntilIdle({ deadlineMs: 60_000 });
  };
  const config = path.join(mkdtempSync(path.join(tmpdir(), 'backstop-oncall-')), 'risk.json');
  writeFileSync(config, JSON.stringify(DEFAULT_RISK_CONFIG_INPUT));
  const market = async () => {
    const run = await cli('status', '--json', '--config', config, ...target);
    return (
      JSON.parse(run.stdout) as {
        markets: Record<string, { lastSequence: number; refused?: Record<string, { count: number }> }>;
      }
    ).markets['BTC-USD']!;
  };
  try {
    // The old feed at 1,000 (a market opens on its second print), then the feed restarted at 1, its clock running on:
    // held off the numbering (FeedNumberingAlarm), not out of order.
    await tick(1000, start);
    await tick(1001, start + 1_000);
    for (let sequence = 1; sequence <= 6; sequence++) await tick(sequence, start + 6_000 + sequence * 1_000);
    const first = await cli(
      ...command(outOfOrder, 'backstop status --config risk.json --target aws', {}, config).slice(0, -2),
      ...target,
    );
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(
      /^market BTC-USD .*\(sequence 1001 at .*, sequence behind at 1 held since /m,
    );
    expect(first.stdout).not.toContain('refused tick/out-of-order');
    const confirming =
      /^ {2}refused tick\/sequence-confirming: 5 ticks since \S+, the latest (\d+) at /m.exec(first.stdout);
    expect(confirming?.[1]).toBe('6');
    // The latest refused as N, as the entry allows.
    const resume = await cli(
      ...command(
        numbering,
        'backstop feed resume --symbol <market> --from-sequence <N> --config risk.json',
        { market: 'BTC-USD', N: confirming![1]! },
        config,
      ),
      ...target,
    );
    expect(resume.code, resume.stderr).toBe(0);
    // Stamped within maxClockSkewSeconds of the old feed's last: taken for the old feed's, refused, as the entry says.
    expect(numbering).toContain(
      "more than `maxClockSkewSeconds` (5 s) after the old feed's last recorded print",
    );
    await tick(7, start + 1_000 + 5_000);
    expect(await market()).toMatchObject({ lastSequence: 5 });
    // A millisecond later: the new feed's (review50-oncall-resume-breaker: the cut-off pinned, not 8 s past it).
    await tick(7, start + 1_000 + 5_001);
    expect(await market()).toMatchObject({ lastSequence: 7 });

    // A second source numbered behind the live feed, stamped as it is: out of order, which no resume helps.
    expect(outOfOrder).toContain('a second publisher numbered behind the live feed');
    for (const sequence of [3, 4]) await tick(sequence, start + 6_001);
    // The alarm's metric counts both; status's trace does not move, numbered below the refusal it holds, as said.
    expect(outOfOrder).toContain(
      'a source numbered below the tick it holds shows there as nothing new, and while no tick is accepted the trace stays, however old',
    );
    expect((await market()).refused?.['tick/out-of-order']).toMatchObject({ sequence: 7, count: 1 });
  } finally {
    rmSync(path.dirname(config), { recursive: true, force: true });
  }
}, 120_000);

it("shows the fund entry's deposit at ledger-reconcile's next run, which reports the balance its OK reads (oncall50-runbook-ok)", async () => {
  const entry = runbookEntry('InsuranceFundLowAlarm');
  const deposit = await cli(
    ...command(entry, 'backstop fund deposit --amount <amount>', { amount: '2500' }),
    ...target,
  );
  expect(deposit.code, deposit.stderr).toBe(0);
  // The CLI writes the ledger itself and reports no metric: the next run reports the balance (InsuranceFundBalance).
  expect(entry).toContain(
    '`backstop fund deposit` writes the ledger itself, so its deposit shows at the next run',
  );
  const run = (await stack.runner.triggerSchedule('ledgerReconcile')) as {
    balance: string;
    reconciled: boolean;
  };
  expect(run).toMatchObject({ balance: '2500', reconciled: true });
});

it("tops up a provider with the liquidity entry's registration, every term kept and its capital the whole it is to have (review50-oncall-liquidity-register)", async () => {
  const entry = runbookEntry('BackstopLiquidityAlarm');
  // A provider of two markets, its BTC lot apart: a registration that left maxLotBySymbol out would make it 10 BTC.
  expect(
    await stack.runner.invoke('admin', {
      action: 'registerProvider',
      id: 'lp-oncall',
      capital: '250',
      maxDiscount: '0.02',
      maxLot: '10',
      maxLotBySymbol: { 'BTC-USD': '0.5' },
      symbols: ['ETH-USD', 'BTC-USD'],
    }),
  ).toMatchObject({ ok: true });
  const config = path.join(mkdtempSync(path.join(tmpdir(), 'backstop-oncall-')), 'risk.json');
  writeFileSync(config, JSON.stringify(DEFAULT_RISK_CONFIG_INPUT));
  try {
    const list = await cli(
      ...command(
        entry,
        'backstop providers list --market <market> --config risk.json',
        { market: 'ETH-USD' },
        config,
      ),
      ...target,
    );
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/^ {2}lp-oncall \(ETH-USD, BTC-USD\): capital 250\.00 USD unused; /m);
    const show = async () => {
      const run = await cli(
        ...command(entry, 'backstop providers show <id> --json --target aws', { id: 'lp-oncall' }).slice(
          0,
          -2,
        ),
        ...target,
      );
      expect(run.code, run.stderr).toBe(0);
      return (JSON.parse(run.stdout) as { provider: Record<string, unknown> }).provider;
    };
    const read = await show();
    // The entry's invocation as it spells it; `aws lambda invoke` is the admin function's invocation here.
    const invoke =
      /`aws lambda invoke --function-name <FunctionAdminName output> --cli-binary-format raw-in-base64-out --payload '(\{[^']+\})' out\.json`/.exec(
        entry,
      );
    expect(invoke, 'the entry gives the registration as a command').not.toBeNull();
    const withLots = /`(,"maxLotBySymbol":<maxLotBySymbol>)` before the last `\}` when shown/.exec(entry);
    expect(withLots, 'the entry says where maxLotBySymbol goes').not.toBeNull();
    const fill = (template: string, values: Record<string, string>) =>
      template.replace(/<(\w+)>/g, (_, name: string) => values[name] ?? `<${name}>`);
    const values = (provider: Record<string, unknown>, capital: string) => ({
      id: String(provider.id),
      capital,
      version: String(provider.version),
      maxDiscount: String(provider.maxDiscount),
      maxLot: String(provider.maxLot),
      symbols: JSON.stringify(provider.symbols),
      maxLotBySymbol: JSON.stringify(provider.maxLotBySymbol),
    });
    const payload = (provider: Record<string, unknown>, capital: string) => {
      const filled = fill(invoke![1]!, values(provider, capital));
      const body = provider.maxLotBySymbol
        ? `${filled.slice(0, -1)}${fill(withLots![1]!, values(provider, capital))}}`
        : filled;
      return JSON.parse(body) as unknown;
    };
    // 250 left, 1,000 added: the whole it is to have, as the entry says.
    expect(entry).toContain('the whole capital it is to have unused, not what it adds');
    expect(await stack.runner.invoke('admin', payload(read, '1250'))).toMatchObject({ ok: true });
    expect(await show()).toEqual({ ...read, capital: '1250', version: Number(read.version) + 1 });
    // A registration on the version read before: refused, nothing changed, as the entry says.
    expect(entry).toContain('refused, `admin/concurrent-change`, if an auction used the capital since');
    expect(await stack.runner.invoke('admin', payload(read, '5000'))).toMatchObject({
      ok: false,
      reason: expect.stringContaining('admin/concurrent-change'),
    });
    expect(await show()).toMatchObject({ capital: '1250' });
  } finally {
    rmSync(path.dirname(config), { recursive: true, force: true });
  }
}, 120_000);
