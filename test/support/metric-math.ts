/**
 * The part of CloudWatch metric math the alarms use (IF, FILL, `+`, comparisons), evaluated as AWS's "Use metric
 * math" page documents it (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html), and
 * an alarm's choice of data points as "How alarm state is evaluated when data is missing" documents it. A series holds
 * a value only at the timestamps it has data for:
 * - `FILL(m, s)` has one at every timestamp of the query's range, so in an alarm the latest periods not reported yet
 *   too (the page's warning: "the latest data point for the metric to always be the FILL value");
 * - `a + b` of two series has a point where either has one, a missing value read as 0 (the page: "Missing values in a
 *   time series are treated as 0"), and none where neither has: nothing there to add; a series plus a scalar has
 *   the series' points;
 * - a series compared with a scalar has a point where the series has one (1 or 0); two series compare over the union
 *   of their timestamps, a missing value read as 0;
 * - `IF(cond, a, b)` has a point where `cond` has one: `a` where it is true (0 where `a` is a series without that
 *   point), `b` where false (dropped where `b` is a series without it);
 * - `MAX([a, b, ...])` of an array of series (its function table: one series, each value the largest of theirs at its
 *   time) has a point where any has one, the largest of those that do.
 * Where the page leaves a choice open, a Reading names each way it can be read; those above are AS_WRITTEN, and the
 * alarm tests run every one (READINGS), so an alarm is shown right under each, not only under the one picked here
 * (review45-fill-readings).
 */
export type Series = ReadonlyMap<number, number>;
type Value = number | Series;

/** The ways the metric math page can be read where its words and examples leave it open. */
export interface Reading {
  /**
   * Which timestamps `a + b` has. "Missing values in a time series are treated as 0" (the arithmetic table) says
   * nothing of which, and no example adds a series with a missing value: where either term has a point ('any'),
   * every timestamp of the range ('range': a missing value is a 0 everywhere, as FILL(a, 0) + FILL(b, 0)), or, against
   * that sentence, only where every term has one ('every').
   */
  readonly sum: 'any' | 'range' | 'every';
  /**
   * Which timestamps a series compared with a scalar has: the series' ('points'), or, a missing value read as 0 as
   * between two series, every timestamp of the range ('range'). The page's only example has no missing value.
   */
  readonly compare: 'points' | 'range';
  /**
   * `IF(cond, a, s)`, `a` a series and `s` a scalar, where `cond` has no point and `a` has one: none ('condition', the
   * text: "For each data point of metric1"), or `s` ('either', the page's own table for IF(metric1, metric2,
   * scalar3): [30, 0, 5, 5, 5], a 5 where metric1 has no point and metric2 has 30).
   */
  readonly ifScalarElse: 'condition' | 'either';
  /**
   * Which timestamps `MAX([a, b])` has. Its entry says only that each value is the maximum of the series' values at
   * that time, not what a missing one is: where any has a point, the largest of those ('any'), every timestamp of the
   * range, a missing value read as 0 as in arithmetic ('range'), or only where every series has one ('every')
   * (dlq45-depth-gauge).
   */
  readonly max: 'any' | 'range' | 'every';
}

/** The choices the evaluator made before review45-fill-readings. */
export const AS_WRITTEN: Reading = { sum: 'any', compare: 'points', ifScalarElse: 'condition', max: 'any' };

/** Every Reading. */
export const READINGS: readonly Reading[] = (['any', 'range', 'every'] as const).flatMap((sum) =>
  (['points', 'range'] as const).flatMap((compare) =>
    (['condition', 'either'] as const).flatMap((ifScalarElse) =>
      (['any', 'range', 'every'] as const).map((max) => ({ sum, compare, ifScalarElse, max })),
    ),
  ),
);

/** A reading's name, for assertion messages. */
export const readingName = (r: Reading): string =>
  `sum ${r.sum}, compare ${r.compare}, IF else ${r.ifScalarElse}, MAX ${r.max}`;

