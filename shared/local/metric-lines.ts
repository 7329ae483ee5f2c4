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
