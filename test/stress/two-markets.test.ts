import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DEFAULT_RISK_CONFIG_INPUT, parseRiskConfig } from '../../shared/domain/config.ts';
import { isTerminal } from '../../shared/domain/model.ts';
import { maxBig, minBig, parseBase, parsePpm, parsePrice, parseQuote } from '../../shared/domain/units.ts';
import type {
  AuctionRecord,
  LiquidationRecord,
  PositionRecord,
  ProviderRecord,
} from '../../shared/ports/index.ts';
import { INSURANCE_ACCOUNT } from '../../shared/services/context.ts';
import { recordFigures, startedAuctionId } from '../support/invariants.ts';
import { createPipeline, syntheticBook } from '../support/pipeline.ts';

/**
 * Two markets crashing at once (session 40): ETH and BTC on the real 1-minute closes of 12-13 March 2020 (leg 2,
 * the same minutes in both files), their ticks interleaved, over one insurance fund with a floor and a draw cap
 * and providers that quote both markets with capital shared across them. Every invariant of checkInvariants
 * holds, and so do the per-market ones: nothing of one market lands on the other.
 */

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SYMS = ['ETH-USD', 'BTC-USD'] as const;
type Sym = (typeof SYMS)[number];
type Leg = 'leg1' | 'leg2';
const fileOf = (symbol: Sym, leg: Leg): string =>
  `${symbol === 'ETH-USD' ? 'eth' : 'btc'}-usdt-perp-2020-03-12-${leg}-1m.csv`;

/** The closes of a 1-minute file (the mark: eth leg 2's 323.00 high stays out). */
function closes(symbol: Sym, leg: Leg): { ms: number; close: string }[] {
  const file = path.resolve(repoRoot, '..', 'shared', 'data', fileOf(symbol, leg));
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => {
      const [ms, , , , , close] = line.split(',');
      return { ms: Number(ms), close: close! };
    });
}

const CONFIG = parseRiskConfig({
  ...DEFAULT_RISK_CONFIG_INPUT,
  // A fund both markets draw on: its floor and its cap per hour bind within the crash, so ADL takes the rest.
  insurance: { drawCapPerWindow: '60000', windowSeconds: 3600, floor: '20000' },
});

function provider(
  id: string,
  capital: string,
  discount: string,
  lots: Partial<Record<Sym, string>>,
): ProviderRecord {
  const symbols = Object.keys(lots) as Sym[];
  const [first, ...others] = symbols;
  return {
    id,
    capital: parseQuote(capital),
    maxDiscountPpm: parsePpm(discount),
    maxLot: parseBase(lots[first!]!),
    ...(others.length > 0
      ? { maxLotBySymbol: Object.fromEntries(others.map((s) => [s, parseBase(lots[s]!)])) }
      : {}),
    symbols,
    version: 0,
  };
}

