import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type AttributeValue, GetItemCommand, QueryCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_RISK_CONFIG_INPUT, type RiskConfigInput } from '../../shared/domain/config.ts';
import { formatPrice } from '../../shared/domain/units.ts';
import { type LocalStack, startLocalStack } from '../../shared/local/stack.ts';
import { readPriceFile } from '../../shared/prices/file.ts';
import { cli } from '../support/cli.ts';
import { type MotoServer, startMoto } from '../support/moto.ts';

/**
 * The insurance fund's books as an external auditor checks them (session 50): a small book through the March 2020
 * crash's second leg on moto, with the real handlers, fees, fund draws up to the draw cap and ADL past it, an
 * operator's deposits and a withdrawal; then `backstop fund statement` for two consecutive periods by time, held to
 * an independent computation from the raw DynamoDB items (the AWS SDK directly, not Backstop's ledger or statement
 * code): the identity opening + in - out = closing to the unit, every entry's two postings equal, each settlement's
 * fee and fund draw in the journal exactly as the liquidations table records them, every deposit and withdrawal with
 * who and when, and no entry without a cause. Small on purpose (it runs in `npm test`, beside the rest, on 2 cores):
 * each kind of movement is asserted to have happened, so a smaller run cannot lose one silently
 * (review50-audit-lean).
 */

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CRASH = path.resolve(repoRoot, '..', 'shared', 'data', 'eth-usdt-perp-2020-03-12-leg2-1m.csv');
const ACCOUNT = 'insurance-fund';
/** Positions, levered at a median of 10x: enough shortfalls for the draw cap and ADL, few settlements at once. */
const POSITIONS = 60;
const LEVERAGE_MEDIAN = '10';
/**
 * Every how many minutes of the file a tick is sent, through the low (90.31): the crash's shape in 28 ticks, each
 * move within the 15 % price band.
 */
const EVERY = 10;
const TICKS = 28;
/** The first period's ticks, to 121.49: its first liquidations and fees; the second has the drops, draws and ADL. */
const FIRST_PERIOD_TICKS = 9;
/** The draw cap, in 1e-6 USD: small, so the fund pays the first shortfalls and refuses the rest at its cap. */
const CAP = 40_000_000n;

/**
 * The cap over one window that outlives the run (about 31 years, aligned to the epoch): a run across an hour's
 * boundary would split the draws over two windows and might reach neither cap. No cooldown between a market's
 * slices and the shortest wait for the book: the real-time waits are not what this audits. Ticks may be 10 minutes
 * old (the emulator runs behind the feed).
 */
const CONFIG: RiskConfigInput = {
  ...DEFAULT_RISK_CONFIG_INPUT,
  markets: DEFAULT_RISK_CONFIG_INPUT.markets.map((m) => ({
    ...m,
    maxTickAgeSeconds: 600,
    maxMarkAgeSeconds: 1200,
    lastResortCooldownSeconds: 0,
    lastResortWaitSeconds: 1,
  })),
  insurance: { drawCapPerWindow: '40', windowSeconds: 1_000_000_000, floor: '0' },
};

let moto: MotoServer;
let stack: LocalStack;
let dir: string;
let at: string[];
const savedEnv = { ...process.env };

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'backstop-books-'));
  process.env.BACKSTOP_STATE_DIR = path.join(dir, 'state');
  writeFileSync(path.join(dir, 'risk.json'), JSON.stringify(CONFIG));
  moto = await startMoto();
  stack = await startLocalStack({
    endpoint: moto.endpoint,
    stage: 'books',
    riskConfig: CONFIG,
    fastRetries: true,
  });
  at = ['--endpoint', moto.endpoint, '--stage', 'books', '--config', path.join(dir, 'risk.json')];
}, 60_000);

