import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { OptionSpec } from '../../cli/args.ts';
import { CONFIG_OPTIONS } from '../../cli/config.ts';
import { GENERAL_EXIT_CODES, OWN_EXIT_CODES } from '../../cli/exit-codes.ts';
import { type Command, type SubcommandOptions, subcommandTakes } from '../../cli/ops/common.ts';
import { DLQ_OPTIONS, DLQ_SUBCOMMANDS } from '../../cli/ops/dlq.ts';
import { INJECT_OPTIONS, REPLAY_OPTIONS } from '../../cli/ops/events.ts';
import { LIQUIDATIONS_OPTIONS, LIQUIDATIONS_SUBCOMMANDS } from '../../cli/ops/liquidations.ts';
import { LOCAL_OPTIONS, LOCAL_SUBCOMMANDS } from '../../cli/ops/local.ts';
import { PROVIDERS_OPTIONS, PROVIDERS_SUBCOMMANDS } from '../../cli/ops/providers.ts';
import {
  FEED_OPTIONS,
  FUND_OPTIONS,
  FUND_SUBCOMMANDS,
  POSITIONS_OPTIONS,
  POSITIONS_SUBCOMMANDS,
  SEED_OPTIONS,
  SEED_SUBCOMMANDS,
} from '../../cli/ops/seed.ts';
import { STATUS_OPTIONS } from '../../cli/ops/status.ts';
import { SIMULATE_OPTIONS } from '../../cli/simulate.ts';
import { cli } from '../support/cli.ts';

/**
 * What a newcomer reads first, held to the code (session 49's onboarding pass): each command's --help documents the
 * options its parser takes, no more and no fewer, and the command lines README and docs show use only those.
 */

const repoRoot = path.resolve(import.meta.dirname, '../..');

const holdsTypeScript = (dir: string): boolean =>
  readdirSync(dir, { withFileTypes: true }).some((e) =>
    e.isDirectory() ? holdsTypeScript(path.join(dir, e.name)) : e.name.endsWith('.ts'),
  );

const PARSERS: Readonly<Record<string, OptionSpec>> = {
  simulate: SIMULATE_OPTIONS,
  demo: SIMULATE_OPTIONS,
  config: CONFIG_OPTIONS,
  local: LOCAL_OPTIONS,
  seed: SEED_OPTIONS,
  fund: FUND_OPTIONS,
  feed: FEED_OPTIONS,
  positions: POSITIONS_OPTIONS,
  inject: INJECT_OPTIONS,
  replay: REPLAY_OPTIONS,
  status: STATUS_OPTIONS,
  dlq: DLQ_OPTIONS,
  liquidations: LIQUIDATIONS_OPTIONS,
  providers: PROVIDERS_OPTIONS,
};

/** Each command's options its subcommands do not all take, as the command refuses them (refuseOthersOptions). */
const SUBCOMMANDS: Readonly<Record<string, SubcommandOptions>> = {
  local: LOCAL_SUBCOMMANDS,
  seed: SEED_SUBCOMMANDS,
  fund: FUND_SUBCOMMANDS,
  positions: POSITIONS_SUBCOMMANDS,
  dlq: DLQ_SUBCOMMANDS,
  liquidations: LIQUIDATIONS_SUBCOMMANDS,
  providers: PROVIDERS_SUBCOMMANDS,
};

/**
 * The options `owner` takes: a command's (`dlq`: its parser's), or a subcommand's (`dlq redrive`: those of its
 * command's parser it does not refuse as another subcommand's: cli50-help-subcommands).
 */
function optionsOf(owner: string): string[] {
  const [command, sub] = owner.split(' ');
  const spec = PARSERS[command!]!;
  return sub === undefined ? Object.keys(spec) : subcommandTakes(spec, SUBCOMMANDS[command!]!, sub);
}

