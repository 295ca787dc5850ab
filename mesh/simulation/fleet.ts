/**
 * The simulated fleet: servers that heartbeat through the network model, replicate, acknowledge
 * promotions and replay buffered actions, and players who submit actions while their region fails
 * over. Everything is driven by one seeded PRNG and a queue of timed messages, so a run is
 * reproduced exactly from its seed. The same fleet backs `POST /mesh/setup_test` and the tests.
 */
import type { Coordinator } from '../core/coordinator.ts';
import type { InjectedFault } from '../faults/faults.ts';
import { flapDownMs, flapUpMs } from '../faults/faults.ts';
import type { HeartbeatInput, HeartbeatReply } from '../core/heartbeat.ts';
import { MinHeap } from '../base/heap.ts';
import type { RegionId, ServerId } from '../base/types.ts';
import { deliver, standardNetwork, type NetworkModel } from './network.ts';
import type { SeededRandom } from '../runtime/random.ts';
import type { HeartbeatSink } from '../runtime/runtime.ts';
import { replicationIntervalMs, SimServer, type SimRegion } from './sim-server.ts';
import { ActionLedger } from './ledger.ts';
import { SessionLayer, type SessionOptions } from './sessions.ts';

type Message =
  | { kind: 'send'; serverId: ServerId; scheduled: boolean }
  | { kind: 'deliver'; serverId: ServerId; incarnation: string; input: HeartbeatInput; sentAtMs: number }
  | { kind: 'reply'; serverId: ServerId; incarnation: string; reply: HeartbeatReply; sentAtMs: number }
  | { kind: 'restore'; serverId: ServerId; faultId: string; action: 'heal' | 'restart' | 'flap_down' | 'flap_up' }
  | { kind: 'call'; serverId: ServerId; run: (nowMs: number) => void };

interface Timed {
  readonly atMs: number;
  readonly order: number;
  readonly message: Message;
}

/** Options of a simulated fleet. */
export interface FleetOptions {
  readonly network?: NetworkModel;
  /** Simulated players per region, who act while their region fails over (0: no actions). */
  readonly playersPerRegion?: number;
  /** Actions per second per player while the region has no primary. */
  readonly actionsPerSecond?: number;
  /** Servers hold a session (mesh/simulation/sessions.ts) instead of heartbeating over HTTP. */
  readonly sessions?: SessionOptions;
}

/** Simulated servers and players around one coordinator. */
export class SimulatedFleet {
  readonly servers = new Map<ServerId, SimServer>();
  readonly ledger = new ActionLedger();
  private readonly queue = new MinHeap<Timed>((a, b) => a.atMs !== b.atMs ? a.atMs < b.atMs : a.order < b.order);
  private order = 0;
  private readonly network: NetworkModel;
  /** Regions without an acknowledged primary, where players buffer actions. */
  private readonly failing = new Set<RegionId>();
  private readonly playerSeq = new Map<string, number>();
  /** Where heartbeats go: the coordinator, or the fault layer around it once a runtime drives the fleet. */
  private heartbeatSink: HeartbeatSink = (id, input, nowMs) => this.coordinator.heartbeat(id, input, nowMs);
  /** While the coordinator's process is paused (a stall), heartbeats wait in its socket until then. */
  private coordinatorPausedUntilMs = -Infinity;
  /** Sees every reply a server applied, right after (the lease checker). */
  onReplyApplied: ((server: SimServer, nowMs: number) => void) | null = null;
  /** The servers' sessions, when they hold one (`FleetOptions.sessions`). */
  readonly sessions: SessionLayer | null;

  constructor(private coordinator: Coordinator, private readonly random: SeededRandom,
    private readonly options: FleetOptions = {}) {
    this.network = options.network ?? standardNetwork;
    // Forked only with sessions, so that runs without them keep their random streams (and seeds).
    this.sessions = options.sessions === undefined ? null : new SessionLayer(this, random.fork(), this.network, options.sessions);
  }

  /** The coordinator the fleet talks to (the current process's). */
  get core(): Coordinator {
    return this.coordinator;
  }

  /** The coordinator restarted (a new process): players and primaries talk to the new one. */
  reattach(coordinator: Coordinator): void {
    this.coordinator = coordinator;
  }

