import { expect, it } from 'vitest';
import { runnerErrorLine } from '../../cli/ops/local.ts';
import { report } from '../../cli/ops/seed.ts';

// more48-terminal-text: lines security48b-terminal-text left raw, with AWS's (or the venue's) text in them.
const hostile = 'x\u009b2J\u007f\u202e\r\nforged';
const shown = 'x\\u009b2J\\u007f\\u202e\\u000d\\u000aforged';

it("escapes a seed's refusals, their ids and reasons", () => {
  let stdout = '';
  let stderr = '';
  const io = {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
  };
  const code = report(io as never, 'positions', {
    created: 1,
    existing: 0,
    failed: [{ id: `p${hostile}`, reason: `ValidationException: ${hostile}` }],
  });
  expect(code).toBe(1);
  expect(stdout).toBe('positions: 1 written, 0 already there, 1 refused\n');
  expect(stderr).toBe(`  p${shown}: ValidationException: ${shown}\n`);
});

it("escapes a failed invocation's error in local up's runner line", () => {
  const error = Object.assign(new Error(hostile), { name: 'VenueError' });
  // Its first line (describeFailure's), the carriage return before the line feed escaped.
  expect(runnerErrorLine({ functionId: 'auction', error, messageIds: [] })).toBe(
    'runner: auction: VenueError: x\\u009b2J\\u007f\\u202e\\u000d',
  );
});