/** Records of the past: they quote command lines as they were then. */
const HISTORY = ['docs/RELIABILITY.md', 'docs/performance-history.md'];
/** README and every page of docs/ but the history: a new page is checked without being listed here. */
const DOCS = [
  'README.md',
  ...readdirSync(path.join(repoRoot, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`)
    .filter((file) => !HISTORY.includes(file)),
];

/** Where one command's own words end: a pipe, a list, a command substitution's bounds (review49-onboard-help-test). */
const COMMAND_END = /&&|\|\||;|\s\|\s|\$\(|\)/;

/**
 * The options a line names, each with the command that owns it: each `backstop <command>` (or `npm run demo --`)
 * owns the options up to the end of its own command (a pipe's `jq --raw-output` is jq's) or the next `backstop
 * <command>`; the rest of the line is `own`'s (a command's --help), or nobody's (a doc's command line). A command
 * followed by its subcommand (`backstop dlq redrive`, or `dlq list|redrive`: each) gives its options to that
 * subcommand (`dlq redrive`), not to the command whichever subcommand takes them (cli50-help-subcommands).
 */
function optionsByCommand(
  line: string,
  commands: readonly string[],
  own?: string,
): { command: string; option: string }[] {
  // A shell comment: a `#` that starts a word.
  const text = line.replace(/(^|\s)#.*$/, '');
  const starts = [
    ...text.matchAll(new RegExp(`\\bbackstop (${commands.join('|')})\\b|\\bnpm run (?:-s )?demo -- `, 'g')),
  ];
  const options = (part: string, command: string | undefined) =>
    command === undefined
      ? []
      : [...part.matchAll(/(?<![\w-])--([a-z][\w-]*)/g)].map((m) => ({ command, option: m[1]! }));
  return [
    ...options(text.slice(0, starts[0]?.index ?? text.length), own),
    ...starts.flatMap((start, i) => {
      const segment = text.slice(start.index + start[0].length, starts[i + 1]?.index ?? text.length);
      const end = COMMAND_END.exec(segment);
      const mine = end ? segment.slice(0, end.index) : segment;
      const after = end ? segment.slice(end.index) : '';
      const command = start[1] ?? 'demo';
      const subs = SUBCOMMANDS[command];
      const words = /^ ([a-z-]+(?:\|[a-z-]+)*)\b/.exec(mine)?.[1]?.split('|');
      const owners = subs && words?.every((w) => w in subs) ? words.map((w) => `${command} ${w}`) : [command];
      return [...owners.flatMap((owner) => options(mine, owner)), ...options(after, own)];
    }),
  ];
}

describe('--help against the parsers', () => {
  it('covers every command main runs', async () => {
    const unknown = await cli('no-such-command');
    const listed = /\(commands: ([^)]*)\)/.exec(unknown.stderr)![1]!.split(', ');
    expect(listed.sort()).toEqual(Object.keys(PARSERS).sort());
    const usage = (await cli('--help')).stdout;
    for (const command of listed) expect(usage, command).toMatch(new RegExp(`^ {2}${command} `, 'm'));
  });

  it('documents each option a command parses, and names no option it does not', async () => {
    for (const [command, spec] of Object.entries(PARSERS)) {
      const { code, stdout } = await cli(command, '--help');
      expect(code, command).toBe(0);
      // An option's entry: a line that starts with it at the entries' indent (`  --count N ...`, `  -h, --help ...`),
      // not a description's line that happens to start with one (review49-onboard-help-test).
      const entries = new Set([...stdout.matchAll(/^ {2}(?:-\w, )?--([a-z][\w-]*)/gm)].map((m) => m[1]!));
      expect([...entries].sort(), command).toEqual(Object.keys(spec).sort());
      // Every option it names is one it parses, but one of another command it names (`backstop local up --detach`).
      for (const line of stdout.split('\n'))
        for (const named of optionsByCommand(line, Object.keys(PARSERS), command))
          expect(optionsOf(named.command), `${command}: ${line.trim()}`).toContain(named.option);
    }
  });
});

/** Every .ts file under `dir`. */
const sources = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? sources(path.join(dir, e.name))
      : e.name.endsWith('.ts')
        ? [path.join(dir, e.name)]
        : [],
  );

// review50-cli-exit-codes: what a command returns is typed by cli/exit-codes.ts's table, so a code not in it, or another
// command's, does not compile (tsc is in npm test): these lines are its proof.
// @ts-expect-error: a code no command has
const _five: Command = async () => 5;
// @ts-expect-error: inject tick's and fund statement's own, not replay's
const _replayThree: Command<'replay'> = async () => 3;
const _replayFour: Command<'replay'> = async () => 4;
void [_five, _replayThree, _replayFour];

describe("backstop --help's exit codes", () => {
  // cli50-help-exit-codes: 130 (interrupted) was missing from the list while replay and local up exit with it, and
  // nothing held the list to the code. review50-cli-exit-codes: the list is cli/exit-codes.ts's table, which the
  // commands' types read; the scan of the code's returns that held it before missed fund statement's 3 (and any code
  // a named constant gave).
  it('are the table the commands are typed by, each command with its own said in its help', async () => {
    const usage = (await cli('--help')).stdout;
    const paragraph = /^Exit codes: ([\s\S]*?)\n\n/m.exec(usage)![1]!.replace(/\s+/g, ' ');
    // `0 done; 2 ...; 130 interrupted (Ctrl-C); inject tick (3, 4), replay (4) and fund statement (3) say ...`
    const general = [...paragraph.matchAll(/(?:^|; )(\d+) /g)].map((m) => Number(m[1]));
    expect(general.sort((a, b) => a - b)).toEqual([...GENERAL_EXIT_CODES]);
    const own = [...paragraph.matchAll(/(?:; |, | and )([a-z][a-z ]*?) \(([\d, ]+)\)/g)].map((m) => [
      m[1]!,
      m[2]!.split(', ').map(Number),
    ]);
    expect(Object.fromEntries(own)).toEqual(OWN_EXIT_CODES);
    // A command's own codes are said in its help (`inject tick --help`), with what each means.
    for (const [command, codes] of Object.entries(OWN_EXIT_CODES)) {
      const help = (await cli(...command.split(' '), '--help')).stdout.replace(/\s+/g, ' ');
      for (const code of codes)
        expect(help, `${command} ${code}`).toMatch(new RegExp(`(?:\\b[Ee]xit |; |, )${code}\\b`));
    }
    // Outside the types: process.exit's codes are general ones (a closed pipe's 0, a second Ctrl-C's 130).
    const exits = sources(path.join(repoRoot, 'cli')).flatMap((file) =>
      [...readFileSync(file, 'utf8').matchAll(/process\.exit\(([^)]*)\)/g)].map((m) => m[1]!.trim()),
    );
    expect(exits.sort()).toEqual(['0', '130']);
  });
});

