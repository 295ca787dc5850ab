/**
 * Administrator alerts: the list (open ones by default, newest report first) and the
 * acknowledgement, which records who saw it first and is persisted before it is answered.
 */
import { Router } from '@koa/router';
import type { Alert, AlertFilter } from '../../mesh/health/alerts.ts';
import type { Principal } from '../auth.ts';
import { ms, msOrNull, operation, reply, unwrap, type RouteKit } from '../route-kit.ts';
import { durably } from './durability.ts';

/** The alert routes: listAlerts, acknowledgeAlert. */
export function alertRoutes(kit: RouteKit): Router {
  const router = new Router();
  const { host } = kit;

  operation(router, kit, 'listAlerts', (ctx, { query }) => {
    const filter = { state: query.state, ...(query.severity === undefined ? {} : { severity: query.severity }) } as AlertFilter;
    // The core lists newest raised first; the contract orders by the latest report. The sort is
    // stable, so alerts reported at the same time keep the newest-raised-first order.
    const alerts = host.coordinator.listAlerts(filter).sort((a, b) => b.lastRaisedAtMs - a.lastRaisedAtMs);
    reply(ctx, 200, { alerts: alerts.map(alertBody) });
  });

  operation(router, kit, 'acknowledgeAlert', async (ctx, { path, principal }) => {
    const alertId = path.alert_id as string;
    const alert = unwrap(await durably(host.runDurably((core, now) => core.acknowledgeAlert(alertId, now, describe(principal))),
      `The acknowledgement of ${alertId} is recorded in memory but may not survive a restart; acknowledge it again.`));
    reply(ctx, 200, alertBody(alert));
  });

  return router;
}

/** Who acknowledged: `admin` with the token, `loopback` in protected mode. */
function describe(principal: Principal | undefined): string | undefined {
  if (principal === undefined) return undefined;
  if (principal.kind === 'server') return `server:${principal.serverId}`;
  return principal.via === 'token' ? 'admin' : 'loopback';
}

/** `Alert` of the contract. */
export function alertBody(a: Alert) {
  const subject = a.subject === undefined ? undefined : {
    ...(a.subject.serverId === undefined ? {} : { server_id: a.subject.serverId }),
    ...(a.subject.regionId === undefined ? {} : { region_id: a.subject.regionId }),
  };
  return {
    id: a.id, dedup_key: a.dedupKey, severity: a.severity, title: a.title, message: a.message,
    raised_at: ms(a.raisedAtMs), last_raised_at: ms(a.lastRaisedAtMs), count: a.count,
    resolved_at: msOrNull(a.resolvedAtMs), acknowledged_at: msOrNull(a.acknowledgedAtMs), acknowledged_by: a.acknowledgedBy,
    ...(subject === undefined ? {} : { subject }),
  };
}
