import { describe, expect, it } from 'vitest';
import {
  type AlarmRule,
  AS_WRITTEN,
  alarmState,
  evaluate,
  evaluations,
  READINGS,
  readingName,
  type Series,
} from '../support/metric-math.ts';

// The evaluator the alarm tests run the template's expressions on (test/support/metric-math.ts), checked against the
// examples AWS's pages give (alarms45-fill-sparse-counts).

/** A series from AWS's notation: one value a timestamp, undefined for '-' (no value). */
const series = (values: (number | undefined)[]): Series =>
  new Map(values.flatMap((v, t) => (v === undefined ? [] : [[t, v] as const])));
const values = (s: Series, length: number) => Array.from({ length }, (_, t) => s.get(t));

describe('metric math as "Use metric math" documents it', () => {
  const range = [0, 1, 2, 3, 4];

  it.each(READINGS.map((r) => [readingName(r), r] as const))(
    'compares two series over their timestamps, a missing value read as 0 (the comparison table; %s)',
    (_, r) => {
      const metrics = { metric1: series([30, 20, 0, 0]), metric2: series([20, undefined, 20, undefined]) };
      expect(values(evaluate('metric1 < metric2', metrics, range, r), 4)).toEqual([0, 0, 1, 0]);
      expect(values(evaluate('metric1 >= 30', metrics, range, r), 4)).toEqual([1, 0, 0, 0]);
    },
  );

  it.each(READINGS.map((r) => [readingName(r), r] as const))(
    'chooses IF(metric1, metric2, metric3) and IF(metric1, scalar2, metric3) point by point (the IF tables; %s)',
    (_, r) => {
      const metrics = {
        metric1: series([1, 1, 0, 0, undefined]),
        metric2: series([30, undefined, 0, 0, 30]),
        metric3: series([0, 0, 20, undefined, 20]),
      };
      expect(values(evaluate('IF(metric1, metric2, metric3)', metrics, range, r), 5)).toEqual([
        30,
        0,
        20,
        undefined,
        undefined,
      ]);
      expect(values(evaluate('IF(metric1, 5, metric3)', metrics, range, r), 5)).toEqual([
        5,
        5,
        20,
        undefined,
        undefined,
      ]);
    },
  );

  // The page's third IF table disagrees with its text at the last point, where metric1 has none and metric2 has 30:
  // the table gives scalar3 there, the text ("For each data point of metric1") nothing. Before review45-fill-if-table
  // this table was left out and the evaluator read only the text.
  it('chooses IF(metric1, metric2, scalar3) as its table shows under one reading, as its text says under the other', () => {
    const metrics = { metric1: series([1, 1, 0, 0, undefined]), metric2: series([30, undefined, 0, 0, 30]) };
    const read = (ifScalarElse: 'condition' | 'either') =>
      values(evaluate('IF(metric1, metric2, 5)', metrics, range, { ...AS_WRITTEN, ifScalarElse }), 5);
    expect(read('either')).toEqual([30, 0, 5, 5, 5]);
    expect(read('condition')).toEqual([30, 0, 5, 5, undefined]);
  });

  it('compares a series with a scalar at its own points, or, under the range reading, at every timestamp', () => {
    const metrics = { a: series([3, undefined, 0]) };
    const read = (compare: 'points' | 'range') =>
      values(evaluate('a > 0', metrics, [0, 1, 2, 3], { ...AS_WRITTEN, compare }), 4);
    expect(read('points')).toEqual([1, undefined, 0, undefined]);
    expect(read('range')).toEqual([1, 0, 0, 0]);
  });

  it('adds a missing value as 0 where another series has one, and has no point where none has', () => {
    const metrics = { a: series([1, undefined, 2, undefined]), b: series([undefined, undefined, 3, 4]) };
    expect(values(evaluate('a + b', metrics, range), 5)).toEqual([1, undefined, 5, 4, undefined]);
    expect(values(evaluate('a + 1', metrics, range), 5)).toEqual([2, undefined, 3, undefined, undefined]);
    // FILL gives every timestamp of the range a value, the latest, not reported yet, too.
    expect(values(evaluate('FILL(a, 0) + FILL(b, 0)', metrics, range), 5)).toEqual([1, 0, 5, 4, 0]);
  });

  it('adds sparse series at the timestamps each reading gives, filled ones alike under every reading', () => {
    const metrics = { a: series([1, undefined, 2, undefined]), b: series([undefined, undefined, 3, 4]) };
    const read = (expression: string, sum: 'any' | 'range' | 'every') =>
      values(evaluate(expression, metrics, range, { ...AS_WRITTEN, sum }), 5);
    expect(read('a + b', 'range')).toEqual([1, 0, 5, 4, 0]);
    expect(read('a + b', 'every')).toEqual([undefined, undefined, 5, undefined, undefined]);
    for (const r of READINGS)
      expect(values(evaluate('FILL(a, 0) + FILL(b, 0)', metrics, range, r), 5), readingName(r)).toEqual([
        1, 0, 5, 4, 0,
      ]);
  });

  it('takes MAX of an array of series point by point, where any has one (dlq45-depth-gauge)', () => {
    const metrics = {
      sqs: series([1, undefined, 0, undefined]),
      watch: series([undefined, undefined, 2, 0]),
    };
    expect(values(evaluate('MAX([sqs, watch])', metrics, range), 5)).toEqual([1, undefined, 2, 0, undefined]);
    expect(() => evaluate('MAX([sqs, 1])', metrics, range)).toThrow(/MAX\(\[series/);
  });

  it('takes MAX at the timestamps each reading gives, filled series alike under every reading (review45-dlq-max-readings)', () => {
    const metrics = {
      sqs: series([1, undefined, 0, undefined]),
      watch: series([undefined, undefined, 2, 0]),
    };
    const read = (max: 'any' | 'range' | 'every') =>
      values(evaluate('MAX([sqs, watch])', metrics, range, { ...AS_WRITTEN, max }), 5);
    expect(read('range')).toEqual([1, 0, 2, 0, 0]);
    expect(read('every')).toEqual([undefined, undefined, 2, undefined, undefined]);
    for (const r of READINGS)
      expect(
        values(evaluate('MAX([FILL(sqs, 0), FILL(watch, 0)])', metrics, range, r), 5),
        readingName(r),
      ).toEqual([1, 0, 2, 0, 0]);
  });
});

describe('an alarm\'s state as "How alarm state is evaluated when data is missing" documents it', () => {
  // AWS's tables: the 5 most recent points retrieved, oldest first; 0 not breaching, X breaching, - missing.
  const points = (row: string) =>
    series(row.split(' ').map((p) => (p === '-' ? undefined : p === 'X' ? 1 : 0)));
  const state = (row: string, m: number, treatMissingData: string) =>
    alarmState(points(row), {
      evaluationPeriods: 3,
      datapointsToAlarm: m,
      threshold: 1,
      comparisonOperator: 'GreaterThanOrEqualToThreshold',
      treatMissingData,
    })
      ? 'ALARM'
      : 'OK';

  it.each([
    // Datapoints to Alarm 3 of 3: [row, breaching, not breaching].
    [3, '0 - X - X', 'OK', 'OK'],
    [3, '0 - - - -', 'OK', 'OK'],
    [3, '- - - - -', 'ALARM', 'OK'],
    [3, '0 X X - X', 'ALARM', 'ALARM'],
    [3, '- - - - X', 'ALARM', 'OK'],
    [3, 'X - - - -', 'ALARM', 'OK'],
    // 2 of 3.
    [2, '0 - X - X', 'ALARM', 'ALARM'],
    [2, '0 0 X 0 X', 'ALARM', 'ALARM'],
    [2, '0 - X - -', 'ALARM', 'OK'],
    [2, '- - - - 0', 'ALARM', 'OK'],
    [2, '- - - - X', 'ALARM', 'OK'],
  ])('%i of 3 on %s: %s treating missing data as breaching, %s as not', (m, row, breaching, notBreaching) => {
    expect(state(row, m, 'breaching')).toBe(breaching);
    expect(state(row, m, 'notBreaching')).toBe(notBreaching);
  });

  it('runs an expression over periods, each evaluation seeing the counts that reached CloudWatch by then', () => {
    const rule: AlarmRule = {
      evaluationPeriods: 1,
      threshold: 1,
      comparisonOperator: 'GreaterThanOrEqualToThreshold',
      treatMissingData: 'notBreaching',
    };
    const late = [{ id: 'a', period: 2, value: 1, arrives: 3 }];
    // Filled, the latest period reads 0 at every evaluation: the count that came after its period is never read.
    expect(evaluations('FILL(a, 0)', ['a'], rule, late, { from: 0, to: 6 })).toEqual([
      false,
      false,
      false,
      false,
      false,
      false,
      false,
    ]);
    // Unfilled, the latest reported period is read once the count is there, and leaves the range.
    expect(evaluations('a', ['a'], rule, late, { from: 0, to: 6 })).toEqual([
      false,
      false,
      false,
      true,
      false,
      false,
      false,
    ]);
    expect(() =>
      evaluations('a', ['a'], rule, [{ id: 'b', period: 0, value: 1 }], { from: 0, to: 1 }),
    ).toThrow(/no metric "b"/);
  });
});