async function crashBoth(leg: Leg) {
  // The minutes both files hold (leg 1's ETH file covers part of BTC's), each market's close at each.
  const both = SYMS.map((symbol) => new Map(closes(symbol, leg).map((r) => [r.ms, r.close] as const)));
  const minutes = [...both[0]!.keys()].filter((ms) => both[1]!.has(ms));
  const series = Object.fromEntries(
    SYMS.map((symbol, i) => [symbol, minutes.map((ms) => ({ ms, close: both[i]!.get(ms)! }))]),
  ) as Record<Sym, { ms: number; close: string }[]>;
  const rows = series['ETH-USD'];
  expect(rows.length).toBeGreaterThan(140);
  const p = createPipeline({
    config: CONFIG,
    marks: 'as-configured',
    startMs: rows[0]!.ms - 120_000,
    // A thinner book than the default: the market leaves lots to the auctions, the fund and ADL in both markets.
    venue: { defaults: { poolQuoteReserve: 4_000_000 } },
  });
  const sequences = new Map<Sym, number>();
  const marks = new Map<Sym, { min: bigint; max: bigint }>();
  const tick = async (symbol: Sym, price: string) => {
    const sequence = (sequences.get(symbol) ?? 0) + 1;
    sequences.set(symbol, sequence);
    const markPrice = parsePrice(price);
    const outcome = await p.deliverTick({
      symbol,
      markPrice,
      timestampMs: p.clock.nowMs(),
      sequence,
      source: 'test',
    });
    if (outcome.status === 'accepted') {
      const range = marks.get(symbol) ?? { min: markPrice, max: markPrice };
      marks.set(symbol, {
        min: minBig(markPrice, range.min),
        max: maxBig(markPrice, range.max),
      });
    }
    return outcome;
  };
  // Each market's first print waits for a second that agrees.
  for (const symbol of SYMS) await tick(symbol, series[symbol][0]!.close);
  p.clock.advance(6_000);
  for (const symbol of SYMS)
    expect(await tick(symbol, series[symbol][0]!.close)).toMatchObject({ status: 'accepted' });

  for (const symbol of SYMS) {
    p.seed(
      syntheticBook(
        {
          count: 500,
          seed: symbol === 'ETH-USD' ? 40 : 41,
          price: series[symbol][0]!.close,
          symbol,
          idPrefix: symbol === 'ETH-USD' ? 'e' : 'b',
          maxNotional: 150_000,
        },
        CONFIG,
      ),
    );
  }
  await p.fund('250000');
  // Two providers quote both markets (lots in each market's base units), one quotes each market alone.
  for (const record of [
    provider('lp-both-a', '300000', '0.015', { 'ETH-USD': '300', 'BTC-USD': '6' }),
    provider('lp-both-b', '200000', '0.05', { 'BTC-USD': '4', 'ETH-USD': '200' }),
    provider('lp-eth', '100000', '0.02', { 'ETH-USD': '100' }),
    provider('lp-btc', '100000', '0.02', { 'BTC-USD': '3' }),
  ])
    await p.adapters.providers.put(record, undefined);

  let rejected = 0;
  for (const [i, row] of rows.entries()) {
    // Queued work runs until the minute, as it would between live ticks; then both markets tick at once, in
    // turns which first.
    await p.runUntil(row.ms);
    const order = i % 2 === 0 ? SYMS : [...SYMS].reverse();
    for (const symbol of order) {
      const outcome = await tick(symbol, series[symbol][i]!.close);
      if (outcome.status !== 'accepted') rejected += 1;
    }
  }
  // The feed holds the last prices once a minute (marks go stale otherwise) until no work is left.
  for (let minute = 0; minute < 24 * 60 && !(await p.idle()); minute++) {
    await p.runUntil(p.clock.nowMs() + 60_000);
    for (const symbol of SYMS) await tick(symbol, series[symbol].at(-1)!.close);
  }
  return { p, marks, rejected };
}

