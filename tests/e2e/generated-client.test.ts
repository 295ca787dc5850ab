/**
 * The client generated from openapi.yaml (openapi-typescript types + openapi-fetch, wrapped in
 * clients/ts/mesh-client.ts):
 *
 * - the committed `clients/ts/schema.d.ts` equals a fresh generation from openapi.yaml, so the
 *   contract and the client cannot drift apart;
 * - the client type-checks (this file is part of `tsc --noEmit`, including the `@ts-expect-error`
 *   lines below, which prove the types reject wrong calls) and drives a full scenario against a
 *   server listening on 127.0.0.1:0: setup_test, simulate_failure, advance_time, failover_metrics,
 *   replication, alerts, a game server's heartbeat, and the event stream up to `failover_completed`.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { generateSchemaSource, schemaPath } from '../../clients/ts/generate.ts';
import { createMeshClient, MeshApiError, ok, type MeshEvent, type Schemas } from '../../clients/ts/mesh-client.ts';
import { contract, testApp, type TestApp } from '../api/harness.ts';

const adminToken = 'e2e-admin-token-0123456789';
const servers: { server: Server; t: TestApp }[] = [];

after(async () => {
  for (const { server, t } of servers) {
    t.app.closeStreams();
    server.closeAllConnections();
    server.close();
  }
});

/** The real app (manual clock) on a real listener on 127.0.0.1, with an admin token. */
async function listen(): Promise<{ baseUrl: string; t: TestApp }> {
  const t = await testApp({ adminToken });
  const server = createServer(t.app.callback());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servers.push({ server, t });
  return { baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, t };
}

/** Checks an answer's data against its documented schema as well (the types are only compile-time). */
function conforms(operationId: string, status: number, data: unknown): void {
  const checked = contract().validateResponse(operationId, status, data);
  assert.ok(checked.ok, `${operationId}: ${JSON.stringify(checked.ok ? [] : checked.errors)}`);
}