  /** Sends heartbeats through `sink` from now on. */
  sendHeartbeatsTo(sink: HeartbeatSink): void {
    this.heartbeatSink = sink;
  }

  /** Adds a simulated server already registered with the coordinator. */
  addServer(id: ServerId, address: string, nowMs: number): SimServer {
    const server = new SimServer(id, address, this.random.fork(), nowMs, this.coordinator.config.heartbeatIntervalMs);
    this.servers.set(id, server);
    this.push(server.nextHeartbeatAtMs, { kind: 'send', serverId: id, scheduled: true });
    this.sessions?.open(server);
    return server;
  }

  /**
   * The coordinator's whole process is paused until `untilMs`: heartbeats that arrive meanwhile
   * are read when it resumes, and no reply leaves it before then.
   */
  pauseCoordinatorUntil(untilMs: number): void {
    this.coordinatorPausedUntilMs = Math.max(this.coordinatorPausedUntilMs, untilMs);
  }

  /** Gives every simulated server the regions the coordinator assigned to it (initial placement). */
  adoptAssignments(nowMs: number): void {
    for (const server of this.servers.values()) {
      for (const region of this.coordinator.hostedBy(server.id)) {
        const role = region.primary === server.id ? 'primary' : 'backup';
        // The initial placement of a brand-new region; the servers start holding it at once.
        server.hold(region.id, { role, epoch: region.epoch, syncedToMs: nowMs, primaryId: region.primary, copiedFrom: null });
      }
      server.peers = this.coordinator.peersOf(server.id);
    }
  }

  /** Notes the coordinator's events that matter to players. */
  observe(type: string, regionId: RegionId | undefined): void {
    if (regionId === undefined) return;
    if (type === 'failover_initiated') this.failing.add(regionId);
    else if (type === 'failover_completed') this.failing.delete(regionId);
  }

  /** Delivers every message due up to `untilMs`, in time order. */
  runUntil(untilMs: number): void {
    for (let next = this.queue.peek(); next !== undefined && next.atMs <= untilMs; next = this.queue.peek()) {
      this.queue.pop();
      this.handle(next.message, next.atMs);
    }
  }

  /** Players of failing regions submit actions for one tick of `tickMs`. */
  playTick(nowMs: number, tickMs: number): void {
    const players = this.options.playersPerRegion ?? 0;
    const rate = (this.options.actionsPerSecond ?? 2) * tickMs / 1000;
    if (players === 0) return;
    for (const regionId of this.failing) {
      for (let p = 0; p < players; p++) {
        if (!this.random.chance(rate)) continue;
        const key = `${regionId}/p${p}`;
        const seq = (this.playerSeq.get(key) ?? 0) + 1;
        this.playerSeq.set(key, seq);
        const result = this.coordinator.submitAction(regionId, { playerId: `p${p}`, seq, payload: { n: seq } }, nowMs);
        if (result.ok && result.value.status === 'buffered') this.ledger.accepted(regionId, `p${p}`, seq);
        else if (!result.ok && result.code === 'region_healthy') this.failing.delete(regionId);
      }
    }
  }

  /** Carries out an injected fault on the simulated servers it names. */
  inject(fault: InjectedFault, nowMs: number): void {
    for (const id of fault.serverIds) {
      const server = this.servers.get(id);
      if (!server || !server.up) continue;
      this.startFault(server, fault, nowMs);
    }
  }

  private startFault(server: SimServer, fault: InjectedFault, nowMs: number): void {
    const until = fault.untilMs;
    // The newest fault on a server replaces the one before, as in the coordinator's FaultRegistry
    // (only the latest fault per server counts, and only its end is honoured below): whatever the
    // earlier fault did to the link ends now. Without this, a slow link outlived a later fault's
    // end for good, and the server's heartbeats stayed seconds late after every fault had ended.
    server.extraDelayMs = 0;
    server.unreachableSince = null;
    const restore = (atMs: number, action: 'heal' | 'restart' | 'flap_down' | 'flap_up') =>
      this.push(atMs, { kind: 'restore', serverId: server.id, faultId: fault.id, action });
    if (fault.mode === 'crash') {
      server.crash(nowMs);
      this.sessions?.crashed(server, nowMs);
      if (until !== null) restore(until, 'restart');
    } else if (fault.mode === 'partition' || fault.mode === 'flap') {
      server.unreachableSince = nowMs;
      if (fault.mode === 'flap') restore(nowMs + flapDownMs, 'flap_up');
      else if (until !== null) restore(until, 'heal');
    } else {
      server.extraDelayMs = fault.delayMs;
      if (until !== null) restore(until, 'heal');
    }
    this.faultEnds.set(server.id, { id: fault.id, untilMs: until });
  }

