import type { Profiler } from 'node:inspector';

/**
 * Where a replay's thread time goes, by layer of the code: the self time of V8's CPU profile, summed per
 * module and the modules grouped. It answers the question every replay optimization starts from (is it the
 * emulation of AWS, the services, the domain, the collector?) from the run itself, bundled or not.
 */

export const CODE_LAYERS = [
  'embeddedAdapters',
  'services',
  'domain',
  'simulation',
  'messages',
  'collector',
  'other',
] as const;
export type CodeLayer = (typeof CODE_LAYERS)[number];

/** What each layer holds, for reports. */
export const CODE_LAYER_MEANING: Readonly<Record<CodeLayer, string>> = {
  embeddedAdapters:
    "the embedded adapters: DynamoDB's conditional writes, indexes and item sizes, SQS, in process, and the frozen copies they store",
  services: "the Lambdas' services (shared/services)",
  domain: 'the pure domain (shared/domain)',
  simulation: 'the replay engine, its recorder and the simulated venue',
  messages: 'queue message encoding and zod validation',
  collector: "V8's garbage collector on the leg's thread",
  other: 'everything else (runtime, compiler, other dependencies)',
};

const RULES: readonly (readonly [RegExp, CodeLayer])[] = [
  [/shared\/adapters\/embedded\//, 'embeddedAdapters'],
  // Outside that folder, run in a replay by the embedded stores alone: each write's copy (frozenCopy) and its item's
  // size bound (the AWS adapter's item layout, shared). Counted as "other", they were 6-8 % of a leg (session 45).
  [/shared\/frozen\.ts$|shared\/adapters\/aws\/(record-items|item-size)\.ts$/, 'embeddedAdapters'],
  [/shared\/services\//, 'services'],
  [/shared\/domain\//, 'domain'],
  [/shared\/(sim|adapters\/venue)\//, 'simulation'],
  [/shared\/schemas\/|node_modules\/zod\//, 'messages'],
];

/** The layer of a module, from its path (a bundle's module comment or a file URL). */
export function layerOfModule(path: string): CodeLayer {
  for (const [pattern, layer] of RULES) if (pattern.test(path)) return layer;
  return 'other';
}

/**
 * The modules of an esbuild bundle (not minified): each starts after a `// path` comment line. Returns the
 * module of a 0-based line, as the CPU profile numbers them.
 */
export function bundleModules(source: string): (line: number) => string | undefined {
  const starts: number[] = [];
  const paths: string[] = [];
  const lines = source.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const match = /^\/\/ (\S+\.[cm]?[jt]s)$/.exec(lines[i]!);
    if (match) {
      starts.push(i);
      paths.push(match[1]!);
    }
  }
  return (line) => {
    let lo = 0;
    let hi = starts.length - 1;
    let found: string | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid]! <= line) {
        found = paths[mid];
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  };
}

/**
 * Seconds of self time per layer. `bundle`: the URL of the bundle the code ran from and its source, whose
 * module comments name the module of each line; frames of other URLs are classified by their own path.
 */
export function timeByLayer(
  profile: Profiler.Profile,
  bundle?: { readonly url: string; readonly source: string },
): Record<CodeLayer, number> {
  const moduleAt = bundle ? bundleModules(bundle.source) : undefined;
  const layerOfNode = new Map<number, CodeLayer>();
  for (const node of profile.nodes) {
    const { url, lineNumber, functionName } = node.callFrame;
    let layer: CodeLayer;
    if (functionName === '(garbage collector)') layer = 'collector';
    else if (moduleAt && url === bundle?.url) layer = layerOfModule(moduleAt(lineNumber) ?? '');
    else layer = layerOfModule(url);
    layerOfNode.set(node.id, layer);
  }
  const micros = Object.fromEntries(CODE_LAYERS.map((l) => [l, 0])) as Record<CodeLayer, number>;
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    micros[layerOfNode.get(samples[i]!) ?? 'other'] += deltas[i] ?? 0;
  }
  return Object.fromEntries(CODE_LAYERS.map((l) => [l, Math.round(micros[l] / 1_000) / 1_000])) as Record<
    CodeLayer,
    number
  >;
}
