/**
 * The TypeScript client's session class (clients/ts/mesh-session.ts) against a scripted peer: a
 * bare `ws` server on loopback that answers heartbeats and pushes assignments when told to, so the
 * client's own timing rules are exercised without the coordinator deciding when to push.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { MeshSession } from '../../clients/ts/mesh-session.ts';

const closers: (() => void)[] = [];
after(() => { for (const close of closers) close(); });

/** An assignment naming the server primary of r1, so that it renews its lease as a primary does. */
function assignment(intervalMs: number) {
  const region = { region_id: 'r1', role: 'primary', epoch: 1, primary: { server_id: 'srv-1', address: '127.0.0.1:1' }, backups: [], fidelity: 1, actions_pending: 0 };
  return { server_id: 'srv-1', status: 'alive', degraded_level: 'NORMAL', fidelity: 1, heartbeat_interval_ms: intervalMs, regions: [region], demoted: [], lease_ms: 300 };
}

/**
 * A peer that answers every heartbeat with `intervalMs` and every renew with a lease, and records
 * when each heartbeat came. `refuseRenews` renews are answered by a problem instead; a `silent`
 * peer reads everything and answers nothing, as a host that vanished would.
 */
async function scriptedPeer(intervalMs: number) {
  const state = { intervalMs, refuseRenews: 0, silent: false };
  const beats: number[] = [];
  const leases: number[] = [];
  const sockets: WebSocket[] = [];
  const server = createServer();
  const wss = new WebSocketServer({ server, handleProtocols: () => 'mesh.v1' });
  wss.on('connection', (socket) => {
    sockets.push(socket);
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as { type: string; body: { seq: number } };
      if (state.silent) return;
      if (message.type === 'renew' && state.refuseRenews > 0) {
        state.refuseRenews -= 1;
        socket.send(JSON.stringify({ type: 'problem', body: { type: 'about:blank', title: 'Conflict', status: 409, detail: 'refused' } }));
        return;
      }
      if (message.type === 'renew') {
        leases.push(message.body.seq);
        socket.send(JSON.stringify({ type: 'lease', body: { seq: message.body.seq, lease_ms: 300, renew_in_ms: 100 } }));
        return;
      }
      beats.push(performance.now());
      socket.send(JSON.stringify({ type: 'heartbeat_reply', body: assignment(state.intervalMs) }));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  closers.push(() => { wss.close(); server.close(); });
  const push = (body: unknown) => { for (const s of sockets) s.send(JSON.stringify({ type: 'assignment', body })); };
  return { state, beats, leases, sockets, push, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** A started session to `base`, closed after the file. */
function startSession(base: string): MeshSession {
  const session = new MeshSession({ baseUrl: base, serverId: 'srv-1', token: 't', heartbeat: () => ({ incarnation: 'i', players: 0, regions: [], peers: [] }) });
  closers.push(() => session.close());
  session.start();
  return session;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('pushes do not postpone the heartbeat: it stays one interval after the last one', async () => {
  const peer = await scriptedPeer(300);
  const session = startSession(peer.base);
  await once(session, 'lease');
  // A push every 100 ms, three per heartbeat interval, for 1.5 s: five intervals.
  const before = peer.beats.length;
  const pushing = setInterval(() => peer.push(assignment(300)), 100);
  await sleep(1500);
  clearInterval(pushing);
  const beats = peer.beats.length - before;
  // Before the fix each push restarted the 300 ms wait, so only the first heartbeat was ever sent.
  assert.ok(beats >= 3, `${beats} heartbeats in 1.5 s at a 300 ms interval under pushes`);
});

test('a pushed shorter interval counts from the last heartbeat, not from the push', async () => {
  const peer = await scriptedPeer(5000);
  await once(startSession(peer.base), 'assignment');
  peer.state.intervalMs = 200;
  peer.push(assignment(200));
  await sleep(1000);
  // The 5 s interval would allow no second heartbeat; the pushed 200 ms one gives about four.
  assert.ok(peer.beats.length >= 3, `${peer.beats.length} heartbeats in 1 s after a push asked for 200 ms`);
});

test('a renew answered by a problem does not stop the renewals', async () => {
  const peer = await scriptedPeer(200);
  peer.state.refuseRenews = 1;
  const session = startSession(peer.base);
  // Before the fix the unanswered renew stayed in flight for good: no lease ever came.
  await Promise.race([once(session, 'lease'), sleep(3000).then(() => assert.fail('no lease within 3 s after a refused renew'))]);
  assert.ok(peer.leases.length >= 1);
});

test('a coordinator silent for three heartbeat intervals is given up and reconnected to', async () => {
  const peer = await scriptedPeer(200);
  const session = startSession(peer.base);
  await once(session, 'assignment');
  peer.state.silent = true;
  const silentAt = performance.now();
  const [code] = await Promise.race([once(session, 'close'), sleep(3000).then(() => assert.fail('the session never gave up a silent coordinator'))]);
  const after = performance.now() - silentAt;
  assert.equal(code, 1006);
  assert.ok(after >= 3 * 200, `gave up after ${after} ms, before three intervals`);
  peer.state.silent = false;
  await once(session, 'open');
  assert.equal(peer.sockets.length, 2, 'one reconnection');
});
