import { createWriteStream, fstatSync, mkdirSync, openSync, renameSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import { LOG_ROTATE_BYTES } from './log-rotation.ts';

/**
 * `local up` runs every handler in one process, and Powertools publishes each invocation's metrics as an EMF blob on
 * stdout (on Lambda, CloudWatch reads them from the log). In a replay that is thousands of lines a minute, which bury
 * the banner, the runner's errors and the log lines: the blobs go to a file of the state folder instead.
 */

/** Where a local stack's metric blobs go, in the state folder. */
export const METRICS_LOG = 'metrics.log';

/** An EMF blob as Powertools serializes it: `_aws` first (a log line is `level` first). */
export const isMetricLine = (line: string): boolean => line.startsWith('{"_aws":{');

export interface MetricDiversion {
  /** The blobs sent to the sink so far. */
  lines(): number;
  restore(): void;
}

type WriteCallback = (error?: Error | null) => void;
type Write = (chunk: unknown, encoding?: unknown, callback?: unknown) => boolean;

/**
 * Sends the blobs written to `stream` to `sink`, one line each, and the rest through. Patched on the stream itself
 * because Powertools' Console holds the stream from when an instance is made, before any of this runs. Console
 * writes a line per call; a chunk of several lines is split. Buffers go through as they are (Console writes strings).
 */
export function divertMetricLines(
  stream: NodeJS.WritableStream,
  sink: (line: string) => void,
): MetricDiversion {
  const original = stream.write as Write;
  let count = 0;
  const diverted: Write = function (this: unknown, chunk, encoding, callback) {
    if (typeof chunk !== 'string') return original.call(this, chunk, encoding, callback);
    const lines = chunk.split('\n');
    const tail = lines.pop()!; // '' after a final newline
    const kept = lines.filter((line) => {
      if (!isMetricLine(line)) return true;
      sink(line);
      count++;
      return false;
    });
    const rest = kept.map((line) => `${line}\n`).join('') + tail;
    if (rest.length > 0) return original.call(this, rest, encoding, callback);
    // Nothing left to write: answer as a write would, later.
    const done = (typeof encoding === 'function' ? encoding : callback) as WriteCallback | undefined;
    if (done) process.nextTick(done, null);
    return true;
  };
  stream.write = diverted as NodeJS.WritableStream['write'];
  return {
    lines: () => count,
    restore: () => {
      if ((stream.write as Write) === diverted) stream.write = original as NodeJS.WritableStream['write'];
    },
  };
}

/**
 * The handlers' metric blobs (one an invocation) to `file`, appended, instead of `stream` (this process's stdout). A
 * file that cannot be written (a full disk, a read-only folder) is said once through `warn`, and its blobs dropped:
 * its stream's error, unheard, ended local up and left its emulator running (review44-metrics-file-error). Once
 * `maxBytes` are in the file (its size at open and what was written since, counted: no timer, no stat), it is moved
 * to `<file>.1` and a new one opened (local45-log-rotation-running): a long-running local up grew it without bound.
 * A file deleted meanwhile is opened anew instead, its unlinked copy ended (local46-deleted-log).
 */
export function metricsToFile(
  file: string,
  stream: NodeJS.WritableStream,
  warn: (message: string) => void,
  maxBytes = LOG_ROTATE_BYTES,
): { close(): Promise<void> } {
  mkdirSync(dirname(file), { recursive: true });
  let failed = false;
  const fail = (error: Error) => {
    if (failed) return;
    failed = true;
    warn(`${file} could not be written (${error.message}): the functions' metrics are dropped from now on`);
  };
  // Opened here, not by the stream (it opens later): a rename before that open would put two streams on the new file.
  let out: WriteStream | undefined;
  let size = 0;
  const open = () => {
    try {
      const fd = openSync(file, 'a');
      size = fstatSync(fd).size;
      out = createWriteStream(file, { fd });
      out.on('error', fail);
    } catch (error) {
      fail(error as Error);
    }
  };
  // Streams moved to .1, closed with the current one (what they still hold lands there, in order).
  const ending: Promise<void>[] = [];
  const end = (ended: WriteStream) => new Promise<void>((resolveEnd) => ended.end(() => resolveEnd()));
  open();
  const diversion = divertMetricLines(stream, (line) => {
    if (failed || !out) return;
    const text = `${line}\n`;
    out.write(text);
    size += Buffer.byteLength(text);
    if (size <= maxBytes) return;
    try {
      renameSync(file, `${file}.1`); // the open descriptor follows the file
    } catch (error) {
      // Deleted while local up runs (local46-deleted-log): the stream wrote where no folder shows; a new file now.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        ending.push(end(out));
        out = undefined;
        open();
        return;
      }
      warn(`${file} could not be moved to ${file}.1 (${(error as Error).message}): it keeps growing`);
      size = 0; // tried again after as much again
      return;
    }
    ending.push(end(out));
    out = undefined; // a new file that fails to open drops the blobs, said once
    open();
  });
  return {
    close: async () => {
      diversion.restore();
      // Answered even after an error (with it, ignored: said already).
      await Promise.all([...ending, ...(out ? [end(out)] : [])]);
    },
  };
}
