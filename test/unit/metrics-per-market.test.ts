import { readFileSync } from 'node:fs';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { describe, expect, it, vi } from 'vitest';
import { DEFAULT_RISK_CONFIG_INPUT, parseRiskConfig } from '../../shared/domain/config.ts';
import {
  DEADLINE_WARNING_MS,
  DimensionedMetrics,
  powertoolsTelemetry,
  publishMetrics,
} from '../../shared/lambda/runtime.ts';
import { METRICS, METRICS_NAMESPACE } from '../../shared/metrics.ts';
import { createPipeline } from '../support/pipeline.ts';

/**
 * Session 40: a deployment holds any number of markets, but only TicksAccepted named one: a page for bad debt, a
 * breaker trip or stale marks said nothing of which market. Each metric that concerns one market is emitted under
 * two dimension sets in one EMF blob: the total's (what the alarms read, unchanged) and the same plus Market.
 */

interface Blob {
  readonly _aws: { readonly CloudWatchMetrics: { Dimensions: string[][]; Metrics: { Name: string }[] }[] };
  readonly [key: string]: unknown;
}

/** Powertools on instances whose printed EMF lines are kept. */
function capturedEmf() {
  const lines: string[] = [];
  const warnings: string[] = [];
  const instance = () => {
    const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: 'backstop-test' });
    const sink = (metrics as unknown as { console: Console }).console;
    vi.spyOn(sink, 'log').mockImplementation((line: string) => void lines.push(line));
    vi.spyOn(sink, 'warn').mockImplementation((line: string) => void warnings.push(line));
    return metrics;
  };
  const shared = instance();
  const dimensioned = new DimensionedMetrics(instance);
  const logger = new Logger({ serviceName: 'backstop-test', logLevel: 'SILENT' });
  const telemetry = powertoolsTelemetry(logger, shared, dimensioned);
  const publish = async () => publishMetrics(shared, { dimensioned }).after({});
  const blobs = () => lines.map((line) => JSON.parse(line) as Blob);
  /** Each blob's dimension sets and values of one metric: how CloudWatch files its data points. */
  const filed = (name: string) =>
    blobs()
      .filter((b) => b._aws.CloudWatchMetrics[0]?.Metrics.some((m) => m.Name === name))
      .map((b) => ({
        sets: b._aws.CloudWatchMetrics[0]?.Dimensions,
        service: b.service,
        market: b.Market,
        reason: b.Reason,
        value: b[name],
      }));
  return { telemetry, publish, filed, shared, dimensioned, warnings };
}

