/**
 * A game server's session with the coordinator (asyncapi.yaml): one WebSocket that carries its
 * heartbeats and brings back the replies and the coordinator's pushes. The class heartbeats at the
 * interval the coordinator asks for, at once after a role change (so a promotion is acknowledged
 * without waiting an interval) and whenever `heartbeatNow()` is called (a replication peer went
 * silent); it applies every assignment idempotently (a region never goes back to an older epoch,
 * a repeated assignment changes nothing) and reconnects with jittered exponential back-off. While
 * primary of a region it renews its lease (`renew`, answered by `lease`) at the cadence the
 * coordinator asks for, and `mayAccept(region)` says whether it may serve players' actions now.
 *
 *   const session = new MeshSession({ baseUrl, serverId, token, heartbeat: () => body });
 *   session.on('role', (region, role, epoch) => ...);
 *   session.start();
 */
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import { CoordinatorUrls } from './coordinator-urls.ts';
import type { components } from './schema.d.ts';

type Schemas = components['schemas'];
/** The heartbeat body (the same as `POST /mesh/servers/{id}/heartbeat`). */
export type HeartbeatRequest = Schemas['HeartbeatRequest'];
/** A heartbeat reply or a pushed assignment. */
export type HeartbeatResponse = Schemas['HeartbeatResponse'];
/** One region of an assignment. */
export type RegionAssignment = Schemas['HeartbeatAssignment'];
/** A refused message or handshake. */
export type SessionProblem = Schemas['Problem'];

/** What a session tells its owner. */
export interface MeshSessionEvents {
  /** The session is open (again). */
  open: [];
  /** The session closed; `reconnectInMs` is null once stopped. */
  close: [code: number, reason: string, reconnectInMs: number | null];
  /** Every reply or push, after it was applied; `pushed` is false for a heartbeat's reply. */
  assignment: [assignment: HeartbeatResponse, pushed: boolean];
  /** A region's role or epoch changed (a promotion, a demotion, a new region). */
  role: [regionId: string, role: 'primary' | 'backup', epoch: number];
  /** The coordinator no longer gives this server the region: drop it. */
  dropped: [regionId: string];
  /** A message or the handshake was refused. */
  problem: [problem: SessionProblem];
  /** A handshake failed before the upgrade (HTTP status; 401/403/404 will not heal by retrying). */
  refused: [status: number];
  /** The coordinator confirmed a `leave`. */
  left: [];
  /** A lease was granted (`leaseMs` from the send time of the renew it answers; 0: none). */
  lease: [leaseMs: number];
}

/** How to reach the coordinator and what to send. */
export interface MeshSessionOptions {
  /**
   * `http://host:port` of the coordinator (`ws://` is derived from it), or of every replica: a
   * follower's 307 and a session closed because its coordinator stopped leading (4002) name the
   * leader, and an unreachable replica is left for the next one.
   */
  readonly baseUrl: string | readonly string[];
  readonly serverId: string;
  readonly token: string;
  /** Builds the heartbeat to send now: the server's incarnation, regions and peers. */
  readonly heartbeat: () => HeartbeatRequest;
  /** `header` (default): `Authorization: Bearer`; `protocol`: a `mesh.bearer.<token>` subprotocol. */
  readonly tokenIn?: 'header' | 'protocol';
  /** First reconnect delay ceiling, ms (default 100); doubles per failed attempt up to `maxBackoffMs`. */
  readonly initialBackoffMs?: number;
  /** Largest reconnect delay ceiling, ms (default 5,000; never above the heartbeat interval, see `closed`). */
  readonly maxBackoffMs?: number;
  /** Uniform [0, 1) source for the back-off jitter (default Math.random). */
  readonly random?: () => number;
  /** Monotonic clock of the lease, ms (default performance.now). */
  readonly now?: () => number;
}

/** Heartbeat intervals without a word from the coordinator after which the session is given up. */
const SILENT_INTERVALS = 3;

/** The session. */
export class MeshSession extends EventEmitter<MeshSessionEvents> {
  /** Regions as the coordinator last assigned them. */
  readonly regions = new Map<string, RegionAssignment>();
  private socket: WebSocket | null = null;
  private stopped = true;
  private attempt = 0;
  private intervalMs = 1000;
  /** When the last heartbeat was sent (the session's clock), to count the next one from. */
  private lastBeatAtMs = -Infinity;
  /** When the coordinator was last heard from on this socket (or the socket opened). */
  private lastHeardAtMs = -Infinity;
  private timer: NodeJS.Timeout | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private renewTimer: NodeJS.Timeout | null = null;
  /** Send times of the renews not yet answered, by seq. */
  private readonly renewsInFlight = new Map<number, number>();
  private renewSeq = 0;
  private leaseUntilMs = -Infinity;
  private readonly urls: CoordinatorUrls;
  /** Set when the last close named where to go: reconnect there at once, without back-off. */
  private redirected = false;

