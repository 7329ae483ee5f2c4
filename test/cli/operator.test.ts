import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AwsClients,
  createAwsAdapters,
  createAwsClients,
  createLocalResources,
  localClientConfig,
  type ResourceNames,
} from '../../shared/adapters/aws/index.ts';
import { liquidationItem } from '../../shared/adapters/aws/liquidations.ts';
import { systemClock } from '../../shared/adapters/embedded/clock.ts';
import { parsePrice } from '../../shared/domain/units.ts';
import type { StatusReport } from '../../shared/local/status.ts';
import type { LiquidationRecord } from '../../shared/ports/index.ts';
import { cli } from '../support/cli.ts';
import { type MotoServer, startMoto } from '../support/moto.ts';

/** Operator commands against moto (in process, --endpoint; no local up needed). */

let moto: MotoServer;
let clients: AwsClients;
const saved = { ...process.env };
const dir = mkdtempSync(path.join(tmpdir(), 'backstop-operator-'));
let counter = 0;

beforeAll(async () => {
  process.env.BACKSTOP_STATE_DIR = path.join(dir, 'state');
  moto = await startMoto();
  clients = createAwsClients(localClientConfig(moto.endpoint));
});
afterAll(async () => {
  clients?.destroy();
  await moto?.stop();
  process.env = saved;
  rmSync(dir, { recursive: true, force: true });
});

async function newStage(): Promise<{ names: ResourceNames; at: string[] }> {
  counter += 1;
  const stage = `ops${counter}`;
  const names = await createLocalResources(clients, stage);
  return { names, at: ['--endpoint', moto.endpoint, '--stage', stage] };
}

async function status(at: string[]): Promise<StatusReport> {
  const run = await cli('status', '--json', ...at);
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as StatusReport;
}

describe('status', () => {
  it('counts a settled liquidation that still owes ADL rounds as not finished', async () => {
    const { names, at } = await newStage();
    // What liquidation.ts `applySettlement` commits when ADL's first transaction of counterparties did not
    // cover the deficit: the record is SETTLED_* and context.adlRound says further rounds are owed (a message
    // carries them; if that message dead-letters, the deficit stays uncovered).
    const owing: LiquidationRecord = {
      id: 'p1:0',
      positionId: 'p1',
      symbol: 'ETH-USD',
      side: 'LONG',
      state: 'SETTLED_ADL',
      tickKey: 'ETH-USD#1',
      triggerMark: parsePrice('1200'),
      remainingSize: 0n,
      marketFills: [],
      auctionFills: [],
      settlement: {
        marketClosedSize: 0n,
        lastResortClosedSize: 0n,
        auctionClosedSize: 0n,
        adlClosedSize: 100_000_000n,
        carriedSize: 0n,
        realizedPnl: -500_000_000n,
        fee: 0n,
        shortfall: 200_000_000n,
        insurancePaid: 0n,
        adlCovered: 50_000_000n,
        badDebt: 150_000_000n,
        traderPayout: 0n,
      },
      history: [{ atMs: Date.now(), state: 'SETTLED_ADL' }],
      context: { plannedSize: 100_000_000n, executionMark: parsePrice('1200'), adlRound: { round: 0 } },
      version: 5,
    };
    await clients.dynamo.send(
      new PutItemCommand({ TableName: names.tables.liquidations, Item: liquidationItem(owing) }),
    );
    const report = await status(at);
    expect(report.liquidations.total).toBe(1);
    // Counted as terminal by its state alone before: a dead-lettered rounds message would read as all done.
    expect(report.liquidations.nonTerminal).toBe(1);
    expect(report.liquidations.owingAdlRounds).toBe(1);
    expect((await cli('status', ...at)).stdout).toMatch(/1 settled, owing ADL rounds/);
  });

  it('does not count a market whose first print waits for a second as an open circuit breaker', async () => {
    const { names, at } = await newStage();
    // What margin-check writes for a market's first print (tick/unconfirmed: "no alarm, every market starts so").
    const markets = createAwsAdapters({ clients, names, clock: systemClock }).markets;
    const first = { sequence: 1, markPrice: parsePrice('1520.5'), timestampMs: Date.now() };
    expect(
      await markets.tripBreaker('ETH-USD', 'tick/unconfirmed', first, Date.now(), {
        lastSequence: undefined,
      }),
    ).toBeTruthy();
    const report = await status(at);
    // It was counted as a tripped breaker, which the CircuitBreakerTripped metric and alarm do not count.
    expect(report.breakersOpen).toBe(0);
    const text = await cli('status', ...at);
    expect(text.stdout).not.toMatch(/BREAKER OPEN/);
    expect(text.stdout).toMatch(/first print 1520.5 waiting for one that agrees/);
  });
});

describe('inject tick', () => {
  it('refuses a symbol that is not a configured market, as replay and seed do', async () => {
    const { at } = await newStage();
    const run = await cli('inject', 'tick', '--symbol', 'DOGE-USD', '--price', '1520.5', ...at);
    // It went on the bus, where margin-check dropped it (tick/unknown-symbol).
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/not a configured market/);
    // A configured market in any case names it.
    const eth = await cli('inject', 'tick', '--symbol', 'eth-usd', '--price', '1520.5', ...at);
    expect(eth.code, eth.stderr).toBe(0);
    expect(eth.stdout).toMatch(/ETH-USD/);
  });
});

describe('replay', () => {
  it("does not send a Binance BTCUSDT kline file's prices as ETH-USD ticks", async () => {
    const { names, at } = await newStage();
    const { writeFileSync } = await import('node:fs');
    // data.binance.vision's own name for the 12-column kline layout replay reads.
    const file = path.join(dir, 'BTCUSDT-1m-2020-03-12.csv');
    const t0 = 1584003600000;
    const rows = [7381.14, 7380.5, 7379.9].map(
      (close, i) =>
        `${t0 + i * 60_000},${close},${close},${close},${close},1,${t0 + i * 60_000 + 59_999},1,1,1,1,0`,
    );
    writeFileSync(file, `${rows.join('\n')}\n`);
    const run = await cli('replay', file, '--speed', 'max', '--json', ...at);
    if (run.code === 0) {
      // It went to ETH-USD: 7381 USD prints on the ETH market (the first trips the breaker, the second agrees
      // with it and is accepted: the ETH book judged at BTC's price).
      expect((JSON.parse(run.stdout) as { symbol: string }).symbol).toBe('BTC-USD');
    } else {
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(/--symbol/);
    }
    const eth = await createAwsAdapters({ clients, names, clock: systemClock }).markets.get('ETH-USD');
    expect(eth).toBeUndefined();
  });
});

describe('README "Running the stack locally", as written', () => {
  it("seeds positions, then providers, on a fresh stack (the README's lines)", async () => {
    const readme = readFileSync(path.join(process.cwd(), 'README.md'), 'utf8');
    const line = (command: string) => {
      const found = readme.split('\n').find((l) => l.startsWith(`npx backstop ${command}`));
      if (!found) throw new Error(`README has no "npx backstop ${command}" line`);
      return found
        .replace(/\s+#.*$/, '')
        .split(/\s+/)
        .slice(2);
    };
    const { at } = await newStage();
    const positions = await cli(...line('seed positions'), ...at);
    expect(positions.code, positions.stderr).toBe(0);
    // Without --price, a fresh stack has no mark for providers to be sized at: the line failed as written.
    const providers = await cli(...line('seed providers'), ...at);
    expect(providers.code, providers.stderr).toBe(0);
  });
});
