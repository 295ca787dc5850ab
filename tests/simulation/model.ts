/**
 * The model of property 7 (model.test.ts): a model-based test of the core's command interface with `fc.commands`: register
 * servers, create regions, heartbeats (from servers that remember what the coordinator told them),
 * ticks, crashes and restarts, partitions, a coordinator stall (TILT), player actions, collection
 * and acknowledgement by the primary, graceful leave, group commit (export the state, then mark it
 * durable) and a coordinator restart from the last persisted state. After every command:
 * - the safety checker (one primary per region per epoch as recorded, announced and believed;
 *   epochs and announced epochs never decrease, and never below an announced epoch across a
 *   restart; shape of every region; phase and status counters equal a recount of the records;
 *   buffered == replayed + expired + pending; per-player bound; demotion of stale primaries);
 * - every accepted action is in exactly one state (acknowledged, expired, pending), where after a
 *   restart only what was persisted counts as accepted, acknowledged or expired;
 * - the model's own expectations of each command (what registration, creation, leave, restart and
 *   a stall must do).
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Coordinator } from '../../mesh/core/coordinator.ts';
import { testMeshConfig } from '../../mesh/base/config.ts';
import type { HeartbeatReply } from '../../mesh/core/heartbeat.ts';
import type { CoreState } from '../../mesh/core/state.ts';
import type { RegionId, Role, ServerId } from '../../mesh/base/types.ts';
import { SafetyChecker, type Belief, type KnownKind } from '../../mesh/simulation/checkers.ts';
import { SeededRandom } from '../../mesh/runtime/random.ts';
import { observeCore } from '../../mesh/simulation/scenario.ts';

const config = { ...testMeshConfig, actionBufferMaxPerPlayer: 3, actionBufferMaxAgeMs: 4000 };

/** A server as the test drives it: what it was told, whether it runs and is reachable. */
interface ModelServer {
  readonly id: ServerId;
  up: boolean;
  reachable: boolean;
  downSinceMs: number;
  incarnation: number;
  nextBeatMs: number;
  regions: Map<RegionId, { role: Role; epoch: number }>;
  peers: Set<ServerId>;
}

/** The system under test and the test's memory of it. */
export interface Real {
  core: Coordinator;
  readonly checker: SafetyChecker;
  readonly random: SeededRandom;
  persisted: CoreState | null;
  nowMs: number;
  readonly servers: ModelServer[];
  readonly regions: RegionId[];
  readonly playerSeq: Map<string, number>;
  failuresInLastTick: number;
  /** Whether this coordinator instance has ticked (a stall is only visible after a tick). */
  ticked: boolean;
  /** Ids are never reused: a physical server or region keeps its id for the whole run. */
  nextId: number;
  readonly zones: Map<ServerId, { zone: string; capacity: number }>;
}

/** What commands need to decide whether they apply. */
export interface Model {
  servers: number;
  regions: number;
}

function newCore(real: Pick<Real, 'random' | 'checker'>, nowMs: number, state?: CoreState): Coordinator {
  const core = new Coordinator(config, nowMs, state);
  observeCore(core, real.checker.observer());
  return core;
}

/** Effects: events are looked at, persistence waits for the Persist command (group commit). */
function drain(real: Real): void {
  for (const effect of real.core.drain()) {
    if (effect.type === 'emit' && effect.event.type === 'server_failure_detected') real.failuresInLastTick++;
  }
}

function beat(real: Real, server: ModelServer): void {
  if (!server.up || !server.reachable) return;
  const input = {
    incarnation: `${server.id}#${server.incarnation}`, players: 0,
    regions: [...server.regions].map(([regionId, r]) => ({ regionId, role: r.role, epoch: r.epoch, appliedSeq: Math.floor(real.nowMs / 10) })),
    peers: [...server.peers].map((peerId) => {
      const peer = real.servers.find((p) => p.id === peerId);
      return { serverId: peerId, silentForMs: peer && (!peer.up || !peer.reachable) ? real.nowMs - peer.downSinceMs : 10 };
    }),
  };
  const result = real.core.heartbeat(server.id, input, real.nowMs);
  drain(real);
  if (result.ok) {
    adopt(server, result.value);
  } else if (result.code === 'unknown_server') {
    // The coordinator lost a registration that was never persisted: the server registers again.
    const known = real.zones.get(server.id);
    if (known) real.core.registerServer({ id: server.id, address: 'model://', ...known }, real.nowMs);
    drain(real);
  }
}

