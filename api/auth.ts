/**
 * Authentication, in Redis's "protected mode" spirit: with `MESH_ADMIN_TOKEN` set, admin
 * operations need `Authorization: Bearer <token>`; without it they are open to loopback callers
 * only. Game servers authenticate with the per-server token issued at registration, of which only
 * a SHA-256 hash is kept, so a leaked store does not leak credentials.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import type { Context, Middleware } from 'koa';
import { forbidden, notFound, unauthorized } from './problem.ts';

/** Who made an authenticated request; stored in `ctx.state.principal`. */
export type Principal =
  | { readonly kind: 'admin'; readonly via: 'token' | 'loopback' }
  | { readonly kind: 'server'; readonly serverId: string };

/** Finds the stored token hash (hex SHA-256) of a server; undefined for an unknown server. */
export type TokenHashLookup = (serverId: string) => string | undefined;

/** Admin credentials. */
export interface AdminAuthOptions {
  /** `MESH_ADMIN_TOKEN`; absent or empty means protected mode (loopback callers only). */
  adminToken?: string | undefined;
}

/** Options of {@link serverAuth}. */
export interface ServerAuthOptions extends AdminAuthOptions {
  /** Also admit the admin (token, or loopback in protected mode): "serverBearer or admin" operations. */
  allowAdmin?: boolean;
}

/** Header in which a server names itself on operations whose path has no `{server_id}`. */
export const SERVER_ID_HEADER = 'X-Server-Id';

/** A fresh server token: 32 random bytes, base64url (43 characters). */
export const issueServerToken = (): string => randomBytes(32).toString('base64url');

/** The hash stored instead of a token: SHA-256, hex. */
export const hashToken = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');

/** Compares a presented token with a stored hash in constant time. */
export function tokenMatchesHash(token: string, storedHash: string): boolean {
  const presented = createHash('sha256').update(token, 'utf8').digest();
  const stored = Buffer.from(storedHash, 'hex');
  return stored.length === presented.length && timingSafeEqual(presented, stored);
}

/** The bearer token of a request, or undefined when there is no `Authorization: Bearer` header. */
export function bearerToken(ctx: Context): string | undefined {
  return bearerTokenOf(ctx.get('Authorization'));
}

/** The bearer token of an `Authorization` header value (what {@link bearerToken} reads). */
export function bearerTokenOf(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
  return match?.[1];
}

/**
 * True for loopback peers: 127.0.0.0/8, ::1, and IPv4-mapped 127.x (what a dual-stack socket
 * reports for an IPv4 loopback client). Anything unparseable is not loopback.
 */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const v4 = mapped ? mapped[1] : address;
  if (v4 !== undefined && isIPv4(v4)) return v4.startsWith('127.');
  return isIPv6(address) && /^(0{0,4}:){2,7}0{0,3}1$/.test(address.replace(/^::/, '0::'));
}

/**
 * Authenticates the admin or throws: 401 (with a challenge) without a bearer token, 403 with a
 * wrong one; in protected mode 403 for any caller that is not on loopback. The peer address is
 * the socket's, never `X-Forwarded-For`: a proxy in front turns every caller into the proxy.
 */
export function authenticateAdmin(ctx: Context, options: AdminAuthOptions): Principal {
  const { adminToken } = options;
  if (!adminToken) {
    if (isLoopbackAddress(ctx.req.socket.remoteAddress)) return { kind: 'admin', via: 'loopback' };
    throw forbidden('Admin operations are open only to loopback callers while MESH_ADMIN_TOKEN is unset; set MESH_ADMIN_TOKEN and send it as Authorization: Bearer.');
  }
  const token = bearerToken(ctx);
  if (token === undefined) throw unauthorized('This operation needs Authorization: Bearer with the admin token.', 'mesh-admin');
  if (!tokensEqual(token, adminToken)) throw forbidden('The bearer token is not the admin token.');
  return { kind: 'admin', via: 'token' };
}

/**
 * Authenticates a game server or throws, and returns its id. The server is the one named in the
 * path (`ctx.params.server_id`, so a server can act only as itself there) or, on region-scoped
 * paths, in the `X-Server-Id` header. 401 without a token or server id, 404 for an unknown
 * server (it should register again), 403 when the token is not that server's.
 */
export function authenticateServer(ctx: Context, lookup: TokenHashLookup): string {
  const serverId = claimedServerId(ctx);
  const token = bearerToken(ctx);
  if (token === undefined) throw unauthorized('This operation needs Authorization: Bearer with the server token issued at registration.', 'mesh-server');
  if (serverId === undefined) throw unauthorized(`Name the calling server in the ${SERVER_ID_HEADER} header.`, 'mesh-server');
  const stored = lookup(serverId);
  if (stored === undefined) throw notFound('server', serverId);
  if (!tokenMatchesHash(token, stored)) throw forbidden(`The bearer token is not valid for server '${serverId}'.`);
  return serverId;
}

/** Middleware form of {@link authenticateAdmin}; sets `ctx.state.principal`. */
export function adminAuth(options: AdminAuthOptions): Middleware {
  return async function requireAdmin(ctx, next) {
    ctx.state.principal = authenticateAdmin(ctx, options);
    await next();
  };
}

/**
 * Middleware form of {@link authenticateServer}; sets `ctx.state.principal`. With `allowAdmin`,
 * the admin token is accepted too, and in protected mode so is a loopback caller that sends no
 * token at all (a token that is sent must be valid: it is never ignored).
 */
export function serverAuth(lookup: TokenHashLookup, options: ServerAuthOptions = {}): Middleware {
  return async function requireServer(ctx, next) {
    ctx.state.principal = options.allowAdmin ? serverOrAdmin(ctx, lookup, options) : serverPrincipal(ctx, lookup);
    await next();
  };
}

/** The principal set by {@link adminAuth} or {@link serverAuth}; throws if neither ran. */
export function principalOf(ctx: Context): Principal {
  const principal = ctx.state.principal as Principal | undefined;
  if (!principal) throw new Error('no principal: mount adminAuth or serverAuth before this handler');
  return principal;
}

function serverPrincipal(ctx: Context, lookup: TokenHashLookup): Principal {
  return { kind: 'server', serverId: authenticateServer(ctx, lookup) };
}

function serverOrAdmin(ctx: Context, lookup: TokenHashLookup, options: AdminAuthOptions): Principal {
  const token = bearerToken(ctx);
  if (token !== undefined && options.adminToken && tokensEqual(token, options.adminToken)) return { kind: 'admin', via: 'token' };
  if (token === undefined && !options.adminToken && isLoopbackAddress(ctx.req.socket.remoteAddress)) {
    return { kind: 'admin', via: 'loopback' };
  }
  return serverPrincipal(ctx, lookup);
}

function claimedServerId(ctx: Context): string | undefined {
  const fromPath = (ctx as Context & { params?: Record<string, string | undefined> }).params?.server_id;
  if (fromPath) return fromPath;
  const fromHeader = ctx.get(SERVER_ID_HEADER);
  return fromHeader === '' ? undefined : fromHeader;
}

/** Constant-time equality of two secrets of any length (both are hashed to 32 bytes first). */
function tokensEqual(a: string, b: string): boolean {
  return tokenMatchesHash(a, hashToken(b));
}
