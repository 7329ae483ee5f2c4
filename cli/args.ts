import { closeSync, fstatSync, openSync, readFileSync, type Stats, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseQuote, type QuoteE6 } from '../shared/domain/units.ts';

/** Command-line parsing helpers: every bad value is a UsageError with one line that says what is wrong. */

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;

/**
 * node:util parseArgs in strict mode; its errors (unknown option, missing value) become UsageErrors. A value
 * that looks like a negative number ("--seed -1") is kept as the value, so the check of that option can say
 * what is wrong with it.
 */
export function parseOptions<T extends OptionSpec>(argv: readonly string[], options: T) {
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    const next = argv[i + 1];
    const spec = token.startsWith('--') ? options[token.slice(2)] : undefined;
    if (spec?.type === 'string' && next !== undefined && /^-\d/.test(next)) {
      args.push(`${token}=${next}`);
      i++;
    } else args.push(token);
  }
  const parsed = (() => {
    try {
      return parseArgs({ args, options, strict: true, allowPositionals: false, tokens: true });
    } catch (error) {
      throw new UsageError((error as Error).message.split('\n')[0]!.replace(/\. To specify.*$/, ''));
    }
  })();
  // parseArgs keeps the last of an option given twice: `--amount 1 --amount 1000000` would move a million.
  const seen = new Set<string>();
  for (const token of parsed.tokens) {
    if (token.kind !== 'option') continue;
    if (seen.has(token.name)) throw new UsageError(`--${token.name}: given twice`);
    seen.add(token.name);
  }
  return { values: parsed.values, positionals: parsed.positionals };
}

/** A whole number in [min, max]; digits only (no 1e3, no 10.0, no hex). */
export function intOption(
  name: string,
  value: string | undefined,
  min: number,
  max: number,
): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value.trim())) {
    throw new UsageError(`--${name}: "${value}" is not a whole number`);
  }
  const n = Number(value.trim());
  if (n < min || n > max || !Number.isSafeInteger(n))
    throw new UsageError(`--${name}: ${value.trim()} is outside ${min}..${max}`);
  return n;
}

/** An amount of the quote currency ("250000", "1e6" refused), >= 0, exact. */
export function quoteOption(name: string, value: string | undefined): QuoteE6 | undefined {
  if (value === undefined) return undefined;
  try {
    return parseQuote(value, `--${name}`);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

export function choiceOption<C extends string>(
  name: string,
  value: string | undefined,
  choices: readonly C[],
): C | undefined {
  if (value === undefined) return undefined;
  if (!(choices as readonly string[]).includes(value)) {
    throw new UsageError(`--${name}: "${value}" is not one of ${choices.join(', ')}`);
  }
  return value as C;
}

/** Largest JSON file an option reads (a risk configuration, cdk.json): a few KB in practice. */
export const MAX_JSON_FILE_BYTES = 1024 * 1024;

/**
 * A file an option names, as text: a regular file of at most `maxBytes` (security48b-input-size), as price files are
 * (shared/prices/file.ts). Read whole into memory, so a FIFO, /dev/zero or a stray huge file would block or exhaust
 * it; refused before it is opened (a FIFO's open blocks until a writer comes), and again by the descriptor read.
 */
export function readInputFile(file: string, what: string, maxBytes: number): string {
  const refuse = (why: string) => new UsageError(`${what}: cannot read ${file} (${why})`);
  const check = (stat: Stats) => {
    if (!stat.isFile()) throw refuse('not a regular file');
    if (stat.size > maxBytes) throw refuse(`larger than ${maxBytes} bytes`);
  };
  let fd: number | undefined;
  try {
    check(statSync(file));
    fd = openSync(file, 'r');
    check(fstatSync(fd));
    return readFileSync(fd, 'utf8');
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw refuse((error as NodeJS.ErrnoException).code ?? 'error');
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** A file argument's JSON; `what` names the option in the error (`--config: cannot read ...`). */
export function readJsonFile(file: string, what: string): unknown {
  const text = readInputFile(file, what, MAX_JSON_FILE_BYTES);
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(`${what}: ${file} is not JSON`);
  }
}
