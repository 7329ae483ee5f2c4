import { expect, it } from 'vitest';
import { counted } from '../../shared/domain/words.ts';

it('says a count with its noun, in the singular for one (dlq48-counted)', () => {
  expect(counted(1, 'message', 'messages')).toBe('1 message');
  expect(counted(0, 'message', 'messages')).toBe('0 messages');
  expect(counted(2, 'liquidation is', 'liquidations are')).toBe('2 liquidations are');
  expect(counted(12345, 'entry', 'entries')).toBe('12345 entries'); // not grouped: entriesWord's
});
