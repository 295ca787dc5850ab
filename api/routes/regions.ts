/**
 * Regions: creation and priority changes by operators, the list, and the route players ask for,
 * with a long-poll that answers the moment a failover completes so that players reconnect at once
 * instead of polling on a timer.
 */
import { Router } from '@koa/router';
import type { Context } from 'koa';
import type { MeshEvent } from '../../mesh/effects/events.ts';
import type { ReplicationView, RouteView } from '../../mesh/core/views.ts';
import { regionId as toRegionId, type RegionId, type RegionPhase, type ServerId } from '../../mesh/base/types.ts';
import type { CoreQueries, MeshHost } from '../deps.ts';
import { notFound } from '../problem.ts';
import { operation, reply, unwrap, type RouteKit } from '../route-kit.ts';
import { durably } from './durability.ts';

/** `CreateRegionRequest` after validation (defaults filled). */
interface CreateRegionBody { region_id?: string; critical: boolean; players: number }
/** `UpdateRegionRequest` after validation (at least one field). */
interface UpdateRegionBody { critical?: boolean; players?: number }

/** An `Endpoint` of the contract. */
export interface EndpointBody { server_id: string; address: string }

/** The region routes: createRegion, listRegions, updateRegion, getRegionRoute. */
export function regionRoutes(kit: RouteKit): Router {
  const router = new Router();
  const { host } = kit;

  operation<CreateRegionBody>(router, kit, 'createRegion', async (ctx, { body }) => {
    const input = { ...(body.region_id === undefined ? {} : { id: body.region_id }), critical: body.critical, players: body.players };
    const [created] = unwrap(await durably(host.runDurably((core, now) => core.createRegions([input], now)),
      (result) => `Region ${result.ok ? result.value[0]?.id : ''} exists in memory but may not survive a restart; ` +
        'GET /mesh/regions shows it and the next successful write persists it.'));
    const id = created!.id;
    ctx.set('Location', `/mesh/regions/${encodeURIComponent(id)}`);
    reply(ctx, 201, regionBody(host.coordinator, id));
  });

  operation(router, kit, 'listRegions', (ctx, { query }) => {
    const state = query.state as RegionPhase | undefined;
    const regions = host.coordinator.regions()
      .filter((r) => state === undefined || r.state === state)
      .sort((a, b) => byId(a.regionId, b.regionId))
      .map((r) => toRegionBody(host.coordinator, r));
    reply(ctx, 200, { regions });
  });

  operation<UpdateRegionBody>(router, kit, 'updateRegion', async (ctx, { path, body }) => {
    const id = toRegionId(path.region_id);
    unwrap(await durably(host.runDurably((core) => core.updateRegion(id, body)),
      `The change to region ${id} is in effect but may not survive a restart; repeat it to be sure.`));
    reply(ctx, 200, regionBody(host.coordinator, id));
  });

  operation(router, kit, 'getRegionRoute', async (ctx, { path, query }) => {
    const id = toRegionId(path.region_id);
    if (host.coordinator.route(id) === undefined) throw notFound('region', id);
    const waitMs = (query.wait_ms as number | undefined) ?? 0;
    const knownEpoch = query.known_epoch as number | undefined;
    const route = await routeWhenReady(host, ctx, id, waitMs, knownEpoch);
    if (route === undefined) throw notFound('region', id);
    reply(ctx, 200, routeBody(host, route));
  });

  return router;
}

/**
 * The region's route, at once when there is nothing to wait for (no `wait_ms`, no `known_epoch`,
 * or a route with a later epoch and a serving primary already), otherwise as soon as an event
 * about the region leaves it in that state, when `wait_ms` passes, or when the client goes away.
 * Every path clears the timer and the subscription. Undefined when the region no longer exists.
 */
export async function routeWhenReady(host: MeshHost, ctx: Context, id: RegionId, waitMs: number,
  knownEpoch: number | undefined): Promise<RouteView | undefined> {
  const ready = (route: RouteView | undefined): boolean =>
    route === undefined || (knownEpoch !== undefined && route.epoch > knownEpoch && route.primary !== null);
  if (waitMs <= 0 || knownEpoch === undefined || ready(host.coordinator.route(id))) return host.coordinator.route(id);
  await new Promise<void>((resolve) => {
    let settled = false;
    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      unsubscribe();
      ctx.res.off('close', finish);
      resolve();
    };
    const timer = setTimeout(finish, waitMs);
    // Events are delivered synchronously while the host flushes, when the core's state already
    // reflects them; any event about this region is a reason to look again.
    const unsubscribe = host.subscribe((event: MeshEvent) => {
      if ('regionId' in event && event.regionId === id && ready(host.coordinator.route(id))) finish();
    });
    // 'close' on the response before it was sent means the client disconnected.
    ctx.res.once('close', finish);
  });
  return host.coordinator.route(id);
}

/** `RegionView` of one region; the caller knows it exists. */
export function regionBody(coordinator: CoreQueries, id: RegionId) {
  const view = coordinator.replication(id);
  if (!view) throw new Error(`region ${id} vanished while it was being answered`);
  return toRegionBody(coordinator, view);
}

function toRegionBody(coordinator: CoreQueries, view: ReplicationView) {
  return {
    region_id: view.regionId,
    epoch: view.epoch,
    state: view.state,
    critical: view.critical,
    players: view.players,
    primary: view.primary === null ? null : endpointOf(coordinator, view.primary.serverId),
    backups: view.backups.map((b) => endpointOf(coordinator, b.serverId)).filter((e): e is EndpointBody => e !== null),
    actions_pending: coordinator.pendingActions(view.regionId),
  };
}

/** `RouteView`; `retry_after_ms` (one heartbeat interval: when a promoted server next reports) while there is no serving primary. */
export function routeBody(host: MeshHost, route: RouteView) {
  return {
    region_id: route.regionId,
    epoch: route.epoch,
    state: route.state,
    primary: route.primary === null ? null : endpointBody(route.primary),
    backups: route.backups.map(endpointBody),
    ...(route.primary === null ? { retry_after_ms: host.coordinator.config.heartbeatIntervalMs } : {}),
  };
}

/** `Endpoint` from the core's camelCase endpoint. */
export const endpointBody = (e: { serverId: ServerId | string; address: string }): EndpointBody =>
  ({ server_id: e.serverId, address: e.address });

function endpointOf(coordinator: CoreQueries, id: ServerId): EndpointBody | null {
  const server = coordinator.serverRecord(id);
  return server ? { server_id: id, address: server.address } : null;
}

/** Regions are listed in natural id order (`region-2` before `region-10`), as servers are. */
const byId = new Intl.Collator('en', { numeric: true }).compare;
