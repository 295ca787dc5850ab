/**
 * A game server as the test plays it: registered over HTTP, it heartbeats the coordinator over
 * `fetch` following the protocol (openapi.yaml `sendHeartbeat`): it claims exactly the regions the
 * last answer gave it, with their roles and epochs; it heartbeats again at once after a change of
 * role or assignment, so that a promotion is acknowledged without waiting; it waits the interval
 * the answer asks for (expedited while a failover waits on it); it reports how long since it last
 * heard each replication peer. The "replication stream" is modelled by {@link World}: a peer is heard
 * while its process runs, and silent since the moment it was stopped.
 *
 * Every loop is bounded: it ends at `stop()`, after `maxBeats` heartbeats or at its deadline.
 */
import { contract } from '../api/harness.ts';

/** What every fake server knows about the others (its replication peers). */
export class World {
  readonly servers = new Map<string, GameServer>();
  /** Origin of the replicated sequence numbers (one per 10 ms of play, as the simulator does). */
  readonly startedAt = Date.now();

  /** How long a server's peers have not heard it: a running process streams every few ms. */
  silentFor(id: string, now: number): number {
    const server = this.servers.get(id);
    if (server === undefined || server.stoppedAt === null) return 10;
    return now - server.stoppedAt;
  }

  appliedSeq(now: number): number {
    return Math.floor((now - this.startedAt) / 10);
  }

  stopAll(): void {
    for (const server of this.servers.values()) server.stop();
  }
}

/** One region as the server holds it. */
interface Held {
  role: 'primary' | 'backup';
  epoch: number;
}

/** Options of a game server loop. */
export interface GameServerOptions {
  readonly id: string;
  readonly token: string;
  /** The coordinator's base URL, read at every heartbeat (it may move across a restart). */
  readonly baseUrl: () => string;
  readonly world: World;
  /** Hard bounds of the loop. */
  readonly maxBeats?: number;
  readonly deadlineMs?: number;
  /** How heartbeats are sent (default: the global `fetch`), e.g. a client that follows the leader. */
  readonly fetch?: (request: Request) => Promise<Response>;
  /** How long a heartbeat may take before it counts as failed (default 5 s). */
  readonly requestTimeoutMs?: number;
  /** Told of every answered heartbeat, with when it was sent (tests that record a history). */
  readonly onReply?: (reply: { status: number; body: Record<string, any>; sentAt: number; receivedAt: number; url: string }) => void;
}

/** A fake game server and its heartbeat loop. */
export class GameServer {
  readonly id: string;
  readonly token: string;
  readonly incarnation: string;
  readonly regions = new Map<string, Held>();
  peers = new Set<string>();
  intervalMs = 1000;
  seq = 0;
  /** Set by `stop()`: the process is gone, its peers stop hearing it. */
  stoppedAt: number | null = null;
  /** A region whose promotion this server will not acknowledge until `release()`. */
  holdOnPromotion: string | null = null;
  /** True while the server holds back (it still replicates, so its peers still hear it). */
  held = false;
  /** When it was told it is the primary of `holdOnPromotion`. */
  promotedAt: number | null = null;
  /** Answers by status, failed attempts (coordinator down), answers that broke the contract. */
  readonly statuses = new Map<number, number>();
  /** Every time an answer gave a region it held a lower epoch than it held (a fencing token going back). */
  readonly loweredEpochs: string[] = [];
  networkErrors = 0;
  lastError: unknown = null;
  readonly contractErrors: string[] = [];
  /** Time of the last answered heartbeat. */
  lastAnsweredAt: number | null = null;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | null = null;
  private readonly maxBeats: number;
  private readonly deadline: number;

  constructor(private readonly options: GameServerOptions) {
    this.id = options.id;
    this.token = options.token;
    this.incarnation = `${options.id}@${process.pid}.${Date.now()}`;
    this.maxBeats = options.maxBeats ?? 5000;
    this.deadline = Date.now() + (options.deadlineMs ?? 180_000);
    options.world.servers.set(this.id, this);
  }

  /** Starts heartbeating now. */
  start(): void {
    this.schedule(0);
  }