/** The server follows the reply: roles and epochs given, regions not given dropped. */
function adopt(server: ModelServer, reply: HeartbeatReply): void {
  const next = new Map<RegionId, { role: Role; epoch: number }>();
  server.peers = new Set();
  for (const a of reply.regions) {
    next.set(a.regionId, { role: a.role, epoch: a.epoch });
    for (const e of [a.primary, ...a.backups]) if (e && e.serverId !== server.id) server.peers.add(e.serverId);
  }
  server.regions = next;
}

/** Moves time on tick by tick; running servers heartbeat once a second. */
function advance(real: Real, ms: number, ticks = true): void {
  const target = real.nowMs + ms;
  const tickMs = config.tickIntervalMs;
  for (let t = Math.floor(real.nowMs / tickMs) * tickMs + tickMs; t <= target; t += tickMs) {
    real.nowMs = t;
    if (!ticks) continue;
    for (const s of real.servers) {
      if (s.nextBeatMs <= t) {
        s.nextBeatMs = t + config.heartbeatIntervalMs;
        beat(real, s);
      }
    }
    real.failuresInLastTick = 0;
    real.core.tick(t);
    real.ticked = true;
    drain(real);
  }
  real.nowMs = target;
}

function persist(real: Real): void {
  const seq = real.core.changeSeq();
  real.persisted = real.core.exportState(real.nowMs);
  real.core.markDurable(seq);
  real.checker.persisted();
}

function beliefs(real: Real): Belief[] {
  return real.servers.filter((s) => s.up).flatMap((s) => [...s.regions].map(([regionId, r]) => ({ serverId: s.id, regionId, role: r.role, epoch: r.epoch })));
}

/** Everything checked after every command. */
function checkAll(real: Real, after: string): void {
  real.checker.afterStep(real.nowMs);
  real.checker.checkBeliefs(beliefs(real), real.nowMs);
  assert.deepEqual(real.checker.violations, [], `invariant broken after ${after}`);
  assert.deepEqual(real.checker.accountingProblems(), [], `actions not accounted for after ${after}`);
}

export type Cmd = fc.Command<Model, Real>;
const pick = <T>(items: readonly T[], index: number): T | undefined => items.length === 0 ? undefined : items[index % items.length];

const command = (name: string, applies: (m: Model) => boolean, body: (m: Model, r: Real) => void): Cmd => ({
  check: applies,
  run: (m, r) => {
    body(m, r);
    checkAll(r, name);
  },
  toString: () => name,
});

