import { randomUUID } from 'node:crypto';
import {
  DEFAULT_RISK_CONFIG,
  DEFAULT_RISK_CONFIG_INPUT,
  type RiskConfigInput,
} from '../shared/domain/config.ts';
import { isTerminal, type LiquidationState } from '../shared/domain/model.ts';
import { BASE_SCALE, PRICE_SCALE, QUOTE_SCALE } from '../shared/domain/units.ts';
import { withLiquidationPrice } from '../shared/services/margin-check.ts';
import type { FunctionId } from '../shared/topology.ts';
import { addUsage, type CapacityMeter, diffUsage, EMPTY_USAGE, totalCalls, type Usage } from './capacity.ts';
import { type BenchIds, IDS_ASSUMED } from './ids.ts';
import { AWS_PRICES, type CostBreakdown, costOf, scaleCost, type UnitWork } from './pricing.ts';
import { BenchStage, ladder, markFor, memoryOf, SYMBOL } from './stage.ts';
import { significant } from './timing.ts';

/**
 * Part 3: AWS API calls per unit of work, counted on the handlers' own SDK clients against the emulator, phase by
 * phase: a tick that crosses nothing; ticks that cross k positions (margin-check alone, then the consumers settle
 * all k at once: the contended case); one stage per waterfall layer settling liquidations one at a time.
 *
 * A liquidation's count (apiCalls.liquidation*) is of a liquidation alone: the calls of a tick crossing one
 * position beyond a tick that crosses nothing, plus the calls that settle it alone. In bursts a tick's calls are
 * shared (tickPerCrossed, from the largest k) and so are the fund's (detail.crossing). The fixed calls of the tick
 * are in tickNoCross, paid by every tick whether it crosses or not:
 *   calls = tickNoCross * ticks + tickPerCrossed * crossed + settlement calls * liquidations (in bursts)
 */

export interface ApiCallsResult {
  /** The ids the records and ticks carried (BENCH_IDS; absent: a run before session 52, the tests' short ids). */
  readonly ids?: BenchIds;
  readonly tickNoCross: number;
  readonly tickPerCrossed: number;
  readonly liquidationMarket: number;
  readonly liquidationAuction: number;
  readonly liquidationInsurance: number;
  /** Settled by ADL: an empty fund, the shortfall socialized over profitable shorts. */
  readonly liquidationAdl: number;
  readonly detail: {
    readonly tickNoCrossByOperation: Record<string, number>;
    /** Estimated DynamoDB request units of a tick that crosses nothing. */
    readonly tickNoCrossUnits: { readonly read: number; readonly write: number };
    readonly crossing: readonly CrossingRow[];
    /** A tick crossing nothing in a market whose positions are spread over index shards: a Query per shard. */
    readonly tickNoCrossSharded: {
      readonly shards: number;
      readonly calls: number;
      readonly byOperation: Record<string, number>;
    };
    readonly layers: Record<Layer, LayerRow>;
    /** Invocations that failed and were retried (ledger contention on the fund's item, mostly). */
    readonly failedInvocations: number;
  };
  readonly cost: {
    readonly prices: typeof AWS_PRICES;
    readonly assumptions: readonly string[];
    readonly perMillionTicks: CostBreakdown;
    readonly perThousandLiquidations: Record<Layer, CostBreakdown>;
  };
}

/** The layers whose settlements are counted, one stage each. */
export const LAYERS = ['market', 'auction', 'insurance', 'adl'] as const;
export type Layer = (typeof LAYERS)[number];

export interface CrossingRow {
  readonly crossed: number;
  /** Calls of the tick (margin-check, its continuations included). */
  readonly tickCalls: number;
  /** Settlement calls per liquidation (consumer and auction). */
  readonly settleCallsPerLiquidation: number;
  readonly states: Record<string, number>;
}

