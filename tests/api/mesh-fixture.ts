/**
 * A self-registered mesh driven through the real app for the region, action, snapshot and alert
 * tests: servers registered with real tokens, heartbeats applied as the heartbeat route applies
 * them (core call, then `host.flush()`), virtual time moved with `host.advance`, and helpers to
 * fail a region's primary over and to prove that a rejected request changed nothing.
 */
import assert from 'node:assert/strict';
import request from 'supertest';
import { hashToken, issueServerToken } from '../../api/auth.ts';
import type { MeshConfig } from '../../mesh/base/config.ts';
import type { HeartbeatInput } from '../../mesh/core/heartbeat.ts';
import { regionId, serverId, type RegionId, type Role, type ServerId } from '../../mesh/base/types.ts';
import type { CoreState } from '../../mesh/core/state.ts';
import type { Store } from '../../src/store/store.ts';
import type { HttpOptions } from '../../api/deps.ts';
import { expectResponse, testApp, type TestApp } from './harness.ts';
import { Coordinator } from '../../mesh/core/coordinator.ts';

/** What a fake server claims about one region in its heartbeats. */
interface Claim { role: Role; epoch: number; appliedSeq: number }

/** Options of {@link MeshFixture.create}. */
export interface FixtureOptions {
  adminToken?: string;
  http?: HttpOptions;
  playerTicketSecret?: string;
  config?: Partial<MeshConfig>;
  store?: Store;
}

/** The app over a RunningMesh on a manual clock, with hand-driven self-registered servers. */
export class MeshFixture {
  readonly tokens = new Map<string, string>();
  /** Servers that heartbeat when {@link run} moves time on. */
  readonly up = new Set<string>();
  private readonly claims = new Map<string, Map<RegionId, Claim>>();
  private readonly silentSince = new Map<string, number>();

  private constructor(readonly t: TestApp, readonly server: ReturnType<TestApp['app']['callback']>) {}

  static async create(options: FixtureOptions = {}): Promise<MeshFixture> {
    const t = await testApp(options);
    return new MeshFixture(t, t.app.callback());
  }

  /** Three servers s1-s3 and one region created over HTTP, adopted by them, heartbeating for 2 s. */
  static async withRegion(options: FixtureOptions = {}, regionId = 'castle'): Promise<MeshFixture> {
    const f = await MeshFixture.create(options);
    f.register(['s1', 's2', 's3']);
    const auth = options.adminToken ? { Authorization: `Bearer ${options.adminToken}` } : {};
    expectResponse('createRegion', await f.http.post('/mesh/regions').set(auth).send({ region_id: regionId }), 201);
    f.adopt(regionId);
    await f.run(2000);
    return f;
  }

  get host(): TestApp['host'] {
    return this.t.host;
  }

  get now(): number {
    return this.t.host.now();
  }

  /** supertest agent over the app. */
  get http(): ReturnType<typeof request> {
    return request(this.server);
  }

  /** Registers servers as `POST /mesh/servers` does (token hash only), in zones a, b, c, ... */
  register(ids: readonly string[], capacity = 10): void {
    ids.forEach((id, i) => {
      const token = issueServerToken();
      const result = this.host.coordinator.registerServer({
        id, address: `10.0.${i}.1:7777`, zone: String.fromCharCode(97 + (i % 26)), capacity, credentialHash: hashToken(token),
      }, this.now);
      assert.ok(result.ok, result.ok ? '' : result.detail);
      this.tokens.set(id, token);
      this.up.add(id);
      this.claims.set(id, new Map());
    });
    this.host.flush();
  }

  /** `Authorization` and `X-Server-Id` of a registered server. */
  as(id: string, token = this.tokens.get(id)): Record<string, string> {
    return { Authorization: `Bearer ${token ?? 'no-token'}`, 'X-Server-Id': id };
  }

  /** Every server takes the roles the topology gives it for a region, at the announced epoch. */
  adopt(region: string): void {
    const record = this.host.coordinator.records().regions.get(regionId(region));
    assert.ok(record, `no region ${region}`);
    const holders: [string, Role][] = [
      ...(record.primary === null ? [] : [[record.primary, 'primary'] as [string, Role]]),
      ...record.backups.map((b) => [b, 'backup'] as [string, Role]),
    ];
    for (const [id, role] of holders) this.claims.get(id)?.set(regionId(region), { role, epoch: record.announcedEpoch, appliedSeq: 0 });
  }

