import {
  type Clock,
  MAX_MESSAGE_BYTES,
  MAX_RECEIVE_MESSAGES,
  type QueueTransport,
  type ReceivedMessage,
} from '../../ports/index.ts';
import { TimerHeap } from './heap.ts';
import { fire, type HookRef } from './internal.ts';

/** Bad queue input or an unknown receipt handle: reason like 'queue/bad-delay'. */
export class QueueError extends Error {
  override readonly name = 'QueueError';
}

/** An (injected) send failure: the entries `unsent` (indices into the call's bodies) were not enqueued. */
export class QueueSendError extends Error {
  override readonly name = 'QueueSendError';
  constructor(
    message: string,
    readonly unsent: readonly number[] = [0],
  ) {
    super(message);
  }
}

/** Faults to inject; counters are consumed one entry at a time, predicates are asked for every entry. */
export interface QueueFaults {
  /** The next N entries fail to send (send throws; sendBatch sends the others, then throws). */
  failSends?: number;
  failWhen?: (body: string) => boolean;
  /** The next N entries are stored twice: two deliveries of one messageId, as SQS standard queues may do. */
  duplicateSends?: number;
  duplicateWhen?: (body: string) => boolean;
}

export interface EmbeddedQueueOptions {
  readonly name: string;
  readonly clock: Clock;
  readonly hook?: HookRef;
  /** Prefix of the crash points (default: the name): `${label}.send`, `.sendBatch`, `.receive`, ... */
  readonly hookLabel?: string;
  /** After maxReceiveCount receives, the next receive moves the message here instead of delivering it. */
  readonly deadLetter?: { readonly queue: EmbeddedQueue; readonly maxReceiveCount: number };
  /** Most messages per sendBatch entry group and per receive (SQS: 10); a receive asking for more is refused. */
  readonly maxBatch?: number;
}

type MessageState = 'delayed' | 'visible' | 'inFlight' | 'deleted' | 'deadLettered';

interface Message {
  readonly messageId: string;
  readonly body: string;
  readonly sentAtMs: number;
  receiveCount: number;
  state: MessageState;
  /** Bumped on every move: timers and queue slots carrying an older token are stale and skipped. */
  token: number;
  /** Latest receipt handle: only it may change the visibility. */
  handle?: string;
  /** Every handle issued for it while live (forgotten once it is deleted or dead-lettered). */
  handles?: string[];
}

interface Slot {
  readonly message: Message;
  readonly token: number;
}

const MAX_DELAY_SECONDS = 900;
const MAX_VISIBILITY_SECONDS = 43_200;

/**
 * SQS standard-queue semantics in process, on the Clock port (simulated time works):
 * - send: visible after its delay (0-900 s); at-least-once, roughly in order of becoming visible.
 * - send, sendBatch: a body over MAX_MESSAGE_BYTES (UTF-8) is refused, and nothing of the call is sent.
 * - receive(n, vt): up to n (1..maxBatch) visible messages, each invisible for vt seconds and back unless deleted;
 *   receiveCount counts every receive. A message already received maxReceiveCount times moves to the
 *   dead-letter queue (keeping its id, body, sentAtMs and receiveCount) on the next receive.
 * - delete: any handle ever issued for the message deletes it; a deleted message's handle is a no-op;
 *   an unknown handle throws 'queue/receipt-handle-invalid'.
 * - changeVisibility: only with the latest handle of an in-flight message ('queue/message-not-inflight').
 * Crash points fire after each side effect; sendBatch fires once per group of maxBatch entries.
 */
export class EmbeddedQueue implements QueueTransport {
  readonly name: string;
  /** Mutable fault plan: tests set counters or predicates at any time. */
  readonly faults: QueueFaults = {};
  readonly #clock: Clock;
  readonly #hook: HookRef;
  readonly #label: string;
  readonly #deadLetter: EmbeddedQueueOptions['deadLetter'];
  readonly #maxBatch: number;
  readonly #timers = new TimerHeap<Slot>();
  #visible: Slot[] = [];
  #head = 0;
  /** Handles of live messages. A handle this queue issued that is not here belongs to a message gone for good. */
  readonly #handles = new Map<string, Message>();
  /** Messages neither deleted nor moved to the dead-letter queue, in send order. */
  readonly #live = new Set<Message>();
  readonly #counts = { visible: 0, inFlight: 0, delayed: 0 };
  #messageSeq = 0;
  #handleSeq = 0;
  #timerSeq = 0;

  constructor(options: EmbeddedQueueOptions) {
    if (!options.name) throw new QueueError('queue/bad-name: a queue needs a name');
    this.name = options.name;
    this.#clock = options.clock;
    this.#hook = options.hook ?? {};
    this.#label = options.hookLabel ?? options.name;
    this.#deadLetter = options.deadLetter;
    this.#maxBatch = options.maxBatch ?? MAX_RECEIVE_MESSAGES;
    const max = this.#deadLetter?.maxReceiveCount;
    if (max !== undefined && (!Number.isSafeInteger(max) || max < 1)) {
      throw new QueueError(`queue/bad-max-receive-count: ${max}`);
    }
  }

