import { z } from 'zod';
import { TICK_INDEX_PREFIX } from '../adapters/shards.ts';
import type {
  AuctionQueueMessage,
  AuctionStepMessage,
  LiquidationMessage,
  RegistrationWakeMessage,
} from '../ports/index.ts';

/**
 * Queue message bodies. A message whose fields do not parse is poison and goes to the DLQ with its reason. Fields
 * this version does not know are dropped, not poison: during a deploy, functions of the next version send fields
 * their readers of this one have never seen (CloudFormation updates the functions one by one).
 */

export const liquidationMessageSchema = z.object({
  liquidationId: z
    .string()
    .min(3)
    .max(200)
    // The liquidations table's tick-index items: read as a liquidation, one fails every receive before its DLQ.
    .refine((id) => !id.startsWith(TICK_INDEX_PREFIX), `may not start with ${TICK_INDEX_PREFIX}`),
  lastResortWaits: z.number().int().min(1).max(1000).optional(),
  lastResortWaitsOutraced: z.number().int().min(1).max(1000).optional(),
  lastResortFillsSeen: z.number().int().min(0).optional(),
  /** The wait it carries on: a copy of one the record no longer names ends (LiquidationContext.lastResortWait). */
  lastResortWaitId: z.string().min(1).max(64).optional(),
  /** The wait the record named when it was sent: while it still does, this one takes the wait over. */
  lastResortWaitAfter: z.string().min(1).max(64).optional(),
  /** The venue hold's start as recorded on the liquidation: not trusted, read only on a record without one. */
  markDisputedSinceMs: z.number().int().min(0).optional(),
  adlJudgedAtE8: z
    .string()
    .regex(/^[1-9]\d{0,29}$/)
    .optional(),
  positionId: z.string().min(1).max(200).optional(),
  symbol: z.string().min(1).max(40).optional(),
  /** When it was due (sent plus its delay): how late it runs is measured from then (LiquidationLateness). */
  dueAtMs: z.number().int().min(0).optional(),
  /** Deliveries before this one that spent their transitions on conflicts (absent: none). */
  contendedDeliveries: z.number().int().min(1).max(1000).optional(),
});

export const auctionStepMessageSchema = z.object({
  auctionId: z.string().min(3).max(200),
  step: z.number().int().min(0),
  symbol: z.string().min(1).max(40).optional(),
  woken: z.boolean().optional(),
  dueAtMs: z.number().int().min(0).optional(),
  backAtMs: z.number().int().min(0).optional(),
  earlyWaits: z.number().int().min(1).max(1000).optional(),
  resent: z.boolean().optional(),
});

/** The rest of a registration's wake (services/registration-wake.ts), sent to the auction function. */
export const registrationWakeMessageSchema = z.object({
  registrationWake: z.object({
    symbol: z.string().min(1).max(40),
    epoch: z.number().int().min(1),
  }),
});

export class PoisonMessageError extends Error {
  override readonly name = 'PoisonMessageError';
}

function parseBody<T>(schema: z.ZodType<T>, body: string, what: string): T {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new PoisonMessageError(`${what}/not-json`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new PoisonMessageError(`${what}/malformed: ${issues}`);
  }
  return parsed.data;
}

export const parseLiquidationMessage = (body: string): LiquidationMessage =>
  parseBody(liquidationMessageSchema, body, 'liquidation-message');
export const parseAuctionStepMessage = (body: string): AuctionStepMessage =>
  parseBody(auctionStepMessageSchema, body, 'auction-step-message');

/**
 * A message of the auction queue: a registration's wake when it has `registrationWake`, else an auction's step
 * (each parsed by its own schema, so a malformed step says which of its fields is wrong).
 */
export function parseAuctionQueueMessage(body: string): AuctionQueueMessage {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new PoisonMessageError('auction-step-message/not-json');
  }
  if (typeof json === 'object' && json !== null && 'registrationWake' in json)
    return parseBody(registrationWakeMessageSchema, body, 'registration-wake-message');
  return parseAuctionStepMessage(body);
}

export const encodeMessage = (
  message: LiquidationMessage | AuctionStepMessage | RegistrationWakeMessage,
): string => JSON.stringify(message);

/** A liquidation message due `delaySeconds` after `nowMs`, encoded. */
export const dueLiquidationMessage = (
  message: Omit<LiquidationMessage, 'dueAtMs'>,
  nowMs: number,
  delaySeconds = 0,
): string => encodeMessage({ ...message, dueAtMs: nowMs + delaySeconds * 1000 });

/** The message of an auction's current step, due at `dueAtMs` (when it is sent plus its delay). */
export const stepMessageOf = (
  auction: { readonly id: string; readonly step: number; readonly symbol: string },
  dueAtMs: number,
): AuctionStepMessage => ({ auctionId: auction.id, step: auction.step, symbol: auction.symbol, dueAtMs });