describe('two markets crashing at once (ETH and BTC, 12-13 March 2020)', () => {
  it.each(['leg1', 'leg2'] as const)(
    '%s: keeps every invariant, and each market its own positions, auctions, providers, orders and marks',
    async (leg) => {
      const { p, marks, rejected } = await crashBoth(leg);
      const report = await p.check();
      expect(p.errors).toEqual([]);
      expect(rejected).toBe(0);

      const liquidations = p.adapters.liquidations.all();
      const auctions = new Map(p.adapters.auctions.all().map((a) => [a.id, a] as const));
      const byId = new Map(liquidations.map((l) => [l.id, l] as const));
      const problems: string[] = [];
      const within = (symbol: string, price: bigint, what: string) => {
        const range = marks.get(symbol as Sym);
        // A price of the other market is 30 to 50 times away: half to twice the market's range is generous.
        if (!range || price * 2n < range.min || price > range.max * 2n)
          problems.push(`${what}: ${price} outside ${symbol}'s marks ${range?.min}..${range?.max}`);
      };
      const perMarket = new Map<string, Record<string, number>>();
      for (const l of liquidations) {
        const counts = perMarket.get(l.symbol) ?? {};
        counts[l.state] = (counts[l.state] ?? 0) + 1;
        perMarket.set(l.symbol, counts);
        const position = await p.adapters.positions.get(l.positionId);
        if (position?.symbol !== l.symbol) problems.push(`${l.id}: position of ${position?.symbol}`);
        within(l.symbol, l.triggerMark, `${l.id} trigger`);
        if (l.context) within(l.symbol, l.context.executionMark, `${l.id} execution mark`);
        for (const f of l.marketFills) within(l.symbol, f.price, `${l.id} market fill`);
        const auctionId = startedAuctionId(l);
        const auction = auctionId ? auctions.get(auctionId) : undefined;
        if (auction && auction.symbol !== l.symbol) problems.push(`${l.id}: auction of ${auction.symbol}`);
      }
      for (const a of auctions.values()) {
        const l = byId.get(a.liquidationId);
        if (l?.symbol !== a.symbol) problems.push(`auction ${a.id} of ${a.symbol} for ${l?.symbol}`);
        within(a.symbol, a.top, `auction ${a.id} top`);
        for (const f of a.fills) within(a.symbol, f.price, `auction ${a.id} fill`);
      }
      // Every atomic write: a settlement's positions (its own and ADL's counterparties) are of its market, the other
      // side for counterparties; an auction's providers quote its market; no provider's capital goes below 0.
      for (const group of p.observer.groups) {
        const settled = group.writes
          .filter((w) => w.kind === 'liquidation')
          .map((w) => w.after as LiquidationRecord)
          .find((l) => isTerminal(l.state));
        const auction = group.writes.find((w) => w.kind === 'auction')?.after as AuctionRecord | undefined;
        for (const w of group.writes) {
          if (w.kind === 'position' && settled && w.before) {
            const position = w.after as PositionRecord;
            if (position.symbol !== settled.symbol)
              problems.push(`${settled.id} (${settled.symbol}) wrote ${position.id} of ${position.symbol}`);
            if (position.id !== settled.positionId && position.side === settled.side)
              problems.push(`${settled.id} deleveraged ${position.id} of its own side`);
          }
          if (w.kind === 'provider') {
            const record = w.after as ProviderRecord;
            if (record.capital < 0n) problems.push(`${record.id} capital ${record.capital}`);
            if (auction && !record.symbols.includes(auction.symbol))
              problems.push(`${record.id} filled ${auction.symbol}, quotes ${record.symbols.join(',')}`);
          }
        }
      }
      for (const log of p.orders.orders.values()) {
        const l = byId.get(log.order.clientOrderId.replace(/:(market|last-resort:\d+)$/, ''));
        if (!l) problems.push(`order ${log.order.clientOrderId} of no liquidation`);
        within(log.order.symbol, log.order.limitPrice, `order ${log.order.clientOrderId} limit`);
        if (log.order.reference)
          within(log.order.symbol, log.order.reference.mark, `order ${log.order.clientOrderId} mark`);
        if (l && l.symbol !== log.order.symbol)
          problems.push(`order ${log.order.clientOrderId} on ${log.order.symbol}`);
      }
      for (const symbol of SYMS) {
        const market = await p.adapters.markets.get(symbol);
        for (const wake of Object.values(market?.wakeMarks ?? {}))
          if (wake !== undefined) within(symbol, wake, `${symbol} wake mark`);
      }

      // Per market: liquidations by state, fees and what the fund paid (the journal, by the liquidation it names).
      const fund = new Map<string, { fees: bigint; paid: bigint }>();
      for (const e of await p.adapters.ledger.journal(INSURANCE_ACCOUNT)) {
        const l = byId.get(e.reference);
        if (!l) continue;
        const sums = fund.get(l.symbol) ?? { fees: 0n, paid: 0n };
        if (e.kind === 'shortfall-payout') sums.paid -= e.amount;
        else sums.fees += e.amount;
        fund.set(l.symbol, sums);
      }
      const filledIn = new Map<string, Set<string>>();
      for (const a of auctions.values())
        for (const f of a.fills)
          filledIn.set(f.providerId, (filledIn.get(f.providerId) ?? new Set()).add(a.symbol));
      recordFigures(`two-markets-${leg}`, {
        figures: report.figures,
        perMarket: Object.fromEntries(perMarket),
        fund: Object.fromEntries(fund),
        refusals: {
          drawCap: p.telemetry.total('InsuranceFundRefusals:insurance/draw-cap'),
          floor: p.telemetry.total('InsuranceFundRefusals:insurance/floor'),
        },
      });

      expect(problems).toEqual([]);
      expect(report.violations).toEqual([]);
      // The scenario does what it is for: both markets crash through the market, auctions, the fund and ADL; the
      // fund's cap and floor both refuse; the providers quoting both markets spend their capital in one market's
      // auctions (ETH's, in both legs) while the other's plan on it.
      for (const symbol of SYMS) {
        for (const state of ['SETTLED_MARKET', 'SETTLED_AUCTION', 'SETTLED_INSURANCE', 'SETTLED_ADL'])
          expect(perMarket.get(symbol)?.[state], `${symbol} ${state}`).toBeGreaterThan(0);
        expect(fund.get(symbol)?.paid, `${symbol} paid by the fund`).toBeGreaterThan(0n);
      }
      expect(p.telemetry.total('InsuranceFundRefusals:insurance/draw-cap')).toBeGreaterThan(0);
      expect(p.telemetry.total('InsuranceFundRefusals:insurance/floor')).toBeGreaterThan(0);
      for (const shared of ['lp-both-a', 'lp-both-b']) expect(filledIn.get(shared)?.size).toBeGreaterThan(0);
    },
    600_000,
  );
});
