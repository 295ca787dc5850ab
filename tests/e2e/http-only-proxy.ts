/**
 * A reverse proxy that carries HTTP but not WebSockets, as a load balancer without WebSocket
 * support does: each request goes to the coordinator without its hop-by-hop headers (Upgrade,
 * Connection, ...), so a session handshake arrives as a plain GET, which the coordinator answers
 * 426, and the client never gets a session. It counts the handshakes it turned into plain requests.
 */
import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

const HOP_BY_HOP = ['connection', 'upgrade', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding',
  'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-protocol', 'sec-websocket-extensions'];

/** A running proxy. */
export interface HttpOnlyProxy {
  readonly url: string;
  /** Session handshakes that reached the proxy (each forwarded as a plain GET). */
  readonly upgradesStripped: () => number;
  close(): Promise<void>;
}

/** Starts the proxy on a loopback port, forwarding to `target()` (read per request: it may restart). */
export async function startHttpOnlyProxy(target: () => string): Promise<HttpOnlyProxy> {
  let stripped = 0;
  const server = createServer((req, res) => {
    if ((req.headers.upgrade ?? '') !== '') stripped += 1;
    const to = new URL(target());
    const headers: IncomingHttpHeaders = {};
    for (const [name, value] of Object.entries(req.headers)) if (!HOP_BY_HOP.includes(name)) headers[name] = value;
    headers.host = to.host;
    const upstream = request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers, timeout: 10_000 }, (answer) => {
      const out: IncomingHttpHeaders = {};
      for (const [name, value] of Object.entries(answer.headers)) if (!HOP_BY_HOP.includes(name)) out[name] = value;
      res.writeHead(answer.statusCode ?? 502, out as Record<string, string>);
      answer.pipe(res);
    });
    upstream.on('timeout', () => upstream.destroy(new Error('upstream timeout')));
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end('bad gateway');
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    upgradesStripped: () => stripped,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
