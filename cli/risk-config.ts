/**
 * --config FILE, as every command that takes a risk configuration reads it (simulate, local up and the operator
 * commands): one file works everywhere, with the same errors (follow48-config-cdk-json).
 */
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { InfraConfigError, loadConfig } from '../infra/config.ts';
import { riskConfigDigest } from '../infra/outputs.ts';
import type { MarketShards } from '../shared/adapters/aws/position-layout.ts';
import {
  ConfigError,
  DEFAULT_RISK_CONFIG,
  DEFAULT_RISK_CONFIG_INPUT,
  parseRiskConfig,
  type RiskConfig,
  type RiskConfigInput,
} from '../shared/domain/config.ts';
import { readJsonFile } from './args.ts';

/** What the commands' help says of --config's file, under the option's first line. */
export const CONFIG_FILE_HELP = `                         the risk configuration's own file, or the cdk.json (or cdk.context.json) deployed
                         with, read as synth reads it: the other one beside it merged in, not -c values
`;

/** A risk configuration a --config named, and where it came from. */
export interface RiskConfigSource {
  readonly config: RiskConfig;
  /** As written (the defaults' when none is set): what local up hands the functions and records. */
  readonly input: RiskConfigInput;
  /** The --config path as given; undefined: the built-in configuration. */
  readonly file?: string;
  /** What of the file: the file itself, its context's backstop:riskConfig, or the defaults (a context without it). */
  readonly read: 'risk config' | 'backstop:riskConfig' | 'defaults';
  /**
   * A --config named cdk.json or cdk.context.json: the other one beside it, when there is one (synth merges the two).
   */
  readonly beside?: string;
  /** Of a context: the files whose backstop:riskConfig it is (both: merged as the CDK CLI merges them). */
  readonly from?: readonly string[];
  /** riskConfigDigest: what a stack deployed with it shows as its RiskConfigDigest output. */
  readonly digest: string;
  /** Of a context naming backstop:positionIndexShards: its shards, as synth reads them (local up runs them). */
  readonly positionIndexShards?: Readonly<Record<string, MarketShards>>;
}

export const INDEX_SHARDS_KEY = 'backstop:positionIndexShards';

export const RISK_CONFIG_KEY = 'backstop:riskConfig';
const CDK_JSON = 'cdk.json';
const CDK_CONTEXT_JSON = 'cdk.context.json';

const isObject = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x);

/**
 * The context the CDK CLI hands the app from two of its files (aws-cdk's Context.all: `over` deep-merged into
 * `under`, objects key by key, anything else replaced): cdk.json's `context` over cdk.context.json.
 */
function mergeCdkContext(
  under: Readonly<Record<string, unknown>>,
  over: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  const mergeOne = (target: Record<string, unknown>, source: Readonly<Record<string, unknown>>): void => {
    for (const [key, value] of Object.entries(source)) {
      if (key === '__proto__' || key === 'constructor' || key === 'prototype') continue;
      if (isObject(value)) {
        if (!isObject(target[key])) target[key] = {};
        mergeOne(target[key] as Record<string, unknown>, value);
      } else if (value !== undefined) target[key] = value;
    }
  };
  const into = structuredClone(under) as Record<string, unknown>;
  mergeOne(into, over);
  return into;
}

/**
 * --config: a risk configuration (markets, auction, insurance), or a cdk.json (its `context`) or cdk.context.json
 * (`backstop:` keys at the top) whose backstop:riskConfig is read as synth reads it (infra/config.ts loadConfig: the
 * same parser and errors, every backstop: key checked, a misspelt one refused rather than the defaults replayed).
 * A file named cdk.json or cdk.context.json is merged with the other one beside it, as the CDK CLI merges them
 * (cdk.json over cdk.context.json): DEPLOY.md keeps the risk configuration in cdk.context.json, and a cdk.json read
 * alone replayed the defaults under another digest than the stack's. Not read: -c values (over both) and
 * ~/.cdk.json (under both).
 */
export function readRiskConfig(file: string | undefined): RiskConfigSource {
  if (file === undefined)
    return {
      config: DEFAULT_RISK_CONFIG,
      input: DEFAULT_RISK_CONFIG_INPUT,
      read: 'defaults',
      digest: riskConfigDigest(DEFAULT_RISK_CONFIG),
    };
  const json = readJsonFile(file, '--config');
  const object = isObject(json);
  const top = object ? json : {};
  const name = basename(file);
  const contextOf = (cdkJson: Record<string, unknown>) => (isObject(cdkJson.context) ? cdkJson.context : {});
  const own = !object
    ? undefined
    : name === CDK_JSON || (!('markets' in top) && isObject(top.context))
      ? contextOf(top)
      : name === CDK_CONTEXT_JSON || Object.keys(top).some((k) => k.startsWith('backstop:'))
        ? top
        : undefined;
  // The other file of the pair, as the CDK CLI finds it: beside the first, by name.
  const otherName = name === CDK_JSON ? CDK_CONTEXT_JSON : name === CDK_CONTEXT_JSON ? CDK_JSON : undefined;
  const beside =
    object && otherName !== undefined && existsSync(join(dirname(file), otherName))
      ? join(dirname(file), otherName)
      : undefined;
  let context = own;
  let from: string[] | undefined;
  if (own !== undefined) {
    const bags: [string, Readonly<Record<string, unknown>>][] = [[file, own]];
    if (beside !== undefined) {
      const other = readJsonFile(beside, '--config');
      const bag =
        name === CDK_JSON ? (isObject(other) ? other : {}) : contextOf(isObject(other) ? other : {});
      bags.push([beside, bag]);
      // cdk.json's context over cdk.context.json's.
      context = name === CDK_JSON ? mergeCdkContext(bag, own) : mergeCdkContext(own, bag);
    }
    from = bags.filter(([, bag]) => RISK_CONFIG_KEY in bag).map(([at]) => at);
  }
  let config: RiskConfig;
  let input: RiskConfigInput;
  let shards: Readonly<Record<string, MarketShards>> | undefined;
  try {
    if (context === undefined) {
      if (!object)
        throw new ConfigError(
          'neither a risk configuration (markets, auction, insurance) nor a cdk.json (context)',
        );
      input = json as RiskConfigInput;
    } else {
      const infra = loadConfig(context);
      input = infra.riskConfigInput;
      if (INDEX_SHARDS_KEY in context) shards = infra.positionIndexShards;
    }
    config = parseRiskConfig(input);
  } catch (error) {
    if (error instanceof ConfigError || error instanceof InfraConfigError)
      throw new ConfigError(`--config: ${file}${beside ? ` (with ${beside})` : ''}: ${error.message}`);
    throw error;
  }
  const read =
    context === undefined ? 'risk config' : RISK_CONFIG_KEY in context ? RISK_CONFIG_KEY : 'defaults';
  return {
    config,
    input,
    file,
    read,
    ...(beside === undefined ? {} : { beside }),
    ...(from === undefined ? {} : { from }),
    digest: riskConfigDigest(config),
    ...(shards === undefined ? {} : { positionIndexShards: shards }),
  };
}
