import { AsyncLocalStorage } from 'node:async_hooks';
import fc from 'fast-check';
import type { EmbeddedQueue } from '../../shared/adapters/embedded/index.ts';
import {
  DEFAULT_MAX_SEQUENCE_JUMP,
  DEFAULT_RISK_CONFIG_INPUT,
  lotSizeOf,
  marketConfig,
  parseRiskConfig,
  type RiskConfig,
} from '../../shared/domain/config.ts';
import { isLiquidatable } from '../../shared/domain/margin.ts';
import type { Side } from '../../shared/domain/model.ts';
import { auctionFillCost } from '../../shared/domain/provider-fills.ts';
import type { Tick } from '../../shared/domain/tick.ts';
import {
  type BaseE8,
  ceilToLot,
  div,
  floorToLot,
  formatBase,
  formatPpm,
  formatQuote,
  NOTIONAL_TO_QUOTE,
  PRICE_SCALE,
  parseBase,
  parsePrice,
  parseQuote,
} from '../../shared/domain/units.ts';
import { METRICS } from '../../shared/metrics.ts';
import {
  highestSequence,
  InjectedCrash,
  maxLotIn,
  type PositionRecord,
  type ProviderRecord,
  type ReceivedMessage,
} from '../../shared/ports/index.ts';
import { parseAuctionQueueMessage, parseLiquidationMessage } from '../../shared/schemas/messages.ts';
import { AdlSnapshots } from '../../shared/services/adl-snapshots.ts';
import { handleAdmin } from '../../shared/services/admin.ts';
import {
  MAX_FILLS_PER_AUCTION,
  MAX_FILLS_PER_STEP,
  processAuctionMessage,
} from '../../shared/services/auction.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { processLiquidation } from '../../shared/services/liquidation.ts';
import { handleTick, withLiquidationPrice } from '../../shared/services/margin-check.ts';
import { Rng } from '../../shared/sim/random.ts';
import { delayedDeps } from './delays.ts';
import { journalFlows, uncoveredAtTick } from './invariants.ts';
import { createPipeline, type Pipeline } from './pipeline.ts';

/**
 * A random-scenario fuzzer of the whole pipeline on the embedded adapters (test/stress/fuzz.test.ts). A scenario is
 * plain JSON (numbers, strings, booleans) so fast-check prints a counterexample that replays with runScenario().
 */

export const SYMBOLS = ['ETH-USD', 'BTC-USD'] as const;
type Sym = (typeof SYMBOLS)[number];

export interface ScenarioConfig {
  mm: number; // maintenance margin
  imFactor: number; // im = mm * imFactor (capped)
  fee: number;
  slip: number;
  lrExtra: number; // lastResort = slip + extra
  cooldown: number;
  wait: number;
  maxCloseShare: number;
  minSliceNotional: number;
  dust: number;
  sliceAbove: number;
  auction: {
    buf: number;
    curve: { kind: 'stairstep'; cut: number; stepSeconds: number } | { kind: 'linear'; tauSeconds: number };
    tailSeconds: number;
    cusp: number;
    penalty: number;
    floor: number;
    maxResets: number;
  };
  insurance: { drawCap: number; windowSeconds: number; floor: number };
  /** The breaker's rules over time (absent in scenarios saved before them: the defaults). */
  breakerConfirmSeconds?: number;
  priceWindowSeconds?: number;
  /** The venue's check of the mark (absent or 0: off, as in scenarios saved before it). */
  venueCheckBand?: number;
  venueCheckHoldSeconds?: number;
}

export interface PositionSpec {
  sym: number; // index into the scenario's symbols
  side: Side;
  levShare: number; // 0..1 of max leverage
  notional: number; // USD
  entryBps: number; // entry offset from the mark in bps
  /** Crowds: the size in the market's dust (notional then follows from it). */
  dustUnits?: number;
}

export interface ProviderSpec {
  sym: number;
  /** Bids in every market of the scenario. */
  both: boolean;
  capital: number;
  maxDiscount: number;
  maxLot: number;
}

export interface StepSpec {
  sym: number;
  moveBps: number;
  gapSeconds: number;
  emptyBook: boolean;
  newPositions: PositionSpec[];
  redrive: boolean;
  admin: AdminOp;
  /** Before the tick: EventBridge delivers an earlier tick event again (its index from the end of those sent). */
  replayOld: number;
  /** The step's tick and the next one (+ this many bps) are delivered concurrently (two margin-check invocations). */
  twin: number;
  /** The tick's timestamp against the clock (a feed's skew or lag: -70 s .. +5 s). */
  jitterMs: number;
  /** An index price this far from the mark (bps; 0: none). */
  indexBps: number;
  /** A tick out of the band first (trips the breaker), then this step's tick confirms or reverts. */
  spike: number;
  /** Receive (and drop) up to n messages of a queue before the tick: a consumer that died before doing anything. */
  steal: number;
  /** Before the tick, a print numbered far ahead of the feed (a glitch): held, never followed (absent: none). */
  glitch?: boolean;
  /**
   * Before the tick, the feed restarts on another numbering: 'down', at about half its sequence; 'up', a jump above
   * maxSequenceJump. Where marks go stale the markets follow it by themselves once their marks are stale; where the
   * fuzz holds marks fresh an operator resumes a market down at once (`feed resume`), and 'up' is not drawn (nothing
   * would move it). Absent or 'none': no restart.
   */
  restart?: 'none' | 'down' | 'up';
  /**
   * The venue does not follow the step's print (its book lags the feed, or the print is bad): the liquidations it
   * starts may find their positions healthy at the venue's price, disputed under venueCheckBand (absent: follows).
   */
  venueLags?: boolean;
  /**
   * The other market ticks at the same instant, moved this many bps, in a margin-check invocation of its own
   * alongside this one: markets that crash together (absent, or one market: only this one ticks).
   */
  together?: number;
  /** Operator changes to the crowd, made `crowdAt` of the way through the gap before the tick. */
  crowdOps?: CrowdOp[];
  crowdAt?: number;
}

/** A crowd of providers with tiny lots, drawn from a seed so the scenario stays short. */
export interface CrowdSpec {
  count: number;
  seed: number;
  /** 0: market 0 only; 1: market 1 only (if any); 2: both. */
  markets: number;
  /** maxLot = dust x (1 + rng(lotMultiple)) when the market has dust, else this many base units x 1e-5. */
  lotMultiple: number;
  minDiscount: number;
  discountSpread: number;
  /** Capital log-uniform in [capitalMin, capitalMax] (USD). */
  capitalMin: number;
  capitalMax: number;
}

export type CrowdOp =
  | { kind: 'register'; capital: number; maxDiscount: number; lotMultiple: number; markets: number }
  | { kind: 'reduce'; index: number; share: number }
  | { kind: 'retune'; index: number; maxDiscount: number; lotMultiple: number }
  | { kind: 'topUp'; index: number; capital: number }
  | { kind: 'move'; index: number; markets: number };

export interface Scenario {
  markets: number; // 1 or 2
  prices: number[]; // start price per market (dollars)
  /**
   * The grid of marks and entry prices, in PriceE8 units: 1_000_000 whole cents (absent: cents, as every scenario
   * saved before session 44), down to 1 (any PriceE8), so a fill at a bid, a fee, a bound or a bankruptcy price
   * computed from the mark rounds. The venue's book stays on its own tick (0.01) whatever the mark.
   */
  markUnit?: number;
  config: ScenarioConfig;
  positions: PositionSpec[];
  providers: ProviderSpec[];
  fund: number;
  venue: { pool: number; maxFill: number; faultRate: number; seed: number };
  dupRate: number;
  steps: StepSpec[];
  crashes: number[];
  /** Besides `crashes`: each side effect dies with this probability (seeded by venue.seed). */
  crashRate: number;
  maxReceive: { liquidations: number; auctionSteps: number };
  knobs: Knobs;
  crowd?: CrowdSpec;
  /** Crowd operator changes run alongside the consumers (not between their rounds). */
  adminConcurrent?: boolean;
  /** The exchange's lot (absent, as in every scenario saved before session 51: none, one unit). */
  lot?: LotSpec;
}

/**
 * The exchange's lot in the risk configuration (`lotSize`) and the simulated venue alike (lot51-consumer-knows-lot):
 * positions open as whole lots, dust is rounded up to whole lots (the configuration refuses another).
 */
export interface LotSpec {
  /** ETH-USD's lot in base units (BTC-USD's a tenth of it, one unit at least). */
  units: number;
  /**
   * Every how many positions one opens off the lot (as one opened before its market had a lot; 0: none). Its part
   * under a lot goes to the auction (ADL closes whole lots), and one it does not take ends as
   * `waterfall/sub-lot-remainder`.
   */
  legacyEvery: number;
}

/** A market's lot under `lot` (undefined: the market states none). */
export function lotUnitsOf(symbol: string, lot: LotSpec | undefined): bigint | undefined {
  if (!lot) return undefined;
  const units = symbol === 'BTC-USD' ? Math.floor(lot.units / 10) : lot.units;
  return BigInt(Math.max(1, units));
}

export interface Knobs {
  /** Messages of a received batch run concurrently (Lambda's concurrent invocations); a tick may run alongside. */
  concurrent: boolean;
  adlSnapshots: boolean;
  adlLagMs: number;
  maxPerInvocation: number;
  maxWakes: number;
  venueAttempts: number;
  /** Each commit that writes a liquidation into this state dies right after it, with this probability. */
  targetCrash: { state: 'SETTLING' | 'EXECUTING' | 'AUCTION' | 'MARKET_EXECUTED'; rate: number };
  strategy: 'waterfall' | 'market-only';
  /** Seed of the microtask pauses interleaving concurrent consumers (0: none). */
  pauseSeed: number;
  /**
   * 'as-configured': marks go stale past maxMarkAgeSeconds in the steps' gaps and the work waits for a tick (absent:
   * 'held', a feed that keeps sending the last price).
   */
  marks?: 'held' | 'as-configured';
}

export type AdminOp =
  | { kind: 'none' }
  | { kind: 'deposit'; amount: number }
  | { kind: 'withdraw'; share: number }
  | { kind: 'provider'; index: number; maxDiscount: number; maxLot: number; withdrawBids: boolean }
  | { kind: 'topUp'; index: number; capital: number };

const usd = (x: number, dp = 6) => x.toFixed(dp);
const px = (x: number) => x.toFixed(2);
const CENT = 1_000_000;

/** A price in dollars on the scenario's grid: to the cent as before session 44, else down to the unit (at least one). */
function onGrid(dollars: number, unit: number): bigint {
  if (unit === CENT) return BigInt(Math.max(1, Math.round(dollars * 100))) * BigInt(CENT);
  return BigInt(Math.max(1, Math.round((dollars * Number(PRICE_SCALE)) / unit))) * BigInt(unit);
}

