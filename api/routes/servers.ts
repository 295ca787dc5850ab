/**
 * Real game servers: registration (`POST /mesh/servers`), listing, heartbeats and graceful leave.
 *
 * Heartbeats are the hot path and follow ARCHITECTURE.md's rule 1: they update memory only. The
 * handler applies the heartbeat through the host, which hands its effects on (and may start a
 * group-committed write for what the heartbeat set off, such as an acknowledged promotion), and
 * answers at once; it never waits for the store. Registration and leave are topology changes: they
 * answer only once the change is on disk.
 */
import { Router } from '@koa/router';
import type { HeartbeatInput, HeartbeatReply } from '../../mesh/core/heartbeat.ts';
import { regionId, serverId, type Role, type ServerStatus } from '../../mesh/base/types.ts';
import type { ServerView } from '../../mesh/core/views.ts';
import { hashToken, issueServerToken } from '../auth.ts';
import { HttpProblem, conflict, notFound, retryAfterSeconds } from '../problem.ts';
import { ms, msOrNull, operation, reply, unwrap, type RouteKit } from '../route-kit.ts';
import { durably } from './durability.ts';

/** Body of `registerServer` after validation. */
interface RegisterBody {
  address: string;
  zone: string;
  capacity: number;
  name?: string;
}

/** Body of `sendHeartbeat` after validation. */
export interface HeartbeatBody {
  incarnation: string;
  seq?: number;
  players: number;
  regions: { region_id: string; role: Role; epoch: number; applied_seq: number }[];
  peers?: { server_id: string; silent_for_ms: number }[];
}

/** Servers are listed in natural id order (`srv-2` before `srv-10`). */
const byId = new Intl.Collator('en', { numeric: true }).compare;

/** Routes of the server operations. */
export function serverRoutes(kit: RouteKit): Router {
  const router = new Router();
  const { host } = kit;

  operation<RegisterBody>(router, kit, 'registerServer', async (ctx, { body }) => {
    const token = issueServerToken();
    const view = unwrap(await durably(host.runDurably((core, now) => core.registerServer({
      address: body.address, zone: body.zone, capacity: body.capacity, name: body.name ?? null,
      credentialHash: hashToken(token),
    }, now)), (result) => `Server ${result.ok ? result.value.serverId : ''} is registered in memory but its registration ` +
      'may not survive a restart; register again.'));
    ctx.set('Location', `/mesh/servers/${encodeURIComponent(view.serverId)}`);
    reply(ctx, 201, { server_id: view.serverId, token, heartbeat_interval_ms: host.coordinator.config.heartbeatIntervalMs });
  });

  operation(router, kit, 'listServers', (ctx, { query }) => {
    const status = query.status as ServerStatus | undefined;
    const servers = host.coordinator.servers()
      .filter((s) => status === undefined || s.status === status)
      .sort((a, b) => byId(a.serverId, b.serverId));
    reply(ctx, 200, { servers: servers.map(serverJson) });
  });

  operation(router, kit, 'getServer', (ctx, { path }) => {
    const id = serverId(path.server_id as string);
    const view = host.coordinator.server(id);
    if (!view) throw notFound('server', id);
    reply(ctx, 200, serverJson(view));
  });

  operation<HeartbeatBody>(router, kit, 'sendHeartbeat', (ctx, { path, body }) => {
    reply(ctx, 200, applyHeartbeat(host, path.server_id as string, body));
  });

  // A session is a WebSocket (api/session/session-upgrade.ts takes the upgrade before Koa sees it):
  // a plain GET that got this far, authenticated, is told to upgrade.
  operation(router, kit, 'openSession', () => {
    throw new HttpProblem({
      status: 426, slug: 'upgrade-required', detail: 'A session is a WebSocket: send Upgrade: websocket (see asyncapi.yaml).',
      headers: { Upgrade: 'websocket' },
    });
  });

  operation(router, kit, 'leaveServer', async (ctx, { path }) => {
    reply(ctx, 202, await leaveDurably(host, path.server_id as string));
  });

  return router;
}

