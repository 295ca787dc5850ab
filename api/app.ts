/**
 * The Koa app factory. `createApp(deps)` loads the contract once, builds one {@link RouteKit},
 * mounts the problem middleware first and then every resource router, and never listens: the
 * composition root (`src/main.ts`) or a test (`supertest`) drives `app.callback()`. Every HTTP
 * request, heartbeats included, goes through Koa and its middleware. Server sessions (WebSockets)
 * are taken from the HTTP server's `upgrade` event by `app.sessions.handleUpgrade`
 * (api/session/session-upgrade.ts), which the composition root wires.
 *
 * Shutdown: open `GET /mesh/events` streams and server sessions would keep an HTTP server alive
 * forever, so the app carries `closeStreams()`, which ends every event stream and session and
 * unsubscribes from the core's events. Call it before `server.close()`.
 */
import Koa, { type Context, type Middleware } from 'koa';
import { Router } from '@koa/router';
import { IncomingMessage, ServerResponse } from 'node:http';
import type { AppDeps } from './deps.ts';
import { leaderGate, noLeader } from './leadership.ts';
import { loadContract } from './openapi.ts';
import { HttpProblem, isClientGone, problemMiddleware } from './problem.ts';
import { createRequestGuard } from './request-guard.ts';
import type { RouteKit } from './route-kit.ts';
import { requestObserver } from './request-observer.ts';
import { defaultMaxQueuedBytes, SessionHub, type HubClosing } from './session/session-hub.ts';
import { sessionEndpoint, type SessionEndpoint } from './session/session-upgrade.ts';
import { createEventStream, type EventStream } from './sse.ts';
import { actionRoutes } from './routes/actions.ts';
import { alertRoutes } from './routes/alerts.ts';
import { dashboardRoutes } from './routes/dashboard.ts';
import { eventRoutes, sseEventOf } from './routes/events.ts';
import { eventId } from '../mesh/effects/events.ts';
import { metricsRoutes } from './routes/metrics.ts';
import { regionRoutes } from './routes/regions.ts';
import { serverRoutes } from './routes/servers.ts';
import { snapshotRoutes } from './routes/snapshots.ts';
import { statusRoutes } from './routes/status.ts';
import { testApiOffRoutes } from './routes/test-api-off.ts';
import { testMeshRoutes } from './routes/test-mesh.ts';

/** The app `createApp` returns: a Koa application that can also end its event streams. */
export interface MeshApp extends Koa {
  /**
   * Ends every open `GET /mesh/events` stream and server session and stops publishing the core's
   * events (shutdown). Streams and sessions attached afterwards end at once. Idempotent. `sessions`
   * says why the sessions close when it is not a shutdown (this coordinator stopped leading).
   */
  closeStreams(sessions?: HubClosing): void;
  /** Server sessions: hand `sessions.handleUpgrade` the HTTP server's `upgrade` events. */
  readonly sessions: SessionEndpoint;
}

/** One router per resource, each built from the shared kit. */
const routerFactories: readonly ((kit: RouteKit, events: EventStream) => Router)[] = [
  (kit) => statusRoutes(kit),
  (kit) => (kit.deps.testApi === false ? testApiOffRoutes(kit) : testMeshRoutes(kit)),
  (kit) => serverRoutes(kit),
  (kit) => regionRoutes(kit),
  (kit) => actionRoutes(kit),
  (kit) => snapshotRoutes(kit),
  (kit) => alertRoutes(kit),
  (kit, events) => eventRoutes(kit, events),
  (kit) => metricsRoutes(kit),
  (kit) => dashboardRoutes(kit),
];

