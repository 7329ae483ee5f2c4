import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { cli, useOperatorEmulator } from '../support/cli.ts';

const emulator = useOperatorEmulator('replay-exit');

afterEach(() => {
  vi.restoreAllMocks();
});

// review47-replay-unknown-exit: feed47-publish-error-fates moved an entry answered with neither an id nor a code out
// of `rejected` into `unknown`, and replay's exit code counted `rejected` alone: such a tick, perhaps never on the
// bus, ended the run with exit 0 (it was 1).
describe('backstop replay: a tick of unknown fate', () => {
  it('ends with exit 1, as a refused one does', async () => {
    const { at } = await emulator.newStage('unknown');
    const file = path.join(emulator.dir, 'one.csv');
    // One price: nothing runs margin-check here, and a replay waits for the market to handle a tick before the next.
    writeFileSync(file, 'timestamp,close\n1584000000000,150\n');
    // Every PutEvents answered with a result that carries neither an EventId nor an ErrorCode.
    const send = EventBridgeClient.prototype.send;
    vi.spyOn(EventBridgeClient.prototype, 'send').mockImplementation(function (
      this: EventBridgeClient,
      command: unknown,
    ) {
      if (command instanceof PutEventsCommand)
        return Promise.resolve({
          FailedEntryCount: 0,
          Entries: (command.input.Entries ?? []).map(() => ({})),
          $metadata: {},
        });
      return (send as (c: unknown) => Promise<unknown>).call(this, command);
    } as never);
    const run = await cli('replay', file, '--symbol', 'ETH-USD', '--speed', 'max', '--json', ...at);
    expect(JSON.parse(run.stdout)).toMatchObject({ sent: 1, accepted: 0, rejected: 0, unknownFate: 1 });
    expect(run.code, run.stderr).toBe(1);
  });
});