/**
 * The `leaveServer` operation (also a session's `leave` message): starts draining, durably, and
 * returns the 202 body or throws the problem (404 unknown, 409 already left, 503 not durable).
 */
export async function leaveDurably(host: RouteKit['host'], serverIdParam: string): Promise<{ server_id: string; status: 'draining' }> {
  const id = serverId(serverIdParam);
  const current = host.coordinator.server(id);
  if (!current) throw notFound('server', id);
  if (current.status === 'left') throw conflict(`Server ${id} has already left the mesh.`, {}, 'server-left');
  const view = unwrap(await durably(host.runDurably((core, now) => core.leave(id, now)),
    `Server ${id} is draining, but the change may not survive a restart.`));
  return { server_id: view.serverId, status: 'draining' };
}

/**
 * The `sendHeartbeat` operation after authentication and validation, shared by the Koa route and
 * server sessions (api/session/session-hub.ts): applies the heartbeat, hands the effects
 * on, and returns the 200 body or throws the problem (503 `heartbeat-dropped` with `Retry-After`,
 * other rejections through the rejection table).
 */
export function applyHeartbeat(host: RouteKit['host'], serverIdParam: string, body: HeartbeatBody, leaseMs?: number): Record<string, unknown> {
  const id = serverId(serverIdParam);
  const input = toHeartbeatInput(body);
  const result = host.heartbeat(id, leaseMs === undefined ? input : { ...input, leaseMs });
  if (!result.ok && result.code === 'heartbeat_dropped') throw heartbeatDropped(result.detail, host.coordinator.config.heartbeatIntervalMs);
  return heartbeatReplyJson(unwrap(result));
}

/**
 * 503 for a heartbeat an injected fault makes the coordinator drop: to the server it looks as if
 * the coordinator were unreachable, so it retries at its next interval.
 */
function heartbeatDropped(detail: string, intervalMs: number): HttpProblem {
  return new HttpProblem({
    status: 503, slug: 'heartbeat-dropped', detail, extra: { retry_after_ms: intervalMs },
    headers: { 'Retry-After': retryAfterSeconds(intervalMs) },
  });
}

/** The snake_case body mapped to the core's input. */
export function toHeartbeatInput(body: HeartbeatBody): HeartbeatInput {
  return {
    incarnation: body.incarnation,
    ...(body.seq === undefined ? {} : { seq: body.seq }),
    players: body.players,
    regions: body.regions.map((r) => ({ regionId: regionId(r.region_id), role: r.role, epoch: r.epoch, appliedSeq: r.applied_seq })),
    peers: (body.peers ?? []).map((p) => ({ serverId: serverId(p.server_id), silentForMs: p.silent_for_ms })),
  };
}

/** A heartbeat reply as the contract's `HeartbeatResponse`. */
export function heartbeatReplyJson(reply: HeartbeatReply): Record<string, unknown> {
  const endpoint = (e: { serverId: string; address: string }) => ({ server_id: e.serverId, address: e.address });
  return {
    server_id: reply.serverId, status: reply.status, degraded_level: reply.degradedLevel, fidelity: reply.fidelity,
    heartbeat_interval_ms: reply.heartbeatIntervalMs,
    regions: reply.regions.map((r) => ({
      region_id: r.regionId, role: r.role, epoch: r.epoch, primary: r.primary === null ? null : endpoint(r.primary),
      backups: r.backups.map(endpoint), fidelity: r.fidelity, actions_pending: r.actionsPending,
    })),
    demoted: reply.demoted.map((d) => ({ region_id: d.regionId, epoch: d.epoch })),
    lease_ms: reply.leaseMs,
  };
}

/** A server as the contract's `ServerView`. */
export function serverJson(view: ServerView): Record<string, unknown> {
  return {
    server_id: view.serverId, name: view.name, address: view.address, zone: view.zone, capacity: view.capacity,
    status: view.status, status_changed_at: ms(view.statusSinceMs), simulated: view.simulated,
    registered_at: ms(view.registeredAtMs), last_heartbeat_at: msOrNull(view.lastHeartbeatAtMs), players: view.players,
    primaries: view.primaries, backups: view.backups,
  };
}
