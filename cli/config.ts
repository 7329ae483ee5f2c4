/**
 * `backstop config digest`: a risk configuration's digest alone, at once, where `simulate --config` replays a crash
 * for seconds to print its start: what support matches a claim's `config` line against (review52-facts-config-digest-command).
 */
import type { Command } from './ops/common.ts';
import { noMorePositionals, parseCommand, subcommand } from './ops/common.ts';
import { CONFIG_FILE_HELP, readRiskConfig } from './risk-config.ts';
import { riskConfigJson, riskConfigLine } from './simulate.ts';

export const CONFIG_USAGE = `Usage: backstop config digest [--config FILE.json] [--json]

Prints the digest of a risk configuration, the whole 64 characters, and what it is of: a stack deployed with it
shows it as its RiskConfigDigest output, simulate --config prints its first 12, and a liquidation's claim records
them (the config line of liquidations show). Nothing is replayed. The digest is of the rules as this version of
Backstop reads them, its defaults filled in: a version that fills in other defaults gives the same file another
digest, so match a stack or a claim with the version that deployed it.

  --config FILE.json     the risk configuration (default: the built-in one, which a stack without backstop:riskConfig
                         runs):
${CONFIG_FILE_HELP}  --json                 one JSON object: file, read, beside, digest (as simulate --json's riskConfig)
  -h, --help             this help
`;

export const CONFIG_OPTIONS = {
  config: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const runConfig: Command = async (argv, io) => {
  const { positionals, values } = parseCommand(argv, CONFIG_OPTIONS);
  if (values.help) {
    io.stdout.write(CONFIG_USAGE);
    return 0;
  }
  subcommand('config', positionals, ['digest'] as const);
  noMorePositionals('config', positionals, 1);
  const source = readRiskConfig(values.config);
  if (values.json) {
    io.stdout.write(`${JSON.stringify(riskConfigJson(source))}\n`);
    return 0;
  }
  const of =
    riskConfigLine(source) ??
    'the built-in risk configuration (what a stack deployed without backstop:riskConfig runs)';
  io.stdout.write(`${source.digest}\n${of}\n`);
  return 0;
};