export function buildConfig(s: ScenarioConfig, lot?: LotSpec): RiskConfig {
  const mm = s.mm;
  const im = Math.min(0.9, mm * s.imFactor);
  const lr = Math.min(0.5, s.slip + s.lrExtra);
  const markets = DEFAULT_RISK_CONFIG_INPUT.markets.map((m) => {
    const lotSize = lotUnitsOf(m.symbol, lot);
    const dust = (m.symbol === 'BTC-USD' ? s.dust / 20 : s.dust).toFixed(8);
    return {
      ...m,
      maintenanceMargin: usd(mm),
      initialMargin: usd(im),
      liquidationFee: usd(s.fee),
      slippageBound: usd(s.slip),
      lastResortSlippageBound: usd(lr),
      lastResortCooldownSeconds: s.cooldown,
      lastResortWaitSeconds: s.wait,
      maxCloseShare: usd(s.maxCloseShare),
      minSliceNotional: usd(s.minSliceNotional, 2),
      // A whole number of lots: up, as the slices would treat it.
      dustSize: lotSize === undefined ? dust : formatBase(ceilToLot(parseBase(dust), lotSize)),
      ...(lotSize === undefined ? {} : { lotSize: formatBase(lotSize) }),
      sliceAboveNotional: usd(s.sliceAbove, 2),
      ...(s.breakerConfirmSeconds === undefined ? {} : { breakerConfirmSeconds: s.breakerConfirmSeconds }),
      ...(s.priceWindowSeconds === undefined ? {} : { priceWindowSeconds: s.priceWindowSeconds }),
      ...(s.venueCheckBand ? { venueCheckBand: usd(s.venueCheckBand) } : {}),
      ...(s.venueCheckHoldSeconds === undefined ? {} : { venueCheckHoldSeconds: s.venueCheckHoldSeconds }),
    };
  });
  const a = s.auction;
  return parseRiskConfig({
    markets,
    auction: {
      buf: usd(a.buf),
      curve:
        a.curve.kind === 'stairstep'
          ? { kind: 'stairstep', cut: usd(a.curve.cut), stepSeconds: a.curve.stepSeconds }
          : { kind: 'linear', tauSeconds: a.curve.tauSeconds },
      tailSeconds: a.tailSeconds,
      cusp: usd(a.cusp),
      penalty: usd(a.penalty),
      // Never below what the markets' last resort allows (config.ts auctionFloorAtLeast): scenarios saved before
      // that rule run at the lowest floor allowed.
      floor: usd(Math.max(Math.round(a.floor * 1e6), Math.ceil(1e12 / (1e6 + Math.round(lr * 1e6)))) / 1e6),
      maxResets: a.maxResets,
    },
    insurance: {
      drawCapPerWindow: usd(s.insurance.drawCap, 2),
      windowSeconds: s.insurance.windowSeconds,
      floor: usd(s.insurance.floor, 2),
    },
  });
}

export function configValid(s: ScenarioConfig, lot?: LotSpec): boolean {
  try {
    buildConfig(s, lot);
    return true;
  } catch {
    return false;
  }
}

// --- arbitraries ------------------------------------------------------------------------------------------

/** Uniform on [min, max] (fast-check's doubles lean hard on the edges). Shrinks toward min. */
const f = (min: number, max: number) =>
  fc.integer({ min: 0, max: 1_000_000 }).map((x) => min + ((max - min) * x) / 1_000_000);
const logF = (min: number, max: number) => f(Math.log(min), Math.log(max)).map((x) => Math.exp(x));

export const configArb: fc.Arbitrary<ScenarioConfig> = fc
  .record({
    mm: f(0.005, 0.1),
    imFactor: f(1.3, 5),
    fee: fc.oneof(fc.constant(0), f(0, 0.03)),
    slip: f(0.002, 0.1),
    lrExtra: f(0, 0.15),
    cooldown: fc.integer({ min: 0, max: 60 }),
    wait: fc.integer({ min: 1, max: 120 }),
    maxCloseShare: f(0.05, 1),
    minSliceNotional: fc.oneof(fc.constant(0), logF(1, 5000)),
    dust: fc.oneof(fc.constant(0), logF(0.00001, 0.1)),
    sliceAbove: logF(100, 200_000),
    auction: fc.record({
      buf: f(1, 1.1),
      curve: fc.oneof(
        fc.record({
          kind: fc.constant('stairstep' as const),
          cut: f(0.9, 0.999),
          stepSeconds: fc.integer({ min: 5, max: 120 }),
        }),
        fc.record({ kind: fc.constant('linear' as const), tauSeconds: fc.integer({ min: 120, max: 3600 }) }),
      ),
      tailSeconds: fc.integer({ min: 120, max: 3600 }),
      cusp: f(0.2, 0.9),
      penalty: f(0, 0.2),
      floor: f(0.8, 1),
      maxResets: fc.integer({ min: 0, max: 2 }),
    }),
    insurance: fc.record({
      drawCap: fc.oneof(fc.constant(0), logF(1, 1_000_000)),
      windowSeconds: fc.integer({ min: 60, max: 7200 }),
      floor: fc.oneof(fc.constant(0), logF(1, 1000)),
    }),
    breakerConfirmSeconds: fc.constantFrom(0, 5, 30),
    priceWindowSeconds: fc.constantFrom(0, 0, 60, 600),
    venueCheckBand: fc.constantFrom(0, 0, 0.01, 0.05, 0.2),
    venueCheckHoldSeconds: fc.constantFrom(30, 300),
  })
  .filter(configValid);

/** Whole cents in a third of the scenarios (the grid before session 44), else off the cent down to one PriceE8. */
const markUnitArb = fc.constantFrom(CENT, 1, CENT, 10_000, 1, 7);

const positionArb = (markets: number): fc.Arbitrary<PositionSpec> =>
  fc.record({
    sym: fc.integer({ min: 0, max: markets - 1 }),
    side: fc.constantFrom<Side>('LONG', 'SHORT'),
    levShare: fc.oneof(f(0, 0.1), f(0, 1), f(0.9, 1)),
    notional: fc.oneof(logF(0.01, 5), logF(5, 500_000)),
    entryBps: fc.integer({ min: -150, max: 150 }),
  });

const providerArb = (markets: number): fc.Arbitrary<ProviderSpec> =>
  fc.record({
    sym: fc.integer({ min: 0, max: markets - 1 }),
    both: fc.boolean(),
    capital: logF(10, 10_000_000),
    maxDiscount: f(0.001, 0.3),
    maxLot: logF(0.01, 10_000),
  });

const stepArb = (markets: number): fc.Arbitrary<StepSpec> =>
  fc.record({
    sym: fc.integer({ min: 0, max: markets - 1 }),
    moveBps: fc.oneof(fc.integer({ min: -1400, max: 1400 }), fc.integer({ min: -300, max: 300 })),
    gapSeconds: fc.oneof(fc.integer({ min: 1, max: 60 }), fc.integer({ min: 60, max: 3 * 3600 })),
    emptyBook: fc.integer({ min: 0, max: 99 }).map((x) => x < 15),
    newPositions: fc.array(positionArb(markets), { maxLength: 3 }),
    redrive: fc.boolean(),
    admin: fc.oneof(
      { weight: 4, arbitrary: fc.constant({ kind: 'none' as const }) },
      fc.record({ kind: fc.constant('deposit' as const), amount: logF(1, 100_000) }),
      fc.record({ kind: fc.constant('withdraw' as const), share: f(0.01, 1) }),
      fc.record({
        kind: fc.constant('provider' as const),
        index: fc.integer({ min: 0, max: 2 }),
        maxDiscount: f(0.001, 0.3),
        maxLot: logF(0.01, 10_000),
        withdrawBids: fc.boolean(),
      }),
      fc.record({
        kind: fc.constant('topUp' as const),
        index: fc.integer({ min: 0, max: 2 }),
        capital: logF(10, 1_000_000),
      }),
    ),
    replayOld: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, fc.integer({ min: 1, max: 6 })),
    twin: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, fc.integer({ min: -800, max: 800 })),
    jitterMs: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, fc.integer({ min: -70_000, max: 5_000 })),
    indexBps: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, fc.integer({ min: -1200, max: 1200 })),
    spike: fc.oneof({ weight: 5, arbitrary: fc.constant(0) }, fc.integer({ min: -3000, max: 3000 })),
    steal: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 3 })),
    glitch: fc.oneof({ weight: 15, arbitrary: fc.constant(false) }, fc.constant(true)),
    restart: fc.oneof(
      { weight: 60, arbitrary: fc.constant('none' as const) },
      fc.constant('down' as const),
      fc.constant('up' as const),
    ),
    venueLags: fc.oneof({ weight: 6, arbitrary: fc.constant(false) }, fc.constant(true)),
  });

export interface ArbOptions {
  readonly maxPositions?: number;
  readonly maxSteps?: number;
  readonly crashes?: boolean;
  readonly faults?: boolean;
  readonly markets?: 1 | 2;
  readonly concurrent?: boolean;
}

/**
 * ADL-heavy worlds: no providers, an empty book most of the time, a small fund with a small cap, a crash one way
 * through many counterparties (more than one transaction's 90), so ADL, its rounds and the fund's windows do the work.
 */
export function adlHeavyArb(o: ArbOptions = {}): fc.Arbitrary<Scenario> {
  return fc
    .tuple(
      scenarioArb({ ...o, markets: 1 }),
      fc.constantFrom<Side>('LONG', 'SHORT'),
      fc.integer({ min: 95, max: 220 }),
      fc.integer({ min: 1, max: 6 }),
    )
    .map(([s, victim, counterparties, victims]) => {
      const down = victim === 'LONG';
      const opposite: Side = down ? 'SHORT' : 'LONG';
      const positions: PositionSpec[] = [];
      for (let i = 0; i < victims; i++)
        positions.push({ sym: 0, side: victim, levShare: 0.95, notional: 20_000 + 7_000 * i, entryBps: 0 });
      for (let i = 0; i < counterparties; i++)
        positions.push({
          sym: 0,
          side: opposite,
          levShare: (i % 10) / 10,
          notional: 50 + ((i * 37) % 400),
          entryBps: (i % 7) - 3,
        });
      return {
        ...s,
        positions,
        providers: [],
        fund: s.fund % 500,
        config: {
          ...s.config,
          insurance: { ...s.config.insurance, drawCap: s.config.insurance.drawCap % 200 },
        },
        steps: s.steps.map((st, i) => ({
          ...st,
          sym: 0,
          emptyBook: i % 3 !== 2,
          moveBps: (down ? -1 : 1) * ((Math.abs(st.moveBps) % 1300) + 100),
          spike: 0,
          newPositions: st.newPositions.map((np) => ({ ...np, sym: 0 })),
        })),
      };
    });
}

/** Fund-heavy worlds: short draw windows, a small cap, bankruptcies in both markets, freezes that die and come back late. */
export function fundHeavyArb(o: ArbOptions = {}): fc.Arbitrary<Scenario> {
  return fc
    .tuple(
      adlHeavyArb(o),
      fc.integer({ min: 60, max: 300 }),
      fc.integer({ min: 1, max: 50 }),
      fc.integer({ min: 500, max: 50_000 }),
    )
    .map(([s, windowSeconds, cap, fund]) => ({
      ...s,
      fund,
      config: {
        ...s.config,
        insurance: { drawCap: cap, windowSeconds, floor: s.config.insurance.floor % 100 },
      },
      knobs: { ...s.knobs, targetCrash: { state: 'SETTLING' as const, rate: 0.5 } },
      maxReceive: {
        liquidations: 1 + (s.maxReceive.liquidations % 2),
        auctionSteps: s.maxReceive.auctionSteps,
      },
      steps: s.steps.map((st) => ({ ...st, gapSeconds: st.gapSeconds % 400, redrive: true })),
    }));
}

