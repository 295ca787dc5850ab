/**
 * What the composition root learns about every answered request: the route template (not the raw
 * path, so that metrics keep a bounded set of labels), the status, the duration, and for refusals
 * the problem's detail (never a header, so no token reaches a log). `src/` turns these into the
 * HTTP metrics and the auth-refusal log lines; the API itself keeps no counters.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Middleware } from 'koa';

/** One answered request. */
export interface RequestRecord {
  readonly method: string;
  /** The documented path template (`/mesh/servers/{server_id}/heartbeat`), or `unmatched`. */
  readonly route: string;
  readonly status: number;
  readonly seconds: number;
  /** The caller's address as the socket has it. */
  readonly remoteAddress: string | undefined;
  /** `detail` of the problem document, for 4xx/5xx answers that carried one. */
  readonly detail: string | undefined;
}

/** Told about every answered request, after the answer is sent. */
export type RequestObserver = (record: RequestRecord) => void;

/** What the Koa side notes on the response for the observer. */
interface Noted {
  route: string;
  detail: string | undefined;
}

/**
 * The pair the app installs: `koa` notes the matched route and problem detail of requests Koa
 * answers; `wrap` times every request and reports it once it finished.
 * Event streams are not reported: their duration is the client's stay, not the service's work.
 */
export function requestObserver(observe: RequestObserver) {
  const noted = new WeakMap<ServerResponse, Noted>();
  const koa: Middleware = async (ctx, next) => {
    try {
      await next();
    } finally {
      const route = (ctx as { _matchedRoute?: unknown })._matchedRoute;
      const body = ctx.body as { detail?: unknown } | null | undefined;
      noted.set(ctx.res, {
        route: typeof route === 'string' ? toTemplate(route) : 'unmatched',
        detail: ctx.status >= 400 && typeof body?.detail === 'string' ? body.detail : undefined,
      });
    }
  };
  const wrap = (req: IncomingMessage, res: ServerResponse): void => {
    const started = performance.now();
    res.once('finish', () => {
      if (String(res.getHeader('content-type') ?? '').startsWith('text/event-stream')) return;
      const note = noted.get(res);
      observe({
        method: req.method ?? 'GET', route: note?.route ?? 'unmatched', status: res.statusCode,
        seconds: (performance.now() - started) / 1000, remoteAddress: req.socket.remoteAddress, detail: note?.detail,
      });
    });
  };
  return { koa, wrap };
}

/** Koa's `/mesh/servers/:server_id` as the contract writes it, `/mesh/servers/{server_id}`. */
function toTemplate(route: string): string {
  return route.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}
