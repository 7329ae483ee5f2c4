import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { type AwsClients, clientOptions, withTimeouts } from '../../shared/adapters/aws/clients.ts';

/**
 * Who the CLI's credentials are: STS GetCallerIdentity's ARN, journaled with the fund movements the operator makes
 * (`fund deposit|withdraw`), which write the ledger directly under those credentials. Only the CLI asks, so the
 * functions' bundles carry no STS client.
 */
export async function callerArn(clients: AwsClients): Promise<string> {
  const sts = withTimeouts(new STSClient(clientOptions(clients.config)), clients.config);
  try {
    const { Arn } = await sts.send(new GetCallerIdentityCommand({}));
    if (Arn === undefined) throw new Error('sts/GetCallerIdentity: no Arn in the answer');
    return Arn;
  } finally {
    sts.destroy();
  }
}
