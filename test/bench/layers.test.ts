import type { Profiler } from 'node:inspector';
import { describe, expect, it } from 'vitest';
import { bundleModules, CODE_LAYERS, layerOfModule, timeByLayer } from '../../bench/layers.ts';

/** A profile of one root and the given frames, each sampled for `micros` microseconds. */
function profileOf(
  frames: readonly { url: string; line: number; name?: string; micros: number }[],
): Profiler.Profile {
  const nodes: Profiler.ProfileNode[] = [
    {
      id: 1,
      callFrame: { functionName: '(root)', scriptId: '0', url: '', lineNumber: -1, columnNumber: -1 },
    },
  ];
  const samples: number[] = [];
  const timeDeltas: number[] = [];
  frames.forEach((f, i) => {
    const id = i + 2;
    nodes.push({
      id,
      callFrame: {
        functionName: f.name ?? `f${i}`,
        scriptId: '1',
        url: f.url,
        lineNumber: f.line,
        columnNumber: 0,
      },
    });
    samples.push(id);
    timeDeltas.push(f.micros);
  });
  return { nodes, startTime: 0, endTime: 1, samples, timeDeltas };
}

const BUNDLE = [
  "import { createRequire } from 'node:module';",
  '// node_modules/zod/v4/core/core.js',
  'function zodThing() {}',
  '// shared/domain/units.ts',
  'function div() {}',
  '// shared/adapters/embedded/queue.ts',
  'class EmbeddedQueue {}',
  '// shared/services/auction.ts',
  'async function stepOnce() {}',
  '// shared/sim/engine.ts',
  'async function runSimulation() {}',
].join('\n');

describe('bench layers', () => {
  it('classifies modules by their path, bundled or from a file URL', () => {
    expect(layerOfModule('shared/adapters/embedded/queue.ts')).toBe('embeddedAdapters');
    expect(layerOfModule('file:///work/main/shared/services/liquidation.ts')).toBe('services');
    expect(layerOfModule('../main/shared/domain/units.ts')).toBe('domain');
    expect(layerOfModule('shared/adapters/venue/simulated.ts')).toBe('simulation');
    expect(layerOfModule('shared/sim/recorder.ts')).toBe('simulation');
    expect(layerOfModule('shared/schemas/messages.ts')).toBe('messages');
    expect(layerOfModule('node_modules/zod/v4/core/core.js')).toBe('messages');
    // What the embedded stores run outside their folder: the copy each write stores, its item's size bound.
    expect(layerOfModule('shared/frozen.ts')).toBe('embeddedAdapters');
    expect(layerOfModule('file:///work/main/shared/adapters/aws/record-items.ts')).toBe('embeddedAdapters');
    expect(layerOfModule('shared/adapters/aws/item-size.ts')).toBe('embeddedAdapters');
    // The AWS adapters themselves never run in a replay; anything unknown is "other", never a guess.
    expect(layerOfModule('shared/adapters/aws/ledger.ts')).toBe('other');
    expect(layerOfModule('node:internal/timers')).toBe('other');
  });

  it("finds a bundle line's module from the comment that opens it", () => {
    const moduleAt = bundleModules(BUNDLE);
    expect(moduleAt(0)).toBeUndefined();
    expect(moduleAt(2)).toBe('node_modules/zod/v4/core/core.js');
    expect(moduleAt(3)).toBe('shared/domain/units.ts');
    expect(moduleAt(4)).toBe('shared/domain/units.ts');
    expect(moduleAt(8)).toBe('shared/services/auction.ts');
    expect(moduleAt(10)).toBe('shared/sim/engine.ts');
    expect(moduleAt(10_000)).toBe('shared/sim/engine.ts');
  });

  it('sums the sampled self time per layer, in seconds', () => {
    const url = 'file:///tmp/replay-worker.mjs';
    const profile = profileOf([
      { url, line: 4, micros: 2_000_000 },
      { url, line: 4, micros: 500_000 },
      { url, line: 6, micros: 1_250_000 },
      { url, line: 8, micros: 750_000 },
      { url, line: 10, micros: 300_000 },
      { url, line: 2, micros: 100_000 },
      { url: '', line: -1, name: '(garbage collector)', micros: 900_000 },
      { url: '', line: -1, name: '(program)', micros: 200_000 },
      // Outside the bundle: classified by its own URL.
      { url: 'file:///work/main/shared/services/wake.ts', line: 3, micros: 50_000 },
    ]);
    expect(timeByLayer(profile, { url, source: BUNDLE })).toEqual({
      embeddedAdapters: 1.25,
      services: 0.8,
      domain: 2.5,
      simulation: 0.3,
      messages: 0.1,
      collector: 0.9,
      other: 0.2,
    });
    // Without the bundle its frames are "other": a bundle URL names no module.
    const unbundled = timeByLayer(profile);
    expect(unbundled.other).toBeCloseTo(0.2 + 2.5 + 1.25 + 0.75 + 0.3 + 0.1, 9);
    expect(unbundled.services).toBe(0.05);
    expect(Object.keys(unbundled).sort()).toEqual([...CODE_LAYERS].sort());
  });
});
