import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DEFAULT_RISK_CONFIG_INPUT } from '../../shared/domain/config.ts';
import { motoAnswers, motoCommand } from '../../shared/local/moto.ts';
import { isAlive, readLocalRecord } from '../../shared/local/state.ts';
import { cli } from '../support/cli.ts';

/** `local up --detach` runs the stack in the background, `local down` stops it; a failed start says why. */

const dir = mkdtempSync(path.join(tmpdir(), 'backstop-detach-'));
const saved = { ...process.env };

beforeAll(() => {
  process.env.BACKSTOP_STATE_DIR = dir;
});
afterAll(async () => {
  const record = readLocalRecord(dir);
  if (record && isAlive(record.pid)) await cli('local', 'down');
  process.env = saved;
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('local up --detach and local down', () => {
  it('starts in the background, answers status, and stops with its emulator', async () => {
    // follow48-config-cdk-json: the risk configuration from a cdk.json and the cdk.context.json beside it.
    const riskConfig = {
      ...DEFAULT_RISK_CONFIG_INPUT,
      insurance: { ...DEFAULT_RISK_CONFIG_INPUT.insurance, floor: '100' },
    };
    mkdirSync(path.join(dir, 'cdk'));
    writeFileSync(path.join(dir, 'cdk', 'cdk.json'), JSON.stringify({ app: 'x', context: {} }));
    // more48c-local-up-context-shards: its shards too, with no --index-shards (the detached child is given both).
    writeFileSync(
      path.join(dir, 'cdk', 'cdk.context.json'),
      JSON.stringify({
        'backstop:riskConfig': JSON.stringify(riskConfig),
        'backstop:positionIndexShards': '{"ETH-USD":2}',
      }),
    );
    const up = await cli(
      'local',
      'up',
      '--detach',
      '--port',
      '0',
      '--stage',
      'bg',
      '--config',
      path.join(dir, 'cdk', 'cdk.json'),
    );
    expect(up.code, up.stderr).toBe(0);
    const record = readLocalRecord(dir)!;
    // review50-cli-detach-probe: the background child is given the python the parent found, and does not probe again.
    const childEnv = readFileSync(`/proc/${record.pid}/environ`, 'utf8').split('\0');
    expect(childEnv).toContain(`BACKSTOP_LOCAL_MOTO_PYTHON=${motoCommand().command}`);
    // What its functions run with, and what the operator commands judge by without --config.
    expect(record.riskConfig).toEqual(riskConfig);
    // The background stack runs with the shards asked, and the other commands write positions in them.
    expect(record.positionIndexShards).toEqual({ 'ETH-USD': 2 });
    expect(up.stdout).toContain(`endpoint ${record.endpoint}, stage bg (pid ${record.pid}`);
    expect(record.log).toBe(path.join(dir, 'local.log'));
    expect(isAlive(record.pid)).toBe(true);

    const status = await cli('status', '--json');
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout).target).toMatchObject({
      kind: 'local',
      stage: 'bg',
      endpoint: record.endpoint,
    });
    // local44-metrics-file: a tick makes margin-check publish its metrics, to metrics.log and not the stack's output.
    const tick = await cli('inject', 'tick', '--symbol', 'ETH-USD', '--price', '1520.5');
    expect([0, 3], tick.stderr).toContain(tick.code); // 3: the first print waits for a second, as it should
    const again = await cli('local', 'up', '--detach', '--port', '0');
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already running/);

    const down = await cli('local', 'down');
    expect(down).toMatchObject({
      code: 0,
      stdout: `backstop local stack stopped (pid ${record.pid}, ${record.endpoint})\n`,
    });
    expect(readLocalRecord(dir)).toBeUndefined();
    expect(isAlive(record.pid)).toBe(false);
    expect(await motoAnswers(record.endpoint)).toBe(false);
    const log = readFileSync(record.log!, 'utf8');
    expect(log).toContain('backstop local stack stopped');
    expect(log).toContain(`metrics (EMF, one line an invocation) go to ${path.join(dir, 'metrics.log')}`);
    expect(log).not.toContain('"_aws"');
    const metrics = readFileSync(path.join(dir, 'metrics.log'), 'utf8').trim().split('\n');
    expect(metrics.some((line) => JSON.parse(line).service === 'backstop-bg')).toBe(true);
  }, 120_000);

  // tidy50-local-deadline-clock: the wait for the background start and local down's for its stop were timed by the wall
  // clock (Date.now), which a step of the machine's (NTP, an operator's date) moves: forward, local up --detach killed a
  // start on its way up ("not ready within 120 s") and local down gave up on a stop; back, either waited an hour.
  it('waits for the background start and its stop by a clock no step of the machine moves', async () => {
    const realNow = Date.now.bind(Date);
    let stepped = 0;
    // The machine's clock an hour on at every read.
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() + 3_600_000 * ++stepped);
    try {
      const up = await cli('local', 'up', '--detach', '--port', '0', '--stage', 'stepped');
      // Before: exit 1, "local up was not ready within 120 s", the child killed.
      expect(up.code, up.stderr).toBe(0);
      const record = readLocalRecord(dir)!;
      const down = await cli('local', 'down');
      expect(down.code, down.stderr).toBe(0);
      expect(isAlive(record.pid)).toBe(false);
    } finally {
      vi.restoreAllMocks();
    }
  }, 120_000);

  it('reports why a background start failed, in one line', async () => {
    const server: Server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const up = await cli('local', 'up', '--detach', '--port', String(port));
      expect(up.code).toBe(1);
      expect(up.stderr).toBe(
        `backstop: local up failed in the background: port ${port} is in use: pass another --port (0: any)\n`,
      );
      expect(readLocalRecord(dir)).toBeUndefined();
    } finally {
      server.close();
    }
  }, 60_000);
});
