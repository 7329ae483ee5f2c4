import type { QueueTransport } from '../ports/index.ts';
import type { QueueId } from '../topology.ts';

/**
 * An operator's send refused by the queue's own policy (security49-queue-senders: a stack deployed with
 * queueSendersOnly, the default, denies sqs:SendMessage to all but the functions and queueSenderPrincipals). AWS names
 * the policy: "... with an explicit deny in a resource-based policy"; a refusal by the caller's own IAM names an
 * identity-based policy, an SCP or a boundary instead, which this advice would not fix.
 */
export const refusedByQueuePolicy = (error: unknown): error is Error =>
  error instanceof Error && /AccessDenied/.test(error.name) && /resource-based policy/i.test(error.message);

/** Whom a work queue takes on a stack deployed with queueSendersOnly, then what to do (`instead`). */
export const queueSendersAdvice = (queue: QueueId, instead: string): string =>
  `a stack deployed with backstop:queueSendersOnly (the default) takes messages on ${queue} from its functions and backstop:queueSenderPrincipals alone: ${instead}`;

/** A send of an operator command the queue's policy refused: said whole, with whom it takes (security49b-send-refused). */
export class QueueSendRefusedError extends Error {
  override readonly name = 'QueueSendRefusedError';
}

/**
 * The CLI's transport of `queue`: a send its policy refuses throws QueueSendRefusedError, saying whom the queue takes
 * and which context value lists the caller (security49b-send-refused: `liquidations overdue --resend`, `feed resume`
 * and `seed providers` showed AWS's refusal alone). Any other error is thrown as it was.
 */
export function sayingQueueSenders(transport: QueueTransport, queue: QueueId): QueueTransport {
  const said = (error: unknown): unknown =>
    refusedByQueuePolicy(error)
      ? new QueueSendRefusedError(
          `sqs/send-refused: ${error.name} (${error.message}): ${queueSendersAdvice(queue, `run it as a role listed there, or list this caller's role (its ARN as \`aws iam get-role\` gives it) and deploy again (docs/DEPLOY.md, "Who may send to the queues")`)}`,
        )
      : error;
  return {
    name: transport.name,
    send: (body, delaySeconds) =>
      transport.send(body, delaySeconds).catch((error: unknown) => {
        throw said(error);
      }),
    sendBatch: (bodies) =>
      transport.sendBatch(bodies).catch((error: unknown) => {
        throw said(error);
      }),
    receive: (maxMessages, visibilityTimeoutSeconds) =>
      transport.receive(maxMessages, visibilityTimeoutSeconds),
    delete: (receiptHandle) => transport.delete(receiptHandle),
    changeVisibility: (receiptHandle, visibilityTimeoutSeconds) =>
      transport.changeVisibility(receiptHandle, visibilityTimeoutSeconds),
    depth: () => transport.depth(),
  };
}
