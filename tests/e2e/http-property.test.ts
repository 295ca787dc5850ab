/**
 * The single-failure property over HTTP only, on the manual clock: for random test meshes
 * (`POST /mesh/setup_test`: 5-50 regions, 3-4 zones, some critical) and a random single crash (the
 * primary of a random region, or a random server, which may lead no region at all), after
 * `POST /mesh/test/advance_time`:
 *
 * - `GET /mesh/failover_metrics` counts one failover per region the crashed server led, every one
 *   completed, every detection within the seed's 5 s, and recovery within the core's bound: the
 *   p99 of the recovery times it reports, over all runs, is at most 4000 ms (the bound of
 *   tests/simulation/single-failure.test.ts; a single run has too few failovers for a p99 of its
 *   own, its "p99" is its maximum). A crashed server leads up to six regions, so one slow crash
 *   counts up to six times: 300 runs (about 850 failovers) make the p99 the ninth-slowest, which
 *   two slow crashes are needed to push over the bound; with 100 runs it was the third-slowest,
 *   that is the slowest crash alone, a maximum rather than a p99. The failovers above the bound
 *   are logged with their scenarios;
 * - `GET /mesh/replication/{id}` shows, for each region it led, a new acknowledged primary, a
 *   higher epoch and two backups (none of them the crashed server; replicas in distinct zones
 *   wherever a zone they miss has a usable server with room); regions it only backed up keep their
 *   primary and epoch and get their second backup back. A mesh of 3 servers cannot re-replicate
 *   after losing one: it must show its regions under-replicated with the surviving replicas.
 *
 * Every response body is checked against openapi.yaml. Building an app compiles the whole contract
 * (about a second here), so one app serves every run, but each run gets a fresh mesh (its own
 * manual clock at 0, its own seed, a fresh store) behind it: a failing run therefore replays from
 * its counterexample alone, with E2E_SEED=<seed> E2E_PATH=<path>.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import request from 'supertest';
import { createApp } from '../../api/app.ts';
import type { Command, MeshHost } from '../../api/deps.ts';
import { testMeshConfig } from '../../mesh/base/config.ts';
import type { MeshEvent } from '../../mesh/effects/events.ts';
import { ManualClock } from '../../mesh/base/ports.ts';
import { standardNetwork } from '../../mesh/simulation/network.ts';
import type { CoreState } from '../../mesh/core/state.ts';
import { createLogger } from '../../src/logger.ts';
import { RunningMesh } from '../../src/mesh-host.ts';
import { MemoryStore } from '../../src/store/memory-store.ts';
import { expectResponse } from '../api/harness.ts';

/** The core's recovery bound for a single failure: p99 (tests/simulation/single-failure.test.ts). */
const recoveryBoundMs = 4000;
/** The seed's detection bound, for every single failover. */
const detectionBoundMs = 5000;
/** Virtual time given to detection, failover and re-replication after the crash. */
const settleMs = 12_000;

interface Scenario {
  readonly regions: number;
  readonly zones: number;
  readonly criticalShare: number;
  readonly spareServers: number;
  readonly playersPerRegion: number;
  readonly warmUpMs: number;
  /** Which region's primary, or which server, to crash (an index reduced modulo the count). */
  readonly target: { readonly kind: 'primary' | 'server'; readonly pick: number };
  /** Offset of the crash from a tick boundary. */
  readonly jitterMs: number;
  /** Seed of the mesh's random source (placement, heartbeat delays and losses). */
  readonly seed: number;
}

const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  regions: fc.integer({ min: 5, max: 50 }),
  zones: fc.integer({ min: 3, max: 4 }),
  criticalShare: fc.double({ min: 0, max: 0.5, noNaN: true }),
  spareServers: fc.integer({ min: 0, max: 3 }),
  playersPerRegion: fc.integer({ min: 0, max: 200 }),
  warmUpMs: fc.integer({ min: 3_000, max: 30_000 }),
  target: fc.record({ kind: fc.constantFrom('primary' as const, 'server' as const), pick: fc.nat({ max: 10_000 }) }),
  jitterMs: fc.integer({ min: 1, max: 99 }),
  seed: fc.nat({ max: 2 ** 31 - 1 }),
});

/**
 * The `MeshHost` the app is built on, forwarding to the current run's mesh. Routes read
 * `host.coordinator` and call the host at request time, so swapping the mesh between runs is the
 * same as building a new app, minus compiling the contract again.
 */
