/**
 * The part of CloudWatch metric math the alarms use (IF, FILL, comparisons), evaluated as AWS's "Use metric math"
 * page documents it (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html), and an
 * alarm's choice of data points as "How alarm state is evaluated when data is missing" documents it. A series holds a
 * value only at the timestamps it has data for:
 * - `FILL(m, s)` has one at every timestamp of the query's range, so in an alarm the latest minutes SQS has not
 *   reported yet too (the page's warning: "the latest data point for the metric to always be the FILL value");
 * - a series compared with a scalar has a point where the series has one (1 or 0); two series compare over the union
 *   of their timestamps, a missing value read as 0;
 * - `IF(cond, a, b)` has a point where `cond` has one: `a` where it is true (0 where `a` is a series without that
 *   point), `b` where false (dropped where `b` is a series without it).
 */
export type Series = ReadonlyMap<number, number>;
type Value = number | Series;

const TOKEN = /\s*(==|!=|<=|>=|<|>|\(|\)|,|-?\d+(?:\.\d+)?|[A-Z_]+(?=\s*\()|[a-z][A-Za-z0-9_]*)/y;
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
): Series {
  const ts = tokens(expression);
  let i = 0;
  const take = (want?: string): string => {
    const t = ts[i++];
    if (t === undefined || (want !== undefined && t !== want))
      throw new Error(`metric math: expected ${want ?? 'more'} in "${expression}"`);
    return t;
  };
  const compare = (op: string, a: Value, b: Value): Value => {
    const f = COMPARE[op]!;
    const bit = (x: number, y: number) => (f(x, y) ? 1 : 0);
    if (typeof a === 'number' && typeof b === 'number') return bit(a, b);
    if (typeof a === 'number') return new Map([...(b as Series)].map(([t, v]) => [t, bit(a, v)]));
    if (typeof b === 'number') return new Map([...a].map(([t, v]) => [t, bit(v, b)]));
    const times = [...new Set([...a.keys(), ...b.keys()])].sort((x, y) => x - y);
    return new Map(times.map((t) => [t, bit(a.get(t) ?? 0, b.get(t) ?? 0)]));
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
      for (const [t, c] of cond) {
        if (c !== 0) out.set(t, typeof a === 'number' ? a : (a.get(t) ?? 0));
        else if (typeof b === 'number') out.set(t, b);
        else if (b?.has(t)) out.set(t, b.get(t)!);
      }
      return out;
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
      const args = [expr()];
      while (ts[i] === ',') {
        i++;
        args.push(expr());
      }
      take(')');
      return call(t, args);
    }
    const m = metrics[t];
    if (!m) throw new Error(`metric math: no metric "${t}"`);
    return new Map([...m].filter(([time]) => range.includes(time)));
  };
  const expr = (): Value => {
    const left = primary();
    const op = ts[i];
    if (op !== undefined && op in COMPARE) {
      i++;
      return compare(op, left, primary());
    }
    return left;
  };
  const result = expr();
  if (i !== ts.length) throw new Error(`metric math: unread "${ts.slice(i).join(' ')}" in "${expression}"`);
  if (typeof result === 'number') throw new Error('metric math: an expression must give a time series');
  return result;
}

/**
 * Whether an alarm above `threshold` on `series` with `periods` evaluation periods, every one to breach, and missing
 * data not breaching, is in ALARM: with at least `periods` points in the range CloudWatch evaluates the most recent
 * ones that exist (a minute not reported yet is skipped); with fewer, the missing ones are filled, not breaching.
 */
export function alarms(series: Series, periods: number, threshold: number): boolean {
  const latest = [...series].sort(([a], [b]) => a - b).slice(-periods);
  return latest.length === periods && latest.every(([, v]) => v > threshold);
}
