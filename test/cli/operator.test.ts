import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BatchWriteItemCommand, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { OUTPUT_KEYS, riskConfigDigest } from '../../infra/outputs.ts';
import {
  createAwsAdapters,
  type ResourceNames,
  SINGLE_SHARD_LAYOUT,
} from '../../shared/adapters/aws/index.ts';
import { positionItem } from '../../shared/adapters/aws/positions.ts';
import { systemClock } from '../../shared/adapters/embedded/clock.ts';
import { DEFAULT_RISK_CONFIG_INPUT, parseRiskConfig } from '../../shared/domain/config.ts';
import { parseBase, parsePrice, parseQuote } from '../../shared/domain/units.ts';
import { writeLocalRecord } from '../../shared/local/state.ts';
import type { PositionRecord } from '../../shared/ports/index.ts';
import { readAdlTop } from '../../shared/services/adl-snapshots.ts';
import { cli, publishStackOutputs, useOperatorEmulator } from '../support/cli.ts';

const emulator = useOperatorEmulator('operator');
const newStage = () => emulator.newStage('op');
const adapters = (names: ResourceNames) =>
  createAwsAdapters({ clients: emulator.clients, names, clock: systemClock });

async function openPositions(names: ResourceNames): Promise<number> {
  const a = adapters(names);
  let n = 0;
  for (const symbol of ['ETH-USD', 'BTC-USD'])
    for (const side of ['LONG', 'SHORT'] as const)
      n += (await a.positions.queryAdlOrder(symbol, side, 'entry', 1000)).positions.length;
  return n;
}

// Found by a review of the operator workflow in session 25 (docs/RELIABILITY.md, seed-generated-partial and
// the rows after it).
describe('seed positions: a failing seed changes nothing', () => {
  it('refuses a second market without a price before writing the first', async () => {
    const { names, at } = await newStage();
    const run = await cli(
      'seed',
      'positions',
      '--markets',
      'ETH-USD,BTC-USD',
      '--price',
      'ETH-USD=1500',
      '--count',
      '5',
      ...at,
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/no price for BTC-USD yet/);
    expect(await openPositions(names)).toBe(0);
  });
});

