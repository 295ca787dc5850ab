/**
 * Player actions while a region has no serving primary: players submit, the coordinator buffers
 * (durably: a 202 means on disk), and the region's announced primary collects them in per-player
 * `seq` order and acknowledges what it applied.
 */
import { Router } from '@koa/router';
import type { ActionAck, BufferedAction } from '../../mesh/actions/action-buffer.ts';
import { regionId as toRegionId, serverId as toServerId, type RegionId, type Rejection } from '../../mesh/base/types.ts';
import type { Principal } from '../auth.ts';
import { requireTicketFor } from '../player-ticket.ts';
import { fromRejection, type HttpProblem } from '../problem.ts';
import { ms, operation, reply, type RouteKit } from '../route-kit.ts';
import { durably } from './durability.ts';

/** `SubmitActionRequest` after validation. */
interface SubmitActionBody { player_id: string; seq: number; payload: unknown; unreachable_primary?: boolean; known_epoch?: number }
/** `CollectActionsRequest` after validation (default limit filled). */
interface CollectActionsBody { limit: number }
/** `AcknowledgeActionsRequest` after validation. */
interface AcknowledgeActionsBody { acks: { player_id: string; seq: number }[] }

/** The action routes: submitAction, collectActions, acknowledgeActions. */
export function actionRoutes(kit: RouteKit): Router {
  const router = new Router();
  const { host } = kit;

  operation<SubmitActionBody>(router, kit, 'submitAction', async (ctx, { path, body }) => {
    requireTicketFor(ctx.state, body.player_id);
    const id = toRegionId(path.region_id);
    const action = { playerId: body.player_id, seq: body.seq, payload: body.payload };
    // The contract makes known_epoch required with the flag, so a flagged body always names one.
    const unreachable = body.unreachable_primary === true ? { knownEpoch: body.known_epoch as number } : undefined;
    const result = await durably(host.runDurably((core, now) => core.submitAction(id, action, now, unreachable)),
      `Action ${body.seq} of player ${body.player_id} may or may not be durable; ` +
      'resubmit it with the same seq (a repeat is recognised and answered as a duplicate).');
    if (!result.ok) throw fromRejection(result);
    reply(ctx, 202, { status: result.value.status, pending: result.value.pending, expires_at: ms(result.value.expiresAtMs) });
  });

  operation<CollectActionsBody>(router, kit, 'collectActions', (ctx, { path, body, principal }) => {
    const id = toRegionId(path.region_id);
    const result = host.run((core, now) => core.collectActions(id, callingServer(principal), now, body.limit));
    if (!result.ok) throw primaryProblem(kit, id, result);
    reply(ctx, 200, { region_id: id, epoch: result.value.epoch, actions: result.value.actions.map(actionBody) });
  });

  operation<AcknowledgeActionsBody>(router, kit, 'acknowledgeActions', async (ctx, { path, body, principal }) => {
    const id = toRegionId(path.region_id);
    const acks: ActionAck[] = body.acks.map((a) => ({ playerId: a.player_id, seq: a.seq }));
    const result = await durably(host.runDurably((core, now) => core.acknowledgeActions(id, callingServer(principal), acks, now)),
      'The acknowledgements are applied in memory but may not survive a restart; acknowledge again ' +
      '(a repeat counts as unknown and changes nothing).');
    if (!result.ok) throw primaryProblem(kit, id, result);
    const { acknowledged, unknown, pending } = result.value;
    reply(ctx, 200, { acknowledged, unknown, pending });
  });

  return router;
}

/** The server named by `X-Server-Id` and proven by its token (these operations admit servers only). */
function callingServer(principal: Principal | undefined) {
  if (principal?.kind !== 'server') throw new Error('collect and ack are server-only operations');
  return toServerId(principal.serverId);
}

/** Problem for a refused collect or ack; `not_primary` also says who the primary is and at which epoch. */
function primaryProblem(kit: RouteKit, id: RegionId, rejection: Rejection): HttpProblem {
  const route = rejection.code === 'not_primary' ? kit.host.coordinator.route(id) : undefined;
  if (route === undefined) return fromRejection(rejection);
  return fromRejection({ ...rejection, data: { ...rejection.data, epoch: route.epoch, primary: route.primary } });
}

/** `BufferedAction` of the contract. */
function actionBody(a: BufferedAction) {
  return { player_id: a.playerId, seq: a.seq, payload: a.payload, accepted_at: ms(a.acceptedAtMs) };
}