class SwappableHost implements MeshHost {
  readonly clockKind = 'manual' as const;
  readonly bootId = 'http-property';
  private current: RunningMesh | undefined;
  private unsubscribe: (() => void) | undefined;
  private readonly listeners = new Set<(event: MeshEvent) => void>();
  private readonly changeListeners = new Set<() => void>();
  private unsubscribeChanges: (() => void) | undefined;
  /** Servers seen turning suspect, with when (the test's own view of the event stream). */
  readonly suspected: { serverId: string; atMs: number }[] = [];

  /** Replaces the mesh with a fresh one: manual clock at 0, empty memory store, `seed`. */
  async fresh(seed: number): Promise<void> {
    this.unsubscribe?.();
    const log = createLogger({ level: 'error', sink: { write: () => true } });
    this.current = await RunningMesh.open({ config: testMeshConfig, clock: new ManualClock(0), store: new MemoryStore(), seed, log });
    this.suspected.length = 0;
    this.unsubscribe = this.current.subscribe((event) => {
      if (event.type === 'server_status_changed' && event.to === 'suspect') this.suspected.push({ serverId: event.serverId, atMs: event.atMs });
      for (const l of this.listeners) l(event);
    });
    this.unsubscribeChanges?.();
    this.unsubscribeChanges = this.current.subscribeChanges(() => { for (const l of this.changeListeners) l(); });
  }

  private get mesh(): RunningMesh {
    assert.ok(this.current, 'no mesh yet');
    return this.current;
  }

  get coordinator() { return this.mesh.coordinator; }
  now() { return this.mesh.now(); }
  run<T>(command: Command<T>) { return this.mesh.run(command); }
  runDurably<T>(command: Command<T>) { return this.mesh.runDurably(command); }
  heartbeat(...args: Parameters<MeshHost['heartbeat']>) { return this.mesh.heartbeat(...args); }
  setupTest(spec: Parameters<MeshHost['setupTest']>[0]) { return this.mesh.setupTest(spec); }
  resetTest() { return this.mesh.resetTest(); }
  injectFailure(spec: Parameters<MeshHost['injectFailure']>[0]) { return this.mesh.injectFailure(spec); }
  advance(ms: number) { return this.mesh.advance(ms); }
  readiness() { return this.mesh.readiness(); }
  subscribe(listener: (event: MeshEvent) => void) {
    this.listeners.add(listener);
    return () => { this.listeners.delete(listener); };
  }
  subscribeChanges(listener: () => void) {
    this.changeListeners.add(listener);
    return () => { this.changeListeners.delete(listener); };
  }
}

function fcParams(numRuns: number): fc.Parameters<[Scenario]> {
  const params: fc.Parameters<[Scenario]> = { numRuns: Math.max(1, Math.round(numRuns * Number(process.env.E2E_RUNS_FACTOR ?? 1))) };
  if (process.env.E2E_SEED !== undefined) params.seed = Number(process.env.E2E_SEED);
  if (process.env.E2E_PATH !== undefined) params.path = process.env.E2E_PATH;
  return params;
}

/** Every recovery time seen, with its scenario, for the aggregate check and its log. */
const recoveries: { readonly ms: number; readonly scenario: Scenario }[] = [];

/**
 * Known core bug (reported, not fixed yet): a region that needs a replacement backup while the only
 * servers with room are transiently `suspect` is put aside as "starved", and a suspect server
 * turning alive again does not count as new capacity (`Recovery.capacityChanged` is called on
 * registration and on a failed server's return only), so the region stays under-replicated until
 * some other capacity event. While this is `true`, exactly that situation is tolerated and counted;
 * set it to `false` once the core retries starved regions when a suspect server recovers.
 */
const knownBugStarvedAfterSuspicion = false;
let starvedAfterSuspicion = 0;

