import { expect, it } from 'vitest';
import { errorText, firstLine } from '../../shared/error-text.ts';

it('says an error by its name and message, and a thrown value that is no Error as it is', () => {
  const timeout = Object.assign(new Error('the call took over 5000 ms'), { name: 'TimeoutError' });
  expect(errorText(timeout)).toBe('TimeoutError: the call took over 5000 ms');
  expect(errorText(new Error('plain'))).toBe('Error: plain');
  expect(errorText('a string')).toBe('a string');
  expect(errorText(undefined)).toBe('undefined');
});

it('keeps a text to its first line', () => {
  expect(firstLine('first\nsecond\nthird')).toBe('first');
  expect(firstLine('one line')).toBe('one line');
  expect(firstLine('')).toBe('');
});
