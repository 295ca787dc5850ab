/**
 * Every error the service answers is an `application/problem+json` document (RFC 9457) made
 * here, by one middleware. Handlers throw {@link HttpProblem}s (or return core rejections mapped
 * with {@link fromRejection}); other HTTP errors and unexpected errors are translated, and a
 * 5xx never carries the message or stack of the error behind it.
 */
import { STATUS_CODES } from 'node:http';
import type { Context, Middleware } from 'koa';
import type { Rejection } from '../mesh/base/types.ts';
import type { FieldError } from './openapi-errors.ts';

/** Prefix of every problem `type` URI this service defines. */
export const PROBLEM_TYPE_BASE = 'https://mesh-coordinator.dev/problems/';
/** Media type of every error response. */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** The JSON body of an error response. */
export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  errors?: FieldError[];
  retry_after_ms?: number;
  [extension: string]: unknown;
}

/** What a problem is made of; `slug` becomes `PROBLEM_TYPE_BASE + slug`. */
export interface ProblemInit {
  status: number;
  detail: string;
  /** Short kebab-case name of the problem (`buffer-full`); without it the type is `about:blank`. */
  slug?: string;
  /** Defaults to the HTTP reason phrase of `status`. */
  title?: string;
  /** Extension members, already snake_case (`retry_after_ms`, `primary`, `errors`). */
  extra?: Record<string, unknown>;
  /** Response headers that belong to the problem (`Retry-After`, `WWW-Authenticate`, `Allow`). */
  headers?: Record<string, string>;
}

/** An error that is answered as a problem document with its own status. */
export class HttpProblem extends Error {
  readonly status: number;
  readonly title: string;
  readonly detail: string;
  readonly type: string;
  readonly extra: Readonly<Record<string, unknown>>;
  readonly headers: Readonly<Record<string, string>>;
  /** Tells Koa's fallback handler the message is meant for the client. */
  readonly expose = true;

  constructor(init: ProblemInit) {
    super(init.detail);
    this.name = 'HttpProblem';
    this.status = init.status;
    this.title = init.title ?? STATUS_CODES[init.status] ?? 'Error';
    this.detail = init.detail;
    this.type = init.slug ? PROBLEM_TYPE_BASE + init.slug : 'about:blank';
    this.extra = init.extra ?? {};
    this.headers = init.headers ?? {};
  }

  /** The body to send; `instance` is the request path. */
  toDocument(instance?: string): ProblemDocument {
    const head = { type: this.type, title: this.title, status: this.status, detail: this.detail };
    return { ...this.extra, ...head, ...(instance === undefined ? {} : { instance }) };
  }
}

/** 400: malformed or invalid input; `errors` lists each offending field. */
export const badRequest = (detail: string, errors?: FieldError[]): HttpProblem =>
  new HttpProblem({ status: 400, detail, slug: errors ? 'validation-failed' : 'bad-request', extra: errors ? { errors } : {} });

/** 400 for schema validation failures, with the standard detail sentence. */
export const validationFailed = (errors: FieldError[]): HttpProblem =>
  badRequest('The request does not match the schema.', errors);

/** 401: no usable credentials; the challenge tells the client which scheme to use. */
export const unauthorized = (detail: string, realm = 'mesh'): HttpProblem =>
  new HttpProblem({ status: 401, detail, slug: 'unauthorized', headers: { 'WWW-Authenticate': `Bearer realm="${realm}"` } });

/** 403: credentials understood but not good enough for this operation. */
export const forbidden = (detail: string): HttpProblem => new HttpProblem({ status: 403, detail, slug: 'forbidden' });

/** 404 for an unknown id: `notFound('region', 'castle-south')`. */
export const notFound = (what: string, id: string): HttpProblem =>
  new HttpProblem({ status: 404, detail: `No ${what} with id '${id}'.`, slug: 'not-found' });

/** 409: the request conflicts with the current state; `extra` carries the facts (primary, epoch). */
export const conflict = (detail: string, extra: Record<string, unknown> = {}, slug = 'conflict'): HttpProblem =>
  new HttpProblem({ status: 409, detail, slug, extra });

/** 413: the body exceeds the operation's limit. */
export const payloadTooLarge = (limitBytes?: number): HttpProblem => new HttpProblem({
  status: 413, slug: 'payload-too-large',
  detail: limitBytes === undefined ? 'The request body is too large.' : `The request body exceeds the limit of ${limitBytes} bytes.`,
});

