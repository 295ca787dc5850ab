/**
 * `GET /mesh/servers/{server_id}/session` upgraded to a WebSocket: the HTTP server's `upgrade`
 * listener. Before the upgrade the request is checked as the HTTP routes check theirs (the Host and
 * Origin rules, the path parameter against openapi.yaml's `openSession`, the server's token), and a
 * refusal is the same problem+json document, written on the raw socket, which then closes. The
 * token comes in `Authorization: Bearer` or, for clients that cannot set headers, in a
 * `mesh.bearer.<token>` subprotocol offered beside `mesh.v1`; never in the URL, which ends up in
 * logs. A plain `GET` of the path (no upgrade) reaches Koa and is answered 426.
 */
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { tokenMatchesHash } from '../auth.ts';
import {
  HttpProblem, PROBLEM_CONTENT_TYPE, badRequest, conflict, forbidden, notFound, problemHeaders, problemOf, unauthorized,
  validationFailed,
} from '../problem.ts';
import type { RouteKit } from '../route-kit.ts';
import type { SessionHub } from './session-hub.ts';
import { handshakeToken, offeredProtocols, SESSION_PROTOCOL } from './session-protocol.ts';

/** The documented operation of the handshake. */
export const OPEN_SESSION_OPERATION = 'openSession';
const SESSION_ROUTE = '/mesh/servers/{server_id}/session';
const SESSION_PATH = /^\/mesh\/servers\/([^/]+)\/session$/;
const WEBSOCKET_KEY = /^[+/0-9A-Za-z]{22}==$/;

/**
 * The checks every request gets before any route (Host allow-list, cross-origin refusal), as one
 * function so that the upgrade applies the same rules as the HTTP routes: a problem, or undefined.
 */
export type UpgradeGuard = (req: IncomingMessage) => HttpProblem | undefined;

/** The upgrade listener and what it feeds. */
export interface SessionEndpoint {
  readonly hub: SessionHub;
  /** The HTTP server's `upgrade` listener. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

/** Builds the endpoint over the hub; `guard` applies the request guard of the HTTP routes. */
export function sessionEndpoint(kit: RouteKit, hub: SessionHub, guard: UpgradeGuard): SessionEndpoint {
  const info = kit.contract.operations.get(OPEN_SESSION_OPERATION);
  if (!info) throw new Error(`operation ${OPEN_SESSION_OPERATION} is not in openapi.yaml`);
  const wss = new WebSocketServer({
    noServer: true, clientTracking: false, perMessageDeflate: false,
    // A heartbeat message is at most the HTTP route's body limit plus its small envelope.
    maxPayload: info.maxBodyBytes + 64,
    handleProtocols: (offered) => (offered.has(SESSION_PROTOCOL) ? SESSION_PROTOCOL : false),
  });

  function admit(req: IncomingMessage, path: string): string {
    const match = SESSION_PATH.exec(path);
    if (!match) throw new HttpProblem({ status: 404, slug: 'not-found', detail: `No WebSocket endpoint at ${path}; sessions are at ${SESSION_ROUTE}.` });
    const refused = guard(req);
    if (refused) throw refused;
    if (req.method !== 'GET') throw new HttpProblem({ status: 405, slug: 'method-not-allowed', detail: 'A session handshake is a GET.', headers: { Allow: 'GET' } });
    checkHandshake(req);
    let raw: string;
    try {
      raw = decodeURIComponent(match[1]!);
    } catch {
      throw badRequest('The server id in the path is not valid percent-encoding.');
    }
    const params = kit.contract.validateParams(OPEN_SESSION_OPERATION, { path: { server_id: raw }, query: {}, headers: req.headers });
    if (!params.ok) throw validationFailed(params.errors);
    const id = params.value.path.server_id as string;
    const credentials = handshakeToken(req.headers.authorization, offeredProtocols(req.headers['sec-websocket-protocol']));
    if (credentials === undefined) {
      throw unauthorized('A session needs the server token: Authorization: Bearer <token>, or the subprotocol mesh.bearer.<token> beside mesh.v1.', 'mesh-server');
    }
    const record = kit.host.coordinator.serverRecord(id as never);
    const stored = record?.credentialHash ?? undefined;
    if (record === undefined || stored === undefined) throw notFound('server', id);
    if (!tokenMatchesHash(credentials.token, stored)) throw forbidden(`The bearer token is not valid for server '${id}'.`);
    if (record.status === 'left') throw conflict(`Server ${id} has left the mesh; register it again.`, {}, 'server-left');
    return id;
  }

  function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const started = performance.now();
    const path = pathOf(req.url);
    // Not a closure: one made here would hold this request (about a kilobyte) for as long as the session lasts.
    socket.on('error', destroyOnError);
    let id: string;
    try {
      id = admit(req, path);
    } catch (error) {
      const problem = problemOf(error, { method: req.method ?? 'GET', path }, { log: (e, r) => kit.deps.logError(e, r) });
      writeProblem(socket, problem, path);
      observe(kit, req, problem.status, started, problem.detail);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      // The WebSocket handles the socket's errors from now on.
      socket.off('error', destroyOnError);
      observe(kit, req, 101, started, undefined);
      hub.attach(id, ws, path);
    });
  }

  return { hub, handleUpgrade };
}

/** A socket's error before (or instead of) the upgrade: nothing to answer on it any more. */
function destroyOnError(this: Duplex): void {
  this.destroy();
}

/** What `ws` would refuse with a plain-text answer, refused here with a problem document. */
function checkHandshake(req: IncomingMessage): void {
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
    throw new HttpProblem({ status: 426, slug: 'upgrade-required', detail: 'A session is a WebSocket: send Upgrade: websocket.', headers: { Upgrade: 'websocket' } });
  }
  const version = req.headers['sec-websocket-version'];
  if (version !== '13' && version !== '8') {
    throw new HttpProblem({
      status: 426, slug: 'upgrade-required', detail: `WebSocket version ${JSON.stringify(version ?? null)} is not supported; use 13.`,
      headers: { 'Sec-WebSocket-Version': '13', Upgrade: 'websocket' },
    });
  }
  if (!WEBSOCKET_KEY.test(req.headers['sec-websocket-key'] ?? '')) throw badRequest('The Sec-WebSocket-Key header is missing or malformed.');
  const protocols = offeredProtocols(req.headers['sec-websocket-protocol']);
  if (protocols.length > 0 && !protocols.includes(SESSION_PROTOCOL)) {
    throw badRequest(`A client that offers subprotocols must offer ${SESSION_PROTOCOL}.`);
  }
}

/** The path of a request target, without its query. */
function pathOf(url: string | undefined): string {
  const target = url ?? '/';
  const query = target.indexOf('?');
  return query === -1 ? target : target.slice(0, query);
}

/** Writes a problem as a complete HTTP response on the raw socket and closes it. */
export function writeProblem(socket: Duplex, problem: HttpProblem, path: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify(problem.toDocument(path));
  const headers: Record<string, string | number> = {
    ...problemHeaders(problem), 'Content-Type': PROBLEM_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(body), Connection: 'close',
  };
  const head = Object.entries(headers).map(([name, value]) => `${name}: ${value}`).join('\r\n');
  socket.end(`HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status] ?? 'Error'}\r\n${head}\r\n\r\n${body}`);
}

function observe(kit: RouteKit, req: IncomingMessage, status: number, started: number, detail: string | undefined): void {
  kit.deps.observeRequest?.({
    method: req.method ?? 'GET', route: SESSION_ROUTE, status, seconds: (performance.now() - started) / 1000,
    remoteAddress: req.socket.remoteAddress, detail,
  });
}
