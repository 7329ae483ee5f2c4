import { readFileSync } from 'node:fs';
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

/** A file argument's JSON; `what` names the option in the error (`--config: cannot read ...`). */
export function readJsonFile(file: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(
      `${what}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(`${what}: ${file} is not JSON`);
  }
}
