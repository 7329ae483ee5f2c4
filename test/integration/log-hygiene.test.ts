import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createAwsAdapters } from '../../shared/adapters/aws/index.ts';
import { systemClock } from '../../shared/adapters/embedded/clock.ts';
import type { RiskConfigInput } from '../../shared/domain/config.ts';
import type { Deployment } from '../../shared/local/deployment.ts';
import { listDeadLetters } from '../../shared/local/dlq.ts';
import { type LocalStack, startLocalStack } from '../../shared/local/stack.ts';
import { startMoto } from '../support/moto.ts';
import { AUCTION_ONLY } from '../support/risk-configs.ts';

/**
 * Issue 7, security: logs never contain whole account records or request credentials. The real handlers
 * (margin-check, liquidation-consumer, auction, admin, ledger-reconcile) run on moto through a realistic flow at
 * log level DEBUG, and every line the Powertools Logger writes is captured and searched for whole records:
 * a position (owner, size, entry price, collateral together), a provider (capital and bid terms together),
 * a ledger balance item or journal entry, a liquidation record, a raw DynamoDB item, the admin request itself.
 * Records carry distinctive values, so a record serialized in any shape (decimal or fixed point) is found.
 * Allowed: ids, states, counts, reasons, and ledger-reconcile's summary (the fund's balance against its journal
 * sum, which is what an operator reads it for).
 */

const env = vi.hoisted(() => {
  const before = { level: process.env.POWERTOOLS_LOG_LEVEL, dev: process.env.POWERTOOLS_DEV };
  // Every level, and the Logger's own Console on process.stdout/stderr (POWERTOOLS_DEV would use console.*).
  process.env.POWERTOOLS_LOG_LEVEL = 'DEBUG';
  delete process.env.POWERTOOLS_DEV;
  return before;
});

const restore = (name: string, value: string | undefined) => {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
};

// --- Distinctive records ---------------------------------------------------------------------------------

const TRADER = 'owner-7f3a9c';
const POSITION = {
  id: 'pos-hyg-1',
  size: ['10.12345678', '1012345678'],
  entryPrice: ['200.00004321', '20000004321'],
  collateral: ['203.456789', '203456789'],
} as const;
const PROVIDER = {
  id: 'lp-hyg-1',
  capital: ['123456.789012', '123456789012'],
  maxDiscount: ['0.0123', '12300'],
  maxLot: ['98.7654321', '9876543210'],
} as const;
const DEPOSIT = { amount: ['100007.654321', '100007654321'], key: 'seed-hyg-5d1e' } as const;
/** A credential a caller wrongly put into an admin request: refused, and never logged. */
const SMUGGLED_TOKEN = 'Bearer hyg-9d8c7b6a5f4e3d2c1b0a';

/**
 * A market the slippage bound keeps out (the auction takes the slice) and a fast auction whose end state does not
 * depend on how late its steps run (its price falls with wall time): its floor, 98 % of the mark (180.32 at 184),
 * is above the position's bankruptcy price (179.90), so it never clears where the fund must top it up; and its
 * cusp, 1 % of the start, is 459 s down the curve, beyond the flow's deadlines, so it never resets.
 */
const RISK: RiskConfigInput = {
  ...AUCTION_ONLY,
  auction: { ...AUCTION_ONLY.auction, floor: '0.98', cusp: '0.01' },
};

// --- Capture ---------------------------------------------------------------------------------------------

const lines: string[] = [];
const originalWrites = { stdout: process.stdout.write, stderr: process.stderr.write };

/** Keeps what the Logger writes (its Console writes to these streams) and prints nothing. */
function capture(): void {
  const keep = ((chunk: unknown, ...rest: unknown[]) => {
    lines.push(...String(chunk).split('\n').filter(Boolean));
    const done = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
    done?.();
    return true;
  }) as typeof process.stdout.write;
  process.stdout.write = keep;
  process.stderr.write = keep;
}

function release(): void {
  process.stdout.write = originalWrites.stdout;
  process.stderr.write = originalWrites.stderr;
}

// --- What may not be logged ------------------------------------------------------------------------------

/** Which of the forms of each value occur in a line. */
const present = (line: string, values: Readonly<Record<string, readonly string[]>>): string[] =>
  Object.entries(values)
    .filter(([, forms]) => forms.some((f) => line.includes(f)))
    .map(([name]) => name);

const parseJson = (line: string): unknown => {
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
};

/** Every object nested in a parsed line. */
const objectsOf = (value: unknown): Record<string, unknown>[] =>
  typeof value !== 'object' || value === null
    ? []
    : Array.isArray(value)
      ? value.flatMap(objectsOf)
      : [value as Record<string, unknown>, ...Object.values(value).flatMap(objectsOf)];

