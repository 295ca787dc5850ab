/**
 * Server-sent events for `GET /mesh/events`: a broadcaster that writes each published event to
 * every attached client, keeps the last events in a ring so a client reconnecting with
 * `Last-Event-ID` misses nothing recent, pings idle streams so proxies keep them open, caps the
 * number of clients, and drops clients too slow to keep up with a final event saying why (they
 * reconnect and replay, instead of growing memory without bound). A client resuming from an id the
 * ring no longer holds (too old, or from before a restart) is told so with an `events_missed`
 * notice before the replay: a gap is never silent.
 */
import type { ServerResponse } from 'node:http';
import type { Context } from 'koa';
import { isClientGone, tooManyRequests } from './problem.ts';

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
  /** A client whose connection holds more unsent bytes than this is dropped (256 KiB). */
  maxBufferedBytes?: number;
  /** A client whose connection holds more unsent events than this is dropped (1000). */
  maxQueuedEvents?: number;
  /** Most clients attached at once; `attach` refuses one more with 429 (100). */
  maxClients?: number;
  /**
   * How long a dropped client's final `stream_closed` event may wait to be read before its
   * connection is cut, which frees what the connection still holds (5 s).
   */
  dropGraceMs?: number;
}

/** A broadcaster of server-sent events. */
export interface EventStream {
  /**
   * Turns the response into an event stream for this client, replaying first the retained events
   * after the one with id `lastEventId`; when that one is not retained, an `events_missed` notice
   * and then every retained event. Throws a 429 problem, before answering anything, when
   * `maxClients` are attached already.
   */
  attach(ctx: Context, lastEventId?: string): void;
  /** Sends an event to every attached client and keeps it for replay. */
  publish(event: SseEvent): void;
  /**
   * Like `publish` for an event with id `id` built by `build` only when it is needed: at once when
   * clients are attached, otherwise at its first replay (most events of a burst leave the ring
   * unread, and formatting each would hold up everything else the process does).
   */
  publishLazily(id: string, build: () => SseEvent): void;
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
 * The events to replay after `lastEventId`: the retained ones after it, or, when it is not retained
 * (older than the window, from an earlier run of the service, or never issued), a notice that
 * events may have been missed followed by everything retained.
 */
function replayAfter(ring: readonly Retained[], lastEventId: string): { id?: string; frame: string }[] {
  const at = ring.findIndex((e) => e.id === lastEventId);
  if (at >= 0) return ring.slice(at + 1).map((e) => ({ id: e.id, frame: frameOf(e) }));
  const oldest = ring[0]?.id ?? null;
  const notice = formatEvent({
    event: 'events_missed',
    data: {
      type: 'events_missed', last_event_id: lastEventId, oldest_retained_id: oldest,
      detail: `Event ${lastEventId} is no longer retained (the service restarted, or more events followed it than are kept); ` +
        'events after it may have been missed. Re-read the state you track (GET /mesh/status, /mesh/regions).',
    },
  });
  return [{ frame: notice }, ...ring.map((e) => ({ id: e.id, frame: frameOf(e) }))];
}

/** An event kept for replay: its frame, or what builds it on first use. */
interface Retained {
  readonly id: string;
  frame: string | null;
  build: (() => SseEvent) | null;
}

function frameOf(entry: Retained): string {
  if (entry.frame === null) {
    entry.frame = formatEvent(entry.build!());
    entry.build = null;
  }
  return entry.frame;
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
export const isClientDisconnect = isClientGone;

function errorCode(error: unknown): unknown {
  return typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
}

/** Why a stream was ended by the service, as its final `stream_closed` event says. */
export type StreamCloseReason = 'slow_consumer' | 'shutdown';

const closeDetails: Readonly<Record<StreamCloseReason, string>> = {
  slow_consumer: 'This client did not read the stream fast enough and fell too far behind; reconnect with Last-Event-ID to resume.',
  shutdown: 'The coordinator is shutting down; reconnect with Last-Event-ID once it is back.',
};

/** The last frame of a stream the service ends: no id, so that `Last-Event-ID` stays on the last event. */
export function closingFrame(reason: StreamCloseReason, lastEventId: string | null): string {
  return `event: stream_closed\ndata: ${JSON.stringify({ reason, detail: closeDetails[reason], last_event_id: lastEventId })}\n\n`;
}

/** One attached client: its response and the events written since its connection last drained. */
interface Client {
  readonly res: ServerResponse;
  backlog: number;
  lastEventId: string | null;
}

/**
 * Creates a broadcaster. Call `close()` on shutdown, or open streams keep the server alive.
 *
 * Frames are written straight to each response; the frame strings are shared between clients, and
 * what a client has not taken yet stays in its connection's buffer. That buffer is bounded in bytes
 * and events: a client beyond either bound gets a final `stream_closed` event and is cut off if it
 * still does not read, instead of growing the process's memory with every event.
 */
export function createEventStream(options: EventStreamOptions = {}): EventStream {
  const {
    pingIntervalMs = 15_000, replayLimit = 1000, retryMs = 2000, maxBufferedBytes = 256 * 1024,
    maxQueuedEvents = 1000, maxClients = 100, dropGraceMs = 5000,
  } = options;
  const clients = new Set<Client>();
  const ring: Retained[] = [];
  let ping: NodeJS.Timeout | undefined;
  let closed = false;

  const stopPingIfIdle = (): void => {
    if (clients.size === 0 && ping) {
      clearInterval(ping);
      ping = undefined;
    }
  };
  const drop = (client: Client, reason: StreamCloseReason): void => {
    if (!clients.delete(client)) return;
    stopPingIfIdle();
    const { res } = client;
    if (res.destroyed || res.writableEnded) return;
    res.end(closingFrame(reason, client.lastEventId));
    if (reason !== 'slow_consumer') return;
    const cut = setTimeout(() => res.destroy(), dropGraceMs);
    cut.unref();
    res.once('close', () => clearTimeout(cut));
  };
  const write = (client: Client, text: string, eventId?: string): void => {
    const { res } = client;
    if (res.destroyed || res.writableEnded) return;
    res.write(text);
    if (eventId !== undefined) client.lastEventId = eventId;
    if (res.writableNeedDrain) client.backlog += 1;
    if (res.writableLength > maxBufferedBytes || client.backlog > maxQueuedEvents) drop(client, 'slow_consumer');
  };
  const retain = (entry: Retained): void => {
    ring.push(entry);
    if (ring.length > replayLimit) ring.splice(0, ring.length - replayLimit);
  };
  const startPing = (): void => {
    if (ping) return;
    ping = setInterval(() => { for (const c of clients) write(c, ': ping\n\n'); }, pingIntervalMs);
    ping.unref();
  };

  return {
    get clientCount() { return clients.size; },
    attach(ctx, lastEventId) {
      if (!closed && clients.size >= maxClients) {
        throw tooManyRequests(`At most ${maxClients} clients may follow the event stream at once; try again later.`, retryMs, 'too-many-subscribers');
      }
      const res = openResponse(ctx);
      const client: Client = { res, backlog: 0, lastEventId: lastEventId ?? null };
      if (closed) {
        res.end(closingFrame('shutdown', client.lastEventId));
        return;
      }
      clients.add(client);
      startPing();
      res.on('drain', () => { client.backlog = 0; });
      res.on('close', () => {
        clients.delete(client);
        stopPingIfIdle();
      });
      write(client, `retry: ${retryMs}\n\n`);
      if (lastEventId !== undefined) for (const e of replayAfter(ring, lastEventId)) write(client, e.frame, e.id);
    },
    publish(event) {
      const frame = formatEvent(event);
      if (event.id !== undefined) retain({ id: event.id, frame, build: null });
      for (const client of clients) write(client, frame, event.id);
    },
    publishLazily(id, build) {
      const entry: Retained = { id, frame: null, build };
      retain(entry);
      if (clients.size === 0) return;
      const frame = frameOf(entry);
      for (const client of clients) write(client, frame, id);
    },
    close() {
      closed = true;
      for (const client of [...clients]) drop(client, 'shutdown');
    },
  };
}

/**
 * Sends the SSE headers and hands the raw response over: Koa does not answer it (`respond = false`),
 * the broadcaster writes to it directly.
 */
function openResponse(ctx: Context): ServerResponse {
  ctx.req.socket.setTimeout(0);
  ctx.req.socket.setNoDelay(true);
  ctx.status = 200;
  ctx.respond = false;
  ctx.res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    // no-transform stops compressing proxies from buffering the stream.
    'Cache-Control': 'no-cache, no-transform',
    Connection: 'keep-alive',
    // nginx buffers proxied responses unless told otherwise.
    'X-Accel-Buffering': 'no',
  });
  return ctx.res;
}
