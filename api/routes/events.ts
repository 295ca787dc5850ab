/**
 * `GET /mesh/events`: the core's typed events as server-sent events. The app owns one broadcaster
 * subscribed to the core (see `createApp`); this route only attaches clients to it, replaying the
 * retained events after `Last-Event-ID` first.
 */
import { Router } from '@koa/router';
import { eventId, type MeshEvent } from '../../mesh/effects/events.ts';
import { snakeCaseKeys } from '../problem.ts';
import { ms, operation, type RouteKit } from '../route-kit.ts';
import { parseLastEventId, type EventStream, type SseEvent } from '../sse.ts';

/** Routes of the event stream. */
export function eventRoutes(kit: RouteKit, events: EventStream): Router {
  const router = new Router();
  operation(router, kit, 'streamEvents', (ctx) => {
    // The contract has already refused a malformed Last-Event-ID.
    events.attach(ctx, parseLastEventId(ctx.get('Last-Event-ID') || undefined));
  });
  return router;
}

/**
 * One core event as it goes on the wire: `id` is `<boot>.<seq>` (unique across restarts: a
 * restart renumbers from the last durable `seq`, but under a new boot id), `event` its `type`,
 * `data` the contract's `MeshEvent` (snake_case, with the envelope's `at` in whole milliseconds).
 */
export function sseEventOf(event: MeshEvent, bootId: string): SseEvent {
  // `atMs` is spelled out: snakeCaseKeys maps only a trailing `AtMs` to `_at`, and would turn the
  // bare key into `at_ms`.
  const { atMs, ...rest } = event;
  const data = wholeMilliseconds(snakeCaseKeys(rest)) as Record<string, unknown>;
  return { id: eventId(bootId, event.seq), event: event.type, data: { ...data, at: ms(atMs) } };
}

/**
 * Rounds every time and duration (keys ending in `_at` or `_ms`) to whole milliseconds, as the
 * contract promises: simulated heartbeats arrive at fractional virtual times.
 */
function wholeMilliseconds(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(wholeMilliseconds);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(Object.entries(value).map(([key, v]) =>
    [key, typeof v === 'number' && /(_at|_ms)$/.test(key) ? ms(v) : wholeMilliseconds(v)]));
}
