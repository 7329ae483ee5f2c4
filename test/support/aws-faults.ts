import {
  ProvisionedThroughputExceededException,
  TransactionCanceledException,
} from '@aws-sdk/client-dynamodb';
import type { SendMessageBatchRequestEntry, SendMessageBatchResult } from '@aws-sdk/client-sqs';
import type { AwsClients } from '../../shared/adapters/aws/index.ts';

/**
 * AWS fault injection through SDK v3 middleware, for the stress tests against the emulator:
 * - `failCalls`: the first N attempts of an operation throw (below the SDK's retry middleware, so the SDK's own
 *   retries see them as they would see a fault from the service);
 * - `failBatchEntries`: SendMessageBatch entries are not sent and come back as Failed (server-side), as SQS does.
 * Counts what it injected, so a test can assert the fault really happened.
 */

export interface CallFault {
  /** Operation name without `Command`, e.g. `TransactWriteItems`. */
  readonly operation: string;
  /** Attempts to fail (Number.POSITIVE_INFINITY: until `disable`). */
  readonly times: number;
  readonly error: (input: unknown) => Error;
}

export interface BatchEntryFault {
  /** Entries to fail (counted per entry attempt). */
  readonly times: number;
  /** Which entries fail (default: all). */
  readonly matches?: (entry: SendMessageBatchRequestEntry) => boolean;
}

type Middleware = Parameters<AwsClients['dynamo']['middlewareStack']['add']>[0];

const operationOf = (context: { commandName?: string }): string =>
  (context.commandName ?? '').replace(/Command$/, '');

export class FaultInjector {
  /** Injected faults per operation. */
  readonly injected: Record<string, number> = {};
  private enabled = true;

  /** Stops injecting (already installed middleware becomes a pass-through). */
  disable(): void {
    this.enabled = false;
  }

  get total(): number {
    return Object.values(this.injected).reduce((a, b) => a + b, 0);
  }

  private count(operation: string): void {
    this.injected[operation] = (this.injected[operation] ?? 0) + 1;
  }

  /** Installs call faults on the DynamoDB client (deserialize step: inside the retry loop). */
  failCalls(clients: AwsClients, faults: readonly CallFault[]): void {
    const left = faults.map((f) => ({ fault: f, left: f.times }));
    const middleware = ((
      next: (args: { input: unknown }) => Promise<unknown>,
      context: { commandName?: string },
    ) =>
      async (args: { input: unknown }) => {
        const operation = operationOf(context);
        const plan = this.enabled
          ? left.find((p) => p.fault.operation === operation && p.left > 0)
          : undefined;
        if (plan) {
          plan.left -= 1;
          this.count(operation);
          throw plan.fault.error(args.input);
        }
        return next(args);
      }) as unknown as Middleware;
    clients.dynamo.middlewareStack.add(middleware, { step: 'deserialize', name: 'injectedCallFaults' });
  }

  /** Installs failed-entry faults on SendMessageBatch of the SQS client. */
  failBatchEntries(clients: AwsClients, fault: BatchEntryFault): void {
    let left = fault.times;
    type Args = { input: { Entries?: SendMessageBatchRequestEntry[] } };
    type Out = { output: SendMessageBatchResult; response: unknown };
    const middleware = ((next: (args: Args) => Promise<Out>, context: { commandName?: string }) =>
      async (args: Args): Promise<Out> => {
        if (!this.enabled || operationOf(context) !== 'SendMessageBatch' || left <= 0) return next(args);
        const entries = args.input.Entries ?? [];
        const failing: SendMessageBatchRequestEntry[] = [];
        for (const entry of entries) {
          if (left > 0 && (fault.matches?.(entry) ?? true)) {
            failing.push(entry);
            left -= 1;
            this.count('SendMessageBatch.entry');
          }
        }
        const failed = failing.map((e) => ({
          Id: e.Id,
          Code: 'InternalError',
          Message: 'injected: entry not sent',
          SenderFault: false,
        }));
        const kept = entries.filter((e) => !failing.includes(e));
        if (kept.length === 0) {
          return {
            output: { Successful: [], Failed: failed, $metadata: {} } as SendMessageBatchResult,
            response: {},
          };
        }
        const out = await next({ ...args, input: { ...args.input, Entries: kept } });
        return { ...out, output: { ...out.output, Failed: [...(out.output.Failed ?? []), ...failed] } };
      }) as unknown as Middleware;
    clients.sqs.middlewareStack.add(middleware as never, { step: 'initialize', name: 'injectedBatchFaults' });
  }
}

/** DynamoDB throttling, as the service returns it (the SDK retries it with backoff). */
export const throttled = (): Error =>
  new ProvisionedThroughputExceededException({
    message: 'injected: rate of requests exceeds the allowed throughput',
    $metadata: { httpStatusCode: 400 },
  });

/** A cancelled transaction whose first item conflicted with another transaction (not retried by the SDK). */
export const transactionConflict = (input: unknown): Error => {
  const items = (input as { TransactItems?: unknown[] }).TransactItems ?? [];
  return new TransactionCanceledException({
    message: 'injected: Transaction cancelled, please refer cancellation reasons for specific reasons',
    $metadata: { httpStatusCode: 400 },
    CancellationReasons: items.map((_, i) => ({ Code: i === 0 ? 'TransactionConflict' : 'None' })),
  });
};
