import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import type { Item } from '../../shared/adapters/aws/codec.ts';
import { itemBytes } from '../../shared/adapters/aws/item-size.ts';
import { PositionIndexLayout } from '../../shared/adapters/aws/position-layout.ts';
import { positionItem } from '../../shared/adapters/aws/positions.ts';
import { providerItem } from '../../shared/adapters/aws/providers.ts';
import { auctionItem, liquidationItem } from '../../shared/adapters/aws/record-items.ts';
import { TICK_INDEX_SHARDS, tickIndexShardId } from '../../shared/adapters/shards.ts';
import { parseRiskConfig, type RiskConfig } from '../../shared/domain/config.ts';
import type { Side } from '../../shared/domain/model.ts';
import { parseBase, parsePrice, parseQuote } from '../../shared/domain/units.ts';
import type {
  AuctionRecord,
  LedgerMovement,
  LiquidationRecord,
  PositionRecord,
  ProviderRecord,
} from '../../shared/ports/index.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { withLiquidationPrice } from '../../shared/services/margin-check.ts';
import { motoStages } from '../support/moto.ts';
import { createPipeline, type Pipeline } from '../support/pipeline.ts';
import { AUCTION_ONLY } from '../support/risk-configs.ts';

/**
 * What each item the pipeline writes weighs as DynamoDB counts it (item-size.ts) with a real exchange's ids, and how
 * many KB it starts: a write unit covers 1 KB of the item written (2 units a KB in a transaction, which is how the
 * services write liquidations and auctions), and every write of an item rewrites it whole. The tests and the bench's
 * short ids (`p1`, ticks 1, 2, 3) hid that a settled liquidation passes 1 KB (cost52-real-ids). Here: position,
 * trader and provider ids of 36 characters (UUIDs), so liquidation ids of 38; tick sequences of 8 digits; the
 * clock's 13-digit ms timestamps; amounts of full width (8 decimals of base and price, 6 of quote) unless an item
 * says "round". docs/PERFORMANCE.md section 3, "Item sizes with a real exchange's ids", prints this table: a change
 * that takes an item over a KB (or under one) fails here, naming it, and the doc's figure with it.
 */

/** A UUID's length and shape; its digits do not change an item's size. */
const uuid = (n: number): string => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
const FIRST_SEQUENCE = 12_345_678;
const LAYOUT = new PositionIndexLayout();

/** Per item: the KB it starts (its write units, twice that in a transaction) and the most bytes it may be. */
interface Bound {
  readonly kb: number;
  readonly atMost: number;
}

/** The documented table (PERFORMANCE.md): each bound a few bytes above the size measured in session 52. */
const DOCUMENTED: Readonly<Record<string, Bound>> = {
  'position OPEN (and each of its 3 index entries)': { kb: 1, atMost: 260 },
  'position LIQUIDATING': { kb: 1, atMost: 215 },
  'position OPEN, the rest of a slice': { kb: 1, atMost: 280 },
  'position CLOSED': { kb: 1, atMost: 210 },
  'position OPEN, an ADL counterparty with its event': { kb: 1, atMost: 440 },
  'liquidation QUEUED': { kb: 1, atMost: 315 },
  'liquidation EXECUTING': { kb: 1, atMost: 790 },
  'liquidation SETTLED_MARKET, round amounts, closed whole': { kb: 1, atMost: 980 },
  'liquidation SETTLED_MARKET': { kb: 2, atMost: 1040 },
  'liquidation AUCTION': { kb: 1, atMost: 855 },
  'liquidation SETTLED_AUCTION': { kb: 2, atMost: 1090 },
  'liquidation SETTLING, the fund': { kb: 2, atMost: 1140 },
  'liquidation SETTLED_INSURANCE': { kb: 2, atMost: 1380 },
  'liquidation SETTLING, ADL': { kb: 2, atMost: 1320 },
  'liquidation SETTLED_ADL': { kb: 2, atMost: 1540 },
  'open-liquidations index entry (keys only)': { kb: 1, atMost: 75 },
  'auction RUNNING, no fill': { kb: 1, atMost: 290 },
  'auction CLEARED, 1 fill': { kb: 1, atMost: 400 },
  'auction CLEARED, 10 fills': { kb: 2, atMost: 1405 },
  'auction wake index entry (keys and step)': { kb: 1, atMost: 90 },
  'provider after 1 fill': { kb: 1, atMost: 405 },
  'provider after 2 fills': { kb: 1, atMost: 565 },
  'tick index shard item, 1 liquidation id': { kb: 1, atMost: 85 },
  'market after a tick': { kb: 1, atMost: 155 },
  'market pending a crossing tick': { kb: 1, atMost: 175 },
  'fund journal entry: a fee (and its index entry)': { kb: 1, atMost: 320 },
  'fund journal entry: a shortfall payout (and its index entry)': { kb: 1, atMost: 330 },
  "fund journal entry: an operator's deposit (and its index entry)": { kb: 1, atMost: 475 },
  'fund balance': { kb: 1, atMost: 110 },
};