  private readonly faultEnds = new Map<ServerId, { id: string; untilMs: number | null }>();

  private handle(message: Message, nowMs: number): void {
    const server = this.servers.get(message.serverId);
    if (!server) return;
    if (message.kind === 'send') this.send(server, nowMs, message.scheduled);
    else if (message.kind === 'deliver') this.deliverHeartbeat(server, message, nowMs);
    else if (message.kind === 'reply') this.receiveReply(server, message, nowMs);
    else if (message.kind === 'call') message.run(nowMs);
    else this.restore(server, message.faultId, message.action, nowMs);
  }

  private send(server: SimServer, nowMs: number, scheduled: boolean): void {
    if (!server.up) return;
    if (scheduled) {
      server.nextHeartbeatAtMs = nowMs + server.intervalMs;
      this.push(server.nextHeartbeatAtMs, { kind: 'send', serverId: server.id, scheduled: true });
    }
    server.advanceState(nowMs, this.sourceOf);
    const input = server.heartbeat(nowMs, (peer) => this.silentFor(server, peer, nowMs), this.playersOf(server));
    if (!server.reachable) return;
    if (this.sessions !== null) {
      this.sessions.heartbeat(server, input, nowMs);
      return;
    }
    const delay = deliver(this.network, server.random);
    if (delay === null) return;
    this.push(nowMs + delay + server.extraDelayMs,
      { kind: 'deliver', serverId: server.id, incarnation: server.incarnation, input, sentAtMs: nowMs });
  }

  private deliverHeartbeat(server: SimServer, message: Extract<Message, { kind: 'deliver' }>, nowMs: number): void {
    if (nowMs < this.coordinatorPausedUntilMs) {
      this.push(this.coordinatorPausedUntilMs, message);
      return;
    }
    const result = this.heartbeatSink(server.id, message.input, nowMs);
    if (!result.ok) return;
    const delay = deliver(this.network, server.random);
    if (delay === null) return;
    this.push(nowMs + delay,
      { kind: 'reply', serverId: server.id, incarnation: message.incarnation, reply: result.value, sentAtMs: message.sentAtMs });
  }

  private receiveReply(server: SimServer, message: Extract<Message, { kind: 'reply' }>, nowMs: number): void {
    const { reply } = message;
    if (!server.reachable || server.incarnation !== message.incarnation || !server.acceptReply(reply, message.sentAtMs)) return;
    this.applyAssignment(server, reply, nowMs);
  }

  /**
   * Applies an assignment the server took (a heartbeat's reply or, over a session, a push): roles,
   * buffered actions to replay, and a heartbeat at once after a role change or sooner if asked.
   */
  applyAssignment(server: SimServer, reply: HeartbeatReply, nowMs: number): void {
    const changed = server.applyReply(reply, nowMs, this.sourceOf);
    this.onReplyApplied?.(server, nowMs);
    for (const assignment of reply.regions) {
      if (assignment.role === 'primary' && assignment.actionsPending > 0) this.replay(server, assignment.regionId, nowMs);
    }
    if (changed) {
      this.push(nowMs, { kind: 'send', serverId: server.id, scheduled: false });
    } else if (reply.heartbeatIntervalMs < server.intervalMs) {
      this.expedite(server, nowMs, nowMs + reply.heartbeatIntervalMs);
    }
  }

  /** Honours a reply's request for an earlier heartbeat (at most one extra send pending). */
  private expedite(server: SimServer, nowMs: number, atMs: number): void {
    if (atMs >= server.nextHeartbeatAtMs) return;
    if (server.expeditedAtMs > nowMs && server.expeditedAtMs <= atMs) return;
    server.expeditedAtMs = atMs;
    this.push(atMs, { kind: 'send', serverId: server.id, scheduled: false });
  }

