import type { PricePoint } from '../prices/parse.ts';
import { Rng } from './random.ts';

/**
 * The built-in crash: ETH/USD on 12-13 March 2020 ("Black Thursday"), about 195 to about 90 USD in two legs.
 *
 * The path is pinned to rounded anchor prices taken from published market data (the 10-minute CoinAPI spot
 * series and Binance's 1-minute ETHUSDT perpetual candles of those days, see ../shared/data/README.md):
 * a slow slide through the night and morning of the 12th, leg 1 from about 167 at 10:10 to about 120 at
 * 11:01, a partial rebound, then leg 2 from about 132 at 22:15 to about 105 at 23:35 and the low near 88
 * at 02:16 on the 13th. Between two anchors each 1-minute close follows a Brownian bridge in log price,
 * so every anchor is hit exactly and the noise between them is seeded:
 *
 *   log p(t) = log a + (t / n) (log b - log a) + sigma (W(t) - (t / n) W(n)),   t = 0..n minutes
 *   sigma    = BASE_VOLATILITY + SLOPE_VOLATILITY * |log b - log a| / n      (per minute)
 *
 * so a steep segment is also a noisy one, as in the real candles. Prices are rounded to whole cents.
 */

export interface Anchor {
  /** ISO 8601 UTC, on a whole minute. */
  readonly at: string;
  /** USD. */
  readonly price: number;
}

export const ETH_MARCH_2020_ANCHORS: readonly Anchor[] = [
  { at: '2020-03-12T00:00:00Z', price: 195 },
  { at: '2020-03-12T02:00:00Z', price: 186 },
  { at: '2020-03-12T04:00:00Z', price: 181 },
  { at: '2020-03-12T06:10:00Z', price: 180.5 },
  { at: '2020-03-12T06:40:00Z', price: 173 },
  { at: '2020-03-12T08:00:00Z', price: 169 },
  { at: '2020-03-12T10:10:00Z', price: 167.5 },
  { at: '2020-03-12T10:30:00Z', price: 161 },
  { at: '2020-03-12T10:45:00Z', price: 144 },
  { at: '2020-03-12T11:01:00Z', price: 120 },
  { at: '2020-03-12T11:20:00Z', price: 139 },
  { at: '2020-03-12T13:30:00Z', price: 131 },
  { at: '2020-03-12T14:30:00Z', price: 143 },
  { at: '2020-03-12T20:00:00Z', price: 137 },
  { at: '2020-03-12T21:30:00Z', price: 127 },
  { at: '2020-03-12T22:15:00Z', price: 132.5 },
  { at: '2020-03-12T23:05:00Z', price: 125 },
  { at: '2020-03-12T23:35:00Z', price: 105 },
  { at: '2020-03-13T00:05:00Z', price: 111 },
  { at: '2020-03-13T01:45:00Z', price: 105 },
  { at: '2020-03-13T02:05:00Z', price: 96 },
  { at: '2020-03-13T02:16:00Z', price: 88 },
  { at: '2020-03-13T02:25:00Z', price: 90 },
  { at: '2020-03-13T02:40:00Z', price: 103 },
];

/** Calm per-minute log volatility (about 0.12 %). */
export const BASE_VOLATILITY = 0.0012;
/** Extra volatility per unit of per-minute drift: a 1 %/min slide adds 0.5 %/min of noise. */
export const SLOPE_VOLATILITY = 0.5;

const MINUTE_MS = 60_000;

export class ScenarioError extends Error {
  override readonly name = 'ScenarioError';
}

export interface Scenario {
  readonly name: string;
  readonly symbol: string;
  readonly description: string;
  readonly points: readonly PricePoint[];
}

/** 1-minute closes through `anchors` with seeded Brownian-bridge noise (see the module comment). */
export function bridgePath(anchors: readonly Anchor[], seed: number): PricePoint[] {
  if (anchors.length < 2) throw new ScenarioError('scenario/too-few-anchors: at least two');
  const rng = new Rng(seed).fork('scenario');
  const times = anchors.map((a) => {
    const ms = Date.parse(a.at);
    if (!Number.isSafeInteger(ms) || ms % MINUTE_MS !== 0) {
      throw new ScenarioError(`scenario/bad-anchor: ${a.at} is not a whole minute`);
    }
    if (!(a.price > 0)) throw new ScenarioError(`scenario/bad-anchor: price ${a.price} at ${a.at}`);
    return ms;
  });
  const points: PricePoint[] = [{ timestampMs: times[0]!, price: cents(anchors[0]!.price) }];
  for (let k = 1; k < anchors.length; k++) {
    const n = (times[k]! - times[k - 1]!) / MINUTE_MS;
    if (n < 1)
      throw new ScenarioError(`scenario/bad-anchor: ${anchors[k]!.at} is not after the previous anchor`);
    const from = Math.log(anchors[k - 1]!.price);
    const to = Math.log(anchors[k]!.price);
    const sigma = BASE_VOLATILITY + (SLOPE_VOLATILITY * Math.abs(to - from)) / n;
    const walk = [0];
    for (let t = 1; t <= n; t++) walk.push(walk[t - 1]! + sigma * rng.normal());
    const end = walk[n]!;
    for (let t = 1; t <= n; t++) {
      const share = t / n;
      const logPrice = t === n ? to : from + share * (to - from) + walk[t]! - share * end;
      points.push({ timestampMs: times[k - 1]! + t * MINUTE_MS, price: cents(Math.exp(logPrice)) });
    }
  }
  return points;
}

/** USD (float, from the path model) to PriceE8 rounded to whole cents: exact from here on. */
function cents(usd: number): bigint {
  const c = Math.max(1, Math.round(usd * 100));
  return BigInt(c) * 1_000_000n;
}

/** The built-in scenario: ETH-USD, 12 March 2020 00:00 to 13 March 02:40 UTC, 1-minute ticks. */
export function builtInScenario(seed: number): Scenario {
  return {
    name: 'eth-2020-03-12',
    symbol: 'ETH-USD',
    description:
      'ETH/USD 12-13 March 2020, about 195 to about 90 USD in two legs (anchored path, seeded noise)',
    points: bridgePath(ETH_MARCH_2020_ANCHORS, seed),
  };
}