async function runScenario(app: ReturnType<typeof createApp>, host: SwappableHost, s: Scenario): Promise<void> {
  await host.fresh(s.seed);
  const http = request(app.callback());
  const criticalRegions = Math.floor(s.regions * s.criticalShare);
  const setup = expectResponse('setupTestMesh', await http.post('/mesh/setup_test').send({
    regions: s.regions, zones: s.zones, critical_regions: criticalRegions, spare_servers: s.spareServers,
    players_per_region: s.playersPerRegion,
  }), 201);
  assert.equal(setup.regions.length, s.regions);
  expectResponse('advanceTestTime', await http.post('/mesh/test/advance_time').send({ ms: s.warmUpMs + s.jitterMs }), 200);

  const regionsBefore: any[] = expectResponse('listRegions', await http.get('/mesh/regions'), 200).regions;
  const servers: any[] = expectResponse('listServers', await http.get('/mesh/servers'), 200).servers;
  assert.ok(regionsBefore.every((r) => r.state === 'active'), 'the mesh is healthy before the crash');
  const zoneOf = new Map(servers.map((sv) => [sv.server_id as string, sv.zone as string]));

  const failure = s.target.kind === 'primary'
    ? { region_id: regionsBefore[s.target.pick % regionsBefore.length].region_id, role: 'primary' }
    : { server_id: setup.servers[s.target.pick % setup.servers.length] };
  const injected = expectResponse('simulateFailure', await http.post('/mesh/simulate_failure').send(failure), 202);
  assert.equal(injected.mode, 'crash');
  assert.equal(injected.server_ids.length, 1);
  const victim: string = injected.server_ids[0];
  if ('region_id' in failure) {
    assert.equal(victim, regionsBefore.find((r) => r.region_id === failure.region_id).primary.server_id);
  }
  const led = regionsBefore.filter((r) => r.primary?.server_id === victim);
  const backedUp = regionsBefore.filter((r) => r.backups.some((b: any) => b.server_id === victim));

  expectResponse('advanceTestTime', await http.post('/mesh/test/advance_time').send({ ms: settleMs }), 200);

  const metrics = expectResponse('getFailoverMetrics', await http.get('/mesh/failover_metrics?recent_limit=1000'), 200);
  assert.deepEqual(metrics.failovers, { total: led.length, completed: led.length, in_progress: 0, failed: 0 },
    `one completed failover per region ${victim} led`);
  assert.equal(metrics.recovery_ms.count, led.length);
  assert.equal(metrics.false_failovers, 0);
  if (led.length > 0) {
    assert.ok(metrics.detection_ms.max <= detectionBoundMs, `a detection took ${metrics.detection_ms.max} ms > ${detectionBoundMs} ms`);
    assert.equal(metrics.recovery_ms.max, Math.max(...metrics.recent.map((f: any) => f.recovery_ms)));
  }
  assert.deepEqual(metrics.recent.map((f: any) => f.region_id).sort(), led.map((r) => r.region_id).sort());
  for (const f of metrics.recent) {
    assert.equal(f.failed_server_id, victim);
    assert.equal(f.outcome, 'completed');
    // failed_at is the last heartbeat the coordinator received from the crashed server: sent before
    // the crash, it may arrive up to the network's longest delay after it.
    assert.ok(f.failed_at >= injected.injected_at - 3000 && f.failed_at <= injected.injected_at + standardNetwork.maxDelayMs,
      `failed_at ${f.failed_at} is not a last heartbeat around the injection (${injected.injected_at})`);
    assert.ok(Math.abs(f.recovery_ms - (f.completed_at - f.failed_at)) <= 1, 'recovery runs from failed_at to completed_at');
    recoveries.push({ ms: f.recovery_ms, scenario: s });
  }

  // Three replicas need three surviving servers, and three zones to be in distinct zones: a small
  // mesh (5 regions make 3 servers) cannot re-replicate after losing one.
  const survivors = servers.filter((sv) => sv.server_id !== victim);
  const fullReplication = survivors.length >= 3;
  const serversAfter: any[] = expectResponse('listServers', await http.get('/mesh/servers'), 200).servers;
  const wasSuspect = new Set(host.suspected.filter((e) => e.atMs >= injected.injected_at).map((e) => e.serverId));
  const hasRoom = (sv: any) => sv.status === 'alive' && sv.primaries + sv.backups < sv.capacity;
  let starvedHere = 0;
  for (const before of [...led, ...backedUp]) {
    const after = expectResponse('getRegionReplication', await http.get(`/mesh/replication/${before.region_id}`), 200);
    const wasPrimary = led.includes(before);
    if (fullReplication && after.state === 'under_replicated' && knownBugStarvedAfterSuspicion) {
      const hosting = new Set([after.primary?.server_id, ...after.backups.map((b: any) => b.server_id)]);
      const couldHost = serversAfter.filter((sv) => !hosting.has(sv.server_id) && hasRoom(sv));
      if (couldHost.length > 0 && couldHost.every((sv) => wasSuspect.has(sv.server_id))) {
        starvedHere += 1;
        starvedAfterSuspicion += 1;
        continue;
      }
    }
    assert.equal(after.state, fullReplication ? 'active' : 'under_replicated', `${before.region_id}: phase after the failure`);
    assert.ok(after.primary !== null && after.primary.acknowledged, `${before.region_id} has an acknowledged primary`);
    if (wasPrimary) {
      assert.notEqual(after.primary.server_id, victim, `${before.region_id} has a new primary`);
      assert.ok(after.epoch > before.epoch, `${before.region_id}: epoch ${after.epoch} > ${before.epoch}`);
      assert.equal(after.last_failover?.outcome, 'completed');
      assert.ok(after.last_failover.recovery_ms <= metrics.recovery_ms.max);
    } else {
      assert.equal(after.primary.server_id, before.primary.server_id, `${before.region_id} keeps its primary`);
      assert.equal(after.epoch, before.epoch, `${before.region_id} keeps its epoch`);
    }
    assert.equal(after.backups.length, fullReplication ? 2 : survivors.length - 1, `${before.region_id}: backups`);
    const replicas: string[] = [after.primary.server_id, ...after.backups.map((b: any) => b.server_id)];
    assert.ok(!replicas.includes(victim), `${before.region_id} no longer uses ${victim}`);
    assert.equal(new Set(replicas).size, replicas.length);
    for (const b of after.backups) {
      assert.equal(b.syncing, false);
      // Suspicion is transient under 1% heartbeat loss (phi 3) and moves nothing by itself.
      assert.ok(b.status === 'alive' || b.status === 'suspect', `${before.region_id}: backup ${b.server_id} is ${b.status}`);
    }
    // Distinct zones where possible: a zone the replicas miss has no server with room left that
    // was usable throughout (a server suspect when the backup was placed could not take it).
    const zonesUsed = new Set(replicas.map((id) => zoneOf.get(id)));
    if (zonesUsed.size < replicas.length) {
      const roomIn = serversAfter.filter((sv) => hasRoom(sv) && !wasSuspect.has(sv.server_id) && !zonesUsed.has(sv.zone));
      assert.deepEqual(roomIn.map((sv) => `${sv.server_id}@${sv.zone}`), [],
        `${before.region_id}: replicas ${replicas.join(', ')} share a zone although other zones have room`);
    }
  }
  const victimView = expectResponse('getServer', await http.get(`/mesh/servers/${victim}`), 200);
  assert.equal(victimView.status, 'failed');
  assert.equal(victimView.primaries + victimView.backups, 0, 'the crashed server holds nothing any more');
  const status = expectResponse('getMeshStatus', await http.get('/mesh/status'), 200);
  if (fullReplication && starvedHere === 0) assert.equal(status.regions.active, s.regions, 'every region is active again');
  else assert.equal(status.regions.active + status.regions.under_replicated, s.regions, 'every region has a primary again');
  assert.equal(status.servers.failed, 1);
}