const kbOf = (bytes: number): number => Math.max(1, Math.ceil(bytes / 1024));

/** The measured sizes, the largest write of each item. */
class Sizes {
  readonly bytes = new Map<string, number>();
  add(name: string, item: Item): void {
    this.bytes.set(name, Math.max(this.bytes.get(name) ?? 0, itemBytes(item)));
  }
  table(): string {
    return [...this.bytes].map(([name, b]) => `${name}: ${b} bytes, ${kbOf(b)} KB`).join('\n');
  }
}

const moto = motoStages('isize');

/** A pipeline whose positions, providers and ticks carry a real exchange's ids; its fund's movements recorded. */
function realPipeline(config?: RiskConfig) {
  const p = createPipeline(config ? { config } : {});
  const movements: LedgerMovement[] = [];
  const apply = p.adapters.ledger.apply.bind(p.adapters.ledger);
  p.adapters.ledger.apply = (...args: Parameters<typeof apply>) => {
    movements.push(args[0]);
    return apply(...args);
  };
  let sequence = FIRST_SEQUENCE;
  const tick = (price: string) =>
    p.deliverTick({
      symbol: 'ETH-USD',
      markPrice: parsePrice(price),
      timestampMs: p.clock.nowMs(),
      sequence: sequence++,
      source: 'test',
    });
  const open = (n: number, side: Side, size: string, entry: string, collateral: string): void =>
    p.seed([
      withLiquidationPrice(
        {
          id: uuid(n),
          traderId: uuid(1_000_000 + n),
          symbol: 'ETH-USD',
          side,
          size: parseBase(size),
          entryPrice: parsePrice(entry),
          collateral: parseQuote(collateral),
          state: 'OPEN',
          version: 0,
        },
        p.config,
      ),
    ]);
  return { p, movements, tick, open };
}

/** Every record the pipeline wrote, in order. */
function written(p: Pipeline) {
  return p.observer.groups.flatMap((g) => g.writes);
}

const liquidations = (p: Pipeline): LiquidationRecord[] =>
  written(p).flatMap((w) => (w.kind === 'liquidation' ? [w.after as LiquidationRecord] : []));
const auctions = (p: Pipeline): AuctionRecord[] =>
  written(p).flatMap((w) => (w.kind === 'auction' ? [w.after as AuctionRecord] : []));

/** The liquidation items of `p` by state, `suffix` after the ones a layer names. */
function addLiquidations(sizes: Sizes, p: Pipeline, name: (l: LiquidationRecord) => string | undefined) {
  for (const l of liquidations(p)) {
    const label = name(l);
    if (label) sizes.add(label, liquidationItem(l));
  }
}

