/**
 * JSON request bodies: `application/json` only (charset, if given, utf-8), bounded in size (per
 * operation: `x-max-body-bytes` in openapi.yaml, else 16 KiB, counted both as sent and after
 * decompression), in time (the whole body must arrive within `timeoutMs`) and in shape (see
 * api/json-text.ts). `Content-Encoding` may be identity, gzip, deflate or br. Every refusal is a
 * problem thrown to `problemMiddleware`; a client that goes away mid-body is a {@link ClientGone},
 * which is logged at debug level, never as a server error.
 */
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import type { IncomingMessage } from 'node:http';
import type { Context, Middleware } from 'koa';
import { parseJsonBody } from './json-text.ts';
import { DEFAULT_MAX_BODY_BYTES } from './openapi.ts';
import { badRequest, HttpProblem, payloadTooLarge, unsupportedMediaType } from './problem.ts';

/** Options of {@link jsonBody}. */
export interface JsonBodyOptions {
  /**
   * Largest body accepted, in bytes, as sent and after decompression, or a function choosing it per
   * request. Default 16 KiB.
   */
  limitBytes?: number | ((ctx: Context) => number);
  /** Longest time the body may take to arrive once the headers are in (10 s). */
  timeoutMs?: number;
}

/** Default of {@link JsonBodyOptions.timeoutMs}. */
export const DEFAULT_BODY_TIMEOUT_MS = 10_000;

/** Methods whose body is read; a body on any other method is ignored, as HTTP allows. */
const PARSED_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH']);

/** `application/json`, optionally with `charset=utf-8`: the only request media type of the API. */
const JSON_MEDIA_TYPE = /^application\/json[ \t]*(?:;[ \t]*charset=(?:utf-8|"utf-8")[ \t]*)?$/i;

type Decoder = (data: Buffer, options: zlib.ZlibOptions & zlib.BrotliOptions) => Promise<Buffer>;
const decoders: Readonly<Record<string, Decoder>> = {
  gzip: promisify(zlib.gunzip), 'x-gzip': promisify(zlib.gunzip),
  deflate: promisify(zlib.inflate), br: promisify(zlib.brotliDecompress),
};

/** The client closed the connection before its body was complete: nothing to answer, nobody to blame. */
export class ClientGone extends Error {
  readonly status = 400;
  readonly expose = true;
  constructor() {
    super('The request was aborted before its body was complete.');
    this.name = 'ClientGone';
  }
}

/**
 * Body-parsing middleware. Sets `ctx.request.body` to the parsed JSON, or to `{}` when the request
 * has no body. A `Content-Type` other than JSON is refused (415) whether or not a body follows, so
 * that a browser's form or `text/plain` post never reaches an operation.
 */
export function jsonBody(options: JsonBodyOptions = {}): Middleware {
  const { limitBytes = DEFAULT_MAX_BODY_BYTES, timeoutMs = DEFAULT_BODY_TIMEOUT_MS } = options;
  return async function parseJson(ctx, next) {
    if (!PARSED_METHODS.has(ctx.method)) return next();
    const type = ctx.get('Content-Type');
    if ((type !== '' || hasBody(ctx)) && !JSON_MEDIA_TYPE.test(type)) throw unsupportedMediaType(type || 'no Content-Type');
    const decode = decoderFor(ctx.get('Content-Encoding'));
    if (!hasBody(ctx)) {
      (ctx.request as { body?: unknown }).body = {};
      return next();
    }
    const limit = typeof limitBytes === 'function' ? limitBytes(ctx) : limitBytes;
    const declared = Number(ctx.get('Content-Length'));
    if (Number.isFinite(declared) && declared > limit) throw closing(ctx, payloadTooLarge(limit));
    const sent = await readBody(ctx, limit, timeoutMs);
    const raw = decode ? await decompress(decode, sent, limit) : sent;
    (ctx.request as { body?: unknown }).body = parseJsonBody(raw);
    return next();
  };
}

/** A request has a body when it is chunked or declares a non-zero length (RFC 9110 §6.4.1). */
export function hasBody(ctx: Context): boolean {
  if (ctx.get('Transfer-Encoding') !== '') return true;
  const length = Number(ctx.get('Content-Length'));
  return Number.isFinite(length) && length > 0;
}

/** The decoder of a `Content-Encoding`, undefined for none; 415 for a coding this service does not speak. */
function decoderFor(header: string): Decoder | undefined {
  const coding = header.trim().toLowerCase();
  if (coding === '' || coding === 'identity') return undefined;
  const decoder = Object.hasOwn(decoders, coding) ? decoders[coding] : undefined;
  if (decoder) return decoder;
  throw new HttpProblem({
    status: 415, slug: 'unsupported-content-encoding',
    detail: `Content-Encoding ${JSON.stringify(header)} is not supported: send identity, gzip, deflate or br (one coding).`,
  });
}

async function decompress(decode: Decoder, data: Buffer, limitBytes: number): Promise<Buffer> {
  try {
    return await decode(data, { maxOutputLength: limitBytes });
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') throw payloadTooLarge(limitBytes);
    throw badRequest('The body does not decode with its Content-Encoding (corrupt or not compressed).');
  }
}

/** 408: the body did not arrive in time. */
export const requestTimeout = (timeoutMs: number): HttpProblem => new HttpProblem({
  status: 408, slug: 'request-timeout',
  detail: `The request body did not arrive within ${timeoutMs} ms; send it at once after the headers.`,
});

/** Marks a refusal whose body was left unread: the connection cannot be reused. */
function closing(ctx: Context, problem: HttpProblem): HttpProblem {
  ctx.set('Connection', 'close');
  return problem;
}

/** Reads the raw body, at most `limitBytes`, within `timeoutMs`. */
function readBody(ctx: Context, limitBytes: number, timeoutMs: number): Promise<Buffer> {
  const req: IncomingMessage = ctx.req;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const finish = (error: Error | undefined): void => {
      clearTimeout(timer);
      req.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      if (error) {
        // Stop taking bytes; whatever else arrives is discarded when the connection closes.
        req.pause();
        reject(error);
      } else {
        resolve(Buffer.concat(chunks, received));
      }
    };
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received > limitBytes) finish(closing(ctx, payloadTooLarge(limitBytes)));
      else chunks.push(chunk);
    };
    const onEnd = (): void => finish(undefined);
    const onError = (): void => finish(new ClientGone());
    const onClose = (): void => { if (!req.complete) finish(new ClientGone()); };
    const timer = setTimeout(() => finish(closing(ctx, requestTimeout(timeoutMs))), timeoutMs);
    req.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
  });
}