describe('HTTP property: random single failures on the manual clock', () => {
  test('recovery within the core bound; a new primary, a higher epoch and two backups', { timeout: 120_000 }, async () => {
    const host = new SwappableHost();
    const errors: unknown[] = [];
    const app = createApp({ host, adminToken: undefined, logError: (error) => errors.push(error) });
    await fc.assert(fc.asyncProperty(scenarioArb, async (s) => {
      await runScenario(app, host, s);
    }), fcParams(300));
    assert.deepEqual(errors, [], 'no unexpected error was logged by the app');
    const sorted = recoveries.map((r) => r.ms).sort((a, b) => a - b);
    const p99 = sorted[Math.max(0, Math.ceil(0.99 * sorted.length) - 1)];
    console.log(`# ${recoveries.length} failovers over HTTP: recovery p50 ${sorted[Math.ceil(0.5 * sorted.length) - 1]} ms, ` +
      `p99 ${p99} ms, max ${sorted.at(-1)} ms`);
    if (starvedAfterSuspicion > 0) console.log(`# known core bug: ${starvedAfterSuspicion} region(s) left under-replicated after a backup candidate was briefly suspect`);
    // The check is over all runs, so no counterexample names the slow ones: the log does, and each
    // replays alone (its scenario as the only run of a one-off property, or through the core).
    for (const r of recoveries.filter((x) => x.ms > recoveryBoundMs)) console.log(`# recovery ${r.ms} ms: ${JSON.stringify(r.scenario)}`);
    assert.ok(recoveries.length > 0, 'some runs must crash a primary');
    assert.ok(p99 !== undefined && p99 <= recoveryBoundMs, `recovery p99 over all runs ${p99} ms > ${recoveryBoundMs} ms`);
  });
});