async function measureRecords(sizes: Sizes) {
  const movements: LedgerMovement[] = [];

  // The market, a slice: 10.12345678 ETH at 2000.12345678, 10x, crossed at 1840.12345678 (two fills).
  const market = realPipeline();
  await market.tick('2000');
  await market.tick('2000');
  market.open(1, 'LONG', '10.12345678', '2000.12345678', '2000.123456');
  await market.tick('1840.12345678');
  await market.p.drain();
  expect(market.p.adapters.liquidations.all().map((l) => l.state)).toEqual(['SETTLED_MARKET']);
  addLiquidations(sizes, market.p, (l) =>
    l.state === 'SETTLED_MARKET' ? 'liquidation SETTLED_MARKET' : `liquidation ${l.state}`,
  );
  const positions = written(market.p).flatMap((w) =>
    w.kind === 'position' ? [w.after as PositionRecord] : [],
  );
  expect(positions.map((x) => x.state)).toEqual(['OPEN', 'LIQUIDATING', 'OPEN']);
  sizes.add('position OPEN (and each of its 3 index entries)', positionItem(positions[0]!, LAYOUT));
  sizes.add('position LIQUIDATING', positionItem(positions[1]!, LAYOUT));
  sizes.add('position OPEN, the rest of a slice', positionItem(positions[2]!, LAYOUT));
  const queued = liquidationItem(liquidations(market.p)[0]!);
  sizes.add('open-liquidations index entry (keys only)', {
    id: queued.id!,
    openShard: queued.openShard!,
    startedAtMs: queued.startedAtMs!,
  });
  movements.push(...market.movements);

  // Round amounts, closed whole: 10 ETH at 200, collateral 200, crossed at 184 (one fill).
  const round = realPipeline();
  await round.tick('200');
  await round.tick('200');
  round.open(2, 'LONG', '10', '200', '200');
  await round.tick('184');
  await round.p.drain();
  addLiquidations(sizes, round.p, (l) =>
    l.state === 'SETTLED_MARKET' ? 'liquidation SETTLED_MARKET, round amounts, closed whole' : undefined,
  );
  const closed = written(round.p).flatMap((w) =>
    w.kind === 'position' && (w.after as PositionRecord).state === 'CLOSED'
      ? [w.after as PositionRecord]
      : [],
  );
  sizes.add('position CLOSED', positionItem(closed[0]!, LAYOUT));

  // The auction: the market kept out, one provider takes the lot (1 fill); ten of 0.75 ETH each take a slice in ten.
  const auctionOnly = parseRiskConfig(AUCTION_ONLY);
  const one = realPipeline(auctionOnly);
  await one.tick('2000');
  await one.tick('2000');
  await one.p.provider(uuid(500), '10000000.123456', '0.01', '1000');
  one.open(3, 'LONG', '10.12345678', '2000.12345678', '2000.123456');
  await one.tick('1840.12345678');
  await one.p.drain();
  addLiquidations(sizes, one.p, (l) =>
    l.state === 'AUCTION' || l.state === 'SETTLED_AUCTION' ? `liquidation ${l.state}` : undefined,
  );
  for (const a of auctions(one.p)) {
    if (a.state === 'RUNNING' && a.fills.length === 0) sizes.add('auction RUNNING, no fill', auctionItem(a));
    if (a.state === 'CLEARED' && a.fills.length === 1) sizes.add('auction CLEARED, 1 fill', auctionItem(a));
  }
  // Its record keeps its latest fills: the one of each slice's auction.
  for (const w of written(one.p)) {
    const kept = w.kind === 'provider' ? (w.after as ProviderRecord).fills : undefined;
    const fills = kept && 'recent' in kept ? kept.recent.length : undefined;
    if (fills)
      sizes.add(
        `provider after ${fills} fill${fills === 1 ? '' : 's'}`,
        providerItem(w.after as ProviderRecord),
      );
  }

  const ten = realPipeline(auctionOnly);
  await ten.tick('2000');
  await ten.tick('2000');
  for (let i = 0; i < 10; i++) await ten.p.provider(uuid(600 + i), '10000000.123456', '0.01', '0.75');
  ten.open(4, 'LONG', '10.12345678', '2000.12345678', '2000.123456');
  await ten.tick('1840.12345678');
  await ten.p.drain();
  const cleared = auctions(ten.p).filter((a) => a.state === 'CLEARED');
  expect(cleared.map((a) => a.fills.length)).toContain(10);
  for (const a of cleared) if (a.fills.length === 10) sizes.add('auction CLEARED, 10 fills', auctionItem(a));

  // A sleeping auction's entry in the wake index: its keys and step (the index projects `step` alone).
  const sleeping = auctions(one.p).find((a) => a.wakeMark !== undefined && a.state === 'RUNNING');
  const wake = auctionItem(
    sleeping ?? { ...auctions(one.p)[0]!, state: 'RUNNING', wakeMark: parsePrice('1821.12345678') },
  );
  sizes.add('auction wake index entry (keys and step)', {
    id: wake.id!,
    wakeKey: wake.wakeKey!,
    wakeMark: wake.wakeMark!,
    step: wake.step!,
  });

  // The fund: a gap through the bankruptcy price.
  const fund = realPipeline();
  await fund.p.fund('1000000.123456');
  await fund.tick('2000');
  await fund.tick('2000');
  fund.open(5, 'LONG', '10.12345678', '2000.12345678', '2000.123456');
  await fund.tick('1750.12345678');
  await fund.p.drain();
  expect(fund.p.adapters.liquidations.all().map((l) => l.state)).toEqual(['SETTLED_INSURANCE']);
  addLiquidations(sizes, fund.p, (l) =>
    l.state === 'SETTLING'
      ? 'liquidation SETTLING, the fund'
      : l.state === 'SETTLED_INSURANCE'
        ? `liquidation ${l.state}`
        : undefined,
  );
  movements.push(...fund.movements);

  // ADL: no fund, ten shorts in profit take the shortfall.
  const adl = realPipeline();
  await adl.tick('2000');
  await adl.tick('2000');
  for (let i = 0; i < 10; i++) adl.open(100 + i, 'SHORT', '5.12345678', '2000.12345678', '5000.123456');
  adl.open(6, 'LONG', '10.12345678', '2000.12345678', '2000.123456');
  await adl.tick('1750.12345678');
  await adl.p.drain();
  expect(adl.p.adapters.liquidations.all().map((l) => l.state)).toEqual(['SETTLED_ADL']);
  addLiquidations(sizes, adl.p, (l) =>
    l.state === 'SETTLING'
      ? 'liquidation SETTLING, ADL'
      : l.state === 'SETTLED_ADL'
        ? `liquidation ${l.state}`
        : undefined,
  );
  const taken = written(adl.p).flatMap((w) => {
    const position = w.after as PositionRecord;
    return w.kind === 'position' && position.side === 'SHORT' && position.version > 0 ? [position] : [];
  });
  expect(taken.length).toBeGreaterThan(0);
  for (const position of taken)
    sizes.add('position OPEN, an ADL counterparty with its event', positionItem(position, LAYOUT));

  // A tick's index of the liquidations it started: one shard item, as `begin` ADDs the first id to it.
  sizes.add('tick index shard item, 1 liquidation id', {
    id: { S: tickIndexShardId(`ETH-USD#${FIRST_SEQUENCE}`, TICK_INDEX_SHARDS - 1) },
    ids: { SS: [`${uuid(7)}:0`] },
    kind: { S: 'tickIndex' },
  });
  return movements;
}

