import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { OptionSpec } from '../../cli/args.ts';
import { DLQ_OPTIONS } from '../../cli/ops/dlq.ts';
import { INJECT_OPTIONS, REPLAY_OPTIONS } from '../../cli/ops/events.ts';
import { LIQUIDATIONS_OPTIONS } from '../../cli/ops/liquidations.ts';
import { LOCAL_OPTIONS } from '../../cli/ops/local.ts';
import { PROVIDERS_OPTIONS } from '../../cli/ops/providers.ts';
import { FEED_OPTIONS, FUND_OPTIONS, POSITIONS_OPTIONS, SEED_OPTIONS } from '../../cli/ops/seed.ts';
import { STATUS_OPTIONS } from '../../cli/ops/status.ts';
import { SIMULATE_OPTIONS } from '../../cli/simulate.ts';
import { cli } from '../support/cli.ts';

/**
 * What a newcomer reads first, held to the code (session 49's onboarding pass): each command's --help documents the
 * options its parser takes, no more and no fewer, and the command lines README and docs show use only those.
 */

const repoRoot = path.resolve(import.meta.dirname, '../..');

const PARSERS: Readonly<Record<string, OptionSpec>> = {
  simulate: SIMULATE_OPTIONS,
  demo: SIMULATE_OPTIONS,
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

const DOCS = ['README.md', 'docs/DEPLOY.md', 'docs/FEED.md', 'docs/VENUE.md', 'docs/PERFORMANCE.md'];

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
      // An option's entry: a line that starts with it (`  --count N ...`, `  -h, --help ...`).
      const entries = new Set([...stdout.matchAll(/^ {2,}(?:-\w, )?--([a-z][\w-]*)/gm)].map((m) => m[1]!));
      expect([...entries].sort(), command).toEqual(Object.keys(spec).sort());
      const named = new Set([...stdout.matchAll(/(?<![\w-])--([a-z][\w-]*)/g)].map((m) => m[1]!));
      for (const name of named) expect(Object.keys(spec), `${command}: --${name}`).toContain(name);
    }
  });
});

describe('the command lines README and docs show', () => {
  it('use only options their command parses', () => {
    const commands = Object.keys(PARSERS).join('|');
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
      for (const line of lines) {
        const found = new RegExp(`backstop (${commands})\\b(.*)`).exec(line.replace(/#.*$/, ''));
        const demo = /npm run (?:-s )?demo -- (.*)/.exec(line);
        const [command, rest] = found ? [found[1]!, found[2]!] : demo ? ['demo', demo[1]!] : [];
        if (command === undefined) continue;
        // Up to the next command of a pipeline or list (`... && aws ...`, `; jq ...`).
        const own = rest!.split(/&&|\|\||;|\$\(|\)/)[0]!;
        for (const m of own.matchAll(/(?<![\w-])--([a-z][\w-]*)/g)) {
          expect(Object.keys(PARSERS[command]!), `${file}: ${line.trim()}`).toContain(m[1]!);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(50);
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
    const folders = [
      ...readdirSync(path.join(repoRoot, 'shared'), { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => `shared/${e.name}/`),
      ...['functions/', 'infra/', 'cli/', 'report/', 'bench/', 'test/'],
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
