import { stageOfService } from './metrics.ts';

/**
 * The commands Backstop tells an operator to run, with the flags of the target that printed them. Nothing of the SDK or
 * the CLI imported: a function names a command too (ledger-reconcile's unindexed journal), and esbuild bundles into it
 * what this imports.
 */

export interface TargetGiven {
  readonly endpoint?: string;
  readonly stage?: string;
  readonly region?: string;
}

/** The target a printed command must address: a deployment, or a status report's target. */
export interface AdviceTarget {
  readonly kind: string;
  readonly stage: string;
  readonly region: string;
  readonly endpoint?: string | null;
  readonly given?: TargetGiven;
}

/** A word as a shell takes it back unchanged. */
export const shellWord = (word: string): string =>
  /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`;

/**
 * The flags that make a command an operator copies act where the one that printed it did (ux46-advice-target):
 * without them it runs against the default target, local, and fails or acts on a running local stack. Local: what the
 * command was given (without it, local up's record resolves the same stack). Deployed: the target and stage, LocalStack's
 * endpoint, and the region always: the one the command ran in, however it was resolved (--region, AWS_REGION, the
 * profile's), since a shell with another default would run the copy elsewhere (ops47-advice-region).
 */
export function targetFlags(target: AdviceTarget): string {
  const given = target.given ?? {};
  const flags: string[] = [];
  if (target.kind === 'local') {
    if (given.endpoint !== undefined) flags.push('--endpoint', given.endpoint);
    if (given.stage !== undefined) flags.push('--stage', given.stage);
    if (given.region !== undefined) flags.push('--region', given.region);
  } else {
    flags.push('--target', target.kind, '--stage', target.stage);
    if (target.kind === 'localstack' && target.endpoint) flags.push('--endpoint', target.endpoint);
    flags.push('--region', target.region);
  }
  return flags.map((f) => ` ${shellWord(f)}`).join('');
}

/** `backstop <words>` with the target's flags: advice naming a command (ux46-advice-target). */
export const backstopCommand = (target: AdviceTarget, words: string): string =>
  `backstop ${words}${targetFlags(target)}`;

/**
 * A message that names commands in backquotes (a service's refusal), each given the target's flags; `extra`: options
 * the command that printed it was given and the one named needs too (a feed resume's --config).
 */
export const withTargetFlags = (text: string, target: AdviceTarget, extra = ''): string =>
  text.replace(
    /`backstop ([^`]+)`/g,
    (_, words: string) => `\`${backstopCommand(target, `${words}${extra}`)}\``,
  );

/**
 * Set in the local runner's environment (shared/local/stack.ts): the commands its functions name are for a local stage.
 * Absent on AWS and in a stack LocalStack runs.
 */
export const LOCAL_RUNNER_ENV = 'BACKSTOP_LOCAL_RUNNER';

/**
 * The target a function's advice names (ops47-reconcile-advice): its stage from POWERTOOLS_SERVICE_NAME
 * (metricsService(stage), which the stack and the local stack set) and its region (AWS_REGION, Lambda's own). On AWS
 * `--target aws`; in the local runner a local stage; on another emulator (AWS_ENDPOINT_URL: LocalStack running the
 * deployed stack) `--target localstack`, the endpoint left to the operator's shell (the function's is LocalStack's
 * own, inside its network). Undefined when the environment names no stage or region.
 */
export function adviceTargetFromEnv(env: NodeJS.ProcessEnv): AdviceTarget | undefined {
  const stage = stageOfService(env.POWERTOOLS_SERVICE_NAME);
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  if (stage === undefined || !region) return undefined;
  if (env[LOCAL_RUNNER_ENV] !== undefined) return { kind: 'local', stage, region, given: { stage, region } };
  return { kind: env.AWS_ENDPOINT_URL ? 'localstack' : 'aws', stage, region };
}
