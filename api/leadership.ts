/**
 * The HTTP side of running several coordinators with one leader (issue 20): only the leader's app
 * serves the API. A follower (or a leader whose lease can no longer be trusted) answers the probes
 * and `GET /mesh/status` with its role and the leader's URL, and every other request, HTTP or
 * session handshake, with 307 to the same path at the leader before any side effect, or with a 503
 * problem while no leader is known. The gate sits in front of every route of the leader's app too,
 * so that a leader that has just lost its lease answers like a follower from that instant.
 */
import Koa, { type Context, type Middleware } from 'koa';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { HttpProblem, problemMiddleware } from './problem.ts';
import { createRequestGuard } from './request-guard.ts';
import type { HttpOptions } from './deps.ts';

/** What a coordinator is among its replicas; `standalone` runs without an election (no etcd). */
export type CoordinatorRole = 'leader' | 'follower' | 'standalone';

/** The role now and, when one is known, the leader's URL and term (its election key's revision). */
export interface LeadershipView {
  readonly role: CoordinatorRole;
  readonly leaderUrl: string | undefined;
  readonly term: string | undefined;
}

/** Where the HTTP layer reads the election from (src/ha/ builds it). */
export interface Leadership {
  /** This coordinator's own URL (`--advertise-url`). */
  readonly selfUrl: string;
  view(): LeadershipView;
}

/** The contract's `CoordinatorRole` object: role, own URL, leader's URL and term. */
export function coordinatorJson(leadership: Leadership | undefined): Record<string, unknown> {
  if (leadership === undefined) return { role: 'standalone', self_url: null, leader_url: null, term: null };
  const view = leadership.view();
  return { role: view.role, self_url: leadership.selfUrl, leader_url: view.leaderUrl ?? null, term: view.term ?? null };
}

/** The paths a follower answers itself: probes and the status, which say who leads. */
function answerLocally(ctx: Context, leadership: Leadership): boolean {
  if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return false;
  const coordinator = coordinatorJson(leadership);
  if (ctx.path === '/healthz') {
    ctx.status = 200;
    ctx.body = { status: 'ok', coordinator };
    return true;
  }
  if (ctx.path === '/readyz') {
    const leader = coordinator.leader_url === null ? 'no leader is known now' : `the leader is ${String(coordinator.leader_url)}`;
    throw new HttpProblem({
      status: 503, slug: 'not-leader', detail: `Not ready: this coordinator is a follower; ${leader}.`,
      headers: { 'Retry-After': '1' }, extra: { coordinator },
    });
  }
  if (ctx.path === '/mesh/status') {
    ctx.status = 200;
    ctx.body = { coordinator };
    return true;
  }
  return false;
}

/** The redirect of a request to the leader: its `Location` and a JSON body saying why. */
export interface LeaderRedirect {
  readonly location: string;
  readonly body: { readonly detail: string; readonly leader_url: string };
}

/** 503 while no leader is known: nothing was done. */
export function noLeader(): HttpProblem {
  return new HttpProblem({
    status: 503, slug: 'no-leader', headers: { 'Retry-After': '1' },
    detail: 'No coordinator leads now (an election is in progress or etcd cannot be reached); nothing was done. Retry shortly.',
  });
}

/**
 * Where a request this coordinator must not serve goes: the same path at the leader, or nowhere
 * (503). The target is appended to the leader's origin, never resolved against it: resolving would
 * send `//elsewhere/x` to another host (an open redirect).
 */
export function redirectToLeader(target: string, view: LeadershipView): LeaderRedirect | HttpProblem {
  if (view.leaderUrl === undefined) return noLeader();
  return {
    location: `${new URL(view.leaderUrl).origin}${target.startsWith('/') ? target : '/'}`,
    body: { detail: `This coordinator is a follower; nothing was done. Send the request to the leader at ${view.leaderUrl}.`, leader_url: view.leaderUrl },
  };
}

/** Middleware: passes requests on only while this coordinator leads. */
export function leaderGate(leadership: Leadership): Middleware {
  return async function gate(ctx, next) {
    const view = leadership.view();
    if (view.role === 'leader') return next();
    if (answerLocally(ctx, leadership)) return;
    const refusal = redirectToLeader(ctx.originalUrl, view);
    if (refusal instanceof HttpProblem) throw refusal;
    ctx.status = 307;
    ctx.set({ Location: refusal.location, 'Cache-Control': 'no-store' });
    ctx.body = refusal.body;
  };
}

/** The app a follower serves: the request guard, then the gate (which answers everything). */
export function createFollowerApp(deps: {
  readonly leadership: Leadership;
  readonly http?: HttpOptions;
  readonly logError: (error: unknown, context?: Record<string, unknown>) => void;
}): Koa {
  const guard = createRequestGuard({ allowedHosts: deps.http?.allowedHosts ?? [], allowedOrigins: deps.http?.allowedOrigins ?? [] });
  const app = new Koa();
  app.use(problemMiddleware({ log: (error, request) => deps.logError(error, request) }));
  app.use(guard.middleware);
  app.use(leaderGate(deps.leadership));
  // Reached only in the instant this process became leader, before its own app took over.
  app.use(() => {
    throw new HttpProblem({ status: 503, slug: 'no-leader', detail: 'This coordinator is taking over as leader; retry shortly.', headers: { 'Retry-After': '1' } });
  });
  return app;
}

/** A follower's answer to a session handshake: the same 307 or 503, written on the raw socket. */
export function refuseUpgrade(leadership: Leadership, writeProblem: (socket: Duplex, problem: HttpProblem, path: string) => void) {
  return (req: IncomingMessage, socket: Duplex): void => {
    socket.on('error', () => socket.destroy());
    const target = req.url ?? '/';
    const refusal = redirectToLeader(target, leadership.view());
    if (refusal instanceof HttpProblem) return writeProblem(socket, refusal, target.split('?')[0] ?? target);
    if (!socket.writable) return void socket.destroy();
    const body = JSON.stringify(refusal.body);
    socket.end(`HTTP/1.1 307 Temporary Redirect\r\nLocation: ${refusal.location}\r\nCache-Control: no-store\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  };
}
