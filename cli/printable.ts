/**
 * Text from outside the operator (a dead letter's body, a record's ids and notes, an error AWS or the venue wrote) as
 * the CLI prints it (security48b-terminal-text): characters a terminal may act on instead of showing are escaped as
 * `\uXXXX`. SQS bodies cannot hold ESC but can hold C1 controls (U+009B is CSI, as ESC [ is), and the bidi overrides
 * and isolates reorder what follows them on the line; U+2028 and U+2029 (line and paragraph separators) start a line
 * in some terminals and most log viewers (terminal49-separators). `keepLines` keeps line feeds and tabs (a rendered
 * block's own); without it a field stays on its line.
 */
// Every character but these: C0, DEL, C1, U+2028-U+2029 and the bidi controls (U+202A-U+202E, U+2066-U+2069).
const UNPRINTABLE = /[^\x20-\x7e\u00a0-\u2027\u202f-\u2065\u206a-\uffff]/g;

const ANY_UNPRINTABLE = new RegExp(UNPRINTABLE.source);

export const printable = (text: string, keepLines = false): string =>
  // Most text has none: tested first, not rebuilt (a statement's fields run to millions).
  !ANY_UNPRINTABLE.test(text)
    ? text
    : text.replace(UNPRINTABLE, (c) =>
        keepLines && (c === '\n' || c === '\t') ? c : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
      );

/**
 * `JSON.stringify(value)` with the same characters escaped: it escapes C0 itself but leaves DEL, C1, the separators
 * and the bidi controls as they are. JSON's own `\uXXXX`, so the data parsed is the same, character for character.
 */
export const printableJson = (value: unknown): string => printable(JSON.stringify(value) ?? 'null');

type Write = (chunk: unknown, encoding?: unknown, callback?: unknown) => boolean;

/**
 * Makes every string written to `stream` `printable`, its line feeds and tabs kept; the restore. For `local up`'s
 * foreground (cli50-foreground-log-text): it prints the functions' Powertools log lines, JSON whose strings carry stored
 * and remote text (a record's ids and notes, AWS's and the venue's errors), and JSON.stringify leaves C1, DEL, the
 * separators and the bidi controls raw. Escaped they are JSON's own `\uXXXX`: a line parses to the same value. Patched
 * on the stream itself, as Powertools' Console holds the stream (divertMetricLines); Buffers go through as they are.
 */
export function printableWrites(stream: NodeJS.WritableStream): () => void {
  const original = stream.write as Write;
  const escaped: Write = function (this: unknown, chunk, encoding, callback) {
    // Text only: a string given as latin1, hex or base64 is bytes, which escaping would change (review50-cli-write-encoding).
    const text =
      typeof chunk === 'string' &&
      (encoding === undefined ||
        typeof encoding === 'function' ||
        encoding === 'utf8' ||
        encoding === 'utf-8');
    return original.call(this, text ? printable(chunk, true) : chunk, encoding, callback);
  };
  stream.write = escaped as NodeJS.WritableStream['write'];
  return () => {
    if ((stream.write as Write) === escaped) stream.write = original as NodeJS.WritableStream['write'];
  };
}

/**
 * `value` with every string in it (deep: arrays and plain objects) made `printable` on one line, for a renderer to
 * lay out: a line feed in a record's text (a note, an id, a reason) is `\u000a`, never the start of a line of its own
 * that could pass for one the command printed (providers49-forged-lines). Other values are kept as they are, and an
 * array or object with nothing to escape is returned itself: a statement's million entries are not copied
 * (terminal49-statement-lines).
 */
export function printableFields<T>(value: T): T {
  if (typeof value === 'string') return printable(value) as T;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      const shown = printableFields(item);
      if (shown === item) continue;
      copy ??= [...value];
      copy[i] = shown;
    }
    return (copy ?? value) as T;
  }
  if (value !== null && typeof value === 'object') {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) return value;
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record);
    let copy: [string, unknown][] | undefined;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const shownKey = printable(key);
      const shown = printableFields(record[key]);
      // The fields before the first escaped as they were, then every one as escaped.
      if (copy === undefined && (shownKey !== key || shown !== record[key]))
        copy = keys.slice(0, i).map((k) => [k, record[k]]);
      copy?.push([shownKey, shown]);
    }
    return (copy === undefined ? value : Object.fromEntries(copy)) as T;
  }
  return value;
}
