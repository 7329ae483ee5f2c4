import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BenchStage, SYMBOL } from '../../bench/stage.ts';
import { instrumentVenueKeyClients } from '../../shared/adapters/venue/key.ts';
import {
  DEFAULT_RISK_CONFIG_INPUT,
  parseRiskConfig,
  type RiskConfigInput,
} from '../../shared/domain/config.ts';
import { parsePrice, parseQuote } from '../../shared/domain/units.ts';
import { instrumentAwsClients, wiring } from '../../shared/lambda/wiring.ts';
import { VENUE_KEY_ENV } from '../../shared/topology.ts';
import { checkStoredInvariants } from '../support/emulator-invariants.ts';
import { GrantRecorder } from '../support/grants.ts';
import { CountingVenue, recordFigures, toJson } from '../support/invariants.ts';
import { startMoto } from '../support/moto.ts';
import { syntheticBook } from '../support/pipeline.ts';

/**
 * Scenario 8 through the emulator: a liquidation cascade run by the real handlers (functions/*, their AWS SDK v3
 * adapters) against moto, triggered as on AWS by the local runner (bus -> margin-check -> SQS -> consumer ->
 * auction -> ledger), then every invariant read back from what moto stored (emulator-invariants.ts).
 * CI size: one round, about 115 liquidations over 200 positions (about 35 s: moto settles a few a second here);
 * STRESS_FULL=1: ten rounds, 1,000+ liquidations over 2,000 positions, every other one with the market's positions
 * over three index shards. Throughput is wall-clock liquidations
 * per second from the first crash tick to idle queues, with moto (one DynamoDB call at a time, copying each
 * table a transaction touches) on the same machine: an emulator figure, not an AWS one.
 */

// Before the handlers' Powertools modules load: ledger contention is retried and logged at ERROR (the invariants
// below are the judge), and EMF metrics would print a line per settlement.
vi.hoisted(() => {
  process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
  process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
});

const FULL = process.env.STRESS_FULL === '1';
/**
 * Each round is one crash on a fresh stage: moto copies every table a transaction touches, so one stage with a
 * large book slows down quadratically (a 1,800-position book did not finish in 18 min); rounds of 200 keep
 * each crash the size moto handles, and together they reach the issue's 1,000 liquidations.
 */
const POSITIONS_PER_ROUND = 200;
const ROUNDS = FULL ? 10 : 1;
const MIN_LIQUIDATIONS = FULL ? 1_000 : 80;
/**
 * A 10 % crash in 1 % steps (within the circuit breaker's band): each tick crosses a part of the book, so the
 * consumers' settlements contend on the fund's ledger item in smaller waves (one tick crossing 300+ positions at
 * once did not drain within 15 min on moto).
 */
const CRASH = ['198', '196', '194', '192', '190', '188', '186', '184', '182', '180'] as const;

/** Auction steps of 1 s (instead of 90 s), and a draw cap the cascade cannot reach: the common path. */
const CONFIG_INPUT: RiskConfigInput = {
  ...DEFAULT_RISK_CONFIG_INPUT,
  auction: {
    ...DEFAULT_RISK_CONFIG_INPUT.auction,
    curve: { kind: 'stairstep', cut: '0.99', stepSeconds: 1 },
  },
  insurance: { drawCapPerWindow: '100000000', windowSeconds: 3600, floor: '0' },
};
const config = parseRiskConfig(CONFIG_INPUT);
const PROVIDERS = [
  { id: 'lp-1', capital: '50000000', maxDiscount: '0.01' },
  { id: 'lp-2', capital: '50000000', maxDiscount: '0.02' },
  { id: 'lp-3', capital: '50000000', maxDiscount: '0.03' },
] as const;

type Moto = Awaited<ReturnType<typeof startMoto>>;
let moto: Moto;
beforeAll(async () => {
  moto = await startMoto();
});
afterAll(async () => {
  await moto?.stop();
});

/**
 * The market's index shards in a round: one (the default) in even rounds, three in odd ones (full runs only),
 * so the cascade also runs with every read of the positions indexes merging shards.
 */
const shardsOf = (round: number): number => (round % 2 === 0 ? 1 : 3);

