import { readFileSync, statSync } from 'node:fs';
import { PriceFileError, type PricePoint, parsePriceFile } from './parse.ts';

/** Largest price file read (a year of 1-minute candles is about 40 MB in the kline layout). */
export const MAX_FILE_BYTES = 256 * 1024 * 1024;

/** Reads and parses a price file; every failure is a PriceFileError naming the file. */
export function readPriceFile(path: string): PricePoint[] {
  let text: string;
  try {
    const stat = statSync(path);
    if (!stat.isFile()) throw new PriceFileError('prices/unreadable', undefined, 'not a regular file', path);
    if (stat.size > MAX_FILE_BYTES) {
      throw new PriceFileError('prices/too-large', undefined, `larger than ${MAX_FILE_BYTES} bytes`, path);
    }
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (error instanceof PriceFileError) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new PriceFileError('prices/unreadable', undefined, `cannot read (${code})`, path);
  }
  try {
    return parsePriceFile(text);
  } catch (error) {
    if (error instanceof PriceFileError)
      throw new PriceFileError(error.reason, error.line, error.detail, path);
    throw error;
  }
}
