/**
 * The wire of the simulated sessions (mesh/simulation/sessions.ts): both ends of each server's
 * session and the ordered delivery between them. A session is one TCP connection: messages each
 * way arrive in the order they were sent, and one the network model loses is retransmitted, so it
 * is late, never lost; a message of a session that closed, or that the hub replaced, goes nowhere.
 */
import type { ServerId } from '../base/types.ts';
import type { SimulatedFleet } from './fleet.ts';
import { deliver, type NetworkModel } from './network.ts';
import type { HeartbeatReply } from '../core/heartbeat.ts';
import type { SimServer } from './sim-server.ts';

/**
 * Retransmission delay of a lost TCP segment (Linux's minimum RTO): a session message the network
 * model loses arrives this much later instead.
 */
export const retransmitMs = 200;

/** The server's end of one session. */
export interface ClientEnd {
  /** Session number: a new one per connection, so messages of a closed session are dropped. */
  number: number;
  open: boolean;
  /** Failed connection attempts in a row (back-off exponent); reset by a message received. */
  attempt: number;
  /** A renew is in flight or scheduled. */
  renewing: boolean;
  /** A reconnect attempt is scheduled. */
  reconnecting: boolean;
  /** Arrival time of the latest message each way: a session delivers in order. */
  upAtMs: number;
  downAtMs: number;
}

/** The coordinator's end of one session (the hub's record). */
export interface HubEnd {
  readonly number: number;
  /**
   * The last assignment this session carried (reply or push), compared as JSON only when a push is
   * due: stringifying every heartbeat's reply would cost more than the rest of the simulated hub.
   */
  lastSent: HeartbeatReply | null;
  /** What the server's assignment showed when last looked at (see session-fingerprint.ts). */
  fingerprint: string;
}

/** Both ends of every session and the ordered wire between them. */
export class SessionWire {
  protected readonly clients = new Map<ServerId, ClientEnd>();
  protected readonly hub = new Map<ServerId, HubEnd>();
  /** The latest virtual time seen (a push never goes back in time). */
  protected nowMs = 0;

  constructor(protected readonly fleet: SimulatedFleet, protected readonly network: NetworkModel) {}

  /** Server to coordinator, in order; lost when the session closed or the hub holds another. */
  protected up(server: SimServer, client: ClientEnd, nowMs: number, handle: (atMs: number, hub: HubEnd) => void,
    lost: () => void = () => {}): void {
    const number = client.number;
    const at = Math.max(nowMs + this.delay(server) + server.extraDelayMs, client.upAtMs);
    client.upAtMs = at;
    const arrive = (atMs: number): void => {
      const hub = this.hub.get(server.id);
      if (hub === undefined || hub.number !== number) return lost();
      // A paused coordinator reads its sockets when it resumes.
      const paused = this.fleet.coordinatorPausedUntil;
      if (atMs < paused) return this.fleet.call(paused, server.id, arrive);
      this.seen(atMs);
      handle(atMs, hub);
    };
    this.fleet.call(at, server.id, arrive);
  }

  /** Coordinator to server on session `number`, in order; dropped when it closed or the server is cut off. */
  protected down(server: SimServer, client: ClientEnd, number: number, nowMs: number, handle: (atMs: number) => void,
    lost: () => void = () => {}): void {
    const at = Math.max(nowMs + this.delay(server), client.downAtMs);
    client.downAtMs = at;
    this.fleet.call(at, server.id, (atMs) => {
      if (client.number !== number || !client.open || !server.reachable) return lost();
      this.seen(atMs);
      handle(atMs);
    });
  }

  /** One message's delay: the network model's, with a lost segment retransmitted. */
  protected delay(server: SimServer): number {
    for (let extra = 0; ; extra += retransmitMs) {
      const delay = deliver(this.network, server.random);
      if (delay !== null) return extra + delay;
    }
  }

  protected seen(nowMs: number): void {
    if (nowMs > this.nowMs) this.nowMs = nowMs;
  }
}
