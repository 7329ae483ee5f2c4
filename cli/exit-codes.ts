/**
 * The CLI's exit codes, one table that the code's types and `backstop --help` both read (review50-cli-exit-codes): a
 * command returns `ExitCode<its name>`, so a code not in the table here does not compile, and `backstop --help` lists
 * each command's own codes from it (the help test wants each said, with what it means, in the command's --help).
 */

import { spokenList } from '../shared/domain/words.ts';

/** Every command's: 0 done, 1 a failure, 2 a bad argument or input, 130 interrupted (Ctrl-C). */
export const GENERAL_EXIT_CODES = [0, 1, 2, 130] as const;

/** The codes a command gives beyond the general ones (its --help says what each means). */
export const OWN_EXIT_CODES = {
  'inject tick': [3, 4],
  replay: [4],
  'fund statement': [3],
} as const;

export type OwnExitCommand = keyof typeof OWN_EXIT_CODES;

/** The codes `C` may exit with: the general ones and its own (none without `C`). */
export type ExitCode<C extends OwnExitCommand = never> =
  | (typeof GENERAL_EXIT_CODES)[number]
  | (typeof OWN_EXIT_CODES)[C][number];

/** Any command's code: what `main` returns. */
export type AnyExitCode = ExitCode<OwnExitCommand>;

/** `inject tick (3, 4), replay (4) and fund statement (3)`, for `backstop --help`. */
export function ownExitCodesText(): string {
  return spokenList(
    Object.entries(OWN_EXIT_CODES).map(([command, codes]) => `${command} (${codes.join(', ')})`),
  );
}
