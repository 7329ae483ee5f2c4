import { AsyncLocalStorage } from 'node:async_hooks';
import type { Context } from 'aws-lambda';
import { type DeferralKind, recordingDeferrals } from '../lambda/deferral.ts';
import type { QueueTransport, ReceivedMessage } from '../ports/index.ts';
import {
  asyncEventExpired,
  asyncRetriesWithin,
  asyncRetryAfterSeconds,
  DEFAULT_TICK_MAX_EVENT_AGE_SECONDS,
  FUNCTIONS,
  type FunctionDef,
  type FunctionId,
  physicalName,
  type QueueId,
  receiveVisibilitySeconds,
} from '../topology.ts';
import {
  type AsyncFailureCondition,
  asyncFailureRecord,
  eventBridgeEventFromBody,
  failedMessageIds,
  type LambdaIdentity,
  lambdaContext,
  scheduledEvent,
  sqsEvent,
  sqsRecord,
} from './lambda-events.ts';

/**
 * Gives the project's handlers Lambda's semantics on any QueueTransport (SQS on moto, or embedded queues):
 * - tickRule: polls the tick queue (bodies are EventBridge events) and invokes the function once per event; a
 *   failed event comes back when Lambda would retry it (a minute after the first attempt, two after the second,
 *   within the event's maximum age); one Lambda would discard (its retries spent, or past its maximum age) is
 *   not invoked again but made visible at once, for the queue's redrive to dead-letter;
 * - queue: polls the topology queue, delivers batches of up to batchSize as SQSEvent, deletes the records
 *   the handler did not report in batchItemFailures (ReportBatchItemFailures on) and leaves the failures to
 *   reappear when the visibility their handler set, or the visibility timeout, ends; a thrown error fails the
 *   whole batch. The queue's own redrive
 *   moves a message to its DLQ after maxReceiveCount receives;
 * - schedule: invokes the function on a timer.
 * Not emulated: the batching window (a batch is what one poll returns) and log/trace plumbing.
 */

const invocation = new AsyncLocalStorage<FunctionId>();

/**
 * The function whose invocation the caller runs in (undefined outside one): lets instrumentation attribute an
 * AWS call to the function that made it, as IAM would (the local runner hosts every function in one process).
 */
export const currentFunction = (): FunctionId | undefined => invocation.getStore();

/** Runs `work` as if inside an invocation of `functionId` (a test driving a service directly, checked as it). */
export const asFunction = <T>(functionId: FunctionId, work: () => T): T => invocation.run(functionId, work);

/** Any Lambda handler: `(event: SQSEvent, context) => ...` and the like are all assignable to it. */
export type LambdaHandler = (event: never, context: Context) => unknown;
type Invocable = (event: unknown, context: Context) => unknown;

export interface InvocationError {
  readonly functionId: FunctionId;
  readonly error: unknown;
  /** Messages of the failed delivery (empty for schedules and direct invocations). */
  readonly messageIds: readonly string[];
}

export class RunnerConfigError extends Error {
  override readonly name = 'RunnerConfigError';
}

export class RunnerTimeoutError extends Error {
  override readonly name = 'RunnerTimeoutError';
}

export class FunctionTimeoutError extends Error {
  override readonly name = 'FunctionTimeoutError';
}

/**
 * The invocation ran out of time: the runner stopped waiting for it, or middy gave up first (5 ms before the
 * deadline, with its own TimeoutError). Either way it may still be running, so its retry must wait.
 */
const timedOut = (error: unknown): boolean =>
  error instanceof FunctionTimeoutError ||
  (error instanceof Error &&
    error.name === 'TimeoutError' &&
    (error.cause as { package?: unknown } | undefined)?.package === '@middy/core');