export interface LayerRow {
  readonly liquidations: number;
  readonly tickSharePerLiquidation: number;
  readonly settleCallsPerLiquidation: number;
  readonly perLiquidation: number;
  readonly byOperation: Record<string, number>;
  /** DynamoDB calls per operation and table(s), per liquidation. */
  readonly byTable: Record<string, number>;
  /** Estimated DynamoDB request units of the settlement, per liquidation. */
  readonly readUnits: number;
  readonly writeUnits: number;
  readonly states: Record<string, number>;
}

export interface AwsCallsOptions {
  readonly endpoint: string;
  readonly meter: CapacityMeter;
  readonly noCrossTicks: number;
  /** Crossing sizes, ascending; the largest gives tickPerCrossed. */
  readonly crossed: readonly number[];
  /** Liquidations per waterfall layer stage. */
  readonly perLayer: number;
  readonly stagePrefix: string;
  /** The records' ids and the ticks' numbers: a real exchange's or the tests' (BENCH_IDS). */
  readonly ids: BenchIds;
  readonly log?: (line: string) => void;
}

const FAST_AUCTION: RiskConfigInput = {
  ...DEFAULT_RISK_CONFIG_INPUT,
  auction: {
    ...DEFAULT_RISK_CONFIG_INPUT.auction,
    buf: '1',
    curve: { kind: 'stairstep', cut: '0.99', stepSeconds: 1 },
  },
};
/** A market that takes nothing within the bound: every liquidation goes to the auction. */
const NO_MARKET: RiskConfigInput = {
  ...FAST_AUCTION,
  markets: FAST_AUCTION.markets.map((m) => ({ ...m, slippageBound: '0.000001' })),
};

const SETTLE: readonly FunctionId[] = ['liquidationConsumer', 'auction'];

/** Work measured over one phase of a stage. */
interface PhaseWork {
  readonly usage: Usage;
  readonly invocations: Map<FunctionId, { count: number; totalMs: number }>;
}

async function measurePhase(
  stage: BenchStage,
  meter: CapacityMeter,
  run: () => Promise<void>,
): Promise<PhaseWork> {
  const before = meter.snapshot();
  const invBefore = stage.invocations();
  await run();
  const invocations = new Map<FunctionId, { count: number; totalMs: number }>();
  for (const [id, after] of stage.invocations()) {
    const b = invBefore.get(id) ?? { count: 0, totalMs: 0 };
    if (after.count > b.count)
      invocations.set(id, { count: after.count - b.count, totalMs: after.totalMs - b.totalMs });
  }
  return { usage: diffUsage(meter.snapshot(), before), invocations };
}

/** One unit's share of a phase (divide by `units`), in the pricing model's terms. */
function unitWork(work: PhaseWork, units: number, busEvents: number): UnitWork {
  const calls: Record<string, number> = {};
  for (const [op, n] of Object.entries(work.usage.calls)) calls[op] = n / units;
  let requests = 0;
  let gbSeconds = 0;
  let pollerRequests = 0;
  for (const [id, t] of work.invocations) {
    requests += t.count;
    gbSeconds += (memoryOf(id) / 1024) * (t.totalMs / 1000);
    if (id !== 'marginCheck') pollerRequests += 2 * t.count;
  }
  return {
    usage: { calls, readUnits: work.usage.readUnits / units, writeUnits: work.usage.writeUnits / units },
    lambdaRequests: requests / units,
    lambdaGbSeconds: gbSeconds / units,
    busEvents,
    pollerRequests: pollerRequests / units,
  };
}