/**
 * Two markets crashing together (session 40): every step ticks both markets at the same instant, in two margin-check
 * invocations, moving the same way (the second by up to a third more or less); providers quote both, with capital
 * shared across them; the fund's floor and cap are small, so both markets' settlements contend for its draws.
 */
export function twoMarketsArb(o: ArbOptions = {}): fc.Arbitrary<Scenario> {
  return fc
    .tuple(
      scenarioArb({ ...o, markets: 2 }),
      fc.array(fc.integer({ min: -33, max: 33 }), { minLength: 20, maxLength: 20 }),
      fc.constantFrom<Side>('LONG', 'SHORT'),
      fc.array(providerArb(2), { minLength: 2, maxLength: 4 }),
    )
    .map(([s, spreads, victim, providers]) => {
      const down = victim === 'LONG';
      return {
        ...s,
        providers: providers.map((pr) => ({ ...pr, both: true })),
        fund: s.fund % 50_000,
        config: {
          ...s.config,
          insurance: { ...s.config.insurance, drawCap: s.config.insurance.drawCap % 20_000 },
        },
        steps: s.steps.map((st, i) => {
          const moveBps = (down ? -1 : 1) * (Math.abs(st.moveBps) % 1300);
          const together = Math.trunc((moveBps * (100 + spreads[i % spreads.length]!)) / 100);
          return { ...st, moveBps, together, spike: 0 };
        }),
      };
    });
}

/** ETH-USD's lot from 0.0001 to 0.1 ETH; positions off it in some runs, every one of them in a few. */
const lotSpecArb: fc.Arbitrary<LotSpec> = fc.record({
  units: fc.constantFrom(10_000, 100_000, 100_000, 1_000_000, 10_000_000),
  legacyEvery: fc.constantFrom(0, 0, 1, 2, 5),
});

/**
 * `base`'s scenarios on an exchange with a lot (lot51): the test of its own, and every property under FUZZ_LOTS. Other
 * runs and the saved corpus draw none, so a seed gives them the scenarios it gave before.
 */
export const withLotArb = (base: fc.Arbitrary<Scenario>): fc.Arbitrary<Scenario> =>
  fc
    .tuple(base, lotSpecArb)
    .map(([s, lot]) => ({ ...s, lot: { ...lot, units: Math.min(lot.units, lotUnitsBookHolds(s)) } }))
    .filter((s) => configValid(s.config, s.lot));

/**
 * The largest ETH-USD lot whose markets' simulated books still hold whole lots at each level: a level's size is the
 * pool's base in its 5 bps band rounded down to the lot, so a lot worth more than a millionth of the pool (a 50,000
 * USD pool's 0.05 USD) would leave its book empty at every level, however calm (a book that never comes back).
 */
function lotUnitsBookHolds(s: Scenario): number {
  const worth = s.venue.pool * 1e-6;
  let units = Number.POSITIVE_INFINITY;
  for (const [i, price] of s.prices.entries()) {
    const perMarket = Math.floor((worth / price) * 1e8) * (SYMBOLS[i] === 'BTC-USD' ? 10 : 1);
    units = Math.min(units, perMarket);
  }
  return Math.max(1, units);
}

export function scenarioArb(o: ArbOptions = {}): fc.Arbitrary<Scenario> {
  const marketsArb = o.markets ? fc.constant(o.markets) : fc.integer({ min: 1, max: 2 });
  return marketsArb.chain((markets) =>
    fc.record({
      markets: fc.constant(markets),
      prices: fc.tuple(f(20, 3000), f(2000, 60_000)).map(([a, b]) => [a, b].slice(0, markets)),
      markUnit: markUnitArb,
      config: configArb,
      positions: fc.oneof(
        {
          weight: 4,
          arbitrary: fc.array(positionArb(markets), { minLength: 1, maxLength: o.maxPositions ?? 40 }),
        },
        fc.array(positionArb(markets), { minLength: 60, maxLength: 150 }),
      ),
      providers: fc.array(providerArb(markets), { maxLength: 3 }),
      fund: fc.oneof(fc.constant(0), logF(1, 1_000_000)),
      venue:
        o.faults === false
          ? fc.record({
              pool: logF(50_000, 100_000_000),
              maxFill: fc.constant(0),
              faultRate: fc.constant(0),
              seed: fc.integer({ min: 1, max: 1_000_000 }),
            })
          : fc.record({
              pool: logF(50_000, 100_000_000),
              maxFill: fc.oneof(fc.constant(0), fc.constant(0), logF(0.01, 100)),
              faultRate: fc.oneof(fc.constant(0), f(0, 0.4)),
              seed: fc.integer({ min: 1, max: 1_000_000 }),
            }),
      dupRate: o.faults === false ? fc.constant(0) : fc.oneof(fc.constant(0), f(0, 0.05)),
      steps: fc.array(stepArb(markets), { minLength: 1, maxLength: o.maxSteps ?? 8 }),
      crashes:
        o.crashes === false
          ? fc.constant([] as number[])
          : fc.oneof(
              fc.constant([] as number[]),
              fc.uniqueArray(fc.integer({ min: 1, max: 60 }), { minLength: 1, maxLength: 4 }),
            ),
      crashRate: o.crashes === false ? fc.constant(0) : fc.oneof(fc.constant(0), f(0, 0.08)),
      knobs: fc.record({
        concurrent: o.concurrent === undefined ? fc.boolean() : fc.constant(o.concurrent),
        adlSnapshots: fc.boolean(),
        adlLagMs: fc.oneof(fc.constant(0), fc.constant(1000)),
        maxPerInvocation: fc.oneof(fc.constant(500), fc.integer({ min: 1, max: 5 })),
        maxWakes: fc.oneof(fc.constant(100), fc.integer({ min: 1, max: 3 })),
        venueAttempts: fc.integer({ min: 1, max: 3 }),
        pauseSeed: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 1_000_000 })),
        marks: fc.constantFrom('held' as const, 'as-configured' as const),
        strategy: fc.oneof(
          { weight: 9, arbitrary: fc.constant('waterfall' as const) },
          fc.constant('market-only' as const),
        ),
        targetCrash: fc.record({
          state: fc.constantFrom(
            'SETTLING' as const,
            'EXECUTING' as const,
            'AUCTION' as const,
            'MARKET_EXECUTED' as const,
          ),
          rate: o.crashes === false ? fc.constant(0) : fc.oneof(fc.constant(0), f(0, 0.6)),
        }),
      }),
      maxReceive: fc.record({
        liquidations: fc.integer({ min: 1, max: 5 }),
        auctionSteps: fc.integer({ min: 1, max: 5 }),
      }),
    }),
  );
}

// --- running a scenario -----------------------------------------------------------------------------------

export interface RunResult {
  readonly violations: string[];
  readonly extra: string[];
  readonly errors: string[];
  readonly p: Pipeline;
  readonly trace: string[];
  readonly figures: unknown;
  /** That the grid is off the cent: accepted marks off it, and checked auction fills whose bid was rounded. */
  readonly offCent: OffCentCounts;
  /** With a lot: auction fills that took a lot's part under one, and liquidations left as sub-lot remainders. */
  readonly lots: { underFills: number; subLotEnded: number };
}

export interface OffCentCounts {
  marks: number;
  roundedBids: number;
}

function positionRecord(
  spec: PositionSpec,
  id: string,
  symbol: string,
  mark: bigint,
  config: RiskConfig,
  unit: number,
  offLot = false,
): PositionRecord | undefined {
  const m = marketConfig(config, symbol);
  const maxLev = 1_000_000 / Number(m.initialMargin);
  const leverage = 1 + (maxLev - 1) * spec.levShare;
  const center = Number(mark) / Number(PRICE_SCALE);
  const entryPrice = onGrid(center * (1 + spec.entryBps / 10_000), unit);
  const drawn =
    spec.dustUnits !== undefined
      ? (m.dustSize * BigInt(Math.round(spec.dustUnits * 1e6))) / 1_000_000n
      : (BigInt(Math.floor(spec.notional * 1e6)) * NOTIONAL_TO_QUOTE) / entryPrice;
  // Whole lots of its market's (admin.ts refuses another), unless opened before the market had its lot.
  const size = offLot ? drawn : floorToLot(drawn, lotSizeOf(m));
  // The collateral backs the size opened (a lot's rounding down keeps the drawn leverage).
  const notional =
    spec.dustUnits !== undefined || size !== drawn
      ? Number((size * entryPrice) / NOTIONAL_TO_QUOTE) / 1e6
      : spec.notional;
  const collateral = BigInt(Math.ceil((notional / leverage) * 1e6));
  if (size <= 0n || collateral <= 0n) return undefined;
  const record = withLiquidationPrice(
    {
      id,
      traderId: `t-${id}`,
      symbol,
      side: spec.side,
      size,
      entryPrice,
      collateral,
      state: 'OPEN',
      version: 0,
    },
    config,
  );
  // Admin only opens positions healthy at the last accepted mark.
  if (isLiquidatable(record, mark, m.maintenanceMargin)) return undefined;
  return record;
}

const BUGGY_ERROR =
  /TypeError|RangeError|ReferenceError|SyntaxError|MarginError|UnitError|SizingError|IdempotencyConflict|undefined|NaN|invariant|assert/i;

