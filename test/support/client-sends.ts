import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient, PutEventsCommand, type PutEventsResponse } from '@aws-sdk/client-eventbridge';
import { type MockInstance, vi } from 'vitest';

/**
 * The calls of the clients the CLI builds for itself, answered by a test: the CLI's clients are its own, so a spy on
 * a client class's `send` (every instance's), each call given to the test's `answer` with `forward`, which sends it on
 * to the emulator. The spy is returned for its mockRestore (vi.restoreAllMocks restores it too).
 */

interface SdkClient {
  send(command: never, ...rest: never[]): Promise<unknown>;
}

/** What `answer` returns (or throws) is the call's; `forward()` sends the call on as it was. */
export type Answer = (command: unknown, forward: () => Promise<unknown>) => unknown;

export function interceptSends(client: { readonly prototype: SdkClient }, answer: Answer): MockInstance {
  const send = client.prototype.send as (...args: unknown[]) => Promise<unknown>;
  return vi.spyOn(client.prototype, 'send').mockImplementation(async function (
    this: SdkClient,
    ...args: unknown[]
  ) {
    return answer(args[0], () => send.apply(this, args));
  } as never);
}

/** An error named `name`, as the SDK or Node throws it (`more`: its other fields). */
export const namedError = (name: string, message: string, more: object = {}): Error =>
  Object.assign(new Error(message), { name, ...more });

/** An error answer (a 4xx) to a request the SDK sent once, as it throws one it does not retry. */
export const refusedOnce = (name: string, message: string): Error =>
  namedError(name, message, { $fault: 'client', $metadata: { httpStatusCode: 400, attempts: 1 } });

/** A fault a DynamoDB call is answered with: an error answer, as the SDK throws it after its retries. */
export interface DynamoFault {
  readonly name: string;
  readonly message: string;
}
export const THROTTLED: DynamoFault = {
  name: 'ThrottlingException',
  message: 'Rate of requests exceeds the allowed throughput.',
};
export const NOT_FOUND: DynamoFault = {
  name: 'ResourceNotFoundException',
  message: 'Requested resource not found',
};

/** Every DynamoDB call answered with `faultOf(command)` where that gives a fault; the others reach the emulator. */
export const failDynamo = (faultOf: (command: unknown) => DynamoFault | undefined): MockInstance =>
  interceptSends(DynamoDBClient, (command, forward) => {
    const fault = faultOf(command);
    if (fault) throw namedError(fault.name, fault.message, { $metadata: { httpStatusCode: 400 } });
    return forward();
  });

/**
 * The Scans of `table`, numbered from 1, answered with `faultOf(scan)` where that gives a fault (a `status --watch`
 * Scans the markets once a refresh, a hold's look the liquidations).
 */
export function failScans(table: string, faultOf: (scan: number) => DynamoFault | undefined): MockInstance {
  let scans = 0;
  return failDynamo((command) =>
    command instanceof ScanCommand && command.input.TableName === table ? faultOf(++scans) : undefined,
  );
}

/** Every PutEvents call, numbered from 1, answered by `answer`; EventBridge's other calls reach the emulator. */
export const answerPutEvents = (
  answer: (command: PutEventsCommand, call: number, forward: () => Promise<unknown>) => unknown,
): MockInstance => {
  let calls = 0;
  return interceptSends(EventBridgeClient, (command, forward) =>
    command instanceof PutEventsCommand ? answer(command, ++calls, forward) : forward(),
  );
};

/** A PutEvents answer with a result for none of `command`'s entries: neither an event id nor an error code. */
export const noResultFor = (command: PutEventsCommand): PutEventsResponse & { $metadata: object } => ({
  FailedEntryCount: 0,
  Entries: (command.input.Entries ?? []).map(() => ({})),
  $metadata: {},
});