describe('client generated from openapi.yaml', () => {
  test('clients/ts/schema.d.ts is exactly what openapi.yaml generates', { timeout: 60_000 }, async () => {
    const committed = readFileSync(schemaPath, 'utf8');
    const fresh = await generateSchemaSource();
    if (fresh !== committed) {
      const a = fresh.split('\n');
      const b = committed.split('\n');
      const line = a.findIndex((text, i) => text !== b[i]);
      assert.fail(`clients/ts/schema.d.ts is stale (first difference at line ${line + 1}: ` +
        `${JSON.stringify(b[line])} should be ${JSON.stringify(a[line])}); run: node --import tsx clients/ts/generate.ts`);
    }
  });

  test('drives a full failover scenario, events included', { timeout: 60_000 }, async () => {
    const { baseUrl } = await listen();
    const mesh = createMeshClient({ baseUrl, adminToken });

    // Compile-time proof that the types bind the contract (never called).
    const typeChecks = async () => {
      // @ts-expect-error `regions` is required by SetupTestRequest
      await mesh.api.POST('/mesh/setup_test', { body: { zones: 3 } });
      // @ts-expect-error no such operation
      await mesh.api.GET('/mesh/no_such_path');
      // @ts-expect-error `role` must be primary or backup
      await mesh.api.POST('/mesh/simulate_failure', { body: { region_id: 'r', role: 'leader' } });
      const metrics = ok(await mesh.api.GET('/mesh/failover_metrics'));
      // @ts-expect-error p99 is a number
      const p99: string = metrics.recovery_ms.p99;
      void p99;
    };
    void typeChecks;

    assert.deepEqual(ok(await mesh.api.GET('/healthz')), { status: 'ok', coordinator: { role: 'standalone', self_url: null, leader_url: null, term: null } });
    const unauthenticated = createMeshClient({ baseUrl });
    const refused = await unauthenticated.api.POST('/mesh/setup_test', { body: { regions: 3 } });
    assert.equal(refused.response.status, 401);
    assert.equal(refused.error?.status, 401, 'the error is the typed problem document');
    await assert.rejects(async () => ok(refused), MeshApiError);

    const stream = await mesh.events();
    const seen: MeshEvent[] = [];
    // Read the stream from the start, as a real client does, while the scenario runs; the loop
    // stops at the target's failover_completed (or when the stream is closed by the deadline).
    let target = '';
    const reading = (async () => {
      for await (const event of stream) {
        seen.push(event);
        if (event.type === 'failover_completed' && target !== '' && event.region_id === target) return;
      }
    })();

    const setup = ok(await mesh.api.POST('/mesh/setup_test', {
      body: { regions: 8, zones: 3, critical_regions: 2, spare_servers: 2, players_per_region: 25 },
    }));
    conforms('setupTestMesh', 201, setup);
    assert.equal(setup.regions.length, 8);
    ok(await mesh.api.POST('/mesh/test/advance_time', { body: { ms: 5000 } }));

    target = setup.regions[0] ?? '';
    assert.ok(target !== '');
    const before = ok(await mesh.api.GET('/mesh/replication/{region_id}', { params: { path: { region_id: target } } }));
    assert.equal(before.state, 'active');
    assert.ok(before.primary !== null);
    const victim = before.primary.server_id;

    const injected = ok(await mesh.api.POST('/mesh/simulate_failure', { body: { region_id: target, role: 'primary' } }));
    conforms('simulateFailure', 202, injected);
    assert.deepEqual(injected.server_ids, [victim]);
    const advanced = ok(await mesh.api.POST('/mesh/test/advance_time', { body: { ms: 10_000 } }));
    assert.ok(advanced.now >= 15_000);

    const metrics = ok(await mesh.api.GET('/mesh/failover_metrics', { params: { query: { recent_limit: 50 } } }));
    conforms('getFailoverMetrics', 200, metrics);
    assert.ok(metrics.failovers.total >= 1);
    assert.equal(metrics.failovers.completed, metrics.failovers.total);
    assert.ok(metrics.recovery_ms.p99 <= 4000, `recovery p99 ${metrics.recovery_ms.p99} ms`);

    const after = ok(await mesh.api.GET('/mesh/replication/{region_id}', { params: { path: { region_id: target } } }));
    conforms('getRegionReplication', 200, after);
    assert.ok(after.primary !== null && after.primary.server_id !== victim && after.primary.acknowledged);
    assert.ok(after.epoch > before.epoch);
    assert.equal(after.backups.length, 2);
    const failover: Schemas['FailoverRecord'] | null = after.last_failover;
    assert.equal(failover?.outcome, 'completed');

    const missing = await mesh.api.GET('/mesh/replication/{region_id}', { params: { path: { region_id: 'no-such-region' } } });
    assert.equal(missing.error?.status, 404);

    const alerts = ok(await mesh.api.GET('/mesh/alerts', { params: { query: { state: 'all' } } }));
    conforms('listAlerts', 200, alerts);
    const serverAlert = alerts.alerts.find((a) => a.subject?.server_id === victim);
    assert.ok(serverAlert, `an alert about ${victim}: ${JSON.stringify(alerts.alerts.map((a) => a.dedup_key))}`);
    const acked = ok(await mesh.api.POST('/mesh/alerts/{alert_id}/ack', { params: { path: { alert_id: serverAlert.id } } }));
    assert.equal(acked.acknowledged_by, 'admin');

    // A real game server through the same client: registration and one heartbeat with its own token.
    const registered = ok(await mesh.api.POST('/mesh/servers', { body: { address: '127.0.0.1:7301', zone: 'zone-9' } }));
    const asServer = mesh.asServer(registered.server_id, registered.token);
    const beat = ok(await asServer.POST('/mesh/servers/{server_id}/heartbeat', {
      params: { path: { server_id: registered.server_id } },
      body: { incarnation: 'client-test#1', seq: 1, players: 0, regions: [], peers: [] },
    }));
    conforms('sendHeartbeat', 200, beat);
    assert.equal(beat.status, 'alive');

    // The events, read while all this happened.
    const deadline = setTimeout(() => stream.close(), 10_000);
    if (!seen.some((e) => e.type === 'failover_completed' && e.region_id === target)) await reading;
    clearTimeout(deadline);
    stream.close();
    const completed = seen.find((e): e is Schemas['FailoverCompletedEvent'] => e.type === 'failover_completed' && e.region_id === target);
    assert.ok(completed, `a failover_completed event for ${target}; got ${seen.map((e) => e.type).join(', ')}`);
    assert.equal(completed.new_primary_id, after.primary.server_id);
    assert.equal(completed.epoch, after.epoch);
    const types = seen.map((e) => e.type);
    assert.ok(types.indexOf('server_failure_detected') < types.indexOf('failover_initiated'));
    assert.ok(types.indexOf('failover_initiated') < types.lastIndexOf('failover_completed'));
    const seqs = seen.map((e) => e.seq);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'events arrive in seq order');
    assert.ok(stream.lastEventId !== undefined && Number(stream.lastEventId.split('.')[1]) >= completed.seq);

    // Reconnecting with Last-Event-ID replays what came after it.
    const boot = stream.lastEventId.split('.')[0];
    const replay = await mesh.events({ lastEventId: `${boot}.${completed.seq - 1}` });
    for await (const event of replay) {
      assert.equal(event.seq, completed.seq);
      assert.equal(event.type, 'failover_completed');
      break;
    }
    replay.close();
  });
});
