/**
 * Server sessions in the simulator (issue 17): each simulated server holds one long-lived session
 * with the coordinator, as `clients/ts/mesh-session.ts` does with the service's session hub
 * (`api/session/session-hub.ts`), and this layer plays both ends over virtual time:
 * - heartbeats (asking for the short `sessionLeaseMs`) and their replies, in order on the session
 *   (TCP: a lost segment is retransmitted, so a message is late, never lost or overtaken);
 * - pushes: once the coordinator's effects are handed on (its decisions durable), every server
 *   whose assignment changed is sent it, one push latency after the change;
 * - lease renewals: a primary sends `renew` at the cadence the coordinator asks for
 *   (`sessionLeaseRenewalIntervalMs`) and serves until `leaseMs` after it sent the renew answered;
 * - closes: a crashed process's sockets close at once, so the coordinator sees its session end
 *   without a leave (`Coordinator.sessionClosed`) and its replication peers, whose links broke too,
 *   heartbeat once their silence reaches the confirmation window; silent failures (a partition, a
 *   stopped process, a host that vanished) close nothing and keep the phi path;
 * - cuts: the coordinator drops sessions (or a proxy in between restarts) while the servers stay
 *   healthy; they reconnect with jittered exponential back-off, as the TypeScript client does.
 */
import type { HeartbeatInput, HeartbeatReply } from '../core/heartbeat.ts';
import type { ServerId } from '../base/types.ts';
import type { SeededRandom } from '../runtime/random.ts';
import type { SimulatedFleet } from './fleet.ts';
import type { NetworkModel } from './network.ts';
import type { SimServer } from './sim-server.ts';
import { sessionFingerprint } from './session-fingerprint.ts';
import { SessionWire, type ClientEnd } from './session-wire.ts';

/** Options of the session model. */
export interface SessionOptions {
  /**
   * Time from the change that concerns a server to its push leaving the coordinator: the hub
   * gathers the servers concerned once per event-loop turn and serialises their assignments.
   */
  readonly pushDelayMs?: number;
  /** First reconnect back-off ceiling; doubles per failed attempt (clients/ts MeshSession's default). */
  readonly initialBackoffMs?: number;
  /** Largest reconnect back-off ceiling (clients/ts MeshSession's default). */
  readonly maxBackoffMs?: number;
  /**
   * Whether primaries renew their lease over the session. Renewals feed only the lease book (never
   * the failure detector), so a property about detection alone may leave them out to run faster.
   */
  readonly leaseRenewals?: boolean;
}

/**
 * How long after a peer's replication link breaks the server heartbeats to report it: the
 * session's confirmation window (`sessionPeerSilenceMs`) plus a little, as a real server must have
 * been silent that long before its report confirms a crash (tests/e2e/session-game-server.ts).
 */
export const linkLossReportSlackMs = 10;

/** Counts of what flowed, for the properties' reports. */
export interface SessionCounters {
  pushes: number;
  renewals: number;
  closesSeen: number;
  reconnects: number;
}

/** Both ends of every simulated server's session. */
export class SessionLayer extends SessionWire {
  private sessionNumbers = 0;
  private pushScheduled = false;
  /** Until when connection attempts fail (a proxy restarting). */
  private refusedUntilMs = -Infinity;
  readonly counters: SessionCounters = { pushes: 0, renewals: 0, closesSeen: 0, reconnects: 0 };

  constructor(fleet: SimulatedFleet, private readonly random: SeededRandom, network: NetworkModel,
    private readonly options: SessionOptions) {
    super(fleet, network);
  }

  /** A server that joins the fleet starts with its session open. */
  open(server: SimServer): void {
    const number = ++this.sessionNumbers;
    this.clients.set(server.id, { number, open: true, attempt: 0, renewing: false, reconnecting: false, upAtMs: 0, downAtMs: 0 });
    this.hub.set(server.id, { number, lastSent: null, fingerprint: '' });
  }

  /** True while both ends hold the server's current session. */
  isOpen(id: ServerId): boolean {
    const client = this.clients.get(id);
    return client !== undefined && client.open && this.hub.get(id)?.number === client.number;
  }

  /** Sends a heartbeat over the session; dropped while it is closed (the client sends none then). */
  heartbeat(server: SimServer, input: HeartbeatInput, nowMs: number): void {
    const client = this.clients.get(server.id);
    if (client === undefined || !client.open) return;
    const body: HeartbeatInput = { ...input, leaseMs: this.fleet.core.config.sessionLeaseMs };
    this.up(server, client, nowMs, (atMs, hub) => {
      const result = this.fleet.deliverToCoordinator(server.id, body, atMs);
      if (!result.ok) return;
      if (result.value.demoted.length === 0) hub.lastSent = result.value;
      this.down(server, client, hub.number, atMs, (at) => this.receive(server, client, result.value, at));
    });
  }

