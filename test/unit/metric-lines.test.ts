import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { afterAll, describe, expect, it } from 'vitest';
import { divertMetricLines, isMetricLine, metricsToFile } from '../../shared/local/metric-lines.ts';

// Found in session 43's notes: `local up` in the foreground printed one EMF blob per invocation to stdout, thousands
// in a replay, burying the banner, the runner's errors and the logs. The blobs now go to metrics.log.

/** A stream that keeps what reaches it, as a terminal would show it. */
function terminal(): { stream: Writable & { write: Writable['write'] }; shown: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return { stream, shown: () => chunks.join('') };
}

const EMF =
  '{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"Backstop","Dimensions":[["service"]],"Metrics":[]}]},"service":"backstop-local"}';

describe('local44-metrics-file: local up keeps metric blobs off the terminal', () => {
  it('tells an EMF blob from a log line', () => {
    expect(isMetricLine(EMF)).toBe(true);
    expect(isMetricLine('{"level":"WARN","message":"x","_aws":1}')).toBe(false);
    expect(isMetricLine('backstop local stack up')).toBe(false);
  });

  it('sends the blobs to the sink and everything else through, in order', () => {
    const { stream, shown } = terminal();
    const sunk: string[] = [];
    const diversion = divertMetricLines(stream, (line) => sunk.push(line));
    stream.write(`${EMF}\n`);
    stream.write('runner: tick: boom\n');
    stream.write(`{"level":"WARN","message":"slow"}\n${EMF}\nafter\n`);
    let called = false;
    stream.write(`${EMF}\n`, () => {
      called = true;
    });
    expect(sunk).toEqual([EMF, EMF, EMF]);
    expect(diversion.lines()).toBe(3);
    diversion.restore();
    stream.write(`${EMF}\n`);
    expect(shown()).toBe(`runner: tick: boom\n{"level":"WARN","message":"slow"}\nafter\n${EMF}\n`);
    expect(sunk).toHaveLength(3);
    return new Promise<void>((resolve) => setImmediate(resolve)).then(() => expect(called).toBe(true));
  });

  it("catches Powertools' own publish, from an instance made before the diversion", () => {
    // Powertools binds a Console to process.stdout when an instance is made (the handlers' at module load).
    const metrics = new Metrics({ namespace: 'Backstop', serviceName: 'backstop-test' });
    const sunk: string[] = [];
    const diversion = divertMetricLines(process.stdout, (line) => sunk.push(line));
    try {
      metrics.addMetric('PositionsChecked', MetricUnit.Count, 2);
      metrics.publishStoredMetrics();
    } finally {
      diversion.restore();
    }
    expect(sunk).toHaveLength(1);
    expect(JSON.parse(sunk[0]!)).toMatchObject({ service: 'backstop-test', PositionsChecked: 2 });
  });
});

describe('review44-metrics-file-error: a metrics.log that cannot be written never stops local up', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'backstop-review44-metrics-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const settle = () => new Promise<void>((resolve) => setTimeout(resolve, 20));

  it('says so once, drops the blobs, keeps the rest on the terminal and closes', async () => {
    // A file that cannot be opened (here a folder in its place; a full disk or a read-only state folder alike).
    const file = path.join(dir, 'metrics.log');
    mkdirSync(file);
    const { stream, shown } = terminal();
    const warnings: string[] = [];
    // Before: the file stream's 'error' had no listener, an uncaught exception that ended local up mid-run.
    const metrics = metricsToFile(file, stream, (message) => warnings.push(message));
    stream.write(`${EMF}\nthe banner\n`);
    await settle();
    stream.write(`${EMF}\nrunner: tick: boom\n`);
    await settle();
    await metrics.close();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/metrics\.log.*EISDIR.*dropped/);
    expect(shown()).toBe('the banner\nrunner: tick: boom\n');
  });

  it('appends the blobs, one a line, and stops diverting once closed', async () => {
    const file = path.join(dir, 'ok', 'metrics.log');
    const { stream, shown } = terminal();
    const metrics = metricsToFile(file, stream, () => {
      throw new Error('no warning expected');
    });
    stream.write(`${EMF}\nkept\n`);
    stream.write(`${EMF}\n`);
    await metrics.close();
    stream.write(`${EMF}\n`);
    expect(readFileSync(file, 'utf8')).toBe(`${EMF}\n${EMF}\n`);
    expect(shown()).toBe(`kept\n${EMF}\n`);
  });
});
