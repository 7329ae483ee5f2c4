import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DeleteItemCommand, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { createAwsAdapters } from '../../shared/adapters/aws/index.ts';
import { SqsQueueTransport } from '../../shared/adapters/aws/sqs-queue.ts';
import { systemClock } from '../../shared/adapters/embedded/clock.ts';
import { parseBase, parsePrice, parseQuote } from '../../shared/domain/units.ts';
import { type LocalStack, startLocalStack } from '../../shared/local/stack.ts';
import { cli } from '../support/cli.ts';
import { type MotoServer, startMoto } from '../support/moto.ts';

/**
 * docs/DEPLOY.md's dead-letter entry ("When an alarm fires", `LiquidationsDlqAlarm`) followed as an on-call reads it, on
 * the emulator with the real functions: a liquidation dead-lettered by its real consumer, then each command the entry
 * names, taken from the entry's own text (placeholders filled, `--target aws` swapped for the emulator's flags), run
 * as the CLI, until what the alarm reads is empty (oncall50-dlq-drill). A command the entry stops naming, or one that
 * no longer does what the entry says, fails here.
 */

const WAIT = { timeout: 60_000, interval: 100 };
const deploy = readFileSync(path.resolve(import.meta.dirname, '../../docs/DEPLOY.md'), 'utf8');
const runbook = deploy.slice(deploy.indexOf('**When an alarm fires**'), deploy.indexOf('\nStack outputs'));
/** The runbook's entry (its bullet) that names `alarm`, on one line. */
function runbookEntry(alarm: string): string {
  const entry = runbook.split(/\n- /).find((b) => b.includes(`\`${alarm}\``));
  if (entry === undefined) throw new Error(`no runbook entry names ${alarm}`);
  return entry.replace(/\s+/g, ' ');
}

/** The command the entry names, as it spells it (in backticks), as argv with `fill`'s values for its placeholders. */
function command(entry: string, spelled: string, fill: Record<string, string>): string[] {
  expect(entry, `the entry names \`${spelled}\``).toContain(`\`${spelled}\``);
  return spelled
    .replace(/<(\w+)>/g, (_, name: string) => fill[name] ?? `<${name}>`)
    .split(' ')
    .slice(1);
}

let moto: MotoServer;
let stack: LocalStack;
const STAGE = 'oncall';
let target: string[];

beforeAll(async () => {
  vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'CRITICAL'); // the failing deliveries' ERROR lines
  moto = await startMoto();
  stack = await startLocalStack({ endpoint: moto.endpoint, stage: STAGE, fastRetries: true });
  // What `--target aws` is on the emulator: the stage's resources at this endpoint.
  target = ['--target', 'local', '--endpoint', moto.endpoint, '--stage', STAGE];
}, 60_000);
afterAll(async () => {
  await stack?.stop();
  await moto?.stop();
  vi.unstubAllEnvs();
});

it("follows the dead-letter entry's commands to an empty dead-letter queue: list, show, fix, redrive, discard (oncall50-dlq-drill)", async () => {
  const entry = runbookEntry('LiquidationsDlqAlarm');
  expect(runbook).toContain('`--target aws` on each command');
  const a = createAwsAdapters({ clients: stack.clients, names: stack.names, clock: systemClock });
  const { names, clients } = stack;
  await a.markets.acceptTick(
    'ETH-USD',
    { sequence: 1, markPrice: parsePrice('1500'), timestampMs: Date.now() },
    undefined,
    false,
  );
  // A position healthy at the mark, its liquidation queued: then its item is lost (the cause), so every delivery of
  // the liquidation fails until the consumer's receives run out and SQS moves it to the dead-letter queue.
  const position = {
    id: 'p1',
    traderId: 't-p1',
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
  await a.liquidations.begin(position, {
    id: 'p1:0',
    positionId: 'p1',
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
  expect(entry).toContain('`backstop status --target aws` shows the dead-letter queue empty at once');
  expect((await cli('status', ...target)).stdout).toMatch(/^dead letters {4}0 /m);
  expect(stack.runner.errors.map((e) => e.functionId)).not.toContain('liquidationWatch');
}, 180_000);