describe("each subcommand's options", () => {
  // cli50-help-subcommands: the tables the help and docs are held to are the subcommands the commands have, and the
  // commands refuse by them: a table the code does not follow would hold the docs to nothing.
  it('are shared out among the subcommands each command has, and a subcommand refuses the others it does not take', async () => {
    for (const [command, subs] of Object.entries(SUBCOMMANDS)) {
      const missing = (await cli(command)).stderr;
      const listed = /missing subcommand \(([^)]*)\)/.exec(missing)?.[1]?.split(' | ');
      expect(listed?.sort(), command).toEqual(Object.keys(subs).sort());
      for (const sub of Object.keys(subs))
        for (const option of Object.keys(PARSERS[command]!).filter(
          (o) => !optionsOf(`${command} ${sub}`).includes(o),
        )) {
          const value = PARSERS[command]![option]!.type === 'string' ? ['x'] : [];
          const run = await cli(command, sub, `--${option}`, ...value);
          expect(run.code, `${command} ${sub} --${option}`).toBe(2);
          expect(run.stderr, `${command} ${sub} --${option}`).toContain(
            `backstop: ${command} ${sub}: --${option} is an option of ${command} `,
          );
        }
    }
  });
});

describe('the command lines README and docs show', () => {
  it('use only options their command parses', () => {
    let checked = 0;
    for (const file of DOCS) {
      const text = readFileSync(path.join(repoRoot, file), 'utf8');
      // A code block's line, or a span in backticks: one command line each.
      const parts = text.split(/^```/m);
      const lines = [
        ...parts.flatMap((part, i) => (i % 2 === 1 ? part.split('\n') : [])),
        ...parts
          .filter((_, i) => i % 2 === 0)
          .flatMap((prose) => [...prose.matchAll(/`([^`]+)`/g)].map((m) => m[1]!.replace(/\s+/g, ' '))),
      ];
      for (const line of lines)
        for (const { command, option } of optionsByCommand(line, Object.keys(PARSERS))) {
          expect(optionsOf(command), `${file}: ${line.trim()}`).toContain(option);
          checked++;
        }
    }
    expect(checked).toBeGreaterThan(50);
  });
});

