import { describe, expect, it } from 'vitest';
import { bodyText } from '../support/lost-answer.ts';

// review50-feed-lost-answer-body: test/support/lost-answer.ts recorded each body with String(), which on the SDK's
// JSON codec's byte body (a Uint8Array converting itself on string methods) warned that a later version throws.
describe("the lost answer's recorded request bodies", () => {
  /** Bytes whose string conversion throws, as the SDK says its byte body's will. */
  class StrictBytes extends Uint8Array {
    override toString(): string {
      throw new Error('a string method on a Uint8Array request body');
    }
  }

  it('decodes a byte body as UTF-8, without its string conversion', () => {
    const text = '{"TableName":"markets","Key":{"symbol":{"S":"ETH-USD"}},"x":"é"}';
    const bytes = new TextEncoder().encode(text);
    expect(bodyText(new StrictBytes(bytes))).toBe(text);
    expect(bodyText(text)).toBe(text);
    expect(bodyText(undefined)).toBe('');
    expect(() => bodyText({})).toThrow(TypeError);
  });
});
