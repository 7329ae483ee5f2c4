import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../shared/local/moto.ts';
import { writeLocalRecord } from '../../shared/local/state.ts';
import { cli } from '../support/cli.ts';

/**
 * The operator commands' failures: bad arguments exit 2 and unusable targets exit 1, each with exactly one
 * line on stderr (never a stack trace) and nothing on stdout. All in process, no emulator needed.
 */

const dir = mkdtempSync(path.join(tmpdir(), 'backstop-cli-errors-'));
const stateDir = path.join(dir, 'state');
const badPrices = path.join(dir, 'bad.csv');
const goodPrices = path.join(dir, 'eth.csv');
writeFileSync(badPrices, 'time,close\n1584003720,130\n1584003780,oops\n');
writeFileSync(goodPrices, 'time,close\n1584003720,130\n1584003780,129\n');
const saved = { ...process.env };

beforeAll(() => {
  process.env.BACKSTOP_STATE_DIR = stateDir;
});
afterAll(() => {
  process.env = saved;
  rmSync(dir, { recursive: true, force: true });
});

function expectOneLine(run: { stdout: string; stderr: string }, pattern: RegExp): void {
  expect(run.stdout).toBe('');
  const lines = run.stderr.split('\n').filter(Boolean);
  expect(lines, run.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^backstop: /);
  expect(lines[0]).toMatch(pattern);
  expect(run.stderr).not.toMatch(/\n\s+at /);
}

