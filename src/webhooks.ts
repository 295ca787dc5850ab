/**
 * Alert webhooks: every alert raise and resolve is POSTed as JSON to each configured URL, signed
 * so that the receiver can tell it came from this coordinator and is fresh.
 *
 * Signature (documented in FAULT_TOLERANCE_DEPLOYMENT.md §4.4): headers
 *   X-Mesh-Webhook-Id: <delivery id, the same on every retry of one notification>
 *   X-Mesh-Webhook-Timestamp: <Unix seconds when this attempt was sent>
 *   X-Mesh-Webhook-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>
 * A receiver recomputes the HMAC over the raw body, compares in constant time and refuses a
 * timestamp more than `replayWindowSeconds` away from its clock (see {@link verifyWebhook}).
 *
 * Delivery never slows the coordinator: `notify` only appends to a bounded in-memory queue per
 * URL; a worker per URL sends in order, one at a time, and retries a failure with exponential
 * back-off. Nothing is dropped silently: a notification that exhausts its attempts, or that a full
 * queue pushes out, is logged as an error and counted.
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Logger } from './logger.ts';

/** How long a receiver should accept a signed timestamp, in seconds either way. */
export const replayWindowSeconds = 300;

/** Options of {@link AlertWebhooks}. */
export interface WebhookOptions {
  readonly urls: readonly string[];
  /** The shared HMAC key (`MESH_ALERT_WEBHOOK_SECRET`). */
  readonly secret: string;
  readonly log: Logger;
  /** Most notifications waiting per URL; the oldest is dropped (and logged) beyond it. */
  readonly maxQueue?: number;
  /** Attempts per notification before it is given up (and logged). */
  readonly maxAttempts?: number;
  /** Delay before the first retry; doubles per attempt up to `maxDelayMs`. */
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  /** Longest wait for one answer. */
  readonly timeoutMs?: number;
  /** Told about every attempt's outcome and the queue length (metrics). */
  readonly onOutcome?: (outcome: 'delivered' | 'retried' | 'dropped', queued: number) => void;
}

interface Delivery {
  readonly id: string;
  readonly body: string;
  attempts: number;
}

/** The signature header value for one attempt. */
export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * Reference check for receivers: true when the signature matches the raw body and the timestamp
 * is within the replay window of `nowSeconds`.
 */
export function verifyWebhook(input: {
  secret: string; body: string; timestamp: string | undefined; signature: string | undefined; nowSeconds: number;
}): boolean {
  const timestamp = Number(input.timestamp);
  if (!Number.isInteger(timestamp) || Math.abs(input.nowSeconds - timestamp) > replayWindowSeconds) return false;
  const expected = Buffer.from(signWebhook(input.secret, timestamp, input.body));
  const given = Buffer.from(input.signature ?? '');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** The webhook sender. */
export class AlertWebhooks {
  private readonly queues = new Map<string, Delivery[]>();
  private readonly busy = new Set<string>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(private readonly options: WebhookOptions) {
    for (const url of options.urls) this.queues.set(url, []);
  }

  /** Queues `payload` for every URL and returns at once. */
  notify(payload: unknown): void {
    if (this.closed) return;
    const body = JSON.stringify(payload);
    for (const [url, queue] of this.queues) {
      if (queue.length >= (this.options.maxQueue ?? 1000)) {
        const dropped = queue.shift() as Delivery;
        this.options.log.error('alert webhook queue full; oldest notification dropped', { url, deliveryId: dropped.id });
        this.report('dropped');
      }
      queue.push({ id: randomUUID(), body, attempts: 0 });
      this.pump(url);
    }
  }

  /** Notifications waiting, over every URL. */
  queued(): number {
    let total = 0;
    for (const queue of this.queues.values()) total += queue.length;
    return total;
  }

  /** Stops sending (shutdown); whatever is still queued is logged as not delivered. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    const left = this.queued();
    if (left > 0) this.options.log.warn('alert webhook notifications not delivered before shutdown', { count: left });
  }

  private pump(url: string): void {
    if (this.closed || this.busy.has(url)) return;
    const head = this.queues.get(url)?.[0];
    if (!head) return;
    this.busy.add(url);
    void this.attempt(url, head).finally(() => this.busy.delete(url)).then((retryInMs) => {
      if (retryInMs === null) this.pump(url);
      else this.later(() => this.pump(url), retryInMs);
    });
  }

  /** Sends the head of a queue once; null when the queue can move on, else the back-off delay. */
  private async attempt(url: string, delivery: Delivery): Promise<number | null> {
    delivery.attempts += 1;
    const error = await this.send(url, delivery);
    const queue = this.queues.get(url) as Delivery[];
    if (error === null) {
      queue.shift();
      this.report('delivered');
      return null;
    }
    const maxAttempts = this.options.maxAttempts ?? 8;
    if (delivery.attempts >= maxAttempts) {
      queue.shift();
      this.options.log.error('alert webhook gave up', { url, deliveryId: delivery.id, attempts: delivery.attempts, error });
      this.report('dropped');
      return null;
    }
    const delay = Math.min(this.options.maxDelayMs ?? 60_000, (this.options.baseDelayMs ?? 500) * 2 ** (delivery.attempts - 1));
    this.options.log.warn('alert webhook failed; will retry', { url, deliveryId: delivery.id, attempt: delivery.attempts, retryInMs: delay, error });
    this.report('retried');
    return delay;
  }

  /** One POST; null on a 2xx answer, else what went wrong. */
  private async send(url: string, delivery: Delivery): Promise<string | null> {
    const timestamp = Math.floor(Date.now() / 1000);
    try {
      const res = await fetch(url, {
        method: 'POST', redirect: 'manual', signal: AbortSignal.timeout(this.options.timeoutMs ?? 5000), body: delivery.body,
        headers: {
          'content-type': 'application/json', 'x-mesh-webhook-id': delivery.id, 'x-mesh-webhook-timestamp': String(timestamp),
          'x-mesh-webhook-signature': signWebhook(this.options.secret, timestamp, delivery.body),
        },
      });
      await res.arrayBuffer().catch(() => undefined);
      return res.ok ? null : `answered ${res.status}`;
    } catch (error) {
      return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    }
  }

  private later(run: () => void, ms: number): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      run();
    }, ms);
    timer.unref();
    this.timers.add(timer);
  }

  private report(outcome: 'delivered' | 'retried' | 'dropped'): void {
    this.options.onOutcome?.(outcome, this.queued());
  }
}
