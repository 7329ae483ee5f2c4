import type { AwsClients } from '../../shared/adapters/aws/index.ts';

type Middleware = Parameters<AwsClients['dynamo']['middlewareStack']['add']>[0];
type Args = { input: unknown; request?: { body?: unknown } };

/**
 * A request's body as text: the SDK's JSON protocols now serialize to bytes (a Uint8Array whose string methods still
 * convert, with a warning that a later version throws), so it is decoded as UTF-8, not String()ed.
 */
export function bodyText(body: unknown): string {
  if (body === undefined) return '';
  if (typeof body === 'string') return body;
  if (body instanceof Uint8Array) return new TextDecoder().decode(body);
  throw new TypeError(`a request body neither text nor bytes: ${Object.prototype.toString.call(body)}`);
}

/**
 * Once armed, the next `command` (a DynamoDB command's name) reaches moto, then its answer is lost: a TimeoutError,
 * which the SDK retries by sending the same request. `bodies`: the request body of every attempt of that command.
 * `matches`: only a command whose input it accepts loses its answer (any, without it).
 */
export function loseNextAnswer(
  clients: AwsClients,
  command: string,
  matches: (input: Record<string, unknown>) => boolean = () => true,
) {
  const state = { armed: false, lost: 0, bodies: [] as string[] };
  const middleware = ((next: (args: Args) => Promise<unknown>, context: { commandName?: string }) =>
    async (args: Args) => {
      if (context.commandName === command) state.bodies.push(bodyText(args.request?.body));
      const out = await next(args);
      if (state.armed && context.commandName === command && matches(args.input as Record<string, unknown>)) {
        state.armed = false;
        state.lost += 1;
        const error = new Error('injected: the answer was lost after the write');
        error.name = 'TimeoutError';
        throw error;
      }
      return out;
    }) as unknown as Middleware;
  clients.dynamo.middlewareStack.add(middleware, { step: 'deserialize', name: 'loseAnswer' });
  return state;
}
