/**
 * The Godot addon falls back to HTTP heartbeats when the coordinator's session route is not
 * reachable: three headless Godot demo servers reach the real coordinator through a reverse proxy
 * that carries HTTP but not WebSockets (http-only-proxy.ts), so every session handshake arrives as
 * a plain GET and is refused (426). The servers must report `session_unavailable`, never hold a
 * session, keep retrying it with back-off, and still do all their work over HTTP: one region, two
 * players acting every 20 ms, SIGKILL of the primary; every action applied exactly once, in
 * per-player order, none expired.
 *
 * Skip rule: without `godot3-server` on PATH the suite is skipped, except under `CI=true`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readLogs } from './action-log.ts';
import { skip } from './godot-fleet.ts';
import { GodotScenario } from './godot-scenario.ts';
import { startHttpOnlyProxy, type HttpOnlyProxy } from './http-only-proxy.ts';
import { call, sleep } from './service-process.ts';

const REGION = 'godot-http-fallback';
const FLOW_MS = 2500;

describe('real Godot servers without a session route heartbeat over HTTP and lose no action', { skip, timeout: 180_000 }, () => {
  const fleet = new GodotScenario();
  let proxy: HttpOnlyProxy | undefined;

  before(async () => {
    // The proxy reads the coordinator's URL per request: it is known once the fleet started it.
    proxy = await startHttpOnlyProxy(() => fleet.base);
    await fleet.start({ region: REGION, servers: 3, coordinatorFor: () => proxy!.url });
  });

  after(async () => {
    await fleet.stop();
    await proxy?.close();
  });

  test('every server tried a session, was refused, and heartbeats over HTTP', async () => {
    await sleep(FLOW_MS);
    assert.ok(proxy!.upgradesStripped() >= fleet.godots.size, `handshakes seen: ${proxy!.upgradesStripped()}`);
    for (const g of fleet.godots.values()) {
      assert.ok(g.child.lines.some((l) => l.startsWith('error session session_unavailable')), g.child.describe());
      assert.ok(!g.child.lines.includes('transport session'), g.child.describe());
    }
    const metrics = String((await call(fleet.base, 'GET', '/metrics')).body);
    assert.match(metrics, /^mesh_sessions_open 0$/m);
    assert.match(metrics, /^mesh_heartbeats_received_total\{transport="http",status_code="200"\} [1-9]/m);
    assert.doesNotMatch(metrics, /^mesh_heartbeats_received_total\{transport="session"/m);
  });

  test('SIGKILL of the primary: the actions are buffered and replayed by the new primary exactly once', async (t) => {
    const { epoch, primary } = await fleet.route();
    fleet.godots.get(primary!.server_id)!.child.proc.kill('SIGKILL');
    const next = await fleet.newPrimary(epoch);
    await sleep(FLOW_MS);
    await fleet.settleAndCheck('SIGKILL of the primary over HTTP heartbeats');
    const replays = readLogs([fleet.godots.get(next.primary.server_id)!.log], REGION).filter((a) => a.source === 'replay');
    assert.ok(replays.length > 0, 'the new primary applied actions from the buffer');
    t.diagnostic(`players: ${JSON.stringify(fleet.driver!.stats)}`);
  });
});