export async function runScenario(
  s: Scenario,
  opts: { log?: boolean; slowBleedSlices?: number } = {},
): Promise<RunResult> {
  deliveries = 0;
  const slowBleedSlices = opts.slowBleedSlices ?? SLOW_BLEED_SLICES;
  const config = buildConfig(s.config, s.lot);
  const markUnit = s.markUnit ?? CENT;
  const symbols: Sym[] = SYMBOLS.slice(0, s.markets) as Sym[];
  const k = s.knobs;
  let armed = false;
  let count = 0;
  const crashAt = new Set(s.crashes);
  const crashRng = new Rng(s.venue.seed + 29);
  const trace: string[] = [];
  const observerRef: { current?: Pipeline['observer'] } = {};
  const p = createPipeline({
    config,
    maxReceiveCount: s.maxReceive,
    venue: {
      defaults: { poolQuoteReserve: s.venue.pool },
      // The exchange trades the lot the risk configuration states.
      ...(s.lot
        ? {
            markets: Object.fromEntries(
              symbols.map((sym) => [sym, { lotSize: lotSizeOf(marketConfig(config, sym)) }]),
            ),
          }
        : {}),
    },
    venueAttempts: k.venueAttempts,
    strategy: k.strategy,
    maxPositionsPerInvocation: k.maxPerInvocation,
    maxWakesPerTick: k.maxWakes,
    marks: k.marks ?? 'held',
    ...(k.adlSnapshots ? { adlSnapshots: new AdlSnapshots() } : {}),
    crashHook: (point) => {
      if (!armed || /\.(receive|delete|changeVisibility)$/.test(point)) return;
      count += 1;
      let targeted = false;
      if (k.targetCrash.rate > 0 && point === 'transactor.commit') {
        const group = observerRef.current?.groups.at(-1);
        targeted =
          group?.writes.some(
            (w) =>
              w.kind === 'liquidation' &&
              (w.after as { state: string }).state === k.targetCrash.state &&
              (w.before as { state: string } | undefined)?.state !== k.targetCrash.state,
          ) === true && crashRng.next() < k.targetCrash.rate;
      }
      if (targeted || crashAt.has(count) || (s.crashRate > 0 && crashRng.next() < s.crashRate)) {
        trace.push(`${count}:${point}`);
        throw new InjectedCrash(point);
      }
    },
  });
  observerRef.current = p.observer;
  const acceptedAtGroup = new Map<string, number>();
  /** Per tick and side, when the invocation that recorded the tick read that side's index, last before. */
  const readFromGroup = new Map<string, number>();
  const tickInvocation = new AsyncLocalStorage<string>();
  const lastQueryAt = new Map<string, number>();
  const queryCrossed = p.adapters.positions.queryCrossed.bind(p.adapters.positions);
  p.adapters.positions.queryCrossed = (symbol, side, ...rest) => {
    const key = tickInvocation.getStore();
    if (key) lastQueryAt.set(`${key}/${side}`, p.observer.groups.length);
    return queryCrossed(symbol, side, ...rest);
  };
  const acceptTick = p.adapters.markets.acceptTick.bind(p.adapters.markets);
  const currentMark = new Map<string, bigint>();
  p.adapters.markets.acceptTick = async (symbol, tick, ...rest) => {
    try {
      return await acceptTick(symbol, tick, ...rest);
    } finally {
      // Also when the crash hook kills the call after its write (the tick is recorded all the same).
      const state = await p.adapters.markets.get(symbol);
      if (state?.lastTick?.sequence === tick.sequence) {
        const key = `${symbol}#${tick.sequence}`;
        currentMark.set(symbol, tick.markPrice);
        acceptedAtGroup.set(key, p.observer.groups.length);
        for (const side of ['LONG', 'SHORT'] as const) {
          const read = `${key}/${side}`;
          if (!readFromGroup.has(read))
            readFromGroup.set(read, lastQueryAt.get(read) ?? p.observer.groups.length);
        }
      }
    }
  };
  // Every auction fill a commit adds: at its provider's own bid (SELL: ceil(mark x (1 - d)); BUY: floor(mark x
  // (1 + d))) and within the floor (SELL: price >= floor x mark), at the mark of the commit. Only where no tick
  // interleaves with a consumer (the step's mark is the commit's).
  const fillProblems: string[] = [];
  const offCent: OffCentCounts = { marks: 0, roundedBids: 0 };
  if (!k.concurrent && !s.steps.some((st) => st.twin !== 0)) {
    const commit = p.adapters.transactor.commit.bind(p.adapters.transactor);
    p.adapters.transactor.commit = async (writes, providersUnchanged) => {
      const before = new Map(p.adapters.auctions.all().map((a) => [a.id, a.fills.length]));
      await commit(writes, providersUnchanged);
      for (const w of writes) {
        if (w.kind !== 'auction') continue;
        const a = w.record;
        const mark = currentMark.get(a.symbol);
        if (mark === undefined) continue;
        for (const fill of a.fills.slice(before.get(a.id) ?? 0)) {
          const provider = writes.find((x) => x.kind === 'provider' && x.record.id === fill.providerId);
          const d = provider?.kind === 'provider' ? provider.record.maxDiscountPpm : undefined;
          if (d === undefined) continue;
          // At its own bid, rounded to a tick in the fund's favour (SELL up, BUY down): auction44-pay-as-bid.
          const bid =
            a.direction === 'SELL'
              ? div(mark * (1_000_000n - d), 1_000_000n, 'ceil')
              : div(mark * (1_000_000n + d), 1_000_000n, 'floor');
          // mark x (1e6 -/+ d) / 1e6 is exact when mark x d is a whole number of millionths (always, on cents).
          if ((mark * d) % 1_000_000n !== 0n) offCent.roundedBids += 1;
          if (fill.price !== bid)
            fillProblems.push(
              `auction ${a.id} filled ${fill.providerId} at ${fill.price}, not at its bid ${bid} (d ${d}) at mark ${mark}`,
            );
          const floorOk =
            a.direction === 'SELL'
              ? fill.price * 1_000_000n >= mark * config.auction.floor
              : fill.price * config.auction.floor <= mark * 1_000_000n;
          if (!floorOk)
            fillProblems.push(`auction ${a.id} filled at ${fill.price}, beyond the floor at mark ${mark}`);
        }
      }
    };
  }
  if (k.adlLagMs > 0) Object.assign(p.adapters.positions, { adlOrdersLagMs: k.adlLagMs });
  const pauseRng = new Rng(k.pauseSeed || 1);
  const pause = () => (k.pauseSeed && pauseRng.chance(0.5) ? pauseRng.int(1, 6) : 0);
  const deps = k.pauseSeed ? delayedDeps(p.deps, pause) : p.deps;
  const marginDeps = k.pauseSeed ? delayedDeps(p.marginDeps, pause) : p.marginDeps;
  const handlers = {
    liquidation: (m: ReceivedMessage) => processLiquidation(parseLiquidationMessage(m.body), deps),
    auction: (m: ReceivedMessage) => processAuctionMessage(parseAuctionQueueMessage(m.body), deps),
  };
  const adminDeps = {
    ...p.adapters,
    config,
    telemetry: p.telemetry,
    nowMs: () => p.clock.nowMs(),
  };
  const rng = new Rng(s.venue.seed);
  const extra: string[] = [];
  const staleMarks = k.marks === 'as-configured';
  if (staleMarks) watchStaleActions(p, config, extra);
  if (s.lot) watchOrderLots(p, config, extra);
  const gapOf = (step: StepSpec): number =>
    staleMarks ? Math.min(step.gapSeconds, MAX_STALE_GAP_SECONDS) : step.gapSeconds;
  const marks = new Map<string, bigint>();
  const markRange = new Map<string, { min: bigint; max: bigint }>();
  const ticksLog: [string, string][] = [];
  (p as unknown as { ticksLog: unknown }).ticksLog = ticksLog;
  let seq = 0;
  // Glitches, numbered down from 2^53 - 1 so that none continues another (a feed's restart lowers `seq`).
  let glitches = 0;
  // The first sequence of the feed's latest numbering, once it restarted.
  let restartBase: number | undefined;
  let topUps = 0n;
  // Capital changes made outside auctions (admin puts of an existing provider), per provider: signed.
  const capitalAdjust = new Map<string, bigint>();
  const maxLotEver = new Map<string, bigint>();
  {
    const providers = p.adapters.providers;
    const put = providers.put.bind(providers);
    providers.put = (record, expectedVersion) => {
      const before = providers.peek(record.id);
      const result = put(record, expectedVersion); // the embedded put checks and stores synchronously
      const after = providers.peek(record.id);
      if (after !== before && after) {
        if (before) {
          const delta = after.capital - before.capital;
          topUps += delta;
          capitalAdjust.set(record.id, (capitalAdjust.get(record.id) ?? 0n) + delta);
        }
        for (const symbol of after.symbols) {
          const key = `${record.id}@${symbol}`;
          const lot = maxLotIn(after, symbol);
          if (lot > (maxLotEver.get(key) ?? 0n)) maxLotEver.set(key, lot);
        }
      }
      return result;
    };
  }

  async function handleOne(
    queue: EmbeddedQueue,
    handle: (m: ReceivedMessage) => Promise<unknown>,
    message: ReceivedMessage,
  ) {
    try {
      await handle(message);
      await queue.delete(message.receiptHandle);
    } catch (error) {
      p.errors.push(`${queue.name}: ${(error as Error).message}`);
    }
  }

  async function deliverAll(
    queue: EmbeddedQueue,
    handle: (m: ReceivedMessage) => Promise<unknown>,
  ): Promise<number> {
    const batch = await queue.receive(10, 30);
    const before = deliveries;
    deliveries += batch.length;
    // A slow bleed found as it happens (not after MAX_DELIVERIES, about a minute of a run that is then skipped).
    if (Math.floor(deliveries / 1000) > Math.floor(before / 1000)) {
      const slices = new Map<string, number>();
      for (const l of p.adapters.liquidations.all())
        slices.set(l.positionId, (slices.get(l.positionId) ?? 0) + 1);
      const [bleeding, count] = [...slices].find(([, n]) => n >= slowBleedSlices) ?? [];
      if (bleeding)
        throw new RunawayError(`slow bleed: ${bleeding} in ${count} slices after ${deliveries} deliveries`);
    }
    if (deliveries > MAX_DELIVERIES) {
      const liquidations = p.adapters.liquidations.all();
      throw new RunawayError(
        `runaway: over ${MAX_DELIVERIES} deliveries, ${liquidations.length} liquidations, last ${liquidations.at(-1)?.id} ${liquidations.at(-1)?.state} ${JSON.stringify(liquidations.at(-1)?.history.at(-1))}`,
      );
    }
    if (k.concurrent) await Promise.all(batch.map((m) => handleOne(queue, handle, m)));
    else for (const m of batch) await handleOne(queue, handle, m);
    return batch.length;
  }

  const round = async () =>
    k.concurrent
      ? (
          await Promise.all([
            deliverAll(p.adapters.liquidationQueue, handlers.liquidation),
            deliverAll(p.adapters.auctionQueue, handlers.auction),
          ])
        ).reduce((a, b) => a + b, 0)
      : (await deliverAll(p.adapters.liquidationQueue, handlers.liquidation)) +
        (await deliverAll(p.adapters.auctionQueue, handlers.auction));

  async function runUntil(untilMs: number): Promise<void> {
    for (;;) {
      if ((await round()) > 0) continue;
      if (p.clock.nowMs() + 1000 > untilMs) break;
      p.clock.advance(1000);
    }
    if (p.clock.nowMs() < untilMs) p.clock.set(untilMs);
  }

  async function drain(maxSeconds: number): Promise<void> {
    const deadline = p.clock.nowMs() + maxSeconds * 1000;
    while (p.clock.nowMs() <= deadline) {
      if ((await round()) > 0) continue;
      if (await p.idle()) return;
      p.clock.advance(5000);
      // At quiescence the feed goes on: the held price once a minute, or the work waiting for a fresh mark would wait.
      if (staleMarks) await keepFeedAlive();
    }
  }

  /** An operator's `feed resume` of every market numbered above the feed (it restarted lower), just below it. */
  async function resumeOntoFeed(): Promise<void> {
    const wasArmed = armed;
    armed = false;
    for (const symbol of symbols) {
      if (highestSequence(await p.adapters.markets.get(symbol)) <= seq) continue;
      const resumed = await handleAdmin({ action: 'resumeFeed', symbol, fromSequence: seq + 1 }, adminDeps);
      if (!resumed.ok) extra.push(`feed resume of ${symbol} refused: ${resumed.reason}`);
    }
    armed = wasArmed;
  }

  async function keepFeedAlive(): Promise<void> {
    for (const symbol of symbols) {
      const last = (await p.adapters.markets.get(symbol))?.lastTick?.timestampMs ?? 0;
      if (p.clock.nowMs() - last >= 60_000) await deliver(symbol, marks.get(symbol)!);
    }
  }

  const sent: Tick[] = [];
  async function deliver(
    symbol: string,
    mark: bigint,
    again?: Tick,
    shape: { jitterMs?: number; indexBps?: number; venueLags?: boolean } = {},
  ): Promise<'accepted' | 'rejected'> {
    if (!again) seq += 1;
    const index = shape.indexBps ? (mark * BigInt(10_000 + shape.indexBps)) / 10_000n : undefined;
    const t: Tick = again ?? {
      symbol,
      markPrice: mark,
      ...(index !== undefined && index > 0n ? { indexPrice: index } : {}),
      timestampMs: p.clock.nowMs() + (shape.jitterMs ?? 0),
      sequence: seq,
      source: 'fuzz',
    };
    if (!again) {
      sent.push(t);
      if (!shape.venueLags) p.venue.onTick(symbol, mark, p.clock.nowMs());
    }
    let status: 'accepted' | 'rejected' = 'rejected';
    for (let segment = 0; ; segment++) {
      let outcome: Awaited<ReturnType<typeof handleTick>> | undefined;
      for (let attempt = 0; attempt < 50 && !outcome; attempt++) {
        try {
          outcome = await tickInvocation.run(`${symbol}#${t.sequence}`, () =>
            handleTick(t, marginDeps, p.clock.nowMs(), segment),
          );
        } catch (error) {
          // EventBridge retries the invocation.
          if (!(error instanceof InjectedCrash))
            extra.push(`tick ${symbol}#${t.sequence} threw ${(error as Error).message}`);
        }
      }
      if (!outcome) {
        extra.push(`tick ${symbol}#${t.sequence} never completed`);
        return 'rejected';
      }
      if (outcome.status !== 'accepted') {
        // A retry of a tick a crashed invocation recorded: 'duplicate', yet the market's mark is this tick's (not a
        // print of a restarted feed numbered as the last one of the old numbering).
        const lastTick = (await p.adapters.markets.get(symbol))?.lastTick;
        const recorded =
          lastTick?.sequence === t.sequence &&
          lastTick.markPrice === t.markPrice &&
          lastTick.timestampMs === Math.min(t.timestampMs, p.clock.nowMs());
        if (segment === 0 && recorded && !again) {
          status = 'accepted';
          break;
        }
        if (segment === 0) {
          ticksLog.push([
            `${symbol}#${t.sequence}@${t.timestampMs}`,
            `${mark} rejected ${outcome.reason}${again ? ' (again)' : ''}`,
          ]);
          return 'rejected';
        }
        break;
      }
      status = 'accepted';
      if (!outcome.needsContinuation) break;
    }
    if (again) return status; // a redelivery: the market's mark is a newer one's
    // Judged once the tick and its continuations are done, if it is still the market's last accepted one (a
    // concurrent newer tick takes over what an older one left).
    ticksLog.push([`${symbol}#${t.sequence}@${t.timestampMs}`, `${mark} ${status}`]);
    if (status === 'accepted' && mark % 1_000_000n !== 0n) offCent.marks += 1;
    const range = markRange.get(symbol) ?? { min: mark, max: mark };
    markRange.set(symbol, {
      min: mark < range.min ? mark : range.min,
      max: mark > range.max ? mark : range.max,
    });
    const state = await p.adapters.markets.get(symbol);
    if (state?.lastTick?.sequence !== t.sequence) return status;
    marks.set(symbol, mark);
    const acceptedAt = acceptedAtGroup.get(`${symbol}#${t.sequence}`) ?? 0;
    for (const miss of uncoveredAtTick(p.adapters, config, symbol, mark)) {
      // A position a concurrent consumer put back OPEN, judged at an older mark, after this tick read the index
      // (it reads before it records the tick): the next tick starts it (margin-check's doc: "made OPEN at a
      // mark older than the last accepted one").
      const [, id, version] = /^(\S+) \(v(\d+)\)/.exec(miss) ?? [];
      const writtenAt = p.observer.groups.findIndex((g) =>
        g.writes.some(
          (w) =>
            w.kind === 'position' &&
            (w.after as PositionRecord).id === id &&
            (w.after as PositionRecord).version === Number(version),
        ),
      );
      const side = p.adapters.positions.peek(id ?? '')?.side;
      const readFrom = readFromGroup.get(`${symbol}#${t.sequence}/${side}`) ?? acceptedAt;
      if (writtenAt >= readFrom) continue;
      extra.push(
        `skipped: ${symbol}#${t.sequence}: ${miss} (written in group ${writtenAt}, index read at ${readFrom}, tick accepted at ${acceptedAt})`,
      );
    }
    return status;
  }

  async function redrive(): Promise<number> {
    let moved = 0;
    for (const [dlq, queue] of [
      [p.adapters.liquidationDeadLetters, p.adapters.liquidationQueue],
      [p.adapters.auctionDeadLetters, p.adapters.auctionQueue],
    ] as const) {
      for (;;) {
        const batch = await dlq.receive(10, 30);
        if (batch.length === 0) break;
        for (const m of batch) {
          await queue.send(m.body);
          await dlq.delete(m.receiptHandle);
          moved += 1;
        }
      }
    }
    return moved;
  }

  async function admin(op: AdminOp): Promise<void> {
    switch (op.kind) {
      case 'none':
        return;
      case 'deposit':
        await handleAdmin(
          { action: 'deposit', amount: usd(op.amount, 2), idempotencyKey: `d${seq}`, operator: 'fuzz' },
          adminDeps,
        );
        return;
      case 'withdraw': {
        const { balance } = await p.adapters.ledger.balance(INSURANCE_ACCOUNT);
        const room = balance - config.insurance.floor;
        const amount = (room * BigInt(Math.floor(op.share * 1e6))) / 1_000_000n;
        if (amount <= 0n) return;
        await handleAdmin(
          { action: 'withdraw', amount: formatQuote(amount), idempotencyKey: `w${seq}`, operator: 'fuzz' },
          adminDeps,
        );
        return;
      }
      case 'provider': {
        const id = `lp-${op.index}`;
        const current = await p.adapters.providers.get(id);
        if (!current) return;
        if (op.withdrawBids) await p.withdrawBids(id);
        else
          await handleAdmin(
            {
              action: 'registerProvider',
              id,
              maxDiscount: usd(op.maxDiscount),
              maxLot: op.maxLot.toFixed(8),
              symbols: current.symbols as string[],
            },
            adminDeps,
          );
        return;
      }
      case 'topUp': {
        const id = `lp-${op.index}`;
        const current = await p.adapters.providers.get(id);
        if (!current) return;
        const add = parseQuote(usd(op.capital, 2));
        const result = await handleAdmin(
          {
            action: 'registerProvider',
            id,
            capital: formatQuote(current.capital + add),
            expectedVersion: current.version,
            maxDiscount: formatPpm(current.maxDiscountPpm),
            maxLot: formatBase(current.maxLot > 0n ? current.maxLot : 1n),
            symbols: current.symbols as string[],
          },
          adminDeps,
        );
        if (!result.ok) extra.push(`admin top-up refused: ${result.reason}`);
        return;
      }
    }
  }

  // --- the crowd: registered and changed through the admin service, as an operator would ---
  const crowdIds: string[] = [];
  const crowdSymbols = (markets: number): string[] =>
    symbols.length === 1 ? [symbols[0]!] : markets === 2 ? [...symbols] : [symbols[markets % 2]!];
  /** maxLot from the first market's dust, maxLotBySymbol for the others from theirs (unless `plain`). */
  const crowdLots = (
    symbolsOf: readonly string[],
    multiple: number,
    plain: boolean,
  ): { maxLot: string; maxLotBySymbol?: Record<string, string> } => {
    const maxLot = crowdLot([symbolsOf[0]!], multiple);
    if (plain || symbolsOf.length < 2) return { maxLot };
    const bySymbol: Record<string, string> = {};
    for (const sym of symbolsOf.slice(1)) bySymbol[sym] = crowdLot([sym], multiple);
    return { maxLot, maxLotBySymbol: bySymbol };
  };
  const crowdLot = (symbolsOf: readonly string[], multiple: number): string => {
    // The smallest dust of its markets times the multiple (1e-5 base per unit when a market has none).
    let dust = 0n;
    for (const sym of symbolsOf) {
      const d = marketConfig(config, sym).dustSize;
      if (d > 0n && (dust === 0n || d < dust)) dust = d;
    }
    const lot = dust > 0n ? dust * BigInt(multiple) : 1000n * BigInt(multiple);
    return formatBase(lot > 0n ? lot : 1n);
  };
  const adminRefusals: string[] = [];
  async function crowdAdmin(request: Parameters<typeof handleAdmin>[0]): Promise<void> {
    try {
      const result = await handleAdmin(
        request,
        k.pauseSeed && s.adminConcurrent ? delayedDeps(adminDeps as never, pause) : adminDeps,
      );
      if (!result.ok) adminRefusals.push(result.reason);
      else if (result.wakeError) trace.push(`wake error: ${result.wakeError}`);
    } catch (error) {
      if (!(error instanceof InjectedCrash)) extra.push(`admin threw ${(error as Error).message}`);
    }
  }
  async function setUpCrowd(c: CrowdSpec): Promise<void> {
    const r = new Rng(c.seed);
    for (let i = 0; i < c.count; i++) {
      const id = `crowd-${String(i).padStart(4, '0')}`;
      const syms = crowdSymbols(c.markets);
      const capital = r.logUniform(c.capitalMin, c.capitalMax);
      const discount = Math.min(0.9, c.minDiscount + c.discountSpread * r.next());
      crowdIds.push(id);
      await crowdAdmin({
        action: 'registerProvider',
        id,
        capital: usd(capital, 2),
        maxDiscount: usd(discount),
        ...crowdLots(syms, 1 + r.int(0, Math.max(0, c.lotMultiple - 1)), r.chance(0.3)),
        symbols: syms,
      });
    }
  }
  /** The per-market lots as read, restated (DEPLOY.md: a registration replaces the terms), for the markets kept. */
  const restatedLots = (
    current: { maxLotBySymbol?: Readonly<Record<string, bigint>> },
    keep: readonly string[],
  ): { maxLotBySymbol?: Record<string, string> } => {
    const kept = Object.entries(current.maxLotBySymbol ?? {}).filter(([sym]) => keep.includes(sym));
    return kept.length > 0
      ? { maxLotBySymbol: Object.fromEntries(kept.map(([sym, lot]) => [sym, formatBase(lot)])) }
      : {};
  };
  /** A provider's terms as read, restated for `symbols` (a registration replaces them all). */
  const restated = (current: ProviderRecord, symbols: readonly string[]) => ({
    maxDiscount: formatPpm(current.maxDiscountPpm),
    maxLot: formatBase(current.maxLot > 0n ? current.maxLot : 1n),
    ...restatedLots(current, symbols),
    symbols: [...symbols],
  });
  let registered = 0;
  async function crowdOp(op: CrowdOp): Promise<void> {
    if (op.kind === 'register') {
      const newId = `late-${++registered}`;
      const syms = crowdSymbols(op.markets);
      crowdIds.push(newId);
      await crowdAdmin({
        action: 'registerProvider',
        id: newId,
        capital: usd(op.capital, 2),
        maxDiscount: usd(op.maxDiscount),
        ...crowdLots(syms, op.lotMultiple, op.lotMultiple % 3 === 0),
        symbols: syms,
      });
      return;
    }
    const id = crowdIds.length > 0 ? crowdIds[op.index % crowdIds.length]! : undefined;
    const current = id === undefined ? undefined : await p.adapters.providers.get(id);
    if (!id || !current) return;
    switch (op.kind) {
      case 'reduce':
      case 'topUp': {
        const capital =
          op.kind === 'reduce'
            ? (current.capital * BigInt(Math.floor(op.share * 1e6))) / 1_000_000n
            : current.capital + parseQuote(usd(op.capital, 2));
        await crowdAdmin({
          action: 'registerProvider',
          id,
          capital: formatQuote(capital > 0n ? capital : 1n),
          expectedVersion: current.version,
          ...restated(current, current.symbols),
        });
        return;
      }
      case 'retune':
        await crowdAdmin({
          action: 'registerProvider',
          id,
          maxDiscount: usd(op.maxDiscount),
          ...crowdLots(current.symbols, op.lotMultiple, op.lotMultiple % 3 === 0),
          symbols: current.symbols as string[],
        });
        return;
      case 'move':
        await crowdAdmin({ action: 'registerProvider', id, ...restated(current, crowdSymbols(op.markets)) });
        return;
    }
  }

  // --- set-up: two ticks open each market, then the book, providers and fund ---
  for (const [i, symbol] of symbols.entries()) {
    const mark = markUnit === CENT ? parsePrice(px(s.prices[i]!)) : onGrid(s.prices[i]!, markUnit);
    await deliver(symbol, mark);
    p.clock.advance(1000);
    await deliver(symbol, mark);
  }
  let n = 0;
  const addPositions = async (specs: readonly PositionSpec[]) => {
    for (const spec of specs) {
      const symbol = symbols[spec.sym]!;
      n += 1;
      const offLot = !!s.lot?.legacyEvery && n % s.lot.legacyEvery === 0;
      const record = positionRecord(spec, `p${n}`, symbol, marks.get(symbol)!, config, markUnit, offLot);
      if (record) await p.adapters.positions.create(record);
    }
  };
  await addPositions(s.positions);
  for (const [i, pr] of s.providers.entries()) {
    await p.provider(
      `lp-${i}`,
      usd(pr.capital, 2),
      usd(pr.maxDiscount),
      pr.maxLot.toFixed(8),
      symbols[pr.sym],
    );
    if (pr.both && symbols.length > 1) {
      const current = (await p.adapters.providers.get(`lp-${i}`))!;
      await p.adapters.providers.put(
        { ...current, symbols: [...symbols], version: current.version + 1 },
        current.version,
      );
    }
  }
  if (s.fund > 0) await p.fund(usd(s.fund, 2));
  if (s.crowd) await setUpCrowd(s.crowd);

  // --- faults ---
  const faultRng = new Rng(s.venue.seed + 7);
  if (s.venue.faultRate > 0) {
    p.venue.faults.plan = () => {
      const x = faultRng.next();
      if (x >= s.venue.faultRate) return undefined;
      return (['timeout', 'timeout-after-fill', 'reject', 'unavailable'] as const)[faultRng.int(0, 3)];
    };
  }
  if (s.venue.maxFill > 0)
    p.venue.faults.maxFillPerOrder = BigInt(Math.max(1, Math.floor(s.venue.maxFill * 1e8)));
  const dupRng = new Rng(s.venue.seed + 13);
  if (s.dupRate > 0) {
    p.adapters.liquidationQueue.faults.duplicateWhen = () => dupRng.next() < s.dupRate;
    p.adapters.auctionQueue.faults.duplicateWhen = () => dupRng.next() < s.dupRate;
  }

  armed = true;
  // --- the price path ---
  for (const step of s.steps) {
    const symbol = symbols[step.sym]!;
    if (step.crowdOps && step.crowdOps.length > 0) {
      // Part of the way through the gap, while auctions sleep (or step), the operator changes the crowd.
      const at = p.clock.nowMs() + Math.floor(step.gapSeconds * 1000 * (step.crowdAt ?? 0.5));
      await runUntil(at);
      const ops = async () => {
        for (const op of step.crowdOps!) await crowdOp(op);
      };
      if (s.adminConcurrent)
        await Promise.all([
          ops(),
          (async () => {
            for (let i = 0; i < 6; i++) await round();
          })(),
        ]);
      else {
        armed = false;
        await ops();
        armed = true;
      }
      await runUntil(
        Math.max(at, p.clock.nowMs()) + Math.ceil(step.gapSeconds * 1000 * (1 - (step.crowdAt ?? 0.5))),
      );
    } else await runUntil(p.clock.nowMs() + gapOf(step) * 1000);
    armed = false;
    if (step.redrive) await redrive();
    await admin(step.admin);
    armed = true;
    for (let i = 0; i < step.steal; i++) {
      const queue = rng.chance(0.5) ? p.adapters.liquidationQueue : p.adapters.auctionQueue;
      await queue.receive(1, 30);
    }
    const other = step.together !== undefined ? symbols.find((x) => x !== symbol) : undefined;
    for (const x of [symbol, ...(other ? [other] : [])]) {
      if (step.emptyBook) p.venue.faults.emptyBooks.add(x);
      else p.venue.faults.emptyBooks.delete(x);
    }
    // From each market's mark before this step's ticks (a spike is a wick: the step's tick confirms or reverts it).
    const atOf = (x: string) => {
      const from = marks.get(x)!;
      return (bps: number) => {
        const next = (from * BigInt(10_000 + bps)) / 10_000n;
        const unit = BigInt(markUnit);
        return next - (next % unit) || unit; // on the scenario's grid
      };
    };
    const last = marks.get(symbol)!;
    const at = atOf(symbol);
    // The other market's tick, delivered alongside this step's own (none: nothing).
    const alongside = async (): Promise<unknown> =>
      other && deliver(other, atOf(other)(step.together!), undefined, { venueLags: step.venueLags ?? false });
    if (step.replayOld > 0 && sent.length >= step.replayOld) {
      const old = sent[sent.length - step.replayOld]!;
      await deliver(old.symbol, old.markPrice, old);
    }
    if (step.restart === 'down' && seq > 1) {
      seq = Math.floor(seq / 2);
      restartBase = seq + 1;
      if (!staleMarks) await resumeOntoFeed();
    } else if (step.restart === 'up' && staleMarks) {
      seq += DEFAULT_MAX_SEQUENCE_JUMP + 1_000;
      restartBase = seq + 1;
    }
    if (step.glitch) {
      // A print numbered far ahead (each lower than the last glitch's, so none continues another), at the mark.
      glitches += 1;
      const glitch: Tick = {
        symbol,
        markPrice: last,
        timestampMs: p.clock.nowMs(),
        sequence: Number.MAX_SAFE_INTEGER - glitches,
        source: 'fuzz-glitch',
      };
      if ((await deliver(symbol, last, glitch)) === 'accepted')
        extra.push(`glitch ${symbol}#${glitch.sequence} accepted`);
    }
    if (step.spike !== 0) {
      await deliver(symbol, at(step.spike));
      p.clock.advance(1000);
    }
    if (step.twin !== 0) {
      // Two margin-check invocations at once: this tick and the next (a newer sequence, later by 1 s).
      const lags = { venueLags: step.venueLags ?? false };
      const first = deliver(symbol, at(step.moveBps), undefined, lags);
      const second = (async () => {
        await Promise.resolve();
        p.clock.advance(1000);
        return deliver(symbol, at(step.moveBps + step.twin), undefined, lags);
      })();
      await Promise.all([first, second, alongside(), ...(k.concurrent ? [round()] : [])]);
    } else if (k.concurrent)
      await Promise.all([deliver(symbol, at(step.moveBps), undefined, step), alongside(), round()]);
    else await Promise.all([deliver(symbol, at(step.moveBps), undefined, step), alongside()]);
    armed = false;
    await addPositions(step.newPositions);
    armed = true;
  }

  // A glitch is never followed: no market's mark or breaker is numbered beyond the feed's. (After a restart the
  // markets are still numbered beyond it until the feed's prints persist: checked after the quiescence's ticks.)
  const offNumbering = async (when: string) => {
    for (const symbol of symbols) {
      const state = await p.adapters.markets.get(symbol);
      for (const n of [state?.lastTick?.sequence, state?.breaker?.tick.sequence])
        if (n !== undefined && n > seq)
          extra.push(`${symbol} is off its feed's numbering ${when}: ${n} beyond the feed's ${seq}`);
    }
  };
  if (restartBase === undefined) await offNumbering('after the price path');
  else {
    const base = restartBase;
    const onFeedNumbering = (state: Awaited<ReturnType<typeof p.adapters.markets.get>>) => {
      const n = highestSequence(state);
      return n >= base && n <= seq;
    };
    const states = async () => Promise.all(symbols.map((symbol) => p.adapters.markets.get(symbol)));
    // The restarted feed goes on printing, crashes still armed, until the markets are on its numbering: once their
    // marks are stale (held prints continued beyond the skew and the confirmation span), or after a resume.
    for (let i = 0; i < 60 && !(await states()).every(onFeedNumbering); i++) {
      p.clock.advance(6_000);
      for (const symbol of symbols) await deliver(symbol, marks.get(symbol)!);
    }
    for (const [i, state] of (await states()).entries())
      if (!onFeedNumbering(state))
        extra.push(
          `${symbols[i]} is not on its feed's numbering after a restart: ${highestSequence(state)}, the feed's from ${base} to ${seq}`,
        );
  }

  // --- quiescence: faults gone, dead letters redriven, a final tick per market so the margin check can act ---
  armed = false;
  p.venue.faults.plan = undefined;
  p.venue.faults.maxFillPerOrder = undefined;
  p.venue.faults.emptyBooks.clear();
  p.adapters.liquidationQueue.faults.duplicateWhen = undefined;
  p.adapters.auctionQueue.faults.duplicateWhen = undefined;
  for (let r = 0; r < 6; r++) {
    // The market calms down (the venue's volatility EWMA decays with its reference prints): its book narrows again.
    for (const symbol of symbols)
      for (let i = 0; i < 80; i++) p.venue.onTick(symbol, marks.get(symbol)!, p.clock.nowMs());
    await drain(48 * 3600);
    // An operator redrives once the book is back (docs/RELIABILITY.md: "a redrive asks the book again"): the
    // impact of the last fills decays first (half-life 300 s), or a sibling's fill of that very moment starves it.
    const deadLettered =
      p.adapters.liquidationDeadLetters.pending().length + p.adapters.auctionDeadLetters.pending().length;
    if (deadLettered > 0) {
      p.clock.advance(30 * 60_000);
      if (staleMarks) await keepFeedAlive();
    }
    const moved = await redrive();
    let started = 0;
    if (r < 4) {
      for (const symbol of symbols) {
        p.clock.advance(1000);
        const before = p.adapters.liquidations.all().length;
        await deliver(symbol, marks.get(symbol)!);
        started += p.adapters.liquidations.all().length - before;
      }
    }
    await drain(48 * 3600);
    if (moved === 0 && started === 0 && (await p.idle())) break;
  }

  // A slow bleed (a position closed a sliver per slice: a thin book, crumbs of capital) that outlasts the quiescence
  // drains while still progressing: the harness's runaway, measured in slices rather than deliveries.
  {
    const slices = new Map<string, number>();
    for (const l of p.adapters.liquidations.all())
      slices.set(l.positionId, (slices.get(l.positionId) ?? 0) + 1);
    const open = p.adapters.liquidations.all().filter((l) => !/^(SETTLED_|CANCELLED)/.test(l.state));
    if (open.length > 0 && open.every((l) => (slices.get(l.positionId) ?? 0) >= 100) && !(await p.idle()))
      throw new RunawayError(`slow bleed: ${open.map((l) => `${l.id} ${l.state}`).join(', ')}`);
  }
  // With a lot: a position's part under it that no provider took (ADL closes whole lots) ends as
  // waterfall/sub-lot-remainder, unfinished, its message dead-lettered (docs/DEPLOY.md): only a slice under a lot, of a
  // run that opened positions off the lot.
  const subLot = s.lot ? await subLotRemainders(s.lot, p, config, extra) : new Set<string>();
  const subLotLetters = p.adapters.liquidationDeadLetters
    .pending()
    .filter((m) => subLot.has(parseLiquidationMessage(m.body).liquidationId)).length;
  // Unsettled, what a plan already moved for one (a plan applied, then made again with nobody left to take the slice,
  // as one that ends as waterfall/no-liquidity) stays in the fund: the only flow no settlement books.
  const { fundFlow: subLotFundFlow } = journalFlows(
    (await p.adapters.ledger.journal(INSURANCE_ACCOUNT)).filter((e) => subLot.has(e.reference)),
  );
  const report = await p.check();
  const violations: string[] = [];
  for (const v of report.violations) {
    // Admin top-ups change capital outside auctions: the checker counts them as (negative) capital used.
    const m = /^providers: capital used (-?\d+), auction fills cost (-?\d+)$/.exec(v);
    if (m && BigInt(m[1]!) + topUps === BigInt(m[2]!)) continue;
    const stranded = /^stranded: (\S+) is \S+ with no message in flight$/.exec(v);
    if (stranded && subLot.has(stranded[1]!)) continue;
    const letters = /^dead letters: (\d+) messages/.exec(v);
    if (letters && Number(letters[1]) === subLotLetters) continue;
    const flows = /^conservation: flows sum to (-?\d+), not 0$/.exec(v);
    if (flows && BigInt(flows[1]!) === subLotFundFlow) continue;
    violations.push(v);
  }
  // Extra invariants.
  extra.push(...fillProblems);
  const subLotPositions = new Set(
    p.adapters.liquidations
      .all()
      .filter((l) => subLot.has(l.id))
      .map((l) => l.positionId),
  );
  for (const l of p.adapters.liquidations.all()) {
    if (!/^(SETTLED_|CANCELLED)/.test(l.state) && !subLot.has(l.id))
      extra.push(`not terminal at quiescence: ${l.id} ${l.state}`);
  }
  // A venue's hold is counted once per liquidation held, by the write that records its start (disputed-double-count):
  // never more, and, with no crash between that write and the count, never fewer.
  {
    const held = p.adapters.liquidations.all().filter((l) => l.markDisputedSinceMs !== undefined).length;
    const counted = p.telemetry.total(METRICS.LiquidationsDisputed.name);
    if (counted > held || (!trace.some((t) => /^\d+:/.test(t)) && counted < held))
      extra.push(`LiquidationsDisputed counted ${counted} for ${held} liquidations held`);
  }
  for (const symbol of symbols) {
    const m = marketConfig(config, symbol);
    const mark = marks.get(symbol)!;
    for (const side of ['LONG', 'SHORT'] as const) {
      for (const pos of p.adapters.positions.scanCrossed(symbol, side, side === 'LONG' ? 0n : 10n ** 30n)) {
        if (pos.state === 'OPEN' && isLiquidatable(pos, mark, m.maintenanceMargin))
          extra.push(`open beyond liquidation at last mark: ${pos.id} v${pos.version}`);
      }
    }
  }
  for (const pos of await allPositions(p)) {
    if (pos.state === 'LIQUIDATING' && !subLotPositions.has(pos.id))
      extra.push(`position ${pos.id} LIQUIDATING at quiescence`);
    if (pos.state === 'CLOSED' && (pos.closedPayout ?? 0n) < 0n)
      extra.push(`position ${pos.id} closed paying out ${pos.closedPayout}`);
  }
  // Market fills within the slippage bound of the mark the order was priced on (the last resort's come after).
  // (The market-only baseline sells at any price.)
  for (const l of k.strategy === 'market-only' ? [] : p.adapters.liquidations.all()) {
    if (!l.settlement || !l.context) continue;
    const m = marketConfig(config, l.symbol);
    let marketSize = l.settlement.marketClosedSize - l.settlement.lastResortClosedSize;
    const sell = l.side === 'LONG';
    const mark = l.context.executionMark;
    const limit = sell
      ? (mark * (1_000_000n - m.slippageBound) + 999_999n) / 1_000_000n
      : (mark * (1_000_000n + m.slippageBound)) / 1_000_000n;
    for (const fill of l.marketFills) {
      if (marketSize <= 0n) break;
      marketSize -= fill.size;
      if (sell ? fill.price < limit : fill.price > limit)
        extra.push(`market fill of ${l.id} at ${fill.price} beyond its bound ${limit} (mark ${mark})`);
    }
  }
  // Auction fills never beyond the floor of any mark the market had (the floor follows the mark).
  for (const a of p.adapters.auctions.all()) {
    const range = markRange.get(a.symbol)!;
    for (const fill of a.fills) {
      const low = (range.min * config.auction.floor) / 1_000_000n;
      const high = (range.max * 1_000_000n) / config.auction.floor;
      if (a.direction === 'SELL' ? fill.price < low : fill.price > high)
        extra.push(
          `auction ${a.id} filled at ${fill.price}, beyond the floor of every mark (${range.min}..${range.max})`,
        );
    }
  }
  for (const group of p.observer.groups)
    for (const w of group.writes)
      if (w.kind === 'provider' && (w.after as { capital: bigint }).capital < 0n)
        extra.push(
          `provider ${(w.after as { id: string }).id} capital ${(w.after as { capital: bigint }).capital}`,
        );
  // --- the crowd's own invariants ---
  const bytes = (record: unknown) =>
    JSON.stringify(record, (_key, value) => (typeof value === 'bigint' ? value.toString() : value)).length;
  const costOf = new Map<string, bigint>();
  for (const a of p.adapters.auctions.all()) {
    if (a.fills.length > MAX_FILLS_PER_AUCTION) extra.push(`auction ${a.id} has ${a.fills.length} fills`);
    if (bytes(a) >= 400_000) extra.push(`auction ${a.id} item is ${bytes(a)} bytes`);
    if (a.state === 'RUNNING') extra.push(`auction ${a.id} RUNNING at quiescence`);
    if (a.version > 10_000) extra.push(`auction ${a.id} committed ${a.version} versions`);
    const taken = new Map<string, bigint>();
    for (const f of a.fills) {
      taken.set(f.providerId, (taken.get(f.providerId) ?? 0n) + f.size);
      const cost = auctionFillCost(a.direction, f);
      costOf.set(f.providerId, (costOf.get(f.providerId) ?? 0n) + cost);
      if (f.size <= 0n) extra.push(`auction ${a.id} fill of ${f.size}`);
    }
    for (const [id, size] of taken)
      if (size > (maxLotEver.get(`${id}@${a.symbol}`) ?? 0n))
        extra.push(
          `auction ${a.id}: ${id} took ${size}, beyond any lot it had in ${a.symbol} (${maxLotEver.get(`${id}@${a.symbol}`)})`,
        );
  }
  for (const l of p.adapters.liquidations.all())
    if (bytes(l) >= 400_000) extra.push(`liquidation ${l.id} item is ${bytes(l)} bytes`);
  {
    const first = new Map<string, bigint>();
    const last = new Map<string, bigint>();
    for (const group of p.observer.groups) {
      for (const w of group.writes) {
        if (w.kind === 'auction') {
          const added =
            (w.after as { fills: unknown[] }).fills.length -
            ((w.before as { fills: unknown[] } | undefined)?.fills.length ?? 0);
          if (added > MAX_FILLS_PER_STEP)
            extra.push(`a commit added ${added} fills to ${(w.after as { id: string }).id}`);
          if (added < 0) extra.push(`a commit removed fills of ${(w.after as { id: string }).id}`);
        }
        if (w.kind !== 'provider') continue;
        const r = w.after as { id: string; capital: bigint };
        if (!first.has(r.id)) first.set(r.id, r.capital);
        last.set(r.id, r.capital);
      }
    }
    for (const [id, c0] of first) {
      const used = c0 - last.get(id)! + (capitalAdjust.get(id) ?? 0n);
      if (used !== (costOf.get(id) ?? 0n))
        extra.push(`provider ${id}: capital used ${used}, its fills cost ${costOf.get(id) ?? 0n}`);
    }
  }
  for (const reason of adminRefusals)
    if (!/^admin\/concurrent-change|concurrent change: providers\/version-mismatch/.test(reason))
      extra.push(`admin refused: ${reason}`);
  const errors = p.errors.filter(
    (e) => BUGGY_ERROR.test(e) || /too-many-writes|clearing\/|auction\/invalid/.test(e),
  );
  for (const e of errors) extra.push(`suspicious error: ${e}`);
  if (opts.log) console.log({ trace, errors: p.errors.slice(0, 20), figures: report.figures });
  const underFills = s.lot
    ? p.adapters.auctions
        .all()
        .flatMap((a) => a.fills.filter((f) => f.size % lotSizeOf(marketConfig(config, a.symbol)) !== 0n))
        .length
    : 0;
  const lots = { underFills, subLotEnded: subLot.size };
  return { violations, extra, errors: p.errors, p, trace, figures: report.figures, offCent, lots };
}