  async send(body: string, delaySeconds = 0): Promise<void> {
    checkBody(body);
    checkSeconds(delaySeconds, MAX_DELAY_SECONDS, 'queue/bad-delay');
    if (this.#shouldFail(body)) throw new QueueSendError(`queue/send-failed: ${this.name}: injected failure`);
    this.#enqueue(body, delaySeconds);
    fire(this.#hook, `${this.#label}.send`);
  }

  async sendBatch(bodies: readonly string[]): Promise<void> {
    for (const body of bodies) checkBody(body);
    const failed: number[] = [];
    for (let start = 0; start < bodies.length; start += this.#maxBatch) {
      let sent = 0;
      bodies.slice(start, start + this.#maxBatch).forEach((body, i) => {
        if (this.#shouldFail(body)) failed.push(start + i);
        else {
          this.#enqueue(body, 0);
          sent += 1;
        }
      });
      if (sent > 0) fire(this.#hook, `${this.#label}.sendBatch`);
    }
    if (failed.length > 0) {
      throw new QueueSendError(
        `queue/send-failed: ${this.name}: ${failed.length} of ${bodies.length} entries not sent`,
        failed,
      );
    }
  }

  async receive(maxMessages: number, visibilityTimeoutSeconds: number): Promise<readonly ReceivedMessage[]> {
    // Refused beyond maxBatch, as SQS (and its adapter) refuse more than 10 (found by the adapter parity review,
    // session 27: this queue gave 10 where SQS throws).
    if (!Number.isSafeInteger(maxMessages) || maxMessages < 1 || maxMessages > this.#maxBatch) {
      throw new QueueError(`queue/bad-max-messages: ${maxMessages} (1-${this.#maxBatch})`);
    }
    checkSeconds(visibilityTimeoutSeconds, MAX_VISIBILITY_SECONDS, 'queue/bad-visibility-timeout');
    const now = this.#clock.nowMs();
    this.#promote(now);
    const received: ReceivedMessage[] = [];
    let moved = false;
    while (received.length < maxMessages && this.#head < this.#visible.length) {
      const slot = this.#visible[this.#head]!;
      this.#head += 1;
      const m = slot.message;
      if (m.token !== slot.token || m.state !== 'visible') continue;
      this.#counts.visible -= 1;
      const dlq = this.#deadLetter;
      if (dlq && m.receiveCount >= dlq.maxReceiveCount) {
        m.state = 'deadLettered';
        m.token += 1;
        this.#live.delete(m);
        this.#forgetHandles(m);
        dlq.queue.#acceptDeadLetter(m);
        moved = true;
        continue;
      }
      m.receiveCount += 1;
      m.handle = `${this.name}:${++this.#handleSeq}`;
      this.#handles.set(m.handle, m);
      if (m.handles) m.handles.push(m.handle);
      else m.handles = [m.handle];
      this.#schedule(m, 'inFlight', now + visibilityTimeoutSeconds * 1000);
      received.push({
        messageId: m.messageId,
        body: m.body,
        receiptHandle: m.handle,
        receiveCount: m.receiveCount,
        sentAtMs: m.sentAtMs,
      });
    }
    this.#compact();
    if (received.length > 0 || moved) fire(this.#hook, `${this.#label}.receive`);
    return received;
  }

  async delete(receiptHandle: string): Promise<void> {
    const m = this.#handles.get(receiptHandle);
    if (!m) {
      if (this.#issued(receiptHandle)) return; // its message is already deleted or dead-lettered
      throw new QueueError(`queue/receipt-handle-invalid: ${this.name}: ${receiptHandle}`);
    }
    this.#counts[m.state as 'visible' | 'inFlight' | 'delayed'] -= 1;
    m.state = 'deleted';
    m.token += 1;
    this.#live.delete(m);
    this.#forgetHandles(m);
    fire(this.#hook, `${this.#label}.delete`);
  }

  async changeVisibility(receiptHandle: string, visibilityTimeoutSeconds: number): Promise<void> {
    checkSeconds(visibilityTimeoutSeconds, MAX_VISIBILITY_SECONDS, 'queue/bad-visibility-timeout');
    const m = this.#handles.get(receiptHandle);
    if (!m) {
      if (this.#issued(receiptHandle)) {
        throw new QueueError(`queue/message-not-inflight: ${this.name}: deleted (${receiptHandle})`);
      }
      throw new QueueError(`queue/receipt-handle-invalid: ${this.name}: ${receiptHandle}`);
    }
    if (m.state !== 'inFlight' || m.handle !== receiptHandle) {
      throw new QueueError(`queue/message-not-inflight: ${this.name}: ${m.messageId}`);
    }
    this.#counts.inFlight -= 1;
    this.#schedule(m, 'inFlight', this.#clock.nowMs() + visibilityTimeoutSeconds * 1000);
    fire(this.#hook, `${this.#label}.changeVisibility`);
  }

  async depth(): Promise<{ readonly visible: number; readonly inFlight: number; readonly delayed: number }> {
    this.#promote(this.#clock.nowMs());
    return { ...this.#counts };
  }

  /** Messages not yet deleted nor moved, in send order (inspection in tests and reports). */
  pending(): { messageId: string; body: string; receiveCount: number; state: MessageState }[] {
    return [...this.#live].map(({ messageId, body, receiveCount, state }) => ({
      messageId,
      body,
      receiveCount,
      state,
    }));
  }

  #enqueue(body: string, delaySeconds: number): void {
    const messageId = `${this.name}-${++this.#messageSeq}`;
    const copies = this.#shouldDuplicate(body) ? 2 : 1;
    const now = this.#clock.nowMs();
    for (let i = 0; i < copies; i += 1) {
      this.#add(
        { messageId, body, sentAtMs: now, receiveCount: 0, state: 'delayed', token: 0 },
        delaySeconds,
      );
    }
  }

  #add(m: Message, delaySeconds: number): void {
    this.#live.add(m);
    if (delaySeconds > 0) this.#schedule(m, 'delayed', this.#clock.nowMs() + delaySeconds * 1000);
    else this.#makeVisible(m);
  }

  /** A handle this queue issued (handles are `${name}:${sequence}`), whether or not its message is still live. */
  #issued(receiptHandle: string): boolean {
    const prefix = `${this.name}:`;
    if (!receiptHandle.startsWith(prefix)) return false;
    const seq = receiptHandle.slice(prefix.length);
    return /^[1-9]\d*$/.test(seq) && Number(seq) <= this.#handleSeq;
  }

  /** A message gone for good keeps no handle alive: the map holds live messages only. */
  #forgetHandles(m: Message): void {
    for (const h of m.handles ?? []) this.#handles.delete(h);
    // Assigned, not deleted: a delete turns the message into a slow dictionary-mode object.
    m.handles = undefined;
  }

  #acceptDeadLetter(from: Message): void {
    this.#add(
      {
        messageId: from.messageId,
        body: from.body,
        sentAtMs: from.sentAtMs,
        receiveCount: from.receiveCount,
        state: 'delayed',
        token: 0,
      },
      0,
    );
  }

  #schedule(m: Message, state: 'delayed' | 'inFlight', at: number): void {
    m.state = state;
    m.token += 1;
    this.#counts[state] += 1;
    this.#timers.push({ at, seq: ++this.#timerSeq, value: { message: m, token: m.token } });
  }

  #makeVisible(m: Message): void {
    m.state = 'visible';
    m.token += 1;
    this.#counts.visible += 1;
    this.#visible.push({ message: m, token: m.token });
  }

  /** Moves every timer that is due into the visible line, in due order. */
  #promote(now: number): void {
    for (let t = this.#timers.peek(); t && t.at <= now; t = this.#timers.peek()) {
      this.#timers.pop();
      const m = t.value.message;
      if (m.token !== t.value.token || (m.state !== 'delayed' && m.state !== 'inFlight')) continue;
      this.#counts[m.state] -= 1;
      this.#makeVisible(m);
    }
  }

  #compact(): void {
    if (this.#head > 1024 && this.#head * 2 > this.#visible.length) {
      this.#visible = this.#visible.slice(this.#head);
      this.#head = 0;
    }
  }

  #shouldFail(body: string): boolean {
    const f = this.faults;
    if (f.failSends && f.failSends > 0) {
      f.failSends -= 1;
      return true;
    }
    return f.failWhen?.(body) ?? false;
  }

  #shouldDuplicate(body: string): boolean {
    const f = this.faults;
    if (f.duplicateSends && f.duplicateSends > 0) {
      f.duplicateSends -= 1;
      return true;
    }
    return f.duplicateWhen?.(body) ?? false;
  }
}

function checkBody(body: string): void {
  if (typeof body !== 'string' || body.length === 0) {
    throw new QueueError('queue/bad-body: a message body is a non-empty string');
  }
  // A UTF-16 code unit is 1 to 3 UTF-8 bytes (a surrogate pair 4, for two units): only a body whose length
  // leaves the answer open is measured.
  if (body.length * 3 <= MAX_MESSAGE_BYTES) return;
  if (body.length > MAX_MESSAGE_BYTES || Buffer.byteLength(body, 'utf8') > MAX_MESSAGE_BYTES)
    throw new QueueError(`queue/message-too-large: a body is over ${MAX_MESSAGE_BYTES} bytes (UTF-8)`);
}

function checkSeconds(seconds: number, max: number, reason: string): void {
  if (!Number.isSafeInteger(seconds) || seconds < 0 || seconds > max) {
    throw new QueueError(`${reason}: ${seconds} (0-${max} seconds)`);
  }
}
