/**
 * What a browser must not be able to do, checked before any route: requests addressed to a `Host`
 * this service does not answer to (DNS rebinding makes a hostile page's own name resolve to
 * 127.0.0.1) are refused with 421, state-changing requests from another origin with 403, and CORS
 * preflights unless the origin is allowed. Loopback names are always allowed hosts; in protected
 * mode (no admin token) that is what keeps a web page on the operator's machine from driving it.
 */
import type { Middleware } from 'koa';
import { isIPv4 } from 'node:net';
import { HttpProblem } from './problem.ts';

/** Options of {@link createRequestGuard}. */
export interface RequestGuardOptions {
  /**
   * Host names (no port) requests may be addressed to besides the loopback names; `'any'` turns
   * the check off (a wildcard bind with a token and no list: every name of the machine is valid).
   */
  readonly allowedHosts: readonly string[] | 'any';
  /** Origins (`scheme://host[:port]`) whose pages may call every operation, with CORS. */
  readonly allowedOrigins: readonly string[];
}

/** The guard: a Koa middleware, and the same rules for a WebSocket handshake (which skips Koa). */
export interface RequestGuard {
  readonly middleware: Middleware;
  /** True for a `Host` header this service answers to. */
  hostAllowed(host: string | undefined): boolean;
  /**
   * The refusal of a session handshake, or undefined: the Host rule, and the origin rule of a
   * state-changing request, since a session carries heartbeats (cross-site WebSocket hijacking
   * rides on a browser's `Origin`).
   */
  upgradeRefusal(headers: { host?: string; origin?: string }): HttpProblem | undefined;
}

const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);
const CORS_HEADERS = 'Content-Type, Authorization, X-Server-Id, Last-Event-ID';

/** Builds the guard. */
export function createRequestGuard(options: RequestGuardOptions): RequestGuard {
  const hosts = options.allowedHosts === 'any' ? 'any' : new Set(options.allowedHosts.map(normalHost));
  const origins = new Set(options.allowedOrigins.map((o) => o.toLowerCase()));
  const hostAllowed = (host: string | undefined): boolean => {
    if (hosts === 'any') return true;
    const name = host === undefined ? '' : hostName(host);
    return name !== '' && (isLoopbackName(name) || hosts.has(name));
  };
  const foreignOrigin = (origin: string, host: string): boolean =>
    origin !== '' && !origins.has(origin) && origin !== `http://${host.toLowerCase()}`;
  const middleware: Middleware = async function guard(ctx, next) {
    const host = ctx.get('Host');
    if (!hostAllowed(host)) throw misdirected(host);
    const origin = ctx.get('Origin').toLowerCase();
    const allowedOrigin = origin !== '' && origins.has(origin);
    if (ctx.method === 'OPTIONS' && ctx.get('Access-Control-Request-Method') !== '') {
      if (!allowedOrigin) throw crossOrigin(origin, 'CORS preflight');
      ctx.set({
        'Access-Control-Allow-Origin': ctx.get('Origin'), Vary: 'Origin', 'Access-Control-Max-Age': '600',
        'Access-Control-Allow-Methods': 'GET, POST, PUT, PATCH', 'Access-Control-Allow-Headers': CORS_HEADERS,
      });
      ctx.status = 204;
      return;
    }
    if (!SAFE_METHODS.has(ctx.method) && foreignOrigin(origin, host)) throw crossOrigin(origin, `${ctx.method} request`);
    if (allowedOrigin) ctx.set({ 'Access-Control-Allow-Origin': ctx.get('Origin'), Vary: 'Origin' });
    await next();
  };
  const upgradeRefusal = (headers: { host?: string; origin?: string }): HttpProblem | undefined => {
    if (!hostAllowed(headers.host)) return misdirected(headers.host ?? '');
    const origin = (headers.origin ?? '').toLowerCase();
    return foreignOrigin(origin, headers.host ?? '') ? crossOrigin(origin, 'session handshake') : undefined;
  };
  return { middleware, hostAllowed, upgradeRefusal };
}

function misdirected(host: string): HttpProblem {
  return new HttpProblem({
    status: 421, slug: 'misdirected-request',
    detail: `This service does not answer to Host ${JSON.stringify(host)}: use a loopback name or a host in MESH_ALLOWED_HOSTS.`,
  });
}

function crossOrigin(origin: string, what: string): HttpProblem {
  return new HttpProblem({
    status: 403, slug: 'cross-origin-refused',
    detail: `A ${what} from origin ${JSON.stringify(origin || 'none')} is refused: only same-origin requests and origins in MESH_ALLOWED_ORIGINS may change state.`,
  });
}

/** The name part of a `Host` header (`[::1]:8080` -> `::1`, `Example.com.:80` -> `example.com`). */
export function hostName(host: string): string {
  const trimmed = host.trim().toLowerCase();
  const bracketed = /^\[([^\]]*)\](?::\d+)?$/.exec(trimmed);
  if (bracketed) return bracketed[1] ?? '';
  return normalHost(trimmed.replace(/:\d+$/, ''));
}

function normalHost(name: string): string {
  return name.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
}

function isLoopbackName(name: string): boolean {
  return name === 'localhost' || name === '::1' || (isIPv4(name) && name.startsWith('127.'));
}