  constructor(private readonly options: MeshSessionOptions) {
    super();
    this.urls = new CoordinatorUrls(options.baseUrl);
  }

  /** The coordinator this session talks to (or will, at its next connection). */
  get coordinatorUrl(): string {
    return this.urls.current();
  }

  /** True while the WebSocket is open. */
  get connected(): boolean {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  /** Connects, and keeps reconnecting until `close()`. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  /**
   * Sends a heartbeat now (after a role change, or when a replication peer went silent). A
   * coordinator silent for {@link SILENT_INTERVALS} intervals is given up: a host that vanished
   * leaves the socket open for minutes, and its replicas may have a new leader meanwhile.
   */
  heartbeatNow(): void {
    if (!this.connected) return;
    if (this.clock() - this.lastHeardAtMs > SILENT_INTERVALS * this.intervalMs) {
      this.socket!.terminate();
      return;
    }
    this.socket!.send(JSON.stringify({ type: 'heartbeat', body: this.options.heartbeat() }));
    this.lastBeatAtMs = this.clock();
    this.schedule(this.intervalMs);
  }

  /**
   * True while the server may accept players' actions for the region as its primary: the
   * coordinator names it primary and a lease runs (counted from the send time of the renew a
   * `lease` answered). A primary whose lease ran out waits for the coordinator.
   */
  mayAccept(regionId: string): boolean {
    return this.regions.get(regionId)?.role === 'primary' && this.clock() < this.leaseUntilMs;
  }

  /** Asks to leave the mesh (draining); resolves when the coordinator confirmed it. */
  leave(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (!this.connected) return reject(new Error('the session is not open'));
      const onProblem = (problem: SessionProblem) => { this.off('left', onLeft); reject(new Error(problem.detail)); };
      const onLeft = () => { this.off('problem', onProblem); resolve(); };
      this.once('left', onLeft);
      this.once('problem', onProblem);
      this.socket!.send(JSON.stringify({ type: 'leave' }));
    });
  }

  /** Closes the session for good (no reconnect). */
  close(): void {
    this.stopped = true;
    this.clearTimers();
    this.socket?.close(1000, 'closed by the server');
  }

  private connect(): void {
    const { serverId, token } = this.options;
    const url = `${this.urls.current().replace(/^http/, 'ws')}/mesh/servers/${encodeURIComponent(serverId)}/session`;
    const viaProtocol = this.options.tokenIn === 'protocol';
    const socket = new WebSocket(url, viaProtocol ? ['mesh.v1', `mesh.bearer.${token}`] : ['mesh.v1'], {
      headers: viaProtocol ? {} : { Authorization: `Bearer ${token}` }, perMessageDeflate: false,
    });
    this.socket = socket;
    socket.on('open', () => {
      this.lastHeardAtMs = this.clock();
      this.emit('open');
      this.heartbeatNow();
    });
    socket.on('message', (data) => this.receive(String(data)));
    socket.on('unexpected-response', (_req, res) => {
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if ((status === 307 || status === 308) && location !== undefined) {
        // A follower: the leader is named; go there at once.
        this.urls.leaderIs(new URL(location, this.urls.current()).toString());
        this.redirected = true;
      } else {
        if (status === 503) this.urls.failed();
        this.emit('refused', status);
      }
      res.resume();
      socket.terminate();
    });
    socket.on('error', () => { /* 'close' follows and reconnects */ });
    socket.on('open', () => { this.redirected = false; });
    socket.on('close', (code, reason) => this.closed(socket, code, String(reason)));
  }

  private receive(text: string): void {
    this.lastHeardAtMs = this.clock();
    const message = JSON.parse(text) as { type: string; body: unknown };
    if (message.type === 'heartbeat_reply' || message.type === 'assignment') {
      this.attempt = 0;
      this.apply(message.body as HeartbeatResponse, message.type === 'assignment');
    } else if (message.type === 'problem') {
      this.emit('problem', message.body as SessionProblem);
    } else if (message.type === 'lease') {
      this.leased(message.body as { seq: number; lease_ms: number; renew_in_ms: number });
    } else if (message.type === 'left') {
      this.emit('left');
    }
  }

  private clock(): number {
    return (this.options.now ?? performance.now.bind(performance))();
  }

  private get isPrimary(): boolean {
    for (const region of this.regions.values()) if (region.role === 'primary') return true;
    return false;
  }

  /**
   * Sends a renew now, while primary and none is in flight. A renew unanswered for a heartbeat
   * interval (answered by a problem, say) is given up, so that renewals resume with the next reply.
   */
  private renewNow(): void {
    if (!this.connected || !this.isPrimary) return;
    for (const [seq, sentAt] of this.renewsInFlight) if (this.clock() - sentAt > this.intervalMs) this.renewsInFlight.delete(seq);
    if (this.renewsInFlight.size > 0) return;
    const seq = ++this.renewSeq;
    this.renewsInFlight.set(seq, this.clock());
    this.socket!.send(JSON.stringify({ type: 'renew', body: { seq } }));
  }

  private leased(body: { seq: number; lease_ms: number; renew_in_ms: number }): void {
    const sentAt = this.renewsInFlight.get(body.seq);
    this.renewsInFlight.delete(body.seq);
    if (sentAt === undefined) return;
    this.leaseUntilMs = body.lease_ms > 0 ? sentAt + body.lease_ms : -Infinity;
    this.emit('lease', body.lease_ms);
    if (this.renewTimer !== null) clearTimeout(this.renewTimer);
    this.renewTimer = setTimeout(() => { this.renewTimer = null; this.renewNow(); }, body.renew_in_ms);
  }

  /** Applies an assignment; a repeated one changes nothing, an older epoch is never taken. */
  private apply(assignment: HeartbeatResponse, pushed: boolean): void {
    let changed = false;
    const given = new Set<string>();
    for (const region of assignment.regions) {
      given.add(region.region_id);
      const held = this.regions.get(region.region_id);
      if (held !== undefined && held.epoch > region.epoch) continue;
      this.regions.set(region.region_id, region);
      if (held === undefined || held.role !== region.role || held.epoch !== region.epoch) {
        changed = true;
        this.emit('role', region.region_id, region.role, region.epoch);
      }
    }
    for (const id of [...this.regions.keys()]) {
      if (given.has(id)) continue;
      this.regions.delete(id);
      this.emit('dropped', id);
    }
    const intervalChanged = assignment.heartbeat_interval_ms !== this.intervalMs;
    this.intervalMs = assignment.heartbeat_interval_ms;
    this.emit('assignment', assignment, pushed);
    // A role change is acknowledged at once. Otherwise the next heartbeat stays one interval after
    // the last one: a push is no heartbeat and must not postpone it (pushes may come more often
    // than the interval, and the coordinator would hear nothing meanwhile); a new interval counts
    // from the last heartbeat too.
    if (changed) this.heartbeatNow();
    else if (intervalChanged && this.timer !== null) this.schedule(Math.max(0, this.lastBeatAtMs + this.intervalMs - this.clock()));
    if (this.renewTimer === null) this.renewNow();
  }

  private schedule(delayMs: number): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.heartbeatNow(), delayMs);
  }

  private closed(socket: WebSocket, code: number, reason: string): void {
    if (this.socket !== socket) return;
    this.socket = null;
    this.clearTimers();
    if (this.stopped) {
      this.emit('close', code, reason, null);
      return;
    }
    this.learnLeader(code, reason);
    if (this.redirected) {
      this.redirected = false;
      this.emit('close', code, reason, 0);
      this.reconnectTimer = setTimeout(() => {
        this.reconnectTimer = null;
        if (!this.stopped) this.connect();
      }, 0);
      return;
    }
    // Full jitter (AWS's "exponential backoff and jitter"): a mesh whose sessions all dropped at
    // once does not reconnect in one wave. The ceiling stays within a heartbeat interval: the
    // session carries the heartbeats, so a longer wait after an outage ends would let the
    // coordinator's failure timeout run out on a healthy server.
    const ceiling = Math.min(this.options.maxBackoffMs ?? 5000, this.intervalMs, (this.options.initialBackoffMs ?? 100) * 2 ** this.attempt);
    const delay = Math.floor((this.options.random ?? Math.random)() * ceiling);
    this.attempt += 1;
    this.emit('close', code, reason, delay);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (!this.stopped) this.connect();
    }, delay);
  }

  /**
   * What a close says about the leader: 4002 (the coordinator stopped leading) names the new one
   * when it knows it; any other close without a redirect moves on to the next coordinator, unless
   * the coordinator said it was shutting down or replaced the session (then it is tried again).
   */
  private learnLeader(code: number, reason: string): void {
    if (this.redirected) return;
    const named = code === 4002 ? /leader: (\S+)$/.exec(reason)?.[1] : undefined;
    if (named !== undefined && URL.canParse(named)) {
      this.urls.leaderIs(named);
      this.redirected = true;
    } else if (code !== 4000 && code !== 4001) {
      this.urls.failed();
    }
  }

  private clearTimers(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    if (this.renewTimer !== null) clearTimeout(this.renewTimer);
    this.timer = null;
    this.reconnectTimer = null;
    this.renewTimer = null;
    this.renewsInFlight.clear();
  }
}