const TOKEN = /\s*(==|!=|<=|>=|<|>|\(|\)|\[|\]|,|\+|-?\d+(?:\.\d+)?|[A-Z_]+(?=\s*\()|[a-z][A-Za-z0-9_]*)/y;
const COMPARE: Record<string, (a: number, b: number) => boolean> = {
  '==': (a, b) => a === b,
  '!=': (a, b) => a !== b,
  '<=': (a, b) => a <= b,
  '>=': (a, b) => a >= b,
  '<': (a, b) => a < b,
  '>': (a, b) => a > b,
};

function tokens(expression: string): string[] {
  const out: string[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < expression.trimEnd().length) {
    const at = TOKEN.lastIndex;
    const m = TOKEN.exec(expression);
    if (!m) throw new Error(`metric math: cannot read "${expression.slice(at)}"`);
    out.push(m[1]!);
  }
  return out;
}

/** The series `expression` gives over `range` (timestamps, ascending), `metrics` its ids' data. */
export function evaluate(
  expression: string,
  metrics: Readonly<Record<string, Series>>,
  range: readonly number[],
  reading: Reading = AS_WRITTEN,
): Series {
  const ts = tokens(expression);
  let i = 0;
  const take = (want?: string): string => {
    const t = ts[i++];
    if (t === undefined || (want !== undefined && t !== want))
      throw new Error(`metric math: expected ${want ?? 'more'} in "${expression}"`);
    return t;
  };
  const inRange = new Set(range);
  /** A series with a 0 at every timestamp of the range it has no point at. */
  const zeroFilled = (a: Series): Series => new Map(range.map((t) => [t, a.get(t) ?? 0]));
  const compare = (op: string, a: Value, b: Value): Value => {
    const f = COMPARE[op]!;
    const bit = (x: number, y: number) => (f(x, y) ? 1 : 0);
    if (typeof a === 'number' && typeof b === 'number') return bit(a, b);
    const series = (s: Series) => (reading.compare === 'range' ? zeroFilled(s) : s);
    if (typeof a === 'number') return new Map([...series(b as Series)].map(([t, v]) => [t, bit(a, v)]));
    if (typeof b === 'number') return new Map([...series(a)].map(([t, v]) => [t, bit(v, b)]));
    const times = [...new Set([...a.keys(), ...b.keys()])].sort((x, y) => x - y);
    return new Map(times.map((t) => [t, bit(a.get(t) ?? 0, b.get(t) ?? 0)]));
  };
  const add = (a: Value, b: Value): Value => {
    if (typeof a === 'number' && typeof b === 'number') return a + b;
    if (typeof a === 'number') return add(b, a);
    const x = reading.sum === 'range' ? zeroFilled(a) : a;
    if (typeof b === 'number') return new Map([...x].map(([t, v]) => [t, v + b]));
    const y = reading.sum === 'range' ? zeroFilled(b) : b;
    const keys = [...x.keys(), ...y.keys()];
    const times = [...new Set(reading.sum === 'every' ? keys.filter((t) => x.has(t) && y.has(t)) : keys)];
    times.sort((p, q) => p - q);
    return new Map(times.map((t) => [t, (x.get(t) ?? 0) + (y.get(t) ?? 0)]));
  };
  const call = (name: string, args: Value[]): Value => {
    if (name === 'FILL') {
      const [m, s] = args;
      if (m === undefined || typeof m === 'number' || typeof s !== 'number')
        throw new Error('metric math: FILL(series, scalar) only');
      return new Map(range.map((t) => [t, m.get(t) ?? s]));
    }
    if (name === 'IF') {
      const [cond, a, b] = args as [Value, Value, Value | undefined];
      if (typeof cond === 'number') return cond !== 0 ? a : (b ?? new Map());
      const out = new Map<number, number>();
      // Under 'either', where `a` has a point and `cond` none, the condition is read as a missing 0: false.
      const times =
        reading.ifScalarElse === 'either' && typeof a !== 'number' && typeof b === 'number'
          ? [...new Set([...cond.keys(), ...a.keys()])].sort((x, y) => x - y)
          : [...cond.keys()];
      for (const t of times) {
        const c = cond.get(t) ?? 0;
        if (c !== 0) out.set(t, typeof a === 'number' ? a : (a.get(t) ?? 0));
        else if (typeof b === 'number') out.set(t, b);
        else if (b?.has(t)) out.set(t, b.get(t)!);
      }
      return out;
    }
    if (name === 'MAX') {
      if (args.some((a) => typeof a === 'number')) throw new Error('metric math: MAX([series, ...]) only');
      const series = (args as Series[]).map((m) => (reading.max === 'range' ? zeroFilled(m) : m));
      const keys = series.flatMap((m) => [...m.keys()]);
      const times = [
        ...new Set(reading.max === 'every' ? keys.filter((t) => series.every((m) => m.has(t))) : keys),
      ].sort((x, y) => x - y);
      return new Map(
        times.map((t) => [t, Math.max(...series.flatMap((m) => (m.has(t) ? [m.get(t)!] : [])))]),
      );
    }
    throw new Error(`metric math: ${name} is not modelled here`);
  };
  const primary = (): Value => {
    const t = take();
    if (t === '(') {
      const v = expr();
      take(')');
      return v;
    }
    if (/^-?\d/.test(t)) return Number(t);
    if (/^[A-Z_]+$/.test(t)) {
      take('(');
      // An array of series, `[a, b]`, is taken as the function's arguments (MAX).
      const array = ts[i] === '[';
      if (array) i++;
      const args = [expr()];
      while (ts[i] === ',') {
        i++;
        args.push(expr());
      }
      if (array) take(']');
      take(')');
      return call(t, args);
    }
    const m = metrics[t];
    if (!m) throw new Error(`metric math: no metric "${t}"`);
    return new Map([...m].filter(([time]) => inRange.has(time)));
  };
  const sum = (): Value => {
    let value = primary();
    while (ts[i] === '+') {
      i++;
      value = add(value, primary());
    }
    return value;
  };
  const expr = (): Value => {
    const left = sum();
    const op = ts[i];
    if (op !== undefined && op in COMPARE) {
      i++;
      return compare(op, left, sum());
    }
    return left;
  };
  const result = expr();
  if (i !== ts.length) throw new Error(`metric math: unread "${ts.slice(i).join(' ')}" in "${expression}"`);
  if (typeof result === 'number') throw new Error('metric math: an expression must give a time series');
  return result;
}

/** An alarm's rule as the template states it. */
export interface AlarmRule {
  readonly evaluationPeriods: number;
  /** EvaluationPeriods when not given (CloudFormation's default). */
  readonly datapointsToAlarm?: number;
  readonly threshold: number;
  readonly comparisonOperator: string;
  /** Only the settings the alarms evaluated here use: missing data not breaching (the alarms' default) or breaching. */
  readonly treatMissingData?: string;
}

const BREACHES: Record<string, (v: number, threshold: number) => boolean> = {
  GreaterThanThreshold: (v, t) => v > t,
  GreaterThanOrEqualToThreshold: (v, t) => v >= t,
  LessThanThreshold: (v, t) => v < t,
  LessThanOrEqualToThreshold: (v, t) => v <= t,
};

/**
 * Whether an alarm on `series` (its evaluation range) is in ALARM, as "How alarm state is evaluated when data is
 * missing" documents it: with at least EvaluationPeriods points in the range, the most recent ones that exist are
 * evaluated (a period not reported yet is skipped); with fewer, every real point is and the missing ones are filled as
 * missing data is treated. ALARM when DatapointsToAlarm of them breach.
 */
export function alarmState(series: Series, rule: AlarmRule): boolean {
  const breaches = BREACHES[rule.comparisonOperator];
  if (!breaches) throw new Error(`metric math: ${rule.comparisonOperator} is not modelled here`);
  const missing = rule.treatMissingData ?? 'missing';
  const n = rule.evaluationPeriods;
  const points = [...series].sort(([a], [b]) => a - b).slice(-n);
  if (missing !== 'notBreaching' && missing !== 'breaching')
    throw new Error(`metric math: missing data treated as ${missing} is not modelled here`);
  const breaching =
    points.filter(([, v]) => breaches(v, rule.threshold)).length +
    (missing === 'breaching' ? n - points.length : 0);
  return breaching >= (rule.datapointsToAlarm ?? n);
}

/**
 * Whether an alarm above `threshold` on `series` with `periods` evaluation periods, every one to breach, and missing
 * data not breaching, is in ALARM (alarmState).
 */
export function alarms(series: Series, periods: number, threshold: number): boolean {
  return alarmState(series, {
    evaluationPeriods: periods,
    threshold,
    comparisonOperator: 'GreaterThanThreshold',
    treatMissingData: 'notBreaching',
  });
}

/** A count of one metric: the period it is stamped in, and the period during which it reaches CloudWatch. */
export interface Report {
  readonly id: string;
  readonly period: number;
  readonly value: number;
  /** Its own period when not given. */
  readonly arrives?: number;
}

/**
 * The alarm's state (true: ALARM) at one evaluation in each period `from` to `to`, its expression run as evaluate()
 * does: each reads the `range` periods of its evaluation range up to its own, still open (the latest, which FILL
 * fills), and the counts that reached CloudWatch by then, a period's counts of one metric summed (the alarms read
 * Sum). `ids` are the expression's metrics. CloudWatch evaluates more often than once a period; once, after that
 * period's arrivals, is the most a count that arrived in it could be seen. How many periods an evaluation range holds
 * is CloudWatch's own ("a higher number of data points than specified by Evaluation Periods": 5 for 3 in AWS's
 * example): unless given, EvaluationPeriods and 1, the fewest those words allow (the least a late count is given).
 * `reading`: how the expression is read where AWS's page leaves it open.
 */
export function evaluations(
  expression: string,
  ids: readonly string[],
  rule: AlarmRule,
  reports: readonly Report[],
  window: { from: number; to: number; range?: number },
  reading: Reading = AS_WRITTEN,
): boolean[] {
  for (const r of reports)
    if (!ids.includes(r.id)) throw new Error(`metric math: no metric "${r.id}" in "${expression}"`);
  const states: boolean[] = [];
  const span = window.range ?? rule.evaluationPeriods + 1;
  for (let now = window.from; now <= window.to; now++) {
    const range = Array.from({ length: span }, (_, k) => now - span + 1 + k);
    const inRange = new Set(range);
    const metrics = Object.fromEntries(
      ids.map((id) => {
        const series = new Map<number, number>();
        for (const r of reports) {
          if (r.id !== id || (r.arrives ?? r.period) > now || !inRange.has(r.period)) continue;
          series.set(r.period, (series.get(r.period) ?? 0) + r.value);
        }
        return [id, series];
      }),
    );
    states.push(alarmState(evaluate(expression, metrics, range, reading), rule));
  }
  return states;
}
