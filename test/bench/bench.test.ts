import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { markCrossing, restingMark, syntheticBook } from '../../bench/book.ts';
import { CODE_LAYERS } from '../../bench/layers.ts';
import { type BenchResults, renderMarkdown } from '../../bench/results.ts';
import { benchIdsOf, defaultOutDir } from '../../bench/run.ts';
import { itemBytes } from '../../shared/adapters/aws/item-size.ts';
import { createEmbeddedAdapters } from '../../shared/adapters/embedded/index.ts';

/**
 * The benchmark must not rot: `BENCH_SHORT=1 npm run bench` (small sizes, the emulator included) runs here and its
 * results keep the shape scripts read, with sane values. Timing thresholds are not asserted (they flake on shared
 * machines); orders of magnitude that cannot flake are.
 */

const ROOT = join(import.meta.dirname, '..', '..');
let outDir: string;
let results: BenchResults;
let markdown: string;

function runShortBench(dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts'], {
      cwd: ROOT,
      env: { ...process.env, BENCH_SHORT: '1', BENCH_PROFILE: '1', BENCH_OUT_DIR: dir },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`bench exited with ${code}:\n${stderr.slice(-4000)}`)),
    );
  });
}

beforeAll(async () => {
  outDir = mkdtempSync(join(tmpdir(), 'bench-'));
  await runShortBench(outDir);
  results = JSON.parse(readFileSync(join(outDir, 'results.json'), 'utf8')) as BenchResults;
  markdown = readFileSync(join(outDir, 'RESULTS.md'), 'utf8');
}, 300_000);

afterAll(() => {
  if (outDir) rmSync(outDir, { recursive: true, force: true });
});

