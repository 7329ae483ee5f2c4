import { rmSync } from 'node:fs';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeRiskConfigModule } from '../../infra/constructs/functions.ts';
import { BUNDLED_RISK_CONFIG_GLOBAL, FUNCTIONS, RISK_CONFIG_BUNDLED } from '../../shared/topology.ts';
import { buildStack, KEYED_PROJECT, type Project, synthDir, THIS_PROJECT } from '../support/infra-project.ts';

/**
 * Issue 7, security: no secret in any Lambda function's environment. Every variable of every function in the
 * synthesized template (this project's stack, and one whose venue reads a key: backstop:venueSecret) is listed
 * below with why it is harmless; a new variable fails the test until it is reviewed and added. Names that sound
 * secret and values that look like credentials fail whatever the list says.
 */

process.env.CDK_VALIDATION = 'false';

/** Every variable a function has, and why it may be there. None grants access: IAM does, per function. */
const DOCUMENTED: Readonly<Record<string, string>> = {
  POWERTOOLS_SERVICE_NAME:
    "a label on logs, metrics and traces (backstop-<stage>): each stage's alarms read its own",
  POWERTOOLS_METRICS_NAMESPACE: 'the CloudWatch namespace of the metrics (Backstop)',
  POWERTOOLS_LOG_LEVEL: 'the log level (INFO by default)',
  POWERTOOLS_TRACER_CAPTURE_RESPONSE: 'false: traces keep no handler answer (a refusal names a position)',
  NODE_OPTIONS: 'runtime flag --enable-source-maps (readable stack traces)',
  TICK_BUS_NAME: "the tick bus's name (a Ref): margin-check puts continuations on it",
  RISK_CONFIG:
    '`bundled`: the public risk parameters are built into the code (checked below as the stack bundles them)',
  TABLE_POSITIONS: 'a table name (a Ref); reading or writing it takes the IAM grant',
  TABLE_MARKETS: 'a table name (a Ref)',
  TABLE_LIQUIDATIONS: 'a table name (a Ref)',
  TABLE_AUCTIONS: 'a table name (a Ref)',
  TABLE_LEDGER: 'a table name (a Ref)',
  TABLE_PROVIDERS: 'a table name (a Ref)',
  QUEUE_LIQUIDATIONS_URL: 'a queue URL (a Ref); sending or receiving takes the IAM grant',
  QUEUE_AUCTION_STEPS_URL: 'a queue URL (a Ref)',
  QUEUE_TICK_DEAD_LETTERS_URL: 'a queue URL (a Ref)',
  QUEUE_LIQUIDATIONS_DLQ_URL:
    "a dead-letter queue's URL (a Ref), in liquidation-watch's environment alone: its grant reads the depth (GetQueueAttributes)",
  QUEUE_AUCTION_STEPS_DLQ_URL: "a dead-letter queue's URL (a Ref)",
  QUEUE_LIQUIDATIONS_MAX_RECEIVES: "the liquidation queue's maxReceiveCount (a count)",
  QUEUE_AUCTION_STEPS_MAX_RECEIVES: "the auction-step queue's maxReceiveCount (a count)",
  VENUE_KEY_ID:
    "where the venue's API key is, not the key: the Secrets Manager secret's ARN or name (backstop:venueSecret), in liquidation-consumer's and auction's environments alone; reading it takes GetSecretValue, granted to those two on that one secret (an ARN is a name: it opens nothing)",
};

const SECRET_NAME = /SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE|CREDENTIAL|API_?KEY|ACCESS_?KEY/i;

/** What a credential looks like, by kind. */
const CREDENTIAL_VALUES: Readonly<Record<string, RegExp>> = {
  'AWS access key id': /\b(AKIA|ASIA)[A-Z0-9]{16}\b/,
  'PEM block': /-----BEGIN [A-Z ]+-----/,
  JWT: /\beyJ[\w-]{8,}\.[\w-]{8,}\./,
  'hex blob': /\b[0-9a-fA-F]{32,}\b/,
};

/** 32+ base64 characters mixing upper case, lower case and digits (an AWS secret key is 40 of them). */
const isBase64Blob = (s: string): boolean =>
  (s.match(/[A-Za-z0-9+/_-]{32,}={0,2}/g) ?? []).some(
    (run) => /[A-Z]/.test(run) && /[a-z]/.test(run) && /\d/.test(run),
  );

/** Why a literal value looks like a credential, or undefined. */
function credentialLike(value: string): string | undefined {
  for (const [kind, pattern] of Object.entries(CREDENTIAL_VALUES)) if (pattern.test(value)) return kind;
  return isBase64Blob(value) ? 'base64 blob' : undefined;
}

/**
 * The literal strings of a template value. A Ref or Fn::GetAtt names a resource (its logical id is no data);
 * the parts of Fn::Join / Fn::Sub and every other string are literal.
 */
function literals(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(literals);
  if (typeof value !== 'object' || value === null) return [];
  const obj = value as Record<string, unknown>;
  if ('Ref' in obj || 'Fn::GetAtt' in obj) return [];
  return Object.values(obj).flatMap(literals);
}