describe('metrics per market (EMF with two dimension sets)', () => {
  it("a settlement's bad debt is filed under the total, which BadDebtAlarm reads, and under its market", async () => {
    const emf = capturedEmf();
    const p = createPipeline({ telemetry: emf.telemetry });
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    // A gap through bankruptcy (180) with an empty fund and no counterparty in profit: 65.90 USD of bad debt.
    await p.open('LONG', '10', '200', '200');
    await p.tick('ETH-USD', '175');
    await p.drain();
    await emf.publish();
    expect(emf.filed(METRICS.BadDebt.name)).toEqual([
      {
        sets: [['service'], ['service', 'Market']],
        service: 'backstop-test',
        market: 'ETH-USD',
        value: 65.9,
      },
    ]);
    // A layer's count keeps its Layer in both sets (LiquidationsSettled by layer on the dashboard).
    expect(emf.filed(METRICS.LiquidationsSettled.name)).toContainEqual(
      expect.objectContaining({
        sets: [
          ['service', 'Layer'],
          ['service', 'Layer', 'Market'],
        ],
        market: 'ETH-USD',
      }),
    );
    // Already per market only (the feed alarms are a market's each): no second set, no total.
    expect(emf.filed(METRICS.TicksAccepted.name)).toContainEqual(
      expect.objectContaining({ sets: [['service', 'Market']], market: 'ETH-USD' }),
    );
    expect((await p.check()).violations).toEqual([]);
  });

  it("a refusal keeps its Reason in both sets; a breaker trip names its market, not another's", async () => {
    const emf = capturedEmf();
    const config = parseRiskConfig({
      ...DEFAULT_RISK_CONFIG_INPUT,
      insurance: { drawCapPerWindow: '1000000', floor: '1000', windowSeconds: 3600 },
    });
    const p = createPipeline({ config, telemetry: emf.telemetry });
    await p.fund('1000');
    await p.tick('ETH-USD', '200');
    await p.tick('ETH-USD', '200');
    await p.open('LONG', '10', '200', '200');
    await p.open('SHORT', '10', '200', '400');
    await p.tick('ETH-USD', '175');
    await p.drain();
    await p.tick('BTC-USD', '30000');
    await p.tick('BTC-USD', '30000');
    // 50 % from the last mark (band 15 %): BTC-USD halts.
    expect(await p.tick('BTC-USD', '45000')).toMatchObject({ status: 'rejected' });
    await emf.publish();
    expect(emf.filed(METRICS.InsuranceFundRefusals.name)).toEqual([
      {
        sets: [
          ['service', 'Reason'],
          ['service', 'Reason', 'Market'],
        ],
        service: 'backstop-test',
        market: 'ETH-USD',
        reason: 'insurance/floor',
        value: 1,
      },
    ]);
    expect(emf.filed(METRICS.CircuitBreakerTripped.name)).toEqual([
      { sets: [['service'], ['service', 'Market']], service: 'backstop-test', market: 'BTC-USD', value: 1 },
    ]);
    // Reason in both sets, yet no warning of a key in two sets (Powertools' on every publish, were it in each set).
    expect(emf.warnings).toEqual([]);
    // The tripping tick's rejection is BTC-USD's too (TicksRejected by Reason, and by market).
    expect(emf.filed(METRICS.TicksRejected.name)).toContainEqual(
      expect.objectContaining({
        sets: [
          ['service', 'Reason'],
          ['service', 'Reason', 'Market'],
        ],
        market: 'BTC-USD',
      }),
    );
  });

  it('a fund-wide gauge and a data point without its market stay in the shared blob, as before', async () => {
    const emf = capturedEmf();
    emf.telemetry.observe(METRICS.InsuranceFundBalance.name, 100);
    emf.telemetry.count(METRICS.RecordFailures.name, 1, { Queue: 'liquidations' });
    // An old message names no market: its lateness still counts in the total.
    emf.telemetry.observe(METRICS.LiquidationLateness.name, 3);
    await emf.publish();
    expect(emf.filed(METRICS.InsuranceFundBalance.name)).toEqual([
      expect.objectContaining({ sets: [['service']], value: 100 }),
    ]);
    expect(emf.filed(METRICS.LiquidationLateness.name)).toEqual([
      expect.objectContaining({ sets: [['service']], market: undefined, value: 3 }),
    ]);
    expect(emf.filed(METRICS.RecordFailures.name)).toEqual([
      expect.objectContaining({ sets: [['service', 'Queue']], value: 1 }),
    ]);
  });

  it('keeps both sets on every blob when Powertools publishes by itself (at 100 values of a metric)', async () => {
    const emf = capturedEmf();
    for (let i = 0; i < 150; i++) emf.telemetry.count(METRICS.StaleMarkWaits.name, 1, { Market: 'ETH-USD' });
    await emf.publish();
    const filed = emf.filed(METRICS.StaleMarkWaits.name);
    expect(filed.map((f) => (f.value as number[]).length)).toEqual([100, 50]);
    for (const f of filed)
      expect(f).toMatchObject({ sets: [['service'], ['service', 'Market']], market: 'ETH-USD' });
  });

  // margin-check left Powertools' logMetrics, which publishes its own instance only: a tick's per-market counts
  // would have waited for a later invocation, or died with the environment.
  it("publishes a market's blob at the end of the invocation and before its deadline; margin-check's cold start", async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    // Powertools counts a cold start only in an on-demand environment (Lambda sets it).
    vi.stubEnv('AWS_LAMBDA_INITIALIZATION_TYPE', 'on-demand');
    try {
      const emf = capturedEmf();
      const middleware = publishMetrics(emf.shared, { dimensioned: emf.dimensioned, coldStart: true });
      const waits = () => emf.filed(METRICS.StaleMarkWaits.name).length;
      const running = { context: { getRemainingTimeInMillis: () => 1_000, functionName: 'margin-check' } };
      await middleware.before(running);
      expect(stdout.mock.calls.map((c) => String(c[0])).join('')).toContain('"ColdStart"');
      emf.telemetry.count(METRICS.StaleMarkWaits.name, 1, { Market: 'ETH-USD' });
      await vi.advanceTimersByTimeAsync(1_000 - DEADLINE_WARNING_MS - 1);
      expect(waits()).toBe(0);
      await vi.advanceTimersByTimeAsync(1);
      expect(waits()).toBe(1);
      const ended = { context: running.context };
      await middleware.before(ended);
      emf.telemetry.count(METRICS.StaleMarkWaits.name, 1, { Market: 'ETH-USD' });
      await middleware.after(ended);
      expect(waits()).toBe(2);
      expect(stdout.mock.calls.filter((c) => String(c[0]).includes('"ColdStart"'))).toHaveLength(1);
    } finally {
      stdout.mockRestore();
      vi.unstubAllEnvs();
      vi.useRealTimers();
    }
  });
});

// review47-metrics-count: 20ce43a added BreakerTraceFailures by market; docs/PERFORMANCE.md's cost of the metrics per
// market still counted 31 (recounted by hand once before, bec2fe4).
describe("docs/PERFORMANCE.md's count of the metrics filed per market", () => {
  it('is the count shared/metrics.ts declares, and its sum adds up', () => {
    const text = readFileSync(new URL('../../docs/PERFORMANCE.md', import.meta.url), 'utf8').replace(
      /\s+/g,
      ' ',
    );
    const specs = Object.values(METRICS) as { byMarket?: boolean; dimension?: string }[];
    const perMarket = specs.filter((s) => s.byMarket);
    const counted = /each of the (\d+) metrics `byMarket`/.exec(text);
    expect(Number(counted?.[1])).toBe(perMarket.length);
    const sum =
      /at most (\d+) more a market \((\d+) without another dimension, (\d+) layers of `LiquidationsSettled`, (\d+) fund refusal reasons, (\d+) venue failure kinds, (\d+) tick rejection reasons\)/.exec(
        text,
      );
    expect(Number(sum?.[2])).toBe(perMarket.filter((s) => !s.dimension).length);
    const parts = sum!.slice(2).map(Number);
    expect(Number(sum?.[1])).toBe(parts.reduce((a, b) => a + b, 0));
  });
});
