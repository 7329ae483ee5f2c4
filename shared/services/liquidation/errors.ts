/**
 * Errors a liquidation's steps throw and its callers tell apart (the delivery loop, the auction's step, the Lambda's
 * failures). A module of their own: every step throws them without importing the loop.
 */

export class LiquidationNotFoundError extends Error {
  override readonly name = 'LiquidationNotFoundError';
}

/** A liquidation that cannot progress now (for example ADL has no counterparty): retried, then DLQ + alarm. */
export class LiquidationStuckError extends Error {
  override readonly name = 'LiquidationStuckError';
}

/**
 * A slice under its market's lot that nothing took (subLotRemainder): its own message carries it to the dead-letter
 * queue, so an auction step that meets it hands it over to that message (auction.ts settleFinished).
 */
export class SubLotRemainderError extends LiquidationStuckError {}

/**
 * Another delivery holds the liquidation's order lease (a duplicate delivery, or the message of one that died
 * before its lease ran out): retried, when the holder has finished or its lease has run out.
 */
export class LiquidationBusyError extends Error {
  override readonly name = 'LiquidationBusyError';
  /** @param retryAfterMs until the holder's lease runs out */
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(message);
  }
}
