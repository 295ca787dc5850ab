/**
 * JSON request bodies: only `application/json` (or `application/*+json`), strict JSON (an object
 * or an array at the top), bounded in size. The limit is per operation because heartbeats and
 * snapshots need more room than the 16 KiB everything else gets (`x-max-body-bytes` in
 * openapi.yaml); errors surface as problems through `problemMiddleware`.
 */
import { bodyParser } from '@koa/bodyparser';
import type { Context, Middleware } from 'koa';
import { DEFAULT_MAX_BODY_BYTES } from './openapi.ts';
import { unsupportedMediaType } from './problem.ts';

/** Options of {@link jsonBody}. */
export interface JsonBodyOptions {
  /**
   * Largest body accepted, in bytes (after decompression), or a function choosing it per request
   * (for one app-wide parser: look the operation up by path). Default 16 KiB.
   */
  limitBytes?: number | ((ctx: Context) => number);
}

/** Methods whose body is read; a body on any other method is ignored, as HTTP allows. */
const PARSED_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH']);

/**
 * Body-parsing middleware. Sets `ctx.request.body` to the parsed JSON, or to `{}` when the request
 * has no body. Throws 415 for a body that is not JSON; the parser throws 400 for malformed JSON
 * and 413 beyond the limit (both mapped by `problemMiddleware`).
 */
export function jsonBody(options: JsonBodyOptions = {}): Middleware {
  const { limitBytes = DEFAULT_MAX_BODY_BYTES } = options;
  const parsers = new Map<number, Middleware>();
  const parserFor = (limit: number): Middleware => {
    let parser = parsers.get(limit);
    if (!parser) {
      parser = bodyParser({ enableTypes: ['json'], jsonLimit: limit, jsonStrict: true, encoding: 'utf-8' }) as Middleware;
      parsers.set(limit, parser);
    }
    return parser;
  };
  return async function parseJsonBody(ctx, next) {
    if (!PARSED_METHODS.has(ctx.method)) return next();
    if (hasBody(ctx) && !ctx.request.is('application/json', '+json')) {
      throw unsupportedMediaType(ctx.get('Content-Type') || 'no Content-Type');
    }
    const limit = typeof limitBytes === 'function' ? limitBytes(ctx) : limitBytes;
    return parserFor(limit)(ctx, next);
  };
}

/** A request has a body when it is chunked or declares a non-zero length (RFC 9110 §6.4.1). */
export function hasBody(ctx: Context): boolean {
  if (ctx.get('Transfer-Encoding') !== '') return true;
  const length = Number(ctx.get('Content-Length'));
  return Number.isFinite(length) && length > 0;
}
