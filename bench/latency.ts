import type { SQSEvent } from 'aws-lambda';
import { DEFAULT_RISK_CONFIG_INPUT, type RiskConfigInput } from '../shared/domain/config.ts';
import { isTerminal } from '../shared/domain/model.ts';
import type { LambdaHandler } from '../shared/runner/index.ts';
import { BenchStage, ladder, markFor, SYMBOL } from './stage.ts';
import { percentile, significant } from './timing.ts';

/**
 * Part 4: latency through the local pipeline on the emulator, every function running at once as on AWS: bursts of
 * one tick crossing a group of positions, each burst on a fresh stage and measured until it has settled. Fresh,
 * small tables because moto copies every table a TransactWriteItems touches and serializes DynamoDB calls, so on
 * one long-lived stage each burst would be slower than the last (13 s for the first 50 and 80 s for the 13th in a
 * trial run): the measure would be the emulator's, not the pipeline's.
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
  readonly bursts: number;
  readonly positionsPerBurst: number;
  readonly states: Record<string, number>;
  /** Sum over the bursts of the time from the tick to the last settlement. */
  readonly burstSeconds: number;
  /** Invocations that failed and were retried (every liquidation still reached a terminal state). */
  readonly failedInvocations: number;
}

export interface LatencyOptions {
  readonly endpoint: string;
  readonly bursts: number;
  readonly positionsPerBurst: number;
  /** Stage name prefix (one stage per burst). */
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

/** One burst on a fresh stage: a tick crossing `positions` positions, measured until all of them settled. */
async function burst(options: LatencyOptions, index: number, positions: number) {
  const stage = await BenchStage.open(options.endpoint, `${options.stage}${index}`, CONFIG);
  try {
    await stage.admin({
      action: 'deposit',
      amount: '10000000',
      idempotencyKey: 'bench-seed',
      operator: 'bench',
    });
    await stage.admin({
      action: 'registerProvider',
      id: 'lp-bench',
      capital: '100000000',
      maxDiscount: '0.02',
      maxLot: '10000',
      symbols: [SYMBOL],
    });
    await stage.openMarket(200n * 100_000_000n);
    const book = ladder(`lat${index}`, positions, 190, 186);
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
    const runner = stage.runner(['marginCheck', 'liquidationConsumer', 'auction'], {
      liquidationConsumer: recordingConsumer,
    });
    runner.start();
    const putAt = Date.now();
    let sequence: number;
    try {
      sequence = await stage.putTick(markFor(book));
      await runner.runUntilIdle({ deadlineMs: RUN_DEADLINE_MS });
    } finally {
      await runner.stop();
    }

    const enqueue: number[] = [];
    const settle: number[] = [];
    const states: Record<string, number> = {};
    for (const l of await stage.adapters.liquidations.listByTick(`${SYMBOL}#${sequence}`)) {
      states[l.state] = (states[l.state] ?? 0) + 1;
      const done = l.history.find((e) => isTerminal(e.state));
      const sent = sentAt.get(l.id);
      if (!done || sent === undefined) throw new Error(`bench/latency-unfinished: ${l.id} is ${l.state}`);
      enqueue.push(sent - putAt);
      settle.push(done.atMs - putAt);
    }
    if (settle.length !== positions) {
      throw new Error(`bench/latency-missing: ${settle.length} of ${positions} liquidations started`);
    }
    return { enqueue, settle, states, failed: runner.errors.length };
  } finally {
    await stage.close();
  }
}

export async function benchLatency(options: LatencyOptions): Promise<LatencyResult> {
  const enqueue: number[] = [];
  const settle: number[] = [];
  const states: Record<string, number> = {};
  let failed = 0;
  let seconds = 0;
  for (let i = 0; i < options.bursts; i++) {
    const t = Date.now();
    const b = await burst(options, i, options.positionsPerBurst);
    enqueue.push(...b.enqueue);
    settle.push(...b.settle);
    for (const [state, n] of Object.entries(b.states)) states[state] = (states[state] ?? 0) + n;
    failed += b.failed;
    seconds += Math.max(...b.settle) / 1000;
    options.log?.(
      `latency: burst ${i + 1}/${options.bursts} of ${options.positionsPerBurst}: all settled ${Math.max(...b.settle)} ms after the tick (stage ${Date.now() - t} ms)`,
    );
  }
  return {
    enqueueP50: significant(percentile(enqueue, 50)),
    enqueueP99: significant(percentile(enqueue, 99)),
    settleP50: significant(percentile(settle, 50)),
    settleP99: significant(percentile(settle, 99)),
    liquidations: settle.length,
    bursts: options.bursts,
    positionsPerBurst: options.positionsPerBurst,
    states,
    burstSeconds: significant(seconds),
    failedInvocations: failed,
  };
}