async function allPositions(p: Pipeline): Promise<PositionRecord[]> {
  const out: PositionRecord[] = [];
  for (const id of p.observer.positionHistory.keys()) {
    const pos = await p.adapters.positions.get(id);
    if (pos) out.push(pos);
  }
  return out;
}

/** Every order the consumers send (market and last resort) is whole lots of its market's, never none. */
function watchOrderLots(p: Pipeline, config: RiskConfig, problems: string[]): void {
  const venue = p.orders;
  const place = venue.placeIoc.bind(venue);
  venue.placeIoc = async (order) => {
    const lot = lotSizeOf(marketConfig(config, order.symbol));
    if (order.size <= 0n || order.size % lot !== 0n)
      problems.push(`order ${order.clientOrderId} of ${order.size}, not whole lots of ${lot}`);
    return place(order);
  };
}

/**
 * The liquidations ended as `waterfall/sub-lot-remainder` (their ids), each checked: a slice under its market's lot,
 * in a run that opened positions off the lot. And what whole lots keep whole: every auction fill leaves whole lots
 * (one fill at most takes the part of its lot under one), a position once on the lot stays on it, and with no
 * position opened off the lot, every position, slice and fill is whole lots and none ends so.
 */
async function subLotRemainders(
  lot: LotSpec,
  p: Pipeline,
  config: RiskConfig,
  problems: string[],
): Promise<Set<string>> {
  const lotOf = (symbol: string): BaseE8 => lotSizeOf(marketConfig(config, symbol));
  const legacy = lot.legacyEvery > 0;
  const subLotOf = (e: string) => /waterfall\/sub-lot-remainder: (\S+): /.exec(e)?.[1];
  const ever = new Set(p.errors.flatMap((e) => subLotOf(e) ?? []));
  if (!legacy && ever.size > 0)
    problems.push(
      `${[...ever].join(', ')} ended as waterfall/sub-lot-remainder, no position opened off the lot`,
    );
  // Unfinished, and the last error about it says so: a slice all under its market's lot. A copy of its message that
  // found another delivery holding its lease (liquidation/busy) says nothing of how it ended.
  const ended = new Set<string>();
  for (const l of p.adapters.liquidations.all()) {
    if (/^(SETTLED_|CANCELLED)/.test(l.state) || !ever.has(l.id)) continue;
    const about = new RegExp(`\\b${l.id}\\b`);
    const last = p.errors.findLast((e) => about.test(e) && !e.includes('liquidation/busy: '));
    if (last === undefined || subLotOf(last) !== l.id) continue;
    ended.add(l.id);
    if (!(l.remainingSize > 0n && l.remainingSize < lotOf(l.symbol)))
      problems.push(
        `${l.id} ended as waterfall/sub-lot-remainder with ${l.remainingSize} left, a lot ${lotOf(l.symbol)}`,
      );
  }
  for (const a of p.adapters.auctions.all()) {
    const unit = lotOf(a.symbol);
    const offLot = a.fills.filter((f) => f.size % unit !== 0n);
    if (offLot.length > 1 || offLot.some((f) => f.size % unit !== a.lot % unit))
      problems.push(
        `auction ${a.id} of ${a.lot}: fills ${a.fills.map((f) => f.size).join(', ')} leave no whole lots of ${unit}`,
      );
  }
  // ADL closes whole lots of its counterparties and every other close leaves whole lots: a position once on the lot
  // stays on it (lot52-adl-whole-lots: a counterparty was handed a slice's part under a lot).
  for (const [id, history] of p.observer.positionHistory) {
    const on = history.find((pos) => pos.size % lotOf(pos.symbol) === 0n);
    const off = on && history.slice(history.indexOf(on)).find((pos) => pos.size % lotOf(pos.symbol) !== 0n);
    if (on && off)
      problems.push(
        `position ${id} v${off.version} of ${off.size}, off the lot after v${on.version} of ${on.size}`,
      );
  }
  if (!legacy) {
    for (const pos of await allPositions(p))
      if (pos.size % lotOf(pos.symbol) !== 0n)
        problems.push(`position ${pos.id} of ${pos.size}, off the lot`);
    for (const l of p.adapters.liquidations.all())
      if (l.context && l.context.plannedSize % lotOf(l.symbol) !== 0n)
        problems.push(`${l.id} planned ${l.context.plannedSize}, off the lot`);
  }
  return ended;
}

