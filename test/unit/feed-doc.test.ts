import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { HOLD_EVERY_SECONDS } from '../../cli/ops/events.ts';
import { DEFAULT_LOCAL_PORT } from '../../cli/ops/local.ts';
import { loadConfig } from '../../infra/config.ts';
import { DEFAULT_RISK_CONFIG, marketConfig } from '../../shared/domain/config.ts';
import { evaluateTick, type Tick, type TickState } from '../../shared/domain/tick.ts';
import { formatPpm, parsePrice } from '../../shared/domain/units.ts';
import {
  DEFAULT_RETRY,
  POLICY_ENTRY_CODES,
  PUT_EVENTS_BATCH,
  PutEntriesError,
  RETRYABLE_ENTRY_CODES,
  TickPublishError,
  tickEntry,
} from '../../shared/feed/publisher.ts';
import { DEFAULT_LOCAL_STAGE } from '../../shared/local/deployment.ts';
import { MOTO_HOST } from '../../shared/local/moto.ts';
import { METRICS } from '../../shared/metrics.ts';
import { parseTickDetail, priceTickDetailSchema } from '../../shared/schemas/tick.ts';
import { physicalName, TICK_BUS } from '../../shared/topology.ts';
import { lines, pageReferenceTests, repoFile, tsSnippets } from '../support/doc-pages.ts';

/**
 * docs/FEED.md is what an exchange's engineer writes the publisher from: its numbers, names and examples are checked
 * here against the code they describe, so a change to either shows.
 */

const feed = repoFile('docs/FEED.md');

