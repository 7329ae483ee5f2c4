import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ALARM_DESCRIPTION_MAX,
  SPARSE_SUM_MINUTES,
  VENUE_FAILURES_PER_5_MINUTES,
} from '../../infra/constructs/monitoring.ts';
import { DEFAULT_RISK_CONFIG_INPUT } from '../../shared/domain/config.ts';
import { MARKET_DIMENSION, METRICS, type MetricSpec } from '../../shared/metrics.ts';
import { type EmitSite, emfDimensionSets, emitSites } from '../support/emit-sites.ts';
import {
  buildStack,
  projectRoot,
  removeSynthDirs,
  synthDir,
  THIS_PROJECT,
} from '../support/infra-project.ts';

/**
 * An alarm matches one metric name and its exact dimension set: one reading a name, a set or a value the code never
 * emits stays OK through the failure it was made for. These tests read the emitting code itself (every Telemetry
 * call, by its types), not the specs alone, against the synthesized alarms and dashboard, and the runbook against
 * the alarms (observe44-*).
 */

process.env.CDK_VALIDATION = 'false';
const outdir = synthDir('backstop-observe-');
afterAll(removeSynthDirs);

const SPECS = new Map<string, MetricSpec>(Object.values(METRICS).map((s) => [s.name, s]));

interface AlarmMetric {
  readonly alarm: string;
  readonly name: string;
  readonly dimensions: ReadonlyMap<string, unknown>;
}

/** The Backstop metrics each alarm reads (a math expression's too), by the alarm's construct id. */
function alarmMetrics(template: Template): AlarmMetric[] {
  type Raw = { Namespace?: string; MetricName: string; Dimensions?: { Name: string; Value: unknown }[] };
  return Object.entries(template.findResources('AWS::CloudWatch::Alarm')).flatMap(
    ([id, { Properties: a }]) => {
      const raws: Raw[] = a.Metrics
        ? (a.Metrics as { MetricStat?: { Metric: Raw } }[]).flatMap((q) =>
            q.MetricStat ? [q.MetricStat.Metric] : [],
          )
        : [a as Raw];
      return raws
        .filter((m) => m.Namespace === 'Backstop')
        .map((m) => ({
          alarm: id,
          name: m.MetricName,
          dimensions: new Map((m.Dimensions ?? []).map((d) => [d.Name, d.Value])),
        }));
    },
  );
}

/** The dashboard's Backstop metric names: its exact lines' and its SEARCH expressions'. */
function graphedMetrics(template: Template): { names: Set<string>; lines: unknown[][]; searches: string[] } {
  const dashboard = Object.values(template.findResources('AWS::CloudWatch::Dashboard'))[0]!.Properties;
  const parts = dashboard.DashboardBody['Fn::Join'][1] as unknown[];
  const body = JSON.parse(parts.map((p) => (typeof p === 'string' ? p : 'TOKEN')).join('')) as {
    widgets: Array<{ properties: { metrics?: unknown[][] } }>;
  };
  const all = body.widgets.flatMap((w) => w.properties.metrics ?? []);
  const lines = all.filter((l) => l[0] === 'Backstop');
  const searches = all
    .flatMap((l) => l.filter((x): x is { expression: string } => typeof x === 'object' && x !== null))
    .map((x) => x.expression)
    .filter((e) => e?.startsWith('SEARCH('));
  const names = new Set<string>([
    ...lines.map((l) => String(l[1])),
    ...searches.flatMap((e) => [...e.matchAll(/MetricName="(\w+)"/g)].map((m) => m[1]!)),
  ]);
  return { names, lines, searches };
}

