import { Aws, Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import { CfnTrail } from 'aws-cdk-lib/aws-cloudtrail';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';

/** A trail's name: its ARN, which the bucket's policy names, is known before the trail exists (no cycle). */
export const adminTrailName = (stage: string): string => `backstop-${stage}-admin-invokes`;

/** How long an overwritten or deleted log file's earlier version is kept (the bucket is versioned). */
export const ADMIN_TRAIL_NONCURRENT_DAYS = 90;

export interface AdminTrail {
  readonly trail: CfnTrail;
  readonly bucket: Bucket;
}

/**
 * A trail of the admin function's invocations (admin51-admin-trail): Lambda hands a function no caller, and a fund
 * movement through it journals its invocation's request id (LedgerMovement.invocationId); CloudTrail's Lambda `Invoke`
 * data event of that request names the IAM principal who invoked it. Data events of this function alone (its
 * versions and aliases too), no management events (an account's first copy of those is free, a second is not; its
 * own trail keeps them), in this region, to an encrypted, TLS-only, non-public bucket kept `retentionDays`, with
 * digest files to prove a log file unchanged.
 */
export function createAdminTrail(
  scope: Construct,
  props: { readonly stage: string; readonly admin: IFunction; readonly retentionDays: number },
): AdminTrail {
  const name = adminTrailName(props.stage);
  const bucket = new Bucket(scope, 'AdminTrailBucket', {
    encryption: BucketEncryption.S3_MANAGED,
    enforceSSL: true,
    blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
    objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
    versioned: true,
    lifecycleRules: [
      {
        id: 'expire-admin-invocation-logs',
        expiration: Duration.days(props.retentionDays),
        noncurrentVersionExpiration: Duration.days(ADMIN_TRAIL_NONCURRENT_DAYS),
        abortIncompleteMultipartUploadAfter: Duration.days(7),
      },
    ],
    // An audit record outlives the stack: removing the stack leaves the bucket and its logs.
    removalPolicy: RemovalPolicy.RETAIN,
  });
  // CloudTrail's own statements, limited to this trail (its ARN: no other trail, of this account or another, writes).
  const cloudTrail = new ServicePrincipal('cloudtrail.amazonaws.com');
  const thisTrail = {
    StringEquals: {
      'aws:SourceArn': `arn:${Aws.PARTITION}:cloudtrail:${Aws.REGION}:${Aws.ACCOUNT_ID}:trail/${name}`,
    },
  };
  const aclCheck = bucket.addToResourcePolicy(
    new PolicyStatement({
      principals: [cloudTrail],
      actions: ['s3:GetBucketAcl'],
      resources: [bucket.bucketArn],
      conditions: thisTrail,
    }),
  );
  bucket.addToResourcePolicy(
    new PolicyStatement({
      principals: [cloudTrail],
      actions: ['s3:PutObject'],
      resources: [bucket.arnForObjects(`AWSLogs/${Aws.ACCOUNT_ID}/*`)],
      conditions: {
        StringEquals: { ...thisTrail.StringEquals, 's3:x-amz-acl': 'bucket-owner-full-control' },
      },
    }),
  );
  const fn = props.admin.functionArn;
  // resources.ARN: the function's own ARN exactly, or a qualified one (`<arn>:<version or alias>`, `:$LATEST`); a
  // StartsWith of the bare ARN alone would also take another function whose name begins with this one's.
  const selector = (label: string, arn: { equals?: string[]; startsWith?: string[] }) => ({
    name: label,
    fieldSelectors: [
      { field: 'eventCategory', equalTo: ['Data'] },
      { field: 'resources.type', equalTo: ['AWS::Lambda::Function'] },
      { field: 'resources.ARN', ...(arn.equals ? { equalTo: arn.equals } : { startsWith: arn.startsWith }) },
    ],
  });
  const trail = new CfnTrail(scope, 'AdminTrail', {
    trailName: name,
    isLogging: true,
    s3BucketName: bucket.bucketName,
    enableLogFileValidation: true,
    isMultiRegionTrail: false,
    includeGlobalServiceEvents: false,
    advancedEventSelectors: [
      selector('admin function invocations', { equals: [fn] }),
      selector('admin function version and alias invocations', { startsWith: [`${fn}:`] }),
    ],
  });
  // CloudTrail checks it may write to the bucket when the trail is made: the policy first.
  if (aclCheck.policyDependable) trail.node.addDependency(aclCheck.policyDependable);
  Validations.of(bucket).acknowledge({
    id: 'AwsSolutions-S1',
    reason:
      "The bucket holds CloudTrail's log of the admin function's invocations, which CloudTrail writes as this trail alone (its policy names the trail's ARN). A file changed or deleted by a principal of the account is told by the trail's log file validation (digest files) and its earlier version kept 90 days (versioning), not by server access logs, which would need a bucket of their own, logged in turn. Who reads or writes its objects is for a trail's S3 data events, where wanted.",
  });
  return { trail, bucket };
}