describe('docs/FEED.md against the code', () => {
  // Session 50 noticed the hold's default in FEED.md and README held to nothing (tidy51-hold-default).
  it("states `replay --hold`'s default period as the CLI has it", () => {
    expect(feed).toContain(`every ${HOLD_EVERY_SECONDS} s at most (\`backstop replay --hold\`'s default)`);
    expect(repoFile('README.md').replace(/\s+/g, ' ')).toContain(
      `\`--hold\` keeps sending the file's last price every ${HOLD_EVERY_SECONDS} s (\`--hold-every\`)`,
    );
  });

  it("states the built-in markets' timing and bands as the configuration has them", () => {
    const m = marketConfig(DEFAULT_RISK_CONFIG, 'ETH-USD');
    const percent = (ppm: bigint) => `${Number(formatPpm(ppm)) * 100} %`;
    for (const [name, value] of [
      ['maxTickAgeSeconds', m.maxTickAgeSeconds],
      ['maxClockSkewSeconds', m.maxClockSkewSeconds],
      ['maxMarkAgeSeconds', m.maxMarkAgeSeconds],
      ['breakerConfirmSeconds', m.breakerConfirmSeconds],
      ['alarmTickSilenceMinutes', loadConfig({}).alarmTickSilenceMinutes],
    ] as const) {
      expect(feed, name).toContain(`\`${name}\` [${value}]`);
    }
    expect(feed).toContain(`\`priceBand\` [${percent(m.priceBand)}]`);
    expect(feed).toContain(`\`indexBand\` of it (${percent(m.indexBand)} by default)`);
    expect(feed).toContain(`\`maxSequenceJump\` (${m.maxSequenceJump.toLocaleString('en-US')} by default)`);
    expect(m.priceWindowSeconds).toBe(0);
  });

  it("names the bus's source and detail type, PutEvents' batch and the publisher's retries as they are", () => {
    expect(feed).toContain(`\`${TICK_BUS.source}\` exactly`);
    expect(feed).toContain(`\`${TICK_BUS.detailType}\` exactly`);
    expect(PUT_EVENTS_BATCH).toBe(10);
    expect(feed).toContain('**10 entries a call** (`PUT_EVENTS_BATCH`)');
    expect([...RETRYABLE_ENTRY_CODES].sort()).toEqual(['InternalFailure', 'ThrottlingException']);
    expect(feed).toContain('(`InternalFailure`,\n  `ThrottlingException`)');
    const waits = Array.from({ length: DEFAULT_RETRY.attempts - 1 }, (_, i) =>
      Math.min(DEFAULT_RETRY.maxDelayMs, DEFAULT_RETRY.firstDelayMs * 2 ** i),
    );
    expect(waits).toEqual([100, 200, 400, 800]);
    expect(feed).toContain(`(${DEFAULT_RETRY.attempts} attempts, waits of\n  up to 100, 200, 400 and 800 ms`);
  });

  it("names TickPublishError's and PutEntriesError's fields as they are (feed47-publish-error-fates)", () => {
    const outcome = { accepted: 0, rejected: [], unknown: [], eventIds: [] };
    const published = new TickPublishError([], [], [], outcome, new Error('x'));
    for (const field of ['refused', 'unknown', 'unsent', 'outcome', 'cause'] as const) {
      expect(published, field).toHaveProperty(field);
      expect(feed, field).toContain(`\`.${field}\``);
    }
    const put = new PutEntriesError(outcome, [], [], new Error('x'));
    for (const field of ['outcome', 'unknown', 'unsent'] as const) expect(put, field).toHaveProperty(field);
    for (const field of ['eventIds', 'rejected', 'unknown'] as const) {
      expect(outcome, field).toHaveProperty(field);
      expect(feed, field).toContain(`(\`${field}\``);
    }
    expect(feed).toContain("`scope`: `'entry'`, or `'call'` for a call refused whole");
  });

  it('says in "Who may publish" that a refusal, of the entry or its call, leaves of unknown fate an entry an earlier call got no answer for (security50-feed-refusal-fates)', () => {
    const section = feed
      .slice(feed.indexOf('## Who may publish'), feed.indexOf('## PutEvents: limits'))
      .replace(/\s+/g, ' ');
    // putEntries' `refuse` takes both scopes alike (test/unit/feed-publisher-answers.test.ts, feed49b-held-refused-unknown).
    expect(section).toContain(
      'Either refusal, of the entry or of its call, says the entry is not on the bus, but for one an earlier call of which got no answer, or an answer that said nothing of it',
    );
    expect(section).toContain(
      "reported of unknown fate with the refusal's code, not refused (`unknown`, not `rejected`",
    );
    expect(section).not.toMatch(/none of them on the bus \(but one/);
  });

  it('names only metrics the functions emit and reasons margin-check gives', () => {
    for (const [, name] of feed.matchAll(
      /`(Ticks(?:Accepted|Rejected\w*)|CircuitBreakerTripped|StaleMarkWaits)`/g,
    ))
      expect(Object.keys(METRICS), name).toContain(name);
    const sources = [
      'shared/domain/tick.ts',
      'shared/schemas/tick.ts',
      'shared/services/margin-check.ts',
    ].map(repoFile);
    const reasons = new Set([...feed.matchAll(/`(tick\/[a-z-]+)`/g)].map((match) => match[1]!));
    expect(reasons.size).toBeGreaterThan(15);
    for (const reason of reasons) {
      expect(
        sources.some((s) => s.includes(`'${reason}'`) || s.includes(`\`${reason}`)),
        reason,
      ).toBe(true);
    }
  });

  it('says what margin-check makes of a stamp in epoch seconds, on a live market and a new one (review46-epoch-seconds)', () => {
    const m = marketConfig(DEFAULT_RISK_CONFIG, 'ETH-USD');
    const nowMs = 1_767_225_600_000;
    const tick = {
      symbol: 'ETH-USD',
      markPrice: parsePrice('1520.5'),
      timestampMs: nowMs / 1000,
      sequence: 8,
      source: 'doc',
    };
    const lastTick = { sequence: 7, markPrice: parsePrice('1520'), timestampMs: nowMs - 1_000 };
    const reason = (verdict: ReturnType<typeof evaluateTick>) =>
      verdict.verdict === 'reject' ? verdict.reason : 'accepted';
    const live = reason(evaluateTick(tick, { lastTick }, m, nowMs));
    const fresh = reason(evaluateTick(tick, {}, m, nowMs));
    expect([live, fresh]).toEqual(['tick/out-of-order', 'tick/too-old']);
    // Before: "refused as `tick/too-old` (1970)", on every market; on a live one it pages TicksOutOfOrderAlarm.
    const flat = feed.replace(/\s+/g, ' ');
    expect(flat).toContain(
      `Epoch seconds pass the schema as a time in January 1970: refused as \`${live}\` on a market with an accepted tick`,
    );
    expect(flat).toContain(`as \`${fresh}\` on a market without one`);
  });

  it('refuses every markPrice and timestamp it says are refused, and takes the ones it gives as examples', () => {
    const detail = (over: Record<string, unknown>) => ({
      symbol: 'ETH-USD',
      markPrice: '1520.5',
      timestamp: 1_767_225_600_000,
      sequence: 1,
      source: 'doc',
      ...over,
    });
    for (const markPrice of [1520.5, '1.5e3', '1.123456789', '0', '-1', '+1', ' 1', '1,520.5', '.5', '5.']) {
      expect(parseTickDetail(detail({ markPrice })), String(markPrice)).toMatchObject({ ok: false });
    }
    expect(parseTickDetail(detail({ markPrice: 1520.5 }))).toMatchObject({
      reason: expect.stringContaining('expected string, received number'),
    });
    for (const markPrice of ['1520.5', '0.00012345', '1'.repeat(22)]) {
      expect(parseTickDetail(detail({ markPrice })), markPrice).toMatchObject({ ok: true });
    }
    expect(parseTickDetail(detail({ markPrice: '1'.repeat(23) }))).toMatchObject({ ok: false });
    for (const timestamp of ['2026-01-01T00:00:00.123Z', '2026-01-01T01:00:00+01:00', 0, 8.64e15])
      expect(parseTickDetail(detail({ timestamp })), String(timestamp)).toMatchObject({ ok: true });
    for (const timestamp of ['2026-01-01T00:00:00', 1.5, -1, 8.64e15 + 1])
      expect(parseTickDetail(detail({ timestamp })), String(timestamp)).toMatchObject({ ok: false });
    for (const [field, value] of [
      ['sequence', '1'],
      ['sequence', 1.5],
      ['sequence', -1],
      ['source', ''],
      ['source', 'x'.repeat(65)],
      ['indexprice', '1520'],
    ] as const) {
      expect(parseTickDetail(detail({ [field]: value })), `${field} ${value}`).toMatchObject({ ok: false });
    }
  });

  // review49-tidy-publisher-imports: FEED.md said the publisher took in nothing of Backstop but the SDK and the schema;
  // it imported five modules more, and session 49 a sixth (shared/error-text.ts): a copy made from the page failed.
  it('names every module of Backstop the publisher takes in, and which only for their types', () => {
    const publisher = 'shared/feed/publisher.ts';
    // What it runs: as a bundler takes it in, the packages left out.
    const out = buildSync({
      entryPoints: [publisher],
      absWorkingDir: fileURLToPath(new URL('../../', import.meta.url)),
      bundle: true,
      platform: 'node',
      format: 'esm',
      external: ['@aws-sdk/*', 'zod'],
      metafile: true,
      write: false,
      logLevel: 'silent',
    });
    const runs = Object.keys(out.metafile.inputs).filter((m) => m !== publisher);
    const packages = Object.values(out.metafile.outputs).flatMap((o) => o.imports.map((i) => i.path));
    // What a type check reads too: every relative import, `import type` included.
    const all = new Set<string>();
    const walk = (module: string) => {
      if (all.has(module)) return;
      all.add(module);
      for (const [, spec] of repoFile(module).matchAll(/from '(\.[^']+)'/g))
        walk(path.posix.normalize(path.posix.join(path.posix.dirname(module), spec!)));
    };
    walk(publisher);
    all.delete(publisher);
    const section = feed.slice(feed.indexOf(`## The publisher: ${publisher}`), feed.indexOf('Its calls:'));
    const [imports, types] = section.split('Types only:') as [string, string];
    const named = (text: string) => [...text.matchAll(/`(shared\/[\w/.-]+\.ts)`/g)].map((m) => m[1]!);
    expect(new Set(named(imports))).toEqual(new Set(runs));
    expect(new Set([...named(imports), ...named(types)])).toEqual(all);
    expect(new Set(packages)).toEqual(new Set(['@aws-sdk/client-eventbridge', 'zod']));
    for (const p of packages) expect(imports).toContain(`\`${p}\``);
  });

  // integrate50: an exchange's engineer wrote a publisher from this page alone (test/integration/feed-doc-publisher.test.ts).
  describe('read as a first-time integrator would', () => {
    const snippets = tsSnippets(feed);
    const table = (heading: string) => {
      const from = feed.indexOf(heading);
      const rows = feed.slice(from).split('\n\n')[1]!;
      return [...rows.matchAll(/^\| `(\w+)` \| ([^|]*) \|/gm)].map((m) => ({
        field: m[1]!,
        type: m[2]!.trim(),
      }));
    };

    it("gives margin-check's verdict on each print its tables and lists describe", () => {
      const m = marketConfig(DEFAULT_RISK_CONFIG, 'ETH-USD');
      const now = 1_767_225_600_000;
      const last = { sequence: 100, markPrice: parsePrice('2000'), timestampMs: now - 1_000 };
      const tick = (over: Partial<Tick> = {}): Tick => ({
        symbol: 'ETH-USD',
        markPrice: parsePrice('2001'),
        timestampMs: now,
        sequence: 101,
        source: 'doc',
        ...over,
      });
      const verdict = (t: Tick, state: TickState = { lastTick: last }, at = now) => {
        const v = evaluateTick(t, state, m, at);
        return v.verdict === 'reject' ? v.reason : v.closeBreaker ? v.reason : 'accepted';
      };
      const held = (markPrice: string, trippedAtMs: number): TickState => ({
        lastTick: last,
        breaker: {
          reason: 'tick/price-band',
          trippedAtMs,
          tick: { sequence: 101, markPrice: parsePrice(markPrice), timestampMs: trippedAtMs },
        },
      });
      const jump = m.maxSequenceJump;
      const skew = m.maxClockSkewSeconds * 1000;
      // Each case is the page's own words, the verdict they give included (the last `tick/...` they name; an accepted
      // print's words name none): a row or a sentence saying another reason fails, not only a phrase gone
      // (review50-integrate-feed-verdict-unbound).
      const cases: [string, string, Tick, TickState?][] = [
        // "The sequence"'s table, row by row.
        [
          'above the last, by at most `maxSequenceJump` (1,000,000 by default) | judged as usual (timing, band, breaker) |',
          'accepted',
          tick({ sequence: 100 + jump }),
        ],
        [
          'equal to the last (or to the tick its breaker holds) | refused as `tick/duplicate`',
          'tick/duplicate',
          tick({ sequence: 100 }),
        ],
        [
          '| below the last | refused as `tick/out-of-order`',
          'tick/out-of-order',
          tick({ sequence: 99, timestampMs: last.timestampMs }),
        ],
        [
          'refused as `tick/out-of-order` (also a higher number stamped before the last accepted tick)',
          'tick/out-of-order',
          tick({ timestampMs: last.timestampMs - 1 }),
        ],
        [
          'below the last yet stamped more than `maxClockSkewSeconds` (5 s) after its last recorded print (its last accepted tick, or the one its breaker holds) | held as `tick/sequence-behind`',
          'tick/sequence-behind',
          tick({ sequence: 99, timestampMs: last.timestampMs + skew + 1 }),
        ],
        // The print its breaker holds, stamped after the last tick, moves the cut-off (final50a-feed-behind-breaker).
        [
          'below the last yet stamped more than `maxClockSkewSeconds` (5 s) after its last recorded print (its last accepted tick, or the one its breaker holds) | held as `tick/sequence-behind`',
          'tick/sequence-behind',
          tick({ sequence: 99, timestampMs: now - 500 + skew + 1 }),
          held('2001', now - 500),
        ],
        [
          '| below the last | refused as `tick/out-of-order`',
          'tick/out-of-order',
          tick({ sequence: 99, timestampMs: last.timestampMs + skew + 1 }),
          held('2001', now - 500),
        ],
        [
          'above the last by more than `maxSequenceJump` | held as `tick/sequence-jump`',
          'tick/sequence-jump',
          tick({ sequence: 101 + jump }),
        ],
        // A print numbered as the held one, at another price (review52-feed-held-number-reused).
        [
          'another print under that number as `tick/duplicate`',
          'tick/duplicate',
          tick({ sequence: 101 + jump }),
          {
            lastTick: last,
            heldJump: {
              tick: { sequence: 101 + jump, markPrice: parsePrice('2000'), timestampMs: now },
              heldAtMs: now,
            },
          },
        ],
        // "Timing".
        [
          "A tick stamped more than `maxTickAgeSeconds` [60] before margin-check's clock is refused as `tick/too-old`",
          'tick/too-old',
          tick({ timestampMs: now - 60_001 }),
          {},
        ],
        [
          'one more than `maxClockSkewSeconds` [5] ahead as `tick/future`',
          'tick/future',
          tick({ timestampMs: now + skew + 1 }),
        ],
        ['one ahead within the skew counts as stamped now.', 'accepted', tick({ timestampMs: now + skew })],
        // "The detail" and "The band and the breaker".
        [
          'the mark must lie within `indexBand` of it (10 % by default) or the tick is refused as `tick/index-band`',
          'tick/index-band',
          tick({ indexPrice: parsePrice('1800') }),
        ],
        [
          "**A market's first print** is never trusted alone: held (`tick/unconfirmed`",
          'tick/unconfirmed',
          tick(),
          {},
        ],
        [
          'opens the market (logged at INFO as `circuit breaker closed`, `tick/first-confirmed`',
          'tick/first-confirmed',
          tick({ sequence: 102 }),
          { breaker: { ...held('2001', now - 1_000).breaker! } },
        ],
        [
          '**A print further than `priceBand` [15 %] from the last mark** (or, with `priceWindowSeconds`, from the mark that opened the current window: `tick/window-band`) trips the circuit breaker (`tick/price-band`',
          'tick/price-band',
          tick({ markPrice: parsePrice('1600') }),
        ],
        [
          'The next print within the band of that mark closes the breaker (the print was bad: `tick/breaker-reverted`',
          'tick/breaker-reverted',
          tick({ sequence: 102 }),
          held('1600', now - 1_000),
        ],
        [
          "at least `breakerConfirmSeconds` after it by its stamp and by margin-check's clock, confirms the move (`tick/breaker-persisted`",
          'tick/breaker-persisted',
          tick({ sequence: 102, markPrice: parsePrice('1601') }),
          held('1600', now - 5_000),
        ],
        [
          'agreeing with it sooner, it is refused (`tick/breaker-confirming`',
          'tick/breaker-confirming',
          tick({ sequence: 102, markPrice: parsePrice('1601') }),
          held('1600', now - 4_999),
        ],
        [
          'A print agreeing with neither is held instead (`tick/breaker-open`',
          'tick/breaker-open',
          tick({ sequence: 102, markPrice: parsePrice('1200') }),
          held('1600', now - 1_000),
        ],
      ];
      const flat = feed.replace(/\s+/g, ' ');
      for (const [said, reason, t, state] of cases) {
        expect(flat, said).toContain(said);
        const named = [...said.matchAll(/`(tick\/[a-z-]+)`/g)].map((m) => m[1]!);
        expect(named.at(-1) ?? 'accepted', `what the page says of: ${said}`).toBe(reason);
        expect(verdict(t, state), said).toBe(reason);
      }
    });

    it("names the detail's fields as the schema has them, the optional ones as optional", () => {
      const rows = table('The detail (shared/schemas/tick.ts)');
      const shape = priceTickDetailSchema.shape;
      expect(rows.map((r) => r.field).sort()).toEqual(Object.keys(shape).sort());
      for (const { field, type } of rows)
        expect(type.includes('optional'), field).toBe(
          shape[field as keyof typeof shape].safeParse(undefined).success,
        );
    });

    it('parses prices into integer units of 1e-8, as it says', () => {
      expect(feed.replace(/\s+/g, ' ')).toContain(
        'it is parsed into integer units of 1e-8 and never passes through a float',
      );
      const parsed = parseTickDetail({
        symbol: 'ETH-USD',
        markPrice: '1520.5',
        indexPrice: '0.00012345',
        timestamp: '2026-01-01T00:00:00.123Z',
        sequence: 1,
        source: 'doc',
      });
      expect(parsed).toMatchObject({
        ok: true,
        tick: {
          markPrice: 152_050_000_000n,
          indexPrice: 12_345n,
          timestampMs: Date.UTC(2026, 0, 1, 0, 0, 0, 123),
        },
      });
    });

    it("names the entry's fields as the publisher writes them", () => {
      const rows = table('One PutEvents entry per tick:');
      expect(rows.map((r) => r.field).sort()).toEqual(Object.keys(tickEntry('bus', {} as never)).sort());
    });

    it('gives the publisher the integration test runs on the local stack, line for line', () => {
      const example = snippets.find((s) => s.includes('publishTicks(events, BUS, ticks)'))!;
      expect(example).toContain("from './shared/feed/publisher.ts'");
      const body = lines(example.slice(example.indexOf('const next =')));
      const copy = lines(repoFile('test/integration/feed-doc-publisher.test.ts'));
      const at = copy.indexOf(body[0]!);
      expect(at).toBeGreaterThan(0);
      expect(copy.slice(at, at + body.length)).toEqual(body);
    });

    it('points a local publisher at what `local up` starts: its port, region, stage and bus', () => {
      const local = snippets.find((s) => s.includes('endpoint:'))!;
      expect(local).toContain(`endpoint: 'http://${MOTO_HOST}:${DEFAULT_LOCAL_PORT}'`);
      expect(local).toContain("region: 'us-east-1'");
      const bus = physicalName(DEFAULT_LOCAL_STAGE, TICK_BUS.name);
      expect(local).toContain(`publishTicks(events, '${bus}', ticks)`);
      const flat = feed.replace(/\s+/g, ' ');
      expect(flat).toContain(
        `moto on \`http://${MOTO_HOST}:${DEFAULT_LOCAL_PORT}\`, the stage \`${DEFAULT_LOCAL_STAGE}\` and its bus \`${bus}\` in \`us-east-1\``,
      );
    });

    it('names every reason margin-check gives a tick of the feed', () => {
      const given = new Set(
        ['shared/domain/tick.ts', 'shared/schemas/tick.ts', 'shared/services/margin-check.ts'].flatMap(
          (file) => [...repoFile(file).matchAll(/['`](tick\/[a-z-]+)/g)].map((m) => m[1]!),
        ),
      );
      // A continuation's, which margin-check puts itself, never the feed.
      given.delete('tick/continuation-done');
      expect(given.size).toBeGreaterThan(15);
      for (const reason of given) expect(feed, reason).toContain(`\`${reason}\``);
    });

    it("names the publisher's calls with their parameters, its exports and the policy's codes as they are", async () => {
      const publisher = await import('../../shared/feed/publisher.ts');
      const source = repoFile('shared/feed/publisher.ts');
      const calls = [...feed.matchAll(/`(tickDetail|putEntries|publishTicks)\(([^)]*)\)`/g)];
      expect(calls.map((c) => c[1])).toEqual(['tickDetail', 'putEntries', 'publishTicks']);
      for (const [, name, params] of calls) {
        const declared = new RegExp(`export (?:async )?function ${name}\\(([^)]*)\\)`).exec(source)![1]!;
        const names = declared
          .split(',')
          .map((p) => p.trim().split(/[?:]/)[0])
          .filter(Boolean);
        expect(names.join(', '), name).toBe(params);
      }
      for (const name of [
        'tickDetail',
        'putEntries',
        'publishTicks',
        'TickInputError',
        'PutEntriesError',
        'TickPublishError',
        'DEFAULT_RETRY',
        'PUT_EVENTS_BATCH',
        'retryableBySdk',
        'refusedForEveryCall',
      ]) {
        expect(feed, name).toContain(`\`${name}`);
        expect(publisher, name).toHaveProperty(name);
      }
      const who = feed.slice(feed.indexOf('**A refusal by the bus'), feed.indexOf('## PutEvents: limits'));
      const policy = [...who.matchAll(/`(\w+Exception)` \(/g)].map((m) => m[1]!);
      expect(policy.sort()).toEqual([...POLICY_ENTRY_CODES].sort());
      expect(source).toContain('events/not-sent: a PutEvents call was NOT sent');
    });

    pageReferenceTests(feed, { sectionsAbove: 2, filesAbove: 5, findingsAbove: 10 });
  });
});
