/**
 * Heartbeats in front of Koa. The heartbeat is the hot path (every server, every interval), and
 * Koa's context, router and body parser cost more than the core does. `heartbeatFastPath(kit)`
 * returns a `(req, res) => boolean` that the app's `callback()` tries first. It takes a request
 * only when the request line and headers alone show that it would answer exactly as the Koa route
 * (a plain `POST` to the exact heartbeat path, an allowed `Host` and no `Origin`, no content coding, a JSON body of a plain length within the limit,
 * valid path parameters and a valid bearer token for that server), and returns false before
 * reading a byte of the body otherwise, so that Koa sees the request untouched. It then parses the
 * body with the Koa path's parser (`parseJsonBody`, api/json-text.ts) and validates it as the route does and calls the same `applyHeartbeat`
 * (api/routes/servers.ts); every error goes through the problem middleware's own mapping, so there
 * is one error path. Answers are written in batches, once per event-loop iteration (`ReplyBatch`).
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { bearerTokenOf, VerifiedTokens } from './auth.ts';
import { parseJsonBody } from './json-text.ts';
import { DEFAULT_BODY_TIMEOUT_MS, requestTimeout } from './body.ts';
import { HttpProblem, PROBLEM_CONTENT_TYPE, problemHeaders, problemOf, validationFailed } from './problem.ts';
import type { OpenApiDocument } from './openapi.ts';
import type { RouteKit } from './route-kit.ts';
import { applyHeartbeat, type HeartbeatBody } from './routes/servers.ts';

/** Answers the request and returns true, or returns false without touching it. */
export type FastPath = (req: IncomingMessage, res: ServerResponse) => boolean;

const OPERATION_ID = 'sendHeartbeat';
const PATH = /^\/mesh\/servers\/([A-Za-z0-9._~-]+)\/heartbeat$/;
const JSON_TYPE = /^application\/json[ \t]*(?:;[ \t]*charset=(?:utf-8|"utf-8")[ \t]*)?$/i;
const DIGITS = /^[0-9]{1,9}$/;
const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/**
 * Builds the fast path over the same kit the routers use. `hostAllowed` is the request guard's Host
 * check (api/request-guard.ts): a foreign Host, like any `Origin`, is left to Koa, which refuses it.
 */
export function heartbeatFastPath(kit: RouteKit, hostAllowed: (host: string | undefined) => boolean): FastPath {
  const { contract, host, deps } = kit;
  const info = contract.operations.get(OPERATION_ID);
  const securedByServerTokenOnly = info !== undefined && info.security.length === 1 &&
    info.security[0]!.length === 1 && info.security[0]![0] === 'serverBearer';
  // Anything but the documented shape (a server-token-only POST on this path) stays with Koa.
  if (!info || info.method !== 'POST' || info.path !== '/mesh/servers/{server_id}/heartbeat' || !securedByServerTokenOnly) {
    return () => false;
  }
  const limit = info.maxBodyBytes;
  const bodyTimeoutMs = deps.http?.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS;
  const tokens = new VerifiedTokens();
  const replies = new ReplyBatch((error) => deps.logError(error, { method: 'POST', path: info.path }));
  // When the path's server_id is the operation's only parameter, the parameter check depends on
  // the id alone: an id that passed it passes again, so it is checked once per server. (Bounded
  // like the tokens; ids get here only with a valid token, so they are registered servers.)
  const checkedIds = onlyServerIdParameter(contract.document, info.path) ? new Map<string, string>() : null;
  const log = { log: (error: unknown, request: { method: string; path: string }) => deps.logError(error, request) };

  /** The path parameter as the contract's validator gives it back, or undefined when it fails. */
  function checkServerId(serverIdParam: string, headers: IncomingMessage['headers']): string | undefined {
    const known = checkedIds?.get(serverIdParam);
    if (known !== undefined) return known;
    const params = contract.validateParams(OPERATION_ID, { path: { server_id: serverIdParam }, query: {}, headers });
    if (!params.ok) return undefined;
    const serverId = params.value.path.server_id as string;
    if (checkedIds !== null) {
      if (checkedIds.size >= 100_000) checkedIds.clear();
      checkedIds.set(serverIdParam, serverId);
    }
    return serverId;
  }

  return function fastHeartbeat(req, res) {
    if (req.method !== 'POST') return false;
    const url = req.url;
    if (url === undefined) return false;
    const match = PATH.exec(url);
    if (!match) return false;
    const headers = req.headers;
    if (headers.origin !== undefined || !hostAllowed(headers.host)) return false;
    const type = headers['content-type'];
    if (type === undefined || !JSON_TYPE.test(type)) return false;
    if (headers['transfer-encoding'] !== undefined || headers['content-encoding'] !== undefined) return false;
    const lengthHeader = headers['content-length'];
    if (lengthHeader === undefined || !DIGITS.test(lengthHeader)) return false;
    const length = Number(lengthHeader);
    if (length < 1 || length > limit) return false;
    const token = bearerTokenOf(headers.authorization);
    if (token === undefined) return false;
    const serverIdParam = match[1]!;
    const stored = host.coordinator.serverRecord(serverIdParam as never)?.credentialHash ?? undefined;
    if (stored === undefined || !tokens.matches(token, stored)) return false;
    const checkedServerId = checkServerId(serverIdParam, headers);
    if (checkedServerId === undefined) return false;

    // Taken: from here on this request is answered here, by the body timeout at the latest.
    const chunks: Buffer[] = [];
    let received = 0;
    let failed = false;
    const timer = setTimeout(() => {
      failed = true;
      answerProblem(res, url, requestTimeout(bodyTimeoutMs), true);
    }, bodyTimeoutMs);
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      received += chunk.length;
      if (received > limit) {
        // Cannot happen with a Content-Length the parser enforces; kept as the limit's guard.
        failed = true;
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', () => {
      failed = true;
      clearTimeout(timer);
    });
    req.on('end', () => {
      clearTimeout(timer);
      if (failed) return;
      const raw = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received);
      answer(req, res, url, checkedServerId, raw);
    });
    return true;
  };

  function answer(req: IncomingMessage, res: ServerResponse, path: string, serverIdParam: string, raw: Buffer): void {
    const status = 200;
    const contentType = JSON_CONTENT_TYPE;
    let payload: string;
    try {
      const body = parseJsonBody(raw);
      const checked = contract.validateRequestBody(OPERATION_ID, body);
      if (!checked.ok) throw validationFailed(checked.errors);
      payload = JSON.stringify(applyHeartbeat(host, serverIdParam, checked.value as HeartbeatBody));
    } catch (error) {
      answerProblem(res, path, problemOf(error, { method: req.method ?? 'POST', path }, log), false);
      return;
    }
    replies.add(res, status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(payload) }, payload);
  }

  /** Queues a problem answer; `close` for a body left unread, whose connection cannot be reused. */
  function answerProblem(res: ServerResponse, path: string, problem: HttpProblem, close: boolean): void {
    const payload = JSON.stringify(problem.toDocument(path));
    const headers = { ...problemHeaders(problem), 'Content-Type': PROBLEM_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(payload), ...(close ? { Connection: 'close' } : {}) };
    replies.add(res, problem.status, headers, payload);
  }
}