afterAll(async () => {
  try {
    await stack?.stop();
    await moto?.stop();
  } finally {
    process.env = savedEnv;
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
});

// --- The raw items, read with the SDK alone ------------------------------------------------------------------

interface RawEntry {
  readonly sk: string;
  readonly key: string;
  readonly amount: bigint;
  readonly before: bigint;
  readonly after: bigint;
  readonly kind: string;
  readonly reference: string;
  readonly atMs: number;
  readonly sequence: number;
  readonly actor?: string;
  readonly invocationId?: string;
  readonly declaredOperator?: string;
}

type Item = Record<string, AttributeValue>;
const n = (item: Item, name: string): string => {
  const v = item[name]?.N;
  if (v === undefined) throw new Error(`no number ${name} in ${JSON.stringify(item)}`);
  return v;
};
/** A DynamoDB number as an exact integer: the ledger stores 1e-6 units, never a fraction or an exponent. */
const int = (item: Item, name: string): bigint => {
  const v = n(item, name);
  expect(v, name).toMatch(/^-?\d+$/);
  return BigInt(v);
};

async function rawJournal(): Promise<RawEntry[]> {
  const entries: RawEntry[] = [];
  let start: Item | undefined;
  do {
    const out = await stack.clients.dynamo.send(
      new QueryCommand({
        TableName: stack.names.tables.ledger,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :j)',
        ExpressionAttributeValues: { ':pk': { S: `ACCOUNT#${ACCOUNT}` }, ':j': { S: 'J#' } },
        ConsistentRead: true,
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    for (const item of out.Items ?? [])
      entries.push({
        sk: item.sk!.S!,
        key: item.idempotencyKey!.S!,
        amount: int(item, 'amount'),
        before: int(item, 'balanceBefore'),
        after: int(item, 'balanceAfter'),
        kind: item.kind!.S!,
        reference: item.reference!.S!,
        atMs: Number(n(item, 'atMs')),
        sequence: Number(n(item, 'sequence')),
        ...(item.actor?.S === undefined ? {} : { actor: item.actor.S }),
        ...(item.invocationId?.S === undefined ? {} : { invocationId: item.invocationId.S }),
        ...(item.declaredOperator?.S === undefined ? {} : { declaredOperator: item.declaredOperator.S }),
      });
    start = out.LastEvaluatedKey;
  } while (start);
  return entries.sort((a, b) => a.sequence - b.sequence);
}

async function rawBalance(): Promise<{ balance: bigint; sequence: number }> {
  const out = await stack.clients.dynamo.send(
    new GetItemCommand({
      TableName: stack.names.tables.ledger,
      Key: { pk: { S: `ACCOUNT#${ACCOUNT}` }, sk: { S: 'BALANCE' } },
      ConsistentRead: true,
    }),
  );
  return { balance: int(out.Item!, 'balance'), sequence: Number(n(out.Item!, 'sequence')) };
}

interface RawSettlement {
  readonly id: string;
  readonly state: string;
  readonly fee: bigint;
  readonly shortfall: bigint;
  readonly insurancePaid: bigint;
  readonly adlCovered: bigint;
  readonly badDebt: bigint;
}

async function rawLiquidations(): Promise<RawSettlement[]> {
  const all: RawSettlement[] = [];
  let start: Item | undefined;
  do {
    const out = await stack.clients.dynamo.send(
      new ScanCommand({
        TableName: stack.names.tables.liquidations,
        ConsistentRead: true,
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    // The table's liquidation records (it holds other items: a tick's progress, ...).
    for (const item of out.Items ?? []) {
      if (item.positionId?.S === undefined) continue;
      const s = item.settlement?.M;
      all.push({
        id: item.id!.S!,
        state: item.state!.S!,
        fee: s ? int(s, 'fee') : 0n,
        shortfall: s ? int(s, 'shortfall') : 0n,
        insurancePaid: s ? int(s, 'insurancePaid') : 0n,
        adlCovered: s ? int(s, 'adlCovered') : 0n,
        badDebt: s ? int(s, 'badDebt') : 0n,
      });
    }
    start = out.LastEvaluatedKey;
  } while (start);
  return all;
}

// --- What the statement printed, read as an auditor's spreadsheet would -------------------------------------

/** An exact decimal of at most 6 places as 1e-6 units; anything else (an exponent, a float's tail) fails. */
function units(text: string): bigint {
  const m = /^(-?)(\d+)(?:\.(\d{1,6}))?$/.exec(text);
  expect(m, `an exact decimal: ${JSON.stringify(text)}`).not.toBeNull();
  const value = BigInt(m![2]! + (m![3] ?? '').padEnd(6, '0'));
  return m![1] ? -value : value;
}

/** RFC 4180 as the statement writes it: CRLF lines, a field quoted when it holds a comma, a quote or a line end. */
function parseCsv(text: string): string[][] {
  expect(text.endsWith('\r\n')).toBe(true);
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted && c === '"' && text[i + 1] === '"') {
      field += '"';
      i++;
    } else if (quoted && c === '"') quoted = false;
    else if (quoted) field += c;
    else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += c;
  }
  return rows;
}

/** The entries of a period by time as the documented rule cuts them (DEPLOY.md, "Month-end close", step 1). */
function cutByTime(journal: readonly RawEntry[], fromMs: number, toMs: number): RawEntry[] {
  const first = journal.findIndex((e) => e.atMs >= fromMs);
  if (first < 0) return [];
  const end = journal.findIndex((e, i) => i >= first && e.atMs >= toMs);
  return journal.slice(first, end < 0 ? undefined : end);
}

const sum = (values: readonly bigint[]): bigint => values.reduce((a, b) => a + b, 0n);

describe('the insurance fund audited from its raw items (moto, a crash slice)', () => {
  it("a statement's every figure is the journal's, every entry balances and has a cause, every settlement is in it once", async () => {
    // The book, the fund and the crash, as an operator would run them.
    const seeded = await cli(
      'seed',
      'positions',
      '--count',
      String(POSITIONS),
      '--leverage-median',
      LEVERAGE_MEDIAN,
      '--price',
      '129.43',
      ...at,
    );
    expect(seeded.code, seeded.stderr).toBe(0);
    const deposited = await cli('fund', 'deposit', '--amount', '1500.25', '--key', 'audit-open', ...at);
    expect(deposited.code, deposited.stderr).toBe(0);
    const points = readPriceFile(CRASH)
      .filter((_, i) => i % EVERY === 0)
      .slice(0, TICKS);
    let sequence = 0;
    const tick = async (price: bigint) => {
      sequence += 1;
      const failures = await stack.putTicks([
        {
          symbol: 'ETH-USD',
          markPrice: formatPrice(price),
          timestamp: Date.now(),
          sequence,
          source: 'audit',
        },
      ]);
      expect(failures).toEqual([]);
      // A bound, not a wait: a tick's work takes a second or two here (contended settlements come back 1 s to a few
      // seconds later); past one visibility timeout (about 360 s), a consumer held past its timeout is retried.
      await stack.runner.runUntilIdle({ deadlineMs: 420_000 });
    };
    for (const p of points.slice(0, FIRST_PERIOD_TICKS)) await tick(p.price);
    // The first period ends here: the next by time begins at this instant (an entry stamped at it is the next's, by
    // the statement's rule and by cutByTime's alike).
    const cutMs = Date.now();
    const topUp = await cli('fund', 'deposit', '--amount', '2000', '--key', 'audit-topup', ...at);
    expect(topUp.code, topUp.stderr).toBe(0);
    for (const p of points.slice(FIRST_PERIOD_TICKS)) await tick(p.price);
    const withdrawn = await cli('fund', 'withdraw', '--amount', '0.000001', '--key', 'audit-out', ...at);
    expect(withdrawn.code, withdrawn.stderr).toBe(0);
    expect(stack.runner.errors.map((e) => String(e.error))).toEqual([]);

    const journal = await rawJournal();
    const balance = await rawBalance();
    const liquidations = await rawLiquidations();

    // The run was one an auditor must see every kind of money in (review50-audit-lean: a smaller run cannot lose one
    // silently): fees, draws on the fund, the fund refusing at its cap, ADL past it, a deposit, a withdrawal.
    const settled = liquidations.filter((l) => l.state.startsWith('SETTLED'));
    expect(settled.length).toBeGreaterThan(10);
    const kinds = (kind: string) => journal.filter((e) => e.kind === kind);
    expect(
      kinds('liquidation-fee').some((e) => e.amount > 0n),
      'a fee',
    ).toBe(true);
    expect(
      kinds('shortfall-payout').some((e) => e.amount < 0n),
      'a draw',
    ).toBe(true);
    expect(
      settled.some((l) => l.adlCovered > 0n),
      'ADL',
    ).toBe(true);
    expect(kinds('deposit').map((e) => e.key)).toEqual(['admin:audit-open', 'admin:audit-topup']);
    expect(kinds('withdraw').map((e) => e.key)).toEqual(['admin:audit-out']);
    // The cap refused: the window's draws (one window: the run is within it) reach it exactly, a draw cut to what was
    // left of it, and ADL took what the fund refused (above).
    let drawn = 0n;
    const capReached = journal.find((e) => {
      if (e.kind === 'shortfall-payout') drawn -= e.amount;
      expect(drawn, `entry ${e.sequence}: draws within the cap`).toBeLessThanOrEqual(CAP);
      return drawn === CAP;
    });
    expect(capReached, 'the draws reach the cap').toBeDefined();
    // Every refusal was the cap's: the fund held more than the whole cap after every entry, so the floor (0) never bound.
    expect(journal.every((e) => e.after > CAP)).toBe(true);

    // The journal: sequences 1..n, each entry's arithmetic and chain, the balance item at its end.
    expect(journal.map((e) => e.sequence)).toEqual(journal.map((_, i) => i + 1));
    let running = 0n;
    for (const e of journal) {
      expect(e.before, `entry ${e.sequence} chains`).toBe(running);
      expect(e.after, `entry ${e.sequence}'s arithmetic`).toBe(e.before + e.amount);
      expect(e.sk).toBe(`J#${e.key}`);
      running = e.after;
    }
    expect(balance).toEqual({ balance: running, sequence: journal.length });

    // Nothing without a cause: each entry a settlement's fee or draw under its liquidation's key, or an operator's
    // deposit or withdrawal naming who moved it and when.
    const byId = new Map(liquidations.map((l) => [l.id, l]));
    const startMs = journal[0]!.atMs;
    for (const e of journal) {
      expect(Number.isSafeInteger(e.atMs) && e.atMs >= startMs - 60_000 && e.atMs <= Date.now()).toBe(true);
      if (e.kind === 'deposit' || e.kind === 'withdraw') {
        expect(e.reference).toBe('admin');
        expect(e.key).toMatch(/^admin:audit-(open|topup|out)$/);
        expect(e.actor, `entry ${e.sequence}: who`).toMatch(/^arn:aws:/);
        // The CLI's: its caller as STS names it, declared as the operator too; no admin function invocation.
        expect([e.declaredOperator, e.invocationId], `entry ${e.sequence}: declared`).toEqual([
          e.actor,
          undefined,
        ]);
        expect(e.kind === 'deposit' ? e.amount > 0n : e.amount < 0n).toBe(true);
        continue;
      }
      expect(['liquidation-fee', 'shortfall-payout']).toContain(e.kind);
      const suffix = e.kind === 'liquidation-fee' ? 'fee' : 'shortfall';
      expect(e.key).toMatch(new RegExp(`^${e.reference.replace(/[.:]/g, '\\$&')}:${suffix}(:r\\d+)?$`));
      // A fee raises the fund and a draw lowers it; the other way only as a plan made again's difference (`:r<n>`), as
      // the ledger holds every movement to (books51-sign-against-kind).
      if (!/:r\d+$/.test(e.key))
        expect(
          e.kind === 'liquidation-fee' ? e.amount > 0n : e.amount < 0n,
          `entry ${e.sequence}'s sign`,
        ).toBe(true);
      expect(byId.get(e.reference)?.state, `entry ${e.sequence}'s liquidation`).toMatch(/^SETTLED/);
      expect([e.actor, e.invocationId, e.declaredOperator]).toEqual([undefined, undefined, undefined]);
    }

    // Each settlement's fee and fund draw in the journal exactly once (a replan's differences sum to it), and its
    // shortfall borne in full: by the fund, by ADL, or recorded as bad debt.
    const moved = (reference: string, kind: string) =>
      journal.filter((e) => e.reference === reference && e.kind === kind);
    for (const l of liquidations) {
      const fees = moved(l.id, 'liquidation-fee');
      const draws = moved(l.id, 'shortfall-payout');
      expect(sum(fees.map((e) => e.amount)), `${l.id}: fee`).toBe(l.fee);
      expect(sum(draws.map((e) => e.amount)), `${l.id}: drawn`).toBe(-l.insurancePaid);
      // A plan that moved nothing first (fenced, contended) leaves its replan's suffix on the first entry: at most one
      // entry per plan, all summing to the record.
      for (const of of [fees, draws]) expect(new Set(of.map((e) => e.key)).size).toBe(of.length);
      expect(l.insurancePaid + l.adlCovered + l.badDebt, `${l.id}: shortfall borne`).toBe(l.shortfall);
    }

    // Two consecutive periods by time: before the cut and from it on.
    const fromMs = startMs - 1_000;
    const from = new Date(fromMs).toISOString();
    const cut = new Date(cutMs).toISOString();
    const first = await cli('fund', 'statement', '--from', from, '--to', cut, '--json', ...at);
    const second = await cli('fund', 'statement', '--from', cut, '--json', ...at);
    const secondCsv = await cli('fund', 'statement', '--from', cut, '--csv', ...at);
    for (const run of [first, second, secondCsv]) expect(run.code, run.stderr).toBe(0);
    expect(secondCsv.stderr).toBe('');

    const periods = [
      { json: JSON.parse(first.stdout), entries: cutByTime(journal, fromMs, cutMs) },
      { json: JSON.parse(second.stdout), entries: cutByTime(journal, cutMs, Number.POSITIVE_INFINITY) },
    ];
    expect(periods[0]!.entries.length + periods[1]!.entries.length).toBe(journal.length);
    // Each period holds settlements; the opening deposit is the first's, the top-up (made after the cut: stamped after
    // it, review50-audit-stamp-cutoff) and the withdrawal the second's.
    expect(periods[0]!.entries.map((e) => e.key)).toContain('admin:audit-open');
    expect(periods[1]!.entries.map((e) => e.key)).toEqual(
      expect.arrayContaining(['admin:audit-topup', 'admin:audit-out']),
    );
    for (const { json, entries } of periods) {
      expect(entries.some((e) => e.reference !== 'admin')).toBe(true);
      const opening = entries[0]!.before;
      const closing = entries.at(-1)!.after;
      const into = sum(entries.filter((e) => e.amount > 0n).map((e) => e.amount));
      const out = sum(entries.filter((e) => e.amount < 0n).map((e) => -e.amount));
      // The identity to the unit, on the raw items.
      expect(opening + into - out).toBe(closing);
      expect(json.currency).toBe('USD');
      expect(json.reconciles).toBe(true);
      // Every deposit and withdrawal names who moved it.
      expect(json.unnamedMovements).toEqual([]);
      expect(json.period.firstSequence).toBe(entries[0]!.sequence);
      expect(json.period.lastSequence).toBe(entries.at(-1)!.sequence);
      expect(json.period.entries).toBe(entries.length);
      expect(units(json.opening)).toBe(opening);
      expect(units(json.closing)).toBe(closing);
      expect(units(json.movements)).toBe(into - out);
      expect(units(json.difference)).toBe(0n);
      // Every entry under one of the statement's kinds: a kind it left out would go unchecked below.
      expect(sum(json.kinds.map((k: { entries: number }) => BigInt(k.entries)))).toBe(BigInt(entries.length));
      for (const k of json.kinds) {
        const of = entries.filter((e) => e.kind === k.kind);
        expect(k.entries, k.kind).toBe(of.length);
        expect(units(k.in), k.kind).toBe(sum(of.filter((e) => e.amount > 0n).map((e) => e.amount)));
        expect(units(k.out), k.kind).toBe(sum(of.filter((e) => e.amount < 0n).map((e) => -e.amount)));
        expect(units(k.net), k.kind).toBe(sum(of.map((e) => e.amount)));
      }
      // The fund's side of the postings: debits are money in, credits money out.
      const fund = json.accounts.find((a: { account: string }) => a.account === ACCOUNT);
      expect(units(fund.debit)).toBe(into);
      expect(units(fund.credit)).toBe(out);
      expect(units(json.totals.debit)).toBe(units(json.totals.credit));
      expect(units(json.totals.debit)).toBe(into + out);
    }
    // Consecutive: the first's closing is the second's opening, and it goes on where the first said.
    expect(periods[1]!.json.opening).toBe(periods[0]!.json.closing);
    expect(periods[0]!.json.period.closed).toBe(true);
    expect(periods[0]!.json.period.continueFrom).toBe(periods[1]!.entries[0]!.sequence);

    // The CSV as a spreadsheet reads it: its header, two postings an entry in a stable order, each entry balanced, the
    // amounts exact decimals, who and when on each row; the fund's debits less its credits are the period's movement.
    const rows = parseCsv(secondCsv.stdout);
    const header = rows[0]!;
    expect(header).toEqual([
      'sequence',
      'posting',
      'time',
      'account',
      'debit',
      'credit',
      'currency',
      'kind',
      'reference',
      'key',
      'actor',
      'fundBalanceAfter',
      'invocationId',
      'declaredOperator',
    ]);
    const body = rows
      .slice(1)
      .map((r) => Object.fromEntries(header.map((h, i) => [h, r[i]!])) as Record<string, string>);
    const entries = periods[1]!.entries;
    expect(body.length).toBe(2 * entries.length);
    let fundNet = 0n;
    for (const [i, e] of entries.entries()) {
      const [debit, credit] = [body[2 * i]!, body[2 * i + 1]!];
      expect([debit.sequence, debit.posting, credit.sequence, credit.posting]).toEqual([
        String(e.sequence),
        '1',
        String(e.sequence),
        '2',
      ]);
      expect([debit.credit, credit.debit]).toEqual(['', '']);
      const amount = units(debit.debit!);
      expect(units(credit.credit!), `entry ${e.sequence} balances`).toBe(amount);
      expect(amount).toBe(e.amount < 0n ? -e.amount : e.amount);
      for (const row of [debit, credit]) {
        expect(row.currency).toBe('USD');
        expect(row.time).toBe(new Date(e.atMs).toISOString());
        expect([row.kind, row.reference, row.key, row.actor, row.invocationId, row.declaredOperator]).toEqual(
          [e.kind, e.reference, e.key, e.actor ?? '', e.invocationId ?? '', e.declaredOperator ?? ''],
        );
        expect(units(row.fundBalanceAfter!), `entry ${e.sequence}'s balance`).toBe(e.after);
        if (row.account === ACCOUNT) fundNet += row === debit ? amount : -amount;
      }
      expect([debit.account, credit.account]).toContain(ACCOUNT);
    }
    expect(fundNet).toBe(entries.at(-1)!.after - entries[0]!.before);
  }, 600_000);
});