/** One crash on a fresh stage (fresh tables and queues), its invariants read back from what moto stored. */
async function crashRound(round: number) {
  // Every call the handlers make through the cascade (slices, auctions, ADL, retries) must be granted.
  const grants = new GrantRecorder();
  instrumentAwsClients((clients) => grants.attach(clients));
  instrumentVenueKeyClients((client) => grants.attachVenueKey(client));
  const stage = await BenchStage.open(moto.endpoint, `load${FULL ? 'full' : 'ci'}${round}`, CONFIG_INPUT, {
    [SYMBOL]: shardsOf(round),
  });
  grants.forStage(stage.stack.names, stage.stack.env[VENUE_KEY_ENV]);
  try {
    // Observe the handlers' venue (built once per "container", like their clients): every order by id.
    const settlement = wiring().settlement;
    const venue = new CountingVenue(settlement.venue);
    Object.assign(settlement, { venue });

    await stage.admin({
      action: 'deposit',
      amount: '10000000',
      idempotencyKey: 'load-seed',
      operator: 'ops',
    });
    for (const p of PROVIDERS)
      await stage.admin({ action: 'registerProvider', ...p, maxLot: '100000', symbols: [SYMBOL] });
    const tickKeys = [`${SYMBOL}#${await stage.putTick(parsePrice('200'))}`];
    expect(await stage.phase(['marginCheck'])).toBe(0);
    const book = syntheticBook(
      {
        count: POSITIONS_PER_ROUND,
        seed: 8 + round,
        price: '200',
        minLeverage: 6,
        minNotional: 200,
        maxNotional: 2000,
      },
      config,
    );
    await stage.seed(book);

    const seeded = performance.now();
    const ticks: { price: string; ms: number; failedInvocations: number }[] = [];
    for (const price of CRASH) {
      const t0 = performance.now();
      tickKeys.push(`${SYMBOL}#${await stage.putTick(parsePrice(price))}`);
      const failedInvocations = await stage.phase(['marginCheck', 'liquidationConsumer', 'auction']);
      ticks.push({ price, ms: Math.round(performance.now() - t0), failedInvocations });
    }
    const cascadeMs = performance.now() - seeded;

    const report = await checkStoredInvariants({
      adapters: stage.adapters,
      clients: stage.stack.clients,
      names: stage.stack.names,
      config,
      book,
      providerCapital: new Map(PROVIDERS.map((p) => [p.id, parseQuote(p.capital)])),
      tickKeys,
      lastMark: parsePrice(CRASH.at(-1)!),
      venue,
    });
    return {
      report,
      cascadeMs,
      ticks,
      failedInvocations: stage.failedInvocations,
      ungranted: grants.ungranted(),
    };
  } finally {
    instrumentAwsClients(undefined);
    instrumentVenueKeyClients(undefined);
    await stage.close();
  }
}

describe('scenario 8: load through the emulator', () => {
  it(`crashes liquidating ${MIN_LIQUIDATIONS}+ positions on moto, ${ROUNDS} round(s): throughput, invariants hold`, {
    timeout: FULL ? 60 * 60_000 : 300_000,
  }, async () => {
    const rounds = [];
    for (let round = 0; round < ROUNDS; round++) {
      const result = await crashRound(round);
      // Each round is judged on its own records: a violation names its round.
      expect(result.report.violations.map((v) => `round ${round}: ${v}`)).toEqual([]);
      expect(result.report.figures.conservation.error).toBe(0n);
      expect(result.ungranted.map((u) => `round ${round}: ${u}`)).toEqual([]);
      // Every liquidation that reached the market placed one order, and the venue executed each once.
      expect(result.report.figures.venueExecutions).toBe(result.report.figures.venueOrders);
      expect(result.report.figures.venueOrders).toBeGreaterThan(0);
      rounds.push(result);
    }
    const liquidations = rounds.reduce((n, r) => n + r.report.figures.liquidations, 0);
    const cascadeMs = rounds.reduce((n, r) => n + r.cascadeMs, 0);
    const figures = {
      full: FULL,
      rounds: ROUNDS,
      positions: POSITIONS_PER_ROUND * ROUNDS,
      ticks: CRASH.length * ROUNDS,
      liquidations,
      cascadeMs: Math.round(cascadeMs),
      liquidationsPerSecond: Number((liquidations / (cascadeMs / 1000)).toFixed(2)),
      failedInvocations: rounds.reduce((n, r) => n + r.failedInvocations, 0),
      perRound: rounds.map((r, round) => ({
        indexShards: shardsOf(round),
        cascadeMs: Math.round(r.cascadeMs),
        tickPhases: r.ticks,
        ...r.report.figures,
      })),
    };
    recordFigures(`8-load-emulator-${FULL ? 'full' : 'ci'}`, figures);
    console.log(toJson(figures));
    expect(liquidations).toBeGreaterThanOrEqual(MIN_LIQUIDATIONS);
  });
});
