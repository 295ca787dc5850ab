/**
 * A hand-driven mesh around one Coordinator for unit tests: fake servers that heartbeat the claims
 * their last reply implies (as mesh/simulation/sim-server.ts does), a manual clock that ticks every
 * tickIntervalMs, heartbeats exactly on every whole heartbeat interval, no delay and no loss. Peers
 * report a silenced server as silent since it went quiet, every other peer as just heard.
 */
import { Coordinator, type ServerInput } from '../../mesh/core/coordinator.ts';
import { testMeshConfig, type MeshConfig } from '../../mesh/base/config.ts';
import type { MeshEvent, MeshEventType } from '../../mesh/effects/events.ts';
import { ServerDetector } from '../../mesh/detection/failure-detector.ts';
import type { HeartbeatInput, HeartbeatReply } from '../../mesh/core/heartbeat.ts';
import type { RegionInput } from '../../mesh/failover/region-factory.ts';
import type { CoreState } from '../../mesh/core/state.ts';
import { SeededRandom } from '../../mesh/runtime/random.ts';
import { regionId, serverId, type RegionId, type Result, type Role, type ServerId } from '../../mesh/base/types.ts';
import { FaultLayer } from '../../mesh/faults/fault-layer.ts';

/** What a fake server holds for one region. */
export interface Held {
  role: Role;
  epoch: number;
  appliedSeq: number;
}

/** A game server as the tests drive it. */
export class FakeServer {
  incarnation: string;
  readonly held = new Map<RegionId, Held>();
  peers = new Set<ServerId>();
  /** False while silenced: it sends nothing (crashed, paused or cut off). */
  up = true;
  /** True while it heartbeats its old claims and ignores every reply (a stuck process). */
  frozen = false;
  lastReply: HeartbeatReply | null = null;
  lastResult: Result<HeartbeatReply> | null = null;
  /** The lease its heartbeats ask for (a session's shorter one); undefined: the default. */
  leaseMs: number | undefined = undefined;

  constructor(readonly id: ServerId) {
    this.incarnation = `${id}#1`;
  }

  /** The role this server's last reply gave it for a region, if any. */
  roleIn(region: string): Role | undefined {
    return this.lastReply?.regions.find((r) => r.regionId === region)?.role;
  }
}

/**
 * The configuration of these tests: the production timings with a primary lease just longer than
 * one heartbeat interval and no drift margin. Heartbeats here arrive on whole intervals without
 * delay, so such a lease is over before any failure can be confirmed, and the failover tests keep
 * the tick at which the coordinator acts on its detection. tests/mesh/lease.test.ts runs the
 * production lease, which holds promotions back.
 */
export const harnessConfig: MeshConfig = Object.freeze({ ...testMeshConfig, primaryLeaseMs: 1100, leaseDriftMarginMs: 0 });

export const rid = (raw: string): RegionId => regionId(raw);
export const sid = (raw: string): ServerId => serverId(raw);

export class Mesh {
  readonly coordinator: Coordinator;
  /** The fault layer around the coordinator: every heartbeat and tick of the harness goes through it. */
  readonly faults: FaultLayer;
  readonly config: MeshConfig;
  readonly servers = new Map<ServerId, FakeServer>();
  readonly events: MeshEvent[] = [];
  /** Marks every persist durable at once when true (an in-memory store). */
  autoDurable = true;
  /** The seq of the latest persist effect seen. */
  lastPersistSeq = 0;
  now: number;
  private nextTickMs: number;
  private readonly silentSince = new Map<ServerId, number>();

  constructor(options: { config?: MeshConfig; startMs?: number; state?: CoreState; seed?: number } = {}) {
    this.config = options.config ?? harnessConfig;
    this.now = options.startMs ?? 0;
    this.nextTickMs = this.now;
    this.coordinator = new Coordinator(this.config, this.now, options.state);
    this.faults = new FaultLayer(this.coordinator, new SeededRandom(options.seed ?? 1));
  }

  /**
   * A new coordinator restored from `state` at `startMs`, around the same servers: they kept
   * running while the coordinator was down, with what they held and believed.
   */
  static restartedFrom(previous: Mesh, state: CoreState, startMs: number): Mesh {
    const mesh = new Mesh({ config: previous.config, startMs, state });
    for (const [id, fake] of previous.servers) mesh.servers.set(id, fake);
    for (const [id, since] of previous.silentSince) mesh.silentSince.set(id, since);
    return mesh;
  }

  get c(): Coordinator {
    return this.coordinator;
  }

