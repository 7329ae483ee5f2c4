import { describe, expect, it } from 'vitest';
import { InfraConfigError, loadConfig, maxReceiveCount } from '../../infra/config.ts';
import {
  deadLetterQueueUrlKey,
  functionNameKey,
  queueUrlKey,
  stackName,
  tableNameKey,
} from '../../infra/outputs.ts';
import { DEFAULT_RISK_CONFIG_INPUT } from '../../shared/domain/config.ts';
import {
  FUNCTIONS,
  QUEUES,
  receiveVisibilitySeconds,
  tickRuleTarget,
  visibilityTimeoutSeconds,
} from '../../shared/topology.ts';

const CDK_OWN_KEYS = {
  'cli-telemetry': false,
  '@aws-cdk/core:checkSecretUsage': true,
  'aws:cdk:bundling-stacks': [],
};

describe('loadConfig', () => {
  it('defaults every value and ignores CDK context keys that are not ours', () => {
    const config = loadConfig(CDK_OWN_KEYS);
    expect(config).toMatchObject({
      stage: 'dev',
      logLevel: 'INFO',
      logRetentionDays: 30,
      tickArchiveRetentionDays: 30,
      feedPrincipals: [],
      tickPublishersOnly: false,
      queueSendersOnly: true,
      queueSenderPrincipals: [],
      adminInvokers: [],
      adminTrail: true,
      adminTrailRetentionDays: 2557,
      tickMaxEventAgeSeconds: 120,
      tickRetryAttempts: 3,
      alarmLiquidationQueueAgeSeconds: 120,
      alarmInsuranceFundMin: 100_000,
      alarmLedgerDifference: 0,
      alarmFunctionErrors: 1,
      alarmTickSilenceMinutes: 5,
      reservedConcurrency: {},
      positionIndexes: 3,
      positionIndexShards: {},
    });
    expect(config.alarmEmail).toBeUndefined();
    expect(JSON.parse(config.riskConfigJson)).toEqual(DEFAULT_RISK_CONFIG_INPUT);
  });

  it("takes the admin trail's opt-out and retention as the CDK CLI gives them (strings)", () => {
    expect(
      loadConfig({ 'backstop:adminTrail': 'false', 'backstop:adminTrailRetentionDays': '400' }),
    ).toMatchObject({ adminTrail: false, adminTrailRetentionDays: 400 });
  });

  it('coerces CLI strings: numbers, comma lists, JSON objects', () => {
    const config = loadConfig({
      'backstop:logRetentionDays': '90',
      'backstop:maxReceiveCount': '3',
      'backstop:feedPrincipals': '111122223333, arn:aws:iam::444455556666:role/feed',
      'backstop:reservedConcurrency': '{"marginCheck": 50, "liquidationConsumer": 20}',
      'backstop:riskConfig': JSON.stringify({
        ...DEFAULT_RISK_CONFIG_INPUT,
        insurance: { drawCapPerWindow: '5', windowSeconds: 60, floor: '1' },
      }),
    });
    expect(config.logRetentionDays).toBe(90);
    expect(config.maxReceiveCount).toBe(3);
    expect(config.feedPrincipals).toEqual(['111122223333', 'arn:aws:iam::444455556666:role/feed']);
    const feed = { 'backstop:feedPrincipals': 'arn:aws:iam::444455556666:role/feed' };
    expect(loadConfig({ ...feed, 'backstop:tickPublishersOnly': 'true' }).tickPublishersOnly).toBe(true);
    expect(loadConfig({ ...feed, 'backstop:tickPublishersOnly': true }).tickPublishersOnly).toBe(true);
    expect(loadConfig({ 'backstop:tickPublishersOnly': 'false' }).tickPublishersOnly).toBe(false);
    // On by default once a feed principal is listed; an explicit false keeps it off (security49-tick-publishers).
    expect(loadConfig(feed).tickPublishersOnly).toBe(true);
    expect(loadConfig({ ...feed, 'backstop:tickPublishersOnly': 'false' }).tickPublishersOnly).toBe(false);
    const ops = 'arn:aws:iam::111122223333:role/ops/redrive, arn:aws:iam::111122223333:user/alice';
    expect(loadConfig({ 'backstop:queueSenderPrincipals': ops }).queueSenderPrincipals).toEqual([
      'arn:aws:iam::111122223333:role/ops/redrive',
      'arn:aws:iam::111122223333:user/alice',
    ]);
    expect(loadConfig({ 'backstop:queueSendersOnly': 'false' }).queueSendersOnly).toBe(false);
    expect(
      loadConfig({ 'backstop:adminInvokers': '["arn:aws:iam::111122223333:role/backstop-admin"]' })
        .adminInvokers,
    ).toEqual(['arn:aws:iam::111122223333:role/backstop-admin']);
    expect(config.reservedConcurrency).toEqual({ marginCheck: 50, liquidationConsumer: 20 });
    expect(JSON.parse(config.riskConfigJson).insurance.drawCapPerWindow).toBe('5');
    expect(loadConfig({ 'backstop:positionIndexShards': '{"BTC-USD": 4}' }).positionIndexShards).toEqual({
      'BTC-USD': 4,
    });
    expect(
      loadConfig({ 'backstop:positionIndexShards': '{"BTC-USD": {"read": 4, "write": 1}}' })
        .positionIndexShards,
    ).toEqual({ 'BTC-USD': { read: 4, write: 1 } });
  });

  it.each([
    [
      'an unknown backstop: key',
      { 'backstop:alarmEmial': 'a@b.co' },
      /unknown context key\(s\) backstop:alarmEmial/,
    ],
    ['a bad stage', { 'backstop:stage': 'Prod!' }, /backstop:stage/],
    [
      'more position indexes than the topology has',
      { 'backstop:positionIndexes': '4' },
      /backstop:positionIndexes/,
    ],
    ['no position index at all', { 'backstop:positionIndexes': 0 }, /backstop:positionIndexes/],
    [
      'more index shards than a market may have',
      { 'backstop:positionIndexShards': { 'BTC-USD': 17 } },
      /backstop:positionIndexShards\.BTC-USD/,
    ],
    ['index shards for no market', { 'backstop:positionIndexShards': { btc: 2 } }, /not a market symbol/],
    [
      'index shards written that readers do not query',
      { 'backstop:positionIndexShards': { 'BTC-USD': { read: 2, write: 4 } } },
      /write must be at most read/,
    ],
    [
      'index shards for a market the risk config does not have',
      { 'backstop:positionIndexShards': { 'SOL-USD': 2 } },
      /positionIndexShards names SOL-USD, not a market of the risk config \(ETH-USD, BTC-USD\)/,
    ],
    ['a log retention CloudWatch refuses', { 'backstop:logRetentionDays': 31 }, /backstop:logRetentionDays/],
    [
      'a principal with a wildcard',
      { 'backstop:feedPrincipals': ['arn:aws:iam::111122223333:role/*'] },
      /feedPrincipals/,
    ],
    [
      'tickPublishersOnly neither true nor false',
      { 'backstop:tickPublishersOnly': 'yes' },
      /backstop:tickPublishersOnly: must be true or false/,
    ],
    [
      // Every PriceTick denied and no one excepted: the bus would take no tick (session 43).
      'tickPublishersOnly with no feed principal',
      { 'backstop:tickPublishersOnly': 'true' },
      /backstop:tickPublishersOnly denies PriceTick to every principal not in backstop:feedPrincipals, which names none: the bus would take no tick/,
    ],
    [
      'a queue sender given as an account id (aws:PrincipalArn names roles and users)',
      { 'backstop:queueSenderPrincipals': '111122223333' },
      /backstop:queueSenderPrincipals\.0: must be an IAM role's or user's ARN/,
    ],
    [
      'queue senders excepted from a deny turned off',
      {
        'backstop:queueSenderPrincipals': 'arn:aws:iam::111122223333:role/redrive',
        'backstop:queueSendersOnly': false,
      },
      /queueSenderPrincipals names the exceptions to the queues' deny of other senders, which backstop:queueSendersOnly=false leaves out/,
    ],
    [
      'an admin invoker with a wildcard',
      { 'backstop:adminInvokers': 'arn:aws:iam::111122223333:role/admin-*' },
      /backstop:adminInvokers\.0: must be an IAM role's or user's ARN/,
    ],
    [
      'an admin trail neither on nor off',
      { 'backstop:adminTrail': 'no' },
      /backstop:adminTrail: must be true or false/,
    ],
    [
      'an admin trail kept no day',
      { 'backstop:adminTrailRetentionDays': '0' },
      /backstop:adminTrailRetentionDays/,
    ],
    ['a maxReceiveCount of 0', { 'backstop:maxReceiveCount': 0 }, /backstop:maxReceiveCount/],
    [
      'a maxReceiveCount of 1 (a deferral would dead-letter a healthy message)',
      { 'backstop:maxReceiveCount': 1 },
      /backstop:maxReceiveCount.*deferral/,
    ],
    ['a max event age under 60 s', { 'backstop:tickMaxEventAgeSeconds': 59 }, /tickMaxEventAgeSeconds/],
    [
      'an unknown function in reservedConcurrency',
      { 'backstop:reservedConcurrency': { nope: 1 } },
      /reservedConcurrency/,
    ],
    [
      "a reserved concurrency under a queue trigger's maximum concurrency",
      { 'backstop:reservedConcurrency': { liquidationConsumer: 19 } },
      /reservedConcurrency.liquidationConsumer is 19, under its queue trigger's maximum concurrency 20/,
    ],
    [
      "a fund-low threshold not above the fund's floor (the balance never goes below it)",
      {
        'backstop:riskConfig': {
          ...DEFAULT_RISK_CONFIG_INPUT,
          insurance: { ...DEFAULT_RISK_CONFIG_INPUT.insurance, floor: '200000' },
        },
      },
      /alarmInsuranceFundMin is 100000, not above the insurance fund's floor 200000 \(riskConfig\)/,
    ],
    [
      'a fund-low threshold of 0 with a floor of 0 (the balance never goes below 0)',
      { 'backstop:alarmInsuranceFundMin': 0 },
      /alarmInsuranceFundMin is 0, not above the insurance fund's floor 0 \(riskConfig\)/,
    ],
    ['malformed JSON', { 'backstop:riskConfig': '{"markets":' }, /not valid JSON \(11 characters, starting/],
    [
      // Found in session 40 synthesizing 40 markets as -c backstop:riskConfig="$(cat risk.json)": the CDK CLI splits
      // `-c key=value` with /=(.*)/ and keeps the first line of a pretty-printed file, "{"; the error said only
      // "not valid JSON".
      'a pretty-printed file given with -c (the CDK CLI keeps its first line)',
      {
        'backstop:riskConfig':
          `backstop:riskConfig=${JSON.stringify(DEFAULT_RISK_CONFIG_INPUT, null, 2)}`.split(/=(.*)/, 2)[1],
      },
      /backstop:riskConfig: not valid JSON: only "\{" arrived, the first line of a multi-line value .*jq -c/,
    ],
    [
      // Session 40, 40 markets: a schema problem named the market by its index alone ("markets.27.maintenanceMargin"),
      // and a refused symbol said "symbol like ETH-USD" without the symbol or the rule.
      'a bad margin in the 28th of 40 markets, named by its symbol',
      {
        'backstop:riskConfig': {
          ...DEFAULT_RISK_CONFIG_INPUT,
          markets: Array.from({ length: 40 }, (_, i) => ({
            ...DEFAULT_RISK_CONFIG_INPUT.markets[0]!,
            symbol: i === 27 ? 'WIF-USD' : `M${i}-USD`,
            ...(i === 27 ? { maintenanceMargin: '0.6' } : {}),
          })),
        },
      },
      /backstop:riskConfig: invalid risk config: markets\.27\.maintenanceMargin \(WIF-USD\): maintenanceMargin: must be at most 0\.5/,
    ],
    [
      'a lower-case symbol, quoted with the rule',
      {
        'backstop:riskConfig': {
          ...DEFAULT_RISK_CONFIG_INPUT,
          markets: [{ ...DEFAULT_RISK_CONFIG_INPUT.markets[0]!, symbol: '1inch-usd' }],
        },
      },
      /markets\.0\.symbol \("1inch-usd"\): a symbol is 2 to 10 capital letters or digits, a hyphen and 3 to 5 capital letters/,
    ],
    [
      'an invalid risk config',
      { 'backstop:riskConfig': { ...DEFAULT_RISK_CONFIG_INPUT, extra: 1 } },
      /backstop:riskConfig: invalid risk config/,
    ],
    [
      'both alarm targets',
      { 'backstop:alarmEmail': 'a@b.co', 'backstop:alarmTopicArn': 'arn:aws:sns:eu-west-1:111122223333:ops' },
      /not both/,
    ],
    [
      // IAM matches a secret's complete ARN: a partial one (no six characters) would grant nothing.
      "a secret's partial ARN",
      { 'backstop:venueSecret': 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:backstop/venue' },
      /backstop:venueSecret: must be a secret's complete ARN/,
    ],
    [
      'another kind of ARN as the venue secret',
      { 'backstop:venueSecret': 'arn:aws:ssm:eu-west-1:111122223333:parameter/venue-key-a1B2c3' },
      /backstop:venueSecret: must be a secret's complete ARN/,
    ],
    [
      'a secret name Secrets Manager would not take',
      { 'backstop:venueSecret': 'venue key!' },
      /backstop:venueSecret: must be a secret's ARN or its name/,
    ],
    [
      "a KMS alias as the secret's key (IAM authorizes Decrypt on the key)",
      {
        'backstop:venueSecret': 'backstop/venue-key',
        'backstop:venueSecretKmsKey': 'arn:aws:kms:eu-west-1:111122223333:alias/venue',
      },
      /backstop:venueSecretKmsKey: must be a KMS key's ARN/,
    ],
    [
      'a secret key without a secret',
      { 'backstop:venueSecretKmsKey': 'arn:aws:kms:eu-west-1:111122223333:key/0a1b2c3d' },
      /venueSecretKmsKey names the key of a secret, and backstop:venueSecret names none/,
    ],
  ])('rejects %s with a clear error', (_name, context, message) => {
    expect(() => loadConfig(context)).toThrow(InfraConfigError);
    expect(() => loadConfig(context)).toThrow(message);
  });

  it("takes the venue's secret by complete ARN or by name, and its key by ARN; none by default", () => {
    expect(loadConfig({}).venueSecret).toBeUndefined();
    const arn = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:backstop/venue-key-a1B2c3';
    expect(loadConfig({ 'backstop:venueSecret': arn }).venueSecret).toBe(arn);
    expect(loadConfig({ 'backstop:venueSecret': 'prod/backstop/venue_key+1=a.b@c' }).venueSecret).toBe(
      'prod/backstop/venue_key+1=a.b@c',
    );
    const key = 'arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/mrk-0a1b2c3d4e5f';
    expect(
      loadConfig({ 'backstop:venueSecret': 'backstop/venue-key', 'backstop:venueSecretKmsKey': key })
        .venueSecretKmsKey,
    ).toBe(key);
  });

  it('accepts the boundaries: 60 s event age, two receives, 185 retries', () => {
    expect(() =>
      loadConfig({
        'backstop:tickMaxEventAgeSeconds': 60,
        'backstop:maxReceiveCount': 2,
        'backstop:tickRetryAttempts': 185,
      }),
    ).not.toThrow();
    expect(() => loadConfig({ 'backstop:tickRetryAttempts': 186 })).toThrow(/tickRetryAttempts/);
  });
});

describe('derived queue settings', () => {
  it('takes maxReceiveCount from the topology unless overridden, and none for queues without a DLQ', () => {
    const defaults = loadConfig({});
    const overridden = loadConfig({ 'backstop:maxReceiveCount': 2 });
    for (const q of QUEUES) {
      expect(maxReceiveCount(defaults, q.id)).toBe(q.deadLetter?.maxReceiveCount);
      expect(maxReceiveCount(overridden, q.id)).toBe(q.deadLetter ? 2 : undefined);
    }
  });

  it('sets visibility to 6x the consumer timeout plus its batching window', () => {
    for (const f of FUNCTIONS) {
      if (f.trigger.kind !== 'queue') continue;
      expect(visibilityTimeoutSeconds(f.trigger.queue)).toBe(
        6 * f.timeoutSeconds + f.trigger.batchWindowSeconds,
      );
    }
    expect(visibilityTimeoutSeconds('liquidations')).toBe(361);
    expect(visibilityTimeoutSeconds('tickDeadLetters')).toBe(30);
  });

  it("hides a received tick for margin-check's timeout and Lambda's minute before an async retry", () => {
    // Inside the tick's 120 s maximum event age, as Lambda's retry of a timed-out tick is.
    expect(receiveVisibilitySeconds(tickRuleTarget())).toBe(30 + 60);
  });
});

describe('output keys', () => {
  it('derives keys from topology ids', () => {
    expect(stackName('dev')).toBe('Backstop-dev');
    expect(tableNameKey('positions')).toBe('TablePositions');
    expect(queueUrlKey('auctionSteps')).toBe('QueueAuctionStepsUrl');
    expect(deadLetterQueueUrlKey('liquidations')).toBe('QueueLiquidationsDlqUrl');
    expect(functionNameKey('marginCheck')).toBe('FunctionMarginCheckName');
  });
});
