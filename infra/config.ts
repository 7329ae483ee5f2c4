import { z } from 'zod';
import { positionIndexShardsSchema } from '../shared/adapters/aws/position-layout.ts';
import { readsVenueKey } from '../shared/adapters/venue/index.ts';
import {
  ConfigError,
  DEFAULT_RISK_CONFIG_INPUT,
  parseRiskConfig,
  type RiskConfig,
  type RiskConfigInput,
} from '../shared/domain/config.ts';
import { formatQuote } from '../shared/domain/units.ts';
import {
  DEFAULT_TICK_MAX_EVENT_AGE_SECONDS,
  DEPLOYED_STAGE,
  FUNCTIONS,
  type FunctionId,
  QUEUES,
  type QueueId,
  TABLES,
} from '../shared/topology.ts';

/**
 * Deployment configuration, read from CDK context keys under the `backstop:` prefix
 * (`cdk deploy -c backstop:stage=prod -c backstop:alarmEmail=ops@example.com`, or cdk.json / cdk.context.json).
 * The prefix keeps our keys apart from CDK's own (feature flags, aws:cdk:*), so an unknown `backstop:` key
 * is an error instead of a silently ignored typo. CLI values arrive as strings: numbers are coerced and
 * objects / lists may be given as JSON.
 */
export const CONTEXT_PREFIX = 'backstop:';

export class InfraConfigError extends Error {
  override readonly name = 'InfraConfigError';
}

/** Retention values CloudWatch Logs accepts. */
export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const;

const FUNCTION_IDS = FUNCTIONS.map((f) => f.id) as [FunctionId, ...FunctionId[]];
const POSITION_INDEX_COUNT = TABLES.find((t) => t.id === 'positions')?.indexes.length ?? 1;

const fromString = (v: unknown): unknown =>
  typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v.trim()) ? Number(v) : v;