  server(id: string): FakeServer {
    const fake = this.servers.get(sid(id));
    if (!fake) throw new Error(`no fake server ${id}`);
    return fake;
  }

  /** Registers a server and adds its fake, which then heartbeats on schedule. */
  register(id: string, zone: string, capacity = 10, extra: Partial<ServerInput> = {}): FakeServer {
    const result = this.c.registerServer({ id, address: `10.0.0.1:${id}`, zone, capacity, ...extra }, this.now);
    if (!result.ok) throw new Error(result.detail);
    const fake = new FakeServer(sid(id));
    this.servers.set(fake.id, fake);
    this.flush();
    return fake;
  }

  /** Creates regions and hands every server the replicas it was given (initial placement). */
  createRegions(inputs: RegionInput[]): string[] {
    const result = this.c.createRegions(inputs, this.now);
    if (!result.ok) throw new Error(result.detail);
    this.flush();
    this.adopt();
    return result.value.map((r) => r.id);
  }

  /** Every fake server takes the roles the topology gives it (as the simulated fleet does). */
  adopt(): void {
    const { topology } = Coordinator.partsForTests(this.c);
    for (const fake of this.servers.values()) {
      for (const region of topology.regionsOf(fake.id)) {
        if (fake.held.has(region.id)) continue;
        fake.held.set(region.id, { role: region.primary === fake.id ? 'primary' : 'backup', epoch: region.announcedEpoch, appliedSeq: 0 });
      }
      fake.peers = topology.peersOf(fake.id);
    }
  }

  /** Sets how much replicated state a server reports for a region. */
  setSeq(server: string, region: string, appliedSeq: number): void {
    const held = this.server(server).held.get(rid(region));
    if (!held) throw new Error(`${server} holds no ${region}`);
    held.appliedSeq = appliedSeq;
  }

  /** The heartbeat body a fake server sends now. */
  input(fake: FakeServer): HeartbeatInput {
    return {
      incarnation: fake.incarnation, players: 0,
      regions: [...fake.held].map(([regionId, h]) => ({ regionId, role: h.role, epoch: h.epoch, appliedSeq: h.appliedSeq })),
      peers: [...fake.peers].map((p) => {
        const since = this.silentSince.get(p);
        return { serverId: p, silentForMs: since === undefined ? 0 : this.now - since };
      }),
      ...(fake.leaseMs === undefined ? {} : { leaseMs: fake.leaseMs }),
    };
  }

  /**
   * One heartbeat from a server at the current time. The reply is applied (unless frozen) and, as
   * a real server does after a role change, the server heartbeats again at once.
   */
  hb(id: string, echo = true): Result<HeartbeatReply> {
    const fake = this.server(id);
    const result = this.faults.heartbeat(fake.id, this.input(fake), this.now);
    fake.lastResult = result;
    let changed = false;
    if (result.ok) {
      fake.lastReply = result.value;
      if (!fake.frozen) changed = this.applyReply(fake, result.value);
    }
    this.flush();
    if (changed && echo) this.hb(id, false);
    return result;
  }

  private applyReply(fake: FakeServer, reply: HeartbeatReply): boolean {
    let changed = false;
    const given = new Set<RegionId>();
    const peers = new Set<ServerId>();
    for (const a of reply.regions) {
      given.add(a.regionId);
      const held = fake.held.get(a.regionId);
      if (!held) {
        // A new backup copies the state of the primary it was given.
        const source = a.primary === null ? undefined : this.servers.get(a.primary.serverId)?.held.get(a.regionId);
        fake.held.set(a.regionId, { role: a.role, epoch: a.epoch, appliedSeq: source?.appliedSeq ?? 0 });
        changed = true;
      } else if (held.role !== a.role || held.epoch !== a.epoch) {
        held.role = a.role;
        held.epoch = a.epoch;
        changed = true;
      }
      for (const e of [a.primary, ...a.backups]) if (e && e.serverId !== fake.id) peers.add(e.serverId);
    }
    for (const id of [...fake.held.keys()]) if (!given.has(id)) fake.held.delete(id);
    fake.peers = peers;
    return changed;
  }

  /** Takes the coordinator's effects: events are recorded, persists are made durable if auto. */
  flush(): void {
    for (const effect of this.c.drain()) {
      if (effect.type === 'persist') {
        this.lastPersistSeq = effect.seq;
        if (this.autoDurable) this.c.markDurable(effect.seq);
      } else {
        this.events.push(effect.event);
      }
    }
  }

  /** Everything persisted so far is durable now. */
  makeDurable(): void {
    this.flush();
    this.c.markDurable(this.lastPersistSeq);
  }

