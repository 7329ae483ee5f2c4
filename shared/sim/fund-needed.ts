import type { QuoteE6 } from '../domain/units.ts';

/**
 * Fund sizing: the smallest starting insurance fund, on a grid of `resolution`, for which a strategy leaves no bad
 * debt uncovered, and the smallest for which it leaves no bad debt at all (the fund pays every shortfall: ADL covers
 * no deficit). Each probe is a whole simulation at one starting fund; this module only chooses the funds.
 *
 * Why a search can be short. Where the fund's balance changes nothing but what it pays (market-only: no ADL, no layer
 * reads the balance), the balance is a walk of fees in and shortfalls out held at the floor, and what the fund
 * refuses is exactly max(0, F* - F): linear in the start F. So the deficit a run leaves (from below) or the margin its
 * balance kept above the floor (from above, when it refused nothing) names F* at once, and one probe a step under
 * confirms it. Where refusals go to ADL (waterfall, no-auction), ADL closes profitable positions and the book of later
 * liquidations changes with the fund, so neither linearity nor monotonicity is guaranteed: those guesses are tried,
 * every other probe halves the bracket (a bisection), and the runs are checked against each other afterwards
 * (`monotone`). Whatever the path, the answer's own run left nothing and the run one step under it left some.
 */

/** What one simulation at a starting fund left. */
export interface FundProbe {
  readonly fund: QuoteE6;
  /** Shortfall the fund did not pay (covered by ADL or not). */
  readonly badDebt: QuoteE6;
  /** The part of badDebt ADL did not cover either. */
  readonly badDebtUncovered: QuoteE6;
  /** The fund's lowest balance over the run. */
  readonly fundMin: QuoteE6;
}

export type FundTarget = 'noUncoveredBadDebt' | 'noBadDebt';
export const FUND_TARGETS: readonly FundTarget[] = ['noUncoveredBadDebt', 'noBadDebt'];

/** What a target asks to be zero. */
const deficit = (target: FundTarget, p: FundProbe): QuoteE6 =>
  target === 'noBadDebt' ? p.badDebt : p.badDebtUncovered;

export interface FundFigure {
  /** The smallest fund found (a multiple of the resolution); null when none was (`unreachable`). */
  readonly fund: QuoteE6 | null;
  /** True when `below` is one resolution under `fund` (or `fund` is 0): the figure is exact to the resolution. */
  readonly resolved: boolean;
  /** The run at `fund`. */
  readonly at?: FundProbe;
  /** The run at the largest fund below `fund` that left some (one resolution under it when resolved). */
  readonly below?: FundProbe;
  /** Why no fund was found: `draw-cap` (a run refused while its balance stayed above the floor), or `runs`. */
  readonly unreachable?: 'draw-cap' | 'runs';
}

export interface NotMonotone {
  readonly target: FundTarget;
  /** A smaller fund that left less than a larger one did. */
  readonly lower: FundProbe;
  readonly higher: FundProbe;
}

export interface FundNeeded {
  readonly resolution: QuoteE6;
  readonly figures: Readonly<Record<FundTarget, FundFigure>>;
  /** Every run, in the order they ran. */
  readonly runs: readonly FundProbe[];
  /** The first pair of runs per target where a larger fund left more (empty: monotone on every run). */
  readonly notMonotone: readonly NotMonotone[];
}

export interface FundSearchOptions {
  /** Grid of the answer, > 0 (1 quote unit: 1_000_000n). */
  readonly resolution: QuoteE6;
  /** The fund's floor (risk config): it never pays below it. */
  readonly floor: QuoteE6;
  /** The first fund tried (rounded up to the grid). */
  readonly start: QuoteE6;
  /** At most this many simulations (default MAX_FUND_RUNS). */
  readonly maxRuns?: number;
}

/**
 * Bounds the work: a grid of 1 unit over a fund of 10^9 takes 30 halvings per target, and the guesses at most as
 * many probes again; growing from the start fund doubles at most MAX_GROWTH times.
 */
export const MAX_FUND_RUNS = 80;
const MAX_GROWTH = 24;

export class FundSearchError extends Error {
  override readonly name = 'FundSearchError';
}