/** Every command of the model, by name (regression seeds replay explicit sequences of them). */
export const make = {
  addServer: (zone: number, capacity: number): Cmd =>
    command(`AddServer(zone-${zone}, ${capacity})`, () => true, (m, r) => {
      const id = `m-srv-${r.nextId++}` as ServerId;
      const result = r.core.registerServer({ id, address: 'model://', zone: `zone-${zone}`, capacity }, r.nowMs);
      drain(r);
      assert.ok(result.ok, 'a fresh server id must register');
      assert.equal(result.value.status, 'alive');
      r.zones.set(id, { zone: `zone-${zone}`, capacity });
      r.servers.push({ id, up: true, reachable: true, downSinceMs: 0, incarnation: 1, nextBeatMs: r.nowMs, regions: new Map(), peers: new Set() });
      m.servers = r.servers.length;
    }),
  addRegions: (count: number, critical: boolean): Cmd =>
    command(`AddRegions(${count}${critical ? ', critical' : ''})`, (m) => m.servers > 0, (m, r) => {
      const before = r.core.records().regions.size;
      const result = r.core.createRegions(Array.from({ length: count }, () => ({ id: `m-reg-${r.nextId++}`, critical, players: count })), r.nowMs);
      drain(r);
      if (result.ok) {
        assert.equal(r.core.records().regions.size, before + count);
        for (const region of result.value) if (!r.regions.includes(region.id)) r.regions.push(region.id);
      } else {
        assert.equal(result.code, 'no_capacity');
        assert.equal(r.core.records().regions.size, before, 'a refused batch must change nothing');
      }
      m.regions = r.regions.length;
    }),
  beat: (i: number): Cmd => command(`Beat(${i})`, (m) => m.servers > 0, (_m, r) => {
    const s = pick(r.servers, i);
    if (s) beat(r, s);
  }),
  advance: (ms: number): Cmd => command(`Advance(${ms})`, () => true, (_m, r) => advance(r, ms)),
  crash: (i: number): Cmd => command(`Crash(${i})`, (m) => m.servers > 0, (_m, r) => {
    const s = pick(r.servers, i);
    if (!s?.up) return;
    s.up = false;
    s.downSinceMs = r.nowMs;
    s.regions = new Map();
    s.peers = new Set();
  }),
  restart: (i: number): Cmd => command(`Restart(${i})`, (m) => m.servers > 0, (_m, r) => {
    const s = pick(r.servers, i);
    if (!s || s.up) return;
    s.up = true;
    s.incarnation++;
    s.nextBeatMs = r.nowMs;
  }),
  partition: (i: number): Cmd => command(`Partition(${i})`, (m) => m.servers > 0, (_m, r) => {
    const s = pick(r.servers, i);
    if (s?.reachable) {
      s.reachable = false;
      s.downSinceMs = r.nowMs;
    }
  }),
  heal: (i: number): Cmd => command(`Heal(${i})`, (m) => m.servers > 0, (_m, r) => {
    const s = pick(r.servers, i);
    if (s) s.reachable = true;
  }),
  submit: (region: number, player: number): Cmd =>
    command(`Submit(${region}, p${player})`, (m) => m.regions > 0, (_m, r) => {
      const id = pick(r.regions, region);
      if (id === undefined || !r.core.records().regions.has(id)) return;
      const key = `${id}/p${player}`;
      const seq = (r.playerSeq.get(key) ?? 0) + 1;
      const result = r.core.submitAction(id, { playerId: `p${player}`, seq, payload: { seq } }, r.nowMs);
      drain(r);
      if (result.ok) r.playerSeq.set(key, seq);
      else assert.ok(['region_healthy', 'buffer_full'].includes(result.code), `unexpected refusal ${result.code}`);
    }),
  replay: (region: number, acks: number): Cmd =>
    command(`Replay(${region}, ${acks})`, (m) => m.regions > 0, (_m, r) => {
      const id = pick(r.regions, region);
      const leader = r.servers.find((s) => s.up && s.reachable && id !== undefined && s.regions.get(id)?.role === 'primary');
      if (id === undefined || !leader) return;
      const collected = r.core.collectActions(id, leader.id, r.nowMs);
      if (!collected.ok) return;
      r.core.acknowledgeActions(id, leader.id, collected.value.actions.slice(0, acks).map((a) => ({ playerId: a.playerId, seq: a.seq })), r.nowMs);
      drain(r);
    }),
  leave: (i: number): Cmd => command(`Leave(${i})`, (m) => m.servers > 0, (_m, r) => {
    const s = pick(r.servers, i);
    if (!s) return;
    const result = r.core.leave(s.id, r.nowMs);
    drain(r);
    if (result.ok) assert.ok(['draining', 'left', 'failed'].includes(result.value.status), `leave left ${s.id} ${result.value.status}`);
  }),
  persist: (): Cmd => command('Persist', () => true, (_m, r) => persist(r)),
  restartCoordinator: (): Cmd => command('RestartCoordinator', () => true, (_m, r) => {
    if (r.persisted === null) return;
    const saved = r.persisted;
    r.core = newCore(r, r.nowMs, saved);
    r.ticked = false;
    r.checker.coordinatorRestarted(r.nowMs);
    assert.deepEqual([...r.core.records().servers.keys()].sort(), saved.servers.map((s) => s.id).sort(), 'restored servers differ');
    assert.deepEqual([...r.core.records().regions.keys()].sort(), saved.regions.map((x) => x.id).sort(), 'restored regions differ');
  }),
  stall: (ms: number): Cmd => command(`Stall(${ms})`, () => true, (_m, r) => {
    const visible = r.ticked;
    advance(r, ms, false);
    advance(r, config.tickIntervalMs);
    // A stall is only visible to a coordinator that ticked before it (the gap between two ticks).
    if (!visible) return;
    assert.ok(r.core.tilted(r.nowMs), `no TILT after a ${ms} ms stall`);
    assert.equal(r.failuresInLastTick, 0, `a failure was declared in the first tick after a ${ms} ms stall`);
  }),
};

