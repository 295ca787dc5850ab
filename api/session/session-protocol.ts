/**
 * The messages of a server session (asyncapi.yaml is their contract): each is a JSON text frame
 * `{"type": ..., "body": ...}` whose body is a schema of openapi.yaml's components. A server sends
 * `heartbeat` (the body of `POST .../heartbeat`, checked by the same validator) and `leave`; the
 * coordinator sends `heartbeat_reply`, `assignment` (a push, same body as the reply), `left` and
 * `problem` (a refused message: the same problem document the HTTP route would answer).
 */
import { bearerTokenOf } from '../auth.ts';
import { MAX_JSON_DEPTH, parseJsonBody } from '../json-text.ts';
import type { Contract } from '../openapi.ts';
import { badRequest, validationFailed, type HttpProblem, type ProblemDocument } from '../problem.ts';
import type { HeartbeatBody } from '../routes/servers.ts';

/** A message from a server, checked. */
export type ClientMessage =
  | { readonly type: 'heartbeat'; readonly body: HeartbeatBody }
  | { readonly type: 'renew'; readonly seq: number }
  | { readonly type: 'leave' };

/** A message to a server. */
export type ServerMessage =
  | { readonly type: 'heartbeat_reply'; readonly body: Record<string, unknown> }
  | { readonly type: 'assignment'; readonly body: Record<string, unknown> }
  | { readonly type: 'left'; readonly body: Record<string, unknown> }
  | { readonly type: 'problem'; readonly body: ProblemDocument };

/** The subprotocol a session speaks; a client that offers protocols must offer this one. */
export const SESSION_PROTOCOL = 'mesh.v1';
/**
 * Prefix of the subprotocol that carries the server token for clients that cannot set an
 * `Authorization` header (browsers): `mesh.bearer.<token>`. Never selected, so never echoed.
 */
export const BEARER_PROTOCOL_PREFIX = 'mesh.bearer.';

/** The operation whose body a `heartbeat` message carries. */
const HEARTBEAT_OPERATION = 'sendHeartbeat';

/**
 * Parses and checks one text frame; throws the problem to answer with. The frame is read by the
 * HTTP routes' body parser (UTF-8, depth, lone surrogates), one level deeper for the envelope.
 */
export function parseClientMessage(contract: Contract, frame: Buffer): ClientMessage {
  const parsed = parseJsonBody(frame, MAX_JSON_DEPTH + 1);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw badRequest('A session message must be a JSON object {"type": ..., "body": ...}.');
  }
  const message = parsed as Record<string, unknown>;
  const extra = Object.keys(message).filter((key) => key !== 'type' && key !== 'body');
  if (extra.length > 0) throw badRequest(`Unknown field(s) in a session message: ${extra.join(', ')}.`);
  if (message.type === 'leave') {
    if (message.body !== undefined) throw badRequest('A leave message has no body.');
    return { type: 'leave' };
  }
  if (message.type === 'renew') return { type: 'renew', seq: renewSeq(message.body) };
  if (message.type !== 'heartbeat') {
    throw badRequest(`Unknown session message type ${JSON.stringify(message.type)}: a server sends heartbeat, renew or leave.`);
  }
  const checked = contract.validateRequestBody(HEARTBEAT_OPERATION, message.body ?? null);
  if (!checked.ok) throw validationFailed(checked.errors);
  return { type: 'heartbeat', body: checked.value as HeartbeatBody };
}

/** The `seq` of a renew body `{"seq": <integer >= 0>}` (asyncapi.yaml's `renew`). */
function renewSeq(body: unknown): number {
  const seq = (body as { seq?: unknown } | null)?.seq;
  const keys = typeof body === 'object' && body !== null ? Object.keys(body) : [];
  if (!Number.isSafeInteger(seq) || (seq as number) < 0 || keys.length !== 1) {
    throw badRequest('A renew message has the body {"seq": <integer >= 0>} and nothing else.');
  }
  return seq as number;
}

/** A refused message as the `problem` message; `instance` is the session's path. */
export function problemMessage(problem: HttpProblem, path: string): ServerMessage {
  return { type: 'problem', body: problem.toDocument(path) };
}

/**
 * The token a handshake carries: the `Authorization: Bearer` header, or else a `mesh.bearer.`
 * subprotocol (then `mesh.v1` must be offered too, and is the one selected).
 */
export function handshakeToken(authorization: string | undefined, protocols: readonly string[]): { token: string; via: 'header' | 'protocol' } | undefined {
  const header = bearerTokenOf(authorization);
  if (header !== undefined) return { token: header, via: 'header' };
  const offered = protocols.find((p) => p.startsWith(BEARER_PROTOCOL_PREFIX));
  if (offered === undefined || offered.length === BEARER_PROTOCOL_PREFIX.length) return undefined;
  return { token: offered.slice(BEARER_PROTOCOL_PREFIX.length), via: 'protocol' };
}

/** The subprotocols of a `Sec-WebSocket-Protocol` header. */
export function offeredProtocols(header: string | undefined): string[] {
  return header === undefined ? [] : header.split(',').map((p) => p.trim()).filter((p) => p !== '');
}
