import type { AwsClients } from '../../shared/adapters/aws/index.ts';

type Middleware = Parameters<AwsClients['dynamo']['middlewareStack']['add']>[0];

/**
 * Each UpdateItem's expression the client sends, whatever its outcome, in order; `before` runs ahead of each (a test
 * slips a concurrent write in there).
 */
export function recordUpdates(
  clients: AwsClients,
  before: (expression: string) => Promise<void> = async () => {},
): string[] {
  const seen: string[] = [];
  const middleware = ((
    next: (args: { input: unknown }) => Promise<unknown>,
    context: { commandName?: string },
  ) =>
    async (args: { input: unknown }) => {
      const input = args.input as { UpdateExpression?: string };
      if (context.commandName === 'UpdateItemCommand') {
        seen.push(input.UpdateExpression ?? '');
        await before(input.UpdateExpression ?? '');
      }
      return next(args);
    }) as unknown as Middleware;
  clients.dynamo.middlewareStack.add(middleware, { step: 'deserialize', name: 'recordUpdates' });
  return seen;
}