export class RunawayError extends Error {}
const MAX_DELIVERIES = 30_000;
/**
 * Slices of one position that make a run a slow bleed (the check after quiescence asks for 100 with work left):
 * a bound on the fuzz's time; a scenario of the regression corpus that legitimately slices more may raise it.
 */
const SLOW_BLEED_SLICES = 200;

/**
 * The longest gap without ticks under stale marks: a waiting message sends itself again every 30 s, and the harness
 * duplicates sends (up to 5 %), so the copies of a waiting message grow by that share each wait.
 */
const MAX_STALE_GAP_SECONDS = 15 * 60;

/**
 * Under stale marks nothing acts on a mark older than maxMarkAgeSeconds: no venue order placed (or asked again), no
 * auction fill, settlement or write of another position (ADL) committed while its market's last mark is that old.
 */
function watchStaleActions(p: Pipeline, config: RiskConfig, problems: string[]): void {
  const staleBy = async (symbol: string): Promise<number | undefined> => {
    const tick = (await p.adapters.markets.get(symbol))?.lastTick;
    const age = tick ? p.clock.nowMs() - tick.timestampMs : 0;
    return age > marketConfig(config, symbol).maxMarkAgeSeconds * 1000 ? age : undefined;
  };
  const venue = p.orders;
  const place = venue.placeIoc.bind(venue);
  venue.placeIoc = async (order) => {
    const age = await staleBy(order.symbol);
    if (age !== undefined) problems.push(`order ${order.clientOrderId} placed on a mark ${age} ms old`);
    return place(order);
  };
  const transactor = p.adapters.transactor;
  const commit = transactor.commit.bind(transactor);
  transactor.commit = async (writes, providersUnchanged) => {
    const acts: string[] = [];
    const own = new Set(writes.flatMap((w) => (w.kind === 'liquidation' ? [w.record.positionId] : [])));
    for (const w of writes) {
      if (w.kind === 'auction') {
        const before = (await p.adapters.auctions.get(w.record.id))?.fills.length ?? 0;
        if (w.record.fills.length > before) acts.push(`auction ${w.record.id} fills`);
      } else if (w.kind === 'liquidation' && /^SETTLED_/.test(w.record.state)) {
        const before = (await p.adapters.liquidations.get(w.record.id))?.state;
        if (before !== w.record.state) acts.push(`settlement ${w.record.id}`);
      } else if (w.kind === 'position' && !own.has(w.record.id)) acts.push(`ADL of ${w.record.id}`);
    }
    const symbol = writes.find((w) => w.kind === 'liquidation' || w.kind === 'auction')?.record.symbol;
    const age = acts.length > 0 && symbol ? await staleBy(symbol) : undefined;
    await commit(writes, providersUnchanged);
    if (age !== undefined) problems.push(`${acts.join(', ')} committed on a mark ${age} ms old`);
  };
}
let deliveries = 0;

