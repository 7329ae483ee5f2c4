import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_RISK_CONFIG_INPUT, type RiskConfigInput } from '../../shared/domain/config.ts';
import { TERMINAL_STATES } from '../../shared/domain/model.ts';
import { parseQuote } from '../../shared/domain/units.ts';
import { motoAnswers } from '../../shared/local/moto.ts';
import { isAlive, readLocalRecord } from '../../shared/local/state.ts';
import type { StatusReport } from '../../shared/local/status.ts';

/**
 * The done-when test: `backstop local up` as a background process (node on the project's tsx, the
 * package's bin), then the operator commands as separate processes against it: seed a book and providers,
 * fund the insurance fund, replay the 12-13 March 2020 ETH crash (leg 2) at max speed, poll `status --json`
 * until the queues drain, assert the outcome, and stop the stack cleanly with `local down`.
 */

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.join(repoRoot, 'bin', 'backstop.mjs');
const CRASH = path.resolve(repoRoot, '..', 'shared', 'data', 'eth-usdt-perp-2020-03-12-leg2-1m.csv');
const FIRST_CLOSE = '129.43';
const POSITIONS = 300;
/**
 * Auctions sleep until the step their best bid can take (up to the first second past tail, 61 s here, twice
 * with the reset): a woken or finished auction leaves its delayed message behind, a no-op when it comes, and
 * the queues count as drained only once it has. On a loaded machine the crash's backlog on moto took 125-205 s
 * to drain; 300 s leaves room for both.
 */
const DRAIN_DEADLINE_MS = 300_000;
const POLL_MS = 2_000;

/**
 * Fast auctions (1 s steps, 3 % cuts, 60 s tail) so they finish in seconds; ticks may wait up to 10 minutes
 * in the local tick queue (at max speed the feed outruns the handlers on the emulator, and the default 60 s
 * staleness rule would drop the tail of the crash instead of replaying it). The work after the last tick (its
 * backlog drains within DRAIN_DEADLINE_MS) acts on a mark up to 20 minutes old: the feed stops with the file.
 */
const CONFIG: RiskConfigInput = {
  ...DEFAULT_RISK_CONFIG_INPUT,
  markets: DEFAULT_RISK_CONFIG_INPUT.markets.map((m) => ({
    ...m,
    maxTickAgeSeconds: 600,
    maxMarkAgeSeconds: 1200,
  })),
  auction: {
    ...DEFAULT_RISK_CONFIG_INPUT.auction,
    buf: '1.02',
    curve: { kind: 'stairstep', cut: '0.97', stepSeconds: 1 },
    tailSeconds: 60,
    maxResets: 1,
  },
};

const dir = mkdtempSync(path.join(tmpdir(), 'backstop-local-'));
const env = { ...process.env, BACKSTOP_STATE_DIR: dir, POWERTOOLS_LOG_LEVEL: 'ERROR' };
let stack: ChildProcess | undefined;
let stackExit: Promise<number | null> | undefined;
let stackOutput = '';
/** The runner's error lines, kept whole (stackOutput keeps only the tail of a chatty run). */
const runnerErrors: string[] = [];
/** Metric blobs that reached the terminal (local44-metrics-file: they go to metrics.log). */
let metricLinesOnStdout = 0;

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** One `backstop` command as its own process. */
const backstop = (...args: string[]): Promise<Run> =>
  new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });

async function status(): Promise<StatusReport> {
  const run = await backstop('status', '--json');
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as StatusReport;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A failure that says what was left: the counts, the dead letters and the runner's last errors. */
async function failure(what: string, report: StatusReport): Promise<Error> {
  const dlq = await backstop('dlq', 'list', '--max', '5');
  const errors = runnerErrors;
  return new Error(
    `${what}: liquidations ${JSON.stringify(report.liquidations)}, auctions ${JSON.stringify(report.auctions)}, ` +
      `queues ${JSON.stringify(report.queues)}, ` +
      `dead letters ${report.dlqMessages}\n${dlq.stdout}\nlast runner errors:\n${errors.slice(-5).join('\n')}`,
  );
}

beforeAll(async () => {
  const configFile = path.join(dir, 'risk.json');
  writeFileSync(configFile, JSON.stringify(CONFIG));
  stack = spawn(process.execPath, [BIN, 'local', 'up', '--port', '0', '--config', configFile], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  stack.stdout?.on('data', (chunk: Buffer) => {
    stackOutput += chunk.toString();
  });
  createInterface({ input: stack.stdout! }).on('line', (line) => {
    if (line.includes('"_aws"')) metricLinesOnStdout++;
  });
  stack.stderr?.on('data', (chunk: Buffer) => {
    stackOutput = (stackOutput + chunk.toString()).slice(-20_000);
  });
  createInterface({ input: stack.stderr! }).on('line', (line) => {
    if (line.startsWith('runner: ')) runnerErrors.push(line);
  });
  const child = stack;
  stackExit = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  // Ready once it has recorded itself in local.json (polled with a deadline).
  const deadline = Date.now() + 60_000;
  while (readLocalRecord(dir)?.pid !== child.pid) {
    if (child.exitCode !== null) throw new Error(`local up exited ${child.exitCode}: ${stackOutput}`);
    if (Date.now() > deadline) throw new Error(`local up not ready within 60 s: ${stackOutput}`);
    await pause(100);
  }
}, 90_000);

afterAll(async () => {
  // Only if the test failed before `local down`: stop what this file started.
  const record = readLocalRecord(dir);
  if (stack && stack.exitCode === null) {
    stack.kill('SIGTERM');
    await Promise.race([stackExit, pause(20_000)]);
    if (stack.exitCode === null) stack.kill('SIGKILL');
  }
  if (record && isAlive(record.motoPid)) process.kill(record.motoPid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('backstop local up: the March 2020 crash end to end on the emulator', () => {
  it('seeds, funds, replays at max speed, drains with every liquidation terminal, and stops cleanly', async () => {
    const seeded = await backstop('seed', 'positions', '--count', String(POSITIONS), '--price', FIRST_CLOSE);
    expect(seeded.code, seeded.stderr).toBe(0);
    expect(seeded.stdout).toContain(`${POSITIONS} written`);
    const providers = await backstop('seed', 'providers', '--count', '6', '--price', FIRST_CLOSE);
    expect(providers.code, providers.stderr).toBe(0);
    const funded = await backstop('fund', 'deposit', '--amount', '250000', '--key', 'e2e-seed');
    expect(funded.code, funded.stderr).toBe(0);

    const replay = await backstop('replay', CRASH, '--symbol', 'ETH-USD', '--speed', 'max', '--json');
    expect(replay.code, replay.stderr).toBe(0);
    const replayed = JSON.parse(replay.stdout) as { total: number; accepted: number; rejected: number };
    expect(replayed).toMatchObject({ total: 287, accepted: 287, rejected: 0 });

    // Drained: no work in any queue and no liquidation in flight, seen on two polls in a row. No message
    // anywhere while liquidations are not terminal means nothing will ever move them: stuck, fail at once.
    const deadline = Date.now() + DRAIN_DEADLINE_MS;
    let report = await status();
    let quiet = 0;
    let stuck = 0;
    for (;;) {
      const done = report.drained && report.liquidations.nonTerminal === 0 && report.liquidations.total > 0;
      quiet = done ? quiet + 1 : 0;
      stuck = report.drained && report.liquidations.nonTerminal > 0 ? stuck + 1 : 0;
      if (quiet >= 2) break;
      if (stuck >= 3) throw await failure('stuck: no message left', report);
      if (Date.now() > deadline)
        throw await failure(`not drained after ${DRAIN_DEADLINE_MS / 1000} s`, report);
      await pause(POLL_MS);
      report = await status();
    }

    const { liquidations, insuranceFund, positions } = report;
    expect(liquidations.nonTerminal).toBe(0);
    const terminal = TERMINAL_STATES.reduce((sum, state) => sum + liquidations.byState[state], 0);
    expect(terminal).toBe(liquidations.total);
    expect(liquidations.total).toBeGreaterThan(POSITIONS / 10); // the crash liquidates a good part of the book
    expect(positions.LIQUIDATING).toBe(0);
    expect(insuranceFund.reconciled).toBe(true);
    expect(insuranceFund.problems).toEqual([]);
    expect(parseQuote(insuranceFund.balance, 'balance', { allowNegative: true }) >= 0n).toBe(true);
    expect(parseQuote(insuranceFund.minBalance, 'min', { allowNegative: true }) >= 0n).toBe(true);
    expect(report.dlqMessages).toBe(0);
    expect(report.auctions.open).toBe(0);
    expect(report.markets['ETH-USD']?.mark).toBe('110.61'); // the file's last close was accepted

    // Stop: local down signals the stack, which stops its runner and the emulator, and exits 0.
    // Failed invocations while the crash ran: only a race on shared records (concurrent auctions on one
    // provider, settlements on the fund) that outlasted its in-process retries, retried by SQS and finished
    // above. Anything else (a timeout, a bug) fails here.
    for (const line of runnerErrors) expect(line).toMatch(/^runner: \w+: (Auction|Ledger)ContentionError: /);
    const errorsBeforeStop = runnerErrors.length;
    const record = readLocalRecord(dir)!;
    const down = await backstop('local', 'down');
    expect(down.code, down.stderr).toBe(0);
    expect(await stackExit).toBe(0);
    expect(stackOutput).toContain('backstop local stack stopped');
    // A clean stop: the runner stops before the emulator, so no invocation fails on the way down.
    expect(runnerErrors.slice(errorsBeforeStop)).toEqual([]);
    expect(existsSync(path.join(dir, 'local.json'))).toBe(false);
    // The terminal kept for the operator: every invocation's metric blob went to the state folder's metrics.log.
    expect(metricLinesOnStdout).toBe(0);
    const metricLines = readFileSync(path.join(dir, 'metrics.log'), 'utf8').trim().split('\n');
    expect(metricLines.length).toBeGreaterThan(POSITIONS);
    for (const line of metricLines) expect(JSON.parse(line)).toHaveProperty('_aws.CloudWatchMetrics');
    expect(isAlive(record.motoPid)).toBe(false);
    expect(await motoAnswers(record.endpoint)).toBe(false);
  }, 480_000);
});