describe('alarms and graphs against the code that emits (observe44-alarm-emitted)', () => {
  let template: Template;
  let sites: EmitSite[];

  beforeAll(() => {
    template = Template.fromStack(buildStack(THIS_PROJECT, {}, { outdir }).stack);
    sites = emitSites(projectRoot, ['shared', 'functions']);
  });

  it('finds every Telemetry call of the functions and the services', () => {
    // Spot checks that the scan sees what it must: a choice of specs, a dimension maybe absent, a union of values.
    expect(sites.length).toBeGreaterThan(50);
    const failures = sites.find((s) => s.metrics.includes(METRICS.NewerWriterRetries.name));
    expect(failures?.metrics).toEqual(
      expect.arrayContaining([METRICS.NewerWriterRetries.name, METRICS.RecordFailures.name]),
    );
    const rejected = sites.find(
      (s) =>
        s.metrics.includes(METRICS.TicksRejected.name) && s.values.get('Reason')?.has('tick/out-of-order'),
    );
    expect(rejected?.keySets).toEqual(expect.arrayContaining([['Reason'], [MARKET_DIMENSION, 'Reason']]));
    expect(sites.some((s) => s.values.get('Reason')?.has('tick/contended'))).toBe(true);
    const refusals = sites.find((s) => s.metrics.includes(METRICS.InsuranceFundRefusals.name));
    expect([...(refusals?.values.get('Reason') ?? [])].sort()).toEqual([
      'insurance/draw-cap',
      'insurance/floor',
    ]);
  });

  it("passes each metric its spec's dimension, and Market only where the spec files it per market", () => {
    const wrong: string[] = [];
    for (const s of sites) {
      for (const name of s.metrics) {
        const spec = SPECS.get(name)!;
        const own = spec.dimension ? [spec.dimension] : [];
        for (const keys of s.keySets) {
          const rest =
            spec.dimension === MARKET_DIMENSION ? keys : keys.filter((k) => k !== MARKET_DIMENSION);
          if (rest.join() !== own.join()) wrong.push(`${s.at} ${name} {${keys}}: its spec's is {${own}}`);
          if (keys.includes(MARKET_DIMENSION) && !spec.byMarket && spec.dimension !== MARKET_DIMENSION)
            wrong.push(`${s.at} ${name} names its market: not byMarket, dropped`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });

  it('reads in every alarm a metric the code emits, with a dimension set and values it emits', () => {
    const points = sites.flatMap((s) =>
      s.metrics.flatMap((name) =>
        s.keySets.map((keys) => ({ name, dimensions: Object.fromEntries(keys.map((k) => [k, 'x'])) })),
      ),
    );
    const emitted = emfDimensionSets(points);
    const read = alarmMetrics(template);
    expect(read.length).toBeGreaterThan(20);
    const wrong: string[] = [];
    for (const { alarm, name, dimensions } of read) {
      const names = [...dimensions.keys()].sort();
      if (!emitted.get(name)?.some((set) => set.join() === names.join()))
        wrong.push(
          `${alarm}: ${name} {${names}} is never emitted (${JSON.stringify(emitted.get(name) ?? [])})`,
        );
      if (dimensions.get('service') !== 'backstop-dev') wrong.push(`${alarm}: ${name} reads another service`);
      for (const [key, value] of dimensions) {
        if (key === 'service') continue;
        // A value no site's types can give: the alarm waits for a data point that never comes. A site that passes
        // any string (a parsed reason) is taken to give none of the alarmed values, unless every site does.
        const valued = sites.filter((s) => s.metrics.includes(name) && s.values.has(key));
        const known = valued.filter((s) => s.values.get(key) !== undefined);
        if (
          (known.length > 0 || valued.length === 0) &&
          !known.some((s) => s.values.get(key)!.has(String(value)))
        )
          wrong.push(
            `${alarm}: ${name} ${key}=${String(value)} is emitted by no call (${valued.map((s) => s.at)})`,
          );
      }
    }
    expect(wrong).toEqual([]);
  });

  it('graphs every metric the code emits, each with its dimension, and graphs none it does not', () => {
    const emitted = new Set(sites.flatMap((s) => s.metrics));
    const { names, lines, searches } = graphedMetrics(template);
    expect([...emitted].sort()).toEqual(
      Object.values(METRICS)
        .map((m) => m.name)
        .sort(),
    );
    expect([...names].sort()).toEqual([...emitted].sort());
    for (const spec of Object.values(METRICS) as MetricSpec[]) {
      const dims = ['service', ...(spec.dimension ? [spec.dimension] : [])].sort();
      const exact = lines.some(
        (l) => l[1] === spec.name && dims.every((d) => l.includes(d)) && !l.includes(MARKET_DIMENSION),
      );
      const search = searches.some((e) =>
        e.startsWith(`SEARCH('{Backstop,${dims.join(',')}} MetricName="${spec.name}"`),
      );
      expect(exact || search, `${spec.name}: its total {${dims}} on no graph`).toBe(true);
    }
  });
});

describe("the runbook (docs/DEPLOY.md 'When an alarm fires') against the alarms (observe44-runbook-every-alarm)", () => {
  const deploy = readFileSync(join(projectRoot, 'docs/DEPLOY.md'), 'utf8');
  const start = deploy.indexOf('**When an alarm fires**');
  const runbook = deploy.slice(start, deploy.indexOf('\nStack outputs', start));
  /** Alarm names as the runbook spells them; `<Market>` stands for any market (one alarm each). */
  const named = [...new Set([...runbook.matchAll(/`([A-Za-z<>]+Alarm)`/g)].map((m) => m[1]!))];
  const pattern = (name: string) => new RegExp(`^${name.replace(/<\w+>/g, '\\w+')}$`);
  /**
   * An alarm's own part of a **Back to OK** that several alarms share: its parts split on the semicolons outside
   * parentheses, those naming `name`; the whole when none names it (one window read for all the entry's alarms). A
   * window said of another alarm of the entry no longer passes for this one's (review50-oncall-ok-window).
   */
  const okClause = (ok: string, name: string): string => {
    const parts: string[] = [];
    let depth = 0;
    let from = 0;
    for (let i = 0; i < ok.length; i++) {
      if (ok[i] === '(') depth++;
      else if (ok[i] === ')') depth--;
      else if (ok[i] === ';' && depth === 0) {
        parts.push(ok.slice(from, i));
        from = i + 1;
      }
    }
    parts.push(ok.slice(from));
    const own = parts.filter((p) => p.includes(`\`${name}\``));
    return own.length > 0 ? own.join(';') : ok;
  };

  let alarms: string[];
  /** Each alarm's logical id and the AlarmName it is given. */
  let named45: { logicalId: string; name: unknown }[];
  /** The metric names each dead-letter aging alarm reads. */
  let agingReads: string[];
  beforeAll(() => {
    const template = Template.fromStack(buildStack(THIS_PROJECT, {}, { outdir }).stack);
    const resources = template.findResources('AWS::CloudWatch::Alarm');
    // The construct id, which the alarm's name carries (alarms45-fixed-names: <stack>-<id>).
    alarms = Object.keys(resources).map((id) => id.replace(/^Monitoring/, '').replace(/[0-9A-F]{8}$/, ''));
    named45 = Object.entries(resources).map(([logicalId, r]) => ({
      logicalId,
      name: r.Properties.AlarmName,
    }));
    agingReads = Object.values(resources)
      .filter((r) => String(r.Properties.AlarmName).endsWith('AgingAlarm'))
      .map((r) => String(r.Properties.MetricName));
  });

  it('names every alarm exactly, so the name a page carries finds its entry', () => {
    expect(start).toBeGreaterThan(0);
    expect(alarms.length).toBeGreaterThan(40);
    const missing = alarms.filter((a) => !named.some((n) => pattern(n).test(a)));
    expect(missing).toEqual([]);
  });

  it('names no alarm that does not exist', () => {
    expect(named.filter((n) => !alarms.some((a) => pattern(n).test(a)))).toEqual([]);
  });

  // Found in session 45's final re-read: the upgrade note still said a dead letter waiting since before the deploy
  // counts towards its aging page from its arrival, as SQS's own count did until review45-dlq-aging-deploy made the
  // aging alarms read liquidation-watch's DeadLetters alone, whose week begins at the watch's first run (as the same
  // note said a few lines before) (final45-upgrade-note).
  it('says in the session 45 upgrade note what the template makes: the alarms it counts, and what the aging alarms read', () => {
    const begin = deploy.indexOf('**Upgrading to session 45**');
    const note = deploy.slice(begin, deploy.indexOf('\n\n', begin)).replace(/\s+/g, ' ');
    expect(begin).toBeGreaterThan(0);
    expect(note).toContain(`(${alarms.length} with the default two markets)`);
    expect(note).toContain(`Three of the ${alarms.length} are new`);
    for (const added of [
      'LiquidationQueueStallAlarm',
      'AuctionStepQueueStallAlarm',
      'DeadLetterReadFailuresAlarm',
    ]) {
      expect(alarms).toContain(added);
      expect(note).toContain(`\`${added}\``);
    }
    expect(agingReads).toEqual([
      METRICS.DeadLetters.name,
      METRICS.DeadLetters.name,
      METRICS.DeadLetters.name,
    ]);
    expect(note).toContain("count the week from the watch's first run");
    expect(note).not.toMatch(/SQS already reported|counts from its arrival/);
  });

  // Found in session 50's on-call pass: most entries said what fired, not what ends it, and CircuitBreakerAlarm's OK
  // (5 minutes with no trip) read as the breaker closed (oncall50-runbook-ok).
  it('says in the entry of every alarm when it returns to OK, in the window its template evaluates', () => {
    const resources = Template.fromStack(buildStack(THIS_PROJECT, {}, { outdir }).stack).findResources(
      'AWS::CloudWatch::Alarm',
    );
    const bullets = runbook.split(/\n- /).map((b) => b.replace(/\s+/g, ' '));
    const wrong: string[] = [];
    for (const [logicalId, { Properties: a }] of Object.entries(resources)) {
      const id = /^Monitoring([A-Za-z0-9]+)[0-9A-F]{8}$/.exec(logicalId)![1]!;
      const name = named.find((n) => pattern(n).test(id))!;
      const periods = new Set<number>(
        a.Period !== undefined
          ? [a.Period]
          : (a.Metrics as { MetricStat?: { Period: number } }[]).flatMap((m) =>
              m.MetricStat ? [m.MetricStat.Period] : [],
            ),
      );
      expect(periods.size, `${id}: one period`).toBe(1);
      const period = [...periods][0]! / 60;
      const n = a.EvaluationPeriods as number;
      const m = (a.DatapointsToAlarm as number | undefined) ?? n;
      // M out of N: with M = N, the first period that does not breach clears it; with M = 1, N periods after the last
      // that did. No other shape is written here: one added must say its own OK (review50-oncall-ok-window).
      const window =
        m === n
          ? new RegExp(
              `\\bfirst ${period === 1 ? 'minute' : period === 60 ? 'hour' : `${period}-minute period`}\\b`,
            )
          : m === 1
            ? new RegExp(`\\b${period * n} minutes after\\b`)
            : undefined;
      if (window === undefined) {
        wrong.push(`${id}: ${m} out of ${n}, a shape this test does not judge`);
        continue;
      }
      const oks = bullets
        .filter((b) => b.includes(`\`${name}\``))
        .map((b) => b.slice(b.indexOf('**Back to OK**')))
        .filter((ok) => ok.startsWith('**Back to OK**'))
        .map((ok) => okClause(ok, name));
      if (oks.length === 0) wrong.push(`${id}: no entry says when it returns to OK`);
      else if (!oks.some((ok) => window.test(ok))) wrong.push(`${id}: its OK names no ${window} window`);
      // Missing data skipped, not judged: with none left in the evaluation range the alarm is neither OK nor ALARM
      // and notifies nobody (review50-oncall-insufficient-data).
      else if (a.TreatMissingData === 'missing' && !oks.some((ok) => ok.includes('`INSUFFICIENT_DATA`')))
        wrong.push(`${id}: its OK does not say it goes to INSUFFICIENT_DATA without data`);
    }
    expect(wrong).toEqual([]);
  });

  // Session 50 noticed VenueFailuresAlarm's threshold and window in its entry held to nothing (tidy51-venue-threshold).
  it("states VenueFailuresAlarm's threshold and window in its entry as the template has them", () => {
    const [venue] = Object.entries(
      Template.fromStack(buildStack(THIS_PROJECT, {}, { outdir }).stack).findResources(
        'AWS::CloudWatch::Alarm',
      ),
    )
      .filter(([id]) => id.startsWith('MonitoringVenueFailuresAlarm'))
      .map(([, r]) => r.Properties);
    expect(venue).toMatchObject({
      Threshold: VENUE_FAILURES_PER_5_MINUTES,
      EvaluationPeriods: SPARSE_SUM_MINUTES / 5,
    });
    const spoken = ['no', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
    const entry = runbook.split(/\n- /).find((b) => b.startsWith('Venue failures (`VenueFailuresAlarm`)'));
    expect(entry?.replace(/\s+/g, ' ')).toContain(
      `${spoken[VENUE_FAILURES_PER_5_MINUTES]} or more order attempts in a 5-minute period of the last ${SPARSE_SUM_MINUTES} timed out`,
    );
  });

  // Found in session 50's on-call pass: a notification said what fired, nowhere where its runbook was
  // (oncall50-runbook-pointer).
  it("ends every alarm's description, as its notification shows it, with where its runbook entry is", () => {
    // The default markets, and the longest symbol the risk configuration takes (a description names its market).
    const longest = {
      'backstop:riskConfig': JSON.stringify({
        ...DEFAULT_RISK_CONFIG_INPUT,
        markets: [{ ...DEFAULT_RISK_CONFIG_INPUT.markets[0], symbol: '1000000000-USDTX' }],
      }),
    };
    const resources = [{}, longest].flatMap((context) =>
      Object.entries(
        Template.fromStack(buildStack(THIS_PROJECT, context, { outdir }).stack).findResources(
          'AWS::CloudWatch::Alarm',
        ),
      ),
    );
    expect(resources.some(([id]) => id.startsWith('MonitoringTickFeed1000000000USDTXAlarm'))).toBe(true);
    const wrong: string[] = [];
    for (const [logicalId, { Properties: a }] of resources) {
      const id = /^Monitoring([A-Za-z0-9]+)[0-9A-F]{8}$/.exec(logicalId)![1]!;
      const description = String(a.AlarmDescription);
      // The name the runbook spells, found there as it is (`TickFeed<Market>Alarm` for every market's:
      // review50-oncall-pointer-market), and this alarm's.
      const entry = /\. Runbook: docs\/DEPLOY\.md, "When an alarm fires", (\S+)$/.exec(description)?.[1];
      if (entry === undefined || !named.includes(entry) || !pattern(entry).test(id))
        wrong.push(`${id}: ${description.slice(-80)}`);
      if (description.length > ALARM_DESCRIPTION_MAX) wrong.push(`${id}: ${description.length} characters`);
    }
    expect(wrong).toEqual([]);
    expect(runbook.replace(/\s+/g, ' ')).toContain(
      'ends with where its entry is: `Runbook: docs/DEPLOY.md, "When an alarm fires", <name>`',
    );
  });

  it('gives every alarm the name <stack>-<its entry>, once, tied to its logical id (alarms45-fixed-names)', () => {
    expect(named45.length).toBeGreaterThan(40);
    const wrong: string[] = [];
    for (const { logicalId, name } of named45) {
      // A direct child of Monitoring: its logical id is Monitoring<id><hash>, and its name <stack>-<id>. An alarm
      // moved elsewhere in the tree would change its logical id and keep its name, which CloudFormation cannot
      // create while the old resource still holds it.
      const id = /^Monitoring([A-Za-z0-9]+)[0-9A-F]{8}$/.exec(logicalId)?.[1];
      if (typeof name !== 'string' || id === undefined || name !== `Backstop-dev-${id}`)
        wrong.push(`${logicalId}: ${String(name)}`);
      else if (name.length > 255) wrong.push(`${name}: longer than 255`);
      else if (!named.some((n) => pattern(n).test(id))) wrong.push(`${name}: no runbook entry`);
    }
    expect(wrong).toEqual([]);
    expect(new Set(named45.map((a) => a.name)).size).toBe(named45.length);
  });
});