  /**
   * The coordinator's decisions changed (effects were handed on, so what they announce is durable):
   * every server with a session whose assignment changed is pushed it, one push latency from now.
   */
  changed(nowMs: number): void {
    this.seen(nowMs);
    if (this.pushScheduled || this.hub.size === 0) return;
    this.pushScheduled = true;
    const first = this.hub.keys().next().value as ServerId;
    this.fleet.call(this.nowMs + (this.options.pushDelayMs ?? 1), first, (at) => this.push(at));
  }

  /** A crash: the process's sockets close, the session and every replication link with them. */
  crashed(server: SimServer, nowMs: number): void {
    this.seen(nowMs);
    const client = this.clients.get(server.id);
    if (client !== undefined) {
      client.open = false;
      client.renewing = false;
    }
    const hub = this.hub.get(server.id);
    if (hub !== undefined) this.fleet.call(nowMs + this.delay(server), server.id, (at) => this.closeSeen(server.id, hub.number, at));
    const reportAt = nowMs + this.fleet.core.config.sessionPeerSilenceMs + linkLossReportSlackMs;
    for (const peer of this.fleet.servers.values()) {
      if (peer === server || !peer.peers.has(server.id)) continue;
      this.fleet.call(reportAt, peer.id, (at) => {
        if (peer.reachable && peer.peers.has(server.id)) this.fleet.heartbeatNow(peer, at);
      });
    }
  }

  /** A crashed server's new process connects at once. */
  restarted(server: SimServer, nowMs: number): void {
    this.seen(nowMs);
    const client = this.clients.get(server.id);
    if (client === undefined) return;
    client.attempt = 0;
    client.reconnecting = true;
    this.fleet.call(nowMs, server.id, (at) => this.connect(server, client, at));
  }

  /**
   * Cuts the sessions of `ids` (default: every server's) at `nowMs` while the servers stay healthy:
   * the coordinator drops them, or, with `refusedForMs` > 0, a proxy in between restarts and refuses
   * connections that long. The coordinator sees every close at once; each server after a delay.
   */
  cut(nowMs: number, ids?: readonly ServerId[], refusedForMs = 0): void {
    this.seen(nowMs);
    this.refusedUntilMs = Math.max(this.refusedUntilMs, nowMs + refusedForMs);
    for (const id of ids ?? [...this.hub.keys()]) {
      const hub = this.hub.get(id);
      const server = this.fleet.servers.get(id);
      if (hub === undefined || server === undefined) continue;
      this.closeSeen(id, hub.number, nowMs);
      const client = this.clients.get(id);
      if (client === undefined || client.number !== hub.number) continue;
      this.fleet.call(nowMs + this.delay(server), id, (at) => this.clientClosed(server, client, hub.number, at));
    }
  }

  /** Forgets every session (test mesh reset). */
  clear(): void {
    this.clients.clear();
    this.hub.clear();
  }

  // ---- the coordinator's end -------------------------------------------------------------------

  /** The coordinator sees session `number` of `id` end without a leave: evidence of a crash. */
  private closeSeen(id: ServerId, number: number, nowMs: number): void {
    if (this.hub.get(id)?.number !== number) return;
    const paused = this.fleet.coordinatorPausedUntil;
    if (nowMs < paused) return this.fleet.call(paused, id, (at) => this.closeSeen(id, number, at));
    this.hub.delete(id);
    this.counters.closesSeen += 1;
    this.fleet.core.sessionClosed(id, nowMs);
  }

  private push(nowMs: number): void {
    this.seen(nowMs);
    this.pushScheduled = false;
    const { core } = this.fleet;
    for (const [id, hub] of this.hub) {
      const server = this.fleet.servers.get(id);
      const client = this.clients.get(id);
      if (server === undefined || client === undefined) continue;
      const fingerprint = sessionFingerprint(core, id);
      if (fingerprint === hub.fingerprint) continue;
      hub.fingerprint = fingerprint;
      // A push asks for no lease: the server takes its lease from renewals only (clients/ts
      // MeshSession ignores an assignment's lease_ms), so a lease granted here would only hold back
      // the failover of a primary that went silent, pushed when it turned suspect.
      const assignment = core.assignment(id, nowMs, 0);
      if (!assignment.ok) continue;
      if (hub.lastSent !== null && sameAssignment(assignment.value, hub.lastSent)) continue;
      hub.lastSent = assignment.value;
      this.counters.pushes += 1;
      this.down(server, client, hub.number, nowMs, (at) => this.receive(server, client, assignment.value, at));
    }
  }

