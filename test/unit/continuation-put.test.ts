import type { PutEventsCommandInput, PutEventsCommandOutput } from '@aws-sdk/client-eventbridge';
import { afterEach, expect, it } from 'vitest';
import type { AwsClients } from '../../shared/adapters/aws/index.ts';
import { DEFAULT_RISK_CONFIG_INPUT } from '../../shared/domain/config.ts';
import { instrumentAwsClients, resetWiring, wiring } from '../../shared/lambda/wiring.ts';
import { functionEnvironment } from '../../shared/local/stack.ts';
import { TICK_BUS } from '../../shared/topology.ts';
import { fakeResourceNames } from '../support/resource-names.ts';

// Found in session 46 and fixed in session 47 (feed47-continuation-retries): margin-check put its continuation with a
// PutEvents of its own, which failed the tick on an entry the bus answered ThrottlingException or InternalFailure;
// Lambda then retried the whole tick (every page it had read again, its messages re-sent) for what the feed's
// publisher settles by sending the one entry again.

afterEach(() => {
  instrumentAwsClients(undefined);
  resetWiring();
});

type Args = { input: PutEventsCommandInput };

/** margin-check's wiring, its EventBridge answering each PutEvents' entries with `answer(call)` and never sending. */
function wiringAnswering(answer: (call: number) => PutEventsCommandOutput['Entries']) {
  const calls: PutEventsCommandInput[] = [];
  instrumentAwsClients((clients: AwsClients) => {
    clients.events.middlewareStack.add(
      ((_next: unknown, context: { commandName?: string }) => async (args: Args) => {
        if (context.commandName !== 'PutEventsCommand') throw new Error('unexpected command');
        const entries = answer(calls.push(args.input)) ?? [];
        return {
          output: {
            $metadata: {},
            FailedEntryCount: entries.filter((e) => e.ErrorCode).length,
            Entries: entries,
          },
          response: {},
        };
      }) as never,
      { step: 'initialize', name: 'answeringBus' },
    );
  });
  const built = wiring(
    functionEnvironment('dev', fakeResourceNames(), 'http://localhost:5000', 'us-east-1', {
      riskConfig: DEFAULT_RISK_CONFIG_INPUT,
    }),
  );
  return { built, calls };
}

const detail = { symbol: 'ETH-USD', markPrice: '184', timestamp: 1, sequence: 3, source: 'x', segment: 2 };
const waits = () => {
  const asked: number[] = [];
  return { asked, options: { sleep: async (ms: number) => void asked.push(ms), random: () => 0.999999 } };
};

it.each(['ThrottlingException', 'InternalFailure'])(
  'sends a continuation the bus answered %s again, the entry alone, instead of failing the tick',
  async (code) => {
    const { built, calls } = wiringAnswering((call) =>
      call === 1 ? [{ ErrorCode: code, ErrorMessage: `injected ${code}` }] : [{ EventId: 'e1' }],
    );
    const { asked, options } = waits();
    // Before: continuation/put-failed, and Lambda retried the whole tick.
    await built.putContinuation(detail, options);
    expect(calls).toHaveLength(2);
    expect(calls[1]).toEqual(calls[0]);
    expect(calls[0]!.Entries).toEqual([
      {
        EventBusName: fakeResourceNames().busName,
        Source: TICK_BUS.source,
        DetailType: TICK_BUS.continuationDetailType,
        Detail: JSON.stringify(detail),
      },
    ]);
    expect(asked).toHaveLength(1);
  },
);

it('fails the tick (Lambda retries it) on a continuation refused, or still throttled after its attempts', async () => {
  const refused = wiringAnswering(() => [{ ErrorCode: 'AccessDeniedException', ErrorMessage: 'denied' }]);
  await expect(refused.built.putContinuation(detail, waits().options)).rejects.toThrow(
    // final47-plurals: "after 1 attempts".
    /^continuation\/put-failed: AccessDeniedException \(denied\) after 1 attempt$/,
  );
  expect(refused.calls).toHaveLength(1);
  resetWiring();
  const throttled = wiringAnswering(() => [{ ErrorCode: 'ThrottlingException', ErrorMessage: 'slow down' }]);
  await expect(throttled.built.putContinuation(detail, waits().options)).rejects.toThrow(
    'continuation/put-failed: ThrottlingException (slow down) after 5 attempts',
  );
  expect(throttled.calls).toHaveLength(5);
});