/** Keys at every depth of a JSON value (a secret could hide inside the risk configuration). */
const keysOf = (value: unknown): string[] =>
  typeof value !== 'object' || value === null
    ? []
    : Array.isArray(value)
      ? value.flatMap(keysOf)
      : Object.entries(value).flatMap(([k, v]) => [k, ...keysOf(v)]);

const outdirs: string[] = [];
type Resource = { Type: string; Properties: Record<string, unknown> };
/**
 * Every function of this project's stack (cdk.json's context, VENUE) and of a stack whose venue reads a key
 * (backstop:venueSecret).
 */
let functions: [string, Record<string, unknown>][];
/** A secret's ARN as Secrets Manager makes one (its name, then six characters of its own). */
const VENUE_SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:backstop/venue-key-a1B2c3';
/** The risk configuration as the stack builds it into every function's code. */
let bundledRiskConfig: unknown;

function synth(project: Project, ours: Record<string, unknown>) {
  const outdir = synthDir('backstop-secrets-');
  outdirs.push(outdir);
  const { config, stack } = buildStack(project, ours, { outdir });
  const resources = Template.fromStack(stack).toJSON().Resources as Record<string, Resource>;
  const fns = Object.entries(resources)
    .filter(([, r]) => r.Type === 'AWS::Lambda::Function')
    .map(
      ([id, r]) =>
        [
          id,
          (r.Properties.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables ?? {},
        ] as [string, Record<string, unknown>],
    );
  return { config, stack, fns };
}

beforeAll(async () => {
  const { config, stack, fns } = synth(THIS_PROJECT, {});
  const withKey = synth(KEYED_PROJECT, { 'backstop:venueSecret': VENUE_SECRET_ARN });
  expect(withKey.fns.length).toBe(fns.length);
  functions = [
    ...fns,
    ...withKey.fns.map(([id, v]): [string, Record<string, unknown>] => [`${id} (venue key)`, v]),
  ];
  const module = (await import(writeRiskConfigModule(stack, config.riskConfigJson))) as Record<
    string,
    string
  >;
  bundledRiskConfig = JSON.parse(module[BUNDLED_RISK_CONFIG_GLOBAL]!);
});

afterAll(() => {
  for (const outdir of outdirs) rmSync(outdir, { recursive: true, force: true });
});

describe('Lambda environments hold no secrets (issue 7)', () => {
  it('the detector flags credential-shaped values and passes the harmless ones', () => {
    const flagged: Record<string, string> = {
      AKIAIOSFODNN7EXAMPLE: 'AWS access key id',
      'ASIAY34FZKBOKMUTVV7A rest': 'AWS access key id',
      '-----BEGIN RSA PRIVATE KEY-----\nMIIE': 'PEM block',
      'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig': 'JWT',
      c0ffee254729296a45a3885639ac7e10f9d54979c0ffee254729296a45a38856: 'hex blob',
      'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY': 'base64 blob',
    };
    for (const [value, kind] of Object.entries(flagged)) expect(credentialLike(value), value).toBe(kind);
    for (const harmless of [
      'backstop-dev',
      'Backstop',
      'INFO',
      '--enable-source-maps',
      '{"buf":"1.05"}',
      VENUE_SECRET_ARN,
    ]) {
      expect(credentialLike(harmless), harmless).toBeUndefined();
    }
    expect(
      literals({ 'Fn::Join': ['', ['https://', { Ref: 'QueueWithAVeryLongLogicalId0123ABCD' }]] }),
    ).toEqual(['', 'https://']);
  });

  it('every function has only the documented variables, none named like a secret', () => {
    // Only the project's functions (of both stacks): no CDK helper Lambda (log retention, custom resources) with its
    // own environment.
    expect(functions.length).toBe(2 * FUNCTIONS.length);
    for (const name of Object.keys(DOCUMENTED)) expect(name).not.toMatch(SECRET_NAME);
    for (const [id, variables] of functions) {
      for (const name of Object.keys(variables)) {
        expect(name, `${id}.${name}`).not.toMatch(SECRET_NAME);
        expect(DOCUMENTED, `${id}.${name} is not documented in this test`).toHaveProperty(name);
      }
    }
    // The list is not stale: every documented variable is still in use.
    const used = new Set(functions.flatMap(([, v]) => Object.keys(v)));
    expect([...used].sort()).toEqual(Object.keys(DOCUMENTED).sort());
  });

  it('no literal value looks like a credential, the bundled risk configuration included (its keys too)', () => {
    for (const [id, variables] of functions) {
      for (const [name, value] of Object.entries(variables)) {
        for (const literal of literals(value)) {
          expect(credentialLike(literal), `${id}.${name}: ${literal.slice(0, 40)}`).toBeUndefined();
        }
      }
      expect(variables.RISK_CONFIG, `${id}.RISK_CONFIG`).toBe(RISK_CONFIG_BUNDLED);
    }
    expect(keysOf(bundledRiskConfig)).toContain('markets');
    for (const key of keysOf(bundledRiskConfig)) expect(key, 'risk configuration').not.toMatch(SECRET_NAME);
    for (const literal of literals(bundledRiskConfig))
      expect(credentialLike(literal), `risk configuration: ${literal.slice(0, 40)}`).toBeUndefined();
  });
});