  /** The process dies: no more heartbeats, and its peers stop hearing it from now on. */
  stop(): void {
    if (this.stoppedAt === null) this.stoppedAt = Date.now();
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Ends a hold: the next heartbeat (sent at once) acknowledges the promotion. */
  release(): void {
    this.holdOnPromotion = null;
    if (!this.held) return;
    this.held = false;
    this.schedule(0);
  }

  /** Waits for the heartbeat in flight, if any. */
  async settled(): Promise<void> {
    await this.inFlight;
  }

  /** The body the protocol asks for right now. */
  body(now: number): Record<string, unknown> {
    this.seq += 1;
    const applied = this.options.world.appliedSeq(now);
    return {
      incarnation: this.incarnation, seq: this.seq, players: 10 * this.regions.size,
      regions: [...this.regions].map(([region_id, r]) => ({ region_id, role: r.role, epoch: r.epoch, applied_seq: applied })),
      peers: [...this.peers].map((server_id) => ({ server_id, silent_for_ms: this.options.world.silentFor(server_id, now) })),
    };
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    if (this.stoppedAt !== null || this.held) return;
    if (this.seq >= this.maxBeats || Date.now() >= this.deadline) {
      this.stop();
      return;
    }
    this.timer = setTimeout(() => {
      this.inFlight = this.beat().finally(() => { this.inFlight = null; });
    }, delayMs);
  }

  private async beat(): Promise<void> {
    let next = this.intervalMs;
    try {
      const sentAt = Date.now();
      const url = new URL(`/mesh/servers/${encodeURIComponent(this.id)}/heartbeat`, this.options.baseUrl());
      const init: RequestInit = {
        method: 'POST',
        headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
        body: JSON.stringify(this.body(sentAt)),
        signal: AbortSignal.timeout(this.options.requestTimeoutMs ?? 5000),
      };
      // Not `fetch(new Request(...))`: a Request's body is a stream, which fetch cannot send again on a 307.
      const res = this.options.fetch ? await this.options.fetch(new Request(url, init)) : await fetch(url, init);
      const body = await res.json() as Record<string, any>;
      this.options.onReply?.({ status: res.status, body, sentAt, receivedAt: Date.now(), url: res.url });
      this.statuses.set(res.status, (this.statuses.get(res.status) ?? 0) + 1);
      const checked = contract().validateResponse('sendHeartbeat', res.status, body);
      if (!checked.ok) this.contractErrors.push(`${res.status}: ${JSON.stringify(checked.errors)}`);
      if (res.status === 200) {
        this.lastAnsweredAt = Date.now();
        next = this.apply(body) ? 0 : this.intervalMs;
      }
    } catch (error) {
      // Coordinator down (or restarting): try again soon, as a real server would.
      this.networkErrors += 1;
      this.lastError = error;
      next = Math.min(this.intervalMs, 250);
    }
    this.schedule(next);
  }

  /** Applies an answer; true when a role or assignment changed (the protocol asks for a heartbeat at once). */
  private apply(reply: Record<string, any>): boolean {
    this.intervalMs = Number(reply.heartbeat_interval_ms);
    let changed = false;
    const given = new Set<string>();
    const peers = new Set<string>();
    for (const a of reply.regions as { region_id: string; role: 'primary' | 'backup'; epoch: number; primary: { server_id: string } | null; backups: { server_id: string }[] }[]) {
      given.add(a.region_id);
      const held = this.regions.get(a.region_id);
      if (held !== undefined && a.epoch < held.epoch) this.loweredEpochs.push(`${a.region_id}: ${held.epoch} -> ${a.epoch}`);
      if (held === undefined || held.role !== a.role || held.epoch !== a.epoch) {
        changed = true;
        if (a.region_id === this.holdOnPromotion && a.role === 'primary' && held?.role === 'backup') {
          this.held = true;
          this.promotedAt = Date.now();
        }
        this.regions.set(a.region_id, { role: a.role, epoch: a.epoch });
      }
      for (const e of [a.primary, ...a.backups]) if (e && e.server_id !== this.id) peers.add(e.server_id);
    }
    for (const id of [...this.regions.keys()]) {
      if (!given.has(id)) {
        this.regions.delete(id);
        changed = true;
      }
    }
    this.peers = peers;
    return changed;
  }
}
