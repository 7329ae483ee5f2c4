import { readdirSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import ts from 'typescript';
import { vi } from 'vitest';
import { DimensionedMetrics, powertoolsTelemetry, publishMetricsSoFar } from '../../shared/lambda/runtime.ts';
import { METRICS } from '../../shared/metrics.ts';

/** One call of the Telemetry port in the code, as its types say it can run. */
export interface EmitSite {
  /** file:line, for a failure's message. */
  readonly at: string;
  /** Every metric name the first argument can be (`METRICS.X.name`, or a choice of specs). */
  readonly metrics: readonly string[];
  /** Every set of dimension keys the call can pass, sorted ([] for none). */
  readonly keySets: readonly (readonly string[])[];
  /** Each key's literal values, or `undefined` when its type is any string. */
  readonly values: ReadonlyMap<string, ReadonlySet<string> | undefined>;
}

const METRIC_NAMES = new Set<string>(Object.values(METRICS).map((m) => m.name));

const sourceFiles = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });

/** The module whose telemetries pass on counts by their callers' names: the callers are the sites. */
const FORWARDERS = new Set(['shared/services/telemetry-counts.ts']);

const isForwarder = (file: ts.SourceFile, root: string): boolean =>
  FORWARDERS.has(relative(root, file.fileName).split(sep).join('/'));

/** The string literals a type can be; undefined when it can be any string (or is no string at all). */
function literals(type: ts.Type): Set<string> | undefined {
  const parts = (type.isUnion() ? type.types : [type]).filter((t) => !(t.flags & ts.TypeFlags.Undefined));
  if (parts.length === 0 || !parts.every((t) => t.isStringLiteral())) return undefined;
  return new Set(parts.map((t) => (t as ts.StringLiteralType).value));
}

/** Every subset of `keys`. */
const subsets = (keys: readonly string[]): string[][] =>
  keys.reduce<string[][]>((sets, key) => sets.flatMap((s) => [s, [...s, key]]), [[]]);

/**
 * Every `count`/`observe` call on a Telemetry in the files under `dirs` (test code aside), read with the type checker:
 * what a call passes is what its types allow (a spread of `cond ? { Market } : {}` passes Market or not), so a site
 * that names another dimension than its spec's, or forgets it, is seen whichever path runs it.
 */
export function emitSites(root: string, dirs: readonly string[]): EmitSite[] {
  const files = dirs.flatMap((d) => sourceFiles(join(root, d)));
  const parsed = ts.getParsedCommandLineOfConfigFile(
    join(root, 'tsconfig.json'),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      },
    },
  );
  const program = ts.createProgram(files, parsed!.options);
  const checker = program.getTypeChecker();
  const sites: EmitSite[] = [];
  const visit = (file: ts.SourceFile, node: ts.Node): void => {
    if (
      ts.isCallExpression(node) &&
      ts.isPropertyAccessExpression(node.expression) &&
      ['count', 'observe'].includes(node.expression.name.text) &&
      checker.getTypeAtLocation(node.expression.expression).getSymbol()?.getName() === 'Telemetry'
    ) {
      if (!isForwarder(file, root)) sites.push(site(file, node, checker, root));
    }
    ts.forEachChild(node, (child) => visit(file, child));
  };
  for (const path of files) {
    const file = program.getSourceFile(path);
    if (file) visit(file, file);
  }
  return sites;
}

function site(file: ts.SourceFile, call: ts.CallExpression, checker: ts.TypeChecker, root: string): EmitSite {
  const { line } = file.getLineAndCharacterOfPosition(call.getStart(file));
  const at = `${relative(root, file.fileName)}:${line + 1}`;
  const [name, , dimensions] = call.arguments;
  const metrics = name ? [...(literals(checker.getTypeAtLocation(name)) ?? [])] : [];
  // A name that is not a spec's (any string, a typo) emits a metric no graph or alarm reads.
  if (metrics.length === 0 || metrics.some((m) => !METRIC_NAMES.has(m)))
    throw new Error(`${at}: the metric is not named by a METRICS spec (${name?.getText(file)})`);
  if (!dimensions) return { at, metrics, keySets: [[]], values: new Map() };
  const keySets: string[][] = [];
  const values = new Map<string, Set<string> | undefined>();
  const type = checker.getTypeAtLocation(dimensions);
  for (const part of type.isUnion() ? type.types : [type]) {
    if (part.flags & ts.TypeFlags.Undefined) {
      keySets.push([]);
      continue;
    }
    const props = checker.getPropertiesOfType(part);
    const required = props.filter((p) => !(p.flags & ts.SymbolFlags.Optional)).map((p) => p.getName());
    const optional = props.filter((p) => p.flags & ts.SymbolFlags.Optional).map((p) => p.getName());
    for (const extra of subsets(optional)) keySets.push([...required, ...extra].sort());
    for (const prop of props) {
      // An object literal widens `Reason: 'tick/contended'` to string: its initializer says the value.
      const declared = prop.valueDeclaration;
      const these =
        declared && ts.isPropertyAssignment(declared) && ts.isStringLiteral(declared.initializer)
          ? new Set([declared.initializer.text])
          : literals(checker.getTypeOfSymbolAtLocation(prop, dimensions));
      const known = values.has(prop.getName()) ? values.get(prop.getName()) : new Set<string>();
      values.set(prop.getName(), known && these ? new Set([...known, ...these]) : undefined);
    }
  }
  return { at, metrics, keySets, values };
}

/**
 * The EMF dimension sets (sorted names) of each metric, for data points emitted with these dimensions, through the
 * functions' own Telemetry adapter (powertoolsTelemetry, DimensionedMetrics) into Powertools' EMF lines.
 */
export function emfDimensionSets(
  points: readonly { readonly name: string; readonly dimensions: Readonly<Record<string, string>> }[],
  service = 'backstop-dev',
): Map<string, string[][]> {
  const lines: string[] = [];
  const instance = () => {
    const metrics = new Metrics({ namespace: 'Backstop', serviceName: service });
    const sink = (metrics as unknown as { console: Console }).console;
    vi.spyOn(sink, 'log').mockImplementation((line: string) => void lines.push(line));
    return metrics;
  };
  const shared = instance();
  const dimensioned = new DimensionedMetrics(instance);
  const telemetry = powertoolsTelemetry(new Logger({ logLevel: 'SILENT' }), shared, dimensioned);
  for (const { name, dimensions } of points) telemetry.count(name, 1, dimensions);
  publishMetricsSoFar(shared, dimensioned);
  vi.restoreAllMocks();
  const sets = new Map<string, string[][]>();
  for (const line of lines) {
    const [directive] = (
      JSON.parse(line) as {
        _aws: { CloudWatchMetrics: { Dimensions: string[][]; Metrics: { Name: string }[] }[] };
      }
    )._aws.CloudWatchMetrics;
    for (const { Name } of directive!.Metrics)
      sets.set(Name, [...(sets.get(Name) ?? []), ...directive!.Dimensions.map((d) => [...d].sort())]);
  }
  return sets;
}
