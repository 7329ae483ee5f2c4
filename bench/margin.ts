import {
  createEmbeddedAdapters,
  type EmbeddedAdapters,
  type EmbeddedPositionRepository,
} from '../shared/adapters/embedded/index.ts';
import type { AdlOrder } from '../shared/domain/adl-threshold.ts';
import { DEFAULT_RISK_CONFIG, marketConfig } from '../shared/domain/config.ts';
import { isLiquidatable } from '../shared/domain/margin.ts';
import type { Side } from '../shared/domain/model.ts';
import type { PriceE8 } from '../shared/domain/units.ts';
import {
  type CrossedPage,
  type PositionRecord,
  type PositionRepository,
  silentTelemetry,
} from '../shared/ports/index.ts';
import { handleTick, type MarginCheckDeps, tickKeyOf } from '../shared/services/margin-check.ts';
import { BENCH_SYMBOL, type BenchBook, markCrossing, restingMark, syntheticBook } from './book.ts';
import { median, timeAsync } from './timing.ts';

/**
 * Part 1: one tick through the real margin check (handleTick on the embedded adapters: read the market,
 * query the crossed positions, record the tick, re-check each crossed position exactly, start its liquidation
 * and enqueue it), once with the liquidation-price index and once with a full scan of the book in place of the
 * index query. Everything else is identical, so the ratio is the index's alone.
 *
 * The scan compares each position's stored liquidation price with the mark, which is cheaper than the margin
 * formula a scanning bot evaluates per position, and reads the book once per tick for both sides (the tick's two
 * queries share one pass, as a bot reads its table once): the ratio understates the index's advantage, never
 * overstates it.
 */

export interface MarginCheckRow {
  readonly positions: number;
  readonly crossed: number;
  readonly indexMsPerTick: number;
  readonly scanMsPerTick: number;
  /** scanMsPerTick / indexMsPerTick, same run. */
  readonly ratio: number;
}

export interface MarginCheckOptions {
  readonly books: readonly number[];
  readonly crossed: readonly number[];
  /** Measuring time per (book, crossed, variant), ms (repetitions stop after this, within the bounds below). */
  readonly budgetMs: number;
  readonly log?: (line: string) => void;
}

/** Positions started per invocation: 1,000 keeps the largest case in one invocation, as a scan would be. */
const MAX_PER_INVOCATION = 1000;
const T0 = Date.UTC(2020, 2, 12, 9, 0, 0);

/** The same repository with its index query replaced by a full scan of the book (pages by offset). */
export class ScanningPositions implements PositionRepository {
  readonly adlOrdersLagMs = 0;
  /** The last pass over the book: both sides' crossed positions at a mark, and the sides not queried yet. */
  #pass:
    | {
        readonly symbol: string;
        readonly mark: PriceE8;
        readonly crossed: Record<Side, PositionRecord[]>;
        readonly unread: Set<Side>;
      }
    | undefined;
  constructor(private readonly inner: EmbeddedPositionRepository) {}
  get(id: string): Promise<PositionRecord | undefined> {
    return this.inner.get(id);
  }
  create(position: PositionRecord): Promise<void> {
    return this.inner.create(position);
  }
  reprice(id: string, liquidationPrice: PriceE8, expectedVersion: number): Promise<void> {
    return this.inner.reprice(id, liquidationPrice, expectedVersion);
  }
  replace(next: PositionRecord, expectedVersion: number): Promise<void> {
    return this.inner.replace(next, expectedVersion);
  }
  /** Margin checks never read ADL's orders: the index's answer. */
  queryAdlOrder(
    symbol: string,
    side: Side,
    order: AdlOrder,
    limit: number,
    cursor?: string,
  ): Promise<CrossedPage> {
    return this.inner.queryAdlOrder(symbol, side, order, limit, cursor);
  }
  async queryCrossed(
    symbol: string,
    side: Side,
    mark: PriceE8,
    limit: number,
    cursor?: string,
  ): Promise<CrossedPage> {
    // A tick's first page of each side: the first one scans the book for both, the other side's reads that pass.
    const pass = this.#pass;
    const reusable = pass?.symbol === symbol && pass.mark === mark;
    if (!reusable || (cursor === undefined && !pass.unread.has(side))) {
      this.#pass = {
        symbol,
        mark,
        crossed: this.inner.scanCrossedBothSides(symbol, mark),
        unread: new Set<Side>(['LONG', 'SHORT']),
      };
    }
    const current = this.#pass!;
    if (cursor === undefined) current.unread.delete(side);
    const all = current.crossed[side];
    const from = cursor === undefined ? 0 : Number(cursor);
    const positions = all.slice(from, from + limit);
    return from + limit < all.length ? { positions, cursor: String(from + limit) } : { positions };
  }
}

