/**
 * Players of one region, as the protocol asks them to behave: each sends a numbered action every
 * `intervalMs` to whichever endpoint the protocol names. While the region's route names a primary,
 * actions go to it over UDP (the demo server's datagram protocol, see clients/godot/demo_server.gd),
 * each saying which earlier action it must follow if that one is not confirmed yet. An action the
 * primary does not confirm within `ackTimeoutMs`, or refuses because it does not lead, goes to the
 * coordinator with `unreachable_primary` and the epoch the player knew (the TypeScript client's
 * `submitAction`); a 409 naming a newer epoch sends the player to that primary. A long poll of the
 * route moves the player to a new primary once its promotion is acknowledged.
 *
 * Bounded: it stops at `stop()`, at its deadline, or after `maxActions` actions per player.
 */
import { createSocket, type Socket } from 'node:dgram';
import { createMeshClient, submitAction, type MeshClient } from '../../clients/ts/mesh-client.ts';

interface Route { epoch: number; primary: { server_id: string; address: string } | null }

interface Player {
  readonly id: string;
  nextSeq: number;
  /** Highest seq a primary confirmed (cumulative): every seq up to it is applied somewhere. */
  ackedThrough: number;
  /** Sent straight to a primary, not confirmed yet: seq -> when it was sent. */
  readonly direct: Map<number, number>;
  /** For the coordinator, in seq order. */
  queue: number[];
  /** Until when actions go to the coordinator (the primary could not be reached); 0 when direct. */
  viaCoordinatorUntil: number;
  working: boolean;
}

/** What the players saw; the tests compare it with the servers' action logs. */
export interface DriverStats {
  sentDirect: number;
  buffered: number;
  duplicates: number;
  reports: number;
  /** 409 answers naming the primary of the epoch the player had reported unreachable (must stay 0). */
  refusedToReportedPrimary: number;
  coordinatorErrors: number;
}

export interface PlayerDriverOptions {
  readonly baseUrl: () => string;
  readonly regionId: string;
  readonly players: readonly string[];
  readonly intervalMs?: number;
  readonly ackTimeoutMs?: number;
  readonly retryPrimaryMs?: number;
  readonly maxActions?: number;
  readonly deadlineMs?: number;
}

export class PlayerDriver {
  readonly players: Player[];
  readonly stats: DriverStats = { sentDirect: 0, buffered: 0, duplicates: 0, reports: 0, refusedToReportedPrimary: 0, coordinatorErrors: 0 };
  route: Route = { epoch: 0, primary: null };
  /** The epoch and primary the players last reported unreachable. */
  private reported: { epoch: number; serverId: string } | null = null;
  private socket: Socket | null = null;
  private timer: NodeJS.Timeout | undefined;
  private sending = false;
  private stopped = false;
  private readonly poll = new AbortController();
  private readonly intervalMs: number;
  private readonly ackTimeoutMs: number;
  private readonly retryPrimaryMs: number;
  private readonly maxActions: number;
  private readonly deadline: number;

  constructor(private readonly options: PlayerDriverOptions) {
    this.players = options.players.map((id) => ({
      id, nextSeq: 1, ackedThrough: 0, direct: new Map(), queue: [], viaCoordinatorUntil: 0, working: false,
    }));
    this.intervalMs = options.intervalMs ?? 20;
    this.ackTimeoutMs = options.ackTimeoutMs ?? 400;
    this.retryPrimaryMs = options.retryPrimaryMs ?? 1000;
    this.maxActions = options.maxActions ?? 20_000;
    this.deadline = Date.now() + (options.deadlineMs ?? 300_000);
  }

  private get mesh(): MeshClient {
    return createMeshClient({ baseUrl: this.options.baseUrl() });
  }

  async start(): Promise<void> {
    this.socket = createSocket('udp4');
    this.socket.on('message', (data) => this.onDatagram(data));
    await new Promise<void>((resolve) => this.socket!.bind(0, '127.0.0.1', resolve));
    await this.refreshRoute(0);
    void this.followRoute();
    this.resume();
  }