  // ---- the server's end ------------------------------------------------------------------------

  /** Applies a reply or push; a primary starts renewing its lease if it does not yet. */
  private receive(server: SimServer, client: ClientEnd, reply: HeartbeatReply, nowMs: number): void {
    client.attempt = 0;
    this.fleet.applyAssignment(server, reply, nowMs);
    if (!client.renewing && isPrimary(server)) this.renew(server, client, nowMs);
  }

  /** Sends a renew; the answer sets the lease from this send time and schedules the next renew. */
  private renew(server: SimServer, client: ClientEnd, nowMs: number): void {
    if (this.options.leaseRenewals === false || !client.open || !server.reachable) return;
    client.renewing = true;
    const sentAtMs = nowMs;
    const number = client.number;
    // A renew or its answer lost with the session (or to a cut-off link) ends this round of renewals;
    // the next reply or push starts another.
    const lost = () => { if (client.number === number) client.renewing = false; };
    this.up(server, client, nowMs, (atMs) => {
      const granted = this.fleet.core.renewLease(server.id, atMs);
      const leaseMs = granted.ok ? granted.value : 0;
      this.counters.renewals += 1;
      this.down(server, client, number, atMs, (at) => {
        server.leaseUntilMs = leaseMs > 0 ? sentAtMs + leaseMs : -Infinity;
        this.fleet.onReplyApplied?.(server, at);
        const renewInMs = this.fleet.core.config.sessionLeaseRenewalIntervalMs;
        this.fleet.call(at + renewInMs, server.id, (next) => {
          if (client.number !== number) return;
          client.renewing = false;
          if (client.open && isPrimary(server)) this.renew(server, client, next);
        });
      }, lost);
    }, lost);
  }

  /** The server learns its session closed: it reconnects after a jittered back-off. */
  private clientClosed(server: SimServer, client: ClientEnd, number: number, nowMs: number): void {
    if (client.number !== number || !client.open) return;
    client.open = false;
    client.renewing = false;
    this.reconnectLater(server, client, nowMs);
  }

  /**
   * Full jitter within a heartbeat interval (clients/ts MeshSession): a fleet whose sessions all
   * dropped does not reconnect in one wave, and a server is heard within an interval of an outage's end.
   */
  private reconnectLater(server: SimServer, client: ClientEnd, nowMs: number): void {
    if (client.reconnecting || !server.up) return;
    const ceiling = Math.min(this.options.maxBackoffMs ?? 5000, server.intervalMs, (this.options.initialBackoffMs ?? 100) * 2 ** client.attempt);
    client.attempt += 1;
    client.reconnecting = true;
    this.fleet.call(nowMs + Math.floor(this.random.next() * ceiling), server.id, (at) => this.connect(server, client, at));
  }

  /**
   * One connection attempt: refused while a proxy restarts and lost while the server is cut off (it
   * retries after back-off); otherwise the upgrade reaches the hub (replacing any older session of
   * the server) and the server, once it sees the session open, heartbeats at once.
   */
  private connect(server: SimServer, client: ClientEnd, nowMs: number): void {
    client.reconnecting = false;
    if (!server.up) return;
    const there = nowMs + this.delay(server);
    if (!server.reachable || there < this.refusedUntilMs) {
      this.fleet.call(there + this.delay(server), server.id, (at) => this.reconnectLater(server, client, at));
      return;
    }
    const number = ++this.sessionNumbers;
    this.fleet.call(there, server.id, (atHub) => {
      if (!server.up) return;
      this.hub.set(server.id, { number, lastSent: null, fingerprint: '' });
      // From here the hub writes to the new socket; the server reads it once it sees it open, and
      // everything the hub sent arrives after that (deliveries are ordered by `downAtMs`).
      client.number = number;
      const back = Math.max(atHub + this.delay(server), client.downAtMs);
      client.downAtMs = back;
      this.fleet.call(back, server.id, (at) => {
        if (!server.up || client.number !== number) return;
        // Cut again before the server saw it open (its close raced the handshake): it sees it closed.
        if (this.hub.get(server.id)?.number !== number) return this.reconnectLater(server, client, at);
        client.open = true;
        client.upAtMs = at;
        this.counters.reconnects += 1;
        this.fleet.heartbeatNow(server, at);
      });
    });
  }

}

/** True when two assignments say the same, the lease aside (replies grant one, pushes none). */
function sameAssignment(a: HeartbeatReply, b: HeartbeatReply): boolean {
  return JSON.stringify({ ...a, leaseMs: 0 }) === JSON.stringify({ ...b, leaseMs: 0 });
}

function isPrimary(server: SimServer): boolean {
  for (const region of server.regions.values()) if (region.role === 'primary') return true;
  return false;
}
