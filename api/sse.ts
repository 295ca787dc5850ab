/**
 * Server-sent events for `GET /mesh/events`: a broadcaster that writes each published event to
 * every attached client, keeps the last events in a ring so a client reconnecting with
 * `Last-Event-ID` misses nothing recent, pings idle streams so proxies keep them open, and drops
 * clients too slow to keep up (they reconnect and replay, instead of growing memory without bound).
 */
import { PassThrough } from 'node:stream';
import type { Context } from 'koa';

/** One event as it goes on the wire: `id`, `event` and `data` (JSON-encoded on one line). */
export interface SseEvent {
  /** Position in the stream; increases with every event (the core's `seq`). */
  readonly id: number;
  /** Event type, for `EventSource.addEventListener(type, ...)`. */
  readonly event: string;
  /** Anything JSON-serialisable. */
  readonly data: unknown;
}

/** Options of {@link createEventStream}. */
export interface EventStreamOptions {
  /** Interval of the `: ping` comment that keeps idle connections open (15 s). */
  pingIntervalMs?: number;
  /** How many recent events are kept for `Last-Event-ID` replay (1000). */
  replayLimit?: number;
  /** Reconnection delay suggested to clients with `retry:` (2000 ms). */
  retryMs?: number;
  /** A client whose unsent output exceeds this is disconnected (1 MiB). */
  maxBufferedBytes?: number;
}

/** A broadcaster of server-sent events. */
export interface EventStream {
  /**
   * Turns the response into an event stream for this client, replaying the retained events with
   * an id greater than `lastEventId` first.
   */
  attach(ctx: Context, lastEventId?: number): void;
  /** Sends an event to every attached client and keeps it for replay. */
  publish(event: SseEvent): void;
  /** Number of attached clients. */
  readonly clientCount: number;
  /** Ends every stream and stops the ping timer (for shutdown); later attaches end at once. */
  close(): void;
}

/** Serialises one event; `data` is one line because JSON.stringify escapes newlines in strings. */
export function formatEvent(event: SseEvent): string {
  if (!/^[^\r\n:]+$/.test(event.event)) throw new Error(`invalid SSE event name ${JSON.stringify(event.event)}`);
  return `id: ${event.id}\nevent: ${event.event}\ndata: ${JSON.stringify(event.data)}\n\n`;
}

/** Parses a `Last-Event-ID` header; undefined when absent or not a non-negative integer. */
export function parseLastEventId(header: string | undefined): number | undefined {
  if (header === undefined || !/^\d{1,16}$/.test(header.trim())) return undefined;
  const id = Number(header.trim());
  return Number.isSafeInteger(id) ? id : undefined;
}

/** True for the error Koa reports when a streamed body ends before the response did. */
export function isPrematureClose(error: unknown): boolean {
  return errorCode(error) === 'ERR_STREAM_PREMATURE_CLOSE';
}

/**
 * True for the errors Koa reports when a client goes away in the middle of a streamed body
 * (premature close, connection reset, broken pipe). Filter them in `app.on('error')`: for an event
 * stream they are the normal end of a connection, not a fault.
 */
export function isClientDisconnect(error: unknown): boolean {
  const code = errorCode(error);
  return code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED';
}

function errorCode(error: unknown): unknown {
  return typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
}

/** Creates a broadcaster. Call `close()` on shutdown, or open streams keep the server alive. */
export function createEventStream(options: EventStreamOptions = {}): EventStream {
  const { pingIntervalMs = 15_000, replayLimit = 1000, retryMs = 2000, maxBufferedBytes = 1024 * 1024 } = options;
  const clients = new Set<PassThrough>();
  const ring: { id: number; frame: string }[] = [];
  let ping: NodeJS.Timeout | undefined;
  let closed = false;

  // A slow client is destroyed rather than ended: ending would keep its backlog in memory until
  // it read everything, which is what dropping it is meant to avoid.
  const drop = (client: PassThrough, abort = false): void => {
    if (!clients.delete(client)) return;
    if (abort) client.destroy();
    else client.end();
    if (clients.size === 0 && ping) {
      clearInterval(ping);
      ping = undefined;
    }
  };
  const write = (client: PassThrough, text: string): void => {
    client.write(text);
    if (client.writableLength > maxBufferedBytes) drop(client, true);
  };
  const startPing = (): void => {
    if (ping) return;
    ping = setInterval(() => { for (const c of clients) write(c, ': ping\n\n'); }, pingIntervalMs);
    ping.unref();
  };

  return {
    get clientCount() { return clients.size; },
    attach(ctx, lastEventId) {
      const client = openResponse(ctx);
      if (closed) {
        client.end();
        return;
      }
      clients.add(client);
      startPing();
      // The response's close, not the request's: since Node 16 a GET request emits 'close' as soon
      // as it has been read, long before the client goes away.
      ctx.res.on('close', () => drop(client));
      client.on('close', () => drop(client));
      let text = `retry: ${retryMs}\n\n`;
      if (lastEventId !== undefined) for (const e of ring) if (e.id > lastEventId) text += e.frame;
      write(client, text);
    },
    publish(event) {
      const frame = formatEvent(event);
      ring.push({ id: event.id, frame });
      if (ring.length > replayLimit) ring.splice(0, ring.length - replayLimit);
      for (const client of clients) write(client, frame);
    },
    close() {
      closed = true;
      for (const client of [...clients]) drop(client);
    },
  };
}

/** Sets the SSE headers and streams the response through a PassThrough the broadcaster writes to. */
function openResponse(ctx: Context): PassThrough {
  ctx.req.socket.setTimeout(0);
  ctx.req.socket.setNoDelay(true);
  ctx.status = 200;
  ctx.set({
    'Content-Type': 'text/event-stream; charset=utf-8',
    // no-transform stops compressing proxies from buffering the stream.
    'Cache-Control': 'no-cache, no-transform',
    Connection: 'keep-alive',
    // nginx buffers proxied responses unless told otherwise.
    'X-Accel-Buffering': 'no',
  });
  const stream = new PassThrough();
  ctx.body = stream;
  return stream;
}