  /** Moves the clock without ticking (for commands between ticks). */
  at(ms: number): void {
    if (ms < this.now) throw new Error(`time cannot go back from ${this.now} to ${ms}`);
    this.now = ms;
  }

  /**
   * Runs every tick up to `untilMs`: on whole heartbeat intervals every live server heartbeats
   * first, then the coordinator ticks.
   */
  run(untilMs: number, options: { heartbeats?: boolean } = {}): void {
    const tick = this.config.tickIntervalMs;
    while (this.nextTickMs <= untilMs) {
      this.at(Math.max(this.now, this.nextTickMs));
      if (options.heartbeats !== false && this.nextTickMs % this.config.heartbeatIntervalMs === 0) {
        for (const fake of this.servers.values()) if (fake.up) this.hb(fake.id);
      }
      this.faults.tick(this.now);
      this.flush();
      this.nextTickMs += tick;
    }
  }

  /** Skips ticks (the coordinator was stalled) so that the next tick is at `ms`. */
  stallUntil(ms: number): void {
    this.nextTickMs = ms;
  }

  /** The server stops sending; its peers report it silent from now on. */
  silence(id: string): void {
    this.server(id).up = false;
    this.silentSince.set(sid(id), this.now);
  }

  /** Only the server's link to the coordinator fails: it sends nothing, its peers still hear it. */
  cutLink(id: string): void {
    this.server(id).up = false;
  }

  /** The same process is heard again (it was paused or cut off), with what it held. */
  resume(id: string): void {
    this.server(id).up = true;
    this.silentSince.delete(sid(id));
  }

  /** The process restarted: new incarnation, nothing held. */
  restart(id: string): void {
    const fake = this.server(id);
    const n = Number(fake.incarnation.split('#')[1] ?? '1') + 1;
    fake.incarnation = `${fake.id}#${n}`;
    fake.held.clear();
    fake.peers.clear();
    this.resume(id);
  }

  /** Recorded events of some types, in order. */
  ofType<T extends MeshEventType>(...types: T[]): Extract<MeshEvent, { type: T }>[] {
    return this.events.filter((e): e is Extract<MeshEvent, { type: T }> => (types as string[]).includes(e.type));
  }

  /** Events recorded from now on (returns a function that lists them). */
  mark(): () => MeshEvent[] {
    const start = this.events.length;
    return () => this.events.slice(start);
  }
}

/**
 * The reference mesh of these tests: six servers of capacity 10 in zones a, b, c, registered in
 * the order a1, b1, c1, a2, b2, c2; `regions` regions created on them.
 */
export function standardMesh(options: { regions?: RegionInput[]; config?: MeshConfig } = {}): Mesh {
  const mesh = new Mesh(options.config === undefined ? {} : { config: options.config });
  for (const id of ['a1', 'b1', 'c1', 'a2', 'b2', 'c2']) mesh.register(id, id[0] ?? '?');
  mesh.createRegions(options.regions ?? [{}]);
  return mesh;
}

/**
 * The standard mesh with every server over a session (its replies grant the short session lease),
 * `prepare` applied, then run until `untilMs`.
 */
export function warmSessionMesh(untilMs: number, prepare: (mesh: Mesh) => void = () => {}): Mesh {
  const mesh = standardMesh();
  for (const id of mesh.servers.keys()) mesh.server(id).leaseMs = mesh.config.sessionLeaseMs;
  prepare(mesh);
  mesh.run(untilMs);
  return mesh;
}

/**
 * When the coordinator should fail a server that registered at 0, heartbeated on every interval up
 * to `lastMs` and then fell silent while its peers kept heartbeating on every interval, reporting
 * the silence: replays that history on a bare ServerDetector (unit-tested on its own) and returns
 * the first tick at which it says failed. The coordinator tests check that the coordinator acts at
 * exactly that tick, whatever the detector's tuning.
 */
export function expectedDetection(config: MeshConfig, lastMs: number): { atMs: number; reason: string } {
  const detector = new ServerDetector(config, 0);
  for (let t = config.heartbeatIntervalMs; t <= lastMs; t += config.heartbeatIntervalMs) detector.heartbeat(t);
  for (let t = lastMs + config.tickIntervalMs; ; t += config.tickIntervalMs) {
    if (t % config.heartbeatIntervalMs === 0) detector.peerReport(sid('peer'), t - lastMs, t);
    const verdict = detector.assess(t, () => true);
    if (verdict.state === 'failed') return { atMs: t, reason: verdict.reason };
  }
}