/** a - b (b scaled by `times`), operation by operation. */
function subtractWork(a: UnitWork, b: UnitWork, times: number): UnitWork {
  const calls = { ...a.usage.calls };
  for (const [op, n] of Object.entries(b.usage.calls)) calls[op] = (calls[op] ?? 0) - n * times;
  return {
    usage: {
      calls,
      readUnits: a.usage.readUnits - b.usage.readUnits * times,
      writeUnits: a.usage.writeUnits - b.usage.writeUnits * times,
    },
    lambdaRequests: a.lambdaRequests - b.lambdaRequests * times,
    lambdaGbSeconds: a.lambdaGbSeconds - b.lambdaGbSeconds * times,
    busEvents: a.busEvents - b.busEvents * times,
    pollerRequests: a.pollerRequests - b.pollerRequests * times,
  };
}

function addWork(a: UnitWork, b: UnitWork): UnitWork {
  return subtractWork(a, b, -1);
}

async function liquidationStates(stage: BenchStage, sequence: number): Promise<Record<string, number>> {
  const states: Record<string, number> = {};
  for (const l of await stage.adapters.liquidations.listByTick(`${SYMBOL}#${sequence}`)) {
    states[l.state] = (states[l.state] ?? 0) + 1;
  }
  return states;
}

const count = (states: Record<string, number>): number => Object.values(states).reduce((a, b) => a + b, 0);

/**
 * Every liquidation terminal, and at least 90 % in the layer the scenario drives them to: a large burst sold on the
 * simulated book can push a few past their bankruptcy price (the fund then pays); their calls stay in the average.
 */
function requireLayer(
  states: Record<string, number>,
  expected: number,
  terminal: string,
  what: string,
): void {
  const terminalCount = Object.entries(states)
    .filter(([state]) => isTerminal(state as LiquidationState))
    .reduce((a, [, n]) => a + n, 0);
  if (terminalCount !== expected || (states[terminal] ?? 0) < 0.9 * expected) {
    throw new Error(
      `bench/${what}: expected ${expected} terminal, mostly ${terminal}; got ${JSON.stringify(states)}`,
    );
  }
}

const USD = PRICE_SCALE;

/** Index shards of the market in the sharded measurement. */
const BENCH_INDEX_SHARDS = 4;

/** Ticks crossing nothing in a market with BENCH_INDEX_SHARDS index shards. */
async function measureShardedTicks(options: AwsCallsOptions) {
  const stage = await BenchStage.open(
    options.endpoint,
    `${options.stagePrefix}shards`,
    undefined,
    { [SYMBOL]: BENCH_INDEX_SHARDS },
    options.ids,
  );
  try {
    await stage.openMarket(200n * USD);
    await stage.seed(ladder('sharded', 40, 195, 190, options.ids));
    const work = await measurePhase(stage, options.meter, async () => {
      for (let i = 0; i < options.noCrossTicks; i++) {
        await stage.putTick(i % 2 === 0 ? 19_990n * (USD / 100n) : 200n * USD);
        await stage.phase(['marginCheck']);
      }
    });
    const perTick = (n: number) => significant(n / options.noCrossTicks);
    return {
      shards: BENCH_INDEX_SHARDS,
      calls: perTick(totalCalls(work.usage)),
      byOperation: Object.fromEntries(Object.entries(work.usage.calls).map(([op, n]) => [op, perTick(n)])),
    };
  } finally {
    await stage.close();
  }
}

