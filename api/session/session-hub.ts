/**
 * The open server sessions (one WebSocket per game server) and what flows over them: heartbeats and
 * `leave` in, replies and pushes out. A push is the server's assignment (the heartbeat reply's
 * body, computed from the announced, so durable, state), sent the moment a change concerns the
 * server (see change-watch.ts) and only when it differs from what the session last carried; a
 * repeated assignment is never sent, and the server applies each idempotently by epoch anyway.
 *
 * Back-pressure: each session's unsent bytes are bounded; a peer that stops reading is closed
 * (code 4001) instead of growing a buffer. A server holds one session: a second one replaces the
 * first (code 4000). A session that closes without `leave` (and was not replaced or closed by the
 * coordinator's shutdown) is reported to the core as evidence of a crash (`sessionClosed`).
 */
import type { WebSocket, RawData } from 'ws';
import { serverId, type ServerId } from '../../mesh/base/types.ts';
import { badRequest, problemOf } from '../problem.ts';
import { unwrap, type RouteKit } from '../route-kit.ts';
import { applyHeartbeat, heartbeatReplyJson, leaveDurably } from '../routes/servers.ts';
import { Slicer } from '../slicer.ts';
import { ChangeWatch } from './change-watch.ts';
import { parseClientMessage, problemMessage } from './session-protocol.ts';

/** Close codes a session can end with (RFC 6455 leaves 4000-4999 to applications). */
export const SessionCloseCode = Object.freeze({
  /** The coordinator is shutting down; reconnect to its successor. */
  goingAway: 1001,
  /** A newer session of the same server replaced this one. */
  replaced: 4000,
  /** The server did not read its messages: more than the bounded send queue was waiting. */
  sendQueueFull: 4001,
  /** This coordinator stopped leading; the reason names the new leader when it is known. */
  notLeader: 4002,
});

/** Why the hub closes every session: shutdown unless told otherwise. */
export interface HubClosing {
  readonly code: number;
  readonly reason: string;
}

/** Options of {@link SessionHub}. */
export interface SessionHubOptions {
  /** Most bytes waiting to be sent on one session before it is closed (the peer stopped reading). */
  readonly maxQueuedBytes: number;
}

/** Longest slice of pushes while the event loop is not congested; the rest follow in later turns. */
const pushSliceMs = 4;

/** Default bound of a session's send queue: far above a burst of assignments, far below memory trouble. */
export const defaultMaxQueuedBytes = 1024 * 1024;

interface Session {
  readonly serverId: ServerId;
  readonly socket: WebSocket;
  readonly path: string;
  /** JSON of the last assignment this session carried (reply or push), or null. */
  lastSent: string | null;
  /** Why the coordinator ended it, when it did; a close for any other reason is evidence. */
  endedBy: 'leave' | 'replaced' | 'shutdown' | null;
}

/** Every open session, by server. */
export class SessionHub {
  private readonly sessions = new Map<ServerId, Session>();
  private readonly watch: ChangeWatch;
  private pushScheduled = false;
  /** True while a pass of pushes runs (across its slices). */
  private pushing = false;
  /** Servers whose assignment may differ from what their session last carried, oldest first. */
  private readonly owed = new Set<ServerId>();
  private closed = false;
  private readonly unsubscribe: (() => void)[];

  constructor(private readonly kit: RouteKit, private readonly options: SessionHubOptions = { maxQueuedBytes: defaultMaxQueuedBytes }) {
    this.watch = new ChangeWatch(() => kit.host.coordinator);
    this.unsubscribe = [
      kit.host.subscribe((event) => this.watch.observe(event)),
      kit.host.subscribeChanges(() => this.schedulePushes()),
    ];
  }

  /** Number of open sessions. */
  get size(): number {
    return this.sessions.size;
  }

  /** Takes an upgraded socket as the session of `id`, replacing the server's previous one. */
  attach(id: string, socket: WebSocket, path: string): void {
    const session: Session = { serverId: serverId(id), socket, path, lastSent: null, endedBy: null };
    if (this.closed) {
      socket.close(SessionCloseCode.goingAway, 'the coordinator is shutting down');
      return;
    }
    const previous = this.sessions.get(session.serverId);
    if (previous) {
      previous.endedBy = 'replaced';
      previous.socket.close(SessionCloseCode.replaced, 'replaced by a newer session of this server');
    }
    this.sessions.set(session.serverId, session);
    socket.on('message', (data, isBinary) => this.receive(session, data, isBinary));
    socket.on('close', () => this.ended(session));
    socket.on('error', () => { /* followed by 'close', which decides */ });
  }

  /**
   * Ends every session (shutdown, or this coordinator stopped leading): servers reconnect to the
   * next coordinator; nothing is suspected. A close reason is at most 123 bytes (RFC 6455).
   */
  close(closing: HubClosing = { code: SessionCloseCode.goingAway, reason: 'the coordinator is shutting down' }): void {
    if (this.closed) return;
    this.closed = true;
    for (const stop of this.unsubscribe) stop();
    const reason = Buffer.from(closing.reason).subarray(0, 123).toString('utf8').replace(/\uFFFD$/, '');
    for (const session of this.sessions.values()) {
      session.endedBy = 'shutdown';
      session.socket.close(closing.code, reason);
    }
  }