// --- crowds of tiny-lot providers, operator changes while auctions sleep, both sides ------------

const crowdSpecArb: fc.Arbitrary<CrowdSpec> = fc.record({
  count: fc.oneof(
    fc.integer({ min: 100, max: 400 }),
    fc.integer({ min: 1_000, max: 1_200 }),
    fc.integer({ min: 1_000, max: 1_200 }),
  ),
  seed: fc.integer({ min: 1, max: 1_000_000 }),
  markets: fc.integer({ min: 0, max: 2 }),
  lotMultiple: fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 40 })),
  minDiscount: f(0.001, 0.15),
  discountSpread: fc.oneof(fc.constant(0), f(0, 0.01), f(0, 0.1)),
  capitalMin: logF(0.5, 500),
  capitalMax: logF(500, 1_000_000),
});

const crowdOpArb: fc.Arbitrary<CrowdOp> = fc.oneof(
  fc.record({
    kind: fc.constant('register' as const),
    capital: logF(1, 1_000_000),
    maxDiscount: f(0.001, 0.2),
    lotMultiple: fc.integer({ min: 1, max: 40 }),
    markets: fc.integer({ min: 0, max: 2 }),
  }),
  fc.record({ kind: fc.constant('reduce' as const), index: fc.nat(2_000), share: f(0, 1) }),
  fc.record({
    kind: fc.constant('retune' as const),
    index: fc.nat(2_000),
    maxDiscount: f(0.001, 0.3),
    lotMultiple: fc.integer({ min: 1, max: 40 }),
  }),
  fc.record({ kind: fc.constant('topUp' as const), index: fc.nat(2_000), capital: logF(1, 100_000) }),
  fc.record({
    kind: fc.constant('move' as const),
    index: fc.nat(2_000),
    markets: fc.integer({ min: 0, max: 2 }),
  }),
);