/** 415: the body is not JSON. */
export const unsupportedMediaType = (got?: string): HttpProblem => new HttpProblem({
  status: 415, slug: 'unsupported-media-type',
  detail: `Send the body as application/json${got ? ` (got ${got})` : ''}.`,
});

/** 429 with `retry_after_ms` and a `Retry-After` header in whole seconds, rounded up. */
export function tooManyRequests(detail: string, retryAfterMs: number, slug = 'too-many-requests'): HttpProblem {
  const ms = Math.max(0, Math.ceil(retryAfterMs));
  return new HttpProblem({ status: 429, detail, slug, extra: { retry_after_ms: ms }, headers: { 'Retry-After': retryAfterSeconds(ms) } });
}

/** `Retry-After` value for a delay in milliseconds: whole seconds, rounded up, at least 1. */
export const retryAfterSeconds = (ms: number): string => String(Math.max(1, Math.ceil(ms / 1000)));

/**
 * HTTP status of each core rejection code. Codes not listed fall back by shape
 * (`unknown_*` and `*_not_found` 404, `invalid_*` 400, `*_too_large` 413), then to 409: a
 * rejection is the core saying "not in this state", which is what 409 means.
 */
export const REJECTION_STATUS: Readonly<Record<string, number>> = Object.freeze({
  invalid: 400, invalid_argument: 400, invalid_request: 400, validation_failed: 400,
  unauthorized: 401, forbidden: 403,
  not_found: 404, not_enabled: 404, no_target: 404,
  conflict: 409, action_conflict: 409, region_healthy: 409, not_primary: 409, stale_epoch: 409, already_exists: 409,
  test_mesh_exists: 409, server_left: 409, server_draining: 409,
  too_large: 413, payload_too_large: 413,
  buffer_full: 429, rate_limited: 429, too_many_requests: 429,
});

/** Status for a rejection code: the table, then the naming fallbacks, then 409. */
export function rejectionStatus(code: string, overrides: Readonly<Record<string, number>> = {}): number {
  const listed = overrides[code] ?? REJECTION_STATUS[code];
  if (listed !== undefined) return listed;
  if (code.startsWith('unknown_') || code.endsWith('_not_found')) return 404;
  if (code.startsWith('invalid_')) return 400;
  if (code.endsWith('_too_large')) return 413;
  return 409;
}

/**
 * Maps a core {@link Rejection} to a problem: status from {@link rejectionStatus}, slug from the
 * code (`buffer_full` -> `buffer-full`), `data` as extension members with snake_case keys,
 * `retryAfterMs` as `retry_after_ms` (and `Retry-After` on a 429).
 */
export function fromRejection(rejection: Rejection, overrides?: Readonly<Record<string, number>>): HttpProblem {
  const status = rejectionStatus(rejection.code, overrides);
  const slug = rejection.code.replace(/_/g, '-');
  const data = (rejection.data ? snakeCaseKeys(rejection.data) : {}) as Record<string, unknown>;
  if (status === 429) {
    const problem = tooManyRequests(rejection.detail, rejection.retryAfterMs ?? 1000, slug);
    return new HttpProblem({ status, detail: problem.detail, slug, extra: { ...data, ...problem.extra }, headers: { ...problem.headers } });
  }
  const extra = rejection.retryAfterMs === undefined ? data : { ...data, retry_after_ms: Math.ceil(rejection.retryAfterMs) };
  return new HttpProblem({ status, detail: rejection.detail, slug, extra });
}

/**
 * Deep copy with object keys in snake_case (`serverId` -> `server_id`); a trailing `AtMs`
 * becomes `_at`, because every `_at` field of the API is in milliseconds.
 */
export function snakeCaseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(snakeCaseKeys);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(Object.entries(value).map(([key, v]) => [toSnakeCase(key), snakeCaseKeys(v)]));
}

function toSnakeCase(key: string): string {
  if (key === 'atMs') return 'at';
  return key.replace(/AtMs$/, 'At').replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
}

/** Options of {@link problemMiddleware}. */
export interface ProblemMiddlewareOptions {
  /** Receives every unexpected error (answered 500), with the request it broke. */
  log: (error: unknown, request: { method: string; path: string }) => void;
  /**
   * Receives what is the client's doing, not the server's: a client that went away mid-request.
   * Logged at debug level; absent, such errors are dropped.
   */
  debug?: (error: unknown, request: { method: string; path: string }) => void;
}

/** True for errors that mean the client left (aborted its body, reset the connection). */
export function isClientGone(error: unknown): boolean {
  if (error instanceof Error && error.name === 'ClientGone') return true;
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  // HPE_INVALID_EOF_STATE: the connection ended in the middle of a request (Node's HTTP parser).
  return code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED' || code === 'ERR_STREAM_PREMATURE_CLOSE' ||
    code === 'HPE_INVALID_EOF_STATE';
}