  /** One heartbeat from a server now, as the heartbeat route applies it. */
  heartbeat(id: string): void {
    const input: HeartbeatInput = {
      incarnation: `${id}#1`, players: 0,
      regions: [...(this.claims.get(id) ?? [])].map(([r, c]) => ({ regionId: r, role: c.role, epoch: c.epoch, appliedSeq: c.appliedSeq })),
      peers: [...this.claims.keys()].filter((p) => p !== id).map((p) => ({
        serverId: serverId(p), silentForMs: this.silentSince.has(p) ? this.now - (this.silentSince.get(p) ?? 0) : 0,
      })),
    };
    const result = this.host.coordinator.heartbeat(serverId(id), input, this.now);
    assert.ok(result.ok, result.ok ? '' : result.detail);
    this.host.flush();
  }

  /**
   * Moves virtual time on tick by tick; every server that is up heartbeats on each whole heartbeat
   * interval, before that tick. Stops early when `until` holds after a tick.
   */
  async run(ms: number, until?: () => boolean): Promise<void> {
    const { tickIntervalMs, heartbeatIntervalMs } = this.host.coordinator.config;
    const end = this.now + ms;
    while (this.now < end) {
      if (this.now % heartbeatIntervalMs === 0) for (const id of this.up) this.heartbeat(id);
      await this.host.advance(Math.min(tickIntervalMs, end - this.now));
      if (until?.()) return;
    }
  }

  /** The server stops sending; its peers report it silent from now on. */
  silence(id: string): void {
    this.up.delete(id);
    this.silentSince.set(id, this.now);
  }

  /** The promoted server takes the primary role at the announced epoch and heartbeats: the failover completes. */
  acknowledgePromotion(id: string, region: string): void {
    const record = this.host.coordinator.records().regions.get(regionId(region));
    assert.ok(record && record.primary === id, `${id} is not the primary of ${region}`);
    assert.equal(record.announcedEpoch, record.epoch, 'the promotion is not announced yet');
    this.claims.get(id)?.set(regionId(region), { role: 'primary', epoch: record.epoch, appliedSeq: 0 });
    this.heartbeat(id);
  }

  /** The region's primary and backups now. */
  replicas(region: string): { primary: ServerId | null; backups: ServerId[]; epoch: number; announcedEpoch: number; phase: string } {
    const record = this.host.coordinator.records().regions.get(regionId(region));
    assert.ok(record, `no region ${region}`);
    return { primary: record.primary, backups: [...record.backups], epoch: record.epoch, announcedEpoch: record.announcedEpoch, phase: record.phase };
  }

  /**
   * Silences the region's primary and moves time on until a backup's promotion is announced
   * (the region is failing over, with a higher announced epoch). Returns who failed and who leads.
   */
  async failPrimary(region: string): Promise<{ failed: string; promoted: string; epoch: number }> {
    const before = this.replicas(region);
    assert.ok(before.primary, `${region} has no primary to fail`);
    this.silence(before.primary);
    await this.run(10_000, () => {
      const now = this.replicas(region);
      return now.phase === 'failing_over' && now.epoch > before.epoch && now.announcedEpoch === now.epoch;
    });
    const after = this.replicas(region);
    assert.equal(after.phase, 'failing_over', `${region} did not start failing over`);
    assert.ok(after.primary);
    return { failed: before.primary, promoted: after.primary, epoch: after.epoch };
  }

  /**
   * Everything a request could change: the persistent state with its event and change positions
   * (minus the save time) and the snapshots. Equal before and after means the request changed
   * nothing. (How much of it is on disk is left out: a write started earlier may finish meanwhile.)
   */
  state(): string {
    const { savedAtMs: _saved, ...persistent } = this.host.coordinator.exportState(0);
    // Counting a repeat is statistics, not state: a duplicate submission "changes nothing".
    const { duplicates: _duplicates, ...counters } = persistent.buffer.counters;
    const buffer = { ...persistent.buffer, counters };
    return JSON.stringify({ persistent: { ...persistent, buffer }, snapshots: Coordinator.partsForTests(this.host.coordinator).snapshots.toJSON() });
  }

  /** Runs `send` and asserts that the mesh state is the same afterwards. */
  async unchanged<T>(send: () => Promise<T>): Promise<T> {
    const before = this.state();
    const result = await send();
    const after = this.state();
    if (after !== before) {
      let i = 0;
      while (i < before.length && before[i] === after[i]) i++;
      const at = Math.max(0, i - 200);
      assert.fail(`a rejected request changed the mesh state at ...${before.slice(at, i + 200)}... -> ...${after.slice(at, i + 200)}...`);
    }
    return result;
  }

  /** True when every change made so far is on disk. */
  allDurable(): boolean {
    return this.t.store.durableSeq() >= this.host.coordinator.changeSeq();
  }
}