/** Builds the app over a running mesh. */
export function createApp(deps: AppDeps): MeshApp {
  const contract = deps.contract ?? loadContract(deps.openapiPath);
  const kit: RouteKit = { deps, host: deps.host, contract };
  const events = createEventStream({ maxClients: deps.http?.maxEventSubscribers });
  const guard = createRequestGuard({ allowedHosts: deps.http?.allowedHosts ?? [], allowedOrigins: deps.http?.allowedOrigins ?? [] });
  // Subscribed once for the app, not per client, so that the replay ring holds every event
  // since start-up whether or not anyone was listening.
  // Formatted when first needed (most events of a mass failure are never read), except alerts: the
  // alert book updates an alert in place, and the event must show it as it was raised.
  const unsubscribe = deps.host.subscribe((event) => {
    if (event.type === 'administrator_alert') events.publish(sseEventOf(event, deps.host.bootId));
    else events.publishLazily(eventId(deps.host.bootId, event.seq), () => sseEventOf(event, deps.host.bootId));
  });

  const root = new Router();
  for (const make of routerFactories) root.use(make(kit, events).routes());

  const app = new Koa() as MeshApp;
  const observer = deps.observeRequest ? requestObserver(deps.observeRequest) : null;
  if (observer) app.use(observer.koa);
  app.use(problemMiddleware({
    log: (error, request) => deps.logError(error, request),
    debug: (error, request) => deps.logDebug?.('client left mid-request', { ...request, reason: error instanceof Error ? error.message : String(error) }),
  }));
  app.use(guard.middleware);
  if (deps.leadership) app.use(leaderGate(deps.leadership));
  app.use(methodProblems(root));
  app.use(root.routes());
  app.on('error', (error: unknown, ctx?: Context) => {
    // A client leaving an event stream (or any streamed body, or mid-request) is the client's doing.
    if (isClientGone(error)) {
      deps.logDebug?.('client left mid-request', { ...(ctx ? { method: ctx.method, path: ctx.path } : {}), reason: String(error) });
      return;
    }
    deps.logError(error, ctx ? { method: ctx.method, path: ctx.path } : {});
  });
  if (observer) {
    const koaCallback = app.callback.bind(app);
    app.callback = () => {
      const handleWithKoa = koaCallback();
      return (req, res) => {
        if (res instanceof ServerResponse && req instanceof IncomingMessage) observer.wrap(req, res);
        return handleWithKoa(req, res);
      };
    };
  }
  const hub = new SessionHub(kit, { maxQueuedBytes: deps.sessionMaxQueuedBytes ?? defaultMaxQueuedBytes });
  const leadership = deps.leadership;
  // A leader that has just stepped down refuses a handshake it would no longer serve; its sessions
  // are being closed with the new leader's name (api/leadership.ts redirects at followers).
  const notLeading = () => (leadership === undefined || leadership.view().role === 'leader' ? undefined : noLeader());
  (app as { sessions: SessionEndpoint }).sessions = sessionEndpoint(kit, hub, (req) => guard.upgradeRefusal(req.headers) ?? notLeading());
  let closed = false;
  app.closeStreams = (sessions) => {
    if (closed) return;
    closed = true;
    unsubscribe();
    events.close();
    hub.close(sessions);
  };
  return app;
}

/** Thrown by `allowedMethods` and replaced, with the request at hand, by a problem document. */
class MethodSignal extends Error {
  constructor(readonly status: 405 | 501) {
    super(status === 405 ? 'method not allowed' : 'not implemented');
  }
}

/**
 * 405 (with `Allow`) for a known path and a method it does not support, 501 for a method the
 * router does not implement at all; a path nothing matches stays a 404 for the problem middleware.
 */
function methodProblems(root: Router): Middleware {
  const allowed = root.allowedMethods({
    throw: true,
    methodNotAllowed: () => new MethodSignal(405),
    notImplemented: () => new MethodSignal(501),
  }) as Middleware;
  return async function methods(ctx, next) {
    try {
      await allowed(ctx, next);
    } catch (error) {
      if (!(error instanceof MethodSignal)) throw error;
      throw methodProblem(ctx, error.status);
    }
  };
}

function methodProblem(ctx: Context, status: 405 | 501): HttpProblem {
  const allow = allowedMethodsOf(ctx);
  const headers = allow.length > 0 ? { Allow: allow.join(', ') } : undefined;
  if (status === 501) {
    return new HttpProblem({ status, slug: 'not-implemented', detail: `The method ${ctx.method} is not implemented by this service.`, headers });
  }
  return new HttpProblem({
    status, slug: 'method-not-allowed', headers,
    detail: `${ctx.method} is not allowed on ${ctx.path}; allowed: ${allow.join(', ')}.`,
  });
}

/** Methods of the routes that matched the path (set on the context by the router). */
function allowedMethodsOf(ctx: Context): string[] {
  const matched = (ctx as Context & { matched?: { methods: string[] }[] }).matched ?? [];
  return [...new Set(matched.flatMap((layer) => layer.methods))];
}
