/**
 * Player snapshots: the region's announced primary posts each player's latest state; a newly
 * promoted primary (any registered server, or the admin) fetches it to restore a player whose
 * replicated state it never received. Snapshots live in memory only (primaries re-post them).
 */
import { Router } from '@koa/router';
import type { PlayerSnapshot } from '../../mesh/actions/snapshots.ts';
import { regionId as toRegionId, serverId as toServerId } from '../../mesh/base/types.ts';
import { ms, operation, reply, unwrap, type RouteKit } from '../route-kit.ts';

/** `PutSnapshotRequest` after validation. */
interface PutSnapshotBody { state: unknown }

/** The snapshot routes: putPlayerSnapshot, getPlayerSnapshot. */
export function snapshotRoutes(kit: RouteKit): Router {
  const router = new Router();
  const { host } = kit;

  operation<PutSnapshotBody>(router, kit, 'putPlayerSnapshot', (ctx, { path, body, principal }) => {
    if (principal?.kind !== 'server') throw new Error('putPlayerSnapshot is a server-only operation');
    // The limit applies to the JSON text of `state` as the coordinator would store and return it.
    const sizeBytes = Buffer.byteLength(JSON.stringify(body.state), 'utf8');
    const snapshot = { playerId: path.player_id as string, state: body.state, sizeBytes };
    const stored = unwrap(host.run((core, now) => core.putSnapshot(toRegionId(path.region_id), toServerId(principal.serverId), snapshot, now)));
    reply(ctx, 200, { version: stored.version, epoch: stored.epoch });
  });

  operation(router, kit, 'getPlayerSnapshot', (ctx, { path }) => {
    const snapshot = unwrap(host.coordinator.getSnapshot(toRegionId(path.region_id), path.player_id as string));
    reply(ctx, 200, snapshotBody(snapshot));
  });

  return router;
}

/** `PlayerSnapshot` of the contract (the measured size stays internal). */
function snapshotBody(s: PlayerSnapshot) {
  return { player_id: s.playerId, state: s.state, epoch: s.epoch, server_id: s.serverId, updated_at: ms(s.updatedAtMs), version: s.version };
}
