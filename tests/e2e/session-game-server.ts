/**
 * A game server process that holds a session (clients/ts MeshSession) and real replication links:
 * it listens on a TCP port (its registered address), connects to every replication peer its
 * assignment names and streams a byte to each every 50 ms. When a peer's stream breaks or stops,
 * it heartbeats at once, once the silence reaches the session's confirmation window, reporting how
 * long it has not heard that peer (asyncapi.yaml: "a server that loses a peer's stream sends a
 * heartbeat at once"). It prints one JSON line per event for the test: `registered`, `reply`, `role`.
 *
 *   node --import tsx tests/e2e/session-game-server.ts <base-url> <zone> [lifetime-ms]
 */
import { createServer, connect, type Socket } from 'node:net';
import { MeshSession, type HeartbeatRequest } from '../../clients/ts/mesh-session.ts';

const [base, zone, lifetime] = process.argv.slice(2) as [string, string, string | undefined];
const streamEveryMs = 50;
/** A peer heard within one stream interval counts as just heard (what the coordinator expects). */
const confirmAfterMs = 110;
const print = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ ...event, at: Date.now() })}\n`);

const lastHeard = new Map<string, number>();
const outbound = new Map<string, Socket>();
const started = Date.now();
let session: MeshSession;

const listener = createServer((socket) => {
  let peer: string | null = null;
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    if (peer === null) peer = chunk.split('\n')[0] ?? null;
    if (peer !== null) lastHeard.set(peer, Date.now());
  });
  const lost = () => {
    if (peer === null) return;
    const heard = lastHeard.get(peer) ?? Date.now();
    if (process.env.SESSION_GAME_SERVER_DEBUG) print({ event: 'lost', peer, heard });
    setTimeout(() => session.heartbeatNow(), Math.max(0, heard + confirmAfterMs - Date.now()));
  };
  socket.on('close', lost);
  socket.on('error', () => socket.destroy());
});
listener.listen(0, '127.0.0.1', () => void main());

async function main(): Promise<void> {
  const port = (listener.address() as { port: number }).port;
  const res = await fetch(`${base}/mesh/servers`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ address: `127.0.0.1:${port}`, zone }),
  });
  const { server_id: id, token } = await res.json() as { server_id: string; token: string };
  print({ event: 'registered', id, port });
  session = new MeshSession({ baseUrl: base, serverId: id, token, heartbeat: () => heartbeat(id) });
  session.on('assignment', (a) => { linkPeers(id, a.regions); print({ event: 'reply', status: a.status }); });
  session.on('role', (region, role, epoch) => print({ event: 'role', region, role, epoch }));
  session.on('problem', (problem) => print({ event: 'problem', detail: problem.detail, errors: problem.errors }));
  session.on('close', (code, reason) => print({ event: 'close', code, reason }));
  session.start();
  setInterval(() => { for (const socket of outbound.values()) socket.write('.'); }, streamEveryMs);
  setTimeout(() => process.exit(0), Number(lifetime ?? 60_000)).unref();
}

function heartbeat(id: string): HeartbeatRequest {
  const now = Date.now();
  const peers = [...peersOf(id, [...session.regions.values()]).keys()].map((peer) => {
    const silent = now - (lastHeard.get(peer) ?? now);
    return { server_id: peer, silent_for_ms: silent <= streamEveryMs ? 0 : silent };
  });
  if (process.env.SESSION_GAME_SERVER_DEBUG) print({ event: 'beat', peers });
  return {
    incarnation: `${id}#${process.pid}`, players: 0, peers,
    regions: [...session.regions.values()].map((r) => ({ region_id: r.region_id, role: r.role, epoch: r.epoch, applied_seq: Math.floor((now - started) / 10) })),
  };
}

type Endpoint = { server_id: string; address: string } | null;

function peersOf(id: string, regions: { primary: Endpoint; backups: NonNullable<Endpoint>[] }[]): Map<string, string> {
  const peers = new Map<string, string>();
  for (const r of regions) for (const e of [r.primary, ...r.backups]) if (e && e.server_id !== id) peers.set(e.server_id, e.address);
  return peers;
}

/** Opens a stream to every peer the assignment names (once). */
function linkPeers(id: string, regions: { primary: Endpoint; backups: NonNullable<Endpoint>[] }[]): void {
  for (const [peer, address] of peersOf(id, regions)) {
    if (outbound.has(peer)) continue;
    const [host, port] = address.split(':') as [string, string];
    const socket = connect(Number(port), host);
    // Written before any stream byte (writes before the connection are queued in order).
    socket.write(`${id}\n`);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => outbound.delete(peer));
    outbound.set(peer, socket);
  }
}
