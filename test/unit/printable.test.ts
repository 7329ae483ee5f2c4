import { expect, it } from 'vitest';
import { printable, printableFields, printableJson } from '../../cli/printable.ts';
import { cli } from '../support/cli.ts';

// security48b-terminal-text: what the CLI prints from outside the operator cannot drive the terminal.
const CONTROLS = 'a\u009b31m\u007f\u202eb\u2069\r\x07\n\tc';

it('escapes C0 (line feeds and tabs kept in a block), DEL, C1 and the bidi controls, nothing else', () => {
  expect(printable(CONTROLS)).toBe('a\\u009b31m\\u007f\\u202eb\\u2069\\u000d\\u0007\\u000a\\u0009c');
  expect(printable(CONTROLS, true)).toBe('a\\u009b31m\\u007f\\u202eb\\u2069\\u000d\\u0007\n\tc');
  expect(printable('é ✓ 😀 \u00a0\u2028 ~')).toBe('é ✓ 😀 \u00a0\u2028 ~');
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
});

it('keeps JSON the same data, with those characters in its own escapes', () => {
  const value = { body: CONTROLS, n: 1 };
  const json = printableJson(value);
  expect(json).not.toMatch(/[\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
  expect(JSON.parse(json)).toEqual(value);
});

it("escapes an error's message on the error line", async () => {
  const run = await cli('\u009b2Jx');
  expect(run.code).toBe(2);
  expect(run.stderr).toMatch(/^backstop: unknown command "\\u009b2Jx"/);
});