/**
 * The one error middleware: mount it first. Turns thrown problems, HTTP errors from Koa or the
 * router, unexpected errors, and responses left without a body (404 when nothing matched, 405 from
 * allowedMethods) into problem documents. A client that left is logged at debug level only.
 */
export function problemMiddleware(options: ProblemMiddlewareOptions): Middleware {
  return async function problems(ctx, next) {
    try {
      await next();
    } catch (error) {
      const request = { method: ctx.method, path: ctx.path };
      if (isClientGone(error)) options.debug?.(error, request);
      if (ctx.headerSent || !ctx.writable) {
        if (!isClientGone(error)) options.log(error, request);
        return;
      }
      send(ctx, problemOf(error, request, options), true);
      return;
    }
    if (ctx.status >= 400 && ctx.body == null && !ctx.headerSent) send(ctx, emptyStatusProblem(ctx), false);
  };
}

function send(ctx: Context, problem: HttpProblem, clearHeaders: boolean): void {
  // Headers set by a handler that then failed (Location, ETag) must not leak into the error,
  // as Koa's own error handler also ensures.
  if (clearHeaders) for (const name of ctx.res.getHeaderNames()) ctx.res.removeHeader(name);
  const headers = problemHeaders(problem);
  // A Retry-After already on the response (a handler's, when headers are kept) wins over the default.
  if (!('Retry-After' in problem.headers) && ctx.response.get('Retry-After')) delete headers['Retry-After'];
  ctx.set(headers);
  ctx.status = problem.status;
  ctx.type = PROBLEM_CONTENT_TYPE;
  ctx.body = problem.toDocument(ctx.path);
}

/**
 * The headers a problem is answered with (besides `Content-Type`): its own, plus a `Retry-After`
 * on a 429 that lacks one. Shared by the middleware and the session handshake.
 */
export function problemHeaders(problem: HttpProblem): Record<string, string> {
  const headers: Record<string, string> = { ...problem.headers };
  if (problem.status === 429 && !Object.keys(headers).some((name) => name.toLowerCase() === 'retry-after')) {
    const ms = problem.extra.retry_after_ms;
    headers['Retry-After'] = retryAfterSeconds(typeof ms === 'number' ? ms : 1000);
  }
  return headers;
}

function emptyStatusProblem(ctx: Context): HttpProblem {
  if (ctx.status === 404) return new HttpProblem({ status: 404, slug: 'not-found', detail: `No operation ${ctx.method} ${ctx.path}.` });
  if (ctx.status === 405) {
    return new HttpProblem({ status: 405, slug: 'method-not-allowed', detail: `${ctx.method} is not allowed on ${ctx.path}.`, headers: pickHeader(ctx, 'Allow') });
  }
  return new HttpProblem({ status: ctx.status, detail: STATUS_CODES[ctx.status] ?? 'Error' });
}

function pickHeader(ctx: Context, name: string): Record<string, string> {
  const value = ctx.response.get(name);
  return value ? { [name]: value } : {};
}

/** Error properties set by http-errors (Koa's `ctx.throw`, the router). */
interface ErrorFacts { status?: unknown; expose?: unknown; message?: unknown; headers?: unknown }

/**
 * The problem answered for a thrown error (the middleware's one mapping, also used by the session
 * handshake): problems as they are, exposed 4xx kept, anything else logged and answered 500
 * without its message.
 */
export function problemOf(error: unknown, request: { method: string; path: string }, options: ProblemMiddlewareOptions): HttpProblem {
  if (error instanceof HttpProblem) return error;
  const facts = (typeof error === 'object' && error !== null ? error : {}) as ErrorFacts;
  const status = typeof facts.status === 'number' ? facts.status : 500;
  if (status >= 400 && status < 500 && facts.expose === true) {
    const headers = typeof facts.headers === 'object' && facts.headers !== null ? facts.headers as Record<string, string> : {};
    return new HttpProblem({ status, detail: String(facts.message), slug: slugOf(status), headers });
  }
  options.log(error, request);
  const safeStatus = status >= 500 && status < 600 && STATUS_CODES[status] ? status : 500;
  return new HttpProblem({ status: safeStatus, detail: 'An unexpected error occurred; it has been logged.' });
}

function slugOf(status: number): string | undefined {
  const reason = STATUS_CODES[status];
  return reason ? reason.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') : undefined;
}