/** Ticks that cross nothing and ticks that cross k positions, all settled on the market. */
async function measureTicks(options: AwsCallsOptions) {
  const { meter } = options;
  const stage = await BenchStage.open(
    options.endpoint,
    `${options.stagePrefix}ticks`,
    undefined,
    {},
    options.ids,
  );
  try {
    await stage.admin({
      action: 'deposit',
      amount: '1000000',
      idempotencyKey: 'bench-seed',
      operator: 'bench',
    });
    await stage.openMarket(200n * USD);

    const total = options.crossed.reduce((a, b) => a + b, 0);
    const book = ladder('calls', total, 195, 190, options.ids);
    await stage.seed(book);

    const noCross = await measurePhase(stage, meter, async () => {
      for (let i = 0; i < options.noCrossTicks; i++) {
        await stage.putTick(i % 2 === 0 ? 19_990n * (USD / 100n) : 200n * USD);
        await stage.phase(['marginCheck']);
      }
    });
    const tickNoCross = totalCalls(noCross.usage) / options.noCrossTicks;
    options.log?.(`aws calls: tick crossing nothing ${tickNoCross} ${JSON.stringify(noCross.usage.calls)}`);

    const rows: CrossingRow[] = [];
    const phases: { crossed: number; tick: PhaseWork; settle: PhaseWork }[] = [];
    let from = 0;
    for (const k of options.crossed) {
      const group = book.slice(from, from + k);
      from += k;
      let sequence = 0;
      const tick = await measurePhase(stage, meter, async () => {
        sequence = await stage.putTick(markFor(group));
        await stage.phase(['marginCheck']);
      });
      const started = count(await liquidationStates(stage, sequence));
      if (started !== k) throw new Error(`bench/crossing: tick started ${started}, expected ${k}`);
      const settle = await measurePhase(stage, meter, async () => {
        await stage.phase(SETTLE);
      });
      const states = await liquidationStates(stage, sequence);
      requireLayer(states, k, 'SETTLED_MARKET', 'market-settlement');
      rows.push({
        crossed: k,
        tickCalls: totalCalls(tick.usage),
        settleCallsPerLiquidation: significant(totalCalls(settle.usage) / k),
        states,
      });
      phases.push({ crossed: k, tick, settle });
      options.log?.(
        `aws calls: tick crossing ${k}: ${totalCalls(tick.usage)} calls; ${totalCalls(settle.usage) / k} per settlement`,
      );
    }
    return { tickNoCross, noCross, rows, phases, failed: stage.failedInvocations };
  } finally {
    await stage.close();
  }
}

/**
 * `perLayer` liquidations settled by one layer of the waterfall, one at a time: a position is opened, a tick
 * crosses it (at its liquidation price; for the fund, at 175 USD, through its bankruptcy price near 190), it
 * settles, the mark returns to 200 and the next one opens. One at a time measures the calls of the design, without
 * the retries of a contended fund item (the crossing table of measureTicks shows those), and sidesteps concurrent
 * auctions that clear against the same provider: they conflict on its record and the loser is left RUNNING
 * (reported in docs/PERFORMANCE.md).
 */
async function measureLayer(options: AwsCallsOptions, layer: Layer) {
  const { meter } = options;
  const k = options.perLayer;
  const stage = await BenchStage.open(
    options.endpoint,
    `${options.stagePrefix}${layer}`,
    layer === 'auction' ? NO_MARKET : DEFAULT_RISK_CONFIG_INPUT,
    {},
    options.ids,
  );
  try {
    if (layer === 'auction') {
      await stage.admin({
        action: 'registerProvider',
        id: options.ids === 'uuid' ? randomUUID() : 'lp-bench',
        capital: '10000000',
        maxDiscount: '0.01',
        maxLot: '1000',
        symbols: [SYMBOL],
      });
    } else if (layer === 'adl') {
      // No fund: every shortfall goes to ADL, over ten shorts that are in profit at 175.
      await stage.seed(
        Array.from({ length: 10 }, (_, i) =>
          withLiquidationPrice(
            {
              id: options.ids === 'uuid' ? randomUUID() : `adl-short-${i}`,
              traderId: options.ids === 'uuid' ? randomUUID() : `t-adl-short-${i}`,
              symbol: SYMBOL,
              side: 'SHORT',
              size: 5n * BASE_SCALE,
              entryPrice: 200n * PRICE_SCALE,
              collateral: 500n * QUOTE_SCALE,
              state: 'OPEN',
              version: 0,
            },
            DEFAULT_RISK_CONFIG,
          ),
        ),
      );
    } else {
      await stage.admin({
        action: 'deposit',
        amount: '1000000',
        idempotencyKey: 'bench-seed',
        operator: 'bench',
      });
    }
    const resting = 200n * USD;
    await stage.openMarket(resting);
    const book = ladder(layer, k, 192, 190, options.ids);
    const sequences: number[] = [];
    const settles: PhaseWork[] = [];
    for (const position of book) {
      await stage.seed([position]);
      await measurePhase(stage, meter, async () => {
        const gap = layer === 'insurance' || layer === 'adl';
        sequences.push(await stage.putTick(gap ? 175n * USD : position.liquidationPrice));
        await stage.phase(['marginCheck']);
      });
      settles.push(
        await measurePhase(stage, meter, async () => {
          await stage.phase(SETTLE);
        }),
      );
      await stage.putTick(resting);
      await stage.phase(['marginCheck']);
    }
    const states: Record<string, number> = {};
    for (const sequence of sequences) {
      for (const [state, n] of Object.entries(await liquidationStates(stage, sequence))) {
        states[state] = (states[state] ?? 0) + n;
      }
    }
    requireLayer(states, k, TERMINAL_OF[layer], `${layer}-settlement`);
    return { settle: sumPhases(settles), states, failed: stage.failedInvocations };
  } finally {
    await stage.close();
  }
}