export interface LocalRunnerOptions {
  readonly handlers: Partial<Record<FunctionId, LambdaHandler>>;
  /**
   * Transports of the queues that trigger functions (topology 'queue' triggers), and of the tick rule's dead
   * letters: a tick Lambda gives up on is sent there as Lambda's on-failure record, with its last error, and
   * deleted from the tick queue. Without that transport the tick queue's redrive moves the bare event (no error).
   */
  readonly queues?: Partial<Record<QueueId, QueueTransport>>;
  /** The queue a bus rule delivers tick events to (topology 'tickRule' trigger). */
  readonly tickQueue?: QueueTransport;
  /** Visibility timeout set on each receive (default: the topology's, as the queues have on AWS). */
  readonly visibilityTimeoutSeconds?: number;
  /**
   * Failed records are made visible again after this many seconds (0: retry at once, handy locally), instead of
   * the backoff their handler set, except those it made wait (shared/lambda/deferral.ts: another delivery's
   * lease) and those of an invocation that timed out: Lambda stops it, this runner can only stop waiting for it,
   * so its records wait out the visibility timeout (a retry must not run beside the invocation it replaces).
   * Default: unset, a record comes back when its handler's backoff or the visibility timeout ends, as on Lambda.
   */
  readonly failureVisibilitySeconds?: number;
  /**
   * Concurrent invocations per queue function (default: the topology's maxConcurrency); at least 2, the least an SQS
   * event source's maximum concurrency can be on AWS (one invocation at a time would hide races AWS always has).
   */
  readonly maxConcurrency?: number;
  /**
   * Concurrent tick invocations in all (default 1: ticks are handled one at a time, in receive order). Above 1,
   * ticks run at once, as Lambda runs each asynchronous event on its own: in any order, a market's ticks racing
   * each other.
   */
  readonly tickConcurrency?: number;
  /** Schedule timers: false turns them off; a map overrides the period (ms) per function. */
  readonly schedules?: boolean | Partial<Record<FunctionId, number>>;
  /** Wait between polls of an empty queue, ms (default 50). */
  readonly idlePollMs?: number;
  /** Abandon an invocation after the function's timeout, as Lambda would (default true). */
  readonly enforceTimeouts?: boolean;
  /** Timeouts other than the topology's, by function (tests). */
  readonly timeoutSeconds?: Partial<Record<FunctionId, number>>;
  readonly stage?: string;
  readonly region?: string;
  readonly accountId?: string;
  /** Source ARNs for SQS records (default: a fake ARN from the queue name). */
  readonly queueArns?: Partial<Record<QueueId, string>>;
  /** Called for every failed invocation (they are also kept in `errors`). */
  readonly onError?: (error: InvocationError) => void;
  /**
   * The clock that stamps the tick queue's messages (`sentAtMs`), which a tick's age is measured on: the wall
   * clock (default) for SQS, an embedded queue's own clock for one.
   */
  readonly clock?: { nowMs(): number };
}

export interface RunUntilIdleOptions {
  /** Longest wait, in ms from the call, before RunnerTimeoutError. */
  readonly deadlineMs: number;
}

interface Poller {
  readonly fn: FunctionDef;
  readonly transport: QueueTransport;
  readonly batchSize: number;
  /** Invocations in flight at most. */
  readonly concurrency: number;
  /** One invocation per message (EventBridge targets), else one per receive (an SQS batch). */
  readonly perMessage: boolean;
  readonly deliver: (messages: readonly ReceivedMessage[]) => Promise<void>;
}

const DEFAULT_IDLE_POLL_MS = 50;
const ERRORS_KEPT = 1_000;

/** Ticks given up on (Lambda's on-failure destination) remembered until the redrive has surely taken them. */
const DISCARDED_KEPT = 10_000;

/** The invocations Lambda makes of an asynchronous tick event: the first and its retries within the event's age. */
export const TICK_ATTEMPTS = 1 + asyncRetriesWithin(DEFAULT_TICK_MAX_EVENT_AGE_SECONDS);

/** Keeps a set or map of message ids to the DISCARDED_KEPT most recent (insertion order: the oldest goes). */
const trim = (ids: Set<string> | Map<string, unknown>): void => {
  if (ids.size > DISCARDED_KEPT) ids.delete(ids.keys().next().value!);
};

/** Adds `id` to a bounded set of the most recent ids. */
const remember = (ids: Set<string>, id: string): void => {
  ids.add(id);
  trim(ids);
};

export class LocalRunner {
  /** Ticks Lambda would not invoke again (no retry left), by message id: later receives are not invoked. */
  readonly #discarded = new Set<string>();
  /** Ticks whose on-failure record was sent, by message id: one that comes back is deleted, not sent again. */
  readonly #recorded = new Set<string>();
  /** A tick's last invocation error, by message id, for its on-failure record. */
  readonly #tickErrors = new Map<string, unknown>();
  /** Failed invocations, most recent last (at most 1,000 kept). */
  readonly errors: InvocationError[] = [];
  /** Invocations per function, failed ones included. */
  readonly invocations: Partial<Record<FunctionId, number>> = {};