const num = <T extends z.ZodType>(schema: T) => z.preprocess(fromString, schema);
const json = <T extends z.ZodType>(schema: T) =>
  z.preprocess((v, ctx) => {
    if (typeof v !== 'string' || !/^\s*[[{]/.test(v)) return v;
    try {
      return JSON.parse(v);
    } catch {
      // The CDK CLI splits `-c key=value` with /=(.*)/, whose dot stops at a newline: a pretty-printed file given as
      // -c key="$(cat risk.json)" arrives as its first line, "{", and nothing said why (session 40, 40 markets).
      const firstLineOnly = /^\s*[[{]\s*$/.test(v);
      ctx.addIssue({
        code: 'custom',
        message: firstLineOnly
          ? `not valid JSON: only "${v.trim()}" arrived, the first line of a multi-line value (the CDK CLI keeps a -c value's first line only): give the JSON on one line, as -c KEY="$(jq -c . risk.json)", or put it in cdk.context.json`
          : `not valid JSON (${v.length} characters, starting ${JSON.stringify(v.slice(0, 40))}; a -c value keeps its first line only: give it on one line, as -c KEY="$(jq -c . FILE.json)")`,
      });
      return z.NEVER;
    }
  }, schema);
/** A JSON list, or a comma-separated string (`feedPrincipals=111122223333,arn:aws:iam::...`). */
const list = <T extends z.ZodType>(schema: T) =>
  json(
    z.preprocess(
      (v) =>
        typeof v === 'string'
          ? v
              .split(',')
              .map((s) => s.trim())
              .filter(Boolean)
          : v,
      schema,
    ),
  );

/** `true` / `false`, as booleans or as the CDK CLI's strings. */
const bool = () =>
  z.preprocess(
    (v) => (v === 'true' ? true : v === 'false' ? false : v),
    z.boolean({ error: 'must be true or false' }),
  );

const ACCOUNT_ID = /^\d{12}$/;

/** A feed principal given as an account id (else a role ARN). */
export const isAccountId = (principal: string): boolean => ACCOUNT_ID.test(principal);
const ROLE_ARN = /^arn:aws(-[a-z]+)*:iam::\d{12}:role\/[\w+=,.@/-]+$/;
const principal = z
  .string()
  .refine((s) => ACCOUNT_ID.test(s) || ROLE_ARN.test(s), 'must be a 12-digit account id or an IAM role ARN');
/** An IAM role or user, by its exact ARN (a policy's `aws:PrincipalArn`: a role's, whichever session of it calls). */
const IAM_PRINCIPAL_ARN = /^arn:aws(-[a-z]+)*:iam::\d{12}:(role|user)\/[\w+=,.@/-]+$/;
const principalArn = z
  .string()
  .regex(IAM_PRINCIPAL_ARN, "must be an IAM role's or user's ARN (no wildcard, no account id)");

/** A Secrets Manager secret's complete ARN: its name and the six characters Secrets Manager adds (`-a1B2c3`). */
const SECRET_ARN = /^arn:aws(-[a-z]+)*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]+-[A-Za-z0-9]{6}$/;
/** A secret's name as Secrets Manager takes one. */
const SECRET_NAME = /^[\w/+=.@-]{1,512}$/;
/** A KMS key's ARN (an alias would not do: IAM authorizes Decrypt on the key). */
const KMS_KEY_ARN = /^arn:aws(-[a-z]+)*:kms:[a-z0-9-]+:\d{12}:key\/[\w-]+$/;

const schema = z.strictObject({
  /** Names the stack (Backstop-<stage>), the tick bus and the dashboard. */
  stage: z.string().regex(DEPLOYED_STAGE.pattern, DEPLOYED_STAGE.rule).default('dev'),
  /** Risk config input (decimal strings, see shared/domain/config.ts); validated here, built into the code. */
  riskConfig: json(z.unknown()).optional(),
  logLevel: z.enum(['DEBUG', 'INFO', 'WARN', 'ERROR']).default('INFO'),
  logRetentionDays: num(
    z.number().refine((d) => (LOG_RETENTION_DAYS as readonly number[]).includes(d), {
      message: `must be one of ${LOG_RETENTION_DAYS.join(', ')}`,
    }),
  ).default(30),
  tickArchiveRetentionDays: num(z.number().int().min(1).max(3650)).default(30),
  /**
   * Who may put ticks on the bus: account ids and/or role ARNs (JSON list or a,b,c); listing any makes them, by default
   * (tickPublishersOnly), the only ones that put PriceTick, this account's principals denied, and this stack's own
   * account id is then refused (tick-bus.ts: it would deny no one). tickPublishersOnly=false lets this account's
   * principals IAM allows put ticks besides them.
   */
  feedPrincipals: list(z.array(principal)).default([]),
  /**
   * Deny PriceTick to every principal not in feedPrincipals, this account's included. Unset: on whenever feedPrincipals
   * names one (security49-tick-publishers: margin-check's direct invokers aside, listing the feed is the intent that
   * no one else publishes); `false` lets any principal of this account that IAM allows put one.
   */
  tickPublishersOnly: bool().optional(),
  /**
   * Deny sqs:SendMessage on the queues to every principal but the functions that send to each (and the tick rule's
   * EventBridge delivery to its dead letters) and queueSenderPrincipals (security49-queue-senders), and let no queue
   * name a work queue or the sink its dead-letter queue (review49-security-redrive-into); `false` leaves who may send
   * to IAM alone.
   */
  queueSendersOnly: bool().default(true),
  /**
   * Roles (or users) that may send to the work queues besides the functions: the operators' redrive and resend. Synth
   * refuses a list past SQS's 8,192 bytes of policy, and warns past 4 (SQS's 10 conditions, were each value one:
   * queues.ts `checkPolicyQuotas`).
   */
  queueSenderPrincipals: list(z.array(principalArn)).default([]),
  /**
   * Set, the admin function's resource policy denies lambda:InvokeFunction and lambda:InvokeAsync to every principal
   * not listed (security49-admin-invokers); unset, whoever IAM allows invokes it.
   */
  adminInvokers: list(z.array(principalArn)).default([]),
  /**
   * A CloudTrail trail of the admin function's invocations (Lambda Invoke data events, that function alone) into a
   * bucket of its own (admin51-admin-trail): a fund movement through it journals its invocation's request id, which
   * that trail's event joins to the verified caller. `false` where a trail of the account or the organization records
   * them already (paying twice otherwise).
   */
  adminTrail: bool().default(true),
  /** Days the admin trail's log files are kept (the bucket's lifecycle); about 7 years by default. */
  adminTrailRetentionDays: num(z.number().int().min(1).max(36_500)).default(2557),
  /** Overrides the topology's maxReceiveCount for every queue with a dead-letter queue. */
  // At least 2: with 1, a healthy message's first deferral (a duplicate delivery waiting for the order lease) or a
  // receive Lambda throttled would dead-letter it, and the retry backoff would never run.
  maxReceiveCount: num(
    z
      .number()
      .int()
      .min(
        2,
        'at least 2: with 1, the first deferral or throttled receive of a healthy message dead-letters it',
      )
      // A failed receive past the backoff comes back after the visibility timeout (about 6 min): 100 receives take
      // about 10 h, and SQS drops a message its work queue has kept 4 days before it is dead-lettered, unalarmed.
      .max(
        100,
        'at most 100: a lasting fault must reach the DLQ well within the work queues 4 days retention',
      ),
  ).optional(),
  /** EventBridge (and async Lambda) give up on a tick this old; Lambda caps it at 6 h. */
  tickMaxEventAgeSeconds: num(z.number().int().min(60).max(21_600)).default(
    DEFAULT_TICK_MAX_EVENT_AGE_SECONDS,
  ),
  tickRetryAttempts: num(z.number().int().min(0).max(185)).default(3),
  /** Positions one margin-check invocation starts before it continues the tick in another (default 500). */
  marginCheckMaxPositions: num(z.number().int().min(1).max(10_000)).optional(),
  /** A liquidation message that runs this long after it was due (a new one: after its tick) alarms. */
  alarmLiquidationQueueAgeSeconds: num(z.number().int().min(1)).default(120),
  /** Whole quote units (same unit as the InsuranceFundBalance metric). */
  alarmInsuranceFundMin: num(z.number().min(0)).default(100_000),
  /** Whole quote units; the alarm fires when the reconcile difference is above this. */
  alarmLedgerDifference: num(z.number().min(0)).default(0),
  /**
   * A market with no accepted tick for this many minutes alarms (its feed stopped: no margin check runs);
   * 0 leaves the alarm out (a stage fed only now and then).
   */
  alarmTickSilenceMinutes: num(z.number().int().min(0).max(1440)).default(5),
  /** Errors per function per 5 minutes that raise the alarm. */
  alarmFunctionErrors: num(z.number().int().min(1)).default(1),
  alarmEmail: z.email().optional(),
  alarmTopicArn: z
    .string()
    .regex(/^arn:aws(-[a-z]+)*:sns:[a-z0-9-]+:\d{12}:[\w-]+$/, 'must be an SNS topic ARN')
    .optional(),
  /**
   * How many of the positions table's indexes (topology order) to deploy. Only for upgrading a stack made
   * before ADL's two indexes: CloudFormation adds one index per table update, so deploy with 2, then without.
   */
  positionIndexes: num(z.number().int().min(1).max(POSITION_INDEX_COUNT)).default(POSITION_INDEX_COUNT),
  /**
   * Index shards of a market whose positions are written faster than one index partition takes (about 800 a
   * second): JSON like {"BTC-USD": 4}; one shard for every market not named. Raising a count takes two deploys,
   * readers first: {"BTC-USD": {"read": 4, "write": 1}}, then {"BTC-USD": 4} (docs/DEPLOY.md).
   */
  positionIndexShards: json(positionIndexShardsSchema).default({}),
  reservedConcurrency: json(
    z.partialRecord(z.enum(FUNCTION_IDS), z.number().int().min(1).max(1000)).default({}),
  ).default({}),
  /**
   * The Secrets Manager secret holding the venue's API key (docs/VENUE.md): its complete ARN, or its name in the
   * stack's account and region. Set, the functions that trade (VENUE_TRADERS) alone may read that secret alone and are
   * given its id (VENUE_KEY_ENV); unset, nothing is granted (the simulated venue reads no key).
   */
  venueSecret: z
    .string()
    .superRefine((s, ctx) => {
      if (s.startsWith('arn:') ? SECRET_ARN.test(s) : SECRET_NAME.test(s)) return;
      ctx.addIssue({
        code: 'custom',
        // A partial ARN (no suffix) would be granted nothing: IAM matches the complete one.
        message: s.startsWith('arn:')
          ? "must be a secret's complete ARN, arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 characters> (as the console shows it), or its name"
          : "must be a secret's ARN or its name (1 to 512 of letters, digits and /_+=.@-)",
      });
    })
    .optional(),
  /** The customer-managed KMS key venueSecret is encrypted with (its key ARN); absent: Secrets Manager's own key. */
  venueSecretKmsKey: z
    .string()
    .regex(KMS_KEY_ARN, "must be a KMS key's ARN, arn:aws:kms:<region>:<account>:key/<key id> (not an alias)")
    .optional(),
});

export type ContextInput = z.input<typeof schema>;
type Parsed = z.output<typeof schema>;

export interface InfraConfig extends Omit<Parsed, 'riskConfig' | 'tickPublishersOnly'> {
  /** As given, or on when feedPrincipals names a principal (loadConfig). */
  readonly tickPublishersOnly: boolean;
  readonly riskConfigInput: RiskConfigInput;
  /** JSON of riskConfigInput, as the functions' code carries it (functions.ts `writeRiskConfigModule`). */
  readonly riskConfigJson: string;
  /** The risk config's market symbols, in its order. */
  readonly markets: readonly string[];
}

/** Reads every `backstop:` key of the CDK context; throws InfraConfigError listing every problem. */
export function loadConfig(context: Readonly<Record<string, unknown>>): InfraConfig {
  const ours: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(context)) {
    if (key.startsWith(CONTEXT_PREFIX)) ours[key.slice(CONTEXT_PREFIX.length)] = value;
  }
  const result = schema.safeParse(ours);
  if (!result.success) {
    const problems = result.error.issues.map((i) =>
      i.code === 'unrecognized_keys'
        ? `unknown context key(s) ${i.keys.map((k) => CONTEXT_PREFIX + k).join(', ')}; known: ${Object.keys(
            schema.shape,
          )
            .map((k) => CONTEXT_PREFIX + k)
            .join(', ')}`
        : `${CONTEXT_PREFIX}${i.path.join('.')}: ${i.message}`,
    );
    throw new InfraConfigError(`invalid CDK context: ${problems.join('; ')}`);
  }
  const { riskConfig, tickPublishersOnly: givenTickPublishersOnly, ...parsed } = result.data;
  const rest = {
    ...parsed,
    tickPublishersOnly: givenTickPublishersOnly ?? parsed.feedPrincipals.length > 0,
  };
  if (rest.alarmEmail && rest.alarmTopicArn) {
    throw new InfraConfigError(
      `invalid CDK context: set ${CONTEXT_PREFIX}alarmEmail (a new topic) or ${CONTEXT_PREFIX}alarmTopicArn (an existing one), not both`,
    );
  }
  if (rest.tickPublishersOnly && rest.feedPrincipals.length === 0) {
    throw new InfraConfigError(
      `invalid CDK context: ${CONTEXT_PREFIX}tickPublishersOnly denies PriceTick to every principal not in ${CONTEXT_PREFIX}feedPrincipals, which names none: the bus would take no tick; list the feed's role ARN (or its account id) there`,
    );
  }
  if (!rest.queueSendersOnly && rest.queueSenderPrincipals.length > 0) {
    throw new InfraConfigError(
      `invalid CDK context: ${CONTEXT_PREFIX}queueSenderPrincipals names the exceptions to the queues' deny of other senders, which ${CONTEXT_PREFIX}queueSendersOnly=false leaves out: drop one or the other`,
    );
  }
  if (rest.venueSecretKmsKey && !rest.venueSecret) {
    throw new InfraConfigError(
      `invalid CDK context: ${CONTEXT_PREFIX}venueSecretKmsKey names the key of a secret, and ${CONTEXT_PREFIX}venueSecret names none: set both, or neither`,
    );
  }
  const riskConfigInput = (riskConfig ?? DEFAULT_RISK_CONFIG_INPUT) as RiskConfigInput;
  let risk: RiskConfig;
  try {
    risk = parseRiskConfig(riskConfigInput);
  } catch (e) {
    if (e instanceof ConfigError) throw new InfraConfigError(`${CONTEXT_PREFIX}riskConfig: ${e.message}`);
    throw e;
  }
  const markets = risk.markets.map((m) => m.symbol);
  // Payouts and withdrawals stop at the fund's floor: a balance never goes below it, so a threshold at or under
  // it would never page (refusals at the floor have their own alarm). A floor of 0 too: a threshold of 0 is
  // "below 0", which a balance never is (an audit, session 36).
  const floor = Number(formatQuote(risk.insurance.floor));
  if (rest.alarmInsuranceFundMin <= floor) {
    throw new InfraConfigError(
      `invalid CDK context: ${CONTEXT_PREFIX}alarmInsuranceFundMin is ${rest.alarmInsuranceFundMin}, not above the insurance fund's floor ${floor} (riskConfig): the balance never goes below the floor, so the alarm could never fire; give a threshold above it`,
    );
  }
  // AWS: reserved concurrency under a queue trigger's maximum concurrency throttles its receives, and throttled
  // receives count toward maxReceiveCount: healthy messages would end in the dead-letter queue in a cascade.
  for (const def of FUNCTIONS) {
    const reserved = rest.reservedConcurrency[def.id];
    if (reserved !== undefined && def.trigger.kind === 'queue' && reserved < def.trigger.maxConcurrency) {
      throw new InfraConfigError(
        `invalid CDK context: ${CONTEXT_PREFIX}reservedConcurrency.${def.id} is ${reserved}, under its queue trigger's maximum concurrency ${def.trigger.maxConcurrency}: Lambda would throttle its messages into the dead-letter queue`,
      );
    }
  }
  const unknown = Object.keys(rest.positionIndexShards).filter((symbol) => !markets.includes(symbol));
  if (unknown.length > 0) {
    throw new InfraConfigError(
      `invalid CDK context: ${CONTEXT_PREFIX}positionIndexShards names ${unknown.join(', ')}, not a market of the risk config (${markets.join(', ')})`,
    );
  }
  return { ...rest, riskConfigInput, riskConfigJson: JSON.stringify(riskConfigInput), markets };
}

/**
 * Refuses a venue that reads an API key (every adapter but the simulated ones: KEYLESS_VENUES) without
 * backstop:venueSecret: deployed, each trader's first read of the key would fail (`VENUE_KEY_ID is not set`), and
 * with it every order, each slice handed to the auction at its discount, paged only as venue failures
 * (venue47-secret-required). `venue`: the one the functions' code trades on (VENUE, built into the bundles).
 */
export function checkVenueKey(config: InfraConfig, venue: string): void {
  if (!readsVenueKey(venue) || config.venueSecret !== undefined) return;
  throw new InfraConfigError(
    `invalid CDK context: the functions trade on the venue ${venue} (VENUE, shared/adapters/venue/index.ts), which reads its API key from Secrets Manager, and ${CONTEXT_PREFIX}venueSecret names no secret: every order would fail its key's read (VENUE_KEY_ID is not set) and hand its slice to the auction; store the key and deploy with -c ${CONTEXT_PREFIX}venueSecret=<its name or ARN> (docs/VENUE.md, "The secret")`,
  );
}

/** Receives before a message moves to its queue's dead-letter queue. */
export const maxReceiveCount = (config: InfraConfig, queue: QueueId): number | undefined => {
  const def = QUEUES.find((q) => q.id === queue)?.deadLetter;
  return def ? (config.maxReceiveCount ?? def.maxReceiveCount) : undefined;
};