  private receive(session: Session, data: RawData, isBinary: boolean): void {
    try {
      if (isBinary) throw badRequest('Session messages are JSON text frames, not binary ones.');
      const message = parseClientMessage(this.kit.contract, bufferOf(data));
      if (message.type === 'renew') {
        this.renew(session, message.seq);
      } else if (message.type === 'heartbeat') {
        const body = applyHeartbeat(this.kit.host, session.serverId, message.body, this.leaseMs);
        const json = JSON.stringify(body);
        if ((body.demoted as unknown[]).length === 0) session.lastSent = json;
        this.send(session, `{"type":"heartbeat_reply","body":${json}}`);
        this.kit.deps.observeSessionHeartbeat?.();
      } else {
        void this.leave(session);
      }
    } catch (error) {
      this.refuse(session, error);
    }
  }

  /** Answers a renew with the lease granted: a small message, so primaries can renew well above 1 Hz. */
  private renew(session: Session, seq: number): void {
    const { host } = this.kit;
    const leaseMs = unwrap(host.run((core, now) => core.renewLease(session.serverId, now)));
    const renewInMs = host.coordinator.config.sessionLeaseRenewalIntervalMs;
    this.send(session, `{"type":"lease","body":{"seq":${seq},"lease_ms":${leaseMs},"renew_in_ms":${renewInMs}}}`);
  }

  /** The lease every heartbeat reply of a session grants: the short session lease. */
  private get leaseMs(): number {
    return this.kit.host.coordinator.config.sessionLeaseMs;
  }

  private async leave(session: Session): Promise<void> {
    try {
      const body = await leaveDurably(this.kit.host, session.serverId);
      session.endedBy = 'leave';
      this.send(session, JSON.stringify({ type: 'left', body }));
    } catch (error) {
      this.refuse(session, error);
    }
  }

  private refuse(session: Session, error: unknown): void {
    const request = { method: 'WS', path: session.path };
    const problem = problemOf(error, request, { log: (e, r) => this.kit.deps.logError(e, r) });
    this.send(session, JSON.stringify(problemMessage(problem, session.path)));
  }

  /** Sends a frame, or closes the session when its peer has stopped reading. */
  private send(session: Session, text: string): void {
    const socket = session.socket;
    if (socket.readyState !== socket.OPEN) return;
    socket.send(text);
    if (socket.bufferedAmount > this.options.maxQueuedBytes) {
      socket.close(SessionCloseCode.sendQueueFull, 'send queue full: the server is not reading');
      // A peer that reads nothing will not read the close frame either.
      setTimeout(() => socket.terminate(), 1000).unref();
    }
  }

  private ended(session: Session): void {
    if (this.sessions.get(session.serverId) === session) this.sessions.delete(session.serverId);
    if (session.endedBy !== null) return;
    this.kit.host.run((core, now) => core.sessionClosed(session.serverId, now));
  }

  /** Pushes run once per event-loop turn, after every change of that turn. */
  private schedulePushes(): void {
    if (this.pushScheduled || this.closed || this.sessions.size === 0) return;
    this.pushScheduled = true;
    setImmediate(() => {
      this.pushScheduled = false;
      void this.push();
    });
  }

  /**
   * Sends the assignments owed, in slices of the event loop's time (api/slicer.ts): a mass failure
   * concerns thousands of servers, and sending all their pushes in one turn would hold up every
   * heartbeat reply behind them. One pass runs at a time and takes in what becomes owed meanwhile.
   * Each push is built when it is sent, so it is never stale.
   */
  private async push(): Promise<void> {
    this.takeConcerned();
    if (this.pushing) return;
    this.pushing = true;
    try {
      const slicer = new Slicer(pushSliceMs);
      // A Set's iteration also visits the ids added while it runs.
      for (const id of this.owed) {
        this.owed.delete(id);
        this.pushTo(id);
        if (slicer.due()) {
          await slicer.pause();
          if (this.closed) return;
          this.takeConcerned();
        }
      }
    } finally {
      this.pushing = false;
    }
  }

  private takeConcerned(): void {
    const concerned = this.watch.concerned();
    for (const id of concerned === 'all' ? this.sessions.keys() : concerned) this.owed.add(id);
  }

  private pushTo(id: ServerId): void {
    const session = this.sessions.get(id);
    if (session === undefined || session.endedBy === 'replaced' || session.endedBy === 'shutdown') return;
    // A push grants no lease (lease_ms 0): it answers nothing the server sent, so the server could
    // not date a lease from it; one recorded here would only hold back the failover of a primary
    // that went silent and was pushed its suspicion. Leases come from replies and renewals.
    const assignment = this.kit.host.coordinator.assignment(id, this.kit.host.now(), 0);
    if (!assignment.ok) return;
    const json = JSON.stringify(heartbeatReplyJson(assignment.value));
    if (json === session.lastSent) return;
    session.lastSent = json;
    this.send(session, `{"type":"assignment","body":${json}}`);
  }
}

/** The bytes of a message (`ws` hands a Buffer with its default binary type). */
function bufferOf(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
}