describe('operator commands: bad arguments are one line and exit code 2', () => {
  const cases: [string, string[], RegExp][] = [
    ['local without a subcommand', ['local'], /local: missing subcommand \(up \| down\)/],
    ['an unknown subcommand', ['local', 'sideways'], /unknown subcommand "sideways"/],
    ['a port out of range', ['local', 'up', '--port', '65536'], /--port: 65536 is outside 0\.\.65535/],
    ['a port that is not a number', ['local', 'up', '--port', 'x'], /--port: "x" is not a whole number/],
    // A whole number too long to be one exactly was called "not a whole number".
    [
      'a sequence of 17 digits',
      ['feed', 'resume', '--symbol', 'ETH-USD', '--from-sequence', '99999999999999999'],
      /--from-sequence: 99999999999999999 is outside 0\.\.9007199254740991/,
    ],
    [
      'an injected sequence of 17 digits',
      ['inject', 'tick', '--symbol', 'ETH-USD', '--price', '1', '--sequence', '99999999999999999'],
      /--sequence: 99999999999999999 is outside 0\.\.9007199254740991/,
    ],
    ['an up option on down', ['local', 'down', '--port', '1'], /--port is an option of local up/],
    [
      'a venue key on down',
      ['local', 'down', '--venue-key', 'k.json'],
      /--venue-key is an option of local up/,
    ],
    [
      "a venue key's file that is not there",
      ['local', 'up', '--venue-key', path.join(dir, 'none.json')],
      /--venue-key: cannot read .*none\.json \(ENOENT\)/,
    ],
    [
      'a missing config file',
      ['local', 'up', '--config', path.join(dir, 'none.json')],
      /--config: cannot read/,
    ],
    ['a bad stage', ['local', 'up', '--stage', 'Prod!'], /--stage: "Prod!" is not a stage name/],
    // It failed in the background with the emulator's HTML error page as JSON (session 31's operator walk).
    [
      'a bad region for local up',
      ['local', 'up', '--region', 'mars'],
      /--region: "mars" is not an AWS region/,
    ],
    [
      'a stage no deploy makes, on AWS',
      ['status', '--target', 'aws', '--stage', 'prod-eu'],
      /--stage: "prod-eu" cannot be a deployed stage \(lower-case letters and digits, starting with a letter, at most 12/,
    ],
    ['index shards that are not JSON', ['local', 'up', '--index-shards', '{ETH'], /--index-shards: not JSON/],
    [
      'too many index shards',
      ['local', 'up', '--index-shards', '{"ETH-USD": 99}'],
      /--index-shards: position index shards: ETH-USD: /,
    ],
    ['an extra word', ['local', 'up', 'now'], /unexpected argument "now"/],
    ['seed without a subcommand', ['seed'], /seed: missing subcommand \(positions \| providers\)/],
    ['zero positions', ['seed', 'positions', '--count', '0'], /--count: 0 is outside 1\.\.1000000/],
    [
      'count with a file',
      ['seed', 'positions', '--file', 'x.csv', '--count', '5'],
      /--count: not with --file/,
    ],
    [
      'a book option with a file',
      ['seed', 'positions', '--file', 'x.csv', '--leverage-median', '2'],
      /--leverage-median: not with --file/,
    ],
    ['zero providers', ['seed', 'providers', '--count', '0'], /--count: 0 is outside 1\.\./],
    [
      'a market priced twice',
      ['seed', 'positions', '--markets', 'ETH-USD,BTC-USD', '--price', 'ETH-USD=1500,eth-usd=1600'],
      /--price: ETH-USD is given twice/,
    ],
    ['an interval without --watch', ['status', '--interval', '5'], /--interval: only with --watch/],
    // review48-stranded-seam: the minute a watch or a hold confirms stranded work in; a single read or replay has none.
    [
      'a stranded minute without --watch',
      ['status', '--stranded-after', '0'],
      /--stranded-after: only with --watch/,
    ],
    [
      'a stranded minute without --hold',
      ['replay', 'x.csv', '--stranded-after', '0'],
      /--stranded-after: only with --hold/,
    ],
    [
      'a tick at the epoch',
      ['inject', 'tick', '--symbol', 'ETH-USD', '--price', '1500', '--ts', '0'],
      /--ts: "0" is not after 1970/,
    ],
    ['a book option on providers', ['seed', 'providers', '--long-share', '0.5'], /option of seed positions/],
    [
      'fractional capital',
      ['seed', 'providers', '--capital', '10.5'],
      /--capital: whole units of the quote currency only/,
    ],
    // Refused per provider before, as "maxLot: must be greater than zero", an option nobody gave (exit 1).
    [
      'a deposit option on index-journal',
      ['fund', 'index-journal', '--amount', '5'],
      /fund index-journal: --amount is an option of fund deposit and withdraw/,
    ],
    // Said "0 USD ... less than 1 USD each" whatever the configuration's quote (walk42-capital-quote).
    [
      'no capital',
      ['seed', 'providers', '--capital', '0'],
      /--capital: 0 for 8 providers is less than 1 unit of the quote currency each$/,
    ],
    [
      'less than a unit a provider',
      ['seed', 'providers', '--capital', '3', '--count', '8'],
      /--capital: 3 for 8 providers is less than 1 unit of the quote currency each$/,
    ],
    [
      'capital on positions',
      ['seed', 'positions', '--capital', '5'],
      /--capital is an option of seed providers/,
    ],
    [
      'a leverage of zero',
      ['seed', 'positions', '--leverage-median', '0'],
      /--leverage-median: "0" is not a number/,
    ],
    ['a negative price', ['seed', 'positions', '--price', '-5'], /--price: must not be negative/],
    [
      'one price for two markets',
      ['seed', 'positions', '--markets', 'ETH-USD,BTC-USD', '--price', '5'],
      /one price per market/,
    ],
    [
      'a price for another market',
      ['seed', 'positions', '--price', 'SOL-USD=5'],
      /"SOL-USD" is not one of the markets/,
    ],
    ['a market twice', ['seed', 'positions', '--markets', 'ETH-USD,eth-usd'], /listed twice/],
    ['fund without an amount', ['fund', 'deposit'], /fund deposit: --amount is required/],
    ['a reindex without a symbol', ['positions', 'reindex'], /positions reindex: --symbol is required/],
    [
      'a feed without a symbol',
      ['feed', 'resume', '--from-sequence', '1'],
      /feed resume: --symbol is required/,
    ],
    [
      'a negative sequence',
      ['feed', 'resume', '--symbol', 'ETH-USD', '--from-sequence', '-1'],
      /--from-sequence/,
    ],
    ['a negative amount', ['fund', 'withdraw', '--amount', '-5'], /--amount: must not be negative/],
    ['a zero amount', ['fund', 'deposit', '--amount', '0'], /--amount: must be greater than zero/],
    ['exponent notation', ['fund', 'deposit', '--amount', '1e6'], /exponent notation/],
    // As fund prints it (walk43-cli-input): refused, and said how to write it.
    [
      'a grouped amount',
      ['fund', 'deposit', '--amount', '1,000.50'],
      /--amount: "1,000\.50" is not a plain decimal number: write it without the thousands separators, 1000\.50$/,
    ],
    // The amount as a word (walk43-cli-input): the command's help named, as for an unknown option.
    [
      'an amount without --amount',
      ['fund', 'deposit', '250000'],
      /fund: unexpected argument "250000" \(backstop fund --help lists its options\)$/,
    ],
    // onboard49-word-hint: simulate's parser (node's) says it in its own words, which had no hint.
    [
      'a count without --positions',
      ['demo', '50000'],
      /Unexpected argument '50000'\. This command does not take positional arguments \(backstop demo --help lists its options\)$/,
    ],
    ['a bad key', ['fund', 'deposit', '--amount', '1', '--key', 'a b'], /--key: letters, digits/],
    ['inject without tick', ['inject'], /inject: missing subcommand \(tick\)/],
    ['a tick without symbol', ['inject', 'tick', '--price', '1'], /--symbol is required/],
    ['a tick without price', ['inject', 'tick', '--symbol', 'ETH-USD'], /--price is required/],
    [
      'a non-numeric price',
      ['inject', 'tick', '--symbol', 'ETH-USD', '--price', 'abc'],
      /--price: "abc" is not a plain decimal/,
    ],
    [
      'a bad time',
      ['inject', 'tick', '--symbol', 'ETH-USD', '--price', '1', '--ts', 'yesterday'],
      /--ts: "yesterday"/,
    ],
    [
      'a negative sequence',
      ['inject', 'tick', '--symbol', 'ETH-USD', '--price', '1', '--sequence', '-1'],
      /--sequence: "-1"/,
    ],
    ['a missing value', ['inject', 'tick', '--symbol', '--price', '1'], /Option '--symbol' argument/],
    ['replay without a file', ['replay'], /replay: missing the price file/],
    ['a malformed price row', ['replay', badPrices], /prices\/bad-price: .*bad\.csv: line 3: /],
    ['an unreadable file', ['replay', path.join(dir, 'none.csv')], /prices\/unreadable/],
    [
      'an unknown speed',
      ['replay', goodPrices, '--speed', 'fast'],
      /--speed: "fast" is not "max" or a factor/,
    ],
    ['a zero speed', ['replay', goodPrices, '--speed', '0x'], /--speed: "0x"/],
    ['an extra status word', ['status', 'now'], /status: unexpected argument "now"/],
    ['a zero interval', ['status', '--watch', '--interval', '0'], /--interval: 0 is outside 1\.\.3600/],
    [
      'an unknown target',
      ['status', '--target', 'gcp'],
      /--target: "gcp" is not one of local, localstack, aws/,
    ],
    ['a bad region', ['status', '--region', 'mars'], /--region: "mars" is not an AWS region/],
    [
      'a bad endpoint',
      ['status', '--endpoint', 'ftp://x'],
      /--endpoint: "ftp:\/\/x" is not an http\(s\) URL/,
    ],
    [
      'an endpoint with aws',
      ['status', '--target', 'aws', '--endpoint', 'http://x'],
      /not with --target aws/,
    ],
    [
      'an unknown DLQ',
      ['dlq', 'list', '--queue', 'bogus'],
      /--queue: "bogus" is not one of liquidations, auctionSteps, tickDeadLetters/,
    ],
    ['an unknown DLQ action', ['dlq', 'purge'], /unknown subcommand "purge" \(list \| redrive \| discard\)/],
    [
      'an unknown option',
      ['status', '--verbose'],
      /Unknown option '--verbose' \(backstop status --help lists its options\)$/,
    ],
  ];
  it.each(cases)('%s', async (_name, argv, pattern) => {
    const run = await cli(...argv);
    expectOneLine(run, pattern);
    expect(run.code).toBe(2);
  });
});

describe('operator commands: an unusable target is one line and exit code 1', () => {
  it('no local stack running', async () => {
    const run = await cli('status');
    expectOneLine(run, /no local stack is running: start one with backstop local up/);
    expect(run.code).toBe(1);
  });

  it('an endpoint where nothing listens', async () => {
    const port = await freePort();
    const run = await cli('status', '--endpoint', `http://127.0.0.1:${port}`);
    expectOneLine(run, new RegExp(`cannot reach http://127.0.0.1:${port} \\(ECONNREFUSED\\)`));
    expect(run.code).toBe(1);
  });

  it('LocalStack not running', async () => {
    const port = await freePort();
    const run = await cli(
      'inject',
      'tick',
      '--symbol',
      'ETH-USD',
      '--price',
      '1',
      '--target',
      'localstack',
      '--endpoint',
      `http://127.0.0.1:${port}`,
    );
    expectOneLine(run, /cannot reach .*is LocalStack running/);
    expect(run.code).toBe(1);
  });

  it('a recorded stack whose process is gone', async () => {
    const gone = spawnSync(process.execPath, ['-e', '0']).pid!;
    const state = path.join(dir, 'stale');
    writeLocalRecord(state, {
      pid: gone,
      motoPid: gone,
      endpoint: 'http://127.0.0.1:1',
      stage: 'local',
      region: 'us-east-1',
      startedAt: new Date().toISOString(),
    });
    process.env.BACKSTOP_STATE_DIR = state;
    try {
      const run = await cli('status', '--json');
      expectOneLine(run, new RegExp(`\\(pid ${gone}\\) is not running`));
      expect(run.code).toBe(1);
    } finally {
      process.env.BACKSTOP_STATE_DIR = stateDir;
    }
  });

  it('a corrupt local.json', async () => {
    const state = path.join(dir, 'corrupt');
    mkdirSync(state, { recursive: true });
    writeFileSync(path.join(state, 'local.json'), '{"pid":');
    process.env.BACKSTOP_STATE_DIR = state;
    try {
      const run = await cli('dlq', 'list');
      expectOneLine(run, /local\/corrupt: .*local\.json is not JSON/);
      expect(run.code).toBe(1);
    } finally {
      process.env.BACKSTOP_STATE_DIR = stateDir;
    }
  });

  it('local up while one is running', async () => {
    const state = path.join(dir, 'running');
    writeLocalRecord(state, {
      pid: process.pid,
      motoPid: process.pid,
      endpoint: 'http://127.0.0.1:1',
      stage: 'local',
      region: 'us-east-1',
      startedAt: new Date().toISOString(),
    });
    process.env.BACKSTOP_STATE_DIR = state;
    try {
      const run = await cli('local', 'up', '--port', '0');
      expectOneLine(run, /a local stack is already running .*backstop local down/);
      expect(run.code).toBe(1);
    } finally {
      process.env.BACKSTOP_STATE_DIR = stateDir;
    }
  });

  it('AWS without credentials', async () => {
    const env = { ...process.env };
    for (const name of Object.keys(process.env)) if (name.startsWith('AWS_')) delete process.env[name];
    Object.assign(process.env, {
      AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'no-credentials'),
      AWS_CONFIG_FILE: path.join(dir, 'no-config'),
      AWS_EC2_METADATA_DISABLED: 'true',
    });
    try {
      const run = await cli('status', '--target', 'aws', '--region', 'eu-west-1');
      expectOneLine(run, /no AWS credentials/);
      expect(run.code).toBe(1);
    } finally {
      process.env = env;
    }
  });

  it('local down with nothing running is not an error', async () => {
    const run = await cli('local', 'down');
    expect(run).toEqual({ code: 0, stdout: 'no local stack is running\n', stderr: '' });
  });

  it('every operator command has --help on stdout', async () => {
    for (const command of ['local', 'seed', 'fund', 'inject', 'replay', 'status', 'dlq']) {
      const run = await cli(command, '--help');
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/^Usage: backstop /);
      expect(run.stderr).toBe('');
    }
  });
});