describe('the command an option belongs to', () => {
  const commands = Object.keys(PARSERS);
  // review49-onboard-help-test: a pipe's options were the command's (jq's --raw-output refused for status), a second
  // command's on a line the first's, and a help's pointer to another command's option the help's own.
  it("gives each option to the command whose words it is in, never to a pipe's or a list's next command", () => {
    expect(optionsByCommand('npx backstop status --json | jq --raw-output .fund', commands)).toEqual([
      { command: 'status', option: 'json' },
    ]);
    expect(
      optionsByCommand('backstop local up --detach, then backstop seed positions --count 5', commands),
    ).toEqual([
      { command: 'local up', option: 'detach' },
      { command: 'seed positions', option: 'count' },
    ]);
    expect(
      optionsByCommand(
        'npx backstop local up --detach && aws sqs purge-queue --queue-url U; backstop dlq list',
        commands,
      ),
    ).toEqual([{ command: 'local up', option: 'detach' }]);
    expect(
      optionsByCommand('npx backstop status   # then backstop dlq list --queue liquidations', commands),
    ).toEqual([]);
    expect(optionsByCommand('npx backstop dlq list|redrive [--queue liquidations]', commands)).toEqual([
      { command: 'dlq list', option: 'queue' },
      { command: 'dlq redrive', option: 'queue' },
    ]);
    // cli50-help-subcommands: a subcommand's, not its command's whichever subcommand takes it.
    expect(optionsByCommand('backstop dlq redrive --message-id m1', commands)).toEqual([
      { command: 'dlq redrive', option: 'message-id' },
    ]);
    expect(optionsOf('dlq redrive')).not.toContain('message-id');
    expect(optionsOf('dlq discard')).toContain('message-id');
    expect(optionsByCommand('backstop dlq --queue liquidations', commands)).toEqual([
      { command: 'dlq', option: 'queue' },
    ]);
    expect(optionsByCommand('npm run -s demo -- --seed 3 --json', commands)).toEqual([
      { command: 'demo', option: 'seed' },
      { command: 'demo', option: 'json' },
    ]);
    // In a command's help, the words outside another command's are its own.
    expect(
      optionsByCommand(
        '  --target T   local (the emulator of backstop local up --port N), localstack',
        commands,
        'seed',
      ),
    ).toEqual([
      { command: 'seed', option: 'target' },
      { command: 'local up', option: 'port' },
    ]);
    expect(
      optionsByCommand(
        '       backstop fund statement [--from TIME | --from-sequence N] [--json]',
        commands,
        'fund',
      ),
    ).toEqual([
      // Past a spaced pipe, the help's own: its command's.
      { command: 'fund statement', option: 'from' },
      { command: 'fund', option: 'from-sequence' },
      { command: 'fund', option: 'json' },
    ]);
  });
});

describe("README's paths", () => {
  const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');

  it('names in its layout every folder of shared/ and each top folder of code, and each it names exists', () => {
    const layout = readme.slice(readme.indexOf('## How the parts fit'));
    const block = layout.split('```')[1]!;
    // A line's first column: a path, or two (`shared/sim/, cli/`).
    const named = block
      .split('\n')
      .map((line) => /^(\S+(?:, \S+)*)\s{2,}/.exec(line)?.[1])
      .filter((paths) => paths !== undefined)
      .flatMap((paths) => paths.split(', '));
    for (const p of named) expect(existsSync(path.join(repoRoot, p)), p).toBe(true);
    // Each folder of TypeScript at the top, found (a list here would miss the next one: review49-onboard-help-test),
    // but what .gitignore keeps out of the repository.
    const ignored = readFileSync(path.join(repoRoot, '.gitignore'), 'utf8')
      .split('\n')
      .map((line) => line.trim().replace(/\/$/, ''));
    const top = readdirSync(repoRoot, { withFileTypes: true })
      .filter((e) => e.isDirectory() && !e.name.startsWith('.') && !ignored.includes(e.name))
      .map((e) => e.name)
      .filter((name) => holdsTypeScript(path.join(repoRoot, name)));
    expect(top).toEqual(expect.arrayContaining(['functions', 'infra', 'cli', 'report', 'bench', 'test']));
    const folders = [
      ...readdirSync(path.join(repoRoot, 'shared'), { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => `shared/${e.name}/`),
      ...top.filter((name) => name !== 'shared').map((name) => `${name}/`),
    ];
    for (const folder of folders) expect(named, folder).toContain(folder);
  });

  it('names only files and folders of the repository that exist', () => {
    const paths = [
      ...readme.matchAll(
        /(?<![\w./-])((?:\.ci|shared|cli|docs|functions|infra|bench|report|test|scripts|examples|bin)\/[\w./-]*[\w/])/g,
      ),
    ].map((m) => m[1]!);
    expect(paths.length).toBeGreaterThan(20);
    for (const p of new Set(paths)) expect(existsSync(path.join(repoRoot, p)), p).toBe(true);
  });
});