  /** The new primary collects buffered actions, applies them (ledger) and acknowledges them. */
  private replay(server: SimServer, regionId: RegionId, nowMs: number): void {
    const collected = this.coordinator.collectActions(regionId, server.id, nowMs);
    if (!collected.ok) return;
    const acks = collected.value.actions.map((a) => ({ playerId: a.playerId, seq: a.seq }));
    // Delivery is at least once until acknowledged (an acknowledgement lost with a coordinator
    // crash hands the action out again); the primary applies each (player, seq) at most once.
    for (const a of acks) if (!this.ledger.wasApplied(regionId, a.playerId, a.seq)) this.ledger.applied(regionId, a.playerId, a.seq);
    const result = this.coordinator.acknowledgeActions(regionId, server.id, acks, nowMs);
    if (result.ok) this.failing.delete(regionId);
  }

  private restore(server: SimServer, faultId: string, action: string, nowMs: number): void {
    if (this.faultEnds.get(server.id)?.id !== faultId) return;
    const until = this.faultEnds.get(server.id)?.untilMs ?? null;
    if (action === 'restart') {
      server.restart(nowMs);
      this.push(server.nextHeartbeatAtMs, { kind: 'send', serverId: server.id, scheduled: true });
      this.sessions?.restarted(server, nowMs);
    } else if (action === 'heal') {
      server.unreachableSince = null;
      server.extraDelayMs = 0;
    } else if (action === 'flap_up') {
      server.unreachableSince = null;
      if (until === null || nowMs + flapUpMs < until) {
        this.push(nowMs + flapUpMs, { kind: 'restore', serverId: server.id, faultId, action: 'flap_down' });
      }
    } else if (action === 'flap_down' && server.up) {
      server.unreachableSince = nowMs;
      const end = Math.min(nowMs + flapDownMs, until ?? Infinity);
      this.push(end, { kind: 'restore', serverId: server.id, faultId, action: 'flap_up' });
    }
  }

  /** How long ago `server` last heard `peer` over the replication stream. */
  private silentFor(server: SimServer, peerId: ServerId, nowMs: number): number {
    const peer = this.servers.get(peerId);
    if (!peer) return 0;
    if (peer.unreachableSince !== null) return Math.max(0, nowMs - peer.unreachableSince);
    return Math.floor(server.random.next() * replicationIntervalMs);
  }

  private playersOf(server: SimServer): number {
    let players = 0;
    for (const [regionId, r] of server.regions) {
      if (r.role === 'primary') players += this.coordinator.records().regions.get(regionId)?.players ?? 0;
    }
    return players;
  }

  /**
   * The holding a server can copy a region's state from: its own, if it is up and reachable (so
   * that replication flows) and holds the region at all. A server that restarted empty or dropped
   * the region has nothing to give. Whether the holding itself carries the region's real state is
   * for the lineage checker to judge (it follows `copiedFrom`), not for the network.
   */
  private readonly sourceOf = (id: ServerId, regionId: RegionId): SimRegion | null => {
    const server = this.servers.get(id);
    return (server?.reachable ? server.regions.get(regionId) : undefined) ?? null;
  };

  private push(atMs: number, message: Message): void {
    this.queue.push({ atMs, order: this.order++, message });
  }

  /** Runs `run` at `atMs` among the fleet's messages (the session layer's deliveries and timers). */
  call(atMs: number, serverId: ServerId, run: (nowMs: number) => void): void {
    this.push(atMs, { kind: 'call', serverId, run });
  }

  /** The server heartbeats at `atMs` besides its schedule (a role change, a peer's stream broke). */
  heartbeatNow(server: SimServer, atMs: number): void {
    this.push(atMs, { kind: 'send', serverId: server.id, scheduled: false });
  }

  /** Hands a heartbeat to the coordinator as delivered at `nowMs` (through the fault layer once a runtime drives the fleet). */
  deliverToCoordinator(id: ServerId, input: HeartbeatInput, nowMs: number): ReturnType<HeartbeatSink> {
    return this.heartbeatSink(id, input, nowMs);
  }

  /** Until when the coordinator's process is paused (a stall): nothing it receives is read before then. */
  get coordinatorPausedUntil(): number {
    return this.coordinatorPausedUntilMs;
  }

  /** Removes every simulated server (test mesh reset). */
  clear(): void {
    this.sessions?.clear();
    this.servers.clear();
    this.failing.clear();
    while (this.queue.pop() !== undefined) { /* drain */ }
  }
}