/** Key sets that make an object a whole record (or most of one). */
const RECORD_SHAPES: Readonly<Record<string, readonly string[]>> = {
  position: ['entryPrice', 'collateral'],
  'position owner': ['traderId', 'size'],
  provider: ['capital', 'maxDiscountPpm'],
  'provider lot': ['capital', 'maxLot'],
  'ledger balance item': ['balance', 'windowDrawn'],
  'ledger window': ['windowStartMs'],
  'journal entry': ['balanceBefore', 'balanceAfter'],
  'liquidation record': ['marketFills', 'auctionFills'],
  'liquidation history': ['history', 'tickKey'],
  'admin request': ['action', 'idempotencyKey'],
  'admin request (amount)': ['action', 'amount'],
};

/** Why a log line holds a whole record or a credential; empty when it is clean. */
function violations(line: string): string[] {
  const found: string[] = [];
  if (/\{\\*"[SNLMB]{1,2}\\*":/.test(line)) found.push('raw DynamoDB attribute value');
  if (line.includes(TRADER)) found.push("the position's owner");
  if (line.includes(SMUGGLED_TOKEN) || line.includes('hyg-9d8c7b6a5f4e3d2c1b0a')) found.push('a credential');
  const position = present(line, {
    size: POSITION.size,
    entryPrice: POSITION.entryPrice,
    collateral: POSITION.collateral,
  });
  if (position.length >= 2) found.push(`position fields together: ${position.join(', ')}`);
  const provider = present(line, {
    capital: PROVIDER.capital,
    maxDiscount: PROVIDER.maxDiscount,
    maxLot: PROVIDER.maxLot,
  });
  if (provider.length >= 2) found.push(`provider fields together: ${provider.join(', ')}`);
  // Text lines (the Metrics utility's warnings) get the checks above; JSON lines also the shapes below.
  for (const o of objectsOf(parseJson(line))) {
    for (const [shape, keys] of Object.entries(RECORD_SHAPES)) {
      if (keys.every((k) => k in o)) found.push(`${shape} (${keys.join(' + ')})`);
    }
  }
  return found;
}

// --- The flow --------------------------------------------------------------------------------------------

type Moto = Awaited<ReturnType<typeof startMoto>>;
let moto: Moto;
let stack: LocalStack;

const lambdaContext = {
  functionName: 'admin',
  awsRequestId: 'log-hygiene',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:admin',
  getRemainingTimeInMillis: () => 30_000,
};

const deployment = (): Deployment => ({
  kind: 'local',
  stage: 'loghyg',
  region: 'us-east-1',
  endpoint: moto.endpoint,
  clients: stack.clients,
  names: stack.names,
  close: () => {},
});

const invoke = (fn: 'admin' | 'ledgerReconcile', event: unknown) =>
  (stack.handlers[fn] as (e: unknown, c: unknown) => Promise<{ ok?: boolean; reason?: string }>)(
    event,
    lambdaContext,
  );

async function tick(price: string, sequence: number): Promise<void> {
  expect(
    await stack.putTicks([
      { symbol: 'ETH-USD', markPrice: price, timestamp: Date.now(), sequence, source: 'log-hygiene' },
    ]),
  ).toEqual([]);
  await stack.runner.runUntilIdle({ deadlineMs: 60_000 });
}

beforeAll(async () => {
  moto = await startMoto();
  stack = await startLocalStack({
    endpoint: moto.endpoint,
    stage: 'loghyg',
    riskConfig: RISK,
    fastRetries: true,
  });
  capture();
  try {
    expect(
      await invoke('admin', {
        action: 'deposit',
        amount: DEPOSIT.amount[0],
        idempotencyKey: DEPOSIT.key,
        operator: 'ops',
      }),
    ).toMatchObject({ ok: true });
    expect(
      await invoke('admin', {
        action: 'registerProvider',
        id: PROVIDER.id,
        capital: PROVIDER.capital[0],
        maxDiscount: PROVIDER.maxDiscount[0],
        maxLot: PROVIDER.maxLot[0],
        symbols: ['ETH-USD'],
      }),
    ).toMatchObject({ ok: true });
    // Refused (unknown field): the request, and the credential in it, stay out of the logs.
    expect(
      await invoke('admin', {
        action: 'deposit',
        amount: '1',
        idempotencyKey: 'k-hyg',
        operator: 'ops',
        authorization: SMUGGLED_TOKEN,
      }),
    ).toMatchObject({ ok: false });
    await tick('200', 1);
    expect(
      await invoke('admin', {
        action: 'openPosition',
        id: POSITION.id,
        traderId: TRADER,
        symbol: 'ETH-USD',
        side: 'LONG',
        size: POSITION.size[0],
        entryPrice: POSITION.entryPrice[0],
        collateral: POSITION.collateral[0],
      }),
    ).toMatchObject({ ok: true });
    // A message naming no liquidation fails every delivery (and its failure cannot be recorded): dead-lettered.
    await stack.clients.sqs.send(
      new SendMessageCommand({
        QueueUrl: stack.names.queues.liquidations.url,
        MessageBody: JSON.stringify({ liquidationId: 'ghost-hyg:0' }),
      }),
    );
    await tick('184', 2);
    expect(await invoke('ledgerReconcile', {})).toMatchObject({ reconciled: true });
  } finally {
    release();
  }
}, 120_000);

afterAll(async () => {
  release();
  await stack?.stop();
  await moto?.stop();
  restore('POWERTOOLS_LOG_LEVEL', env.level);
  restore('POWERTOOLS_DEV', env.dev);
});

describe('logs hold no whole records and no credentials (issue 7)', () => {
  it('the flow ran: liquidated through the auction, the bad message failed five times', async () => {
    const adapters = createAwsAdapters({ clients: stack.clients, names: stack.names, clock: systemClock });
    const [liquidation] = await adapters.liquidations.listByTick('ETH-USD#2');
    // However late its steps ran, the auction cleared at or above its floor, above bankruptcy (RISK).
    expect(liquidation?.state).toBe('SETTLED_AUCTION');
    expect(liquidation?.settlement?.auctionClosedSize).toBe(BigInt(POSITION.size[1]));
    expect((await adapters.auctions.get(`${liquidation?.id}:auction`))?.state).toBe('CLEARED');
    const messages = lines.map((l) => (parseJson(l) as { message?: string } | undefined)?.message);
    for (const expected of [
      'admin request',
      'tick handled',
      'liquidation processed',
      'auction step processed',
      'ledger reconciled',
    ]) {
      expect(messages, expected).toContain(expected);
    }
    // The bad message: five deliveries (maxReceiveCount), each logged with its id and error, then the DLQ.
    const failed = lines
      .map(parseJson)
      .filter(
        (l): l is { error?: { message?: string }; correlation_id?: string } =>
          (l as { message?: string } | undefined)?.message === 'liquidation failed; it will be retried',
      );
    expect(failed.map((l) => l.error?.message)).toEqual(Array(5).fill('liquidation/not-found: ghost-hyg:0'));
    // Each record's keys are its own, though the runner runs invocations and a batch's records concurrently.
    expect(failed.map((l) => l.correlation_id)).toEqual(Array(5).fill('ghost-hyg:0'));
    expect(messages.filter((m) => m === "could not record the liquidation's failure")).toHaveLength(5);
    const dead = await listDeadLetters(deployment(), 'liquidations');
    expect(dead.map((d) => [d.body, d.reason])).toEqual([
      [
        JSON.stringify({ liquidationId: 'ghost-hyg:0' }),
        'liquidation ghost-hyg:0 has no record: nothing to resume (a message of another stage, or sent by hand)',
      ],
    ]);
  });

  it("the admin function's deposit emits the fund's balance (its alarm need not wait for a reconcile)", () => {
    const emitted = lines
      .map(parseJson)
      .filter((l): l is Record<string, unknown> => !!l && typeof l === 'object' && '_aws' in l)
      .map((l) => l.InsuranceFundBalance)
      .filter((v) => v !== undefined);
    // The first one: the deposit, before any settlement or reconcile moved or read the fund.
    expect(emitted[0]).toBe(Number(DEPOSIT.amount[0]));
  });

  it('no captured line holds a whole record, a raw item or the admin request', () => {
    expect(lines.length).toBeGreaterThan(20);
    const bad = lines.flatMap((line) => violations(line).map((v) => `${v}: ${line.slice(0, 200)}`));
    expect(bad).toEqual([]);
  });

  it('the detector finds each kind of record it looks for', () => {
    const log = (fields: Record<string, unknown>) =>
      JSON.stringify({ level: 'INFO', message: 'x', ...fields });
    const samples: [string, RegExp][] = [
      [log({ item: { id: { S: 'p1' }, size: { N: '1' } } }), /raw DynamoDB/],
      [log({ error: 'cond failed on {\\"S\\":\\"p1\\"}' }), /raw DynamoDB/],
      [log({ size: POSITION.size[1], collateral: POSITION.collateral[1] }), /position fields together/],
      [log({ note: `size ${POSITION.size[0]} entry ${POSITION.entryPrice[0]}` }), /position fields together/],
      [log({ position: { entryPrice: 1, collateral: 2 } }), /^position \(/],
      [log({ capital: PROVIDER.capital[1], maxLot: PROVIDER.maxLot[1] }), /provider fields together/],
      [log({ account: { balance: '1', windowDrawn: '0' } }), /ledger balance item/],
      [log({ entry: { balanceBefore: 1, balanceAfter: 2 } }), /journal entry/],
      [log({ request: { action: 'deposit', amount: '1' } }), /admin request/],
      [log({ owner: TRADER }), /owner/],
      [log({ headers: { authorization: SMUGGLED_TOKEN } }), /credential/],
    ];
    for (const [line, expected] of samples) {
      expect(violations(line).join('; '), line).toMatch(expected);
    }
    expect(violations(log({ liquidationId: 'p1:0', state: 'SETTLED_AUCTION' }))).toEqual([]);
  });
});
