import { Logger } from '@aws-lambda-powertools/logger';
import { expect, it } from 'vitest';
import { debugStack } from '../../cli/main.ts';
import { operatorCommand } from '../../cli/ops/common.ts';
import { printable, printableFields, printableJson, printableWrites } from '../../cli/printable.ts';
import { TargetError } from '../../shared/local/deployment.ts';
import { cli } from '../support/cli.ts';

// security48b-terminal-text: what the CLI prints from outside the operator cannot drive the terminal.
const CONTROLS = 'a\u009b31m\u007f\u202eb\u2069\r\x07\n\tc';

it('escapes C0 (line feeds and tabs kept in a block), DEL, C1 and the bidi controls, nothing else', () => {
  expect(printable(CONTROLS)).toBe('a\\u009b31m\\u007f\\u202eb\\u2069\\u000d\\u0007\\u000a\\u0009c');
  expect(printable(CONTROLS, true)).toBe('a\\u009b31m\\u007f\\u202eb\\u2069\\u000d\\u0007\n\tc');
  expect(printable('é ✓ 😀 \u00a0\u2027\u202f ~')).toBe('é ✓ 😀 \u00a0\u2027\u202f ~');
});

// terminal49-separators: U+2028 and U+2029 were printed as they are (and this test asserted it), but some terminals and
// most log viewers (a browser's, a JSON log's) break a line at them, so a record's text could start a line there.
it('escapes the line and paragraph separators, a block keeping its line feeds, JSON the same data', () => {
  const separated = 'note\u2028forged line\u2029another';
  expect(printable(separated)).toBe('note\\u2028forged line\\u2029another');
  expect(printable(`${separated}\n`, true)).toBe('note\\u2028forged line\\u2029another\n');
  expect(printableFields({ note: separated })).toEqual({ note: printable(separated) });
  const json = printableJson({ note: separated });
  expect(json).not.toMatch(/[\u2028\u2029]/);
  expect(JSON.parse(json)).toEqual({ note: separated });
});

// providers49-forged-lines: a record's fields escaped on their own line before a renderer lays out its block.
it("escapes every string of a record's fields, line feeds too, and leaves the rest as it is", () => {
  const when = new Date(0);
  const fields = {
    id: 'lp\nforged',
    n: 1,
    big: 2n,
    at: when,
    list: [{ note: CONTROLS }, 'x\ty', null, undefined],
    'key\n': true,
  };
  expect(printableFields(fields)).toEqual({
    id: 'lp\\u000aforged',
    n: 1,
    big: 2n,
    at: when,
    list: [{ note: printable(CONTROLS) }, 'x\\u0009y', null, undefined],
    'key\\u000a': true,
  });
  expect(printableFields(fields).at).toBe(when);
  // Nothing to escape: the same value, not a copy (a statement's entries run to a million).
  const plain = { list: [{ note: 'x' }], n: 1 };
  expect(printableFields(plain)).toBe(plain);
});

it('keeps JSON the same data, with those characters in its own escapes', () => {
  const value = { body: CONTROLS, n: 1 };
  const json = printableJson(value);
  expect(json).not.toMatch(/[\u007f-\u009f\u2028-\u202e\u2066-\u2069]/);
  expect(JSON.parse(json)).toEqual(value);
});

it("escapes an error's message on the error line", async () => {
  const run = await cli('\u009b2Jx');
  expect(run.code).toBe(2);
  expect(run.stderr).toMatch(/^backstop: unknown command "\\u009b2Jx"/);
});

// terminal49-error-lines: the error line kept an error's line feeds (printable's keepLines), so what followed one in an
// AWS error's or a record's text stood on a line of its own on stderr, as if the CLI had printed it.
it("prints an error's line feeds escaped: one line, its start as it reads", async () => {
  const run = await cli('x\nbackstop: forged line');
  expect(run.code).toBe(2);
  expect(run.stderr).toMatch(
    /^backstop: unknown command "x\\u000abackstop: forged line" \(commands: [^\n]+\)\n$/,
  );
  // An operator command's environment failure (a target that cannot be used: its message whole).
  let stderr = '';
  const failing = operatorCommand(async () => {
    throw new TargetError('stack Backstop-x: ROLLBACK\nbackstop: forged line');
  });
  const io = { stdout: { write: () => true }, stderr: { write: (t: string) => (stderr += t) } };
  expect(await failing([], io as never)).toBe(1);
  expect(stderr).toBe('backstop: stack Backstop-x: ROLLBACK\\u000abackstop: forged line\n');
  // An internal error too, and its stack (BACKSTOP_DEBUG=1): the message in it as on the error line.
  const error = new Error('bad\nbackstop: forged\u2028line');
  expect(debugStack(error).split('\n')[0]).toBe('Error: bad\\u000abackstop: forged\\u2028line');
  expect(debugStack(error).split('\n')[1]).toMatch(/^ {4}at /);
});

// cli50-foreground-log-text: local up's foreground printed the functions' Powertools log lines as JSON.stringify left
// them, C1, DEL, the separators and the bidi controls of stored or remote text raw on the terminal.
it('escapes what Powertools logs through a stream printableWrites patched, each line parsing to the same value', () => {
  // Made before the patch, as the handlers' loggers are at module load: its Console holds the stream.
  const logger = new Logger({ serviceName: 'backstop-test', logLevel: 'INFO' });
  const text = `note \u009b31m${'\u202e'}evil\u2066 \u2028forged\u2029 \u007f end`;
  const written: string[] = [];
  const stream = process.stderr;
  const write = stream.write;
  stream.write = ((chunk: string | Uint8Array) => {
    written.push(String(chunk));
    return true;
  }) as typeof stream.write;
  const restore = printableWrites(stream);
  try {
    logger.warn(text, { liquidationId: 'p1:0\u009d', reason: 'venue said \u0085 \u2067x' });
    stream.write(Buffer.from('bytes as they are \u009b'));
    // review50-cli-write-encoding: a string given with a byte encoding is bytes, not text: as it is.
    stream.write('\u0085\u009b', 'latin1');
    stream.write('\u009b', 'utf8');
  } finally {
    restore();
    stream.write = write;
  }
  const line = written[0]!;
  expect(line.endsWith('\n')).toBe(true);
  expect(line.trimEnd()).toBe(printable(line.trimEnd()));
  expect(line).not.toMatch(/[\u0080-\u009f\u007f\u2028\u2029\u202a-\u202e\u2066-\u2069]/);
  expect(JSON.parse(line)).toMatchObject({
    level: 'WARN',
    message: text,
    liquidationId: 'p1:0\u009d',
    reason: 'venue said \u0085 \u2067x',
  });
  expect(written[1]).toBe('bytes as they are \u009b');
  expect(written.slice(2)).toEqual(['\u0085\u009b', '\\u009b']);
});