export async function findFundNeeded(
  probe: (fund: QuoteE6) => Promise<FundProbe>,
  options: FundSearchOptions,
): Promise<FundNeeded> {
  const { resolution, floor } = options;
  if (resolution <= 0n) throw new FundSearchError('fund-search/resolution: must be > 0');
  const maxRuns = options.maxRuns ?? MAX_FUND_RUNS;
  const up = (x: QuoteE6): QuoteE6 => (x <= 0n ? 0n : ((x + resolution - 1n) / resolution) * resolution);
  const runs: FundProbe[] = [];
  const cache = new Map<QuoteE6, FundProbe>();
  const canRun = (): boolean => runs.length < maxRuns;
  const run = async (fund: QuoteE6): Promise<FundProbe> => {
    const known = cache.get(fund);
    if (known) return known;
    const p = await probe(fund);
    if (p.fund !== fund) throw new FundSearchError(`fund-search/probe: asked ${fund}, got ${p.fund}`);
    cache.set(fund, p);
    runs.push(p);
    return p;
  };
  const sorted = (): FundProbe[] => [...cache.values()].sort((a, b) => (a.fund < b.fund ? -1 : 1));
  /** A run that refused nothing: the margin its balance kept above the floor could have been left out. */
  const fromAbove = (p: FundProbe): QuoteE6 | undefined =>
    p.badDebt === 0n && p.fundMin > floor ? up(p.fund - (p.fundMin - floor)) : undefined;

  const search = async (target: FundTarget): Promise<FundFigure> => {
    const ok = (p: FundProbe): boolean => deficit(target, p) === 0n;
    // An upper end: the smallest fund that left nothing, else grow from the largest tried.
    let hi = sorted().find(ok);
    if (!hi) {
      let p = sorted().at(-1) ?? (canRun() ? await run(up(options.start)) : undefined);
      for (let grown = 0; p && !ok(p); grown++) {
        // Refused while the balance stayed above its floor: the draw cap refused it, which no bigger fund changes.
        if (p.fundMin > floor) return { fund: null, resolved: false, below: p, unreachable: 'draw-cap' };
        if (grown >= MAX_GROWTH || !canRun()) break;
        // What it left, added (exact where the balance is all that differs), then doubling if that was not enough.
        const next = up(p.fund + deficit(target, p));
        p = await run(grown === 0 ? next : next * 2n);
      }
      if (!p || !ok(p))
        return { fund: null, resolved: false, ...(p ? { below: p } : {}), unreachable: 'runs' };
      hi = p;
    }
    // A lower end: the largest fund under hi that left some; else the guess from above, then nothing at all.
    const lowest = (): FundProbe | undefined => sorted().findLast((p) => p.fund < hi!.fund && !ok(p));
    let lo = lowest();
    if (!lo) {
      const guess = fromAbove(hi);
      if (guess !== undefined && guess < hi.fund && canRun()) {
        const p = await run(guess);
        if (ok(p)) hi = p;
        lo = lowest();
        // Exact where the balance is all that differs: one step under it is usually the lower end.
        if (!lo && ok(p) && p.fund > 0n && canRun()) {
          const under = await run(p.fund - resolution);
          if (ok(under)) hi = under;
          else lo = under;
        }
      }
    }
    if (!lo && hi.fund > 0n && canRun()) {
      const zero = await run(0n);
      if (ok(zero)) return { fund: 0n, resolved: true, at: zero };
      lo = zero;
    }
    if (!lo) return { fund: hi.fund, resolved: hi.fund === 0n, at: hi };
    // Guesses in between (what lo left, added; hi's margin above the floor, taken off; a guess at or past hi is tried
    // one step under it), two at most between halvings and none after one that left some: at most three probes per
    // halving of the bracket.
    let streak = 0;
    while (hi.fund - lo.fund > resolution && canRun()) {
      let next: QuoteE6 | undefined;
      if (streak < 2) {
        for (const g of [up(lo.fund + deficit(target, lo)), fromAbove(hi)]) {
          const at = g === undefined ? undefined : g >= hi.fund ? hi.fund - resolution : g;
          if (at !== undefined && at > lo.fund && at < hi.fund) {
            next = at;
            break;
          }
        }
      }
      const guess = next !== undefined;
      next ??= lo.fund + ((hi.fund - lo.fund) / resolution / 2n) * resolution;
      const p = await run(next);
      if (ok(p)) hi = p;
      else lo = p;
      streak = !guess ? 0 : ok(p) ? streak + 1 : 2;
    }
    return { fund: hi.fund, resolved: hi.fund - lo.fund <= resolution, at: hi, below: lo };
  };

  // No bad debt at all first: its answer is an upper end of the other's (nothing refused, nothing uncovered).
  const noBadDebt = await search('noBadDebt');
  const noUncoveredBadDebt = await search('noUncoveredBadDebt');

  const notMonotone: NotMonotone[] = [];
  for (const target of FUND_TARGETS) {
    const all = sorted();
    outer: for (const [i, lower] of all.entries()) {
      for (const higher of all.slice(i + 1)) {
        if (deficit(target, higher) > deficit(target, lower)) {
          notMonotone.push({ target, lower, higher });
          break outer;
        }
      }
    }
  }
  return { resolution, figures: { noUncoveredBadDebt, noBadDebt }, runs, notMonotone };
}
