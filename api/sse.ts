/**
 * Server-sent events for `GET /mesh/events`: a broadcaster that writes each published event to
 * every attached client, keeps the last events in a ring so a client reconnecting with
 * `Last-Event-ID` misses nothing recent, pings idle streams so proxies keep them open, and drops
 * clients too slow to keep up (they reconnect and replay, instead of growing memory without bound).
 * A client resuming from an id the ring no longer holds (too old, or from before a restart) is told
 * so with an `events_missed` notice before the replay: a gap is never silent.
 */
import { PassThrough } from 'node:stream';
import type { Context } from 'koa';

/** One event as it goes on the wire: `id`, `event` and `data` (JSON-encoded on one line). */
export interface SseEvent {
  /**
   * Position in the stream, unique across restarts (`<boot>.<seq>`, see mesh/effects/events.ts
   * `eventId`); absent on a notice that is no position in the stream (`events_missed`).
   */
  readonly id?: string;
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
   * Turns the response into an event stream for this client, replaying first the retained events
   * after the one with id `lastEventId`; when that one is not retained, an `events_missed` notice
   * and then every retained event.
   */
  attach(ctx: Context, lastEventId?: string): void;
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
  const id = event.id === undefined ? '' : `id: ${event.id}\n`;
  return `${id}event: ${event.event}\ndata: ${JSON.stringify(event.data)}\n\n`;
}

/** A `Last-Event-ID` header as an id to resume after; undefined when absent or blank. */
export function parseLastEventId(header: string | undefined): string | undefined {
  const id = header?.trim();
  return id === undefined || id === '' ? undefined : id;
}

/**
 * The frames to replay after `lastEventId`: the retained ones after it, or, when it is not retained
 * (older than the window, from an earlier run of the service, or never issued), a notice that
 * events may have been missed followed by everything retained.
 */
function replayAfter(ring: readonly { id: string; frame: string }[], lastEventId: string): string {
  const at = ring.findIndex((e) => e.id === lastEventId);
  if (at >= 0) return ring.slice(at + 1).map((e) => e.frame).join('');
  const oldest = ring[0]?.id ?? null;
  const notice = formatEvent({
    event: 'events_missed',
    data: {
      type: 'events_missed', last_event_id: lastEventId, oldest_retained_id: oldest,
      detail: `Event ${lastEventId} is no longer retained (the service restarted, or more events followed it than are kept); ` +
        'events after it may have been missed. Re-read the state you track (GET /mesh/status, /mesh/regions).',
    },
  });
  return notice + ring.map((e) => e.frame).join('');
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
  const ring: { id: string; frame: string }[] = [];
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
      if (lastEventId !== undefined) text += replayAfter(ring, lastEventId);
      write(client, text);
    },
    publish(event) {
      const frame = formatEvent(event);
      if (event.id !== undefined) ring.push({ id: event.id, frame });
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