  /** Actions flow (again). */
  resume(): void {
    this.sending = true;
    clearInterval(this.timer);
    this.timer = setInterval(() => this.step(), this.intervalMs);
  }

  /** No new actions; the ones under way still complete. */
  pause(): void {
    this.sending = false;
  }

  stop(): void {
    this.stopped = true;
    this.sending = false;
    clearInterval(this.timer);
    this.poll.abort();
    this.socket?.close();
    this.socket = null;
  }

  /** True once every action sent so far is confirmed by a primary. */
  settled(): boolean {
    return this.players.every((p) => p.ackedThrough === p.nextSeq - 1);
  }

  private step(): void {
    const now = Date.now();
    if (now > this.deadline) return this.stop();
    for (const player of this.players) {
      if (this.sending && player.nextSeq <= this.maxActions) this.send(player, player.nextSeq++, now);
      else this.probe(player, now);
      this.checkTimeouts(player, now);
      if (player.queue.length > 0 && !player.working) void this.work(player);
    }
  }

  /**
   * While no new action goes out, the last unconfirmed one is sent to the primary again: an action
   * the coordinator buffered and the primary replayed is confirmed only by a later answer.
   */
  private probe(player: Player, now: number): void {
    const last = player.nextSeq - 1;
    if (last > player.ackedThrough && player.direct.size === 0 && player.queue.length === 0 && !this.viaCoordinator(player, now)) {
      this.send(player, last, now);
    }
  }

  /**
   * A player that reported its primary goes back to it after `retryPrimaryMs`: the report may have
   * been its own network's fault, or a pause of the primary.
   */
  private viaCoordinator(player: Player, now: number): boolean {
    return now < player.viaCoordinatorUntil;
  }

  private send(player: Player, seq: number, now: number): void {
    if (this.viaCoordinator(player, now) || this.route.primary === null) {
      insertSorted(player.queue, seq);
      return;
    }
    const [host, port] = splitAddress(this.route.primary.address);
    const message: Record<string, unknown> = { t: 'act', r: this.options.regionId, p: player.id, s: seq, payload: { n: seq } };
    if (seq - 1 > player.ackedThrough) message['a'] = seq - 1;
    player.direct.set(seq, now);
    this.stats.sentDirect++;
    this.socket?.send(JSON.stringify(message), port, host);
  }

  /** Unconfirmed direct actions: the primary is unreachable, the coordinator takes them. */
  private checkTimeouts(player: Player, now: number): void {
    let late = false;
    for (const sentAt of player.direct.values()) if (now - sentAt > this.ackTimeoutMs) late = true;
    if (late) this.toCoordinator(player);
  }

  private toCoordinator(player: Player): void {
    const now = Date.now();
    if (!this.viaCoordinator(player, now) && this.route.primary !== null) {
      this.stats.reports++;
      this.reported = { epoch: this.route.epoch, serverId: this.route.primary.server_id };
    }
    player.viaCoordinatorUntil = now + this.retryPrimaryMs;
    for (const seq of player.direct.keys()) if (seq > player.ackedThrough) insertSorted(player.queue, seq);
    player.direct.clear();
  }

  private onDatagram(data: Buffer): void {
    let message: { t?: string; r?: string; p?: string; through?: number };
    try {
      message = JSON.parse(data.toString('utf8')) as typeof message;
    } catch {
      return;
    }
    const player = this.players.find((p) => p.id === message.p);
    if (player === undefined || message.r !== this.options.regionId) return;
    if (message.t === 'ack' && typeof message.through === 'number') {
      player.ackedThrough = Math.max(player.ackedThrough, message.through);
      for (const seq of [...player.direct.keys()]) if (seq <= player.ackedThrough) player.direct.delete(seq);
      player.queue = player.queue.filter((s) => s > player.ackedThrough);
    } else if (message.t === 'nack') {
      this.toCoordinator(player);
    }
  }