describe('seed positions --file: rows already there', () => {
  it('counts a row stored as written as there, and refuses one whose id holds another position', async () => {
    // Found by an audit in session 37: a row with other terms under an existing id counted as "already there".
    const { names, at } = await newStage();
    const dir = mkdtempSync(path.join(tmpdir(), 'seed-file-'));
    try {
      const file = path.join(dir, 'book.csv');
      const header = 'id,traderId,symbol,side,size,entryPrice,collateral';
      writeFileSync(file, `${header}\np1,t1,ETH-USD,LONG,1,1500,500\n`);
      expect((await cli('seed', 'positions', '--file', file, ...at)).stdout).toMatch(
        /1 written, 0 already there/,
      );
      writeFileSync(file, `${header}\np1,t1,ETH-USD,LONG,1,1500,500\np2,t2,ETH-USD,SHORT,1,1500,500\n`);
      expect((await cli('seed', 'positions', '--file', file, ...at)).stdout).toMatch(
        /1 written, 1 already there/,
      );
      // Refused before any write (session 38: rows before it were written, the file half applied).
      writeFileSync(file, `${header}\np3,t3,ETH-USD,LONG,1,1500,500\np1,t1,ETH-USD,SHORT,50,1500,50000\n`);
      const changed = await cli('seed', 'positions', '--file', file, ...at);
      expect(changed.code).toBe(2);
      expect(changed.stderr).toMatch(/seed\/id-taken: p1: another position is stored under this id/);
      expect(changed.stdout).toBe('');
      expect(await adapters(names).positions.get('p3')).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('seed positions: a book around --price away from the mark', () => {
  it('is refused whole, with the reason, before any write', async () => {
    const { names, at } = await newStage();
    const markets = adapters(names).markets;
    await markets.acceptTick(
      'ETH-USD',
      { sequence: 1, markPrice: parsePrice('1500'), timestampMs: Date.now() },
      undefined,
      false,
    );
    const run = await cli('seed', 'positions', '--count', '40', '--price', '3000', ...at);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/around 3000 is not healthy at the market's mark 1500 .*nothing was written/);
    expect(await openPositions(names)).toBe(0);
  });
});

describe('seed providers: a re-run', () => {
  const args = ['seed', 'providers', '--count', '3', '--capital', '300000', '--price', '1500'];

  it('adds nothing: a provider already there keeps the capital the auctions left it', async () => {
    const { names, at } = await newStage();
    expect((await cli(...args, ...at)).code).toBe(0);
    const providers = adapters(names).providers;
    // An auction filled against lp-s1-ETH-USD-001: its capital went down by what it paid.
    const before = (await providers.get('lp-s1-ETH-USD-001'))!;
    const spent = { ...before, capital: before.capital / 2n, version: before.version + 1 };
    await providers.put(spent, before.version);

    const again = await cli(...args, ...at);
    expect(again.stdout).toContain('0 written, 3 already there');
    expect((await providers.get('lp-s1-ETH-USD-001'))!.capital).toBe(spent.capital);
  });

  it('--seed 2 adds its own providers beside those of --seed 1', async () => {
    const { names, at } = await newStage();
    expect((await cli(...args, '--seed', '1', ...at)).code).toBe(0);
    const second = await cli(...args, '--seed', '2', ...at);
    expect(second.stdout).toContain('3 written');
    const listed = await adapters(names).providers.list('ETH-USD');
    // 3 of seed 1 and 3 of seed 2, 600,000 USD committed: what the two runs reported.
    expect(listed).toHaveLength(6);
  });
});

describe('seed: the reason a position is refused', () => {
  it('names the liquidation price and the mark in USD, not as raw 1e-8 fixed-point integers', async () => {
    const { names, at } = await newStage();
    await adapters(names).markets.acceptTick(
      'ETH-USD',
      { sequence: 1, markPrice: parsePrice('1500'), timestampMs: Date.now() },
      undefined,
      false,
    );
    const file = path.join(emulator.dir, 'refused.csv');
    writeFileSync(file, 'id,symbol,side,size,entryPrice,collateral\nr1,ETH-USD,LONG,1,3000,300\n');
    const run = await cli('seed', 'positions', '--file', file, ...at);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/vs mark 1500\b/);
  });
});

describe('positions reindex: a market symbol as the other commands take it', () => {
  it('takes --symbol as the other commands do (eth-usd is ETH-USD), and refuses an unknown one as bad input', async () => {
    const { at } = await newStage();
    const file = path.join(emulator.dir, 'risk.json');
    writeFileSync(file, JSON.stringify(DEFAULT_RISK_CONFIG_INPUT));
    const run = await cli('positions', 'reindex', '--symbol', 'eth-usd', '--config', file, ...at);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^ETH-USD LONG: 0 open positions priced again/);
    const unknown = await cli('positions', 'reindex', '--symbol', 'DOGE', '--config', file, ...at);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/--symbol: "DOGE" is not a configured market/);
  });
});

describe('local up --index-shards: a market the risk configuration does not have', () => {
  it('is refused as backstop:positionIndexShards is at synth (a typo would leave the market on one shard)', async () => {
    const state = mkdtempSync(path.join(tmpdir(), 'review7-up-'));
    const before = process.env.BACKSTOP_STATE_DIR;
    process.env.BACKSTOP_STATE_DIR = state;
    try {
      // A stack already running (this process): local up stops there, after checking its options.
      writeLocalRecord(state, {
        pid: process.pid,
        motoPid: process.pid,
        endpoint: 'http://127.0.0.1:1',
        stage: 'local',
        region: 'us-east-1',
        startedAt: new Date().toISOString(),
      });
      const run = await cli('local', 'up', '--index-shards', '{"ETH-USDT": 4}');
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(/--index-shards/);
    } finally {
      process.env.BACKSTOP_STATE_DIR = before;
      rmSync(state, { recursive: true, force: true });
    }
  });
});

// Found by an operator's walk through the local flow in session 31.
describe('--config on a stage local up runs: only the configuration it runs with', () => {
  it('refuses another file (a withdrawal judged by another floor), and takes the same one', async () => {
    const { stage, names } = await newStage();
    const state = mkdtempSync(path.join(tmpdir(), 'op-config-'));
    const before = process.env.BACKSTOP_STATE_DIR;
    process.env.BACKSTOP_STATE_DIR = state;
    try {
      const running = {
        ...DEFAULT_RISK_CONFIG_INPUT,
        insurance: { ...DEFAULT_RISK_CONFIG_INPUT.insurance, floor: '100' },
      };
      // What local up records for the stage it runs (this process stands in for it).
      writeLocalRecord(state, {
        pid: process.pid,
        motoPid: process.pid,
        endpoint: emulator.moto.endpoint,
        stage,
        region: 'us-east-1',
        startedAt: new Date().toISOString(),
        riskConfig: running,
      });
      expect((await cli('fund', 'deposit', '--amount', '150', '--key', 'd')).code).toBe(0);
      const other = path.join(state, 'defaults.json');
      writeFileSync(other, JSON.stringify(DEFAULT_RISK_CONFIG_INPUT));
      const refused = await cli('fund', 'withdraw', '--amount', '100', '--key', 'w', '--config', other);
      expect(refused).toMatchObject({
        code: 2,
        stderr: `backstop: --config: ${other} is not the risk configuration stage ${stage} runs with (recorded by local up): its functions would not use it; leave --config out, or restart the stage with local up --config ${other}\n`,
      });
      const ledger = adapters(names).ledger;
      expect((await ledger.balance('insurance-fund')).balance).toBe(150_000_000n);
      // The file it runs with is taken, and judges the withdrawal by the stage's floor (100).
      const same = path.join(state, 'running.json');
      writeFileSync(same, JSON.stringify(running));
      const floor = await cli('fund', 'withdraw', '--amount', '100', '--key', 'w', '--config', same);
      expect(floor.code).toBe(2);
      expect(floor.stderr).toMatch(
        /ledger\/below-floor: withdrawing 100\.00 USD would take the fund below its floor \(balance 150\.00 USD, floor 100\.00 USD: at most 50\.00 USD can be withdrawn\); nothing moved/,
      );
      expect((await cli('status', '--config', same)).code).toBe(0);
      // The same configuration with its markets in another order: markets are found by symbol, so it is the same.
      const reordered = path.join(state, 'reordered.json');
      writeFileSync(reordered, JSON.stringify({ ...running, markets: [...running.markets].reverse() }));
      expect((await cli('status', '--config', reordered)).code).toBe(0);
    } finally {
      process.env.BACKSTOP_STATE_DIR = before;
      rmSync(state, { recursive: true, force: true });
    }
  });
});

// Found by an operator's walk through the local flow in session 42 (walk42-deposit-quote): a deposit without --config
// on a stage local up runs with a USDT configuration said "250000 USD", where status says USDT.
describe('fund deposit on a stage local up runs: amounts in its quote currency', () => {
  it('names the recorded configuration quote, without --config', async () => {
    const { stage, names } = await newStage();
    const state = mkdtempSync(path.join(tmpdir(), 'op-quote-'));
    const before = process.env.BACKSTOP_STATE_DIR;
    process.env.BACKSTOP_STATE_DIR = state;
    try {
      const usdt = {
        ...DEFAULT_RISK_CONFIG_INPUT,
        markets: [{ ...DEFAULT_RISK_CONFIG_INPUT.markets[0]!, symbol: 'ETH-USDT' }],
      };
      writeLocalRecord(state, {
        pid: process.pid,
        motoPid: process.pid,
        endpoint: emulator.moto.endpoint,
        stage,
        region: 'us-east-1',
        startedAt: new Date().toISOString(),
        riskConfig: usdt,
      });
      const run = await cli('fund', 'deposit', '--amount', '250', '--key', 'q1');
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toMatch(
        /^fund deposit 250\.00 USDT: balance 250\.00 USDT \(journal entry 1, key q1/,
      );
      const again = await cli('fund', 'deposit', '--amount', '250', '--key', 'q1');
      expect(again.stdout).toMatch(
        /^fund deposit 250\.00 USDT under key q1 was already applied .* balance 250\.00 USDT\n$/,
      );
      // The refusals in the stage's currency too (walk43-withdraw-refusal, walk43-key-reused: no currency before).
      const reused = await cli('fund', 'deposit', '--amount', '300', '--key', 'q1');
      expect(reused).toMatchObject({
        code: 2,
        stderr:
          'backstop: fund deposit refused: admin/idempotency-key-reused: key q1 already moved a deposit of 250.00 USDT, ' +
          'not a deposit of 300.00 USDT; nothing moved (a key moves the fund once: a new movement needs a new key)\n',
      });
      const overdraft = await cli('fund', 'withdraw', '--amount', '1000', '--key', 'q2');
      expect(overdraft).toMatchObject({
        code: 2,
        stderr:
          'backstop: fund withdraw refused: admin/insufficient-funds: ledger/below-floor: withdrawing 1,000.00 USDT ' +
          'would take the fund below its floor (balance 250.00 USDT, floor 0.00 USDT: at most 250.00 USDT can be ' +
          'withdrawn); nothing moved\n',
      });
      expect((await adapters(names).ledger.balance('insurance-fund')).balance).toBe(250_000_000n);
    } finally {
      process.env.BACKSTOP_STATE_DIR = before;
      rmSync(state, { recursive: true, force: true });
    }
  });
});

// Found by running 40 markets in session 40: status listed a market only once it had an item, and called one whose
// providers were seeded before any tick "breaker closed", as it does a live market; its positions are not checked.
describe('status of configured markets without a tick', () => {
  it('lists every configured market, and says which have no tick accepted yet', async () => {
    const { at } = await newStage();
    const dir = mkdtempSync(path.join(tmpdir(), 'op-markets-'));
    try {
      const config = path.join(dir, 'risk.json');
      writeFileSync(
        config,
        JSON.stringify({
          ...DEFAULT_RISK_CONFIG_INPUT,
          markets: ['ETH-USD', '1INCH-USD', '1000PEPE-USD'].map((symbol) => ({
            ...DEFAULT_RISK_CONFIG_INPUT.markets[0]!,
            symbol,
          })),
        }),
      );
      const seeded = await cli(
        'seed',
        'providers',
        '--markets',
        '1INCH-USD',
        '--price',
        '0.35',
        '--count',
        '1',
        '--config',
        config,
        ...at,
      );
      expect(seeded.code, seeded.stderr).toBe(0);
      const json = await cli('status', '--json', '--config', config, ...at);
      expect(json.code, json.stderr).toBe(0);
      const markets = JSON.parse(json.stdout).markets as Record<string, { mark: string | null }>;
      expect(Object.keys(markets)).toEqual(['1000PEPE-USD', '1INCH-USD', 'ETH-USD']);
      for (const m of Object.values(markets)) expect(m.mark).toBeNull();
      const text = (await cli('status', '--config', config, ...at)).stdout;
      const rows = text.split('\n').filter((line) => line.startsWith('market '));
      expect(rows).toHaveLength(3);
      for (const row of rows)
        expect(row).toMatch(/no tick accepted yet: its positions are not margin-checked$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('liquidations index', () => {
  it('lists the open liquidations written before the open index existed, once, and no closed one', async () => {
    const { names, at } = await newStage();
    const a = adapters(names);
    const begin = async (id: string) => {
      const p = {
        id,
        traderId: 't',
        symbol: 'ETH-USD',
        side: 'LONG' as const,
        size: 100_000_000n,
        entryPrice: parsePrice('1500'),
        collateral: 100_000_000n,
        liquidationPrice: parsePrice('1450'),
        state: 'OPEN' as const,
        version: 1,
      };
      await a.positions.create(p);
      const l = {
        id: `${id}:1`,
        positionId: id,
        symbol: 'ETH-USD',
        side: 'LONG' as const,
        state: 'QUEUED' as const,
        tickKey: 'ETH-USD#1',
        triggerMark: parsePrice('1440'),
        remainingSize: p.size,
        marketFills: [],
        history: [{ atMs: 1_000, state: 'QUEUED' as const }],
        version: 1,
      };
      await a.liquidations.begin(p, l);
      // As a version before session 38 wrote it: no index keys.
      await emulator.clients.dynamo.send(
        new UpdateItemCommand({
          TableName: names.tables.liquidations,
          Key: { id: { S: l.id } },
          UpdateExpression: 'REMOVE openShard, startedAtMs',
        }),
      );
      return l;
    };
    const open = await begin('old-open');
    const closed = await begin('old-closed');
    await a.liquidations.replace({ ...closed, state: 'CANCELLED', version: 2 }, 1);
    await emulator.clients.dynamo.send(
      new UpdateItemCommand({
        TableName: names.tables.liquidations,
        Key: { id: { S: closed.id } },
        UpdateExpression: 'REMOVE openShard, startedAtMs',
      }),
    );
    const listed = async () => {
      const ids: string[] = [];
      for await (const page of a.liquidations.openStartedBefore(2_000))
        ids.push(...page.records.map((l) => l.id));
      return ids;
    };
    expect(await listed()).toEqual([]);
    const run = await cli('liquidations', 'index', '--json', ...at);
    expect(run.stderr).toBe('');
    // The closed one is not even read (the scan's filter), as none of a busy table's past is.
    expect(JSON.parse(run.stdout)).toEqual({ scanned: 1, open: 1, indexed: 1, unreadable: [] });
    expect(await listed()).toEqual([open.id]);
    // Once: a re-run finds nothing left to list, and the record itself is as it was.
    expect(JSON.parse((await cli('liquidations', 'index', '--json', ...at)).stdout)).toEqual({
      scanned: 0,
      open: 0,
      indexed: 0,
      unreadable: [],
    });
    expect(await a.liquidations.get(open.id)).toEqual(open);
    expect((await cli('liquidations', 'index', '--max', '3', ...at)).stderr).toMatch(
      /--max is an option of liquidations overdue/,
    );
  });

  // Found by an audit of rolling deploys in session 39: the first item no version could read stopped the run, and
  // the open liquidations after it stayed out of the watch's index.
  it('lists the others past an item it cannot read, names that one and exits 1', async () => {
    const { names, at } = await newStage();
    const item = (id: string, settlement?: Record<string, { S: string }>) => ({
      id: { S: id },
      positionId: { S: `p-${id}` },
      symbol: { S: 'ETH-USD' },
      side: { S: 'LONG' },
      state: { S: 'QUEUED' },
      tickKey: { S: 'ETH-USD#7' },
      triggerMark: { N: '18000000000' },
      remainingSize: { N: '100000000' },
      marketFills: { L: [] },
      ...(settlement ? { settlement: { M: settlement } } : {}),
      history: { L: [{ M: { atMs: { N: '1000' }, state: { S: 'QUEUED' } } }] },
      version: { N: '1' },
    });
    for (const [id, settlement] of [
      ['broken', { fee: { S: 'not money' } }],
      ['fine', undefined],
    ] as const) {
      await emulator.clients.dynamo.send(
        new PutItemCommand({ TableName: names.tables.liquidations, Item: item(id, settlement) }),
      );
    }
    // Settled, with ADL rounds still to follow: open (isOpenLiquidation), so the scan's filter keeps it.
    await emulator.clients.dynamo.send(
      new PutItemCommand({
        TableName: names.tables.liquidations,
        Item: {
          ...item('rounds'),
          state: { S: 'SETTLED_ADL' },
          context: {
            S: '{"plannedSize":"100000000n","executionMark":"18000000000n","adlRound":{"round":0}}',
          },
        },
      }),
    );
    const run = await cli('liquidations', 'index', ...at);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/2 of 2 open liquidations not yet listed are listed now/);
    expect(run.stderr).toMatch(/1 items could not be read as liquidations \(not listed\): broken\n$/);
    const ids: string[] = [];
    for await (const page of adapters(names).liquidations.openStartedBefore(2_000))
      ids.push(...page.records.map((l) => l.id));
    expect(ids.sort()).toEqual(['fine', 'rounds']);
  });
});

// Found by an audit of rolling deploys in session 39: DynamoDB builds a new index from the items that carry its
// keys, and no command gave the positions stored before session 17 their key of ADL's leverage order.
describe('positions index', () => {
  it("keys the open positions older than ADL's leverage order into it, so ADL ranks them", async () => {
    const { names, at } = await newStage();
    const short = (id: string, entry: string, collateral: string): PositionRecord => ({
      id,
      traderId: `t-${id}`,
      symbol: 'ETH-USD',
      side: 'SHORT',
      size: parseBase('1'),
      entryPrice: parsePrice(entry),
      collateral: parseQuote(collateral),
      state: 'OPEN',
      version: 1,
      liquidationPrice: parsePrice('100000'),
    });
    // More than a page (1,000) of the entry order ahead of the old position, all barely leveraged.
    const items = Array.from({ length: 1100 }, (_, i) =>
      positionItem(
        short(`new-${String(i).padStart(4, '0')}`, (200 - i / 100).toFixed(2), '10000'),
        SINGLE_SHARD_LAYOUT,
      ),
    );
    // Stored before session 17: no adlLeverage. At a mark of 100 it is the most profitable per leverage.
    const { adlLeverage: _, ...old } = positionItem(short('old-1', '150', '10'), SINGLE_SHARD_LAYOUT);
    items.push(old);
    for (let i = 0; i < items.length; i += 25) {
      await emulator.clients.dynamo.send(
        new BatchWriteItemCommand({
          RequestItems: {
            [names.tables.positions]: items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })),
          },
        }),
      );
    }
    const top = async () =>
      (await readAdlTop(adapters(names).positions, 'ETH-USD', 'SHORT', parsePrice('100'), 'LONG', 1))
        .entries[0]?.candidate.id;
    expect(await top()).toBe('new-0000');

    const run = await cli('positions', 'index', ...at);
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe(
      "positions index: 1 of 1 open positions without ADL's leverage key have it now\n",
    );
    expect(await top()).toBe('old-1');
    // Once: a re-run finds none; the record is as it was.
    expect((await cli('positions', 'index', ...at)).stdout).toMatch(/0 of 0 open positions/);
    expect(await adapters(names).positions.get('old-1')).toEqual(short('old-1', '150', '10'));
    expect((await cli('positions', 'index', '--symbol', 'ETH-USD', ...at)).stderr).toMatch(
      /--symbol is an option of positions reindex/,
    );
  }, 120_000);
});

// A review of the mechanisms in session 39: bad debt showed only as a metric and on each record.
describe('status: the losses settlements recorded', () => {
  it('sums fees, shortfalls and who bore them over every settled liquidation, old records included', async () => {
    const { names, at } = await newStage();
    const settled = (id: string, settlement: Record<string, { N: string } | { S: string }>) => ({
      id: { S: id },
      positionId: { S: `p-${id}` },
      symbol: { S: 'ETH-USD' },
      side: { S: 'LONG' },
      state: { S: 'SETTLED_ADL' },
      tickKey: { S: 'ETH-USD#7' },
      triggerMark: { N: '18000000000' },
      remainingSize: { N: '0' },
      marketFills: { L: [] },
      settlement: { M: settlement },
      history: { L: [{ M: { atMs: { N: '1000' }, state: { S: 'QUEUED' } } }] },
      version: { N: '3' },
    });
    const amounts = (unit: 'N' | 'S', values: Record<string, string>) =>
      Object.fromEntries(Object.entries(values).map(([k, v]) => [k, unit === 'N' ? { N: v } : { S: v }]));
    const sizes = { marketClosedSize: '0', auctionClosedSize: '0', adlClosedSize: '0' };
    for (const item of [
      // Corrupt: counted apart, not summed, and status still answers.
      settled('broken', { fee: { S: 'not money' } }),
      // As this version writes it: scaled integers (micro-USD).
      settled(
        'new',
        amounts('N', {
          ...sizes,
          lastResortClosedSize: '0',
          carriedSize: '0',
          realizedPnl: '-2000000000',
          fee: '0',
          shortfall: '1500000000',
          insurancePaid: '1000000000',
          adlCovered: '400000000',
          badDebt: '100000000',
          traderPayout: '0',
        }),
      ),
      // As the first versions wrote it: decimal strings, two amounts not yet there.
      settled(
        'first',
        amounts('S', {
          ...sizes,
          realizedPnl: '-20.5',
          fee: '1.8',
          shortfall: '0',
          insurancePaid: '0',
          adlCovered: '0',
          badDebt: '0',
          traderPayout: '3.2',
        }),
      ),
    ]) {
      await emulator.clients.dynamo.send(
        new PutItemCommand({ TableName: names.tables.liquidations, Item: item }),
      );
    }
    const run = await cli('status', '--json', ...at);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout).liquidations.losses).toEqual({
      fees: '1.8',
      shortfall: '1500',
      fundPaid: '1000',
      adlCovered: '400',
      uncoveredBadDebt: '100',
      unreadable: 1,
    });
    expect((await cli('status', ...at)).stdout).toContain(
      'losses          fees 1.80 USD earned; shortfalls 1,500.00 USD: fund 1,000.00, ADL 400.00, UNCOVERED BAD DEBT 100.00',
    );
  });
});

// Found by a drill of DEPLOY.md's runbook on a local stage in session 45 (drill45-reconcile-units): a balance written
// outside the journal, then a movement, read "entry 2: balanceBefore 110000000 != 100000000" in status and in
// ledger-reconcile's log, in 1e-6 units beside a difference in USD.
describe('status: a fund balance written outside the journal', () => {
  it('names the break in the quote currency, with its gap, beside the difference', async () => {
    const { names, at } = await newStage();
    expect((await cli('fund', 'deposit', '--amount', '100', '--key', 'd1', ...at)).code).toBe(0);
    // By hand, as the runbook's case: 10 USD more in the balance item, no journal entry.
    await emulator.clients.dynamo.send(
      new UpdateItemCommand({
        TableName: names.tables.ledger,
        Key: { pk: { S: 'ACCOUNT#insurance-fund' }, sk: { S: 'BALANCE' } },
        UpdateExpression: 'SET balance = :n',
        ConditionExpression: 'balance = :o',
        ExpressionAttributeValues: { ':n': { N: '110000000' }, ':o': { N: '100000000' } },
      }),
    );
    expect((await cli('fund', 'deposit', '--amount', '5', '--key', 'd2', ...at)).code).toBe(0);
    const run = await cli('status', '--json', ...at);
    expect(run.code, run.stderr).toBe(0);
    const fund = JSON.parse(run.stdout).insuranceFund;
    expect([fund.reconciled, fund.difference, fund.problems]).toEqual([
      false,
      '10',
      ['entry 2: balanceBefore 110.00 != 100.00, the sum of the entries before it (+10.00)'],
    ]);
    expect((await cli('status', ...at)).stdout).toContain(
      '  problem: entry 2: balanceBefore 110.00 != 100.00, the sum of the entries before it (+10.00)\n',
    );
  });
});

// follow48-config-cdk-json: simulate --config read a cdk.json (and the cdk.context.json beside it) as synth does, the
// operator commands a plain risk configuration only: the file an operator replayed was refused where it acted.
describe('--config cdk.json: every command reads it as simulate and synth do', () => {
  const withSol = {
    ...DEFAULT_RISK_CONFIG_INPUT,
    markets: [
      ...DEFAULT_RISK_CONFIG_INPUT.markets,
      { ...DEFAULT_RISK_CONFIG_INPUT.markets[0]!, symbol: 'SOL-USD' },
    ],
    insurance: { ...DEFAULT_RISK_CONFIG_INPUT.insurance, floor: '100' },
  };
  /** A cdk.json with no risk configuration, and the cdk.context.json beside it holding it, as DEPLOY.md keeps it. */
  const pair = (riskConfig: unknown): string => {
    const dir = mkdtempSync(path.join(emulator.dir, 'cdk-'));
    writeFileSync(
      path.join(dir, 'cdk.json'),
      JSON.stringify({ app: 'x', context: { 'backstop:stage': 'qa' } }),
    );
    writeFileSync(
      path.join(dir, 'cdk.context.json'),
      JSON.stringify({ 'backstop:riskConfig': JSON.stringify(riskConfig) }),
    );
    return path.join(dir, 'cdk.json');
  };

  it('fund withdraw and positions reindex take the pair, checked against the stack digest', async () => {
    const { stage, names } = await newStage();
    await publishStackOutputs(emulator.moto.endpoint, stage, names, {
      [OUTPUT_KEYS.riskConfigDigest]: riskConfigDigest(parseRiskConfig(withSol)),
    });
    const at = ['--target', 'localstack', '--endpoint', emulator.moto.endpoint, '--stage', stage];
    const cdk = pair(withSol);
    const reindex = await cli('positions', 'reindex', '--symbol', 'SOL-USD', '--config', cdk, ...at);
    expect(reindex.code, reindex.stderr).toBe(0);
    expect(reindex.stdout).toMatch(/^SOL-USD LONG: 0 open positions priced again/);
    expect((await cli('fund', 'deposit', '--amount', '150', '--key', 'd', ...at)).code).toBe(0);
    // The floor of 100 is the pair's: 60 leaves 90 below it, 50 leaves it at it.
    const below = await cli('fund', 'withdraw', '--amount', '60', '--key', 'w1', '--config', cdk, ...at);
    expect(below.code).toBe(2);
    expect(below.stderr).toMatch(/floor/);
    const run = await cli('fund', 'withdraw', '--amount', '50', '--key', 'w2', '--config', cdk, ...at);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/balance 100\.00 USD/);
    // A cdk.json without its cdk.context.json is the defaults synth would deploy: not this stack's.
    const alone = path.join(mkdtempSync(path.join(emulator.dir, 'alone-')), 'cdk.json');
    writeFileSync(alone, JSON.stringify({ context: {} }));
    const refused = await cli('fund', 'withdraw', '--amount', '1', '--key', 'w3', '--config', alone, ...at);
    expect(refused.stderr).toMatch(/is not the risk configuration stack .* runs with/);
  });

  it('says what is wrong with a pair in the words simulate says it', async () => {
    const { at } = await newStage();
    const bad = pair({ ...withSol, auction: { ...withSol.auction, nope: 1 } });
    const simulate = await cli('simulate', '--config', bad);
    expect(simulate.code).toBe(2);
    expect(simulate.stderr).toMatch(/^backstop: --config: .*cdk\.json \(with .*cdk\.context\.json\): /);
    const withdraw = await cli('fund', 'withdraw', '--amount', '1', '--config', bad, ...at);
    expect([withdraw.code, withdraw.stderr]).toEqual([2, simulate.stderr]);
  });

  it('local up runs the pair (its markets take --index-shards)', async () => {
    const state = mkdtempSync(path.join(tmpdir(), 'follow48-up-'));
    const before = process.env.BACKSTOP_STATE_DIR;
    process.env.BACKSTOP_STATE_DIR = state;
    try {
      // A stack already running (this process): local up stops there, after reading its options.
      writeLocalRecord(state, {
        pid: process.pid,
        motoPid: process.pid,
        endpoint: 'http://127.0.0.1:1',
        stage: 'local',
        region: 'us-east-1',
        startedAt: new Date().toISOString(),
      });
      const run = await cli('local', 'up', '--config', pair(withSol), '--index-shards', '{"SOL-USD": 2}');
      expect([run.code, run.stderr]).toEqual([1, expect.stringMatching(/already running/)]);
      // more48c-local-up-context-shards: a pair naming backstop:positionIndexShards runs them; a flag that differs is
      // refused before anything starts (before: the flag alone, the context's shards unread).
      const sharded = pair(withSol);
      const context = path.join(path.dirname(sharded), 'cdk.context.json');
      writeFileSync(
        context,
        JSON.stringify({
          ...JSON.parse(readFileSync(context, 'utf8')),
          'backstop:positionIndexShards': '{"SOL-USD": 4}',
        }),
      );
      const differs = await cli('local', 'up', '--config', sharded, '--index-shards', '{"SOL-USD": 2}');
      expect(differs.code).toBe(2);
      expect(differs.stderr).toMatch(
        /--index-shards \{"SOL-USD":2\} differs from backstop:positionIndexShards \{"SOL-USD":4\} of --config /,
      );
    } finally {
      process.env.BACKSTOP_STATE_DIR = before;
      rmSync(state, { recursive: true, force: true });
    }
  });

  it("every command's help that takes --config says so", async () => {
    const commands = [
      ['seed'],
      ['fund'],
      ['feed'],
      ['positions'],
      ['status'],
      ['inject'],
      ['replay'],
      ['liquidations'],
      ['providers'],
      ['local'],
      ['simulate'],
    ];
    for (const command of commands) {
      const help = (await cli(...command, '--help')).stdout;
      const options = help.split(/\n(?= {2}-)/).filter((o) => /^ {2}--config /.test(o));
      expect(options.length, command[0]).toBeGreaterThan(0);
      for (const option of options) expect(option.replace(/\s+/g, ' '), command[0]).toMatch(/cdk\.json/);
    }
  });
});
