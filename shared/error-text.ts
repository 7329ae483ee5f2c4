/**
 * A thrown value as text, for a log's, a warning's or an operator's line. Imports nothing: the functions' bundles
 * import it (margin-check's warnings, the venue's key), and the CLI's commands say their errors with it too.
 */

/** `Name: message` of an Error (`TimeoutError: ...`); a thrown value that is no Error, as its string. */
export const errorText = (error: unknown): string =>
  error instanceof Error ? `${error.name}: ${error.message}` : String(error);

/** A text's first line: an AWS error's or the publisher's message may run on for lines where a line is wanted. */
export const firstLine = (text: string): string => text.split('\n')[0]!;