  private readonly pollers: Poller[] = [];
  private readonly identity: LambdaIdentity;
  private running = false;
  private loops: Promise<void>[] = [];
  private readonly active = new Set<Promise<void>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly sleepers = new Set<() => void>();
  /** Bumped on every delivery start and end, so idle detection can see work that came and went. */
  private activity = 0;

  constructor(private readonly options: LocalRunnerOptions) {
    this.identity = { region: options.region ?? 'us-east-1', accountId: options.accountId ?? '000000000000' };
    const { maxConcurrency } = options;
    if (maxConcurrency !== undefined && (!Number.isSafeInteger(maxConcurrency) || maxConcurrency < 2))
      throw new RunnerConfigError(
        `runner/bad-concurrency: maxConcurrency ${maxConcurrency}: at least 2, as an SQS event source's on AWS`,
      );
    for (const [id, handler] of Object.entries(options.handlers) as [FunctionId, LambdaHandler][]) {
      if (!handler) continue;
      const fn = FUNCTIONS.find((f) => f.id === id);
      if (!fn) throw new RunnerConfigError(`runner/unknown-function: ${id}`);
      const trigger = fn.trigger;
      if (trigger.kind === 'queue') {
        const transport = options.queues?.[trigger.queue];
        if (!transport)
          throw new RunnerConfigError(`runner/missing-queue: ${id} needs queue ${trigger.queue}`);
        this.pollers.push({
          fn,
          transport,
          // One receive returns at most 10 messages; larger Lambda batches need a batching window (not emulated).
          batchSize: Math.min(trigger.batchSize, 10),
          concurrency: Math.min(options.maxConcurrency ?? trigger.maxConcurrency, trigger.maxConcurrency),
          perMessage: false,
          deliver: (messages) => this.deliverBatch(fn, trigger.queue, transport, messages),
        });
      } else if (trigger.kind === 'tickRule') {
        const transport = options.tickQueue;
        if (!transport)
          throw new RunnerConfigError(`runner/missing-tick-queue: ${id} is triggered by the tick rule`);
        this.pollers.push({
          fn,
          transport,
          batchSize: 10,
          concurrency: Math.max(1, options.tickConcurrency ?? 1),
          perMessage: true,
          deliver: ([message]) => this.deliverTick(fn, transport, message!),
        });
      }
    }
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** Starts polling and the schedule timers. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.loops = this.pollers.map((p) => this.pollLoop(p));
    if (this.options.schedules !== false) this.startSchedules();
  }

