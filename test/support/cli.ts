import { CloudFormationClient, CreateStackCommand } from '@aws-sdk/client-cloudformation';
import { main } from '../../cli/main.ts';
import {
  deadLetterQueueUrlKey,
  OUTPUT_KEYS,
  queueUrlKey,
  stackName,
  tableNameKey,
} from '../../infra/outputs.ts';
import type { ResourceNames } from '../../shared/adapters/aws/index.ts';
import { QUEUES, TABLES } from '../../shared/topology.ts';

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI in this process, as `backstop ...argv` would, and returns its exit code and what it printed. */
export async function cli(...argv: string[]): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { isTTY: false, write: (t: string) => (stderr += t) },
  });
  return { code, stdout, stderr };
}

/**
 * Publishes a local stage's resource names as the outputs of a CloudFormation stack `Backstop-<stage>` on the
 * emulator, as `cdk deploy` would: the CLI's `--target localstack|aws` finds a deployed stack from them.
 */
export async function publishStackOutputs(
  endpoint: string,
  stage: string,
  names: ResourceNames,
): Promise<void> {
  const outputs: Record<string, { Value: string }> = {
    [OUTPUT_KEYS.tickBusName]: { Value: names.busName },
    [OUTPUT_KEYS.stage]: { Value: stage },
  };
  for (const t of TABLES) outputs[tableNameKey(t.id)] = { Value: names.tables[t.id] };
  for (const q of QUEUES) {
    outputs[queueUrlKey(q.id)] = { Value: names.queues[q.id].url };
    const dlq = names.queues[q.id].dlqUrl;
    if (dlq) outputs[deadLetterQueueUrlKey(q.id)] = { Value: dlq };
  }
  const cfn = new CloudFormationClient({
    region: 'us-east-1',
    endpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  try {
    await cfn.send(
      new CreateStackCommand({
        StackName: stackName(stage),
        TemplateBody: JSON.stringify({
          Resources: { Marker: { Type: 'AWS::SQS::Queue', Properties: { QueueName: `marker-${stage}` } } },
          Outputs: outputs,
        }),
      }),
    );
  } finally {
    cfn.destroy();
  }
}