describe('npm run bench (short)', () => {
  it('writes every key of the stable shape', () => {
    expect(Object.keys(results).sort()).toEqual(
      ['apiCalls', 'evaluationsPerSecond', 'latencyMs', 'machine', 'marginCheck', 'replay'].sort(),
    );
    for (const row of results.marginCheck) {
      expect(Object.keys(row).sort()).toEqual(
        ['crossed', 'indexMsPerTick', 'positions', 'ratio', 'scanMsPerTick'].sort(),
      );
    }
    expect(results.replay).toMatchObject({
      positions: expect.any(Number),
      ticks: expect.any(Number),
      liquidations: expect.any(Number),
      seconds: expect.any(Number),
    });
    expect(results.apiCalls).toMatchObject({
      tickNoCross: expect.any(Number),
      tickPerCrossed: expect.any(Number),
      liquidationMarket: expect.any(Number),
      liquidationAuction: expect.any(Number),
      liquidationInsurance: expect.any(Number),
      liquidationAdl: expect.any(Number),
    });
    expect(results.latencyMs).toMatchObject({
      enqueueP50: expect.any(Number),
      enqueueP99: expect.any(Number),
      settleP50: expect.any(Number),
      settleP99: expect.any(Number),
    });
    expect(results.machine.mode).toBe('short');
    expect(results.machine.cores).toBeGreaterThan(0);
  });

  // Speeds are the benchmark's to judge (its targets), not this test's: it checks the shape and the arithmetic.
  it('measures every book size and crossing', () => {
    const sizes = [...new Set(results.marginCheck.map((r) => r.positions))];
    const crossings = [...new Set(results.marginCheck.map((r) => r.crossed))];
    expect(results.marginCheck).toHaveLength(sizes.length * crossings.length);
    for (const row of results.marginCheck) {
      expect(row.indexMsPerTick).toBeGreaterThan(0);
      // Each field is rounded to 4 significant digits: the ratio agrees within 0.1 %.
      expect(Math.abs(row.ratio / (row.scanMsPerTick / row.indexMsPerTick) - 1)).toBeLessThan(1e-3);
      expect(row.scanMsPerTick).toBeGreaterThan(0);
    }
    expect(Number.isFinite(results.evaluationsPerSecond)).toBe(true);
    expect(results.evaluationsPerSecond).toBeGreaterThan(0);
  });

  it('replays both ETH legs to the end', () => {
    const replay = results.replay!;
    expect(replay.ticks).toBeGreaterThanOrEqual(148 + 287);
    expect(replay.liquidations).toBeGreaterThan(0);
    expect(replay.seconds).toBeGreaterThan(0);
    expect(replay.legs.map((l) => l.errors)).toEqual([0, 0]);
    // Each leg's own thread time: the replay's CPU (more than none, never more than one core's wall time allows).
    for (const leg of replay.legs) {
      expect(leg.cpuSeconds).toBeGreaterThan(0);
      expect(leg.cpuSeconds).toBeLessThanOrEqual(leg.seconds * 1.05 + 0.05);
    }
    // The process's CPU holds the legs' threads and their helpers (rounding to 4 significant digits aside).
    const legsCpu = replay.legs.reduce((a, l) => a + l.cpuSeconds, 0);
    expect(replay.processCpuSeconds).toBeGreaterThanOrEqual(legsCpu * 0.999);
  });

  it('replays smaller books too, ending with the main one, for how the time grows with the book', () => {
    const replay = results.replay!;
    const scaling = replay.scaling!;
    expect(scaling.map((p) => p.positions)).toEqual([500, 1_000, replay.positions]);
    const main = scaling.at(-1)!;
    expect(main.liquidations).toBe(replay.liquidations);
    expect(main.legsCpuSeconds).toBeCloseTo(
      replay.legs.reduce((a, l) => a + l.cpuSeconds, 0),
      2,
    );
    for (const point of scaling) {
      expect(point.liquidations).toBeGreaterThan(0);
      // Every liquidation ends in exactly one terminal state: the settlements add up to the liquidations.
      expect(Object.values(point.settledBy).reduce((a, b) => a + b, 0)).toBe(point.liquidations);
      expect(point.cpuMicrosPerLiquidation).toBeCloseTo(
        (point.legsCpuSeconds * 1e6) / point.liquidations,
        -1,
      );
    }
    // A bigger book liquidates more of the same crash.
    expect(scaling[0]!.liquidations).toBeLessThan(scaling[1]!.liquidations);
    expect(scaling[1]!.liquidations).toBeLessThan(main.liquidations);
    expect(markdown).toContain('How it grows with the book');
    expect(markdown).toMatch(/\| 2,000 \| [\d,]+ \| \d+ % \| \d+ % \| \d+ % \|/);
  });

  it('profiles each replay leg by layer of the code (BENCH_PROFILE=1)', () => {
    for (const leg of results.replay!.legs) {
      const byLayer = leg.secondsByLayer!;
      expect(Object.keys(byLayer).sort()).toEqual([...CODE_LAYERS].sort());
      for (const layer of CODE_LAYERS) expect(byLayer[layer]).toBeGreaterThanOrEqual(0);
      // Every replay runs the services on the embedded adapters and the domain: none of them can be unseen.
      for (const layer of ['embeddedAdapters', 'services', 'domain'] as const) {
        expect(byLayer[layer], `${leg.file} ${layer}`).toBeGreaterThan(0);
      }
    }
    expect(markdown).toContain("Where each leg's thread time went");
    expect(markdown).toContain('| the pure domain (shared/domain) |');
  });

  it('counts the AWS calls of each unit of work within the targets the design guarantees', () => {
    const a = results.apiCalls!;
    expect(a.tickNoCross).toBeLessThanOrEqual(3);
    expect(a.tickPerCrossed).toBeGreaterThan(0);
    for (const n of [a.liquidationMarket, a.liquidationAuction, a.liquidationInsurance, a.liquidationAdl]) {
      expect(n).toBeGreaterThan(a.tickPerCrossed);
    }
    // Index shards cost a Query each, and nothing else.
    const sharded = a.detail.tickNoCrossSharded;
    expect(sharded.byOperation['dynamodb.Query']).toBe(
      sharded.shards * a.detail.tickNoCrossByOperation['dynamodb.Query']!,
    );
    expect(sharded.calls - sharded.byOperation['dynamodb.Query']!).toBe(
      a.tickNoCross - a.detail.tickNoCrossByOperation['dynamodb.Query']!,
    );
    expect(markdown).toContain(
      `| tick crossing nothing, market with ${sharded.shards} index shards | ${sharded.calls} |`,
    );
  });

  it('orders the latencies: a liquidation settles after it is enqueued', () => {
    const l = results.latencyMs!;
    expect(l.enqueueP50).toBeGreaterThanOrEqual(0);
    expect(l.enqueueP99).toBeGreaterThanOrEqual(l.enqueueP50);
    expect(l.settleP50).toBeGreaterThanOrEqual(l.enqueueP50);
    expect(l.settleP99).toBeGreaterThanOrEqual(l.settleP50);
  });

  it('renders the markdown tables', () => {
    for (const heading of ['## Targets', '## 1.', '## 2.', '## 3.', '## 4.'])
      expect(markdown).toContain(heading);
    expect(markdown).toContain('| positions | crossed |');
    // One run measured every part: no line about parts from other runs, and each part knows its machine.
    expect(markdown).not.toContain('Parts measured in separate runs');
    for (const part of Object.values(results.machine.parts)) expect(part.cpu).toBe(results.machine.cpu);
  });

  it('says when and where each part was measured once a partial run kept older parts', () => {
    const older = { date: '2026-01-01T10:00:00.000Z', loadAverage: [1, 1, 1], cpu: 'older cpu' };
    const mixed = renderMarkdown({
      ...results,
      machine: { ...results.machine, parts: { ...results.machine.parts, replay: older } },
    });
    expect(mixed).toMatch(/Parts measured in separate runs: replay 2026-01-01T10:00:00.000Z \(older cpu\); /);
    // Every part of this run is dated after the run's start, even minutes apart: no such line.
    expect(Object.values(results.machine.parts).every((p) => p.date >= results.machine.date)).toBe(true);
  });
});