const TERMINAL_OF: Record<Layer, string> = {
  market: 'SETTLED_MARKET',
  auction: 'SETTLED_AUCTION',
  insurance: 'SETTLED_INSURANCE',
  adl: 'SETTLED_ADL',
};

function sumPhases(phases: readonly PhaseWork[]): PhaseWork {
  let usage: Usage = EMPTY_USAGE;
  const invocations = new Map<FunctionId, { count: number; totalMs: number }>();
  for (const p of phases) {
    usage = addUsage(usage, p.usage);
    for (const [id, t] of p.invocations) {
      const sum = invocations.get(id) ?? { count: 0, totalMs: 0 };
      invocations.set(id, { count: sum.count + t.count, totalMs: sum.totalMs + t.totalMs });
    }
  }
  return { usage, invocations };
}

export async function benchAwsCalls(options: AwsCallsOptions): Promise<ApiCallsResult> {
  const ticks = await measureTicks(options);
  const tickNoCrossSharded = await measureShardedTicks(options);
  options.log?.(
    `aws calls: tick crossing nothing, ${tickNoCrossSharded.shards} index shards: ${tickNoCrossSharded.calls}`,
  );
  const largest = ticks.phases[ticks.phases.length - 1]!;
  const k = largest.crossed;
  const tickPerCrossed = (totalCalls(largest.tick.usage) - ticks.tickNoCross) / k;
  // A liquidation alone pays all of its tick's calls beyond a tick that crosses nothing (the begin transaction, a
  // message batch of one, the tick's pending mark cleared): the calls per liquidation are judged on that case,
  // each layer's settlement being measured alone too. Bursts share those (detail.crossing).
  const smallest = ticks.rows[0]!;
  const tickShareAlone = (smallest.tickCalls - ticks.tickNoCross) / smallest.crossed;

  const noCrossUnit = unitWork(ticks.noCross, options.noCrossTicks, 1);
  // The marginal work of one crossed position: its share of the crossing tick beyond a tick that crosses nothing
  // (the tick's own invocation and bus event are paid by tickNoCross).
  const marginalTick = (tick: PhaseWork, crossed: number): UnitWork =>
    subtractWork(unitWork(tick, crossed, 1 / crossed), noCrossUnit, 1 / crossed);

  const layers = {} as Record<Layer, LayerRow>;
  const costs = {} as Record<Layer, CostBreakdown>;
  // Every layer's liquidation carries the same marginal share of its tick: the largest crossing measured.
  const tickWork = marginalTick(largest.tick, k);
  const layerRow = (
    layer: Layer,
    settle: PhaseWork,
    liquidations: number,
    states: Record<string, number>,
  ) => {
    const tickShare = tickShareAlone;
    const settleCalls = totalCalls(settle.usage) / liquidations;
    const byOperation: Record<string, number> = {};
    for (const [op, n] of Object.entries(settle.usage.calls)) byOperation[op] = significant(n / liquidations);
    const byTable: Record<string, number> = {};
    for (const [t, n] of Object.entries(settle.usage.tables ?? {}))
      byTable[t] = significant(n / liquidations);
    layers[layer] = {
      liquidations,
      tickSharePerLiquidation: significant(tickShare),
      settleCallsPerLiquidation: significant(settleCalls),
      perLiquidation: significant(tickShare + settleCalls),
      byOperation,
      byTable,
      readUnits: significant(settle.usage.readUnits / liquidations),
      writeUnits: significant(settle.usage.writeUnits / liquidations),
      states,
    };
    // Costs: a thousand liquidations come in bursts (a crash), so each pays its share of a tick crossing many.
    const work = addWork(tickWork, unitWork(settle, liquidations, 0));
    costs[layer] = scaleCost(costOf(work), 1000);
    options.log?.(
      `aws calls: ${layer} ${layers[layer].perLiquidation} per liquidation ${JSON.stringify(byTable)}`,
    );
  };

  let failedInvocations = ticks.failed;
  for (const layer of LAYERS) {
    const measured = await measureLayer(options, layer);
    failedInvocations += measured.failed;
    layerRow(layer, measured.settle, options.perLayer, measured.states);
  }

  return {
    ids: options.ids,
    tickNoCross: significant(ticks.tickNoCross),
    tickPerCrossed: significant(tickPerCrossed),
    liquidationMarket: layers.market.perLiquidation,
    liquidationAuction: layers.auction.perLiquidation,
    liquidationInsurance: layers.insurance.perLiquidation,
    liquidationAdl: layers.adl.perLiquidation,
    detail: {
      tickNoCrossByOperation: Object.fromEntries(
        Object.entries(ticks.noCross.usage.calls).map(([op, n]) => [
          op,
          significant(n / options.noCrossTicks),
        ]),
      ),
      tickNoCrossUnits: {
        read: significant(ticks.noCross.usage.readUnits / options.noCrossTicks),
        write: significant(ticks.noCross.usage.writeUnits / options.noCrossTicks),
      },
      crossing: ticks.rows,
      tickNoCrossSharded,
      layers,
      failedInvocations,
    },
    cost: {
      prices: AWS_PRICES,
      assumptions: [IDS_ASSUMED[options.ids], ...COST_ASSUMPTIONS],
      perMillionTicks: scaleCost(costOf(noCrossUnit), 1_000_000),
      perThousandLiquidations: costs,
    },
  };
}

export const COST_ASSUMPTIONS: readonly string[] = [
  'one custom event per tick on the bus (the price feed PutEvents), one margin-check invocation per tick',
  'DynamoDB on-demand request units estimated from the item sizes each call wrote or read (see bench/capacity.ts)',
  'Lambda duration: mean wall time of each handler measured against the emulator, arm64 price, memory from the topology',
  "two SQS requests per queue-triggered invocation for Lambda's poller (ReceiveMessage, DeleteMessageBatch)",
  'per thousand liquidations: each with its share of a tick crossing the most positions measured (a burst); the calls per liquidation (apiCalls.liquidation*) are of a liquidation alone',
  "left out: idle costs fixed per month (pollers long-polling empty queues, storage, alarms and dashboards), and costs per invocation that depend on settings: CloudWatch Logs ingestion ($0.50 per GB; margin-check writes about 0.9 KB per tick at INFO plus Lambda's START/END/REPORT lines, about $0.45-0.60 per million ticks) and X-Ray traces ($5 per million traced; the default sampling traces 1 a second and 5 % beyond: +$5.00 per million ticks at one tick a second, about +$0.73 at ten)",
];