/** Drives one market's ticks through handleTick; `positions` picks the index or the scan for the next ticks. */
class TickDriver {
  #sequence = 0;
  #now = T0;
  #deps: MarginCheckDeps;

  constructor(private readonly adapters: EmbeddedAdapters) {
    this.#deps = {
      positions: adapters.positions,
      markets: adapters.markets,
      liquidations: adapters.liquidations,
      liquidationQueue: adapters.liquidationQueue,
      auctions: adapters.auctions,
      auctionQueue: adapters.auctionQueue,
      config: DEFAULT_RISK_CONFIG,
      telemetry: silentTelemetry,
      maxPositionsPerInvocation: MAX_PER_INVOCATION,
    };
  }

  use(positions: PositionRepository): this {
    this.#deps = { ...this.#deps, positions };
    return this;
  }

  /** A market's first print waits for a second that agrees (domain/tick.ts): sends that first print. */
  async openMarket(mark: PriceE8): Promise<void> {
    const outcome = await handleTick(this.#next(mark), this.#deps, this.#now);
    if (outcome.status !== 'rejected' || outcome.reason !== 'tick/unconfirmed')
      throw new Error(`bench/market-not-new: ${JSON.stringify(outcome)}`);
  }

  #next(mark: PriceE8) {
    this.#sequence += 1;
    this.#now += 1000;
    return {
      symbol: BENCH_SYMBOL,
      markPrice: mark,
      timestampMs: this.#now,
      sequence: this.#sequence,
      source: 'bench',
    };
  }

  /** One tick; returns the number of liquidations it started. */
  async tick(mark: PriceE8): Promise<number> {
    const tick = this.#next(mark);
    let outcome = await handleTick(tick, this.#deps, this.#now);
    if (outcome.status !== 'accepted') throw new Error(`bench/tick-rejected: ${outcome.reason}`);
    let started = outcome.enqueued;
    for (let segment = 1; outcome.status === 'accepted' && outcome.needsContinuation; segment++) {
      outcome = await handleTick(tick, this.#deps, this.#now, segment);
      if (outcome.status === 'accepted') started += outcome.enqueued;
    }
    return started;
  }

  /** Re-opens the positions the last tick started liquidating, so the next crossing tick finds them again. */
  async undoLastTick(): Promise<void> {
    const { liquidations, positions, liquidationQueue } = this.adapters;
    for (const l of await liquidations.listByTick(tickKeyOf(BENCH_SYMBOL, this.#sequence))) {
      const p = positions.peek(l.positionId);
      if (p?.state === 'LIQUIDATING')
        await positions.replace({ ...p, state: 'OPEN', version: p.version + 1 }, p.version);
    }
    for (;;) {
      const messages = await liquidationQueue.receive(10, 60);
      if (messages.length === 0) break;
      for (const m of messages) await liquidationQueue.delete(m.receiptHandle);
    }
  }
}

/** Median ms of the measured falling tick, with a resting tick (and the undo) outside the timing. */
async function msPerTick(
  driver: TickDriver,
  book: BenchBook,
  crossed: number,
  budgetMs: number,
): Promise<number> {
  const resting = restingMark(book);
  const mark = markCrossing(book, crossed);
  const samples: number[] = [];
  // Warm-up (JIT, caches) for a quarter of the budget and at least two ticks, then measure.
  const warmUntil = performance.now() + budgetMs / 4;
  let warm = 0;
  let deadline = Number.POSITIVE_INFINITY;
  for (;;) {
    await driver.tick(resting);
    const { ms, value: started } = await timeAsync(() => driver.tick(mark));
    if (started !== crossed)
      throw new Error(`bench/crossed-mismatch: started ${started}, expected ${crossed}`);
    if (crossed > 0) await driver.undoLastTick();
    if (deadline === Number.POSITIVE_INFINITY) {
      warm += 1;
      if (warm >= 2 && performance.now() >= warmUntil) deadline = performance.now() + budgetMs;
      continue;
    }
    samples.push(ms);
    const enough = samples.length >= 5 && performance.now() > deadline;
    if (enough || samples.length >= 5000) break;
  }
  return median(samples);
}

export async function benchMarginCheck(options: MarginCheckOptions): Promise<MarginCheckRow[]> {
  const rows: MarginCheckRow[] = [];
  for (const size of options.books) {
    const book = syntheticBook(size);
    const adapters = createEmbeddedAdapters();
    adapters.positions.createMany(book.positions);
    const driver = new TickDriver(adapters);
    await driver.openMarket(restingMark(book));
    const scan = new ScanningPositions(adapters.positions);
    for (const crossed of options.crossed) {
      if (crossed > book.longPrices.length) continue;
      const indexMsPerTick = await msPerTick(driver.use(adapters.positions), book, crossed, options.budgetMs);
      const scanMsPerTick = await msPerTick(driver.use(scan), book, crossed, options.budgetMs);
      const row = {
        positions: size,
        crossed,
        indexMsPerTick,
        scanMsPerTick,
        ratio: scanMsPerTick / indexMsPerTick,
      };
      options.log?.(
        `margin check ${size} positions, ${crossed} crossed: index ${indexMsPerTick.toFixed(4)} ms, scan ${scanMsPerTick.toFixed(2)} ms, x${row.ratio.toFixed(0)}`,
      );
      rows.push(row);
    }
  }
  return rows;
}

export interface EvaluationOptions {
  readonly positions: number;
  /** Length of one measured run, ms. */
  readonly runMs: number;
  readonly runs: number;
}

export interface EvaluationResult {
  /** Best run (the least disturbed on a shared machine). */
  readonly best: number;
  readonly median: number;
  readonly runs: readonly number[];
}

/**
 * Exact evaluations (isLiquidatable) per second on one core, over a mixed book at a mark near the crowd. The
 * default working set (10k positions) stays in cache, so this is the arithmetic's rate; a pass over a large book is
 * bounded by memory instead, which the scan column of the margin-check table shows.
 */
export function benchEvaluations(options: EvaluationOptions): EvaluationResult {
  const book = syntheticBook(options.positions);
  const positions = book.positions;
  const m = marketConfig(DEFAULT_RISK_CONFIG, BENCH_SYMBOL).maintenanceMargin;
  const mark = markCrossing(book, Math.floor(book.longPrices.length / 2));
  let hits = 0;
  const pass = (): void => {
    for (let i = 0; i < positions.length; i++) if (isLiquidatable(positions[i]!, mark, m)) hits += 1;
  };
  pass(); // warm-up
  const rates: number[] = [];
  for (let run = 0; run < options.runs; run++) {
    let evaluations = 0;
    const start = performance.now();
    let elapsed = 0;
    do {
      pass();
      evaluations += positions.length;
      elapsed = performance.now() - start;
    } while (elapsed < options.runMs);
    rates.push((evaluations / elapsed) * 1000);
  }
  if (hits === 0) throw new Error('bench/no-hits: the mark crossed nothing');
  return { best: Math.max(...rates), median: median(rates), runs: rates };
}