/**
 * Answers written together once per event-loop iteration. A heartbeat is applied as soon as its
 * body is read; its answer is queued and every queued answer is written in the loop's check phase
 * (`setImmediate`), after the poll phase has read every connection that had data. Redis writes its
 * replies the same way (`handleClientsWithPendingWrites`, before the event loop sleeps): one write
 * per connection and iteration instead of one per answer, a large share of a heartbeat's cost. An
 * answer waits at most for the rest of that iteration.
 */
export class ReplyBatch {
  private queued: { res: ServerResponse; status: number; headers: OutgoingHttpHeaders; body: string }[] = [];

  /** @param onError told about an answer that could not be written (a bug: the answers are ours). */
  constructor(private readonly onError: (error: unknown) => void = () => {}) {}

  /** Queues an answer; the first one queued in an iteration schedules the write of all of them. */
  add(res: ServerResponse, status: number, headers: OutgoingHttpHeaders, body: string): void {
    if (this.queued.length === 0) setImmediate(() => this.writeAll());
    this.queued.push({ res, status, headers, body });
  }

  /**
   * Writes every queued answer, in the order they were queued. A closed connection is skipped; an
   * answer that cannot be written closes its connection and does not hold up the others.
   */
  writeAll(): void {
    const batch = this.queued;
    this.queued = [];
    for (const { res, status, headers, body } of batch) {
      if (res.writableEnded || res.destroyed) continue;
      try {
        res.writeHead(status, headers);
        res.end(body);
      } catch (error) {
        res.destroy();
        this.onError(error);
      }
    }
  }
}

/**
 * True when the operation at `path` (POST) has exactly one parameter, the path's `server_id`
 * (inline or through a `$ref` to `#/components/parameters/...`).
 */
export function onlyServerIdParameter(document: OpenApiDocument, path: string): boolean {
  const pathItem = document.paths[path] as { parameters?: unknown[]; post?: { parameters?: unknown[] } } | undefined;
  const parameters = [...(pathItem?.parameters ?? []), ...(pathItem?.post?.parameters ?? [])];
  if (parameters.length !== 1) return false;
  let parameter = parameters[0] as { $ref?: string; in?: string; name?: string };
  const prefix = '#/components/parameters/';
  if (parameter.$ref !== undefined) {
    if (!parameter.$ref.startsWith(prefix)) return false;
    parameter = (document.components?.parameters?.[parameter.$ref.slice(prefix.length)] ?? {}) as typeof parameter;
  }
  return parameter.in === 'path' && parameter.name === 'server_id';
}