describe('benchmark building blocks', () => {
  it.each([0, 1, 10, 100])('a tick at markCrossing(book, %i) crosses exactly that many longs', async (k) => {
    const book = syntheticBook(2_000);
    const adapters = createEmbeddedAdapters();
    adapters.positions.createMany(book.positions);
    const page = await adapters.positions.queryCrossed('ETH-USD', 'LONG', markCrossing(book, k), 5_000);
    expect(page.positions).toHaveLength(k);
    const resting = await adapters.positions.queryCrossed('ETH-USD', 'SHORT', restingMark(book), 5_000);
    expect(resting.positions).toHaveLength(0);
  });

  it('sizes DynamoDB items by the published rules (names + values, numbers by digits)', () => {
    // 'id' (2) + 'abc' (3) + 'n' (1) + 12345 (3 digits pairs: ceil(5/2) + 1 = 4) = 10 bytes.
    expect(itemBytes({ id: { S: 'abc' }, n: { N: '12345' } })).toBe(10);
    // A list: 3 bytes + 1 per element + elements.
    expect(itemBytes({ l: { L: [{ S: 'ab' }, { BOOL: true }] } })).toBe(1 + 3 + (1 + 2) + (1 + 1));
    expect(itemBytes(undefined)).toBe(0);
  });
});

describe('the ids part 3 runs with (cost52-real-ids)', () => {
  it("is a real exchange's unless BENCH_IDS says the tests' short ones, and RESULTS.md says which", () => {
    expect(benchIdsOf({})).toBe('uuid');
    expect(benchIdsOf({ BENCH_IDS: 'short' })).toBe('short');
    expect(() => benchIdsOf({ BENCH_IDS: 'long' })).toThrow('bench/bad-ids: long (ids: uuid, short)');
    expect(results.apiCalls!.ids).toBe('uuid');
    expect(markdown).toContain("Ids: a real exchange's ids (BENCH_IDS=uuid)");
    const market = results.apiCalls!.detail.layers.market;
    expect(markdown).toContain(
      `the settlement's units ${market.readUnits} read, ${market.writeUnits} write |`,
    );
    // Results of a run before session 52 carry no ids: they were the short ones.
    const { ids: _ids, ...before } = results.apiCalls!;
    expect(renderMarkdown({ ...results, apiCalls: before })).toContain("Ids: the tests' short ids");
  });
});

describe('where a benchmark writes', () => {
  it('writes a short run outside the folder of the committed full-size results', () => {
    // Found by a walk through the docs in session 37: `BENCH_SHORT=1 npm run bench` rewrote bench/results.json.
    const bench = join(ROOT, 'bench');
    expect(defaultOutDir({})).toBe(bench);
    expect(defaultOutDir({ BENCH_SHORT: '1' })).toBe(join(tmpdir(), 'backstop-bench-short'));
  });
});