/** The market's item and the fund's, written by the AWS adapters on the emulator. */
async function measureStored(sizes: Sizes, movements: readonly LedgerMovement[]) {
  const { clients, names, adapters } = await moto.stage();
  const symbol = 'ETH-USD';
  const atMs = 1_796_609_377_191;
  const print = (n: number, price: string) => ({
    sequence: FIRST_SEQUENCE + n,
    markPrice: parsePrice(price),
    indexPrice: parsePrice(price),
    timestampMs: atMs + n,
  });
  const stored = async (table: string): Promise<Item[]> =>
    (await clients.dynamo.send(new ScanCommand({ TableName: table, ConsistentRead: true }))).Items ?? [];
  await adapters.markets.acceptTick(symbol, print(0, '2000.12345678'), undefined, false);
  sizes.add('market after a tick', (await stored(names.tables.markets))[0]!);
  const before = await adapters.markets.get(symbol);
  await adapters.markets.acceptTick(symbol, print(1, '1840.12345678'), FIRST_SEQUENCE, true, {
    breakerTick: undefined,
    pendingSequence: undefined,
    lastTick: before!.lastTick,
  });
  sizes.add('market pending a crossing tick', (await stored(names.tables.markets))[0]!);

  // The pipelines' movements (their fences are on liquidations this stage has not), and an operator's deposit.
  await adapters.ledger.apply({
    account: INSURANCE_ACCOUNT,
    idempotencyKey: `deposit:${uuid(900)}`,
    amount: parseQuote('2500000.123456'),
    kind: 'deposit',
    reference: 'wire 2026-12-07 treasury',
    atMs,
    floor: 0n,
    actor: 'arn:aws:sts::123456789012:assumed-role/BackstopOperator/alice.operator@example.com',
    invocationId: uuid(901),
    declaredOperator: 'alice.operator@example.com',
  });
  for (const { fence: _fence, expected: _expected, ...movement } of movements)
    await adapters.ledger.apply(movement);
  const items = await stored(names.tables.ledger);
  for (const item of items) {
    const kind = item.kind?.S;
    if (item.journalSequence === undefined) {
      if (item.balance !== undefined) sizes.add('fund balance', item);
    } else if (kind === 'deposit' && item.actor !== undefined)
      sizes.add("fund journal entry: an operator's deposit (and its index entry)", item);
    else if (kind === 'liquidation-fee') sizes.add('fund journal entry: a fee (and its index entry)', item);
    else if (kind === 'shortfall-payout')
      sizes.add('fund journal entry: a shortfall payout (and its index entry)', item);
  }
}

describe("the items the pipeline writes, with a real exchange's ids (cost52-real-ids)", () => {
  it('each starts the KB docs/PERFORMANCE.md says, within its documented size', async () => {
    const sizes = new Sizes();
    const movements = await measureRecords(sizes);
    await measureStored(sizes, movements);
    const table = sizes.table();
    if (process.env.ITEM_SIZES === '1') process.stdout.write(`${table}\n`);
    // Every documented item measured, and nothing measured undocumented.
    expect([...sizes.bytes.keys()].sort(), table).toEqual(Object.keys(DOCUMENTED).sort());
    for (const [name, bytes] of sizes.bytes) {
      const bound = DOCUMENTED[name]!;
      expect(
        { item: name, kb: kbOf(bytes), withinBound: bytes <= bound.atMost },
        `${name}: ${bytes} bytes\n${table}`,
      ).toEqual({ item: name, kb: bound.kb, withinBound: true });
    }
  });
});