/** Every command of the model, as fast-check arbitraries. */
export const commands: fc.Arbitrary<Cmd>[] = [
  fc.record({ zone: fc.integer({ min: 0, max: 2 }), capacity: fc.integer({ min: 2, max: 6 }) }).map(({ zone, capacity }) => make.addServer(zone, capacity)),
  fc.record({ count: fc.integer({ min: 1, max: 3 }), critical: fc.boolean() }).map(({ count, critical }) => make.addRegions(count, critical)),
  fc.integer({ min: 0, max: 20 }).map((i) => make.beat(i)),
  fc.integer({ min: 100, max: 4000 }).map((ms) => make.advance(ms)),
  fc.integer({ min: 0, max: 20 }).map((i) => make.crash(i)),
  fc.integer({ min: 0, max: 20 }).map((i) => make.restart(i)),
  fc.integer({ min: 0, max: 20 }).map((i) => make.partition(i)),
  fc.integer({ min: 0, max: 20 }).map((i) => make.heal(i)),
  fc.record({ region: fc.integer({ min: 0, max: 30 }), player: fc.integer({ min: 0, max: 2 }) }).map(({ region, player }) => make.submit(region, player)),
  fc.record({ region: fc.integer({ min: 0, max: 30 }), acks: fc.integer({ min: 0, max: 5 }) }).map(({ region, acks }) => make.replay(region, acks)),
  fc.integer({ min: 0, max: 20 }).map((i) => make.leave(i)),
  fc.constant(null).map(() => make.persist()),
  fc.constant(null).map(() => make.restartCoordinator()),
  fc.integer({ min: 2500, max: 8000 }).map((ms) => make.stall(ms)),
];

/**
 * Runs one command sequence against a fresh coordinator seeded with `seed`; throws on the first
 * broken invariant. Returns the checker so that callers can look at violations of known kinds.
 */
export function runModel(seed: number, cmds: Iterable<Cmd>, knownKinds: readonly KnownKind[]): SafetyChecker {
  const random = new SeededRandom(seed);
  const checker: SafetyChecker = new SafetyChecker(() => real.core, () => null, knownKinds);
  const real: Real = {
    core: undefined as unknown as Coordinator, checker, random, persisted: null, nowMs: 0, servers: [], regions: [],
    playerSeq: new Map(), failuresInLastTick: 0, ticked: false, nextId: 1, zones: new Map(),
  };
  real.core = newCore(real, 0);
  fc.modelRun(() => ({ model: { servers: 0, regions: 0 }, real }), cmds);
  return checker;
}

/** The model's command sequences (`replayPath` replays a failure fast-check reported). */
export const commandsArb = (replayPath?: string) => fc.commands(commands, { maxCommands: 80, size: 'max', replayPath });