  /** Submits the player's queue to the coordinator in seq order, one at a time. */
  private async work(player: Player): Promise<void> {
    player.working = true;
    try {
      while (player.queue.length > 0 && !this.stopped) {
        if (!this.viaCoordinator(player, Date.now()) && this.route.primary !== null) {
          const queued = player.queue;
          player.queue = [];
          for (const seq of queued) this.send(player, seq, Date.now());
          return;
        }
        const seq = player.queue[0]!;
        // Per-player order: an action is buffered only after every earlier one is buffered or
        // confirmed, so one still on its way to the primary is waited for (confirmed or timed out).
        const earlierInFlight = [...player.direct.keys()].some((d) => d < seq);
        if (earlierInFlight || !(await this.submit(player, seq))) await new Promise((resolve) => setTimeout(resolve, earlierInFlight ? 20 : 50));
      }
    } finally {
      player.working = false;
    }
  }

  /** One submission; true when the queue moved on. */
  private async submit(player: Player, seq: number): Promise<boolean> {
    const epoch = this.route.epoch;
    try {
      const result = await submitAction(this.mesh.api, this.options.regionId, { player_id: player.id, seq, payload: { n: seq } },
        { unreachableEpoch: epoch, signal: AbortSignal.timeout(5000) });
      const status = result.response.status;
      if (status === 202) {
        if (result.data?.status === 'duplicate') this.stats.duplicates++;
        else this.stats.buffered++;
        player.queue = player.queue.filter((s) => s !== seq);
        return true;
      }
      if (status === 409 && result.error !== undefined) {
        const problem = result.error as unknown as Route;
        // Only a refusal of this very report counts: a 409 for a report against an older epoch may
        // arrive after another player reported the current primary, and names it rightly.
        const reported = this.reported;
        if (reported !== null && problem.epoch === epoch && reported.epoch === epoch && problem.primary?.server_id === reported.serverId) {
          this.stats.refusedToReportedPrimary++;
        }
        if (problem.epoch >= this.route.epoch && problem.primary) this.route = { epoch: problem.epoch, primary: problem.primary };
        player.viaCoordinatorUntil = 0;
        return true;
      }
      this.stats.coordinatorErrors++;
    } catch {
      this.stats.coordinatorErrors++;
    }
    return false;
  }

  /** Long-polls the route; a newer epoch with an acknowledged primary sends every player to it. */
  private async followRoute(): Promise<void> {
    while (!this.stopped && Date.now() < this.deadline) {
      if (!(await this.refreshRoute(5000))) await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  private async refreshRoute(waitMs: number): Promise<boolean> {
    try {
      const result = await this.mesh.api.GET('/mesh/regions/{region_id}/route', {
        params: { path: { region_id: this.options.regionId }, query: waitMs > 0 ? { wait_ms: waitMs, known_epoch: this.route.epoch } : {} },
        signal: AbortSignal.any([this.poll.signal, AbortSignal.timeout(waitMs + 5000)]),
      });
      const route = result.data;
      if (route === undefined) return false;
      if (route.primary !== null && route.epoch > this.route.epoch) {
        this.route = { epoch: route.epoch, primary: route.primary };
        for (const player of this.players) player.viaCoordinatorUntil = 0;
      } else if (route.epoch === this.route.epoch && route.primary !== null && this.route.primary === null) {
        this.route = { epoch: route.epoch, primary: route.primary };
      }
      return true;
    } catch {
      return false;
    }
  }
}

function insertSorted(queue: number[], seq: number): void {
  if (queue.includes(seq)) return;
  queue.push(seq);
  queue.sort((a, b) => a - b);
}

function splitAddress(address: string): [string, number] {
  const colon = address.lastIndexOf(':');
  return [address.slice(0, colon), Number(address.slice(colon + 1))];
}
