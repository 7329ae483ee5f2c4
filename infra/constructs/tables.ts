import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, ProjectionType, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import type { Construct } from 'constructs';
import { type IndexDef, type KeyDef, TABLES, type TableId } from '../../shared/topology.ts';

const attribute = (key: KeyDef) => ({
  name: key.name,
  type: key.type === 'S' ? AttributeType.STRING : AttributeType.NUMBER,
});

const projection = (index: IndexDef) =>
  index.projection === 'ALL'
    ? { projectionType: ProjectionType.ALL }
    : index.projection === 'KEYS_ONLY'
      ? { projectionType: ProjectionType.KEYS_ONLY }
      : { projectionType: ProjectionType.INCLUDE, nonKeyAttributes: [...index.projection] };

/**
 * One DynamoDB table per topology entry.
 *
 * - `Table`, not `TableV2`: TableV2 synthesizes as AWS::DynamoDB::GlobalTable, which moto's CloudFormation
 *   (the local deployment target) does not create; AWS::DynamoDB::Table works on both.
 * - On-demand: liquidation cascades are bursty (quiet for days, then hundreds of writes a second), so
 *   provisioned capacity would be either idle or throttling exactly when it matters.
 * - AWS managed KMS key (aws/dynamodb): KMS encryption with key use logged in CloudTrail, without a
 *   customer key's monthly cost and key-policy upkeep. Nothing here needs cross-account key sharing or
 *   key revocation, the reasons to pay for a customer managed key.
 * - Point-in-time recovery everywhere; tables holding money (retain: true) are also deletion protected
 *   and retained when the stack is deleted.
 * - `positionIndexes` deploys only the positions table's first indexes: CloudFormation creates one index per
 *   table update, so a stack made before ADL's two indexes is upgraded in two deploys (docs/DEPLOY.md).
 */
export function createTables(
  scope: Construct,
  options: { readonly positionIndexes?: number } = {},
): Record<TableId, Table> {
  const tables = {} as Record<TableId, Table>;
  for (const def of TABLES) {
    const table = new Table(scope, `${def.id}Table`, {
      partitionKey: attribute(def.partitionKey),
      ...(def.sortKey ? { sortKey: attribute(def.sortKey) } : {}),
      billingMode: BillingMode.PAY_PER_REQUEST,
      encryption: TableEncryption.AWS_MANAGED,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: def.retain,
      removalPolicy: def.retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });
    const indexes =
      def.id === 'positions' && options.positionIndexes !== undefined
        ? def.indexes.slice(0, options.positionIndexes)
        : def.indexes;
    for (const index of indexes) {
      table.addGlobalSecondaryIndex({
        indexName: index.name,
        partitionKey: attribute(index.partitionKey),
        ...(index.sortKey ? { sortKey: attribute(index.sortKey) } : {}),
        ...projection(index),
      });
    }
    tables[def.id] = table;
  }
  return tables;
}
