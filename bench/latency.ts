import type { SQSEvent } from 'aws-lambda';
import { DEFAULT_RISK_CONFIG_INPUT, type RiskConfigInput } from '../shared/domain/config.ts';
import { isTerminal } from '../shared/domain/model.ts';
import type { LambdaHandler } from '../shared/runner/index.ts';
import { BenchStage, ladder, markFor, SYMBOL } from './stage.ts';
import { percentile, significant } from './timing.ts';

/**
 * Part 4: latency through the local pipeline on the emulator, every function running at once as on AWS: ticks
 * that each cross a large group of positions are put on the bus one after the other (the next once margin-check
 * handled the previous), while the consumers settle what the earlier ticks started.
 *   enqueue = SQS SentTimestamp of the liquidation's message - the time the tick was put on the bus
 *   settle  = time of the liquidation's terminal state (its history) - the time the tick was put
 * Both clocks are this machine's (the emulator runs here), in milliseconds.
 */

export interface LatencyResult {
  readonly enqueueP50: number;
  readonly enqueueP99: number;
  readonly settleP50: number;
  readonly settleP99: number;
  readonly liquidations: number;
  readonly ticks: number;
  readonly states: Record<string, number>;
  /** From the first tick put to the last settlement. */
  readonly wallSeconds: number;
}

export interface LatencyOptions {
  readonly endpoint: string;
  readonly positions: number;
  readonly ticks: number;
  readonly stage: string;
  readonly log?: (line: string) => void;
}

/** Auction steps of 1 s (instead of 90 s) so a remainder the market cannot take settles within the run. */
const CONFIG: RiskConfigInput = {
  ...DEFAULT_RISK_CONFIG_INPUT,
  auction: {
    ...DEFAULT_RISK_CONFIG_INPUT.auction,
    curve: { kind: 'stairstep', cut: '0.99', stepSeconds: 1 },
  },
};

const RUN_DEADLINE_MS = 30 * 60_000;

export async function benchLatency(options: LatencyOptions): Promise<LatencyResult> {
  const stage = await BenchStage.open(options.endpoint, options.stage, CONFIG);
  try {
    await stage.admin({ action: 'deposit', amount: '10000000', idempotencyKey: 'bench-seed' });
    await stage.admin({
      action: 'registerProvider',
      id: 'lp-bench',
      capital: '100000000',
      maxDiscount: '0.02',
      maxLot: '10000',
      symbols: [SYMBOL],
    });
    await stage.putTick(200n * 100_000_000n);
    await stage.phase(['marginCheck']);
    const book = ladder('lat', options.positions, 190, 186);
    await stage.seed(book);

    // The consumer records when each liquidation's message was sent (first delivery).
    const sentAt = new Map<string, number>();
    const consumer = stage.handlers.liquidationConsumer as unknown as (
      e: SQSEvent,
      c: unknown,
    ) => Promise<unknown>;
    const recordingConsumer = (async (event: SQSEvent, context: unknown) => {
      for (const r of event.Records) {
        const id = (JSON.parse(r.body) as { liquidationId?: string }).liquidationId;
        if (id !== undefined && !sentAt.has(id)) sentAt.set(id, Number(r.attributes.SentTimestamp));
      }
      return consumer(event, context);
    }) as unknown as LambdaHandler;
    let ticksHandled = 0;
    const marginCheck = stage.handlers.marginCheck as unknown as (e: unknown, c: unknown) => Promise<unknown>;
    const countingMarginCheck = (async (event: unknown, context: unknown) => {
      try {
        return await marginCheck(event, context);
      } finally {
        ticksHandled += 1;
      }
    }) as unknown as LambdaHandler;

    const runner = stage.runner(['marginCheck', 'liquidationConsumer', 'auction'], {
      marginCheck: countingMarginCheck,
      liquidationConsumer: recordingConsumer,
    });
    const putAt = new Map<number, number>();
    const size = Math.ceil(book.length / options.ticks);
    const started = Date.now();
    runner.start();
    try {
      for (let i = 0; i < options.ticks; i++) {
        const group = book.slice(i * size, (i + 1) * size);
        if (group.length === 0) break;
        const before = ticksHandled;
        const t = Date.now();
        const sequence = await stage.putTick(markFor(group));
        putAt.set(sequence, t);
        // The feed's next price comes once this one is handled (ticks are handled one at a time anyway).
        while (ticksHandled === before) await new Promise((r) => setTimeout(r, 5));
        options.log?.(
          `latency: tick ${i + 1}/${options.ticks} handled ${Date.now() - t} ms after it was put`,
        );
      }
      await runner.runUntilIdle({ deadlineMs: RUN_DEADLINE_MS });
    } finally {
      await runner.stop();
    }
    if (runner.errors.length > 0) {
      throw new Error(`bench/latency-failed: ${runner.errors.map((e) => String(e.error)).join('; ')}`);
    }

    const enqueue: number[] = [];
    const settle: number[] = [];
    const states: Record<string, number> = {};
    let last = started;
    for (const [sequence, t] of putAt) {
      for (const l of await stage.adapters.liquidations.listByTick(`${SYMBOL}#${sequence}`)) {
        states[l.state] = (states[l.state] ?? 0) + 1;
        const done = l.history.find((e) => isTerminal(e.state));
        const sent = sentAt.get(l.id);
        if (!done || sent === undefined) throw new Error(`bench/latency-unfinished: ${l.id} is ${l.state}`);
        enqueue.push(sent - t);
        settle.push(done.atMs - t);
        last = Math.max(last, done.atMs);
      }
    }
    return {
      enqueueP50: significant(percentile(enqueue, 50)),
      enqueueP99: significant(percentile(enqueue, 99)),
      settleP50: significant(percentile(settle, 50)),
      settleP99: significant(percentile(settle, 99)),
      liquidations: settle.length,
      ticks: putAt.size,
      states,
      wallSeconds: significant((last - started) / 1000),
    };
  } finally {
    await stage.close();
  }
}