export interface CrowdArbOptions extends ArbOptions {
  /** Force both a crash and a squeeze of the crowd's market. */
  readonly bothSides?: boolean;
  readonly emptyBookShare?: number;
  /** Many operator changes per step (registrations and withdrawals in bursts), alongside the consumers. */
  readonly burst?: boolean;
}

export function crowdArb(o: CrowdArbOptions = {}): fc.Arbitrary<Scenario> {
  return fc
    .tuple(
      scenarioArb({ maxSteps: 6, ...o }),
      crowdSpecArb,
      fc.array(fc.array(crowdOpArb, { maxLength: o.burst ? 60 : 6 }), { minLength: 6, maxLength: 6 }),
      fc.array(f(0, 1), { minLength: 6, maxLength: 6 }),
      fc.array(fc.integer({ min: 0, max: 99 }), { minLength: 6, maxLength: 6 }),
      // Big positions on both sides, near max leverage: lots of hundreds to thousands of crowd lots.
      fc.array(
        fc.record({
          side: fc.constantFrom<Side>('LONG', 'SHORT'),
          levShare: f(0.85, 1),
          notional: logF(5_000, 2_000_000),
          entryBps: fc.integer({ min: -50, max: 50 }),
        }),
        { minLength: 1, maxLength: 6 },
      ),
      fc.integer({ min: 300, max: 1_400 }),
      fc.boolean(),
    )
    .map(([s, crowd, opsPerStep, at, books, big, swing, adminConcurrent]) => {
      const crowdSym = s.markets === 1 ? 0 : crowd.markets % 2;
      const positions: PositionSpec[] = [...s.positions, ...big.map((b) => ({ sym: crowdSym, ...b }))];
      const steps = s.steps.map((st, i) => ({
        ...st,
        crowdOps: opsPerStep[i] ?? [],
        crowdAt: at[i] ?? 0.5,
        emptyBook: (books[i] ?? 0) < (o.emptyBookShare ?? 50),
      }));
      if (o.bothSides) {
        // A crash of the crowd's market, and later a squeeze past where it started.
        steps[0] = { ...steps[0]!, sym: crowdSym, moveBps: -swing, spike: 0, emptyBook: true };
        const later = Math.min(steps.length, 2);
        const squeeze = {
          ...(steps[later] ?? steps[0]!),
          sym: crowdSym,
          moveBps: 1_450,
          spike: 0,
          emptyBook: true,
        };
        if (steps.length > later) steps[later] = squeeze;
        else steps.push({ ...squeeze, gapSeconds: 600 });
        steps.splice(later + 1, 0, {
          ...squeeze,
          moveBps: Math.min(1_450, swing + 300),
          gapSeconds: 900,
          crowdOps: [],
        });
      }
      return {
        ...s,
        positions,
        steps,
        crowd,
        adminConcurrent: o.burst ? true : adminConcurrent,
        ...(o.burst
          ? { knobs: { ...s.knobs, concurrent: true, pauseSeed: s.knobs.pauseSeed || s.venue.seed } }
          : {}),
      };
    });
}

/**
 * Near-full auctions: a crowd of 1,001 to 1,100 providers at one discount with a lot of exactly dust each, and one
 * position of 1,000 dust plus a fraction (the lot, with empty books), so the auction's last fills meet the dust trim.
 */
export function nearFullArb(o: CrowdArbOptions = {}): fc.Arbitrary<Scenario> {
  return fc
    .tuple(
      crowdArb({ markets: 1, crashes: false, faults: false, ...o }),
      fc.integer({ min: 1_001, max: 1_100 }),
      fc.oneof(f(0, 1), f(0, 3)),
      logF(0.0001, 0.05),
      fc.constantFrom<Side>('LONG', 'SHORT'),
    )
    .map(([s, count, frac, dust, side]) => ({
      ...s,
      config: { ...s.config, dust, sliceAbove: 200_000, minSliceNotional: 0 },
      positions: [
        ...s.positions.slice(0, 5),
        { sym: 0, side, levShare: 0.95, notional: 0, entryBps: 0, dustUnits: 1_000 + frac },
      ],
      providers: [],
      crowd: {
        ...s.crowd!,
        count,
        markets: 0,
        lotMultiple: 1,
        discountSpread: 0,
        capitalMin: 1e5,
        capitalMax: 1e6,
      },
      steps: s.steps.map((st, i) => ({
        ...st,
        sym: 0,
        emptyBook: true,
        moveBps: i === 0 ? (side === 'LONG' ? -1400 : 1400) : st.moveBps,
        spike: 0,
        crowdOps: i === 0 ? [] : st.crowdOps,
      })),
    }))
    .filter((s) => configValid(s.config));
}
