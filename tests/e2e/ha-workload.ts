/**
 * The clients of the replicas' Jepsen-style test (tests/e2e/ha-jepsen.test.ts), each recording what
 * it sent and got into a history (tests/e2e/ha-history.ts):
 * - game servers (tests/e2e/game-server.ts) heartbeating through the TypeScript client's
 *   leader-following fetch over the list of replica URLs, every answer recorded, and collecting
 *   (then acknowledging) the buffered actions of every region they lead;
 * - players sending numbered actions that say the primary is unreachable, so that each is buffered
 *   (202) for the primary to collect; an action not answered 202 is sent again, unchanged.
 * Every loop is bounded by `stop()` and a deadline.
 */
import { CoordinatorUrls, leaderFollowingFetch } from '../../clients/ts/coordinator-urls.ts';
import { GameServer, World } from './game-server.ts';
import type { HistoryLog } from './ha-history.ts';
import { sleep } from './service-process.ts';

/** A fetch that follows the leader over `urls`, each attempt bounded. */
export function followingFetch(urls: readonly string[]): (request: Request) => Promise<Response> {
  return leaderFollowingFetch(new CoordinatorUrls(urls), undefined, { retryDelayMs: 100 });
}

/** A JSON request through `send`; status null when no answer came in time. */
async function request(send: (r: Request) => Promise<Response>, base: string, method: string, path: string,
  options: { body?: unknown; headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<{ status: number | null; body: any; url: string | undefined }> {
  try {
    const res = await send(new Request(new URL(path, base), {
      method, body: options.body === undefined ? undefined : JSON.stringify(options.body),
      headers: { ...(options.body === undefined ? {} : { 'content-type': 'application/json' }), ...options.headers },
      signal: AbortSignal.timeout(options.timeoutMs ?? 1500),
    }));
    const text = await res.text();
    return { status: res.status, body: /json/.test(res.headers.get('content-type') ?? '') ? JSON.parse(text) : text, url: res.url };
  } catch {
    return { status: null, body: undefined, url: undefined };
  }
}

/** The origin of an answer's URL (the replica that answered). */
const origin = (url: string | undefined) => (url ? new URL(url).origin : undefined);

/** Game servers that record every answer and collect the actions of the regions they lead. */
export class Fleet {
  readonly world = new World();
  readonly servers: GameServer[] = [];
  private readonly sends = new Map<string, (r: Request) => Promise<Response>>();
  private stopped = false;

  constructor(private readonly urls: readonly string[], private readonly history: HistoryLog, private readonly deadlineMs: number) {}

  /** Registers a server (through any replica) and starts its heartbeats and its collector. */
  async add(zone: string, index: number): Promise<GameServer> {
    const send = followingFetch(this.urls);
    const body = { address: `127.0.0.1:${7200 + index}`, zone, capacity: 6, name: `jepsen-${index}` };
    let created: { status: number | null; body: any } = { status: null, body: undefined };
    for (let attempt = 0; attempt < 50 && created.status !== 201; attempt++) {
      created = await request(send, this.urls[0]!, 'POST', '/mesh/servers', { body, timeoutMs: 3000 });
      if (created.status !== 201) await sleep(200);
    }
    if (created.status !== 201) throw new Error(`registering a server failed: ${created.status} ${JSON.stringify(created.body)}`);
    const server = new GameServer({
      id: created.body.server_id, token: created.body.token, baseUrl: () => this.urls[0]!, world: this.world,
      fetch: send, requestTimeoutMs: 1000, deadlineMs: this.deadlineMs, maxBeats: 20_000,
      onReply: (reply) => { if (reply.status === 200) this.recordBeat(created.body.server_id, reply); },
    });
    this.sends.set(server.id, send);
    this.servers.push(server);
    server.start();
    void this.collectLoop(server);
    return server;
  }

  /** Kills a server (its heartbeats and collection stop; its peers stop hearing it). */
  kill(server: GameServer): void {
    this.history.faults.push({ kind: 'kill-server', at: Date.now(), server: server.id });
    server.stop();
  }

  stop(): void {
    this.stopped = true;
    this.world.stopAll();
  }

  /** Collects a region's buffered actions as `server` (its primary), without acknowledging them. */
  async peek(server: GameServer, region: string): Promise<{ player: string; seq: number }[] | undefined> {
    const res = await this.collect(server, region);
    return res?.actions;
  }

  private recordBeat(server: string, reply: { body: Record<string, any>; sentAt: number; receivedAt: number; url: string }): void {
    const body = reply.body;
    this.history.heartbeats.push({
      server, sentAt: reply.sentAt, receivedAt: reply.receivedAt, by: origin(reply.url), status: String(body.status),
      regions: (body.regions as { region_id: string; role: 'primary' | 'backup'; epoch: number }[]).map((a) => ({ region: a.region_id, role: a.role, epoch: a.epoch })),
      demoted: (body.demoted as { region_id: string }[]).map((d) => d.region_id), leaseMs: Number(body.lease_ms),
    });
  }

  private async collect(server: GameServer, region: string): Promise<{ epoch: number; actions: { player: string; seq: number }[] } | undefined> {
    const send = this.sends.get(server.id)!;
    const headers = { authorization: `Bearer ${server.token}`, 'x-server-id': server.id };
    const sentAt = Date.now();
    const res = await request(send, this.urls[0]!, 'POST', `/mesh/regions/${region}/actions/collect`, { body: { limit: 1000 }, headers });
    if (res.status !== 200) return undefined;
    const actions = (res.body.actions as { player_id: string; seq: number }[]).map((a) => ({ player: a.player_id, seq: a.seq }));
    this.history.collects.push({ server: server.id, region, epoch: res.body.epoch, sentAt, receivedAt: Date.now(), by: origin(res.url), actions });
    return { epoch: res.body.epoch, actions };
  }

  /** While the server runs: collect every led region's actions, then acknowledge them. */
  private async collectLoop(server: GameServer): Promise<void> {
    const headers = { authorization: `Bearer ${server.token}`, 'x-server-id': server.id };
    const deadline = Date.now() + this.deadlineMs;
    while (!this.stopped && server.stoppedAt === null && Date.now() < deadline) {
      for (const [region, held] of [...server.regions]) {
        if (held.role !== 'primary' || server.stoppedAt !== null) continue;
        const got = await this.collect(server, region);
        if (got === undefined || got.actions.length === 0) continue;
        const acks = got.actions.map((a) => ({ player_id: a.player, seq: a.seq }));
        await request(this.sends.get(server.id)!, this.urls[0]!, 'POST', `/mesh/regions/${region}/actions/ack`, { body: { acks }, headers });
      }
      await sleep(250);
    }
  }
}

/** Players of one region sending one numbered action at a time, each until it is answered 202. */
export class Players {
  private stopped = false;
  private knownEpoch = 1;
  private readonly send: (r: Request) => Promise<Response>;
  private readonly loops: Promise<void>[] = [];

  constructor(private readonly urls: readonly string[], private readonly region: string, private readonly history: HistoryLog) {
    this.send = followingFetch(urls);
  }

  start(players: readonly string[], intervalMs: number, deadlineMs: number): void {
    for (const player of players) this.loops.push(this.play(player, intervalMs, Date.now() + deadlineMs));
  }

  /** Stops sending and waits for the actions under way. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }

  private async play(player: string, intervalMs: number, deadline: number): Promise<void> {
    let seq = 1;
    while (!this.stopped && Date.now() < deadline && seq <= 10_000) {
      const sentAt = Date.now();
      const res = await request(this.send, this.urls[0]!, 'POST', `/mesh/regions/${this.region}/actions`, {
        body: { player_id: player, seq, payload: { n: seq }, unreachable_primary: true, known_epoch: this.knownEpoch },
      });
      this.history.actions.push({ region: this.region, player, seq, sentAt, receivedAt: Date.now(), status: res.status, by: origin(res.url) });
      if (res.status === 202) seq += 1;
      else if (res.status === 409 && typeof res.body?.epoch === 'number') this.knownEpoch = Math.max(this.knownEpoch, res.body.epoch);
      await sleep(intervalMs);
    }
  }
}