  /** Stops polling and timers, then waits for the invocations in flight to finish. */
  async stop(): Promise<void> {
    this.running = false;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const wake of this.sleepers) wake();
    await Promise.all(this.loops);
    this.loops = [];
    await Promise.all([...this.active]);
  }

  /**
   * Starts the runner if needed and resolves once every polled queue is empty (visible, in flight and
   * delayed) and no invocation is running, twice in a row; throws RunnerTimeoutError at the deadline.
   * Failed messages waiting out their visibility timeout count as work, so this waits for their retries.
   */
  async runUntilIdle(options: RunUntilIdleOptions): Promise<void> {
    this.start();
    const deadline = Date.now() + options.deadlineMs;
    let quiet = 0;
    for (;;) {
      const activityBefore = this.activity;
      const activeBefore = this.active.size;
      const depths = await Promise.all(this.pollers.map((p) => p.transport.depth()));
      const empty = depths.every((d) => d.visible + d.inFlight + d.delayed === 0);
      const idle = empty && activeBefore === 0 && this.active.size === 0 && this.activity === activityBefore;
      quiet = idle ? quiet + 1 : 0;
      if (quiet >= 2) return;
      if (Date.now() > deadline) {
        const summary = this.pollers
          .map((p, i) => `${p.transport.name} ${JSON.stringify(depths[i])}`)
          .join('; ');
        throw new RunnerTimeoutError(
          `runner/not-idle after ${options.deadlineMs} ms: ${this.active.size} in flight; ${summary}`,
        );
      }
      await this.sleep(this.idlePollMs);
    }
  }

  /** Invokes a function directly (iamInvoke functions, or a schedule right now); rethrows its error. */
  async invoke(functionId: FunctionId, event: unknown): Promise<unknown> {
    const fn = this.functionDef(functionId);
    return this.track(this.call(fn, event));
  }

  /** Runs a schedule-triggered function once, now, with a ScheduledEvent. */
  triggerSchedule(functionId: FunctionId): Promise<unknown> {
    const fn = this.functionDef(functionId);
    return this.invoke(functionId, scheduledEvent(this.ruleArn(fn), this.identity, Date.now()));
  }

  private get idlePollMs(): number {
    return this.options.idlePollMs ?? DEFAULT_IDLE_POLL_MS;
  }

  private functionDef(functionId: FunctionId): FunctionDef {
    const fn = FUNCTIONS.find((f) => f.id === functionId);
    if (!fn) throw new RunnerConfigError(`runner/unknown-function: ${functionId}`);
    if (!this.options.handlers[functionId]) throw new RunnerConfigError(`runner/no-handler: ${functionId}`);
    return fn;
  }

  private functionName(fn: FunctionDef): string {
    return physicalName(this.options.stage ?? 'local', fn.id);
  }

  private ruleArn(fn: FunctionDef): string {
    return `arn:aws:events:${this.identity.region}:${this.identity.accountId}:rule/${this.functionName(fn)}-schedule`;
  }

  /** Keeps `work` in the active set until it settles (stop and runUntilIdle wait for it). */
  private track<T>(work: Promise<T>): Promise<T> {
    const settled = work.then(
      () => undefined,
      () => undefined,
    );
    this.active.add(settled);
    this.activity++;
    void settled.then(() => {
      this.active.delete(settled);
      this.activity++;
    });
    return work;
  }

  /** Waits `ms`, or less if the runner stops. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.sleepers.add(wake);
    });
  }

  private async pollLoop(p: Poller): Promise<void> {
    const mine = new Set<Promise<void>>();
    while (this.running) {
      const free = p.concurrency - mine.size;
      if (free <= 0) {
        await Promise.race(mine);
        continue;
      }
      let messages: readonly ReceivedMessage[];
      try {
        // Per-message invocations: receive no more than can start now (none waits, invisible, for a slot).
        const max = p.perMessage ? Math.min(p.batchSize, free) : p.batchSize;
        messages = await p.transport.receive(max, this.visibilityFor(p.fn));
      } catch (error) {
        this.record({ functionId: p.fn.id, error, messageIds: [] });
        await this.sleep(this.idlePollMs);
        continue;
      }
      if (messages.length === 0) {
        await this.sleep(this.idlePollMs);
        continue;
      }
      for (const batch of p.perMessage ? messages.map((m) => [m]) : [messages]) {
        const delivery = this.track(p.deliver(batch)).catch((error: unknown) => {
          this.record({ functionId: p.fn.id, error, messageIds: batch.map((m) => m.messageId) });
        });
        mine.add(delivery);
        void delivery.then(() => mine.delete(delivery));
      }
    }
    await Promise.all(mine);
  }

  private visibilityFor(fn: FunctionDef): number {
    return this.options.visibilityTimeoutSeconds ?? receiveVisibilitySeconds(fn);
  }

  /** One invocation with Lambda's timeout; errors propagate. `deferred`: receives the records it deferred. */
  private async call(
    fn: FunctionDef,
    event: unknown,
    deferred?: Map<string, DeferralKind>,
  ): Promise<unknown> {
    const handler = this.options.handlers[fn.id] as Invocable | undefined;
    if (!handler) throw new RunnerConfigError(`runner/no-handler: ${fn.id}`);
    this.invocations[fn.id] = (this.invocations[fn.id] ?? 0) + 1;
    const timeoutSeconds = this.options.timeoutSeconds?.[fn.id] ?? fn.timeoutSeconds;
    const timeoutMs = timeoutSeconds * 1000;
    const context = lambdaContext(this.functionName(fn), fn.memoryMb, timeoutMs, this.identity);
    const run = Promise.resolve().then(() =>
      invocation.run(fn.id, () => recordingDeferrals(deferred ?? new Map(), () => handler(event, context))),
    );
    if (this.options.enforceTimeouts === false) return run;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new FunctionTimeoutError(`runner/function-timeout: ${fn.id} after ${timeoutSeconds} s`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([run, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async deliverBatch(
    fn: FunctionDef,
    queue: QueueId,
    transport: QueueTransport,
    messages: readonly ReceivedMessage[],
  ): Promise<void> {
    const arn =
      this.options.queueArns?.[queue] ??
      `arn:aws:sqs:${this.identity.region}:${this.identity.accountId}:${transport.name}`;
    const now = Date.now();
    const event = sqsEvent(messages.map((m) => sqsRecord(m, arn, this.identity, now)));
    let failed: Set<string>;
    const deferred = new Map<string, DeferralKind>();
    try {
      failed = failedMessageIds(await this.call(fn, event, deferred), messages);
    } catch (error) {
      this.record({ functionId: fn.id, error, messageIds: messages.map((m) => m.messageId) });
      failed = new Set(messages.map((m) => m.messageId));
      if (timedOut(error)) for (const m of messages) deferred.set(m.receiptHandle, 'wait');
    }
    // As Lambda: a failed record keeps the visibility its handler set, unless fast retries replace a backoff.
    const keeps = (m: ReceivedMessage): boolean => {
      const kind = deferred.get(m.receiptHandle);
      return kind === 'wait' || (kind === 'backoff' && this.options.failureVisibilitySeconds === undefined);
    };
    await Promise.all(
      messages.map((m) =>
        failed.has(m.messageId) && keeps(m) ? undefined : this.settle(transport, m, !failed.has(m.messageId)),
      ),
    );
  }

  /** EventBridge invokes the target once per event: each message is its own invocation. */
  private async deliverTick(fn: FunctionDef, transport: QueueTransport, m: ReceivedMessage): Promise<void> {
    const expired = asyncEventExpired(this.tickAgeSeconds(m), DEFAULT_TICK_MAX_EVENT_AGE_SECONDS);
    // Every attempt Lambda makes was made (the last one timed out: its failure was never handled here).
    const spent = m.receiveCount > TICK_ATTEMPTS;
    if (this.#discarded.has(m.messageId) || expired || spent) {
      // Lambda sends it to the on-failure destination without invoking the function.
      const condition = expired && !spent ? 'EventAgeExceeded' : 'RetriesExhausted';
      if (await this.giveUpTick(fn, transport, m, condition, Math.min(m.receiveCount - 1, TICK_ATTEMPTS)))
        return;
      // Else the queue's redrive does, once its receives are spent. (A poll's wait first, so a queue without a
      // redrive is not spun on.)
      await this.sleep(this.idlePollMs);
      await this.releaseTick(fn, transport, m, 0);
      return;
    }
    let ok = true;
    try {
      await this.call(fn, eventBridgeEventFromBody(m.body, this.identity));
    } catch (error) {
      ok = false;
      this.record({ functionId: fn.id, error, messageIds: [m.messageId] });
      this.rememberTickError(m.messageId, error);
      // Still running here: its retry waits out the visibility timeout.
      if (timedOut(error)) return;
    }
    if (!ok && this.options.failureVisibilitySeconds === undefined) {
      // Lambda's retry, or none (its on-failure destination, else visible at once for the redrive), as the local
      // tick queue's maximum age allows.
      const retryIn = asyncRetryAfterSeconds(
        m.receiveCount,
        this.tickAgeSeconds(m),
        DEFAULT_TICK_MAX_EVENT_AGE_SECONDS,
      );
      if (retryIn === undefined) {
        if (await this.giveUpTick(fn, transport, m, 'RetriesExhausted', m.receiveCount)) return;
        this.discard(m.messageId);
      }
      await this.releaseTick(fn, transport, m, retryIn ?? 0);
      return;
    }
    // Fast retries: Lambda's retries are spent after as many invocations as it makes within the event's age.
    if (
      !ok &&
      m.receiveCount >= TICK_ATTEMPTS &&
      (await this.giveUpTick(fn, transport, m, 'RetriesExhausted', m.receiveCount))
    )
      return;
    if (ok) this.#tickErrors.delete(m.messageId);
    // Each event stands alone on AWS: one that cannot be acknowledged keeps no other from its invocation.
    try {
      await this.settle(transport, m, ok);
    } catch (error) {
      this.record({ functionId: fn.id, error, messageIds: [m.messageId] });
    }
  }

  private tickAgeSeconds(m: ReceivedMessage): number {
    return ((this.options.clock?.nowMs() ?? Date.now()) - m.sentAtMs) / 1000;
  }

  private rememberTickError(messageId: string, error: unknown): void {
    this.#tickErrors.delete(messageId);
    this.#tickErrors.set(messageId, error);
    trim(this.#tickErrors);
  }

  /**
   * Sends a tick Lambda gives up on to the on-failure destination as Lambda's record, then deletes it from the tick
   * queue. False when there is no destination or the send failed (the tick queue's redrive then takes the event).
   */
  private async giveUpTick(
    fn: FunctionDef,
    transport: QueueTransport,
    m: ReceivedMessage,
    condition: AsyncFailureCondition,
    invokeCount: number,
  ): Promise<boolean> {
    const destination =
      fn.trigger.kind === 'tickRule' ? this.options.queues?.[fn.trigger.deadLetters] : undefined;
    if (!destination) return false;
    // Its record was sent and only the delete failed: delete it now, not a second record.
    if (this.#recorded.has(m.messageId)) return this.deleteTick(fn, transport, m);
    let requestPayload: unknown;
    try {
      requestPayload = eventBridgeEventFromBody(m.body, this.identity);
    } catch {
      requestPayload = m.body;
    }
    const record = asyncFailureRecord({
      functionArn: `arn:aws:lambda:${this.identity.region}:${this.identity.accountId}:function:${this.functionName(fn)}:$LATEST`,
      condition,
      invokeCount,
      requestPayload,
      error: this.#tickErrors.get(m.messageId),
      atMs: this.options.clock?.nowMs() ?? Date.now(),
    });
    try {
      await destination.send(JSON.stringify(record));
    } catch (error) {
      this.record({ functionId: fn.id, error, messageIds: [m.messageId] });
      return false;
    }
    this.#tickErrors.delete(m.messageId);
    this.discard(m.messageId);
    remember(this.#recorded, m.messageId);
    return this.deleteTick(fn, transport, m);
  }

  /** Deletes a tick given up on; one that cannot be deleted comes back and is deleted then (its record sent). */
  private async deleteTick(fn: FunctionDef, transport: QueueTransport, m: ReceivedMessage): Promise<true> {
    try {
      await transport.delete(m.receiptHandle);
    } catch (error) {
      this.record({ functionId: fn.id, error, messageIds: [m.messageId] });
    }
    return true;
  }

  private discard(messageId: string): void {
    remember(this.#discarded, messageId);
  }

  /** Makes a tick visible again in `seconds`; one that cannot be released keeps no other from its invocation. */
  private async releaseTick(
    fn: FunctionDef,
    transport: QueueTransport,
    m: ReceivedMessage,
    seconds: number,
  ): Promise<void> {
    try {
      await transport.changeVisibility(m.receiptHandle, seconds);
    } catch (error) {
      this.record({ functionId: fn.id, error, messageIds: [m.messageId] });
    }
  }

  private async settle(transport: QueueTransport, m: ReceivedMessage, ok: boolean): Promise<void> {
    if (ok) await transport.delete(m.receiptHandle);
    else if (this.options.failureVisibilitySeconds !== undefined) {
      await transport.changeVisibility(m.receiptHandle, this.options.failureVisibilitySeconds);
    }
  }

  private startSchedules(): void {
    const overrides = typeof this.options.schedules === 'object' ? this.options.schedules : {};
    for (const fn of FUNCTIONS) {
      if (fn.trigger.kind !== 'schedule' || !this.options.handlers[fn.id]) continue;
      const periodMs = overrides[fn.id] ?? fn.trigger.everyMinutes * 60_000;
      const tick = () => {
        this.timers.delete(timer);
        if (!this.running) return;
        const event = scheduledEvent(this.ruleArn(fn), this.identity, Date.now());
        this.track(this.call(fn, event)).catch((error: unknown) =>
          this.record({ functionId: fn.id, error, messageIds: [] }),
        );
        timer = setTimeout(tick, periodMs);
        this.timers.add(timer);
      };
      let timer = setTimeout(tick, periodMs);
      this.timers.add(timer);
    }
  }

  private record(error: InvocationError): void {
    this.errors.push(error);
    if (this.errors.length > ERRORS_KEPT) this.errors.shift();
    this.options.onError?.(error);
  }
}

export const createLocalRunner = (options: LocalRunnerOptions): LocalRunner => new LocalRunner(options);
